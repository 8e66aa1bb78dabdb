//! The whole authorization answer of one check (DESIGN §6 steps 2–4): the RBAC index answer
//! combined with the Cedar policies of the agency, and of the platform for break-glass.
//! A pure function: storage loads the index answer, the policy sets and the catalog before
//! the call, and the time comes in as a parameter. INVARIANT (I2): Cedar only narrows an RBAC
//! allow, and is not run on an RBAC deny. INVARIANT (I3): policies that error or no longer
//! compile deny; break-glass is refused when the platform's own policies do not compile.

use serde_json::{Map, Value};

use crate::abac::{AbacRequest, PolicySet, PrincipalKind};
use crate::authz::{Decision, Reason};
use crate::catalog::Catalog;
use crate::ids::{AccountId, AgencyId, PrincipalId};
use crate::index::AgencyIndex;
use crate::permission::PermissionIndex;

/// The permissions on which platform staff acting in an agency are not subject to that
/// agency's own policies: an agency cannot lock the platform out of reading, fixing or
/// deleting it. Only the platform's own policies may refuse them (every override is audited
/// as `platform.break_glass` by the caller).
pub const BREAK_GLASS_PERMISSIONS: [&str; 6] = [
    "agencies.read",
    "agencies.update",
    "agencies.delete",
    "agencies.suspend",
    "policies.read",
    "policies.write",
];

/// A set of Cedar policies as loaded for a check.
#[derive(Clone, Copy, Debug)]
pub enum Policies<'a> {
    /// There are none: nothing narrows RBAC.
    None,
    /// These (for an agency: the platform's merged with the agency's).
    Set(&'a PolicySet),
    /// The stored policies no longer compile: every check they would see is denied.
    Broken,
}

/// What the Cedar step reads of one check besides the permission, loaded before the call.
#[derive(Clone, Copy)]
pub struct PolicyInput<'a> {
    /// Who acts.
    pub principal: &'a PrincipalId,
    /// The principal's own agency (the platform's agency for platform staff).
    pub principal_agency: &'a AgencyId,
    /// Whether `principal_agency` is the platform tenant.
    pub is_platform: bool,
    /// The index of the principal's own agency: the principal's role names come from it, read
    /// only when some policy applies.
    pub home: &'a AgencyIndex,
    /// Whether the credential acts for someone else (an `act` claim, RFC 8693 §4.1): the
    /// default of the `impersonating` context key.
    pub impersonating: bool,
    /// The agency that owns the resource.
    pub agency: &'a AgencyId,
    /// The account that owns the resource, for account-level resources.
    pub account: Option<&'a AccountId>,
    /// The resource's id, if one.
    pub resource_id: Option<&'a str>,
    /// The resource's catalog attributes.
    pub attributes: &'a Map<String, Value>,
    /// The request context as the caller gave it (`ip`, `time`, `mfa`, …).
    pub context: &'a Map<String, Value>,
    /// The time of the check, epoch milliseconds: `time` defaults to it, in seconds. Read only
    /// when a policy applies and the caller left `time` out, so a check no policy narrows never
    /// reads the clock.
    pub now_millis: &'a dyn Fn() -> i64,
}

impl std::fmt::Debug for PolicyInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyInput")
            .field("principal", self.principal)
            .field("agency", self.agency)
            .field("account", &self.account)
            .field("resource_id", &self.resource_id)
            .field("context", self.context)
            .finish_non_exhaustive()
    }
}

/// A decision of RBAC and the policies together, with its reasons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The answer.
    pub allowed: bool,
    /// Why: on allow, the grants; on deny, what denied.
    pub reason: Reason,
    /// Set only on an allow by break-glass: the agency policies' denial that was overridden,
    /// for the audit log.
    pub break_glass: Option<Reason>,
}

impl From<Decision> for Outcome {
    fn from(d: Decision) -> Self {
        Self {
            allowed: d.allowed,
            reason: d.reason,
            break_glass: None,
        }
    }
}

/// Decides a check that the RBAC index (with the credential's cap) answered `rbac`.
///
/// - RBAC denied → that answer, and Cedar is not run.
/// - Otherwise the agency's policies (`agency_policies`) are evaluated; if they allow, the
///   RBAC answer stands. If they deny, the decision is denied with their reason
///   ([`Reason::DeniedByPolicy`] naming the deciding policies, or [`Reason::PolicyError`]) —
/// - unless it is break-glass: a platform principal acting in another agency on one of the
///   [`BREAK_GLASS_PERMISSIONS`], which the platform's own policies (`platform_policies`,
///   evaluated alone) allow. Then it is allowed with the RBAC reason, and
///   [`Outcome::break_glass`] carries the agency's overridden denial for the audit log.
pub fn decide(
    rbac: Decision,
    catalog: &Catalog,
    permission: PermissionIndex,
    input: &PolicyInput<'_>,
    agency_policies: Policies<'_>,
    platform_policies: Policies<'_>,
) -> Outcome {
    if !rbac.allowed {
        return rbac.into();
    }
    let denied = match agency_policies {
        Policies::None => None,
        Policies::Set(policies) => evaluate_policies(catalog, policies, permission, input),
        Policies::Broken => Some(Reason::PolicyError {
            errors: vec!["the agency's stored policies no longer compile".into()],
        }),
    };
    let Some(reason) = denied else {
        return rbac.into();
    };
    let glass = input.is_platform
        && input.agency != input.principal_agency
        && catalog
            .permission_def(permission)
            .is_some_and(|def| BREAK_GLASS_PERMISSIONS.contains(&def.name.as_str()))
        && match platform_policies {
            Policies::None => true,
            Policies::Set(platform) => {
                evaluate_policies(catalog, platform, permission, input).is_none()
            }
            Policies::Broken => false,
        };
    if glass {
        Outcome {
            allowed: rbac.allowed,
            reason: rbac.reason,
            break_glass: Some(reason),
        }
    } else {
        Outcome {
            allowed: false,
            reason,
            break_glass: None,
        }
    }
}

/// Evaluates `policies` for a check RBAC allowed: `Some(reason)` if they deny it, `None` if
/// they allow it, apply to nothing here, or `permission` is not in the catalog.
///
/// The schema makes the context keys `time`, `mfa` and `impersonating` required; what the
/// caller left out is filled: `time` with `now_millis / 1000`, `mfa` with `false` and
/// `impersonating` with [`PolicyInput::impersonating`] (no MFA is the safe assumption).
pub fn evaluate_policies(
    catalog: &Catalog,
    policies: &PolicySet,
    permission: PermissionIndex,
    input: &PolicyInput<'_>,
) -> Option<Reason> {
    let def = catalog.permission_def(permission)?;
    if !policies.applies(&def.name) {
        return None;
    }
    let roles = input.home.role_names(input.principal);
    let mut context = input.context.clone();
    context
        .entry("time")
        .or_insert_with(|| Value::from((input.now_millis)() / 1000));
    context.entry("mfa").or_insert(Value::Bool(false));
    context
        .entry("impersonating")
        .or_insert(Value::Bool(input.impersonating));
    let req = AbacRequest {
        principal_type: match input.principal {
            PrincipalId::User(_) => PrincipalKind::User,
            // An installation is a machine credential too.
            PrincipalId::Key(_) | PrincipalId::Installation(_) => PrincipalKind::ApiKey,
        },
        principal_id: input.principal.as_str(),
        principal_agency: input.principal_agency.as_str(),
        principal_roles: &roles,
        action: &def.name,
        resource_type: &def.resource,
        resource_id: input.resource_id,
        resource_agency: input.agency.as_str(),
        resource_account: input.account.map(AccountId::as_str),
        resource_attributes: input.attributes,
        context: &context,
    };
    let out = policies.evaluate(&req);
    if out.allowed {
        None
    } else if !out.errors.is_empty() {
        Some(Reason::PolicyError { errors: out.errors })
    } else {
        Some(Reason::DeniedByPolicy {
            policies: out.determining,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::OnceLock;

    use rand::SeedableRng;
    use serde_json::json;

    use super::*;
    use crate::abac::cedar_schema;
    use crate::authz::GrantSource;
    use crate::ids::{BindingId, UserId};
    use crate::index::{BuiltinRoles, IndexInput};

    fn catalog() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| Catalog::default_catalog().unwrap())
    }

    fn compile(record: &str, text: &str) -> PolicySet {
        let schema = cedar_schema(catalog()).unwrap();
        PolicySet::compile(&schema, &[(record.to_owned(), text.to_owned())]).unwrap()
    }

    fn perm(name: &str) -> PermissionIndex {
        catalog().permission(name).unwrap()
    }

    const FORBID_DELETE: &str = r#"forbid(principal, action == Tessera::Action::"contacts.delete", resource) unless { context.mfa };"#;
    const FORBID_AGENCY_READ: &str =
        r#"forbid(principal, action == Tessera::Action::"agencies.read", resource);"#;

    /// A user of `home` (bound as `agency_admin` there), checked at `agency`.
    struct World {
        principal: PrincipalId,
        home: AgencyIndex,
        other: AgencyId,
        empty: Map<String, Value>,
    }

    impl World {
        fn new(is_platform: bool) -> Self {
            let mut rng = rand::rngs::StdRng::seed_from_u64(9);
            let agency = AgencyId::generate_at(1, &mut rng);
            let other = AgencyId::generate_at(2, &mut rng);
            let principal = PrincipalId::User(UserId::generate_at(1, &mut rng));
            let input = IndexInput {
                roles: Vec::new(),
                bindings: vec![(
                    BindingId::generate_at(1, &mut rng),
                    principal.clone(),
                    "agency_admin".into(),
                    None,
                )],
            };
            let builtin = BuiltinRoles::new(catalog());
            let (home, _) = AgencyIndex::build(agency, is_platform, 1, builtin, input);
            Self {
                principal,
                home,
                other,
                empty: Map::new(),
            }
        }

        /// A check at the principal's own agency, or (`cross`) at the other one.
        fn input<'a>(&'a self, cross: bool, context: &'a Map<String, Value>) -> PolicyInput<'a> {
            PolicyInput {
                principal: &self.principal,
                principal_agency: self.home.agency(),
                is_platform: self.home.is_platform(),
                home: &self.home,
                impersonating: false,
                agency: if cross {
                    &self.other
                } else {
                    self.home.agency()
                },
                account: None,
                resource_id: None,
                attributes: &self.empty,
                context,
                now_millis: &|| 1_700_000_000_000,
            }
        }
    }

    fn granted() -> Decision {
        Decision {
            allowed: true,
            reason: Reason::Granted {
                via: vec![GrantSource::Binding(BindingId::generate_at(
                    1,
                    &mut rand::rngs::StdRng::seed_from_u64(1),
                ))],
                cross_tenant: false,
            },
        }
    }

    fn denied(reason: Reason) -> Decision {
        Decision {
            allowed: false,
            reason,
        }
    }

    #[test]
    fn an_rbac_deny_is_final_and_cedar_is_not_run() {
        let w = World::new(false);
        let input = w.input(false, &w.empty);
        let forbid = compile("pol_a", FORBID_DELETE);
        for rbac in [
            denied(Reason::NotGranted),
            denied(Reason::OtherTenant),
            denied(Reason::OutsideCredentialScope),
        ] {
            for policies in [Policies::Set(&forbid), Policies::Broken, Policies::None] {
                let d = decide(
                    rbac.clone(),
                    catalog(),
                    perm("contacts.delete"),
                    &input,
                    policies,
                    Policies::Broken,
                );
                // Had Cedar run, the reason would name the policy or its error.
                assert_eq!(d, Outcome::from(rbac.clone()));
            }
        }
    }

    #[test]
    fn a_forbid_turns_an_rbac_allow_into_a_deny_naming_the_policy() {
        let w = World::new(false);
        let forbid = compile("pol_a", FORBID_DELETE);
        let d = decide(
            granted(),
            catalog(),
            perm("contacts.delete"),
            &w.input(false, &w.empty),
            Policies::Set(&forbid),
            Policies::None,
        );
        assert_eq!(
            d,
            Outcome::from(denied(Reason::DeniedByPolicy {
                policies: vec!["pol_a#0".into()]
            }))
        );
        // The same policy with its condition met lets RBAC's answer stand.
        let mfa = json!({"mfa": true}).as_object().cloned().unwrap();
        let d = decide(
            granted(),
            catalog(),
            perm("contacts.delete"),
            &w.input(false, &mfa),
            Policies::Set(&forbid),
            Policies::None,
        );
        assert_eq!(d, Outcome::from(granted()));
    }

    #[test]
    fn an_allow_without_applicable_policy_stays_an_allow() {
        let w = World::new(false);
        let forbid = compile("pol_a", FORBID_DELETE);
        for (permission, policies) in [
            ("contacts.delete", Policies::None),
            // The set covers another action only.
            ("contacts.read", Policies::Set(&forbid)),
        ] {
            let d = decide(
                granted(),
                catalog(),
                perm(permission),
                &w.input(false, &w.empty),
                policies,
                Policies::Broken,
            );
            assert_eq!(d, Outcome::from(granted()));
        }
    }

    #[test]
    fn broken_or_erroring_policies_deny() {
        let w = World::new(false);
        let input = w.input(false, &w.empty);
        let d = decide(
            granted(),
            catalog(),
            perm("contacts.read"),
            &input,
            Policies::Broken,
            Policies::None,
        );
        assert_eq!(d.reason.code(), "policy_error");
        assert!(!d.allowed && d.break_glass.is_none());
        let reads_missing = compile(
            "pol_e",
            r#"forbid(principal, action == Tessera::Action::"contacts.read", resource) when { resource.lead_score > 90 };"#,
        );
        let d = decide(
            granted(),
            catalog(),
            perm("contacts.read"),
            &input,
            Policies::Set(&reads_missing),
            Policies::None,
        );
        assert!(
            matches!(&d.reason, Reason::PolicyError { errors } if errors[0].contains("pol_e#0")),
            "{d:?}"
        );
    }

    #[test]
    fn the_context_defaults_are_filled_and_the_callers_values_win() {
        let w = World::new(false);
        // Denies unless every default is what the server fills: the time in seconds, no MFA,
        // not impersonating; and the principal's roles come from its home index.
        let strict = compile(
            "pol_c",
            r#"forbid(principal, action == Tessera::Action::"contacts.read", resource)
               unless { context.time == 1700000000 && !context.mfa && !context.impersonating
                        && principal.roles.contains("agency_admin") };"#,
        );
        let check = |input: &PolicyInput<'_>| {
            evaluate_policies(catalog(), &strict, perm("contacts.read"), input)
        };
        assert_eq!(check(&w.input(false, &w.empty)), None);
        let mut input = w.input(false, &w.empty);
        input.impersonating = true;
        assert!(check(&input).is_some());
        input.now_millis = &|| 1_700_000_001_000;
        input.impersonating = false;
        assert!(check(&input).is_some());
        let given = json!({"time": 1_700_000_000, "impersonating": false, "mfa": true});
        let given = given.as_object().cloned().unwrap();
        assert!(check(&w.input(false, &given)).is_some());
        // An unknown permission is not the policies' business (RBAC never grants it).
        assert_eq!(
            evaluate_policies(
                catalog(),
                &strict,
                PermissionIndex(u16::MAX),
                &w.input(false, &w.empty)
            ),
            None
        );
    }

    #[test]
    fn break_glass_asks_the_platform_policies_only() {
        let staff = World::new(true);
        let agency_forbids = compile("pol_a", FORBID_AGENCY_READ);
        let platform_forbids = compile("platform:0", FORBID_AGENCY_READ);
        let platform_other = compile("platform:1", FORBID_DELETE);
        let overridden = Reason::DeniedByPolicy {
            policies: vec!["pol_a#0".into()],
        };
        let run = |world: &World, cross: bool, permission: &str, platform: Policies<'_>| {
            decide(
                granted(),
                catalog(),
                perm(permission),
                &world.input(cross, &world.empty),
                Policies::Set(&agency_forbids),
                platform,
            )
        };
        // Platform staff in another agency: the agency's forbid is overridden, and reported.
        for platform in [Policies::None, Policies::Set(&platform_other)] {
            let d = run(&staff, true, "agencies.read", platform);
            assert!(d.allowed, "{d:?}");
            assert_eq!(d.reason, granted().reason);
            assert_eq!(d.break_glass, Some(overridden.clone()));
        }
        // The platform's own policies still bind, and broken ones refuse every override.
        let d = run(
            &staff,
            true,
            "agencies.read",
            Policies::Set(&platform_forbids),
        );
        assert_eq!(d, Outcome::from(denied(overridden.clone())));
        let d = run(&staff, true, "agencies.read", Policies::Broken);
        assert_eq!(d, Outcome::from(denied(overridden.clone())));
        // Not in their own agency, not for other permissions, not for agency principals.
        let d = run(&staff, false, "agencies.read", Policies::None);
        assert_eq!(d, Outcome::from(denied(overridden.clone())));
        let agency_user = World::new(false);
        let d = run(&agency_user, true, "agencies.read", Policies::None);
        assert_eq!(d, Outcome::from(denied(overridden)));
        let contacts = compile("pol_b", FORBID_DELETE);
        let d = decide(
            granted(),
            catalog(),
            perm("contacts.delete"),
            &staff.input(true, &staff.empty),
            Policies::Set(&contacts),
            Policies::None,
        );
        assert!(!d.allowed && d.break_glass.is_none(), "{d:?}");
        for name in BREAK_GLASS_PERMISSIONS {
            assert!(catalog().permission(name).is_some(), "{name}");
        }
    }
}
