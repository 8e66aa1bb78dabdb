//! The authorization decision: a pure function over what a principal has been granted.
//!
//! Deny by default (I3): the answer is `allowed` only when a binding covering the target
//! grants the permission *and* the credential's cap (its scopes, its account) allows it.
//! INVARIANT: the effective permissions of a subject are always ⊆ the union of its grants
//! ∩ its credential cap (I2); a target in another agency is `OtherTenant`, never a grant,
//! unless a platform principal holds `platform.cross_tenant`.

use crate::ids::{AccountId, AgencyId, BindingId, KeyId};
use crate::permission::{PermissionIndex, PermissionSet};

/// Where a grant comes from, for explanations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantSource {
    /// A role binding.
    Binding(BindingId),
    /// An API key's own scopes (checked against its creator when it was made).
    KeyScopes(KeyId),
}

/// One grant of a principal (a binding with its role resolved, or a key's scopes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// What grants it.
    pub source: GrantSource,
    /// `None`: the whole agency (every account of it). `Some`: that account only.
    pub account: Option<AccountId>,
    /// The role's permissions.
    pub permissions: PermissionSet,
}

/// What a credential may do at most, whatever its subject holds.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CredentialCap {
    /// The permissions of the credential's scopes; `None` means no scope cap.
    pub permissions: Option<PermissionSet>,
    /// A credential bound to one account acts on that account only.
    pub account: Option<AccountId>,
}

/// Everything the decision needs about the caller, loaded before the call.
#[derive(Clone, Debug)]
pub struct Subject {
    /// The principal's own agency (the platform's agency for platform staff).
    pub agency: AgencyId,
    /// Whether `agency` is the platform tenant.
    pub is_platform: bool,
    /// The principal's bindings in its own agency.
    pub grants: Vec<Grant>,
    /// The credential's cap.
    pub cap: CredentialCap,
}

/// Where an action takes place: an agency, or one account of it.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// The agency that owns the resource.
    pub agency: &'a AgencyId,
    /// The account, for account-level resources.
    pub account: Option<&'a AccountId>,
}

/// Why a decision came out as it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Granted by these grants.
    Granted {
        via: Vec<GrantSource>,
        cross_tenant: bool,
    },
    /// The target belongs to another agency (answered as "not found").
    OtherTenant,
    /// No binding covering the target grants the permission.
    NotGranted,
    /// A binding grants it, but the credential's scopes do not.
    OutsideCredentialScope,
    /// The credential is bound to another account.
    OutsideCredentialAccount,
    /// RBAC allowed it, but a Cedar policy forbade it (or no conditional permit held).
    DeniedByPolicy {
        /// The deciding policies (`pol_…#n`), if any.
        policies: Vec<String>,
    },
    /// A policy failed to evaluate (or no longer compiles): denied, fail closed.
    PolicyError {
        /// What went wrong.
        errors: Vec<String>,
    },
    /// The target account is suspended: only its administration (read, suspend/reinstate,
    /// delete, its audit trail) is allowed until it is reinstated.
    AccountSuspended,
}

impl Reason {
    /// A stable snake_case code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Granted { .. } => "granted",
            Self::OtherTenant => "other_tenant",
            Self::NotGranted => "not_granted",
            Self::OutsideCredentialScope => "outside_credential_scope",
            Self::OutsideCredentialAccount => "outside_credential_account",
            Self::DeniedByPolicy { .. } => "denied_by_policy",
            Self::PolicyError { .. } => "policy_error",
            Self::AccountSuspended => "account_suspended",
        }
    }
}

/// An authorization decision with its reasons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The answer.
    pub allowed: bool,
    /// Why: on allow, the grants; on deny, what denied.
    pub reason: Reason,
}

/// The catalog indices the engine needs to know by role.
#[derive(Clone, Copy, Debug)]
pub struct EngineConfig {
    /// `platform.cross_tenant`: lets platform staff act inside any agency.
    pub cross_tenant: PermissionIndex,
}

impl Subject {
    /// The grants that apply to `target`, and whether they apply across tenants.
    fn applicable<'s>(
        &'s self,
        target: Target<'s>,
        cfg: EngineConfig,
    ) -> Result<(impl Iterator<Item = &'s Grant> + 's, bool), Reason> {
        let cross_tenant = if *target.agency == self.agency {
            false
        } else {
            let platform_wide = self
                .grants
                .iter()
                .filter(|g| g.account.is_none())
                .fold(PermissionSet::EMPTY, |acc, g| acc.union(&g.permissions));
            let capped = match &self.cap.permissions {
                Some(cap) => platform_wide.intersect(cap),
                None => platform_wide,
            };
            if !(self.is_platform && capped.contains(cfg.cross_tenant)) {
                return Err(Reason::OtherTenant);
            }
            true
        };
        if let Some(bound) = &self.cap.account {
            if target.account != Some(bound) {
                return Err(Reason::OutsideCredentialAccount);
            }
        }
        let iter = self.grants.iter().filter(move |g| match &g.account {
            None => true,
            // INVARIANT: an account binding never covers an agency-level target nor
            // another account, and never applies across tenants.
            Some(acc) => !cross_tenant && target.account == Some(acc),
        });
        Ok((iter, cross_tenant))
    }

    /// The permissions the subject may exercise at `target`, capped by its credential.
    pub fn effective(&self, target: Target<'_>, cfg: EngineConfig) -> PermissionSet {
        let Ok((grants, _)) = self.applicable(target, cfg) else {
            return PermissionSet::EMPTY;
        };
        let held = grants.fold(PermissionSet::EMPTY, |acc, g| acc.union(&g.permissions));
        match &self.cap.permissions {
            Some(cap) => held.intersect(cap),
            None => held,
        }
    }
}

/// Decides whether `subject` may exercise `permission` at `target`.
pub fn authorize(
    subject: &Subject,
    permission: PermissionIndex,
    target: Target<'_>,
    cfg: EngineConfig,
) -> Decision {
    let deny = |reason| Decision {
        allowed: false,
        reason,
    };
    let (grants, cross_tenant) = match subject.applicable(target, cfg) {
        Ok(x) => x,
        Err(reason) => return deny(reason),
    };
    let via: Vec<GrantSource> = grants
        .filter(|g| g.permissions.contains(permission))
        .map(|g| g.source.clone())
        .collect();
    if via.is_empty() {
        return deny(Reason::NotGranted);
    }
    if let Some(cap) = &subject.cap.permissions {
        if !cap.contains(permission) {
            return deny(Reason::OutsideCredentialScope);
        }
    }
    Decision {
        allowed: true,
        reason: Reason::Granted { via, cross_tenant },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    fn ix(i: u16) -> PermissionIndex {
        PermissionIndex(i)
    }
    const CFG: EngineConfig = EngineConfig {
        cross_tenant: PermissionIndex(200),
    };

    struct World {
        agencies: Vec<AgencyId>,
        accounts: Vec<AccountId>,
        rng: rand::rngs::StdRng,
    }
    impl World {
        fn new() -> Self {
            let mut rng = rand::rngs::StdRng::seed_from_u64(1);
            let agencies = (0..3).map(|i| AgencyId::generate_at(i, &mut rng)).collect();
            let accounts = (0..4)
                .map(|i| AccountId::generate_at(i, &mut rng))
                .collect();
            Self {
                agencies,
                accounts,
                rng,
            }
        }
        fn binding(&mut self) -> BindingId {
            BindingId::generate_at(1, &mut self.rng)
        }
    }

    #[test]
    fn agency_binding_covers_accounts_but_account_binding_not_the_agency() {
        let mut w = World::new();
        let (agy, acc) = (w.agencies[0].clone(), w.accounts[0].clone());
        let s = Subject {
            agency: agy.clone(),
            is_platform: false,
            grants: vec![
                Grant {
                    source: GrantSource::Binding(w.binding()),
                    account: None,
                    permissions: [ix(1)].into_iter().collect(),
                },
                Grant {
                    source: GrantSource::Binding(w.binding()),
                    account: Some(acc.clone()),
                    permissions: [ix(2)].into_iter().collect(),
                },
            ],
            cap: CredentialCap::default(),
        };
        let at_acc = Target {
            agency: &agy,
            account: Some(&acc),
        };
        let at_agy = Target {
            agency: &agy,
            account: None,
        };
        let at_other_acc = Target {
            agency: &agy,
            account: Some(&w.accounts[1]),
        };
        assert!(authorize(&s, ix(1), at_acc, CFG).allowed);
        assert!(authorize(&s, ix(2), at_acc, CFG).allowed);
        assert!(authorize(&s, ix(1), at_agy, CFG).allowed);
        assert_eq!(authorize(&s, ix(2), at_agy, CFG).reason, Reason::NotGranted);
        assert_eq!(
            authorize(&s, ix(2), at_other_acc, CFG).reason,
            Reason::NotGranted
        );
        let other = Target {
            agency: &w.agencies[1],
            account: None,
        };
        assert_eq!(authorize(&s, ix(1), other, CFG).reason, Reason::OtherTenant);
    }

    #[test]
    fn credential_cap_and_account_binding_narrow() {
        let mut w = World::new();
        let (agy, acc) = (w.agencies[0].clone(), w.accounts[0].clone());
        let s = Subject {
            agency: agy.clone(),
            is_platform: false,
            grants: vec![Grant {
                source: GrantSource::Binding(w.binding()),
                account: None,
                permissions: [ix(1), ix(2)].into_iter().collect(),
            }],
            cap: CredentialCap {
                permissions: Some([ix(1)].into_iter().collect()),
                account: Some(acc.clone()),
            },
        };
        let at_acc = Target {
            agency: &agy,
            account: Some(&acc),
        };
        assert!(authorize(&s, ix(1), at_acc, CFG).allowed);
        assert_eq!(
            authorize(&s, ix(2), at_acc, CFG).reason,
            Reason::OutsideCredentialScope
        );
        assert_eq!(
            authorize(
                &s,
                ix(1),
                Target {
                    agency: &agy,
                    account: None
                },
                CFG
            )
            .reason,
            Reason::OutsideCredentialAccount
        );
    }

    #[test]
    fn platform_staff_cross_tenants_only_with_the_permission_and_scope() {
        let mut w = World::new();
        let platform = w.agencies[2].clone();
        let grant = Grant {
            source: GrantSource::Binding(w.binding()),
            account: None,
            permissions: [ix(1), ix(200)].into_iter().collect(),
        };
        let mut s = Subject {
            agency: platform,
            is_platform: true,
            grants: vec![grant],
            cap: CredentialCap::default(),
        };
        let t = Target {
            agency: &w.agencies[0],
            account: Some(&w.accounts[0]),
        };
        assert!(matches!(
            authorize(&s, ix(1), t, CFG).reason,
            Reason::Granted {
                cross_tenant: true,
                ..
            }
        ));
        s.cap.permissions = Some([ix(1)].into_iter().collect());
        assert_eq!(authorize(&s, ix(1), t, CFG).reason, Reason::OtherTenant);
        s.cap.permissions = None;
        s.is_platform = false;
        assert_eq!(authorize(&s, ix(1), t, CFG).reason, Reason::OtherTenant);
    }

    fn arb_set() -> impl Strategy<Value = PermissionSet> {
        proptest::collection::vec(0u16..8, 0..6)
            .prop_map(|v| v.into_iter().map(PermissionIndex).collect())
    }

    proptest! {
        /// I2 and I3: whatever the grants and cap, an allowed permission is in the cap, in a
        /// grant covering the target, and inside the subject's own agency.
        #[test]
        fn allowed_implies_granted_capped_and_same_tenant(
            grants in proptest::collection::vec((arb_set(), proptest::option::of(0usize..4)), 0..5),
            cap in proptest::option::of(arb_set()),
            cap_acc in proptest::option::of(0usize..4),
            target_agy in 0usize..3,
            target_acc in proptest::option::of(0usize..4),
            perm in 0u16..8,
        ) {
            let mut w = World::new();
            let grants: Vec<Grant> = grants.into_iter().map(|(p, a)| Grant {
                source: GrantSource::Binding(w.binding()), account: a.map(|i| w.accounts[i].clone()), permissions: p,
            }).collect();
            let s = Subject {
                agency: w.agencies[0].clone(), is_platform: false, grants: grants.clone(),
                cap: CredentialCap { permissions: cap, account: cap_acc.map(|i| w.accounts[i].clone()) },
            };
            let t = Target { agency: &w.agencies[target_agy], account: target_acc.map(|i| &w.accounts[i]) };
            let d = authorize(&s, ix(perm), t, CFG);
            let eff = s.effective(t, CFG);
            prop_assert_eq!(d.allowed, eff.contains(ix(perm)));
            if d.allowed {
                prop_assert_eq!(target_agy, 0);
                prop_assert!(cap.is_none_or(|c| c.contains(ix(perm))));
                prop_assert!(grants.iter().any(|g| g.permissions.contains(ix(perm))
                    && (g.account.is_none() || g.account.as_ref() == t.account)));
            }
            let all = grants.iter().fold(PermissionSet::EMPTY, |a, g| a.union(&g.permissions));
            prop_assert!(eff.is_subset(&all));
        }
    }
}
