//! I2: nobody grants what they do not hold; credentials are capped by their scopes and account.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::TestApp;

#[tokio::test]
async fn a_key_cannot_mint_a_broader_key() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Esc").await;
    let keys = format!("/v1/agencies/{}/api-keys", a.id);
    // The admin key lacks billing and platform permissions.
    for scopes in [
        json!(["billing.write"]),
        json!(["platform.admin"]),
        json!(["agencies.write"]),
        json!(["contacts.readonly", "payments.refund"]),
    ] {
        let r = t
            .post(&keys, &a.key, json!({ "name": "up", "scopes": scopes }))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{scopes}: {}",
            r.body
        );
        assert!(r.body["missing_permissions"]
            .as_array()
            .is_some_and(|m| !m.is_empty()));
    }
    let r = t
        .post(
            &keys,
            &a.key,
            json!({ "name": "x", "scopes": ["no.such.scope"] }),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    assert_eq!(r.body["unknown_scopes"], json!(["no.such.scope"]));
    // A narrower key is fine, and it can mint nothing broader than itself.
    let narrow = t
        .post(
            &keys,
            &a.key,
            json!({ "name": "n", "scopes": ["api_keys.write", "contacts.readonly"] }),
        )
        .await;
    assert_eq!(narrow.status, StatusCode::CREATED, "{}", narrow.body);
    let narrow = narrow.body["secret"].as_str().unwrap().to_owned();
    let r = t
        .post(
            &keys,
            &narrow,
            json!({ "name": "y", "scopes": ["contacts.write"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = t
        .post(
            &keys,
            &narrow,
            json!({ "name": "y", "scopes": ["contacts.readonly"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The refusals are audited.
    let denied = t
        .get(
            &format!("/v1/agencies/{}/audit?action=authz.denied", a.id),
            &a.key,
        )
        .await;
    assert!(
        denied.body["items"].as_array().unwrap().len() >= 5,
        "{}",
        denied.body
    );
}

#[tokio::test]
async fn roles_are_granted_only_within_what_the_granter_holds() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Grant").await;
    let bindings = format!("/v1/agencies/{}/bindings", a.id);
    // agency_owner includes billing.write, which the admin key's scopes do not.
    let r = t
        .post(
            &bindings,
            &a.key,
            json!({ "principal": a.user, "role": "agency_owner" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body["missing_permissions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "billing.write"));
    // The platform may grant it.
    let r = t
        .post(
            &bindings,
            &t.admin,
            json!({ "principal": a.user, "role": "agency_owner" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let dup = t
        .post(
            &bindings,
            &t.admin,
            json!({ "principal": a.user, "role": "agency_owner" }),
        )
        .await;
    assert_eq!((dup.status, dup.code()), (StatusCode::CONFLICT, "conflict"));
    assert_eq!(dup.body["constraint"], "binding");
    // An agency-level role cannot be bound to one account; an unknown role is refused.
    let r = t
        .post(
            &bindings,
            &t.admin,
            json!({ "principal": a.user, "role": "agency_admin", "account": a.acc }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t
        .post(
            &bindings,
            &t.admin,
            json!({ "principal": a.user, "role": "god" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn account_keys_act_on_their_account_only() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Acct").await;
    let other = t
        .post(
            &format!("/v1/agencies/{}/accounts", a.id),
            &a.key,
            json!({ "name": "other" }),
        )
        .await
        .id();
    let k = t.post(&format!("/v1/agencies/{}/api-keys", a.id), &a.key, json!({ "name": "acct", "scopes": ["accounts.write", "api_keys.write"], "account": a.acc })).await;
    assert_eq!(k.status, StatusCode::CREATED, "{}", k.body);
    let k = k.body["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        t.get(&format!("/v1/agencies/{}/accounts/{}", a.id, a.acc), &k)
            .await
            .status,
        StatusCode::OK
    );
    let r = t
        .patch(
            &format!("/v1/agencies/{}/accounts/{}", a.id, a.acc),
            &k,
            json!({ "name": "mine" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        t.get(&format!("/v1/agencies/{}/accounts/{other}", a.id), &k)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.get(&format!("/v1/agencies/{}/accounts", a.id), &k)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // It can mint keys for its account, but not agency-wide ones nor for another account.
    let r = t
        .post(
            &format!("/v1/agencies/{}/api-keys", a.id),
            &k,
            json!({ "name": "x", "scopes": ["accounts.readonly"], "account": a.acc }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = t
        .post(
            &format!("/v1/agencies/{}/api-keys", a.id),
            &k,
            json!({ "name": "x", "scopes": ["accounts.readonly"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .post(
            &format!("/v1/agencies/{}/api-keys", a.id),
            &k,
            json!({ "name": "x", "scopes": ["accounts.readonly"], "account": other }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_unscoped_key_holds_only_what_is_bound_to_it() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Svc").await;
    let k = t
        .post(
            &format!("/v1/agencies/{}/api-keys", a.id),
            &a.key,
            json!({ "name": "svc", "scopes": [] }),
        )
        .await;
    assert_eq!(k.status, StatusCode::CREATED);
    let (kid, secret) = (k.id(), k.body["secret"].as_str().unwrap().to_owned());
    assert_eq!(
        t.get(
            &format!("/v1/agencies/{}/accounts/{}", a.id, a.acc),
            &secret
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    // The admin key's scopes lack the domain reads of `account_viewer`: it cannot grant it (I2).
    let r = t
        .post(
            &format!("/v1/agencies/{}/bindings", a.id),
            &a.key,
            json!({ "principal": kid, "role": "account_viewer", "account": a.acc }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let b = t
        .post(
            &format!("/v1/agencies/{}/bindings", a.id),
            &t.admin,
            json!({ "principal": kid, "role": "account_viewer", "account": a.acc }),
        )
        .await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
    assert_eq!(
        t.get(
            &format!("/v1/agencies/{}/accounts/{}", a.id, a.acc),
            &secret
        )
        .await
        .status,
        StatusCode::OK
    );
    // Removing the binding takes effect on the next request. (The admin key may not: the key
    // holds domain reads the admin key lacks, I2.)
    assert_eq!(
        t.delete(
            &format!("/v1/agencies/{}/bindings/{}", a.id, b.id()),
            &a.key
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.delete(
            &format!("/v1/agencies/{}/bindings/{}", a.id, b.id()),
            &t.admin
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.get(
            &format!("/v1/agencies/{}/accounts/{}", a.id, a.acc),
            &secret
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
}
