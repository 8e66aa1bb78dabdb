//! Forward auth (`GET /v1/forward-auth`) through the app: an API key and an access token get
//! the identity headers, another tenant and a missing scope are 403, a revoked token is 401,
//! an impersonation token names its actor, an unmapped or ambiguous path is 403, and a route
//! table that names what the catalog does not have stops the server from starting.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use tessera_server::forward_auth::ForwardAuthConfig;
use tessera_server::services::EngineSettings;

use crate::harness::{Resp, TestApp};
use crate::oauth::{basic, claims, code_flow, Fixture};

const ROUTES: &str = r#"
audience = "https://contacts.example"

[[routes]]
method = "GET"
path = "/agencies/{agency}/contacts/{id}"
permission = "contacts.read"
resource = "contact"

[[routes]]
method = "POST"
path = "/agencies/{agency}/contacts"
permission = "contacts.write"

[[routes]]
method = "GET"
path = "/agencies/{agency}/accounts/{account}/contacts"
permission = "contacts.read"

[[routes]]
method = "GET"
path = "/me/contacts/*"
permission = "contacts.read"
"#;

async fn app() -> TestApp {
    let forward_auth: ForwardAuthConfig = toml::from_str(ROUTES).unwrap();
    TestApp::sqlite_with(EngineSettings {
        forward_auth,
        ..Default::default()
    })
    .await
}

async fn fa(app: &TestApp, credential: Option<&str>, method: &str, uri: &str) -> Resp {
    let mut b = Request::get("/v1/forward-auth")
        .header("x-original-method", method)
        .header("x-original-uri", uri)
        // What a client might try to slip through: never echoed, never trusted.
        .header("x-tessera-subject", "usr_01ARZ3NDEKTSV4RRFFQ69G5FAV");
    if let Some(c) = credential {
        b = b.header("authorization", format!("Bearer {c}"));
    }
    app.raw(b.body(Body::empty()).unwrap()).await
}

fn header<'a>(r: &'a Resp, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn an_api_key_is_mapped_checked_and_identified() {
    let app = app().await;
    let a = app.agency("Alpha").await;
    let b = app.agency("Beta").await;
    let key = app
        .post(
            &format!("/v1/agencies/{}/api-keys", a.id),
            &app.admin,
            json!({ "name": "reader", "scopes": ["contacts.readonly"] }),
        )
        .await;
    let key_id = key.id();
    let key = key.body["secret"].as_str().unwrap().to_owned();

    let r = fa(
        &app,
        Some(&key),
        "GET",
        &format!("/agencies/{}/contacts/c1?x=1", a.id),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(header(&r, "x-tessera-subject"), Some(key_id.as_str()));
    assert_eq!(header(&r, "x-tessera-agency"), Some(a.id.as_str()));
    assert_eq!(header(&r, "x-tessera-scopes"), Some("contacts.readonly"));
    assert_eq!(header(&r, "x-tessera-actor"), None);
    // HEAD follows GET; the tenant may come from the credential; an account from the path.
    assert_eq!(
        fa(
            &app,
            Some(&key),
            "HEAD",
            &format!("/agencies/{}/contacts/c1", a.id)
        )
        .await
        .status,
        StatusCode::OK
    );
    let r = fa(&app, Some(&key), "GET", "/me/contacts/a/b").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(header(&r, "x-tessera-agency"), Some(a.id.as_str()));
    let r = fa(
        &app,
        Some(&key),
        "GET",
        &format!("/agencies/{}/accounts/{}/contacts", a.id, a.acc),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(header(&r, "x-tessera-account"), Some(a.acc.as_str()));
    // Beyond its scope: 403 problem+json.
    let r = fa(
        &app,
        Some(&key),
        "POST",
        &format!("/agencies/{}/contacts", a.id),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.code(), "forbidden");
    assert_eq!(r.headers["content-type"], "application/problem+json");
    // Another tenant: 403 (not 404: the proxy's client learns nothing either way).
    let r = fa(
        &app,
        Some(&key),
        "GET",
        &format!("/agencies/{}/contacts/c1", b.id),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.headers.get("x-tessera-subject").is_none());
    // Unmapped, ambiguous, malformed: 403 (deny by default).
    for (m, uri) in [
        ("GET", "/admin".to_owned()),
        ("DELETE", format!("/agencies/{}/contacts/c1", a.id)),
        ("GET", format!("/agencies/{}/contacts/../c1", a.id)),
        ("GET", format!("/agencies/{}/contacts/%2e%2e", a.id)),
        ("GET", format!("/agencies/{}//contacts/c1", a.id)),
        ("GET", "/agencies/not-an-id/contacts/c1".to_owned()),
        ("GET", "http://evil/agencies".to_owned()),
    ] {
        let r = fa(&app, Some(&key), m, &uri).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{m} {uri}: {}", r.body);
    }
    let r = app
        .raw(
            Request::get("/v1/forward-auth")
                .header("authorization", format!("Bearer {key}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // No credential, a bad one: 401 with the RFC 6750 challenge.
    let r = fa(
        &app,
        None,
        "GET",
        &format!("/agencies/{}/contacts/c1", a.id),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(header(&r, "www-authenticate")
        .unwrap()
        .starts_with("Bearer"));
    let r = fa(
        &app,
        Some("tsk_nope"),
        "GET",
        &format!("/agencies/{}/contacts/c1", a.id),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A revoked key: 401.
    app.delete(
        &format!("/v1/agencies/{}/api-keys/{key_id}", a.id),
        &app.admin,
    )
    .await;
    let r = fa(
        &app,
        Some(&key),
        "GET",
        &format!("/agencies/{}/contacts/c1", a.id),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tokens_revoked_and_impersonated() {
    let app = app().await;
    let f = app
        .fixture(
            "Imp",
            "first_party",
            &["contacts.write", "users.impersonate"],
        )
        .await;
    let auth = basic(&f.client_id, &f.secret);
    let cc = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "contacts.write"),
            ],
        )
        .await;
    assert_eq!(cc.status, StatusCode::OK, "{}", cc.body);
    let at = cc.body["access_token"].as_str().unwrap().to_owned();
    let read = format!("/agencies/{}/accounts/{}/contacts", f.ag.id, f.ag.acc);
    let r = fa(&app, Some(&at), "GET", &read).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(header(&r, "x-tessera-subject"), Some(f.client_id.as_str()));
    assert_eq!(header(&r, "x-tessera-scopes"), Some("contacts.write"));
    // Revoked: 401 at once.
    app.form("/oauth/revoke", Some(&auth), &[("token", &at)])
        .await;
    let r = fa(&app, Some(&at), "GET", &read).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert!(header(&r, "www-authenticate")
        .unwrap()
        .contains("invalid_token"));

    // Impersonation: the actor reaches the upstream.
    let support = app
        .user_with_password(&f.ag, "support@imp.test", "agency_admin", false)
        .await;
    let target = app
        .user_with_password(&f.ag, "target@imp.test", "account_user", true)
        .await;
    let as_support = Fixture {
        ag: f.ag.clone(),
        client_id: f.client_id.clone(),
        secret: f.secret.clone(),
        ins: f.ins.clone(),
        email: "support@imp.test".into(),
    };
    let t = code_flow(&app, &as_support, "contacts.write users.impersonate").await;
    let r = app
        .form(
            "/oauth/token",
            None,
            &[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", t["access_token"].as_str().unwrap()),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
                ("requested_subject", &target),
                ("reason", "ticket 7"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let it = r.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&it)["act"]["sub"], support.as_str());
    let r = fa(&app, Some(&it), "GET", &read).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(header(&r, "x-tessera-subject"), Some(target.as_str()));
    assert_eq!(header(&r, "x-tessera-actor"), Some(support.as_str()));
    assert_eq!(header(&r, "x-tessera-account"), Some(f.ag.acc.as_str()));
}

#[tokio::test]
async fn a_route_table_the_catalog_does_not_back_stops_the_start() {
    for (text, why) in [
        ("[[routes]]\nmethod = \"GET\"\npath = \"/x\"\npermission = \"contacts.fly\"\n", "unknown permission `contacts.fly`"),
        ("[[routes]]\nmethod = \"GET\"\npath = \"/x\"\npermission = \"contacts.read\"\nresource = \"rocket\"\n", "unknown resource type `rocket`"),
        ("[[routes]]\nmethod = \"GET\"\npath = \"/x\"\npermission = \"contacts.read\"\nresource = \"invoice\"\n", "applies to `contact`"),
        ("[[routes]]\nmethod = \"GET\"\npath = \"x\"\npermission = \"contacts.read\"\n", "must start with"),
        ("audience = \"not a uri\"\n", "audience"),
    ] {
        let config: ForwardAuthConfig = toml::from_str(text).unwrap();
        let (store, _dir) = tessera_store::testing::sqlite_store().await;
        let err = tessera_server::http::state::AppState::with_engine(
            store,
            tessera_core::Catalog::default_catalog().unwrap(),
            &tessera_token::MasterKey::from_bytes([7; 32]),
            std::sync::Arc::new(tessera_server::clock::ManualClock::new(0)),
            EngineSettings {
                forward_auth: config,
                ..Default::default()
            },
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("forward_auth") && err.contains(why), "{text}: {err}");
    }
    // Unknown fields are refused when the file is read.
    assert!(toml::from_str::<ForwardAuthConfig>("[[routes]]\nmethod = \"GET\"\npath = \"/x\"\npermission = \"contacts.read\"\nscope = \"x\"\n").is_err());
}

/// A token bound to the service's resource (`audience` in the route table) passes forward
/// auth, and stays useless at Tessera's own API, before and after forward auth saw it (it is
/// never cached as a caller); a token for another resource is refused.
#[tokio::test]
async fn a_token_for_the_services_resource_passes_and_is_no_api_credential() {
    let app = app().await;
    for identifier in ["https://contacts.example", "https://billing.example"] {
        let r = app
            .post(
                "/v1/resource-servers",
                &app.admin,
                json!({ "identifier": identifier, "scopes": ["contacts.readonly", "contacts.write"] }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let f = app
        .fixture("Aud", "first_party", &["contacts.readonly"])
        .await;
    let auth = basic(&f.client_id, &f.secret);
    let token_for = |resource: &'static str| {
        let auth = auth.clone();
        let app = &app;
        async move {
            let r = app
                .form(
                    "/oauth/token",
                    Some(&auth),
                    &[
                        ("grant_type", "client_credentials"),
                        ("scope", "contacts.readonly"),
                        ("resource", resource),
                    ],
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body["access_token"].as_str().unwrap().to_owned()
        }
    };
    let service = token_for("https://contacts.example").await;
    assert_eq!(claims(&service)["aud"], "https://contacts.example");
    let check = json!({ "permission": "contacts.read", "resource": { "type": "contact", "agency": f.ag.id } });
    let r = app.post("/v1/check", &service, check.clone()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let read = format!("/agencies/{}/accounts/{}/contacts", f.ag.id, f.ag.acc);
    let r = fa(&app, Some(&service), "GET", &read).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(header(&r, "x-tessera-agency"), Some(f.ag.id.as_str()));
    let r = app.post("/v1/check", &service, check).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    // Another service's token: not for this one.
    let other = token_for("https://billing.example").await;
    let r = fa(&app, Some(&other), "GET", &read).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
}
