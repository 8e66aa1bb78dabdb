//! The sign-in class's rate limit: the form's POST is charged per address and per email; a
//! refused attempt gets a 429 page with `Retry-After`, before any password is hashed.

use axum::http::{Method, StatusCode};

use super::{auth_query, collect_cookies, hidden, REDIRECT};
use crate::harness::TestApp;

#[tokio::test]
async fn sign_in_attempts_beyond_the_quota_get_a_429_page() {
    let settings = tessera_server::services::EngineSettings {
        rate_limits: tessera_server::ratelimit::RateLimitSettings::resolve(
            None,
            None,
            &["signin.user=2/60".into()],
            None,
        )
        .unwrap(),
        ..Default::default()
    };
    let app = TestApp::sqlite_with(settings).await;
    let f = app
        .fixture("Limited", "private", &["contacts.readonly"])
        .await;
    let uri = format!("/oauth/authorize?{}", auth_query(&f, "openid", REDIRECT));
    let (status, headers, page) = app.browser(Method::GET, &uri, "", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let cookies = collect_cookies(&headers, String::new());
    let csrf = hidden(&page, "csrf_token");
    let attempt = |email: String| {
        serde_urlencoded::to_string([
            ("email", email.as_str()),
            ("password", "wrong"),
            ("csrf_token", csrf.as_str()),
        ])
        .unwrap()
    };
    for _ in 0..2 {
        let (status, _, page) = app
            .browser(Method::POST, &uri, &cookies, Some(attempt(f.email.clone())))
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "a wrong password shows the form again: {page}"
        );
    }
    // The same email, in other case and with spaces: the same bucket.
    let (status, headers, page) = app
        .browser(
            Method::POST,
            &uri,
            &cookies,
            Some(attempt(format!("  {}  ", f.email.to_uppercase()))),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{page}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert!(page.contains("Too many sign-in attempts"), "{page}");
    // Another email is not affected.
    let (status, _, _) = app
        .browser(
            Method::POST,
            &uri,
            &cookies,
            Some(attempt("other@example.com".into())),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
