//! API key life cycle: rotation with a grace period, revocation on the next request, expiry,
//! and `last_used_at` written in batches, not per request.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::TestApp;

#[tokio::test]
async fn rotation_keeps_the_old_secret_for_the_grace_period_only() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Rot").await;
    let k = t
        .post(
            &format!("/v1/agencies/{}/api-keys", a.id),
            &a.key,
            json!({ "name": "r", "scopes": ["accounts.readonly"] }),
        )
        .await;
    let (kid, old) = (k.id(), k.body["secret"].as_str().unwrap().to_owned());
    let probe = format!("/v1/agencies/{}/accounts", a.id);
    let r = t
        .post(
            &format!("/v1/agencies/{}/api-keys/{kid}/rotate", a.id),
            &a.key,
            json!({ "grace_seconds": 60 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let new = r.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(r.body["rotated_at"].is_string());
    assert_eq!(t.get(&probe, &old).await.status, StatusCode::OK);
    assert_eq!(t.get(&probe, &new).await.status, StatusCode::OK);
    t.clock.advance(61_000);
    assert_eq!(t.get(&probe, &old).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.get(&probe, &new).await.status, StatusCode::OK);
    // A rotation with no body uses the default grace; an excessive grace is refused.
    let r = t
        .call(
            axum::http::Method::POST,
            &format!("/v1/agencies/{}/api-keys/{kid}/rotate", a.id),
            Some(&a.key),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = t
        .post(
            &format!("/v1/agencies/{}/api-keys/{kid}/rotate", a.id),
            &a.key,
            json!({ "grace_seconds": 10_000_000 }),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
}

#[tokio::test]
async fn revocation_takes_effect_on_the_next_request() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Rev").await;
    let k = t
        .post(
            &format!("/v1/agencies/{}/api-keys", a.id),
            &a.key,
            json!({ "name": "r", "scopes": ["accounts.readonly"] }),
        )
        .await;
    let (kid, secret) = (k.id(), k.body["secret"].as_str().unwrap().to_owned());
    let probe = format!("/v1/agencies/{}/accounts", a.id);
    assert_eq!(t.get(&probe, &secret).await.status, StatusCode::OK);
    assert_eq!(
        t.delete(&format!("/v1/agencies/{}/api-keys/{kid}", a.id), &a.key)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.get(&probe, &secret).await.status,
        StatusCode::UNAUTHORIZED
    );
    let got = t
        .get(&format!("/v1/agencies/{}/api-keys/{kid}", a.id), &a.key)
        .await;
    assert!(got.body["revoked_at"].is_string());
    let r = t
        .post(
            &format!("/v1/agencies/{}/api-keys/{kid}/rotate", a.id),
            &a.key,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn expired_keys_stop_working() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Exp").await;
    let at = tessera_core::time::format_rfc3339(crate::harness::T0 + 3_600_000);
    let k = t
        .post(
            &format!("/v1/agencies/{}/api-keys", a.id),
            &a.key,
            json!({ "name": "e", "scopes": ["accounts.readonly"], "expires_at": at }),
        )
        .await;
    assert_eq!(k.status, StatusCode::CREATED, "{}", k.body);
    let secret = k.body["secret"].as_str().unwrap().to_owned();
    let probe = format!("/v1/agencies/{}/accounts", a.id);
    assert_eq!(t.get(&probe, &secret).await.status, StatusCode::OK);
    t.clock.advance(3_600_001);
    assert_eq!(
        t.get(&probe, &secret).await.status,
        StatusCode::UNAUTHORIZED
    );
    for bad in ["yesterday", "2001-01-01T00:00:00Z"] {
        let r = t
            .post(
                &format!("/v1/agencies/{}/api-keys", a.id),
                &a.key,
                json!({ "name": "e", "scopes": [], "expires_at": bad }),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn last_used_is_recorded_in_batches() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Use").await;
    let probe = format!("/v1/agencies/{}/accounts", a.id);
    let key_path = format!("/v1/agencies/{}/api-keys/{}", a.id, a.key_id);
    t.get(&probe, &a.key).await;
    let before = t.get(&key_path, &t.admin).await;
    assert!(
        before.body["last_used_at"].is_null(),
        "no write on the request path"
    );
    t.state.key_usage.flush(t.state.store.as_ref()).await;
    let after = t.get(&key_path, &t.admin).await;
    assert_eq!(
        after.body["last_used_at"],
        tessera_core::time::format_rfc3339(crate::harness::T0)
    );
    // Kept to the minute: a key in constant use is not written at every flush (at 200k busy
    // keys that would be 200k updates every 15 s), only once a minute has passed.
    t.clock.advance(30_000);
    t.get(&probe, &a.key).await;
    t.state.key_usage.flush(t.state.store.as_ref()).await;
    let within = t.get(&key_path, &t.admin).await;
    assert_eq!(
        within.body["last_used_at"],
        tessera_core::time::format_rfc3339(crate::harness::T0),
        "a use 30 s after the last one written waits"
    );
    t.clock.advance(31_000);
    t.get(&probe, &a.key).await;
    t.state.key_usage.flush(t.state.store.as_ref()).await;
    let later = t.get(&key_path, &t.admin).await;
    assert_eq!(
        later.body["last_used_at"],
        tessera_core::time::format_rfc3339(crate::harness::T0 + 61_000),
        "a use a minute after the last one written is written"
    );
}
