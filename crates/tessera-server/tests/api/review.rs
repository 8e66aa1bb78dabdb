//! Marketplace review (issue 10, part 5): a marketplace app asking for partner scopes is
//! pending until a platform reviewer approves it, installable meanwhile in its own agency only;
//! a rejection carries a reason; a partner scope added later goes back to review; decisions are
//! audited. On SQLite and PostgreSQL.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::harness::{Agency, TestApp};
use crate::oauth::{basic, REDIRECT};

on_both_backends!(
    partner_scopes_wait_for_a_platform_reviewer,
    a_partner_scope_added_later_goes_back_to_review,
);

const PARTNER: &str = "workflows.trigger";

async fn install(
    app: &TestApp,
    on: &Agency,
    account: &str,
    id: &str,
    scopes: &[&str],
) -> crate::harness::Resp {
    app.post(
        &format!("/v1/agencies/{}/accounts/{account}/installations", on.id),
        &app.admin,
        json!({ "app": id, "scopes": scopes }),
    )
    .await
}

async fn review(
    app: &TestApp,
    key: &str,
    owner: &Agency,
    id: &str,
    body: Value,
) -> crate::harness::Resp {
    app.post(
        &format!("/v1/agencies/{}/apps/{id}/review", owner.id),
        key,
        body,
    )
    .await
}

async fn audit(app: &TestApp, agency: &str, action: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/v1/agencies/{agency}/audit?action={action}"),
            &app.admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

async fn partner_scopes_wait_for_a_platform_reviewer(app: &TestApp) {
    let partner = app.agency("Partner").await;
    let customer = app.agency("Customer").await;
    // Nothing to review: public scopes only.
    let plain = app.post(&format!("/v1/agencies/{}/apps", partner.id), &app.admin, json!({ "name": "Plain", "redirect_uris": [REDIRECT], "scopes": ["contacts.readonly"], "confidential": true, "kind": "marketplace" })).await;
    assert_eq!(plain.body["review"], "approved", "{}", plain.body);
    let m = app.post(&format!("/v1/agencies/{}/apps", partner.id), &app.admin, json!({ "name": "Automator", "redirect_uris": [REDIRECT], "scopes": ["contacts.readonly", PARTNER], "confidential": true, "kind": "marketplace" })).await;
    assert_eq!(m.status, StatusCode::CREATED, "{}", m.body);
    assert_eq!(m.body["review"], "pending", "{}", m.body);
    assert_eq!(m.body["pending_scopes"], json!([PARTNER]));
    let id = m.id();
    let secret = m.body["client_secret"].as_str().unwrap().to_owned();
    let read = app
        .get(
            &format!("/v1/agencies/{}/apps/{id}", partner.id),
            &app.admin,
        )
        .await;
    assert_eq!(read.body["review"], "pending");

    // Its own agency may install it with every scope (testing); another only with approved ones.
    let r = install(
        app,
        &partner,
        &partner.acc,
        &id,
        &["contacts.readonly", PARTNER],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = install(
        app,
        &customer,
        &customer.acc,
        &id,
        &["contacts.readonly", PARTNER],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.code(), "app_not_approved");
    assert_eq!(r.body["unapproved_scopes"], json!([PARTNER]));
    let r = install(app, &customer, &customer.acc, &id, &["contacts.readonly"]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let limited = r.id();
    // The limited installation works.
    let cc = app
        .form(
            "/oauth/token",
            Some(&basic(&id, &secret)),
            &[
                ("grant_type", "client_credentials"),
                ("installation", &limited),
            ],
        )
        .await;
    assert_eq!(cc.status, StatusCode::OK, "{}", cc.body);

    // Only a platform reviewer decides: the partner's own admin cannot.
    let r = review(
        app,
        &partner.key,
        &partner,
        &id,
        json!({ "decision": "approve" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = review(
        app,
        &customer.key,
        &partner,
        &id,
        json!({ "decision": "approve" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    // A rejection carries a reason.
    let r = review(
        app,
        &app.admin,
        &partner,
        &id,
        json!({ "decision": "reject" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = review(
        app,
        &app.admin,
        &partner,
        &id,
        json!({ "decision": "maybe", "reason": "x" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = review(
        app,
        &app.admin,
        &partner,
        &id,
        json!({ "decision": "reject", "reason": "too broad" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["review"], "rejected");
    assert_eq!(r.body["review_reason"], "too broad");
    assert_eq!(r.body["pending_scopes"], json!([PARTNER]));
    let other = app
        .post(
            &format!("/v1/agencies/{}/accounts", customer.id),
            &app.admin,
            json!({ "name": "Second" }),
        )
        .await
        .id();
    let r = install(app, &customer, &other, &id, &["contacts.readonly", PARTNER]).await;
    assert_eq!(r.code(), "app_not_approved", "{}", r.body);

    // Approval: every scope installable everywhere.
    let r = review(
        app,
        &app.admin,
        &partner,
        &id,
        json!({ "decision": "approve", "reason": "checked" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["review"], "approved");
    assert!(r.body.get("pending_scopes").is_none(), "{}", r.body);
    assert!(r.body.get("review_reason").is_none(), "{}", r.body);
    let r = install(app, &customer, &other, &id, &["contacts.readonly", PARTNER]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Nothing left to review.
    let r = review(
        app,
        &app.admin,
        &partner,
        &id,
        json!({ "decision": "approve" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);

    // Both decisions are audited in the partner's chain, with the reason and the scopes.
    let rejected = audit(app, &partner.id, "app.reject").await;
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["detail"]["reason"], "too broad");
    assert_eq!(rejected[0]["detail"]["scopes"], json!([PARTNER]));
    assert_eq!(rejected[0]["target"], id);
    let approved = audit(app, &partner.id, "app.approve").await;
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0]["detail"]["reason"], "checked");
    assert_eq!(approved[0]["detail"]["previous_review"], "rejected");
}

async fn a_partner_scope_added_later_goes_back_to_review(app: &TestApp) {
    let partner = app.agency("Partner").await;
    let customer = app.agency("Customer").await;
    let m = app.post(&format!("/v1/agencies/{}/apps", partner.id), &app.admin, json!({ "name": "Grower", "redirect_uris": [REDIRECT], "scopes": ["contacts.readonly"], "confidential": true, "kind": "marketplace" })).await;
    let id = m.id();
    let secret = m.body["client_secret"].as_str().unwrap().to_owned();
    let ins = install(app, &customer, &customer.acc, &id, &["contacts.readonly"]).await;
    assert_eq!(ins.status, StatusCode::CREATED, "{}", ins.body);
    let path = format!("/v1/agencies/{}/apps/{id}", partner.id);
    // A change is validated like a creation.
    for bad in [
        json!({ "scopes": ["no.such.scope"] }),
        json!({ "scopes": ["platform.admin"] }),
        json!({ "redirect_uris": ["http://example.com/cb"] }),
        json!({ "name": "" }),
        json!({ "kind": "first_party" }),
    ] {
        let r = app.patch(&path, &app.admin, bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    // Adding a public scope needs no review; a partner scope does, for that scope only.
    let r = app
        .patch(
            &path,
            &app.admin,
            json!({ "name": "Grower 2", "scopes": ["contacts.readonly", "calendars.readonly"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["review"], "approved");
    assert_eq!(r.body["name"], "Grower 2");
    let r = app
        .patch(
            &path,
            &app.admin,
            json!({ "scopes": ["contacts.readonly", "calendars.readonly", PARTNER] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["review"], "pending");
    assert_eq!(r.body["pending_scopes"], json!([PARTNER]));
    // The installation made with approved scopes keeps working.
    let cc = app
        .form(
            "/oauth/token",
            Some(&basic(&id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(cc.status, StatusCode::OK, "{}", cc.body);
    // The new scope is not installable elsewhere until approved.
    let other = app
        .post(
            &format!("/v1/agencies/{}/accounts", customer.id),
            &app.admin,
            json!({ "name": "Second" }),
        )
        .await
        .id();
    let r = install(app, &customer, &other, &id, &[PARTNER]).await;
    assert_eq!(r.code(), "app_not_approved", "{}", r.body);
    let r = install(app, &customer, &other, &id, &["calendars.readonly"]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // A lesser app manager (apps.write, contacts.read only) may rename the app but not give
    // it scopes whose permissions it does not hold (I2).
    let base = format!("/v1/agencies/{}", partner.id);
    let role = app
        .post(&format!("{base}/roles"), &app.admin, json!({ "name": "app manager", "permissions": ["apps.read", "apps.write", "contacts.read", "calendars.read", "appointments.read", "workflows.read", "workflows.trigger"] }))
        .await;
    assert_eq!(role.status, StatusCode::CREATED, "{}", role.body);
    let key = app
        .post(
            &format!("{base}/api-keys"),
            &app.admin,
            json!({ "name": "apps", "scopes": [] }),
        )
        .await;
    let bound = app
        .post(
            &format!("{base}/bindings"),
            &app.admin,
            json!({ "principal": key.id(), "role": role.id() }),
        )
        .await;
    assert_eq!(bound.status, StatusCode::CREATED, "{}", bound.body);
    let key = key.body["secret"].as_str().unwrap().to_owned();
    let r = app.patch(&path, &key, json!({ "name": "Grower 3" })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .patch(&path, &key, json!({ "scopes": ["contacts.readonly", "calendars.readonly", PARTNER, "payments.refund"] }))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(
        r.body["missing_permissions"],
        json!(["payments.read", "payments.refund"]),
        "{}",
        r.body
    );
    let updates = audit(app, &partner.id, "app.update").await;
    assert_eq!(updates.len(), 3, "{updates:?}");
}
