//! The guard against a real Tessera in another process: audience-bound tokens, API keys by
//! introspection, the catalog fetched at start, and the test: a revoked JWT refused
//! by the guard within 1 s p99 (20 revocations).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::Tessera;
use tessera_guard::{CredentialKind, Guard, GuardConfig, Refusal};

const RESOURCE: &str = "https://contacts.guard.test";

async fn synced(guard: &Guard) {
    let start = Instant::now();
    while !guard.is_synced() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the guard never read the revocation feed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_against_a_real_tessera() {
    let t = Tessera::start();
    let (agy, acc) = t.tenant("Guarded");
    t.resource_server(&agy, RESOURCE, &["contacts.readonly", "contacts.write"]);
    let app = t.installed_app(&agy, &acc, &["contacts.readonly"]);
    // The guard's own credential: an agency key that may read the feed (its agency's only).
    let guard_key = t.admin(
        "POST",
        &format!("/v1/agencies/{agy}/api-keys"),
        json!({"name": "contacts guard", "scopes": ["revocations.readonly"]}),
    );
    let guard_key = guard_key["secret"].as_str().unwrap();
    let guard = Guard::start(GuardConfig::new(&t.url, RESOURCE).with_credential(guard_key))
        .await
        .unwrap();
    synced(&guard).await;

    // An audience-bound token is accepted, with its tenant, installation and permissions.
    let token = t.token(&app, "contacts.readonly", RESOURCE);
    let p = guard.authenticate(&token).await.unwrap();
    assert_eq!(p.agency(), agy);
    assert_eq!(p.account(), Some(acc.as_str()));
    assert_eq!(p.client_id(), Some(app.client_id.as_str()));
    assert!(p.has_permission("contacts.read"));
    assert!(!p.has_permission("contacts.write"));

    // A token for Tessera's own API (aud = the issuer) is not a credential here.
    let (code, v) = t.form(
        "/oauth/token",
        Some((&app.client_id, &app.secret)),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "contacts.readonly"),
        ],
    );
    assert_eq!(code, 200, "{v}");
    let own = v["access_token"].as_str().unwrap();
    match guard.authenticate(own).await {
        Err(Refusal::Invalid(why)) => assert!(why.contains("audience"), "{why}"),
        other => panic!("{other:?}"),
    }

    // An API key is introspected.
    let key = t.admin(
        "POST",
        &format!("/v1/agencies/{agy}/api-keys"),
        json!({"name": "reporting", "scopes": ["contacts.readonly"]}),
    );
    let secret = key["secret"].as_str().unwrap();
    let p = guard.authenticate(secret).await.unwrap();
    assert_eq!(p.kind(), CredentialKind::ApiKey);
    assert_eq!(p.agency(), agy);
    assert!(p.has_permission("contacts.read"));
    assert!(guard.authenticate("tsk_nope").await.is_err());

    // The test: revoked JWTs refused by this guard (another process than Tessera)
    // within 1 s p99.
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let token = t.token(&app, "contacts.readonly", RESOURCE);
        guard.authenticate(&token).await.unwrap();
        let revoked_at = Instant::now();
        t.revoke(&app, &token);
        loop {
            if guard.authenticate(&token).await.is_err() {
                break;
            }
            assert!(
                revoked_at.elapsed() < Duration::from_secs(10),
                "a revoked token was still accepted after 10 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(revoked_at.elapsed());
    }
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[((latencies.len() as f64 * 0.99).ceil() as usize).saturating_sub(1)];
    println!("revocation reached the guard: p50 {p50:?}, p99 {p99:?} (20 revocations)");
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?}");
}

/// The plumbing alone (no feed, no resource servers): the catalog from `GET /v1/catalog`, the
/// JWKS, a token with the default audience (the issuer), and an API key by introspection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_reads_a_real_tesseras_catalog_jwks_and_introspection() {
    let t = Tessera::start();
    let (agy, acc) = t.tenant("Plumbing");
    let app = t.installed_app(&agy, &acc, &["contacts.readonly"]);
    let guard = Guard::start(
        GuardConfig::new(&t.url, &t.url)
            .with_credential(&t.admin)
            .without_feed(),
    )
    .await
    .unwrap();
    assert!(guard.catalog().has_permission("contacts.read"));
    assert_eq!(
        guard.catalog().scopes_granting("contacts.import"),
        "contacts.bulk"
    );
    let (code, v) = t.form(
        "/oauth/token",
        Some((&app.client_id, &app.secret)),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "contacts.readonly"),
        ],
    );
    assert_eq!(code, 200, "{v}");
    let token = v["access_token"].as_str().unwrap();
    // Without the feed the guard fails closed until told otherwise.
    assert_eq!(
        guard.authenticate(token).await.unwrap_err(),
        Refusal::NotReady
    );
    guard.mark_synced();
    let p = guard.authenticate(token).await.unwrap();
    assert_eq!(p.agency(), agy);
    assert_eq!(p.installation().map(|i| i.starts_with("ins_")), Some(true));
    assert!(p.has_permission("contacts.read"));
    let key = t.admin(
        "POST",
        &format!("/v1/agencies/{agy}/api-keys"),
        json!({"name": "reporting", "scopes": ["contacts.readonly"]}),
    );
    let p = guard
        .authenticate(key["secret"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(p.kind(), CredentialKind::ApiKey);
    assert_eq!(Some(p.subject()), key["id"].as_str());
}
