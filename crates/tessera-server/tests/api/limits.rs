//! Rate limits over HTTP (in-process backend): agency overrides set by the platform and
//! enforced, the 429 answer's shape and headers, an API key's own limit, and who may set what.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::harness::TestApp;

async fn apps() -> Vec<TestApp> {
    let mut v = vec![TestApp::sqlite().await];
    if let Some(pg) = TestApp::postgres().await {
        v.push(pg);
    }
    v
}

#[tokio::test]
async fn an_agency_override_is_enforced_with_the_ietf_headers() {
    for t in apps().await {
        let a = t.agency("limited").await;
        let b = t.agency("neighbour").await;
        let path = format!("/v1/agencies/{}/limits", a.id);
        let r = t
            .call(
                Method::PUT,
                &path,
                Some(&t.admin),
                Some(json!({ "plan": "standard", "overrides": { "read": { "limit": 3, "period_seconds": 60 } } })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["plan"], "standard");
        assert_eq!(r.body["effective"]["read"]["limit"], 3);
        assert!(r.body["effective"]["check"]["limit"].as_u64().is_some());
        let accounts = format!("/v1/agencies/{}/accounts", a.id);
        for left in (0..3).rev() {
            let r = t.get(&accounts, &a.key).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert_eq!(
                r.headers["ratelimit-policy"].to_str().unwrap(),
                "\"read.agency\";q=3;w=60"
            );
            assert!(r.headers["ratelimit"]
                .to_str()
                .unwrap()
                .starts_with(&format!("\"read.agency\";r={left};t=")));
        }
        let r = t.get(&accounts, &a.key).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
        assert_eq!(r.code(), "rate_limited");
        assert_eq!(
            r.headers["content-type"].to_str().unwrap(),
            "application/problem+json"
        );
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=20).contains(&retry), "{retry}");
        assert_eq!(
            r.headers["ratelimit-policy"].to_str().unwrap(),
            "\"read.agency\";q=3;w=60"
        );
        assert_eq!(
            r.headers["ratelimit"].to_str().unwrap(),
            format!("\"read.agency\";r=0;t={retry}")
        );
        // The neighbour is not affected, and carries no headers (no limit applies to it).
        let r = t
            .get(&format!("/v1/agencies/{}/accounts", b.id), &b.key)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.headers.get("ratelimit").is_none());
        // The agency's admins read their limits, but never set them.
        let r = t
            .get(&format!("/v1/agencies/{}/limits", b.id), &b.key)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["plan"], json!(null));
        let r = t
            .call(
                Method::PUT,
                &format!("/v1/agencies/{}/limits", b.id),
                Some(&b.key),
                Some(json!({ "plan": "enterprise" })),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    }
}

#[tokio::test]
async fn bad_overrides_are_400() {
    let t = TestApp::sqlite().await;
    let a = t.agency("a").await;
    let path = format!("/v1/agencies/{}/limits", a.id);
    for body in [
        json!({ "plan": "platinum" }),
        json!({ "overrides": { "nope": { "limit": 1, "period_seconds": 1 } } }),
        json!({ "overrides": { "read": { "limit": 0, "period_seconds": 1 } } }),
        json!({ "overrides": { "read": { "limit": 1, "period_seconds": 86401 } } }),
        json!({ "overrides": { "read": { "limit": 1 } } }),
        json!({ "plan": "free", "extra": 1 }),
    ] {
        let r = t
            .call(Method::PUT, &path, Some(&t.admin), Some(body.clone()))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.code(), "invalid_request", "{body}");
    }
}

#[tokio::test]
async fn a_key_carries_its_own_limit_never_above_its_agency() {
    let t = TestApp::sqlite().await;
    let a = t.agency("a").await;
    let keys = format!("/v1/agencies/{}/api-keys", a.id);
    let r = t
        .post(
            &keys,
            &a.key,
            json!({ "name": "slow", "scopes": ["accounts.readonly"], "rate_limit": { "limit": 2, "period_seconds": 60 } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        r.body["rate_limit"],
        json!({ "limit": 2, "period_seconds": 60 })
    );
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    let accounts = format!("/v1/agencies/{}/accounts", a.id);
    for _ in 0..2 {
        assert_eq!(t.get(&accounts, &secret).await.status, StatusCode::OK);
    }
    let r = t.get(&accounts, &secret).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.headers["ratelimit-policy"].to_str().unwrap(),
        "\"read.key\";q=2;w=60"
    );
    // Other keys of the agency are not charged.
    assert_eq!(t.get(&accounts, &a.key).await.status, StatusCode::OK);
    // Invalid, and faster than the agency's quota: 400.
    for rl in [
        json!({ "limit": 0, "period_seconds": 60 }),
        json!({ "limit": 1, "period_seconds": 0 }),
    ] {
        let r = t
            .post(
                &keys,
                &a.key,
                json!({ "name": "bad", "scopes": [], "rate_limit": rl }),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    }
    let r = t
        .call(
            Method::PUT,
            &format!("/v1/agencies/{}/limits", a.id),
            Some(&t.admin),
            Some(json!({ "overrides": { "check": { "limit": 10, "period_seconds": 1 } } })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = t
        .post(
            &keys,
            &a.key,
            json!({ "name": "fast", "scopes": [], "rate_limit": { "limit": 100, "period_seconds": 1 } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "invalid_request");
    assert!(r.body["detail"].as_str().unwrap().contains("check"));
    let r = t
        .post(
            &keys,
            &a.key,
            json!({ "name": "ok", "scopes": [], "rate_limit": { "limit": 5, "period_seconds": 1 } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn the_oauth_endpoints_answer_429_with_both_error_forms() {
    let settings = tessera_server::services::EngineSettings {
        rate_limits: tessera_server::ratelimit::RateLimitSettings::resolve(
            None,
            None,
            &["introspect.key=2/60".into()],
            None,
        )
        .unwrap(),
        ..Default::default()
    };
    let t = TestApp::sqlite_with(settings).await;
    let introspect = || {
        axum::http::Request::builder()
            .method(Method::POST)
            .uri("/oauth/introspect")
            .header("authorization", format!("Bearer {}", t.admin))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::from("token=nope"))
            .unwrap()
    };
    for left in [1, 0] {
        let r = t.raw(introspect()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["active"], false);
        assert_eq!(
            r.headers["ratelimit-policy"].to_str().unwrap(),
            "\"introspect.key\";q=2;w=60"
        );
        assert!(r.headers["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with(&format!("\"introspect.key\";r={left};")));
    }
    let r = t.raw(introspect()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "rate_limited");
    assert_eq!(r.body["error"], "temporarily_unavailable");
    assert!(r.body["error_description"].as_str().is_some());
    assert_eq!(
        r.headers["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    assert_eq!(r.headers["retry-after"].to_str().unwrap(), "30");
    assert_eq!(
        r.headers["ratelimit"].to_str().unwrap(),
        "\"introspect.key\";r=0;t=30"
    );
}

/// One quota for every API class at once (`limit` + `period_seconds` at the top), and the
/// class names people reach for (`reads`, `introspection`, …) stored under their wire name.
#[tokio::test]
async fn one_quota_for_every_class_and_class_aliases() {
    let t = TestApp::sqlite().await;
    let a = t.agency("flat").await;
    let path = format!("/v1/agencies/{}/limits", a.id);
    let r = t
        .call(
            Method::PUT,
            &path,
            Some(&t.admin),
            Some(json!({ "limit": 2, "period_seconds": 60, "overrides": { "introspection": { "limit": 7, "period_seconds": 1 } } })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for class in ["token", "check", "read", "write"] {
        assert_eq!(
            r.body["overrides"][class],
            json!({ "limit": 2, "period_seconds": 60 }),
            "{class}: {}",
            r.body
        );
    }
    assert_eq!(r.body["overrides"]["introspect"]["limit"], 7);
    assert!(r.body["overrides"].get("signin").is_none());
    let accounts = format!("/v1/agencies/{}/accounts", a.id);
    assert_eq!(t.get(&accounts, &a.key).await.status, StatusCode::OK);
    assert_eq!(t.get(&accounts, &a.key).await.status, StatusCode::OK);
    let r = t.get(&accounts, &a.key).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    // Half a quota is a 400.
    let r = t
        .call(
            Method::PUT,
            &path,
            Some(&t.admin),
            Some(json!({ "limit": 2 })),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
}
