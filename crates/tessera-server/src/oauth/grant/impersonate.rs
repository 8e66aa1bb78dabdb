//! RFC 8693 impersonation: the caller's own token (or API key) as `subject_token`, plus
//! `requested_subject` and a `reason`; the result's `act` names the impersonator (RFC 8693
//! §4.1).
//!
//! INVARIANT (I2): the impersonator must hold `users.impersonate` there, may not impersonate
//! someone holding what they do not (compared through roles, not the token's scopes), may not
//! chain impersonations, and gets at most target ∩ impersonator ∩ the impersonation policy for
//! at most one hour, with no refresh token; scopes the policy cuts into are not listed.

use serde_json::{json, Value};
use tessera_core::{AccountId, CredentialCap, PrincipalId, UserId};
use tessera_store::{Outcome, Status, StoreError};
use tessera_token::Actor;

use super::exchanged::{exchanged, remaining, ExchangeRequest, Exchanged};
use super::{GrantError, TokenResponse};
use crate::audit::action::AuditAction;
use crate::audit::record::audit_event as record;
use crate::caller::{Caller, Credential, RequestMeta};
use crate::gate::decide::{decide, effective_of, request_context};
use crate::oauth::error::OAuthError;
use crate::oauth::issue::{self, AccessSpec};
use crate::oauth::refusal::from_authz;
use crate::oauth::scope::{is_protocol_scope, shown, split_scopes};
use crate::oauth::settings::secs;
use crate::services::Services;

/// The gate's failure as the grant's: an outage is `temporarily_unavailable`, never
/// `invalid_request`.
fn gate_error(e: crate::gate::error::AuthzError) -> GrantError {
    GrantError::Mapped(from_authz(e, OAuthError::invalid_request))
}

/// Issues a token for `target` acting as `caller` (RFC 8693 §4.1 `act`).
pub(super) async fn impersonate(
    state: &Services,
    meta: &RequestMeta,
    req: &ExchangeRequest<'_>,
    caller: &Caller,
    target: &str,
    out: Exchanged,
) -> Result<TokenResponse, GrantError> {
    let Exchanged {
        account,
        expires_in,
        client_id,
    } = out;
    let alg = issue::client_alg(state, &client_id).await;
    let reason = req
        .reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| GrantError::InvalidRequest("`reason` is required to impersonate".into()))?;
    if reason.chars().count() > 500 {
        return Err(GrantError::InvalidRequest(
            "`reason` must be at most 500 characters".into(),
        ));
    }
    if caller.token().is_some_and(|t| t.act.is_some()) {
        return Err(GrantError::InvalidGrant(
            "an impersonation token cannot be used to impersonate again".into(),
        ));
    }
    if matches!(caller.principal, PrincipalId::Installation(_)) {
        return Err(GrantError::InvalidGrant(
            "an app's token cannot impersonate users".into(),
        ));
    }
    let target: UserId = target.parse().map_err(|_| {
        GrantError::InvalidTarget("`requested_subject` must be a user id (usr_…)".into())
    })?;
    let agency = caller.agency.clone();
    let scope = state.admission.admit(agency.clone());
    // Another agency's user is the same unknown target as a missing one (I1).
    let user = match state.store.get_user(&scope, &target).await {
        Ok(u) if u.status == Status::Active => u,
        Ok(_) | Err(StoreError::NotFound) => {
            return Err(GrantError::InvalidTarget(
                "`requested_subject` names no active user of your agency".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if PrincipalId::User(user.id.clone()) == caller.principal {
        return Err(GrantError::InvalidTarget(
            "you cannot impersonate yourself".into(),
        ));
    }
    let account = match (&caller.cap.account, account) {
        (Some(have), Some(want)) if *have != want => {
            return Err(GrantError::InvalidTarget(
                "your credential is bound to another account".into(),
            ))
        }
        (Some(have), _) => Some(have.clone()),
        (None, want) => want,
    };
    if let Some(acc) = &account {
        match state.store.get_account(&scope, acc).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => {
                return Err(GrantError::InvalidTarget(
                    "`account` names no account of your agency".into(),
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
    let impersonate = state
        .catalog
        .permission("users.impersonate")
        .ok_or_else(|| GrantError::Internal("the catalog lacks users.impersonate".into()))?;
    let d = decide(
        state,
        caller,
        impersonate,
        &agency,
        account.as_ref(),
        &request_context(state, meta),
        None,
    )
    .await
    .map_err(gate_error)?;
    let denied = |why: &str, detail: Value| {
        record(
            state,
            meta,
            caller.principal.as_str(),
            Some(user.id.as_str()),
            AuditAction::ImpersonationStart,
            Some(user.id.as_str()),
            Outcome::Denied,
            json!({ "why": why, "detail": detail, "reason": reason }),
        )
    };
    if !d.allowed {
        let _ = crate::audit::sealed::append(
            state,
            &scope,
            &denied("not_permitted", json!(d.reason.code())),
        )
        .await;
        return Err(GrantError::InvalidGrant(
            "the subject token does not allow impersonating users here (users.impersonate)".into(),
        ));
    }
    let forbidden = state.oauth.impersonation_forbidden;
    let mine = effective_of(state, caller, &agency, account.as_ref())
        .await
        .map_err(gate_error)?;
    let as_target = Caller {
        principal: PrincipalId::User(user.id.clone()),
        agency: agency.clone(),
        is_platform: caller.is_platform,
        credential: Credential::None,
        cap: CredentialCap {
            permissions: None,
            account: None,
        },
        own: None,
    };
    let theirs = effective_of(state, &as_target, &agency, account.as_ref())
        .await
        .map_err(gate_error)?;
    // "More privileged" compares people, not credentials: what the impersonator holds
    // through their roles (their token's scopes only cap the result, below).
    let uncapped = Caller {
        cap: CredentialCap {
            permissions: None,
            account: caller.cap.account.clone(),
        },
        // Its roles, not its token: an API key stays (its bindings are its own).
        credential: match &caller.credential {
            Credential::AccessToken(_) => Credential::None,
            other => other.clone(),
        },
        ..caller.clone()
    };
    let held = effective_of(state, &uncapped, &agency, account.as_ref())
        .await
        .map_err(gate_error)?;
    let beyond = theirs.difference(&forbidden).difference(&held);
    if !beyond.is_empty() {
        let names = state.catalog.permission_names(&beyond);
        let _ = crate::audit::sealed::append(
            state,
            &scope,
            &denied("more_privileged_target", json!(names)),
        )
        .await;
        return Err(GrantError::InvalidTarget(
            "this user holds permissions you do not: you cannot impersonate a more privileged user"
                .into(),
        ));
    }
    let allowed = mine.intersect(&theirs).difference(&forbidden);
    let default_scopes: Vec<String> = match (caller.token(), caller.key()) {
        (Some(t), _) => t.scopes().map(str::to_owned).collect(),
        (None, Some(k)) => k.scopes.clone(),
        (None, None) => Vec::new(),
    };
    // A scope is listed only if it is wholly effective under the impersonation policy: one
    // that maps to any permission the policy removes (`users.impersonate`, `users.write`,
    // `billing.*`, …) is dropped, so a resource server that trusts the token's `scope` claim
    // is never told of a power the token does not carry (RFC 6749 §3.3: the response's
    // `scope` says what was issued).
    let effective = |perms: &tessera_core::PermissionSet| perms.intersect(&forbidden).is_empty();
    let scopes: Vec<String> = match req.scope {
        Some(s) => {
            let asked = split_scopes(s);
            for s in &asked {
                let within = !is_protocol_scope(s)
                    && state
                        .catalog
                        .scope(s)
                        .is_some_and(|(_, perms)| perms.difference(&forbidden).is_subset(&mine));
                if !within {
                    return Err(GrantError::InvalidScope(format!(
                        "scope `{}` is beyond what you may do here",
                        shown(s)
                    )));
                }
            }
            asked
                .into_iter()
                .filter(|s| {
                    state
                        .catalog
                        .scope(s)
                        .is_some_and(|(_, perms)| effective(&perms))
                })
                .collect()
        }
        None => default_scopes
            .into_iter()
            .filter(|s| {
                state.catalog.scope(s).is_some_and(|(_, perms)| {
                    effective(&perms)
                        && !perms.is_empty()
                        && perms.is_subset(&mine)
                        && !perms.intersect(&allowed).is_empty()
                })
            })
            .collect(),
    };
    if scopes.is_empty() {
        return Err(GrantError::InvalidScope(
            "no scope is left for the impersonation (scopes that include a permission the impersonation policy removes are dropped): name narrower scopes with `scope`".into(),
        ));
    }
    let mut ttl = secs(state.oauth.settings.impersonation_ttl);
    if let Some(left) = remaining(state, caller) {
        ttl = ttl.min(left);
    }
    if let Some(e) = expires_in {
        ttl = ttl.min(e);
    }
    if ttl <= 0 {
        return Err(GrantError::InvalidGrant(
            "the subject token has expired".into(),
        ));
    }
    let issued = issue::mint_access(
        state,
        AccessSpec {
            sub: user.id.to_string(),
            client_id,
            scopes: scopes.clone(),
            agency: agency.clone(),
            account: account.clone(),
            act: Some(Actor {
                sub: caller.principal.to_string(),
                act: None,
            }),
            sid: None,
            ins: None,
            ttl,
            alg,
            aud: None,
        },
    )?;
    let audit = record(
        state,
        meta,
        caller.principal.as_str(),
        Some(user.id.as_str()),
        AuditAction::ImpersonationStart,
        Some(user.id.as_str()),
        Outcome::Success,
        json!({
            "reason": reason,
            "scope": scopes.join(" "),
            "account": account.as_ref().map(AccountId::as_str),
            "jti": issued.jti,
            "expires_at": issued.exp,
            "permissions": state.catalog.permission_names(&allowed),
        }),
    );
    crate::audit::sealed::append(state, &scope, &audit).await?;
    Ok(exchanged(issued.token, issued.expires_in, &scopes))
}
