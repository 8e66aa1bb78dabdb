//! I2 for changes to principals and credentials: a caller may rotate, revoke, reset or delete
//! only what holds nothing beyond the caller's own permissions, at every place the target has
//! a grant. A refusal names the missing permissions and is audited.

use tessera_core::index::{self, Check};
use tessera_core::{AccountId, CredentialCap, PermissionSet, PrincipalId};
use tessera_store::{ApiKey, TenantScope};

use super::authorized::Authorized;
use super::decide::{effective_of, evaluate_policies, request_context};
use super::error::AuthzError;
use crate::audit::action::AuditAction;
use crate::authn::key_grant;
use crate::services::Services;

/// A principal or credential a caller wants to change, with what it holds by itself.
#[derive(Clone, Debug)]
pub struct Target {
    /// The principal (its bindings are read from the agency's index).
    pub principal: PrincipalId,
    /// What the credential grants by itself (an API key's scopes), at `cap.account`.
    pub own: Option<PermissionSet>,
    /// The credential's cap.
    pub cap: CredentialCap,
}

impl Target {
    /// A user: their bindings, uncapped.
    pub fn user(id: &tessera_core::UserId) -> Self {
        Self {
            principal: PrincipalId::User(id.clone()),
            own: None,
            cap: CredentialCap::default(),
        }
    }

    /// An API key: its bindings and scopes, capped by its scopes and account. A key whose
    /// scope left the catalog holds nothing.
    pub fn key(state: &Services, key: &ApiKey) -> Self {
        let (own, cap) = key_grant(state, key).unwrap_or((None, Some(PermissionSet::EMPTY)));
        Self {
            principal: PrincipalId::Key(key.id.clone()),
            own,
            cap: CredentialCap {
                permissions: cap,
                account: key.account.clone(),
            },
        }
    }

    /// Any principal of the agency (a binding's).
    pub async fn principal(
        state: &Services,
        scope: &TenantScope,
        principal: &PrincipalId,
    ) -> Result<Self, AuthzError> {
        match principal {
            PrincipalId::Key(id) => match state.store.get_api_key(scope, id).await {
                Ok(key) => Ok(Self::key(state, &key)),
                Err(tessera_store::StoreError::NotFound) => Ok(Self {
                    principal: principal.clone(),
                    own: None,
                    cap: CredentialCap::default(),
                }),
                Err(e) => Err(e.into()),
            },
            _ => Ok(Self {
                principal: principal.clone(),
                own: None,
                cap: CredentialCap::default(),
            }),
        }
    }
}

impl Authorized {
    /// Refuses to change `target` (rotate, revoke or reset its secret, change its password,
    /// email or status, remove its bindings, delete it) when it holds any permission the caller
    /// lacks at the same place: the agency level and every account where either has a grant
    /// (I2). Otherwise the change hands the caller the target's power (a rotated key's new
    /// secret, a password the caller chose). Acting on oneself is always allowed. The refusal
    /// names the missing permissions and is audited.
    pub async fn require_dominates(
        &self,
        state: &Services,
        target: &Target,
        action: AuditAction,
    ) -> Result<(), AuthzError> {
        // Oneself, with a credential that is not narrowed (no scopes, no account, no
        // impersonation): nothing to gain. A narrowed credential (a token holding only
        // `users.write`) is compared like anyone else, or it could reset its own user's
        // password and sign in as the whole user.
        let unnarrowed = self.caller.cap.permissions.is_none()
            && self.caller.cap.account.is_none()
            && self.caller.own.is_none()
            && self.caller.actor().is_none();
        if target.principal == self.caller.principal && unnarrowed {
            return Ok(());
        }
        let entry = state
            .engine
            .entry(
                &self.agency,
                self.caller.is_platform && self.agency == self.caller.agency,
                None,
            )
            .await?;
        let mut places: Vec<Option<AccountId>> = vec![None];
        places.extend(
            entry
                .index
                .bound_accounts(&target.principal)
                .into_iter()
                .map(Some),
        );
        if let Some(acc) = &target.cap.account {
            places.push(Some(acc.clone()));
        }
        places.sort();
        places.dedup();
        let mut missing = PermissionSet::EMPTY;
        for place in &places {
            let held = Check {
                principal: &target.principal,
                home: &entry.index,
                own_grant: target
                    .own
                    .as_ref()
                    .map(|s| (s, target.cap.account.as_ref())),
                cap: &target.cap,
                permission: state.engine_cfg.cross_tenant,
                agency: &self.agency,
                account: place.as_ref(),
            };
            let Ok((held, _)) = index::effective(&held, state.engine_cfg) else {
                continue;
            };
            if held.is_empty() {
                continue;
            }
            let mut mine = effective_of(state, &self.caller, &self.agency, place.as_ref()).await?;
            // What the agency's policies forbid the caller here, the caller does not hold.
            if entry.policies_broken {
                mine = PermissionSet::EMPTY;
            } else if let Some(policies) = entry.policies.as_ref() {
                let home = if self.agency == self.caller.agency {
                    entry.clone()
                } else {
                    state
                        .engine
                        .entry(&self.caller.agency, self.caller.is_platform, None)
                        .await?
                };
                let ctx = request_context(state, &self.meta);
                let mut forbidden = PermissionSet::EMPTY;
                for ix in held.intersect(&mine).iter() {
                    let denied = evaluate_policies(
                        state,
                        &self.caller,
                        &home,
                        policies,
                        ix,
                        &self.agency,
                        place.as_ref(),
                        &ctx,
                    );
                    if denied.is_some() {
                        forbidden.insert(ix);
                    }
                }
                mine = mine.difference(&forbidden);
            }
            missing = missing.union(&held.difference(&mine));
        }
        if missing.is_empty() {
            return Ok(());
        }
        let names = state.catalog.permission_names(&missing);
        let message = format!(
            "`{}` holds permissions you do not, so you cannot change it: {}",
            target.principal,
            names.join(", ")
        );
        Err(self
            .refuse_missing(
                state,
                action,
                Some(target.principal.as_str()),
                names,
                message,
            )
            .await)
    }
}
