//! I2 over every route that changes a principal or a credential (issue 8, findings 3 and 4):
//! rotating a key, resetting an app's secret, changing a user's password, email or status,
//! removing bindings, revoking and deleting. A caller who lacks anything the target holds is
//! refused, so a lesser admin can neither receive a stronger credential's secret nor take over
//! or silence a more privileged user. The property test draws random caller/target pairs.

use axum::http::{Method, StatusCode};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::harness::TestApp;

/// Binds `role` to `principal` (agency-wide, or on `account`) as the platform; the binding's id.
async fn bind(
    t: &TestApp,
    agy: &str,
    principal: &str,
    role: &str,
    account: Option<&str>,
) -> String {
    let mut body = json!({ "principal": principal, "role": role });
    if let Some(acc) = account {
        body["account"] = json!(acc);
    }
    let b = t
        .post(&format!("/v1/agencies/{agy}/bindings"), &t.admin, body)
        .await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
    b.id()
}

/// An unscoped key holding exactly `role` (agency-wide, or on `account`), made by the platform.
async fn key_with_role(
    t: &TestApp,
    agy: &str,
    role: &str,
    account: Option<&str>,
) -> (String, String) {
    let k = t
        .post(
            &format!("/v1/agencies/{agy}/api-keys"),
            &t.admin,
            json!({ "name": format!("{role} key"), "scopes": [] }),
        )
        .await;
    assert_eq!(k.status, StatusCode::CREATED, "{}", k.body);
    let id = k.id();
    bind(t, agy, &id, role, account).await;
    (id, k.body["secret"].as_str().unwrap().to_owned())
}

/// A user holding `role`, with the binding's id.
async fn user_with_role(
    t: &TestApp,
    agy: &str,
    role: &str,
    account: Option<&str>,
) -> (String, String) {
    let n = rand_suffix();
    let u = t
        .post(
            &format!("/v1/agencies/{agy}/users"),
            &t.admin,
            json!({ "email": format!("{role}-{n}@takeover.test"), "name": role }),
        )
        .await;
    assert_eq!(u.status, StatusCode::CREATED, "{}", u.body);
    let id = u.id();
    let binding = bind(t, agy, &id, role, account).await;
    (id, binding)
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn missing(r: &crate::harness::Resp) -> Vec<String> {
    r.body["missing_permissions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

async fn takeover_is_refused(t: TestApp) {
    let a = t.agency("Takeover").await;
    let agy = a.id.as_str();
    let (owner_key, _) = key_with_role(&t, agy, "agency_owner", None).await;
    let (admin_key, admin) = key_with_role(&t, agy, "agency_admin", None).await;
    let (_, acc_admin) = key_with_role(&t, agy, "account_admin", Some(&a.acc)).await;
    let (lesser_key, _) = key_with_role(&t, agy, "account_user", Some(&a.acc)).await;
    let (impersonator_key, _) = key_with_role(&t, agy, "agency_admin", None).await;

    // Finding 3: an agency admin rotating the owner's key would receive its new secret.
    let r = t
        .post(
            &format!("/v1/agencies/{agy}/api-keys/{owner_key}/rotate"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "forbidden"),
        "{}",
        r.body
    );
    assert!(r.body.get("secret").is_none());
    let m = missing(&r);
    assert!(
        m.contains(&"agencies.update".to_owned()) && m.contains(&"billing.write".to_owned()),
        "{m:?}"
    );
    // … nor revoke it.
    let r = t
        .delete(&format!("/v1/agencies/{agy}/api-keys/{owner_key}"), &admin)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // An account admin cannot obtain `users.impersonate` through an agency admin's key.
    let r = t
        .post(
            &format!("/v1/agencies/{agy}/api-keys/{impersonator_key}/rotate"),
            &acc_admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // What the caller dominates still works: a lesser key, an equal one, and its own.
    for key in [&lesser_key, &impersonator_key, &admin_key] {
        let r = t
            .post(
                &format!("/v1/agencies/{agy}/api-keys/{key}/rotate"),
                &admin,
                json!({ "grace_seconds": 0 }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{key}: {}", r.body);
        if key == &admin_key {
            break; // the caller's own secret just changed
        }
    }

    // Finding 4: an agency admin takes over the owner by setting the password, email or status.
    let (owner, owner_binding) = user_with_role(&t, agy, "agency_owner", None).await;
    let (peer, peer_binding) = user_with_role(&t, agy, "agency_admin", None).await;
    let (_, admin2) = key_with_role(&t, agy, "agency_admin", None).await;
    for patch in [
        json!({ "password": "correct horse battery staple" }),
        json!({ "email": "attacker@evil.test" }),
        json!({ "status": "disabled" }),
        json!({ "name": "Pwned" }),
    ] {
        let r = t
            .patch(
                &format!("/v1/agencies/{agy}/users/{owner}"),
                &admin2,
                patch.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{patch}: {}", r.body);
    }
    let r = t
        .delete(
            &format!("/v1/agencies/{agy}/bindings/{owner_binding}"),
            &admin2,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = t
        .delete(&format!("/v1/agencies/{agy}/users/{owner}"), &admin2)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // The owner still signs in with the old state: nothing changed.
    let u = t
        .get(&format!("/v1/agencies/{agy}/users/{owner}"), &t.admin)
        .await;
    assert_eq!(u.body["status"], "active");
    assert_ne!(u.body["email"], "attacker@evil.test");
    // A peer (equal permissions) can be changed, and the owner may change anyone.
    let r = t
        .patch(
            &format!("/v1/agencies/{agy}/users/{peer}"),
            &admin2,
            json!({ "name": "Peer" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (_, owner_secret) = key_with_role(&t, agy, "agency_owner", None).await;
    let r = t
        .delete(
            &format!("/v1/agencies/{agy}/bindings/{peer_binding}"),
            &owner_secret,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // Another tenant's or a missing user is still the same 404, not a 403.
    let r = t
        .patch(
            &format!(
                "/v1/agencies/{agy}/users/{}",
                crate::harness::missing("usr")
            ),
            &admin2,
            json!({ "name": "x" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Narrowing or deleting a custom role bound to the owner strips the owner too (I2).
    let extras = t
        .post(
            &format!("/v1/agencies/{agy}/roles"),
            &t.admin,
            json!({ "name": "owner extras", "permissions": ["contacts.read", "billing.read"] }),
        )
        .await;
    assert_eq!(extras.status, StatusCode::CREATED, "{}", extras.body);
    let extras = extras.id();
    let b = t
        .post(
            &format!("/v1/agencies/{agy}/bindings"),
            &t.admin,
            json!({ "principal": owner, "role": extras }),
        )
        .await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
    let r = t
        .patch(
            &format!("/v1/agencies/{agy}/roles/{extras}"),
            &admin2,
            json!({ "permissions": ["contacts.read"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = t
        .delete(
            &format!("/v1/agencies/{agy}/roles/{extras}?remove_bindings=true"),
            &admin2,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // Renaming it changes nobody's permissions.
    let r = t
        .patch(
            &format!("/v1/agencies/{agy}/roles/{extras}"),
            &admin2,
            json!({ "name": "extras" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // An app's secret obtains tokens with its scopes: resetting it needs them all.
    let app = t
        .post(
            &format!("/v1/agencies/{agy}/apps"),
            &t.admin,
            json!({ "name": "CRM sync", "redirect_uris": ["https://crm.example/cb"], "scopes": ["contacts.write"], "confidential": true }),
        )
        .await;
    assert_eq!(app.status, StatusCode::CREATED, "{}", app.body);
    let app = app.body["client_id"].as_str().unwrap().to_owned();
    let role = t
        .post(
            &format!("/v1/agencies/{agy}/roles"),
            &t.admin,
            json!({ "name": "app manager", "permissions": ["apps.read", "apps.write"] }),
        )
        .await;
    assert_eq!(role.status, StatusCode::CREATED, "{}", role.body);
    let (_, app_manager) = key_with_role(&t, agy, &role.id(), None).await;
    let r = t
        .post(
            &format!("/v1/agencies/{agy}/apps/{app}/rotate-secret"),
            &app_manager,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.get("client_secret").is_none());
    assert!(
        missing(&r).contains(&"contacts.write".to_owned()),
        "{}",
        r.body
    );
    let r = t
        .delete(&format!("/v1/agencies/{agy}/apps/{app}"), &app_manager)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = t
        .post(
            &format!("/v1/agencies/{agy}/apps/{app}/rotate-secret"),
            &admin2,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Every refusal is in the trail.
    let denied = t
        .get(
            &format!("/v1/agencies/{agy}/audit?action=authz.denied&limit=100"),
            &t.admin,
        )
        .await;
    let attempted: Vec<&str> = denied.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["detail"]["attempted"].as_str())
        .collect();
    for action in [
        "api_key.rotate",
        "api_key.revoke",
        "user.update",
        "binding.delete",
        "user.delete",
        "app.rotate_secret",
        "app.delete",
    ] {
        assert!(
            attempted.contains(&action),
            "{action} not audited: {attempted:?}"
        );
    }
}

#[tokio::test]
async fn a_lesser_admin_cannot_take_over_a_stronger_principal() {
    takeover_is_refused(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn a_lesser_admin_cannot_take_over_a_stronger_principal_on_postgres() {
    if let Some(t) = TestApp::postgres().await {
        takeover_is_refused(t).await;
    }
}

const ROLES: [(&str, bool); 6] = [
    ("agency_owner", false),
    ("agency_admin", false),
    ("agency_user", false),
    ("account_admin", true),
    ("account_user", true),
    ("account_viewer", true),
];

#[derive(Clone, Copy, Debug)]
enum Change {
    RotateKey,
    RevokeKey,
    SetPassword,
    SetEmail,
    Disable,
    RemoveBinding,
    DeleteUser,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        Just(Change::RotateKey),
        Just(Change::RevokeKey),
        Just(Change::SetPassword),
        Just(Change::SetEmail),
        Just(Change::Disable),
        Just(Change::RemoveBinding),
        Just(Change::DeleteUser),
    ]
}

/// The effective permissions of `principal` at the agency level and on `acc`.
async fn held(t: &TestApp, agy: &str, acc: &str, principal: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    for (on_account, q) in [(false, String::new()), (true, format!("?account={acc}"))] {
        let r = t
            .get(
                &format!("/v1/agencies/{agy}/principals/{principal}/permissions{q}"),
                &t.admin,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        for p in r.body["permissions"].as_array().unwrap() {
            out.push((on_account, p.as_str().unwrap().to_owned()));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]
    /// I2 across the changing routes: whenever a change to a principal or credential succeeds,
    /// the caller held everything the target held (agency-wide and on the account).
    #[test]
    fn no_change_to_a_stronger_principal_succeeds(
        steps in proptest::collection::vec((0usize..ROLES.len(), 0usize..ROLES.len(), change()), 1..8)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let t = TestApp::sqlite().await;
            let a = t.agency("Props").await;
            let (agy, acc) = (a.id.as_str(), a.acc.as_str());
            for (caller_role, target_role, change) in steps {
                let (crole, cacc) = ROLES[caller_role];
                let (trole, tacc) = ROLES[target_role];
                let (caller_id, caller) = key_with_role(&t, agy, crole, cacc.then_some(acc)).await;
                let target_is_key = matches!(change, Change::RotateKey | Change::RevokeKey);
                let (target, binding) = if target_is_key {
                    let (id, _) = key_with_role(&t, agy, trole, tacc.then_some(acc)).await;
                    (id, String::new())
                } else {
                    user_with_role(&t, agy, trole, tacc.then_some(acc)).await
                };
                let theirs = held(&t, agy, acc, &target).await;
                let mine = held(&t, agy, acc, &caller_id).await;
                let dominated = theirs.iter().all(|p| mine.contains(p));
                let (m, path, body) = match change {
                    Change::RotateKey => (Method::POST, format!("/v1/agencies/{agy}/api-keys/{target}/rotate"), Some(json!({}))),
                    Change::RevokeKey => (Method::DELETE, format!("/v1/agencies/{agy}/api-keys/{target}"), None),
                    Change::SetPassword => (Method::PATCH, format!("/v1/agencies/{agy}/users/{target}"), Some(json!({ "password": "a brand new passphrase" }))),
                    Change::SetEmail => (Method::PATCH, format!("/v1/agencies/{agy}/users/{target}"), Some(json!({ "email": format!("x{}@takeover.test", rand_suffix()) }))),
                    Change::Disable => (Method::PATCH, format!("/v1/agencies/{agy}/users/{target}"), Some(json!({ "status": "disabled" }))),
                    Change::RemoveBinding => (Method::DELETE, format!("/v1/agencies/{agy}/bindings/{binding}"), None),
                    Change::DeleteUser => (Method::DELETE, format!("/v1/agencies/{agy}/users/{target}"), None),
                };
                let r = t.call(m.clone(), &path, Some(&caller), body).await;
                prop_assert!(r.status.as_u16() < 500, "{} {}: {}", m, path, r.body);
                if r.status.is_success() {
                    prop_assert!(dominated, "{crole} changed a {trole} ({change:?}): it lacks {:?}",
                        theirs.iter().filter(|p| !mine.contains(p)).collect::<Vec<_>>());
                } else if !dominated {
                    prop_assert!(r.status == StatusCode::FORBIDDEN, "{} {}: {}", m, path, r.body);
                }
            }
            Ok(())
        })?;
    }
}

/// A permission the agency's policies forbid the caller is one the caller does not hold: it
/// cannot obtain it by changing someone the policy spares (rotating their key).
#[tokio::test]
async fn what_a_policy_forbids_the_caller_counts_as_missing() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Policed").await;
    let agy = a.id.as_str();
    let (admin_id, admin) = key_with_role(&t, agy, "agency_admin", None).await;
    let (target, _) = key_with_role(&t, agy, "account_admin", Some(&a.acc)).await;
    let rotate = format!("/v1/agencies/{agy}/api-keys/{target}/rotate");
    let r = t.post(&rotate, &admin, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "without the policy: {}", r.body);
    let cedar = format!(
        "forbid(principal == Tessera::ApiKey::\"{admin_id}\", action == Tessera::Action::\"contacts.export\", resource);"
    );
    let p = t
        .post(
            &format!("/v1/agencies/{agy}/policies"),
            &t.admin,
            json!({ "cedar": cedar }),
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let r = t.post(&rotate, &admin, json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(
        missing(&r),
        vec!["contacts.export".to_owned()],
        "{}",
        r.body
    );
}
