//! The contacts service against a real Tessera in another process: a partner token with a
//! read scope reads but cannot write; another tenant gets 404; a revoked token stops within a
//! second; an impersonation token shows `act` in the service's log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../crates/tessera-guard/tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use contacts_service::{app, Contacts};
use http_body_util::BodyExt as _;
use serde_json::{json, Value};
use support::Tessera;
use tessera_guard::{Guard, GuardConfig, GuardedApp};
use tower::ServiceExt as _;

const RESOURCE: &str = "https://contacts.example";

async fn call(
    app: &GuardedApp,
    method: &str,
    uri: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let r = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = r.status();
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

struct World {
    t: Tessera,
    contacts: Contacts,
    service: GuardedApp,
    /// The customer agency and account, and a second customer's.
    agy: String,
    acc: String,
    other_agy: String,
    other_acc: String,
}

async fn world() -> World {
    let t = Tessera::start();
    t.platform_resource_server(RESOURCE, &["contacts.readonly", "contacts.write"]);
    let (agy, acc) = t.tenant("Customer");
    let (other_agy, other_acc) = t.tenant("Other customer");
    let guard = Guard::start(GuardConfig::new(&t.url, RESOURCE).with_credential(&t.admin))
        .await
        .unwrap();
    let start = Instant::now();
    while !guard.is_synced() {
        assert!(start.elapsed() < Duration::from_secs(15), "feed never read");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let contacts = Contacts::default();
    let service = app(&guard, contacts.clone()).unwrap();
    World {
        t,
        contacts,
        service,
        agy,
        acc,
        other_agy,
        other_acc,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_service_end_to_end() {
    let w = world().await;
    let t = &w.t;

    // A partner (another agency's marketplace app) installed on the customer's account with a
    // read scope, and the customer's own app that may write.
    let (partner_agy, _) = t.tenant("Partner");
    let partner_app = t.app(&partner_agy, "marketplace", &["contacts.readonly"]);
    let partner = t.install(&partner_app, &w.agy, &w.acc, &["contacts.readonly"]);
    let writer = t.installed_app(&w.agy, &w.acc, &["contacts.write"]);
    let write_token = t.token(&writer, "contacts.write", RESOURCE);
    let read_token = t.token(&partner, "contacts.readonly", RESOURCE);

    let base = format!("/v1/accounts/{}/contacts", w.acc);
    let (s, c) = call(
        &w.service,
        "POST",
        &base,
        &write_token,
        Some(json!({"name": "Joe"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();

    // The partner reads, and cannot write.
    let (s, v) = call(&w.service, "GET", &base, &read_token, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["items"][0]["name"], "Joe");
    let (s, _) = call(
        &w.service,
        "GET",
        &format!("{base}/{id}"),
        &read_token,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = call(
        &w.service,
        "POST",
        &base,
        &read_token,
        Some(json!({"name": "X"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["code"], "forbidden");
    let (s, _) = call(
        &w.service,
        "DELETE",
        &format!("{base}/{id}"),
        &read_token,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Another tenant: 404 for the customer's account and for its contact.
    let other = t.installed_app(&w.other_agy, &w.other_acc, &["contacts.write"]);
    let other_token = t.token(&other, "contacts.write", RESOURCE);
    let (s, v) = call(&w.service, "GET", &base, &other_token, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, _) = call(
        &w.service,
        "GET",
        &format!("{base}/{id}"),
        &other_token,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &w.service,
        "GET",
        &format!("/v1/accounts/{}/contacts/{id}", w.other_acc),
        &other_token,
        None,
    )
    .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "its own account does not hold the contact"
    );
    let (s, _) = call(
        &w.service,
        "DELETE",
        &format!("{base}/{id}"),
        &other_token,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A token without `resource` (aud = the issuer) is refused: 401.
    let (code, v) = t.form(
        "/oauth/token",
        Some((&partner.client_id, &partner.secret)),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "contacts.readonly"),
        ],
    );
    assert_eq!(code, 200, "{v}");
    let (s, _) = call(
        &w.service,
        "GET",
        &base,
        v["access_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // A revoked token stops within a second.
    let revoked_at = Instant::now();
    t.revoke(&partner, &read_token);
    loop {
        let (s, _) = call(&w.service, "GET", &base, &read_token, None).await;
        if s == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "still accepted after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("revoked token refused after {:?}", revoked_at.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impersonation_token_shows_act_in_the_log() {
    let w = world().await;
    let t = &w.t;
    // The target user reads contacts on the account.
    let user = t.admin(
        "POST",
        &format!("/v1/agencies/{}/users", w.agy),
        json!({"email": "target@customer.test", "name": "Target"}),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.admin(
        "POST",
        &format!("/v1/agencies/{}/bindings", w.agy),
        json!({"principal": user, "role": "account_user", "account": w.acc}),
    );
    // Support staff: an agency admin with a first-party app that may impersonate.
    let support = t.admin(
        "POST",
        &format!("/v1/agencies/{}/api-keys", w.agy),
        json!({"name": "support", "scopes": ["users.impersonate", "contacts.readonly"]}),
    );
    let support_key = support["secret"].as_str().unwrap();
    let support_id = support["id"].as_str().unwrap();
    let (code, v) = t.form(
        "/oauth/token",
        None,
        &[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", support_key),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("requested_subject", &user),
            ("reason", "ticket 7"),
            ("scope", "contacts.readonly"),
        ],
    );
    assert_eq!(code, 200, "impersonation: {v}");
    // Impersonation tokens are issued for Tessera itself; a downscoping exchange binds one to
    // the service (RFC 8707), keeping its subject and actor.
    let (code, v) = t.form(
        "/oauth/token",
        None,
        &[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", v["access_token"].as_str().unwrap()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("scope", "contacts.readonly"),
            ("resource", RESOURCE),
        ],
    );
    assert_eq!(code, 200, "exchange for the service: {v}");
    let token = v["access_token"].as_str().unwrap();
    let (s, body) = call(
        &w.service,
        "GET",
        &format!("/v1/accounts/{}/contacts", w.acc),
        token,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let log = w.contacts.log();
    let line = log.last().unwrap();
    assert!(line.contains(&format!("sub={user}")), "{line}");
    assert!(line.contains(&format!("act={support_id}")), "{line}");
}
