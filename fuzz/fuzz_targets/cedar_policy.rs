//! An agency's Cedar policy text, as `PUT /v1/…/policies` receives it: validated against the
//! schema of the default catalog, compiled, and (when it compiles) evaluated once.
//! INVARIANT: no input panics or aborts (a stack overflow aborts the process).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use tessera_core::abac::{cedar_schema, validate_policies, AbacRequest, PolicySet, PrincipalKind};
use tessera_core::Catalog;

fn schema() -> &'static cedar_policy::Schema {
    static SCHEMA: OnceLock<cedar_policy::Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let catalog = Catalog::default_catalog().expect("the default catalog is valid");
        cedar_schema(&catalog).expect("the default catalog makes a schema")
    })
}

fn context() -> &'static (Map<String, Value>, Map<String, Value>) {
    static CONTEXT: OnceLock<(Map<String, Value>, Map<String, Value>)> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        let attrs = json!({"dnd": false, "lead_score": 7, "owner_id": "usr_1", "tags": ["a"]});
        let ctx =
            json!({"ip": "10.1.2.3", "time": 1_800_000_000, "mfa": true, "impersonating": false});
        match (attrs, ctx) {
            (Value::Object(a), Value::Object(c)) => (a, c),
            _ => unreachable!(),
        }
    })
}

fuzz_target!(init: tessera_fuzz::catch_stack_overflow(), |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let schema = schema();
    let _ = validate_policies(schema, text);
    let Ok(set) = PolicySet::compile(schema, &[("pol_fuzz".to_owned(), text.to_owned())]) else {
        return;
    };
    let (attributes, context) = context();
    let roles = vec!["agency_admin".to_owned()];
    for action in ["contacts.read", "contacts.delete", "opportunities.write"] {
        if !set.applies(action) {
            continue;
        }
        let _ = set.evaluate(&AbacRequest {
            principal_type: PrincipalKind::User,
            principal_id: "usr_fuzz",
            principal_agency: "agy_fuzz",
            principal_roles: &roles,
            action,
            resource_type: if action.starts_with("contacts") { "contact" } else { "opportunity" },
            resource_id: Some("c1"),
            resource_agency: "agy_fuzz",
            resource_account: None,
            resource_attributes: attributes,
            context,
        });
    }
});
