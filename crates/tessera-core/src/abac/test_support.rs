//! Fixtures shared by the ABAC unit tests: the default catalog's schema, policy sets compiled
//! from texts, and a check builder with the context the server always sets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use cedar_policy::Schema;
use serde_json::{json, Map, Value};

use super::evaluate::AbacDecision;
use super::policy_set::PolicySet;
use super::request::{AbacRequest, PrincipalKind};
use super::schema::cedar_schema;
use crate::catalog::Catalog;

pub(super) fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let catalog = Catalog::default_catalog().unwrap();
        cedar_schema(&catalog).unwrap()
    })
}

pub(super) fn compile(texts: &[&str]) -> PolicySet {
    let sources: Vec<(String, String)> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("pol_{i}"), (*t).to_owned()))
        .collect();
    PolicySet::compile(schema(), &sources).unwrap()
}

pub(super) fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

pub(super) struct Check {
    action: &'static str,
    resource_type: &'static str,
    attrs: Map<String, Value>,
    context: Map<String, Value>,
    roles: Vec<String>,
}

impl Check {
    pub(super) fn new(action: &'static str, resource_type: &'static str) -> Self {
        Self {
            action,
            resource_type,
            attrs: Map::new(),
            context: obj(json!({"time": 1_700_000_000, "mfa": false, "impersonating": false})),
            roles: vec!["account_user".into()],
        }
    }
    pub(super) fn attrs(mut self, v: Value) -> Self {
        self.attrs = obj(v);
        self
    }
    pub(super) fn ctx(mut self, key: &str, v: Value) -> Self {
        self.context.insert(key.into(), v);
        self
    }
    pub(super) fn eval(&self, set: &PolicySet) -> AbacDecision {
        set.evaluate(&AbacRequest {
            principal_type: PrincipalKind::User,
            principal_id: "usr_1",
            principal_agency: "agy_1",
            principal_roles: &self.roles,
            action: self.action,
            resource_type: self.resource_type,
            resource_id: Some("con_1"),
            resource_agency: "agy_1",
            resource_account: Some("acc_1"),
            resource_attributes: &self.attrs,
            context: &self.context,
        })
    }
}

pub(super) const MFA_DELETE: &str = r#"forbid(principal, action == Tessera::Action::"contacts.delete", resource) unless { context.mfa == true };"#;
pub(super) const CHEAP_DEALS: &str = r#"permit(principal, action == Tessera::Action::"opportunities.write", resource) when { resource.value < 10000 };"#;
