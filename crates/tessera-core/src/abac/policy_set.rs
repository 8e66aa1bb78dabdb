//! A compiled set of ABAC policies: the platform's and one agency's, parsed once, renamed
//! `<record>#<n>`, with their coverage and what they observe.
//! INVARIANT: compiling checks bounds before parsing (like validation); policy ids are unique
//! across a set, and the baseline permit's id holds no `#`, so it never equals a policy's.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use cedar_policy::{Policy, PolicyId, Schema};

use super::bounds::{check_text_bounds, on_parser_stack, parse_bounded};
use super::coverage::{Coverage, Observed};
use super::diagnostic::{default_index, PolicyDiagnostic};
use super::request::Types;

/// The id of the baseline `permit` added for actions that no `permit` covers.
/// It holds no `#`, so it can never equal a `<record>#<n>` id.
pub(super) const BASELINE_ID: &str = "tessera:baseline";
pub(super) const BASELINE_TEXT: &str = "permit(principal, action, resource);";

#[derive(Debug)]
pub(super) struct Compiled {
    /// The policies as written, each with id `<record>#<n>`.
    pub(super) policies: cedar_policy::PolicySet,
    /// The same plus the baseline permit, for actions that no permit covers.
    pub(super) with_baseline: cedar_policy::PolicySet,
    pub(super) coverage: Coverage,
    pub(super) observed: Observed,
    pub(super) types: Types,
}

/// A compiled set of ABAC policies: the platform's and one agency's, ready to evaluate.
///
/// Cheap to clone (shared). Each Cedar policy is named `<record>#<n>`: the policy record's id
/// (`pol_…`, or `platform:<n>` for platform-wide ones) and the policy's position in its text.
#[derive(Clone)]
pub struct PolicySet {
    pub(super) inner: Arc<Compiled>,
}

impl fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.inner.coverage;
        f.debug_struct("PolicySet")
            .field("forbids", &c.forbid_count)
            .field("permits", &c.permit_count)
            .field("named_actions", &c.actions.len())
            .field("any_action", &c.any_action)
            .finish()
    }
}

impl PolicySet {
    /// Compiles policy records `(record id, Cedar text)`; a text may hold several policies.
    ///
    /// To combine platform-wide and agency policies, pass both lists chained (platform first),
    /// or compile them apart and [`PolicySet::merge`] them. Texts are parsed, not validated:
    /// [`validate_policies`] is the gate at write time, and a stored policy that no longer
    /// type-checks (the catalog changed) errors at evaluation, which denies.
    pub fn compile(
        schema: &Schema,
        sources: &[(String, String)],
    ) -> Result<Self, Vec<PolicyDiagnostic>> {
        for (record, text) in sources {
            check_text_bounds(text).map_err(|d| vec![d.in_record(record)])?;
        }
        // One parser thread for the whole set (an agency's first check pays for it once).
        let parsed: Vec<_> = on_parser_stack(|| {
            sources
                .iter()
                .map(|(_, text)| parse_bounded(text))
                .collect::<Vec<_>>()
        })
        .map_err(|d| vec![d])?;
        let mut diagnostics = Vec::new();
        let mut policies = cedar_policy::PolicySet::new();
        let mut records = HashSet::new();
        for ((record, _), parsed) in sources.iter().zip(parsed) {
            if !records.insert(record.as_str()) {
                diagnostics.push(PolicyDiagnostic::plain(format!(
                    "policy record `{record}` is given twice"
                )));
                continue;
            }
            let parsed = match parsed {
                Ok(parsed) => parsed,
                Err(ds) => {
                    diagnostics.extend(ds.into_iter().map(|d| d.in_record(record)));
                    continue;
                }
            };
            for (i, policy) in parsed.policies().enumerate() {
                let n = default_index(policy.id()).unwrap_or(i);
                let renamed = policy.new_id(PolicyId::new(format!("{record}#{n}")));
                if let Err(e) = policies.add(renamed) {
                    diagnostics.push(PolicyDiagnostic {
                        policy_index: Some(n),
                        ..PolicyDiagnostic::plain(e.to_string()).in_record(record)
                    });
                }
            }
        }
        if !diagnostics.is_empty() {
            return Err(diagnostics);
        }
        let types = Types::from_schema(schema).map_err(|e| vec![PolicyDiagnostic::plain(e)])?;
        Self::assemble(policies, types).map_err(|e| vec![PolicyDiagnostic::plain(e)])
    }

    /// An empty set: nothing applies, nothing is evaluated.
    pub fn empty(schema: &Schema) -> Result<Self, String> {
        Self::assemble(cedar_policy::PolicySet::new(), Types::from_schema(schema)?)
    }

    /// The platform-wide policies on top of one agency's: both apply to every check of the
    /// agency. Both sets must come from the same schema; a policy id in both is an error.
    pub fn merge(platform: &PolicySet, agency: &PolicySet) -> Result<PolicySet, String> {
        if agency.is_empty() {
            return Ok(platform.clone());
        }
        if platform.is_empty() {
            return Ok(agency.clone());
        }
        let mut policies = platform.inner.policies.clone();
        for policy in agency.inner.policies.policies() {
            policies
                .add(policy.clone())
                .map_err(|e| format!("cannot merge policy `{}`: {e}", policy.id()))?;
        }
        Self::assemble(policies, agency.inner.types.clone())
    }

    fn assemble(policies: cedar_policy::PolicySet, types: Types) -> Result<Self, String> {
        let mut coverage = Coverage::default();
        let mut observed = Observed::default();
        for policy in policies.policies() {
            coverage.add(policy);
            observed.add(policy);
        }
        let observed = observed.finish();
        let baseline = Policy::parse(Some(PolicyId::new(BASELINE_ID)), BASELINE_TEXT)
            .map_err(|e| format!("baseline policy: {e}"))?;
        let mut with_baseline = policies.clone();
        with_baseline
            .add(baseline)
            .map_err(|e| format!("baseline policy: {e}"))?;
        Ok(Self {
            inner: Arc::new(Compiled {
                policies,
                with_baseline,
                coverage,
                observed,
                types,
            }),
        })
    }

    /// Whether some policy covers `action` (O(1)); when not, [`evaluate`](Self::evaluate) is free.
    pub fn applies(&self, action: &str) -> bool {
        self.inner.coverage.covers(action)
    }

    /// Whether the set holds no policy.
    pub fn is_empty(&self) -> bool {
        self.inner.policies.is_empty()
    }

    /// The number of Cedar policies.
    pub fn len(&self) -> usize {
        self.inner.policies.num_of_policies()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abac::test_support::{compile, schema, Check, CHEAP_DEALS, MFA_DELETE};

    #[test]
    fn platform_and_agency_policies_merge() {
        let platform =
            PolicySet::compile(schema(), &[("platform:0".into(), MFA_DELETE.into())]).unwrap();
        let agency = compile(&[CHEAP_DEALS]);
        let merged = PolicySet::merge(&platform, &agency).unwrap();
        assert_eq!(merged.len(), 2);
        assert!(merged.applies("contacts.delete") && merged.applies("opportunities.write"));
        assert_eq!(
            Check::new("contacts.delete", "contact")
                .eval(&merged)
                .determining,
            vec!["platform:0#0".to_owned()]
        );
        assert!(PolicySet::merge(&agency, &agency).is_err());
        let empty = PolicySet::empty(schema()).unwrap();
        assert!(empty.is_empty() && !empty.applies("contacts.delete"));
        assert_eq!(PolicySet::merge(&platform, &empty).unwrap().len(), 1);
        assert!(format!("{merged:?}").contains("forbids: 1"));
        // Chained sources compile alike; a record given twice or a bad text is named.
        let err = PolicySet::compile(
            schema(),
            &[
                ("pol_a".into(), MFA_DELETE.into()),
                ("pol_a".into(), MFA_DELETE.into()),
            ],
        )
        .unwrap_err();
        assert!(err[0].message.contains("`pol_a`"), "{err:?}");
        let err = PolicySet::compile(schema(), &[("pol_b".into(), "forbid(".into())]).unwrap_err();
        assert!(
            err[0].message.starts_with("policy record `pol_b`"),
            "{err:?}"
        );
        assert_eq!(err[0].line, Some(1));
    }
}
