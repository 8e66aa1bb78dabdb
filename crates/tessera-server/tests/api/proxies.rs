//! The client address behind proxies: forwarding headers count only from `--trusted-proxies`
//! peers, and the one address they give is what the audit trail and Cedar's `context.ip` see.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tessera_server::net::{ForwardedHeader, HttpSettings, TrustedProxies};
use tessera_server::services::EngineSettings;

use crate::harness::{Resp, TestApp};

async fn app_behind(proxies: &str) -> TestApp {
    TestApp::sqlite_with(EngineSettings {
        http: HttpSettings {
            proxies: Arc::new(
                TrustedProxies::parse(proxies, ForwardedHeader::Auto).expect("ranges"),
            ),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
}

/// `GET path` with `key`, arriving from `peer` with these forwarding headers.
async fn from(t: &TestApp, peer: &str, headers: &[(&str, &str)], path: &str, key: &str) -> Resp {
    let mut b = Request::builder()
        .uri(path)
        .header("authorization", format!("Bearer {key}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut req = b.body(Body::empty()).expect("request");
    let peer: SocketAddr = format!("{peer}:40000").parse().expect("peer");
    req.extensions_mut().insert(ConnectInfo(peer));
    t.raw(req).await
}

/// The `ip` of the newest audit event of `action` in the agency's chain.
async fn last_ip(t: &TestApp, agency: &str, action: &str) -> Value {
    let r = t
        .get(
            &format!("/v1/agencies/{agency}/audit?action={action}&limit=100"),
            &t.admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"]
        .as_array()
        .and_then(|items| items.last().cloned())
        .map_or(Value::Null, |e| e["ip"].clone())
}

#[tokio::test]
async fn a_forged_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    let t = app_behind("10.0.0.0/8").await;
    let a = t.agency("Proxied").await;
    // Cedar sees the client address: this agency's accounts may be read from 198.51.100.0/24 only.
    let p = t
        .post(
            &format!("/v1/agencies/{}/policies", a.id),
            &a.key,
            json!({ "cedar": "forbid(principal, action == Tessera::Action::\"accounts.read\", resource) unless { context has ip && context.ip.isInRange(ip(\"198.51.100.0/24\")) };" }),
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let path = format!("/v1/agencies/{}/accounts", a.id);

    // From an untrusted peer, the forged headers are ignored: the peer is the client.
    for forged in [
        vec![("x-forwarded-for", "198.51.100.7")],
        vec![("forwarded", "for=198.51.100.7")],
        vec![
            ("x-forwarded-for", "198.51.100.7, 10.0.0.1"),
            ("x-real-ip", "198.51.100.7"),
        ],
    ] {
        let r = from(&t, "203.0.113.9", &forged, &path, &a.key).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{forged:?}: {}", r.body);
    }
    assert_eq!(
        last_ip(&t, &a.id, "authz.denied").await,
        json!("203.0.113.9"),
        "the audit trail names the peer"
    );

    // Through a trusted proxy, the right-most untrusted hop is the client: a hop the client
    // wrote itself (left of it) is not.
    let r = from(
        &t,
        "10.0.0.5",
        &[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.1.1.1")],
        &path,
        &a.key,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = from(
        &t,
        "10.0.0.5",
        &[("x-forwarded-for", "198.51.100.7, 6.6.6.6")],
        &path,
        &a.key,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(last_ip(&t, &a.id, "authz.denied").await, json!("6.6.6.6"));
    // RFC 7239 too.
    let r = from(
        &t,
        "10.0.0.5",
        &[("forwarded", "for=\"198.51.100.8:1234\";proto=https")],
        &path,
        &a.key,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn with_no_trusted_proxy_every_header_is_ignored() {
    let t = app_behind("").await;
    let a = t.agency("Direct").await;
    let r = from(
        &t,
        "10.0.0.5",
        &[("x-forwarded-for", "198.51.100.7")],
        &format!(
            "/v1/agencies/{}/accounts/{}",
            a.id,
            crate::harness::missing("acc")
        ),
        &a.key,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A write records the peer.
    let r = t
        .raw({
            let mut req = Request::builder()
                .method("POST")
                .uri(format!("/v1/agencies/{}/accounts", a.id))
                .header("authorization", format!("Bearer {}", a.key))
                .header("content-type", "application/json")
                .header("x-forwarded-for", "198.51.100.7")
                .body(Body::from(json!({ "name": "n" }).to_string()))
                .expect("request");
            req.extensions_mut().insert(ConnectInfo(
                "10.0.0.5:1".parse::<SocketAddr>().expect("addr"),
            ));
            req
        })
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        last_ip(&t, &a.id, "account.create").await,
        json!("10.0.0.5")
    );
}
