//! Suspension of accounts, who may suspend what (and with which reason), and a second node
//! refusing within a second. On SQLite and PostgreSQL.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::json;

use super::{
    assert_oauth_refused, assert_refused, audit_actions, contact_check, introspect, reason,
};
use crate::harness::TestApp;
use crate::oauth::{basic, code_flow};

on_both_backends!(
    a_suspended_account_refuses_what_is_bound_to_it,
    who_may_suspend_and_what_a_reason_is,
    a_second_node_refuses_within_a_second,
);

async fn a_suspended_account_refuses_what_is_bound_to_it(app: &TestApp) {
    let f = app
        .fixture("Accounts", "private", &["contacts.readonly"])
        .await;
    let ag = f.ag.clone();
    let base = format!("/v1/agencies/{}", ag.id);
    // An agency admin: an unscoped key bound to agency_admin.
    let admin = app
        .post(
            &format!("{base}/api-keys"),
            &app.admin,
            json!({ "name": "agency admin", "scopes": [] }),
        )
        .await;
    assert_eq!(admin.status, StatusCode::CREATED, "{}", admin.body);
    let bind = app
        .post(
            &format!("{base}/bindings"),
            &app.admin,
            json!({ "principal": admin.id(), "role": "agency_admin" }),
        )
        .await;
    assert_eq!(bind.status, StatusCode::CREATED, "{}", bind.body);
    let admin = admin.body["secret"].as_str().unwrap().to_owned();
    // A key bound to the account, and another account that stays active.
    let bound = app
        .post(
            &format!("{base}/api-keys"),
            &app.admin,
            json!({ "name": "bound", "account": ag.acc, "scopes": ["contacts.readonly"] }),
        )
        .await;
    assert_eq!(bound.status, StatusCode::CREATED, "{}", bound.body);
    let bound = bound.body["secret"].as_str().unwrap().to_owned();
    let other = app
        .post(
            &format!("{base}/accounts"),
            &app.admin,
            json!({ "name": "Other" }),
        )
        .await
        .id();
    let auth = basic(&f.client_id, &f.secret);
    let t = code_flow(app, &f, "openid contacts.readonly").await;
    let at = t["access_token"].as_str().unwrap().to_owned();
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let acc_path = format!("{base}/accounts/{}", ag.acc);
    let bound_check = || app.post("/v1/check", &bound, contact_check(&ag.id, &ag.acc));
    assert_eq!(bound_check().await.body["allowed"], true);

    let r = app
        .post(&format!("{acc_path}/suspend"), &admin, reason("chargeback"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "suspended");
    assert_eq!(r.body["suspended_reason"], "chargeback");

    // Credentials bound to it: 403 account_suspended; introspection inactive.
    assert_refused(&bound_check().await, "account_suspended");
    assert_refused(
        &app.post("/v1/check", &at, contact_check(&ag.id, &ag.acc))
            .await,
        "account_suspended",
    );
    for token in [&bound, &at, &rt] {
        assert_eq!(
            introspect(app, token).await,
            json!({ "active": false }),
            "{token}"
        );
    }
    // Its installation gets no tokens; a refresh is refused without losing its family.
    assert_oauth_refused(
        &app.form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "client_credentials")],
        )
        .await,
        "account_suspended",
    );
    assert_oauth_refused(
        &app.form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await,
        "account_suspended",
    );
    // Checks on a resource there answer no, with the reason; another account is unaffected.
    let r = app
        .post("/v1/check", &admin, contact_check(&ag.id, &ag.acc))
        .await;
    assert_eq!(r.body["allowed"], false, "{}", r.body);
    assert_eq!(r.body["reason"], "account_suspended", "{}", r.body);
    let r = app
        .post("/v1/check", &admin, contact_check(&ag.id, &other))
        .await;
    assert_eq!(r.body["allowed"], true, "{}", r.body);
    let r = app
        .post(
            "/v1/check/batch",
            &admin,
            json!({ "checks": [contact_check(&ag.id, &ag.acc), contact_check(&ag.id, &other)] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["results"][0]["allowed"], false, "{}", r.body);
    assert_eq!(
        r.body["results"][0]["reason"], "account_suspended",
        "{}",
        r.body
    );
    assert_eq!(r.body["results"][1]["allowed"], true, "{}", r.body);
    // Agency-wide admins still read it.
    let r = app.get(&acc_path, &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "suspended");

    let r = app
        .post(&format!("{acc_path}/reinstate"), &admin, reason("resolved"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "active");
    assert_eq!(bound_check().await.body["allowed"], true);
    let r = app
        .post("/v1/check", &at, contact_check(&ag.id, &ag.acc))
        .await;
    assert_eq!(r.body["allowed"], true, "{}", r.body);
    let r = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let s = audit_actions(app, &ag.id, "account.suspend").await;
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["detail"]["reason"], "chargeback");
    assert_eq!(s[0]["target"], ag.acc);
    let r = audit_actions(app, &ag.id, "account.reinstate").await;
    assert_eq!(r[0]["detail"]["reason"], "resolved");
    assert_eq!(r[0]["detail"]["previous_status"], "suspended");
}

async fn who_may_suspend_and_what_a_reason_is(app: &TestApp) {
    let a = app.agency("Alpha").await;
    let b = app.agency("Beta").await;
    // An agency cannot suspend itself (agencies.suspend is a platform permission).
    let r = app
        .post(
            &format!("/v1/agencies/{}/suspend", a.id),
            &a.key,
            reason("me"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // A lesser credential without accounts.suspend: 403.
    let r = app
        .post(
            &format!("/v1/agencies/{}/accounts/{}/suspend", a.id, a.acc),
            &a.key,
            reason("x"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // A key holding the (internal) `accounts.suspend` scope may.
    let k = app
        .post(
            &format!("/v1/agencies/{}/api-keys", a.id),
            &app.admin,
            json!({ "name": "suspender", "scopes": ["accounts.suspend"] }),
        )
        .await;
    assert_eq!(k.status, StatusCode::CREATED, "{}", k.body);
    let k = k.body["secret"].as_str().unwrap().to_owned();
    for (verb, status) in [("suspend", "suspended"), ("reinstate", "active")] {
        let r = app
            .post(
                &format!("/v1/agencies/{}/accounts/{}/{verb}", a.id, a.acc),
                &k,
                reason("scoped"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["status"], status);
    }
    // Another agency's account: the same 404 as a missing one.
    let r = app
        .post(
            &format!("/v1/agencies/{}/accounts/{}/suspend", b.id, b.acc),
            &a.key,
            reason("x"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = app
        .post(
            &format!(
                "/v1/agencies/{}/accounts/{}/suspend",
                a.id,
                crate::harness::missing("acc")
            ),
            &app.admin,
            reason("x"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    // The platform tenant cannot be suspended.
    let platform = app.get("/v1/agencies", &app.admin).await;
    assert_eq!(platform.status, StatusCode::OK);
    let own = app.state.store.platform_agency().await.unwrap().unwrap().id;
    let r = app
        .post(
            &format!("/v1/agencies/{own}/suspend"),
            &app.admin,
            reason("x"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "platform_not_suspendable");
    // A reason is required, not blank, bounded.
    let path = format!("/v1/agencies/{}/suspend", a.id);
    for body in [
        json!({}),
        json!({ "reason": "" }),
        json!({ "reason": "   " }),
        json!({ "reason": "x".repeat(501) }),
        json!({ "reason": "ok", "extra": 1 }),
    ] {
        let r = app.post(&path, &app.admin, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
    }
    // Reinstating an active agency: 200, unchanged, nothing audited.
    let r = app
        .post(
            &format!("/v1/agencies/{}/reinstate", a.id),
            &app.admin,
            reason("noop"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "active");
    assert!(audit_actions(app, &a.id, "agency.reinstate")
        .await
        .is_empty());
    // The resources show their status.
    assert_eq!(
        app.get(&format!("/v1/agencies/{}", a.id), &a.key)
            .await
            .body["status"],
        "active"
    );
    let acc = app
        .get(&format!("/v1/agencies/{}/accounts/{}", a.id, a.acc), &a.key)
        .await;
    assert_eq!(acc.body["status"], "active", "{}", acc.body);
}

async fn a_second_node_refuses_within_a_second(app: &TestApp) {
    let f = app
        .fixture("Nodes", "private", &["contacts.readonly"])
        .await;
    let ag = f.ag.clone();
    let cc = app
        .form(
            "/oauth/token",
            Some(&basic(&f.client_id, &f.secret)),
            &[("grant_type", "client_credentials")],
        )
        .await
        .body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (node2, router2) = app.second_node().await;
    let ask = |token: String| {
        let router = router2.clone();
        let check = contact_check(&ag.id, &ag.acc);
        async move { crate::harness::check_on(&router, &token, &check).await.0 }
    };
    // Node 2 authenticates (and caches) both credentials.
    assert_eq!(ask(ag.key.clone()).await, StatusCode::OK);
    assert_eq!(ask(cc.clone()).await, StatusCode::OK);
    // Node 2 tails the feed as a serving node does.
    let follower = tokio::spawn(tessera_server::cluster::follow::follow(
        node2.engine.clone(),
        node2.store.change_signal(),
        tessera_server::cluster::follow::FollowCadence::default(),
    ));
    let r = app
        .post(
            &format!("/v1/agencies/{}/suspend", ag.id),
            &app.admin,
            reason("node test"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let started = Instant::now();
    loop {
        let (k, t) = (ask(ag.key.clone()).await, ask(cc.clone()).await);
        if k == StatusCode::FORBIDDEN && t == StatusCode::FORBIDDEN {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "node 2 still accepts after {:?}: key {k}, token {t}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "{took:?}");
    // And it follows the reinstatement too.
    app.post(
        &format!("/v1/agencies/{}/reinstate", ag.id),
        &app.admin,
        reason("back"),
    )
    .await;
    let started = Instant::now();
    while ask(ag.key.clone()).await != StatusCode::OK {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not reinstated on node 2"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ask(cc.clone()).await, StatusCode::OK);
    follower.abort();
}
