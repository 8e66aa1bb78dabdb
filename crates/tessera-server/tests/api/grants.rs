//! Property tests for I2 and I3 through the API: whatever a credential grants (a key's scopes, a
//! custom role, a binding) is accepted exactly when it lies within what the credential itself
//! holds there; unknown permissions, resource types and tenants always deny.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use proptest::prelude::*;
use serde_json::json;

use crate::harness::{missing, TestApp};

const SCOPES: &[&str] = &[
    "contacts.readonly",
    "contacts.write",
    "opportunities.readonly",
    "opportunities.write",
    "calendars.readonly",
    "conversations.readonly",
    "users.readonly",
    "accounts.readonly",
    "api_keys.write",
    "roles.write",
    "payments.readonly",
];
const ROLES: &[&str] = &[
    "account_user",
    "account_viewer",
    "agency_user",
    "account_admin",
];
const PERMS: &[&str] = &[
    "contacts.read",
    "contacts.write",
    "opportunities.read",
    "payments.refund",
    "users.read",
    "api_keys.write",
];

#[derive(Clone, Debug)]
enum Grant {
    Key {
        scopes: Vec<usize>,
        on_account: bool,
    },
    Role {
        perms: Vec<usize>,
    },
    Bind {
        role: usize,
        on_account: bool,
    },
}

fn grant() -> impl Strategy<Value = Grant> {
    prop_oneof![
        (
            proptest::collection::vec(0..SCOPES.len(), 1..4),
            any::<bool>()
        )
            .prop_map(|(scopes, on_account)| Grant::Key { scopes, on_account }),
        proptest::collection::vec(0..PERMS.len(), 1..4).prop_map(|perms| Grant::Role { perms }),
        (0..ROLES.len(), any::<bool>())
            .prop_map(|(role, on_account)| Grant::Bind { role, on_account }),
    ]
}

fn names(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]
    #[test]
    fn a_grant_is_accepted_exactly_when_the_granter_holds_it(
        granter_scopes in proptest::collection::vec(0..SCOPES.len(), 1..6),
        grants in proptest::collection::vec(grant(), 1..6),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let t = TestApp::sqlite().await;
            let a = t.agency("Grants").await;
            let scopes: Vec<&str> = granter_scopes.iter().map(|i| SCOPES[*i]).collect();
            let g = t.post(&format!("/v1/agencies/{}/api-keys", a.id), &t.admin, json!({ "name": "granter", "scopes": scopes })).await;
            prop_assert_eq!(g.status, StatusCode::CREATED, "{}", g.body);
            let (gid, gkey) = (g.id(), g.body["secret"].as_str().unwrap().to_owned());
            let held = |on_account: bool| {
                let path = if on_account {
                    format!("/v1/agencies/{}/principals/{gid}/permissions?account={}", a.id, a.acc)
                } else {
                    format!("/v1/agencies/{}/principals/{gid}/permissions", a.id)
                };
                let t = &t;
                async move { names(&t.get(&path, &t.admin).await.body["permissions"]) }
            };
            for gr in &grants {
                let (resp, wanted, on_account) = match gr {
                    Grant::Key { scopes, on_account } => {
                        let s: Vec<&str> = scopes.iter().map(|i| SCOPES[*i]).collect();
                        let mut body = json!({ "name": "k", "scopes": s });
                        if *on_account { body["account"] = json!(a.acc); }
                        let wanted: BTreeSet<String> = t.state.catalog.permission_names(&t.state.catalog.scopes_permissions(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>()).unwrap()).into_iter().collect();
                        (t.post(&format!("/v1/agencies/{}/api-keys", a.id), &gkey, body).await, wanted, *on_account)
                    }
                    Grant::Role { perms } => {
                        let p: Vec<&str> = perms.iter().map(|i| PERMS[*i]).collect();
                        let wanted = p.iter().map(|x| x.to_string()).collect();
                        (t.post(&format!("/v1/agencies/{}/roles", a.id), &gkey, json!({ "name": format!("r{}", rand_suffix()), "permissions": p })).await, wanted, false)
                    }
                    Grant::Bind { role, on_account } => {
                        let mut body = json!({ "principal": a.user, "role": ROLES[*role] });
                        if *on_account { body["account"] = json!(a.acc); }
                        let wanted = t.state.catalog.permission_names(&t.state.catalog.role(ROLES[*role]).unwrap().1).into_iter().collect();
                        (t.post(&format!("/v1/agencies/{}/bindings", a.id), &gkey, body).await, wanted, *on_account)
                    }
                };
                let held = held(on_account).await;
                let within = wanted.is_subset(&held);
                match resp.status {
                    StatusCode::CREATED => prop_assert!(within, "{gr:?} granted beyond {held:?}"),
                    StatusCode::FORBIDDEN => {
                        // Refused: either the grant exceeds what is held, or the granter lacks the
                        // route's own permission there.
                        let missing = names(&resp.body["missing_permissions"]);
                        prop_assert!(!missing.is_empty());
                        prop_assert!(!within || missing.iter().any(|m| !held.contains(m)), "{gr:?} refused though within {held:?}: {}", resp.body);
                    }
                    StatusCode::BAD_REQUEST | StatusCode::CONFLICT => {}
                    other => prop_assert!(false, "unexpected {other}: {}", resp.body),
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn unknown_permissions_types_and_tenants_deny(perm in "[a-z_]{1,12}\\.[a-z_]{1,12}", kind in "[a-z_]{1,12}", foreign in any::<bool>()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let t = TestApp::sqlite().await;
            let agency = if foreign { missing("agy") } else { t.state.store.platform_agency().await.unwrap().unwrap().id.to_string() };
            let r = t.post("/v1/check", &t.admin, json!({ "permission": perm, "resource": { "type": kind, "agency": agency } })).await;
            prop_assert_eq!(r.status, StatusCode::OK);
            let known = t.state.catalog.permission(&perm).is_some_and(|p| t.state.catalog.permission_def(p).unwrap().resource == kind);
            if !known || foreign {
                prop_assert_eq!(r.body["allowed"].as_bool(), Some(false), "{}", r.body);
            }
            Ok(())
        })?;
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
