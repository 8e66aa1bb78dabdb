//! I7: malformed input gets a 4xx with a stable code, never a 5xx (the harness fails any 5xx).

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use crate::harness::{missing, TestApp};

#[tokio::test]
async fn bad_bodies_get_stable_codes() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Input").await;
    let users = format!("/v1/agencies/{}/users", a.id);
    let send = |body: &'static str, ctype: Option<&'static str>| {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri(users.clone())
            .header("authorization", format!("Bearer {}", a.key));
        if let Some(c) = ctype {
            b = b.header("content-type", c);
        }
        b.body(Body::from(body)).unwrap()
    };
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            send("{not json", Some("application/json")),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            send(r#"{"email": 5, "name": "x"}"#, Some("application/json")),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            send(
                r#"{"email": "a@b.co", "name": "x", "admin": true}"#,
                Some("application/json"),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            send(r#"{"email": "a@b.co"}"#, Some("application/json")),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            send(r#"[]"#, Some("application/json")),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            send(r#"{"email": "a@b.co", "name": "x"}"#, None),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            send(r#"{"email": "a@b.co", "name": "x"}"#, Some("text/plain")),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (req, status, code) in cases {
        let r = t.raw(req).await;
        assert_eq!((r.status, r.code()), (status, code), "{}", r.body);
        assert!(r.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let big = format!(
        r#"{{"email": "a@b.co", "name": "{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let r = t
        .raw(
            Request::builder()
                .method(Method::POST)
                .uri(&users)
                .header("authorization", format!("Bearer {}", a.key))
                .header("content-type", "application/json")
                .body(Body::from(big))
                .unwrap(),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    for (body, why) in [
        (json!({ "email": "not-an-email", "name": "x" }), "email"),
        (json!({ "email": "a@b.co", "name": "" }), "name"),
        (
            json!({ "email": "a@b.co", "name": "x", "password": "short" }),
            "password",
        ),
    ] {
        let r = t.post(&users, &a.key, body).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{why}: {}",
            r.body
        );
        assert!(
            r.body["detail"].as_str().unwrap().contains(why),
            "{}",
            r.body
        );
    }
    let ok = t
        .post(
            &users,
            &a.key,
            json!({ "email": "dup@x.test", "name": "x" }),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    let dup = t
        .post(
            &users,
            &a.key,
            json!({ "email": "DUP@x.test", "name": "y" }),
        )
        .await;
    assert_eq!((dup.status, dup.code()), (StatusCode::CONFLICT, "conflict"));
    assert_eq!(dup.body["constraint"], "email");
}

#[tokio::test]
async fn ids_of_the_wrong_type_are_400() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Ids").await;
    for path in [
        format!("/v1/agencies/{}", a.acc),
        format!("/v1/agencies/{}/accounts/{}", a.id, a.user),
        format!("/v1/agencies/{}/users/{}", a.id, a.acc),
        format!("/v1/agencies/{}/api-keys/nope", a.id),
        "/v1/agencies/agy_%00/accounts".to_owned(),
    ] {
        let r = t.get(&path, &a.key).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_id"),
            "{path}: {}",
            r.body
        );
    }
    let r = t
        .post(
            &format!("/v1/agencies/{}/bindings", a.id),
            &a.key,
            json!({ "principal": a.acc, "role": "agency_user" }),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "{}",
        r.body
    );
    let r = t
        .get(
            &format!("/v1/agencies/{}/users/{}", a.id, missing("usr")),
            &a.key,
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let t = TestApp::sqlite().await;
    let r = t.get("/v1/nope", &t.admin).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
    let r = t
        .call(Method::PUT, "/v1/agencies", Some(&t.admin), Some(json!({})))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}

#[tokio::test]
async fn bad_credentials_are_401_with_a_challenge() {
    let t = TestApp::sqlite().await;
    let mut flipped = t.admin.clone().into_bytes();
    flipped[10] = if flipped[10] == b'a' { b'b' } else { b'a' };
    let flipped = String::from_utf8(flipped).unwrap();
    let unknown = tessera_token::generate_api_key_os();
    for auth in [
        None,
        Some("Basic abc".to_owned()),
        Some("Bearer ".to_owned()),
        Some("Bearer eyJhbGciOiJub25lIn0.e30.".to_owned()),
        Some(format!("Bearer {flipped}")),
        Some(format!("Bearer {}", unknown.expose())),
    ] {
        let mut b = Request::builder().uri("/v1/agencies");
        if let Some(a) = &auth {
            b = b.header("authorization", a);
        }
        let r = t.raw(b.body(Body::empty()).unwrap()).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{auth:?}"
        );
        assert!(r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        assert!(
            !r.body.to_string().contains("tsk_"),
            "an error never echoes a secret"
        );
    }
    let r = t
        .call(Method::GET, "/v1/agencies", Some(&flipped), None)
        .await;
    assert!(
        r.body["detail"].as_str().unwrap().contains("checksum"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn every_v1_route_requires_a_credential() {
    let t = TestApp::sqlite().await;
    for r in tessera_server::http::routes::table() {
        let path = r
            .path
            .replace("{agy}", &missing("agy"))
            .replace("{acc}", &missing("acc"))
            .replace("{usr}", &missing("usr"))
            .replace("{bnd}", &missing("bnd"))
            .replace("{key}", &missing("key"));
        let resp = t
            .call(r.method.clone(), &path, None, r.request.map(|_| json!({})))
            .await;
        assert_eq!(
            resp.status,
            StatusCode::UNAUTHORIZED,
            "{} {}",
            r.method,
            r.path
        );
    }
}

/// PostgreSQL cannot store NUL in text: a NUL anywhere in input is the client's mistake (400),
/// never a store error (5xx). Checked on both backends.
async fn nul_characters_are_refused(t: &TestApp) {
    let a = t.agency("Nul").await;
    let base = format!("/v1/agencies/{}", a.id);
    let cases = [
        (
            Method::POST,
            format!("{base}/roles"),
            Some(
                json!({ "name": "r", "description": "a\u{0}b", "permissions": ["contacts.read"] }),
            ),
        ),
        (
            Method::POST,
            format!("{base}/policies"),
            Some(
                json!({ "cedar": "forbid(principal, action, resource);", "description": "x\u{0}" }),
            ),
        ),
        (
            Method::POST,
            format!("{base}/accounts"),
            Some(json!({ "name": "a\u{0}b" })),
        ),
        (Method::GET, format!("{base}/audit?actor=%00"), None),
        (Method::GET, format!("{base}/audit?action=x%00y"), None),
    ];
    for (m, path, body) in cases {
        let r = t.call(m.clone(), &path, Some(&a.key), body).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{m} {path}: {}",
            r.body
        );
    }
    // A check is never stored: NUL in what it asks about is just data, answered normally.
    let r = t
        .post("/v1/check", &a.key, json!({ "permission": "contacts.read", "resource": { "type": "contact", "id": "c\u{0}", "agency": a.id, "attributes": { "tag\u{0}": "x\u{0}" } } }))
        .await;
    assert_eq!(
        (r.status, r.body["allowed"].clone()),
        (StatusCode::OK, json!(true)),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn nul_characters_are_refused_sqlite() {
    nul_characters_are_refused(&TestApp::sqlite().await).await;
}

#[tokio::test]
async fn nul_characters_are_refused_postgres() {
    if let Some(t) = TestApp::postgres().await {
        nul_characters_are_refused(&t).await;
    }
}

/// Issue 8 (b): every parser of untrusted text is bounded before it runs. A JSON body nested
/// deeper than 32 is refused on its bytes, before serde (or Cedar, for a check's context)
/// recurses into it; the server keeps serving.
#[tokio::test]
async fn deeply_nested_json_is_refused_before_parsing() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Nest").await;
    for n in [33usize, 1_000, 30_000] {
        let ctx = format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let body = format!(
            r#"{{"permission":"contacts.read","resource":{{"type":"contact","agency":"{}"}},"context":{{"x":{ctx}}}}}"#,
            a.id
        );
        let req = axum::http::Request::builder()
            .method("POST")
            .uri("/v1/check")
            .header("authorization", format!("Bearer {}", a.key))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .unwrap();
        let r = t.raw(req).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (400, "invalid_request"),
            "{n}: {}",
            r.body
        );
        assert!(
            r.body["detail"].as_str().unwrap().contains("nests"),
            "{}",
            r.body
        );
    }
    let r = t.get(&format!("/v1/agencies/{}", a.id), &a.key).await;
    assert_eq!(r.status.as_u16(), 200);
}
