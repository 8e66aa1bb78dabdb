//! The authorization engine through HTTP: custom roles, Cedar policies, the check, batch,
//! explain and list APIs, and revisions.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::harness::{check_on, missing, Agency, TestApp};

fn check_body(principal: Option<&str>, permission: &str, kind: &str, a: &Agency) -> Value {
    let mut v = json!({ "permission": permission, "resource": { "type": kind, "agency": a.id, "account": a.acc } });
    if let Some(p) = principal {
        v["principal"] = json!(p);
    }
    v
}

#[tokio::test]
async fn custom_roles_bind_check_change_and_delete() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Roles").await;
    let roles = format!("/v1/agencies/{}/roles", a.id);
    // Only what the author holds; only known, tenant-level permissions.
    let r = t
        .post(
            &roles,
            &a.key,
            json!({ "name": "biller", "permissions": ["billing.write"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.body["missing_permissions"], json!(["billing.write"]));
    let r = t
        .post(
            &roles,
            &a.key,
            json!({ "name": "x", "permissions": ["contacts.nope"] }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["unknown_permissions"].clone()),
        (StatusCode::BAD_REQUEST, json!(["contacts.nope"]))
    );
    let r = t
        .post(
            &roles,
            &t.admin,
            json!({ "name": "x", "permissions": ["agencies.create"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let role = t.post(&roles, &a.key, json!({ "name": "contact reader", "description": "reads contacts", "permissions": ["contacts.read", "contacts.write"] })).await;
    assert_eq!(role.status, StatusCode::CREATED, "{}", role.body);
    let rid = role.id();
    let dup = t
        .post(
            &roles,
            &a.key,
            json!({ "name": "contact reader", "permissions": ["contacts.read"] }),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);

    let b = t
        .post(
            &format!("/v1/agencies/{}/bindings", a.id),
            &a.key,
            json!({ "principal": a.user, "role": rid, "account": a.acc }),
        )
        .await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
    let c = t
        .post(
            "/v1/check",
            &a.key,
            check_body(Some(&a.user), "contacts.write", "contact", &a),
        )
        .await;
    assert_eq!(
        (
            c.status,
            c.body["allowed"].clone(),
            c.body["reason"].clone()
        ),
        (StatusCode::OK, json!(true), json!("granted")),
        "{}",
        c.body
    );
    let rev1 = c.body["revision"].as_i64().unwrap();
    // Narrow the role: the next check sees it, at a later revision.
    let p = t
        .patch(
            &format!("{roles}/{rid}"),
            &a.key,
            json!({ "permissions": ["contacts.read"] }),
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let c = t
        .post(
            "/v1/check",
            &a.key,
            check_body(Some(&a.user), "contacts.write", "contact", &a),
        )
        .await;
    assert_eq!(c.body["allowed"], false, "{}", c.body);
    assert!(c.body["revision"].as_i64().unwrap() > rev1);
    // Still bound: 409 unless the bindings go too.
    let d = t.delete(&format!("{roles}/{rid}"), &a.key).await;
    assert_eq!(
        (
            d.status,
            d.body["constraint"].clone(),
            d.body["bindings"].clone()
        ),
        (StatusCode::CONFLICT, json!("role_in_use"), json!(1))
    );
    let d = t
        .delete(&format!("{roles}/{rid}?remove_bindings=true"), &a.key)
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    let c = t
        .post(
            "/v1/check",
            &a.key,
            check_body(Some(&a.user), "contacts.read", "contact", &a),
        )
        .await;
    assert_eq!(c.body["allowed"], false);
    let actions: Vec<String> = t
        .get(&format!("/v1/agencies/{}/audit", a.id), &a.key)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    for act in [
        "role.create",
        "role.update",
        "role.delete",
        "binding.create",
    ] {
        assert!(
            actions.iter().any(|x| x == act),
            "{act} not audited: {actions:?}"
        );
    }
}

#[tokio::test]
async fn check_answers_and_denies_by_default() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Check").await;
    let b = t.agency("Other").await;
    // The caller about itself: its key's scopes include contacts.write.
    let c = t
        .post(
            "/v1/check",
            &a.key,
            check_body(None, "contacts.write", "contact", &a),
        )
        .await;
    assert_eq!(c.body["allowed"], true, "{}", c.body);
    let c = t
        .post(
            "/v1/check",
            &a.key,
            check_body(None, "payments.refund", "payment", &a),
        )
        .await;
    assert_eq!(
        (c.body["allowed"].clone(), c.body["reason"].clone()),
        (json!(false), json!("not_granted")),
        "{}",
        c.body
    );
    for (perm, kind, reason) in [
        ("contacts.teleport", "contact", "unknown_permission"),
        ("contacts.read", "opportunity", "resource_type_mismatch"),
    ] {
        let c = t
            .post("/v1/check", &a.key, check_body(None, perm, kind, &a))
            .await;
        assert_eq!(
            (
                c.status,
                c.body["allowed"].clone(),
                c.body["reason"].as_str()
            ),
            (StatusCode::OK, json!(false), Some(reason))
        );
    }
    // About itself in another agency: denied, and nothing learned.
    let c = t
        .post(
            "/v1/check",
            &a.key,
            check_body(None, "contacts.read", "contact", &b),
        )
        .await;
    assert_eq!(
        (c.body["allowed"].clone(), c.body["reason"].clone()),
        (json!(false), json!("other_tenant"))
    );
    // About another agency's principal: the same 404 as a missing one.
    let c = t
        .post(
            "/v1/check",
            &a.key,
            check_body(Some(&b.user), "contacts.read", "contact", &b),
        )
        .await;
    let g = t.post("/v1/check", &a.key, json!({ "principal": missing("usr"), "permission": "contacts.read", "resource": { "type": "contact", "agency": missing("agy") } })).await;
    assert_eq!((c.status, c.body.clone()), (StatusCode::NOT_FOUND, g.body));
    // Explanations name the grant.
    let bnd = t
        .post(
            &format!("/v1/agencies/{}/bindings", a.id),
            &t.admin,
            json!({ "principal": a.user, "role": "account_user", "account": a.acc }),
        )
        .await
        .id();
    let mut body = check_body(Some(&a.user), "contacts.read", "contact", &a);
    body["explain"] = json!(true);
    let c = t.post("/v1/check", &a.key, body).await;
    assert_eq!(c.body["allowed"], true, "{}", c.body);
    assert_eq!(
        c.body["explanation"]["grants"],
        json!([{ "kind": "binding", "id": bnd, "role": "account_user" }])
    );
    // The account binding does not reach another account nor the agency level.
    let other = t
        .post(
            &format!("/v1/agencies/{}/accounts", a.id),
            &a.key,
            json!({ "name": "o" }),
        )
        .await
        .id();
    let c = t.post("/v1/check", &a.key, json!({ "principal": a.user, "permission": "contacts.read", "resource": { "type": "contact", "agency": a.id, "account": other } })).await;
    assert_eq!(c.body["allowed"], false);
    // Bad input is still a 400.
    let r = t.post("/v1/check", &a.key, json!({ "permission": "contacts.read", "resource": { "type": "contact", "agency": a.acc } })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn batch_lists_and_effective_permissions() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Batch").await;
    t.post(
        &format!("/v1/agencies/{}/bindings", a.id),
        &t.admin,
        json!({ "principal": a.user, "role": "account_viewer", "account": a.acc }),
    )
    .await;
    let checks: Vec<Value> = ["contacts.read", "contacts.write", "opportunities.read"]
        .iter()
        .map(|p| {
            let kind = if p.starts_with("contacts") {
                "contact"
            } else {
                "opportunity"
            };
            check_body(Some(&a.user), p, kind, &a)
        })
        .collect();
    let r = t
        .post("/v1/check/batch", &a.key, json!({ "checks": checks }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let allowed: Vec<bool> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["allowed"].as_bool().unwrap())
        .collect();
    assert_eq!(allowed, [true, false, true]);
    assert!(r.body["revision"].is_i64());
    let many: Vec<Value> = (0..1001)
        .map(|_| check_body(None, "contacts.read", "contact", &a))
        .collect();
    let r = t
        .post("/v1/check/batch", &a.key, json!({ "checks": many }))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let eff = t
        .get(
            &format!(
                "/v1/agencies/{}/principals/{}/permissions?account={}",
                a.id, a.user, a.acc
            ),
            &a.key,
        )
        .await;
    assert_eq!(eff.status, StatusCode::OK, "{}", eff.body);
    let perms: Vec<&str> = eff.body["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        perms.contains(&"contacts.read") && !perms.contains(&"contacts.write"),
        "{perms:?}"
    );
    let eff = t
        .get(
            &format!("/v1/agencies/{}/principals/{}/permissions", a.id, a.user),
            &a.key,
        )
        .await;
    assert_eq!(
        eff.body["permissions"],
        json!([]),
        "an account binding grants nothing agency-wide"
    );

    let holders = t
        .get(
            &format!(
                "/v1/agencies/{}/accounts/{}/principals?permission=contacts.read",
                a.id, a.acc
            ),
            &a.key,
        )
        .await;
    assert_eq!(holders.status, StatusCode::OK, "{}", holders.body);
    let ids: Vec<&str> = holders.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["principal"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&a.user.as_str()) && ids.contains(&a.key_id.as_str()),
        "{ids:?}"
    );
    let page = t
        .get(
            &format!(
                "/v1/agencies/{}/accounts/{}/principals?permission=contacts.read&limit=1",
                a.id, a.acc
            ),
            &a.key,
        )
        .await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
    let next = page.body["next_cursor"].as_str().unwrap();
    let page2 = t.get(&format!("/v1/agencies/{}/accounts/{}/principals?permission=contacts.read&limit=1&cursor={next}", a.id, a.acc), &a.key).await;
    assert_ne!(page2.body["items"][0], page.body["items"][0]);
    let r = t
        .get(
            &format!("/v1/agencies/{}/accounts/{}/principals", a.id, a.acc),
            &a.key,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn cedar_policies_narrow_what_roles_grant() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Cedar").await;
    let pols = format!("/v1/agencies/{}/policies", a.id);
    let schema = t.get("/v1/catalog/cedar-schema", &a.key).await;
    assert!(schema.body.as_str().unwrap().contains("namespace Tessera"));
    // Invalid policies are refused with positions.
    for bad in ["forbid(principal, action, resource", "forbid(principal, action == Tessera::Action::\"contacts.nope\", resource);", "permit(principal, action == Tessera::Action::\"opportunities.write\", resource) when { resource.value == \"high\" };"] {
        let r = t.post(&pols, &a.key, json!({ "cedar": bad })).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_request"), "{bad}: {}", r.body);
        assert!(!r.body["diagnostics"].as_array().unwrap().is_empty(), "{}", r.body);
    }
    let r = t
        .post(
            &pols,
            &a.key,
            json!({ "cedar": "forbid(principal, action, resource" }),
        )
        .await;
    assert!(r.body["diagnostics"][0]["line"].is_u64(), "{}", r.body);

    let body = |ctx: Value| json!({ "permission": "contacts.write", "resource": { "type": "contact", "agency": a.id, "account": a.acc }, "context": ctx, "explain": true });
    assert_eq!(
        t.post("/v1/check", &a.key, body(json!({}))).await.body["allowed"],
        true
    );
    let p = t.post(&pols, &a.key, json!({ "cedar": "forbid(principal, action == Tessera::Action::\"contacts.write\", resource) unless { context has mfa && context.mfa };", "description": "MFA for contact writes" })).await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let pid = p.id();
    let denied = t.post("/v1/check", &a.key, body(json!({}))).await;
    assert_eq!(
        (
            denied.body["allowed"].clone(),
            denied.body["reason"].clone()
        ),
        (json!(false), json!("denied_by_policy")),
        "{}",
        denied.body
    );
    assert!(denied.body["explanation"]["policies"][0]
        .as_str()
        .unwrap()
        .starts_with(&pid));
    assert_eq!(
        t.post("/v1/check", &a.key, body(json!({ "mfa": true })))
            .await
            .body["allowed"],
        true
    );
    // Actions no policy mentions are untouched.
    assert_eq!(
        t.post(
            "/v1/check",
            &a.key,
            check_body(None, "contacts.read", "contact", &a)
        )
        .await
        .body["allowed"],
        true
    );
    // A conditional permit: opportunities.write only under a value.
    t.post(
        &format!("/v1/agencies/{}/bindings", a.id),
        &t.admin,
        json!({ "principal": a.user, "role": "account_user", "account": a.acc }),
    )
    .await;
    let p = t.post(&pols, &a.key, json!({ "cedar": "permit(principal, action == Tessera::Action::\"opportunities.write\", resource) when { resource has value && resource.value < 10000 };" })).await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let opp = |value: Value| json!({ "principal": a.user, "permission": "opportunities.write", "resource": { "type": "opportunity", "agency": a.id, "account": a.acc, "attributes": { "value": value } } });
    assert_eq!(
        t.post("/v1/check", &a.key, opp(json!(500))).await.body["allowed"],
        true
    );
    assert_eq!(
        t.post("/v1/check", &a.key, opp(json!(50_000))).await.body["allowed"],
        false
    );
    // Policies guard the admin API too: forbid key management outright.
    let p = t.post(&pols, &t.admin, json!({ "cedar": "forbid(principal, action == Tessera::Action::\"api_keys.write\", resource);" })).await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let forbid_keys = p.id();
    let r = t
        .post(
            &format!("/v1/agencies/{}/api-keys", a.id),
            &a.key,
            json!({ "name": "x", "scopes": ["contacts.readonly"] }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["reason"].clone()),
        (StatusCode::FORBIDDEN, json!("denied_by_policy")),
        "{}",
        r.body
    );
    // Removing the policy lifts it on the next request.

    assert_eq!(
        t.delete(&format!("{pols}/{forbid_keys}"), &t.admin)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = t
        .post(
            &format!("/v1/agencies/{}/api-keys", a.id),
            &a.key,
            json!({ "name": "x", "scopes": ["contacts.readonly"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Another agency is unaffected by these policies.
    let b = t.agency("Unaffected").await;
    assert_eq!(
        t.post(
            "/v1/check",
            &b.key,
            check_body(None, "contacts.write", "contact", &b)
        )
        .await
        .body["allowed"],
        true
    );
}

#[tokio::test]
async fn revisions_and_read_your_writes() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Rev").await;
    let c = t
        .post(
            "/v1/check",
            &a.key,
            check_body(Some(&a.user), "contacts.read", "contact", &a),
        )
        .await;
    assert_eq!(c.body["allowed"], false);
    let r0 = c.body["revision"].as_i64().unwrap();
    let bnd = t
        .post(
            &format!("/v1/agencies/{}/bindings", a.id),
            &t.admin,
            json!({ "principal": a.user, "role": "account_user", "account": a.acc }),
        )
        .await
        .id();
    let store_rev = t.state.store.revision().await.unwrap();
    assert!(store_rev > r0);
    let mut body = check_body(Some(&a.user), "contacts.read", "contact", &a);
    body["at_least_revision"] = json!(store_rev);
    let c = t.post("/v1/check", &a.key, body.clone()).await;
    assert_eq!(c.body["allowed"], true, "{}", c.body);
    assert!(c.body["revision"].as_i64().unwrap() >= store_rev);
    // A removed binding never allows a check at a later revision.
    t.delete(&format!("/v1/agencies/{}/bindings/{bnd}", a.id), &t.admin)
        .await;
    let after = t.state.store.revision().await.unwrap();
    body["at_least_revision"] = json!(after);
    let c = t.post("/v1/check", &a.key, body.clone()).await;
    assert_eq!(c.body["allowed"], false, "{}", c.body);
    // A revision nobody has written yet: a clear error, after a bounded wait.
    body["at_least_revision"] = json!(after + 1000);
    let c = t.post("/v1/check", &a.key, body).await;
    assert_eq!(
        (c.status, c.code()),
        (StatusCode::CONFLICT, "revision_not_reached"),
        "{}",
        c.body
    );
    assert_eq!(c.headers["retry-after"], "1");
}

#[tokio::test]
async fn another_node_sees_writes_through_the_change_feed() {
    // Two apps (nodes) on one store: node 2 caches an index, node 1 writes, node 2 follows.
    let t = TestApp::sqlite().await;
    let a = t.agency("Feed").await;
    let node2 = tessera_server::http::state::AppState::new(
        t.connect_again().await,
        tessera_core::Catalog::default_catalog().unwrap(),
        &tessera_token::MasterKey::from_bytes([7; 32]),
        t.clock.clone(),
    )
    .unwrap();
    node2
        .engine
        .start_at(t.state.store.revision().await.unwrap());
    let router2 = tessera_server::app(node2.clone()).unwrap();
    let ask = |router: axum::Router| {
        let body = check_body(Some(&a.user), "contacts.read", "contact", &a);
        let key = a.key.clone();
        async move {
            use tower::ServiceExt;
            let req = axum::http::Request::post("/v1/check")
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body.to_string()))
                .unwrap();
            let resp = router.oneshot(req).await.unwrap();
            let bytes = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        }
    };
    assert_eq!(ask(router2.clone()).await["allowed"], false);
    t.post(
        &format!("/v1/agencies/{}/bindings", a.id),
        &t.admin,
        json!({ "principal": a.user, "role": "account_user", "account": a.acc }),
    )
    .await;
    // Node 2 still answers from its cache until it applies the feed.
    assert_eq!(ask(router2.clone()).await["allowed"], false);
    node2.engine.poll().await.unwrap();
    assert_eq!(ask(router2.clone()).await["allowed"], true);
    // Node 2 has the key's authentication cached; node 1 revokes it. Node 2 honours the
    // revocation as soon as it applies the feed (every 250 ms when serving), node 1 at once.
    assert_eq!(
        t.delete(
            &format!("/v1/agencies/{}/api-keys/{}", a.id, a.key_id),
            &t.admin
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.post(
            "/v1/check",
            &a.key,
            check_body(None, "contacts.read", "contact", &a)
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    node2.engine.poll().await.unwrap();
    assert_eq!(ask(router2).await["code"], "unauthenticated");
}

#[tokio::test]
async fn a_disabled_user_is_denied_on_the_next_check() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Disable").await;
    t.post(
        &format!("/v1/agencies/{}/bindings", a.id),
        &t.admin,
        json!({ "principal": a.user, "role": "account_user", "account": a.acc }),
    )
    .await;
    let body = check_body(Some(&a.user), "contacts.read", "contact", &a);
    assert_eq!(
        t.post("/v1/check", &a.key, body.clone()).await.body["allowed"],
        true
    );
    assert_eq!(
        t.post("/v1/check", &a.key, body.clone()).await.body["allowed"],
        true,
        "served from the subject cache"
    );
    // The agency's admin key lacks some of the user's permissions (I2: it cannot change them);
    // the platform admin holds them all.
    let r = t
        .patch(
            &format!("/v1/agencies/{}/users/{}", a.id, a.user),
            &a.key,
            json!({ "status": "disabled" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = t
        .patch(
            &format!("/v1/agencies/{}/users/{}", a.id, a.user),
            &t.admin,
            json!({ "status": "disabled" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let c = t.post("/v1/check", &a.key, body.clone()).await;
    assert_eq!(
        (c.body["allowed"].clone(), c.body["reason"].clone()),
        (json!(false), json!("inactive_principal"))
    );
    t.patch(
        &format!("/v1/agencies/{}/users/{}", a.id, a.user),
        &t.admin,
        json!({ "status": "active" }),
    )
    .await;
    assert_eq!(
        t.post("/v1/check", &a.key, body).await.body["allowed"],
        true
    );
}

/// A user disabled through one node is inactive on another node that holds the agency's index
/// and has resolved the user as a subject, as soon as a check names the write's revision: the
/// user's state comes from the snapshot the index is built from, brought to that revision.
#[tokio::test]
async fn a_user_disabled_on_another_node_is_inactive_at_its_revision() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Elsewhere").await;
    t.post(
        &format!("/v1/agencies/{}/bindings", a.id),
        &t.admin,
        json!({ "principal": a.user, "role": "account_user", "account": a.acc }),
    )
    .await;
    let (_node, router) = t.second_node().await;
    let on_second = |body: Value| {
        let (router, key) = (router.clone(), a.key.clone());
        async move {
            let (status, body) = check_on(&router, &key, &body).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };
    let mut body = check_body(Some(&a.user), "contacts.read", "contact", &a);
    for _ in 0..2 {
        assert_eq!(on_second(body.clone()).await["allowed"], true);
    }
    let r = t
        .patch(
            &format!("/v1/agencies/{}/users/{}", a.id, a.user),
            &t.admin,
            json!({ "status": "disabled" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    body["at_least_revision"] = json!(t.state.store.revision().await.unwrap());
    let c = on_second(body).await;
    assert_eq!(
        (c["allowed"].clone(), c["reason"].clone()),
        (json!(false), json!("inactive_principal")),
        "{c}"
    );
}

/// A write that records no change (a rename, a new user or account) keeps the agency's index:
/// no decision can differ, so the next check is answered without a rebuild. A write that
/// records one (a binding) is seen by this node's next check at once, as before.
async fn writes_that_change_no_decision_keep_the_index(t: TestApp) {
    let a = t.agency("Keep").await;
    let body = check_body(Some(&a.user), "contacts.read", "contact", &a);
    // The feed applied up to now (on PostgreSQL, the set-up's notifications would otherwise
    // drop the index later), then the index held.
    t.state.engine.poll().await.unwrap();
    let b0 = t.post("/v1/check", &a.key, body.clone()).await.body.clone();
    assert_eq!(b0["allowed"], false, "{b0}");
    // The platform admin's own index too (its writes below are authorized by it).
    let r = t.get(&format!("/v1/agencies/{}", a.id), &t.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let builds = t.state.engine.stats().builds;
    let r = t
        .patch(
            &format!("/v1/agencies/{}/accounts/{}", a.id, a.acc),
            &t.admin,
            json!({ "name": "renamed" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = t
        .post(
            &format!("/v1/agencies/{}/users", a.id),
            &t.admin,
            json!({ "email": "keep@example.com", "name": "Keep" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let c = t.post("/v1/check", &a.key, body.clone()).await;
    assert_eq!(c.body["allowed"], false, "{}", c.body);
    assert_eq!(
        t.state.engine.stats().builds,
        builds,
        "a rename and a new user rebuilt the index"
    );
    // The renamed account is listed renamed on this node at once.
    let list = t
        .get(&format!("/v1/agencies/{}/accounts", a.id), &a.key)
        .await;
    assert!(list.body.to_string().contains("renamed"), "{}", list.body);
    t.post(
        &format!("/v1/agencies/{}/bindings", a.id),
        &t.admin,
        json!({ "principal": a.user, "role": "account_user", "account": a.acc }),
    )
    .await;
    let c = t.post("/v1/check", &a.key, body).await;
    assert_eq!(c.body["allowed"], true, "{}", c.body);
    assert_eq!(t.state.engine.stats().builds, builds + 1);
}

#[tokio::test]
async fn writes_that_change_no_decision_keep_the_index_sqlite() {
    writes_that_change_no_decision_keep_the_index(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn writes_that_change_no_decision_keep_the_index_postgres() {
    let Some(t) = TestApp::postgres().await else {
        return;
    };
    writes_that_change_no_decision_keep_the_index(t).await;
}
