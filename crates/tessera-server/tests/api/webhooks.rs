//! Signed webhooks through the app: the life cycle (secret shown once, rotation with overlap,
//! deletion), the attacker's cases (another agency's webhook, missing permissions, an
//! audit-less role, SSRF targets, bad filters, huge bodies, the per-agency cap), and delivery
//! to a local receiver: Standard Webhooks signatures checked here independently, backoff on
//! the schedule, dead letters, redelivery under the same `webhook-id`, leases lost with a node,
//! and two nodes never delivering one message twice.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tessera_server::services::EngineSettings;
use tessera_server::webhooks::{dispatch, WebhookSettings, SCHEDULE};

use crate::harness::{missing, Agency, TestApp};

on_both_backends!(life_cycle, attacks);

/// A key of the agency with no scopes of its own, bound to `role`.
async fn key_with_role(app: &TestApp, ag: &Agency, role: &str) -> String {
    let k = app
        .post(
            &format!("/v1/agencies/{}/api-keys", ag.id),
            &app.admin,
            json!({ "name": format!("{role} key"), "scopes": [] }),
        )
        .await;
    assert_eq!(k.status, StatusCode::CREATED, "{}", k.body);
    let b = app
        .post(
            &format!("/v1/agencies/{}/bindings", ag.id),
            &app.admin,
            json!({ "principal": k.id(), "role": role }),
        )
        .await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
    k.body["secret"].as_str().unwrap().to_owned()
}

fn now(app: &TestApp) -> i64 {
    use tessera_server::clock::Clock as _;
    app.clock.now()
}

fn hooks(ag: &Agency) -> String {
    format!("/v1/agencies/{}/webhooks", ag.id)
}

fn raw_secret(whsec: &str) -> Vec<u8> {
    let b64 = whsec.strip_prefix("whsec_").expect("whsec_ prefix");
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64")
}

async fn life_cycle(app: &TestApp) {
    let a = app.agency("Alpha").await;
    let admin = key_with_role(app, &a, "agency_admin").await;
    let r = app
        .post(&hooks(&a), &admin, json!({ "url": "https://siem.example.com/in?src=tessera", "events": ["api_key.*", "user.delete", "api_key.*"] }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let id = r.id();
    assert!(id.starts_with("whk_"));
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    assert_eq!(raw_secret(&secret).len(), 32);
    assert_eq!(r.body["events"], json!(["api_key.*", "user.delete"]));
    assert_eq!(r.body["url"], "https://siem.example.com/in?src=tessera");
    assert_eq!(r.body["state"], "active");
    // Never shown again: not in the list, not in one, not in the audit log.
    let list = app.get(&hooks(&a), &admin).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert!(list.body["items"][0].get("secret").is_none());
    let one = app.get(&format!("{}/{id}", hooks(&a)), &admin).await;
    assert_eq!(one.status, StatusCode::OK);
    assert!(one.body.get("secret").is_none());
    assert_eq!(one.body["id"], id.as_str());
    // Rotation: a new secret, the old one signing until the overlap ends (default 24 h).
    let rot = app
        .call(
            axum::http::Method::POST,
            &format!("{}/{id}/rotate-secret", hooks(&a)),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(rot.status, StatusCode::OK, "{}", rot.body);
    assert_eq!(rot.headers["cache-control"], "no-store");
    let new_secret = rot.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    let until =
        tessera_core::time::parse_rfc3339(rot.body["previous_secret_expires_at"].as_str().unwrap())
            .unwrap();
    assert_eq!(until, now(app) + 86_400_000);
    let rot2 = app
        .post(
            &format!("{}/{id}/rotate-secret", hooks(&a)),
            &admin,
            json!({ "previous_expires_in_seconds": 60 }),
        )
        .await;
    assert_eq!(rot2.status, StatusCode::OK, "{}", rot2.body);
    let bad = app
        .post(
            &format!("{}/{id}/rotate-secret", hooks(&a)),
            &admin,
            json!({ "previous_expires_in_seconds": 604_801 }),
        )
        .await;
    assert_eq!(bad.code(), "invalid_request");
    // Deliveries (none yet) and deletion.
    let d = app
        .get(&format!("{}/{id}/deliveries?state=dead", hooks(&a)), &admin)
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let d = app
        .get(&format!("{}/{id}/deliveries?state=lost", hooks(&a)), &admin)
        .await;
    assert_eq!(d.code(), "invalid_request");
    let del = app.delete(&format!("{}/{id}", hooks(&a)), &admin).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("{}/{id}", hooks(&a)), &admin).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("{}/{id}", hooks(&a)), &admin)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Every mutation audited, no secret anywhere in the chain.
    let audit = app
        .get(
            &format!("/v1/agencies/{}/audit?limit=200", a.id),
            &app.admin,
        )
        .await;
    let text = audit.body.to_string();
    for action in ["webhook.create", "webhook.rotate_secret", "webhook.delete"] {
        assert!(text.contains(action), "{action} not audited");
    }
    for s in [&secret, &new_secret, rot2.body["secret"].as_str().unwrap()] {
        assert!(!text.contains(s));
        assert!(!text.contains(&s["whsec_".len()..]));
    }
}

async fn attacks(app: &TestApp) {
    let a = app.agency("Alpha").await;
    let b = app.agency("Beta").await;
    let a_admin = key_with_role(app, &a, "agency_admin").await;
    let b_admin = key_with_role(app, &b, "agency_admin").await;
    let created = app
        .post(
            &hooks(&a),
            &a_admin,
            json!({ "url": "https://siem.example.com/a", "events": ["*"] }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let whk = created.id();
    // Another agency's admin: through its own agency, A's webhook does not exist.
    for (m, suffix) in [
        (axum::http::Method::GET, ""),
        (axum::http::Method::DELETE, ""),
        (axum::http::Method::POST, "/rotate-secret"),
        (axum::http::Method::GET, "/deliveries"),
        (axum::http::Method::POST, "/redeliver"),
    ] {
        let r = app
            .call(
                m.clone(),
                &format!("{}/{whk}{suffix}", hooks(&b)),
                Some(&b_admin),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m} {suffix}: {}", r.body);
        // Through A's path, the tenant gate answers as if A did not exist.
        let r = app
            .call(
                m.clone(),
                &format!("{}/{whk}{suffix}", hooks(&a)),
                Some(&b_admin),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m} {suffix}: {}", r.body);
    }
    let r = app.get(&hooks(&a), &b_admin).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            &hooks(&a),
            &b_admin,
            json!({ "url": "https://evil.example.com/", "events": ["*"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let one_msg = format!(
        "{}/{whk}/deliveries/{}/redeliver",
        hooks(&a),
        missing("msg")
    );
    assert_eq!(
        app.call(axum::http::Method::POST, &one_msg, Some(&a_admin), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Still intact.
    assert_eq!(
        app.get(&format!("{}/{whk}", hooks(&a)), &a_admin)
            .await
            .status,
        StatusCode::OK
    );

    // Without the permissions: an agency user reads nothing, writes nothing.
    let user = key_with_role(app, &a, "agency_user").await;
    assert_eq!(
        app.get(&hooks(&a), &user).await.status,
        StatusCode::FORBIDDEN
    );
    let r = app
        .post(
            &hooks(&a),
            &user,
            json!({ "url": "https://siem.example.com/x", "events": ["*"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A custom role with `webhooks.write` but not `audit_log.read` cannot route the audit log
    // to itself.
    let role = app
        .post(
            &format!("/v1/agencies/{}/roles", a.id),
            &app.admin,
            json!({ "name": "hooker", "permissions": ["webhooks.write", "webhooks.read"] }),
        )
        .await;
    assert_eq!(role.status, StatusCode::CREATED, "{}", role.body);
    let hooker = key_with_role(app, &a, &role.id()).await;
    let r = app
        .post(
            &hooks(&a),
            &hooker,
            json!({ "url": "https://siem.example.com/x", "events": ["*"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(
        r.body["missing_permissions"],
        json!(["audit_log.read"]),
        "{}",
        r.body
    );

    // SSRF: internal targets refused (literal addresses and `localhost`).
    for url in [
        "http://127.0.0.1:8080/",
        "http://localhost/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:192.168.0.1]/",
        "http://100.64.1.1/",
        "http://0.0.0.0/",
        "http://2130706433/",
        "https://[fd00::1]/",
    ] {
        let r = app
            .post(&hooks(&a), &a_admin, json!({ "url": url, "events": ["*"] }))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "target_refused"),
            "{url}: {}",
            r.body
        );
    }
    for url in [
        "ftp://example.com/",
        "https://u:p@example.com/",
        "not a url",
        "https://example.com/#x",
        "",
    ] {
        let r = app
            .post(&hooks(&a), &a_admin, json!({ "url": url, "events": ["*"] }))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{url}: {}",
            r.body
        );
    }
    // Filters: unknown actions and groups named.
    let r = app
        .post(&hooks(&a), &a_admin, json!({ "url": "https://siem.example.com/f", "events": ["api_key.create", "api_key.explode", "nope.*"] }))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "unknown_event"),
        "{}",
        r.body
    );
    assert_eq!(
        r.body["unknown_events"],
        json!(["api_key.explode", "nope.*"])
    );
    let r = app
        .post(
            &hooks(&a),
            &a_admin,
            json!({ "url": "https://siem.example.com/f", "events": [] }),
        )
        .await;
    assert_eq!(r.code(), "invalid_request");
    let r = app
        .post(
            &hooks(&a),
            &a_admin,
            json!({ "url": "https://siem.example.com/f", "events": "*" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .post(
            &hooks(&a),
            &a_admin,
            json!({ "url": "https://siem.example.com/f", "events": ["*"], "secret": "whsec_mine" }),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused"
    );
    // Huge input: a long URL, many events, deep nesting.
    let long = format!("https://siem.example.com/{}", "a".repeat(5000));
    let r = app
        .post(
            &hooks(&a),
            &a_admin,
            json!({ "url": long, "events": ["*"] }),
        )
        .await;
    assert_eq!(r.code(), "invalid_request");
    let many: Vec<String> = (0..5000).map(|_| "*".to_owned()).collect();
    let r = app
        .post(
            &hooks(&a),
            &a_admin,
            json!({ "url": "https://siem.example.com/f", "events": many }),
        )
        .await;
    assert!(
        r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        r.status
    );
    let deep = format!(
        "{{\"url\": \"https://x.example.com\", \"events\": {}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let req = axum::http::Request::post(hooks(&a))
        .header("authorization", format!("Bearer {a_admin}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(deep))
        .unwrap();
    let r = app.raw(req).await;
    assert!(
        r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        r.status
    );
    // Bad ids.
    let r = app
        .get(
            &format!("{}/key_01ARZ3NDEKTSV4RRFFQ69G5FAV", hooks(&a)),
            &a_admin,
        )
        .await;
    assert_eq!(r.code(), "invalid_id");
    // The cap per agency.
    let existing = app.get(&hooks(&a), &a_admin).await.body["items"]
        .as_array()
        .unwrap()
        .len();
    for i in existing..tessera_server::webhooks::MAX_PER_AGENCY as usize {
        let r = app
            .post(
                &hooks(&a),
                &a_admin,
                json!({ "url": format!("https://siem.example.com/{i}"), "events": ["*"] }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let r = app
        .post(
            &hooks(&a),
            &a_admin,
            json!({ "url": "https://siem.example.com/over", "events": ["*"] }),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "conflict"));
    // B is not affected by A's cap.
    let r = app
        .post(
            &hooks(&b),
            &b_admin,
            json!({ "url": "https://siem.example.com/b", "events": ["*"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

// ---------------------------------------------------------------------------------------------
// Delivery to a local receiver.

#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: String,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

async fn receiver() -> Receiver {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let status = Arc::new(AtomicU16::new(204));
    let (g, st) = (got.clone(), status.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (g, st) = (g.clone(), st.clone());
            async move {
                g.lock().unwrap().push(Received { headers, body });
                StatusCode::from_u16(st.load(Ordering::SeqCst)).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, got, status }
}

impl Receiver {
    fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.got.lock().unwrap())
    }
}

fn delivery_settings() -> EngineSettings {
    EngineSettings {
        webhooks: WebhookSettings {
            allow_private_targets: true,
            connect_timeout: std::time::Duration::from_secs(2),
            total_timeout: std::time::Duration::from_secs(5),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Checks every `v1,` signature of the header against `keys` (an independent implementation
/// of the Standard Webhooks scheme); returns how many keys signed.
fn verify(r: &Received, keys: &[Vec<u8>]) -> usize {
    let id = r.headers["webhook-id"].to_str().unwrap();
    let ts = r.headers["webhook-timestamp"].to_str().unwrap();
    let sigs: Vec<&str> = r.headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .collect();
    let mut matched = 0;
    for k in keys {
        let mut mac = Hmac::<Sha256>::new_from_slice(k).unwrap();
        mac.update(format!("{id}.{ts}.{}", r.body).as_bytes());
        let want = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        );
        if sigs.contains(&want.as_str()) {
            matched += 1;
        }
    }
    matched
}

async fn delivery_flow(app: &TestApp) {
    let rx = receiver().await;
    let a = app.agency("Alpha").await;
    let b = app.agency("Beta").await;
    let admin = key_with_role(app, &a, "agency_admin").await;
    let created = app
        .post(
            &hooks(&a),
            &admin,
            json!({ "url": rx.url, "events": ["api_key.*", "webhook.*"] }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let whk = created.id();
    let key1 = raw_secret(created.body["secret"].as_str().unwrap());
    // Events: an API key made in A (matches), a user in A (filtered out), a key in B (another
    // agency's chain: never A's webhook's).
    let k = app
        .post(
            &format!("/v1/agencies/{}/api-keys", a.id),
            &app.admin,
            json!({ "name": "k", "scopes": [] }),
        )
        .await;
    assert_eq!(k.status, StatusCode::CREATED);
    app.post(
        &format!("/v1/agencies/{}/users", a.id),
        &app.admin,
        json!({ "email": "x@alpha.test", "name": "X" }),
    )
    .await;
    app.post(
        &format!("/v1/agencies/{}/api-keys", b.id),
        &app.admin,
        json!({ "name": "kb", "scopes": [] }),
    )
    .await;

    let s = app.state.services.clone();
    let p = dispatch::pass(&s).await.unwrap();
    assert_eq!((p.enqueued, p.attempted, p.delivered), (2, 2, 2), "{p:?}");
    let got = rx.take();
    let mut types: Vec<String> = got
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    types.sort();
    assert_eq!(types, ["api_key.create", "webhook.create"]);
    for r in &got {
        assert_eq!(verify(r, std::slice::from_ref(&key1)), 1);
        assert_eq!(r.headers["content-type"], "application/json");
        assert!(r.headers["webhook-id"]
            .to_str()
            .unwrap()
            .starts_with("msg_"));
        assert_eq!(
            r.headers["webhook-timestamp"].to_str().unwrap(),
            (now(app) / 1000).to_string()
        );
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["data"]["agency_id"], a.id.as_str());
        assert_eq!(body["data"]["action"], body["type"]);
        assert!(body["data"]["hash"].is_string() && body["data"]["seq"].is_i64());
        assert!(tessera_core::time::parse_rfc3339(body["timestamp"].as_str().unwrap()).is_some());
    }
    // Nothing more to do; a second pass enqueues nothing again.
    let p = dispatch::pass(&s).await.unwrap();
    assert!(!p.busy(), "{p:?}");

    // Failures back off on the schedule, then go dead.
    rx.status.store(500, Ordering::SeqCst);
    app.post(
        &format!("/v1/agencies/{}/api-keys", a.id),
        &app.admin,
        json!({ "name": "k2", "scopes": [] }),
    )
    .await;
    let p = dispatch::pass(&s).await.unwrap();
    assert_eq!((p.enqueued, p.attempted, p.retrying), (1, 1, 1), "{p:?}");
    let first = rx.take().pop().unwrap();
    let msg = first.headers["webhook-id"].to_str().unwrap().to_owned();
    let one = format!("{}/{whk}/deliveries/{msg}", hooks(&a));
    let d = app.get(&one, &admin).await;
    assert_eq!(
        (
            d.body["state"].as_str(),
            d.body["attempts"].as_i64(),
            d.body["last_status"].as_i64()
        ),
        (Some("pending"), Some(1), Some(500)),
        "{}",
        d.body
    );
    let due = tessera_core::time::parse_rfc3339(d.body["next_attempt_at"].as_str().unwrap())
        .unwrap()
        - now(app);
    assert!(
        (4500..=5500).contains(&due),
        "first retry after 5 s ± 10 %: {due}"
    );
    // Not before it is due.
    app.advance(4000);
    assert_eq!(dispatch::pass(&s).await.unwrap().attempted, 0);
    let mut seen_ids = vec![msg.clone()];
    for (i, units) in SCHEDULE.iter().enumerate() {
        app.advance(i64::try_from(units * 1100).unwrap());
        let p = dispatch::pass(&s).await.unwrap();
        assert_eq!(p.attempted, 1, "attempt {}: {p:?}", i + 2);
        seen_ids.push(
            rx.take().pop().unwrap().headers["webhook-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
        if i + 1 < SCHEDULE.len() {
            assert_eq!(p.retrying, 1);
        } else {
            assert_eq!(p.dead, 1);
        }
    }
    assert!(
        seen_ids.iter().all(|m| *m == msg),
        "one webhook-id on every attempt"
    );
    let dead = app
        .get(
            &format!("{}/{whk}/deliveries?state=dead", hooks(&a)),
            &admin,
        )
        .await;
    let items = dead.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0]["id"].as_str(), items[0]["attempts"].as_i64()),
        (Some(msg.as_str()), Some(8))
    );
    app.advance(100 * 3_600_000);
    assert_eq!(
        dispatch::pass(&s).await.unwrap().attempted,
        0,
        "dead stays dead"
    );

    // Rotation: both secrets sign during the overlap.
    let rot = app
        .post(
            &format!("{}/{whk}/rotate-secret", hooks(&a)),
            &admin,
            json!({ "previous_expires_in_seconds": 3600 }),
        )
        .await;
    let key2 = raw_secret(rot.body["secret"].as_str().unwrap());
    // Redeliver the dead letters (the endpoint is back): same webhook-id, both signatures.
    rx.status.store(200, Ordering::SeqCst);
    let r = app
        .post(&format!("{}/{whk}/redeliver", hooks(&a)), &admin, json!({}))
        .await;
    assert_eq!(
        (r.status, r.body["count"].as_i64()),
        (StatusCode::ACCEPTED, Some(1)),
        "{}",
        r.body
    );
    let p = dispatch::pass(&s).await.unwrap();
    // The rotation and the redelivery are events too (`webhook.*`).
    assert_eq!((p.attempted, p.delivered), (3, 3), "{p:?}");
    let got = rx.take();
    let again = got
        .iter()
        .find(|r| r.headers["webhook-id"] == msg.as_str())
        .expect("redelivered");
    assert_eq!(
        again.headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    assert_eq!(verify(again, &[key1.clone(), key2.clone()]), 2);
    let d = app.get(&one, &admin).await;
    assert_eq!(
        (d.body["state"].as_str(), d.body["attempts"].as_i64()),
        (Some("delivered"), Some(1))
    );
    // One message redelivered on demand, whatever its state.
    let r = app
        .call(
            axum::http::Method::POST,
            &format!("{one}/redeliver"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.body["count"].as_i64()),
        (StatusCode::ACCEPTED, Some(1))
    );
    // After the overlap, only the new secret signs.
    app.advance(3_600_001);
    dispatch::pass(&s).await.unwrap();
    let got = rx.take();
    let again = got
        .iter()
        .find(|r| r.headers["webhook-id"] == msg.as_str())
        .expect("redelivered");
    assert_eq!(
        again.headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        1
    );
    assert_eq!(verify(again, std::slice::from_ref(&key2)), 1);
    assert_eq!(verify(again, std::slice::from_ref(&key1)), 0);
}

/// A node that claimed a message and died: the message waits out the lease, then another pass
/// delivers it (at least once), counting the lost attempt.
async fn lost_attempt_flow(app: &TestApp) {
    let rx = receiver().await;
    let a = app.agency("Alpha").await;
    let created = app
        .post(
            &hooks(&a),
            &app.admin,
            json!({ "url": rx.url, "events": ["api_key.create"] }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let whk: tessera_core::WebhookId = created.id().parse().unwrap();
    app.post(
        &format!("/v1/agencies/{}/api-keys", a.id),
        &app.admin,
        json!({ "name": "k", "scopes": [] }),
    )
    .await;
    let s = app.state.services.clone();
    // Enqueue only, by a pass whose deliveries a "dead node" then claims.
    let scope = app.state.admission.admit(a.id.parse().unwrap());
    let w = s.store.get_webhook(&scope, &whk).await.unwrap();
    let chain = s.store.audit_chain(&scope, w.cursor, 100).await.unwrap();
    let e = chain.iter().find(|e| e.action == "api_key.create").unwrap();
    let nd = tessera_store::NewDelivery {
        id: dispatch::message_id(&whk, e),
        event_seq: e.seq,
        event_type: e.action.clone(),
        payload: dispatch::payload(e).unwrap(),
    };
    let last = chain.last().unwrap().seq;
    assert!(s
        .store
        .enqueue_deliveries(&scope, &whk, w.cursor, last, &[nd], now(app))
        .await
        .unwrap());
    let lease = now(app) + i64::try_from(s.webhooks.lease().as_millis()).unwrap();
    let claimed = s
        .store
        .claim_deliveries(&scope, now(app), lease, "dead-node", 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // While the lease holds, nobody else sends it.
    assert_eq!(dispatch::pass(&s).await.unwrap().attempted, 0);
    app.advance(i64::try_from(s.webhooks.lease().as_millis()).unwrap());
    let p = dispatch::pass(&s).await.unwrap();
    assert_eq!((p.attempted, p.delivered), (1, 1), "{p:?}");
    let got = rx.take();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].headers["webhook-id"], claimed[0].id.as_str());
    // The dead node's late result is ignored.
    let late = tessera_store::AttemptResult {
        state: tessera_store::DeliveryState::Dead,
        next_attempt_at: 0,
        status: Some(500),
        error: None,
        at: now(app),
    };
    assert!(!s
        .store
        .finish_delivery(&scope, &claimed[0].id, "dead-node", &late)
        .await
        .unwrap());
    let d = s
        .store
        .get_delivery(&scope, &whk, &claimed[0].id)
        .await
        .unwrap();
    assert_eq!(
        (d.state, d.attempts),
        (tessera_store::DeliveryState::Delivered, 2)
    );
}

/// Two nodes dispatching at once deliver each message once (no double claim).
async fn two_nodes_flow(app: &TestApp) {
    let rx = receiver().await;
    let a = app.agency("Alpha").await;
    let created = app
        .post(
            &hooks(&a),
            &app.admin,
            json!({ "url": rx.url, "events": ["*"] }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    for i in 0..40 {
        app.post(
            &format!("/v1/agencies/{}/accounts", a.id),
            &app.admin,
            json!({ "name": format!("acc {i}") }),
        )
        .await;
    }
    let (node2, _) = app.second_node().await;
    let (s1, s2) = (app.state.services.clone(), node2.services.clone());
    let mut passes = Vec::new();
    for s in [s1.clone(), s2.clone(), s1, s2] {
        passes.push(tokio::spawn(async move {
            let mut n = 0;
            for _ in 0..10 {
                n += dispatch::pass(&s).await.unwrap().attempted;
            }
            n
        }));
    }
    let mut attempted = 0;
    for p in passes {
        attempted += p.await.unwrap();
    }
    let got = rx.take();
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "a message was delivered twice");
    assert_eq!(
        n, 41,
        "every event once (40 accounts and the webhook's creation)"
    );
    assert_eq!(attempted, 41);
}

macro_rules! delivery_tests {
    ($($name:ident),*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(&super::TestApp::sqlite_with(super::delivery_settings()).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = super::TestApp::postgres_with(super::delivery_settings()).await {
                    super::$name(&app).await;
                }
            }
        }
    )*};
}

delivery_tests!(delivery_flow, lost_attempt_flow, two_nodes_flow);
