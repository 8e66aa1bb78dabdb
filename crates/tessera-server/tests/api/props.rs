//! Property test for I1: random tenants making random requests against each other's objects
//! never read or change anything of another agency.

use axum::http::{Method, StatusCode};
use proptest::prelude::*;
use serde_json::json;

use crate::harness::{Agency, TestApp};

#[derive(Clone, Debug)]
enum Op {
    ReadAccount,
    RenameAccount,
    ReadUser,
    DeleteUser,
    ListAccounts,
    CreateKey,
    RevokeKey,
    BindUser,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::ReadAccount),
        Just(Op::RenameAccount),
        Just(Op::ReadUser),
        Just(Op::DeleteUser),
        Just(Op::ListAccounts),
        Just(Op::CreateKey),
        Just(Op::RevokeKey),
        Just(Op::BindUser),
    ]
}

fn request(op: &Op, target: &Agency) -> (Method, String, Option<serde_json::Value>) {
    let b = format!("/v1/agencies/{}", target.id);
    match op {
        Op::ReadAccount => (Method::GET, format!("{b}/accounts/{}", target.acc), None),
        Op::RenameAccount => (
            Method::PATCH,
            format!("{b}/accounts/{}", target.acc),
            Some(json!({ "name": "changed" })),
        ),
        Op::ReadUser => (Method::GET, format!("{b}/users/{}", target.user), None),
        Op::DeleteUser => (Method::DELETE, format!("{b}/users/{}", target.user), None),
        Op::ListAccounts => (Method::GET, format!("{b}/accounts"), None),
        Op::CreateKey => (
            Method::POST,
            format!("{b}/api-keys"),
            Some(json!({ "name": "k", "scopes": ["contacts.readonly"] })),
        ),
        Op::RevokeKey => (
            Method::DELETE,
            format!("{b}/api-keys/{}", target.key_id),
            None,
        ),
        Op::BindUser => (
            Method::POST,
            format!("{b}/bindings"),
            Some(
                json!({ "principal": target.user, "role": "account_user", "account": target.acc }),
            ),
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn no_request_crosses_a_tenant(ops in proptest::collection::vec((0usize..3, 0usize..3, op()), 1..12)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let t = TestApp::sqlite().await;
            let agencies = vec![t.agency("One").await, t.agency("Two").await, t.agency("Three").await];
            let mut snapshots = Vec::new();
            for a in &agencies {
                snapshots.push(t.get(&format!("/v1/agencies/{}/audit", a.id), &a.key).await.body["items"].as_array().unwrap().len());
            }
            let mut own_writes = vec![0usize; agencies.len()];
            let mut revoked = vec![false; agencies.len()];
            for (actor, target, op) in &ops {
                let (m, path, body) = request(op, &agencies[*target]);
                let r = t.call(m.clone(), &path, Some(&agencies[*actor].key), body).await;
                if revoked[*actor] {
                    prop_assert_eq!(r.status, StatusCode::UNAUTHORIZED);
                } else if actor == target {
                    if matches!(op, Op::RevokeKey) && r.status.is_success() {
                        revoked[*actor] = true;
                    }
                    prop_assert!(r.status.as_u16() < 500, "{m} {path}: {}", r.body);
                    if r.status.is_success() && m != Method::GET {
                        own_writes[*target] += 1;
                    }
                } else {
                    prop_assert_eq!(r.status, StatusCode::NOT_FOUND, "{} {}: {}", m, path, r.body);
                }
            }
            // Each agency's trail grew only by its own successful writes (plus its own denials, and
            // the record of the platform reading it just now).
            for (i, a) in agencies.iter().enumerate() {
                let items: Vec<_> = t.get(&format!("/v1/agencies/{}/audit", a.id), &t.admin).await.body["items"].as_array().unwrap()
                    .iter().filter(|e| e["action"] != "platform.cross_tenant_read").cloned().collect();
                let changes = items.iter().filter(|e| e["outcome"] == "success").count();
                prop_assert_eq!(changes, snapshots[i] + own_writes[i]);
                prop_assert!(items.iter().all(|e| e["actor"] == a.key_id.as_str() || e["seq"].as_i64().unwrap() as usize <= snapshots[i]));
            }
            Ok(())
        })?;
    }
}
