//! What the policies of a set cover (which actions, by action scope) and what they can observe
//! of a request (attribute names, context keys, tenancy), computed once per compiled set.
//! INVARIANT: both are over-approximations: an action a policy might apply to is covered, and
//! a name a policy might read is observed, so pruning by them never changes a decision.

use std::collections::{HashMap, HashSet};

use cedar_policy::{ActionConstraint, Effect, Policy};
use serde_json::Value;

use super::schema::NAMESPACE;

/// Which actions the policies of a set cover, by action scope.
#[derive(Clone, Debug, Default)]
pub(super) struct Coverage {
    /// Actions named by some policy (`action == A`, `action in [A, …]`).
    pub(super) actions: HashSet<String>,
    /// Some policy has an unconstrained action scope: it covers every action.
    pub(super) any_action: bool,
    /// Permit ids per named action.
    pub(super) permits: HashMap<String, Vec<String>>,
    /// Permits with an unconstrained action scope.
    pub(super) any_permits: Vec<String>,
    pub(super) forbid_count: usize,
    pub(super) permit_count: usize,
}

impl Coverage {
    pub(super) fn add(&mut self, policy: &Policy) {
        let permit = policy.effect() == Effect::Permit;
        if permit {
            self.permit_count += 1;
        } else {
            self.forbid_count += 1;
        }
        let id = policy.id().to_string();
        let named = match policy.action_constraint() {
            ActionConstraint::Any => {
                self.any_action = true;
                if permit {
                    self.any_permits.push(id);
                }
                return;
            }
            ActionConstraint::Eq(uid) => vec![uid],
            ActionConstraint::In(uids) => uids,
        };
        // The uid's type is not checked: a policy naming an action of another type covers the
        // name anyway, which can only make Cedar run (and deny) where it would not match.
        for uid in named {
            let name = uid.id().unescaped().to_owned();
            if permit {
                self.permits
                    .entry(name.clone())
                    .or_default()
                    .push(id.clone());
            }
            self.actions.insert(name);
        }
    }

    pub(super) fn covers(&self, action: &str) -> bool {
        self.any_action || self.actions.contains(action)
    }

    pub(super) fn has_permit(&self, action: &str) -> bool {
        !self.any_permits.is_empty() || self.permits.contains_key(action)
    }

    pub(super) fn permits_for(&self, action: &str) -> Vec<String> {
        let mut ids: Vec<String> = self.any_permits.clone();
        ids.extend(self.permits.get(action).into_iter().flatten().cloned());
        ids.sort();
        ids
    }
}

/// What the policies of a set can observe of a request. The request builder leaves the rest
/// out: no policy can read it, so it cannot change a decision, and converting it costs.
///
/// Entity attributes are reachable only by name (`e.a`, `e has a`, `e["a"]`), and the tenancy
/// parents only through an `Agency`/`Account` entity literal, so the names in the policies'
/// JSON form bound what is observable. The context is a record and can be used whole
/// (`context == {…}`): then every context key is kept.
#[derive(Clone, Debug, Default)]
pub(super) struct Observed {
    /// Every string and key of the policies' JSON form (a superset of the names they use).
    pub(super) names: HashSet<String>,
    /// Some policy uses `context` other than as `context.x` or `context has x`.
    pub(super) whole_context: bool,
    /// Some policy names the `Agency` or `Account` type: entities need their parents.
    pub(super) tenancy: bool,
    /// Observe everything (a policy had no JSON form; and in tests, the reference).
    pub(super) everything: bool,
}

impl Observed {
    pub(super) fn add(&mut self, policy: &Policy) {
        match policy.to_json() {
            Ok(est) => self.walk(&est, false),
            Err(_) => self.everything = true,
        }
    }

    /// Collects the strings of an EST; `attr_base`: `v` is the `left` of `.` or `has`.
    pub(super) fn walk(&mut self, v: &Value, attr_base: bool) {
        match v {
            Value::String(s) => {
                self.names.insert(s.clone());
            }
            Value::Array(items) => items.iter().for_each(|x| self.walk(x, false)),
            Value::Object(m) => {
                if !attr_base && m.get("Var").and_then(Value::as_str) == Some("context") {
                    self.whole_context = true;
                }
                for (k, x) in m {
                    self.names.insert(k.clone());
                    match (k.as_str(), x) {
                        ("." | "has", Value::Object(access)) => {
                            for (ak, ax) in access {
                                self.names.insert(ak.clone());
                                self.walk(ax, ak == "left");
                            }
                        }
                        _ => self.walk(x, false),
                    }
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    pub(super) fn finish(mut self) -> Self {
        self.tenancy = self.everything
            || self.names.contains(&format!("{NAMESPACE}::Agency"))
            || self.names.contains(&format!("{NAMESPACE}::Account"));
        self
    }

    pub(super) fn attribute(&self, name: &str) -> bool {
        self.everything || self.names.contains(name)
    }

    pub(super) fn context_key(&self, key: &str) -> bool {
        self.whole_context || self.attribute(key)
    }
}
