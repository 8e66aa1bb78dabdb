//! A store outage never looks like an inactive or unknown token: introspection (RFC 7662),
//! userinfo, bearer-credential and client authentication answer 503 `temporarily_unavailable`
//! with `Retry-After`, never `{"active": false}` and never 401.
//!
//! The app here is built like the harness's, on a SQLite file this module can reach: "the
//! store goes down" drops every table under the running server, so every store call fails
//! from then on (the driver reports a database error: `StoreError::Unavailable`). What the
//! node cached before (a client record, a verified token) still answers from memory.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sqlx::Connection as _;
use tessera_core::Catalog;
use tessera_server::clock::ManualClock;
use tessera_server::http::state::AppState;
use tessera_server::services::EngineSettings;
use tessera_store::testing::{TempDirGuard, SQLITE_DB_FILE};
use tower::ServiceExt;

use super::basic;
use crate::harness::T0;

const SCOPES: &[&str] = &["contacts.readonly", "contacts.write"];

/// A test app whose store can be taken down.
struct Outage {
    router: axum::Router,
    admin: String,
    db_url: String,
    _state: AppState,
    _dir: TempDirGuard,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Outage {
    async fn new() -> Self {
        let (store, dir) = tessera_store::testing::sqlite_store().await;
        let db_url = format!("sqlite://{}", dir.path().join(SQLITE_DB_FILE).display());
        let clock = Arc::new(ManualClock::new(T0));
        let master = tessera_token::MasterKey::from_bytes([7; 32]);
        let catalog = Catalog::default_catalog().expect("catalog");
        let state =
            AppState::with_engine(store, catalog, &master, clock, EngineSettings::default())
                .expect("state");
        let path = tessera_server::bootstrap::ensure(&state, dir.path())
            .await
            .expect("bootstrap")
            .expect("bootstrapped");
        let admin = std::fs::read_to_string(&path)
            .expect("key file")
            .trim()
            .to_owned();
        state.keys.maintain(T0 / 1000).await.expect("signing keys");
        let router = tessera_server::app(state.clone()).expect("app");
        Self {
            router,
            admin,
            db_url,
            _state: state,
            _dir: dir,
        }
    }

    /// Every table dropped under the running server: each store call fails from now on.
    async fn store_goes_down(&self) {
        let mut c = sqlx::SqliteConnection::connect(&self.db_url)
            .await
            .expect("connect");
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&mut c)
            .await
            .expect("pragma");
        let objects: Vec<(String, String)> = sqlx::query_as(
            "SELECT type, name FROM sqlite_master \
             WHERE type IN ('view', 'trigger', 'table') AND name NOT LIKE 'sqlite_%' \
             ORDER BY CASE type WHEN 'table' THEN 1 ELSE 0 END",
        )
        .fetch_all(&mut c)
        .await
        .expect("schema");
        for (kind, name) in objects {
            let sql = format!("DROP {} IF EXISTS \"{name}\"", kind.to_uppercase());
            sqlx::query(&sql).execute(&mut c).await.expect("drop");
        }
    }

    async fn send(&self, req: Request<Body>) -> Answer {
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.admin))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let a = self.send(req).await;
        assert_eq!(a.status, StatusCode::CREATED, "{path}: {}", a.body);
        a.body
    }

    async fn form(&self, path: &str, auth: Option<&str>, pairs: &[(&str, &str)]) -> Answer {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        let body = serde_urlencoded::to_string(pairs).unwrap();
        self.send(b.body(Body::from(body)).unwrap()).await
    }

    async fn userinfo(&self, token: &str) -> Answer {
        let req = Request::builder()
            .uri("/oauth/userinfo")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        self.send(req).await
    }

    /// An agency with a confidential app installed on its account: (agency, client Basic
    /// credentials).
    async fn installed_app(&self, name: &str) -> (String, String) {
        let agency = self.post("/v1/agencies", json!({ "name": name })).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let acc = self
            .post(
                &format!("/v1/agencies/{agency}/accounts"),
                json!({ "name": format!("{name} client") }),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let app = self
            .post(
                &format!("/v1/agencies/{agency}/apps"),
                json!({ "name": format!("{name} app"), "redirect_uris": ["https://app.example.com/callback"], "scopes": SCOPES, "confidential": true, "kind": "private" }),
            )
            .await;
        let id = app["client_id"].as_str().unwrap();
        self.post(
            &format!("/v1/agencies/{agency}/accounts/{acc}/installations"),
            json!({ "app": id, "scopes": SCOPES }),
        )
        .await;
        let auth = basic(id, app["client_secret"].as_str().unwrap());
        (agency, auth)
    }

    /// A new API key of `agency`, never used yet.
    async fn api_key(&self, agency: &str) -> String {
        self.post(
            &format!("/v1/agencies/{agency}/api-keys"),
            json!({ "name": "reader", "scopes": ["contacts.readonly"] }),
        )
        .await["secret"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn client_token(&self, auth: &str) -> String {
        let a = self
            .form(
                "/oauth/token",
                Some(auth),
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", "contacts.readonly"),
                ],
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        a.body["access_token"].as_str().unwrap().to_owned()
    }
}

/// 503 `temporarily_unavailable` with `Retry-After`, and nothing that reads as an answer about
/// the token.
fn assert_unavailable(a: &Answer, what: &str) {
    assert_eq!(
        a.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {}",
        a.body
    );
    assert_eq!(a.body["error"], "temporarily_unavailable", "{what}");
    assert!(a.body.get("active").is_none(), "{what}: {}", a.body);
    assert!(
        a.headers.contains_key("retry-after"),
        "{what}: no Retry-After"
    );
    assert_eq!(a.headers["cache-control"], "no-store", "{what}");
}

#[tokio::test]
async fn introspection_during_an_outage_is_unavailable_not_inactive() {
    let app = Outage::new().await;
    let (agency, auth) = app.installed_app("Outage").await;
    let token = app.client_token(&auth).await;
    let key = app.api_key(&agency).await;
    let asker = app.api_key(&agency).await;
    // The client authenticates once after the agency's last change, so its record is cached
    // and the answers below come from the token and key paths, not from client lookup.
    let a = app
        .form("/oauth/introspect", Some(&auth), &[("token", "x.y.z")])
        .await;
    assert_eq!(a.body, json!({ "active": false }));
    app.store_goes_down().await;
    let a = app
        .form("/oauth/introspect", Some(&auth), &[("token", &token)])
        .await;
    assert_unavailable(&a, "an access token never checked before");
    let a = app
        .form("/oauth/introspect", Some(&auth), &[("token", &key)])
        .await;
    assert_unavailable(&a, "an API key");
    // A bearer asker that must be read from the store: not `invalid_client`.
    let a = app
        .form(
            "/oauth/introspect",
            Some(&format!("Bearer {asker}")),
            &[("token", &token)],
        )
        .await;
    assert_unavailable(&a, "a bearer asker");
    // What needs no store is still answered: a malformed token is inactive.
    let a = app
        .form("/oauth/introspect", Some(&auth), &[("token", "x.y.z")])
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body, json!({ "active": false }));
}

#[tokio::test]
async fn userinfo_and_revocation_during_an_outage_are_unavailable() {
    let app = Outage::new().await;
    let (_, auth) = app.installed_app("Unchecked").await;
    let token = app.client_token(&auth).await;
    let other = app.client_token(&auth).await;
    app.store_goes_down().await;
    let a = app.userinfo(&token).await;
    assert_unavailable(&a, "userinfo");
    assert!(
        !a.headers.contains_key("www-authenticate"),
        "not a 401 challenge"
    );
    let a = app
        .form("/oauth/revoke", Some(&auth), &[("token", &other)])
        .await;
    assert_unavailable(&a, "revocation");
}

#[tokio::test]
async fn client_authentication_during_an_outage_is_unavailable_not_invalid_client() {
    let app = Outage::new().await;
    let (_, auth) = app.installed_app("Cold").await;
    // This client was never looked up: authenticating it needs the store.
    app.store_goes_down().await;
    let a = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_unavailable(&a, "client authentication");
    assert!(!a.headers.contains_key("www-authenticate"));
}
