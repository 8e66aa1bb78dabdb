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
    // One Ed25519 lineage (the default), one ES256 lineage (for clients without EdDSA) and one
    // RS256 lineage (required by OpenID Connect).
    let all = set["keys"].as_array().unwrap();
    assert_eq!(all.len(), 3);
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
        5,
        "three lineages, each a first key (the RS256 one imported from the test fixture, so \
         not created here) and its successor: {}",
        events.body
    );
    let kids: Vec<String> = t.state.keys.jwks(now)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids.len(), 6);
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
        3,
        "one key per lineage"
    );
}

#[tokio::test]
async fn private_keys_open_only_with_the_master_key() {
    let t = TestApp::sqlite().await;
    let rows = t.state.store.signing_keys().await.unwrap();
    assert_eq!(rows.len(), 3);
    assert!(
        !format!("{:?}", rows[0]).contains(&format!("{:?}", rows[0].sealed_private)),
        "Debug never shows the sealed key"
    );
    let other = tessera_server::keys::Keys::new(
        t.state.store.clone(),
        tessera_token::MasterKey::from_bytes([9; 32])
            .derive_key(tessera_token::SIGNING_KEYS_PURPOSE),
        tessera_token::RotationPolicy::default(),
        t.state.admission.clone(),
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
    // (one lineage per algorithm: Ed25519, ES256 and RS256).
    let rotated = run(&["keys", "rotate"]);
    let six = [
        "active", "active", "active", "pending", "pending", "pending",
    ];
    assert_eq!(states(&rotated), six);
    let mut algs: Vec<&str> = rotated["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    algs.sort_unstable();
    assert_eq!(algs, ["ES256", "ES256", "EdDSA", "EdDSA", "RS256", "RS256"]);
    // While a successor is pending, rotating again adds nothing.
    let again = run(&["keys", "rotate"]);
    assert_eq!(states(&again), six);
    assert!(
        !again.to_string().contains("sealed"),
        "no private part is listed"
    );
}

/// OpenID Connect Core §15.1 ("OPs MUST support signing ID Tokens with the RSA SHA-256
/// algorithm") and Discovery §3 (`id_token_signing_alg_values_supported`: "The value RS256 MUST
/// be included"): an app created with `token_signing_alg: "RS256"` gets RS256 access tokens
/// that verify from the published JWKS and on every verifying endpoint of the issuer.
#[tokio::test]
async fn an_rs256_app_gets_rs256_tokens_verifiable_from_the_jwks() {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    use serde_json::{json, Value};

    let t = TestApp::sqlite().await;
    let iss = t.state.oauth.issuer().to_owned();
    // Discovery lists RS256 for id tokens and access tokens; no `bearer` among the client
    // authentication methods (RFC 8414 §2: they are how a client authenticates).
    let meta = t
        .call(Method::GET, "/.well-known/openid-configuration", None, None)
        .await
        .body;
    for field in [
        "id_token_signing_alg_values_supported",
        "access_token_signing_alg_values_supported",
    ] {
        let algs = meta[field].as_array().unwrap();
        assert_eq!(algs[0], "EdDSA", "the default first: {field}");
        assert!(algs.contains(&json!("RS256")), "{field}: {algs:?}");
    }
    for field in [
        "token_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        let methods = meta[field].as_array().unwrap();
        assert!(!methods.contains(&json!("bearer")), "{field}: {methods:?}");
        assert!(methods.contains(&json!("client_secret_basic")), "{field}");
    }
    // The JWKS publishes the RSA key with exactly its public members.
    let (set, _) = jwks(&t).await;
    let rsa: Vec<&Value> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["kty"] == "RSA")
        .collect();
    assert_eq!(rsa.len(), 1, "{set}");
    let mut members: Vec<&str> = rsa[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    members.sort_unstable();
    assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
    assert_eq!(
        (rsa[0]["alg"].as_str(), rsa[0]["use"].as_str()),
        (Some("RS256"), Some("sig"))
    );
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(rsa[0]["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256,
        "a 2048-bit modulus"
    );

    // An RS256 app, installed on the agency's account.
    let ag = t.agency("Rsa").await;
    let r = t.post(&format!("/v1/agencies/{}/apps", ag.id), &t.admin, json!({ "name": "Java client", "redirect_uris": ["https://app.example.com/cb"], "scopes": ["contacts.readonly"], "confidential": true, "token_signing_alg": "RS256" })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["token_signing_alg"], "RS256");
    let (id, secret) = (r.id(), r.body["client_secret"].as_str().unwrap().to_owned());
    let got = t
        .get(&format!("/v1/agencies/{}/apps/{id}", ag.id), &t.admin)
        .await;
    assert_eq!(got.body["token_signing_alg"], "RS256");
    let ins = t
        .post(
            &format!("/v1/agencies/{}/accounts/{}/installations", ag.id, ag.acc),
            &t.admin,
            json!({ "app": id, "scopes": ["contacts.readonly"] }),
        )
        .await;
    assert_eq!(ins.status, StatusCode::CREATED, "{}", ins.body);

    // Client credentials: an RS256 access token, signed by the published RSA key.
    let basic = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
    let form = |path: &'static str, pairs: Vec<(&'static str, String)>| {
        let body = serde_urlencoded::to_string(&pairs).unwrap();
        axum::http::Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", basic.as_str())
            .body(axum::body::Body::from(body))
            .unwrap()
    };
    let tok = t
        .raw(form(
            "/oauth/token",
            vec![("grant_type", "client_credentials".into())],
        ))
        .await;
    assert_eq!(tok.status, StatusCode::OK, "{}", tok.body);
    let at = tok.body["access_token"].as_str().unwrap().to_owned();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(at.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["kid"], rsa[0]["kid"]);
    let published = JwkSet::from_json(&set).unwrap();
    let v = Validation::access_token(&iss, Some(&iss), T0 / 1000);
    let claims = verify(&at, &published, &v).unwrap();
    assert_eq!(claims.client_id, id);
    assert_eq!(claims.tenant.account.as_deref(), Some(ag.acc.as_str()));

    // The issuer verifies it: introspection, and bearer authentication on /v1.
    let intro = t
        .raw(form("/oauth/introspect", vec![("token", at.clone())]))
        .await;
    assert_eq!(intro.body["active"], true, "{}", intro.body);
    let check = json!({ "permission": "contacts.read", "resource": { "type": "contact", "agency": ag.id, "account": ag.acc } });
    let r = t.post("/v1/check", &at, check.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["allowed"], true, "{}", r.body);

    // The same token under another algorithm name, or with its signature malleated, is refused.
    let (_, rest) = at.split_once('.').unwrap();
    let mut confused = header.clone();
    confused["alg"] = json!("PS256");
    let confused = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(confused.to_string()));
    assert!(verify(&confused, &published, &v).is_err());
    let r = t.post("/v1/check", &confused, check).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let intro = t
        .raw(form("/oauth/introspect", vec![("token", confused)]))
        .await;
    assert_eq!(intro.body["active"], false, "{}", intro.body);
}
