//! Evaluation of a compiled policy set for one check that RBAC allowed (DESIGN §6 step 4).
//! INVARIANT (I2): ABAC only narrows, never grants: an action no policy covers is allowed
//! without running Cedar; otherwise `forbid` beats `permit`, and when permits cover the action
//! one must hold. INVARIANT (I3): an evaluation error, or a request that cannot be built, denies.

use cedar_policy::{AuthorizationError, Authorizer, Decision};
use serde::Serialize;

use super::coverage::Observed;
use super::policy_set::{PolicySet, BASELINE_ID};
use super::request::AbacRequest;

/// The ABAC answer for one check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AbacDecision {
    /// `false` only narrows an RBAC allow into a deny.
    pub allowed: bool,
    /// The Cedar policy ids (`<record>#<n>`) that decided: on allow, the satisfied conditional
    /// permits (empty when no policy applied or only forbids were considered); on deny, the
    /// satisfied forbids, else the policies that errored, else the conditional permits of the
    /// action, none of which held.
    pub determining: Vec<String>,
    /// Evaluation errors and request-building errors (each one denies).
    pub errors: Vec<String>,
}

impl AbacDecision {
    fn allow(determining: Vec<String>) -> Self {
        Self {
            allowed: true,
            determining,
            errors: Vec::new(),
        }
    }

    fn deny(determining: Vec<String>, errors: Vec<String>) -> Self {
        Self {
            allowed: false,
            determining,
            errors,
        }
    }
}

impl PolicySet {
    /// Evaluates the policies for a check RBAC already allowed (see the module header).
    pub fn evaluate(&self, req: &AbacRequest<'_>) -> AbacDecision {
        self.evaluate_observing(req, &self.inner.observed)
    }

    pub(super) fn evaluate_observing(
        &self,
        req: &AbacRequest<'_>,
        observed: &Observed,
    ) -> AbacDecision {
        let inner = &*self.inner;
        if !inner.coverage.covers(req.action) {
            return AbacDecision::allow(Vec::new());
        }
        let policies = if inner.coverage.has_permit(req.action) {
            &inner.policies
        } else {
            &inner.with_baseline
        };
        let (request, entities) = match inner.types.request(req, observed) {
            Ok(built) => built,
            Err(e) => return AbacDecision::deny(Vec::new(), vec![e]),
        };
        let response = Authorizer::new().is_authorized(&request, policies, &entities);
        let diagnostics = response.diagnostics();
        let errors: Vec<String> = diagnostics.errors().map(ToString::to_string).collect();
        let mut erroring: Vec<String> = diagnostics
            .errors()
            .map(|e| match e {
                AuthorizationError::PolicyEvaluationError(e) => e.policy_id().to_string(),
            })
            .collect();
        erroring.sort();
        erroring.dedup();
        let mut reason: Vec<String> = diagnostics
            .reason()
            .map(ToString::to_string)
            .filter(|id| id != BASELINE_ID)
            .collect();
        reason.sort();
        match response.decision() {
            Decision::Allow if errors.is_empty() => AbacDecision::allow(reason),
            Decision::Allow => AbacDecision::deny(erroring, errors),
            Decision::Deny if !reason.is_empty() => AbacDecision::deny(reason, errors),
            Decision::Deny if !erroring.is_empty() => AbacDecision::deny(erroring, errors),
            Decision::Deny => AbacDecision::deny(inner.coverage.permits_for(req.action), errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Map, Value};

    use super::*;
    use crate::abac::request::PrincipalKind;
    use crate::abac::test_support::{compile, obj, Check, CHEAP_DEALS, MFA_DELETE};

    #[test]
    fn a_satisfied_forbid_denies_and_names_the_policy() {
        let set = compile(&[MFA_DELETE]);
        assert_eq!(set.len(), 1);
        assert!(set.applies("contacts.delete"));
        let d = Check::new("contacts.delete", "contact").eval(&set);
        assert!(!d.allowed);
        assert_eq!(d.determining, vec!["pol_0#0".to_owned()]);
        assert!(d.errors.is_empty());

        let d = Check::new("contacts.delete", "contact")
            .ctx("mfa", json!(true))
            .eval(&set);
        assert_eq!(d, AbacDecision::allow(vec![]));
    }

    #[test]
    fn an_action_no_policy_mentions_is_not_evaluated() {
        let set = compile(&[MFA_DELETE]);
        assert!(!set.applies("contacts.read"));
        // Even a request that could not be built passes: Cedar is not run at all.
        let d = Check::new("contacts.read", "no_such_type").eval(&set);
        assert_eq!(d, AbacDecision::allow(vec![]));
        assert!(compile(&["forbid(principal, action, resource) when { false };"]).applies("x.y"));
    }

    #[test]
    fn a_conditional_permit_is_a_condition() {
        let set = compile(&[CHEAP_DEALS]);
        let check = |attrs: Value| {
            Check::new("opportunities.write", "opportunity")
                .attrs(attrs)
                .eval(&set)
        };
        let d = check(json!({"value": 500, "stage": "won"}));
        assert!(d.allowed, "{d:?}");
        assert_eq!(d.determining, vec!["pol_0#0".to_owned()]);
        let d = check(json!({"value": 20000}));
        assert!(!d.allowed);
        assert_eq!(d.determining, vec!["pol_0#0".to_owned()]);
        assert!(d.errors.is_empty());
        let d = check(json!({}));
        assert!(!d.allowed);
        assert_eq!(d.errors.len(), 1, "{d:?}");
        assert!(d.errors[0].contains("pol_0#0"), "{d:?}");
        // A value of the wrong type errors, which denies.
        assert!(!check(json!({"value": "500"})).allowed);
        // Other actions of the resource are untouched.
        assert!(!set.applies("opportunities.read"));
    }

    #[test]
    fn an_ip_condition_works() {
        let set = compile(&[
            r#"forbid(principal, action == Tessera::Action::"contacts.export", resource) unless { context.ip.isInRange(ip("10.0.0.0/8")) };"#,
        ]);
        let check = |ip: Value| {
            Check::new("contacts.export", "contact")
                .ctx("ip", ip)
                .eval(&set)
        };
        assert!(check(json!("10.1.2.3")).allowed);
        let d = check(json!("192.168.0.1"));
        assert!(!d.allowed && d.determining == ["pol_0#0"], "{d:?}");
        // A malformed address fails closed with the reason.
        let d = check(json!("not-an-ip"));
        assert!(!d.allowed && d.errors[0].contains("context"), "{d:?}");
        // No address: reading it errors, which denies.
        let d = Check::new("contacts.export", "contact").eval(&set);
        assert!(!d.allowed && !d.errors.is_empty(), "{d:?}");
    }

    #[test]
    fn an_evaluation_error_denies_and_is_reported() {
        let set = compile(&[
            r#"forbid(principal, action == Tessera::Action::"contacts.read", resource) when { resource.lead_score > 90 };"#,
        ]);
        let d = Check::new("contacts.read", "contact").eval(&set);
        assert!(!d.allowed);
        assert_eq!(d.determining, vec!["pol_0#0".to_owned()]);
        assert!(d.errors[0].contains("lead_score"), "{d:?}");
        assert!(
            Check::new("contacts.read", "contact")
                .attrs(json!({"lead_score": 10}))
                .eval(&set)
                .allowed
        );
        // Bad attribute shapes fail closed before Cedar runs.
        for bad in [
            json!({"lead_score": 1.5}),
            json!({"lead_score": ["a", 1]}),
            json!({"lead_score": {}}),
        ] {
            let d = Check::new("contacts.read", "contact").attrs(bad).eval(&set);
            assert!(!d.allowed && d.errors.len() == 1, "{d:?}");
        }
    }

    #[test]
    fn tenancy_roles_and_sets_are_visible_to_policies() {
        let set = compile(&[
            r#"forbid(principal, action, resource in Tessera::Account::"acc_1")
               when { resource.agency == "agy_1" && principal in Tessera::Agency::"agy_1"
                      && principal.roles.contains("account_user") && resource has tags
                      && resource.tags.contains("vip") && context.account == "acc_1" };"#,
        ]);
        let d = Check::new("contacts.read", "contact")
            .attrs(json!({"tags": ["vip", "x"], "agency": "agy_2"}))
            .ctx("account", json!("acc_1"))
            .ctx("unknown", json!({"ignored": true}))
            .eval(&set);
        assert!(!d.allowed && d.errors.is_empty(), "{d:?}");
        let d = Check::new("contacts.read", "contact")
            .attrs(json!({"tags": ["x"]}))
            .ctx("account", json!("acc_1"))
            .eval(&set);
        assert!(d.allowed, "{d:?}");
    }

    #[test]
    fn an_any_action_permit_conditions_every_action() {
        let set = compile(&["permit(principal, action, resource) when { context.mfa };"]);
        assert!(set.applies("contacts.read"));
        assert!(!Check::new("contacts.read", "contact").eval(&set).allowed);
        assert!(
            Check::new("contacts.read", "contact")
                .ctx("mfa", json!(true))
                .eval(&set)
                .allowed
        );
    }

    #[test]
    fn evaluation_time() {
        let build = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        let measure = |name: &str, set: &PolicySet, check: &Check| {
            let mut samples = Vec::with_capacity(10_000);
            for _ in 0..10_000 {
                let start = std::time::Instant::now();
                let d = check.eval(set);
                samples.push(start.elapsed());
                assert!(d.allowed, "{d:?}");
            }
            samples.sort();
            eprintln!(
                "abac evaluate, {name} ({build}): median {:?}, p99 {:?}, max {:?}",
                samples[samples.len() / 2],
                samples[samples.len() * 99 / 100],
                samples[samples.len() - 1]
            );
        };
        let check = Check::new("opportunities.write", "opportunity")
            .attrs(json!({"value": 500, "stage": "won", "owner_id": "usr_1"}))
            .ctx("ip", json!("10.0.0.1"))
            .ctx("mfa", json!(true));
        let two = compile(&[MFA_DELETE, CHEAP_DEALS]);
        measure("two small policies", &two, &check);
        // Reads everything: ip (an extension value), roles, an attribute and the tenancy.
        let heavy = compile(&[
            CHEAP_DEALS,
            r#"forbid(principal, action, resource in Tessera::Account::"acc_9")
               when { context has ip && !context.ip.isInRange(ip("10.0.0.0/8"))
                      && !principal.roles.contains("agency_admin") };"#,
        ]);
        measure("ip + roles + tenancy", &heavy, &check);
    }

    const ACTIONS: [&str; 4] = [
        "contacts.read",
        "contacts.write",
        "contacts.delete",
        "contacts.export",
    ];

    /// A forbid over some actions (`None`: every action) whose condition is `context.mfa`,
    /// `!context.mfa`, `true` or `false`.
    fn arb_forbid() -> impl Strategy<Value = (Option<Vec<usize>>, usize)> {
        (
            proptest::option::of(proptest::collection::vec(0..ACTIONS.len(), 1..3)),
            0usize..4,
        )
    }

    const CONDITIONS: [&str; 4] = ["context.mfa", "!context.mfa", "true", "false"];

    fn forbid_text(actions: &Option<Vec<usize>>, cond: usize) -> String {
        let scope = match actions {
            None => "action".to_owned(),
            Some(a) if a.len() == 1 => format!("action == Tessera::Action::\"{}\"", ACTIONS[a[0]]),
            Some(a) => format!(
                "action in [{}]",
                a.iter()
                    .map(|i| format!("Tessera::Action::\"{}\"", ACTIONS[*i]))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        format!(
            "forbid(principal, {scope}, resource) when {{ {} }};",
            CONDITIONS[cond]
        )
    }

    const POOL: [&str; 7] = [
        MFA_DELETE,
        r#"permit(principal, action == Tessera::Action::"contacts.write", resource) when { resource has lead_score && resource.lead_score < 50 };"#,
        r#"forbid(principal, action, resource in Tessera::Account::"acc_2");"#,
        r#"forbid(principal, action == Tessera::Action::"contacts.export", resource) when { context == {"time": 1, "mfa": false, "impersonating": false} };"#,
        r#"forbid(principal, action == Tessera::Action::"contacts.read", resource) unless { principal.roles.contains("agency_admin") };"#,
        r#"forbid(principal, action == Tessera::Action::"contacts.export", resource) when { context has ip && !context.ip.isInRange(ip("10.0.0.0/8")) };"#,
        r#"forbid(principal, action, resource) when { resource has tags && resource.tags.contains("vip") };"#,
    ];

    #[test]
    fn what_no_policy_names_is_left_out() {
        let set = compile(&[POOL[4]]);
        let seen = &set.inner.observed;
        assert!(seen.attribute("roles") && !seen.attribute("lead_score"));
        assert!(!seen.tenancy && !seen.whole_context && !seen.context_key("ip"));
        // An unobservable attribute of a bad shape is not even converted.
        let d = Check::new("contacts.read", "contact")
            .attrs(json!({"lead_score": {}}))
            .ctx("ip", json!("not-an-ip"))
            .eval(&set);
        assert!(!d.allowed && d.errors.is_empty(), "{d:?}");
        let set = compile(&[POOL[2], POOL[3]]);
        assert!(set.inner.observed.tenancy && set.inner.observed.whole_context);
    }

    proptest! {
        /// Leaving out what no policy names never changes a decision.
        #[test]
        fn leaving_out_the_unobserved_changes_nothing(
            policies in proptest::collection::btree_set(0..POOL.len(), 1..4),
            action in 0..ACTIONS.len(),
            lead_score in proptest::option::of(prop_oneof![Just(json!(10)), Just(json!(90)), Just(json!("10"))]),
            tags in proptest::option::of(prop_oneof![Just(json!(["vip"])), Just(json!(["x", "y"]))]),
            ip in proptest::option::of(prop_oneof![Just(json!("10.1.1.1")), Just(json!("8.8.8.8"))]),
            mfa: bool,
            admin: bool,
            account in prop_oneof![Just("acc_1"), Just("acc_2")],
        ) {
            let texts: Vec<&str> = policies.iter().map(|i| POOL[*i]).collect();
            let set = compile(&texts);
            let mut attrs = Map::new();
            if let Some(v) = lead_score { attrs.insert("lead_score".into(), v); }
            if let Some(v) = tags { attrs.insert("tags".into(), v); }
            attrs.insert("dnd".into(), json!(true));
            let mut context = obj(json!({"time": 1, "mfa": mfa, "impersonating": false}));
            if let Some(v) = ip { context.insert("ip".into(), v); }
            let roles = vec![if admin { "agency_admin" } else { "account_user" }.to_owned()];
            let req = AbacRequest {
                principal_type: PrincipalKind::ApiKey,
                principal_id: "key_1",
                principal_agency: "agy_1",
                principal_roles: &roles,
                action: ACTIONS[action],
                resource_type: "contact",
                resource_id: None,
                resource_agency: "agy_1",
                resource_account: Some(account),
                resource_attributes: &attrs,
                context: &context,
            };
            let everything = Observed { everything: true, ..Observed::default() }.finish();
            let full = set.evaluate_observing(&req, &everything);
            let pruned = set.evaluate(&req);
            prop_assert_eq!(&pruned.allowed, &full.allowed);
            prop_assert_eq!(&pruned.determining, &full.determining);
            prop_assert_eq!(pruned.errors.len(), full.errors.len());
        }

        /// I2/I3: a policy set that does not cover an action never denies it, and a satisfied
        /// forbid covering the action always denies it.
        #[test]
        fn forbids_deny_exactly_where_they_apply_and_hold(
            forbids in proptest::collection::vec(arb_forbid(), 0..4),
            action in 0..ACTIONS.len(),
            mfa: bool,
        ) {
            let texts: Vec<String> = forbids.iter().map(|(a, c)| forbid_text(a, *c)).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let set = compile(&refs);
            let d = Check::new(ACTIONS[action], "contact").ctx("mfa", json!(mfa)).eval(&set);
            prop_assert!(d.errors.is_empty());
            if !set.applies(ACTIONS[action]) {
                prop_assert!(d.allowed);
            }
            let satisfied: Vec<String> = forbids.iter().enumerate().filter(|(_, (a, c))| {
                a.as_ref().is_none_or(|a| a.contains(&action))
                    && match *c { 0 => mfa, 1 => !mfa, 2 => true, _ => false }
            }).map(|(i, _)| format!("pol_{i}#0")).collect();
            prop_assert_eq!(d.allowed, satisfied.is_empty());
            prop_assert_eq!(d.determining, satisfied);
        }
    }
}
