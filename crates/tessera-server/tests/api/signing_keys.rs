//! The token-signing key ring: JWKS, signing with the active key, rotation over time with
//! publish-ahead and retention, and private keys that only the master key opens.

use axum::http::{Method, StatusCode};
use tessera_token::{encode_access_token, verify, AccessClaims, Algorithm, JwkSet, Validation};

use crate::harness::{TestApp, T0};

const DAY: i64 = 86_400;

fn claims(now: i64) -> AccessClaims {
    AccessClaims {
        iss: "http://tessera.test".into(),
        sub: "usr_01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
        aud: vec!["api".into()],
        exp: now + 600,
        iat: now,
        nbf: now,
        jti: "j1".into(),
        client_id: "app_01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
        scope: "contacts.readonly".into(),
        tenant: tessera_token::Tenant {
            agency: "agy_01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
            account: None,
        },
        act: None,
        extra: serde_json::Map::new(),
    }
}

async fn jwks(t: &TestApp) -> (serde_json::Value, String) {
    let r = t
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    (
        r.body,
        r.headers["cache-control"].to_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn jwks_publishes_the_active_key_and_tokens_verify_against_it() {
    let t = TestApp::sqlite().await;
    let (set, cache) = jwks(&t).await;
    assert_eq!(cache, "public, max-age=300");
    // One Ed25519 lineage (the default) and one ES256 lineage (for clients without EdDSA).
    let all = set["keys"].as_array().unwrap();
    assert_eq!(all.len(), 2);
    let ec: Vec<_> = all.iter().filter(|k| k["kty"] == "EC").collect();
    assert_eq!(
        (ec.len(), ec[0]["crv"].as_str(), ec[0]["alg"].as_str()),
        (1, Some("P-256"), Some("ES256"))
    );
    assert!(all.iter().all(|k| k.get("d").is_none()));
    let keys: Vec<_> = all.iter().filter(|k| k["kty"] == "OKP").cloned().collect();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (
            keys[0]["kty"].as_str(),
            keys[0]["crv"].as_str(),
            keys[0]["alg"].as_str(),
            keys[0]["use"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"), Some("sig"))
    );
    assert!(
        keys[0].get("d").is_none(),
        "no private part is ever published"
    );
    let now = T0 / 1000;
    let ring = t.state.keys.ring().unwrap();
    let token = encode_access_token(
        &claims(now),
        ring.signing_key_for(Algorithm::EdDsa, now).unwrap(),
    );
    let published = JwkSet::from_json(&set).unwrap();
    let v = Validation::access_token("http://tessera.test", Some("api"), now);
    assert_eq!(
        verify(&token, &published, &v).unwrap().sub,
        "usr_01ARZ3NDEKTSV4RRFFQ69G5FAV"
    );
    // Maintenance is idempotent: the same key again.
    assert_eq!(t.state.keys.maintain(now).await.unwrap(), 0);
    assert_eq!(jwks(&t).await.0, set);
}

#[tokio::test]
async fn rotation_publishes_ahead_and_retains_until_tokens_expire() {
    let t = TestApp::sqlite().await;
    let now = T0 / 1000;
    let old_kid = t
        .state
        .keys
        .ring()
        .unwrap()
        .signing_key_for(Algorithm::EdDsa, now)
        .unwrap()
        .kid()
        .to_owned();
    let old_token = encode_access_token(
        &claims(now),
        t.state
            .keys
            .ring()
            .unwrap()
            .signing_key_for(Algorithm::EdDsa, now)
            .unwrap(),
    );
    // By hand: a new key is published at once but does not sign yet. The step is audited in
    // the platform tenant's chain, with the first key (made right after bootstrap).
    assert!(t.state.keys.rotate(now).await.unwrap() >= 1);
    let platform = t.state.store.platform_agency().await.unwrap().unwrap();
    let events = t
        .get(
            &format!(
                "/v1/agencies/{}/audit?action=signing_key.create",
                platform.id
            ),
            &t.admin,
        )
        .await;
    assert_eq!(
        events.body["items"].as_array().unwrap().len(),
        4,
        "two lineages, each a first key and its successor: {}",
        events.body
    );
    let kids: Vec<String> = t.state.keys.jwks(now)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids.len(), 4);
    assert_eq!(
        t.state
            .keys
            .ring()
            .unwrap()
            .signing_key_for(Algorithm::EdDsa, now)
            .unwrap()
            .kid(),
        old_kid
    );
    // After the publish-ahead period the new key signs; the old one stays published.
    let later = now + 2 * DAY + 1;
    t.state.keys.maintain(later).await.unwrap();
    let ring = t.state.keys.ring().unwrap();
    let new_kid = ring
        .signing_key_for(Algorithm::EdDsa, later)
        .unwrap()
        .kid()
        .to_owned();
    assert_ne!(new_kid, old_kid);
    let set = JwkSet::from_json(&t.state.keys.jwks(later)).unwrap();
    assert!(
        set.get(&old_kid).is_some(),
        "the retiring key verifies the tokens it signed"
    );
    let v = Validation::access_token("http://tessera.test", Some("api"), now + 60);
    assert!(verify(&old_token, &set, &v).is_ok());
    // Once every token it signed has expired, it leaves the JWKS for good.
    let much_later = later + 2 * 3_600;
    t.state.keys.maintain(much_later).await.unwrap();
    t.state.keys.maintain(much_later).await.unwrap();
    let set = t.state.keys.jwks(much_later);
    let kids: Vec<&str> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["kty"] == "OKP")
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [new_kid.as_str()]);
    assert_eq!(
        set["keys"].as_array().unwrap().len(),
        2,
        "one key per lineage"
    );
}

#[tokio::test]
async fn private_keys_open_only_with_the_master_key() {
    let t = TestApp::sqlite().await;
    let rows = t.state.store.signing_keys().await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        !format!("{:?}", rows[0]).contains(&format!("{:?}", rows[0].sealed_private)),
        "Debug never shows the sealed key"
    );
    let other = tessera_server::keys::Keys::new(
        t.state.store.clone(),
        &tessera_token::MasterKey::from_bytes([9; 32]),
        tessera_token::RotationPolicy::default(),
    );
    assert!(
        other.reload().await.is_err(),
        "another master key cannot unseal the signing key"
    );
}

#[test]
fn the_cli_rotates_and_lists_keys() {
    let dir = tessera_store::testing::TempDirGuard::new("tessera-keys-cli").unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--output")
            .arg("json")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = run(&["keys", "list"]);
    assert_eq!(
        first["keys"].as_array().unwrap().len(),
        0,
        "listing creates nothing"
    );
    let states = |v: &serde_json::Value| {
        let mut s: Vec<String> = v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["state"].as_str().unwrap().to_owned())
            .collect();
        s.sort_unstable();
        s
    };
    // On a new store: the first key (active), then the rotation's successor (pending).
    // (one lineage per algorithm: Ed25519 and ES256).
    let rotated = run(&["keys", "rotate"]);
    assert_eq!(states(&rotated), ["active", "active", "pending", "pending"]);
    // While a successor is pending, rotating again adds nothing.
    let again = run(&["keys", "rotate"]);
    assert_eq!(states(&again), ["active", "active", "pending", "pending"]);
    assert!(
        !again.to_string().contains("sealed"),
        "no private part is listed"
    );
}
