//! Guard verification latency, cached and uncached, beside raw verification of the same
//! Ed25519 access token with `jsonwebtoken` (and with bare `ed25519-dalek` plus claim
//! decoding). Prints p50/p99 per case and the ratios against the targets (cached p99
//! ≤ 2 µs; uncached p50 ≤ 1.2× raw `jsonwebtoken`).
//!
//! `cargo run --release -p tessera-guard --example guard_bench -- [SAMPLES] [--json]`
//! (bench/guard.sh). The guard runs with the revocation feed off (marked synchronised) and
//! a JWKS served by an in-process fake issuer, so nothing but verification is measured.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use tessera_guard::{Guard, GuardConfig};
use tessera_token::{encode_access_token, AccessClaims, Actor, Algorithm, SigningKey, Tenant};

const ISS: &str = "http://127.0.0.1";
const AUD: &str = "https://contacts.example";

fn claims(i: usize, now: i64) -> AccessClaims {
    let mut extra = Map::new();
    extra.insert("sid".into(), json!("grt_01JD0000000000000000000000"));
    extra.insert("ins".into(), json!("ins_01JD0000000000000000000000"));
    AccessClaims {
        iss: ISS.into(),
        sub: "usr_01JD00000000000000000000AN".into(),
        aud: vec![AUD.into()],
        exp: now + 900,
        iat: now,
        nbf: now,
        jti: format!("jti_{i:026}"),
        client_id: "app_01JD0000000000000000000000".into(),
        scope: "contacts.readonly contacts.write".into(),
        tenant: Tenant {
            agency: "agy_01JD0000000000000000000000".into(),
            account: Some("acc_01JD0000000000000000000000".into()),
        },
        act: Some(Actor {
            sub: "usr_01JD00000000000000SUPPORT".into(),
            act: None,
        }),
        extra,
    }
}

fn percentiles(mut ns: Vec<u64>) -> (u64, u64) {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 * q) as usize).min(ns.len() - 1)];
    (at(0.50), at(0.99))
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct RawClaims {
    iss: String,
    sub: String,
    aud: Value,
    exp: i64,
    nbf: i64,
    jti: String,
    scope: String,
    tenant: Value,
}

/// Bare ed25519-dalek: split, decode the signature, verify, decode and parse the claims,
/// check iss/aud/exp — what any JWT library must do at least.
fn raw_dalek(token: &str, key: &ed25519_dalek::VerifyingKey, now: i64) -> bool {
    let Some((input, sig)) = token.rsplit_once('.') else {
        return false;
    };
    let Some((_, payload)) = input.split_once('.') else {
        return false;
    };
    let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
        return false;
    };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(&sig) else {
        return false;
    };
    use ed25519_dalek::Verifier as _;
    if key.verify(input.as_bytes(), &sig).is_err() {
        return false;
    }
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(payload) else {
        return false;
    };
    let Ok(c) = serde_json::from_slice::<RawClaims>(&bytes) else {
        return false;
    };
    c.iss == ISS && c.aud == AUD && c.exp > now
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let samples: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let as_json = std::env::args().any(|a| a == "--json");
    let key = SigningKey::generate(Algorithm::EdDsa, &mut rand::rngs::OsRng);
    let jwk = key.verification_key().to_jwk();
    let jwks = json!({"keys": [jwk.clone()]});
    let app = Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let jwks = jwks.clone();
            async move { Json(jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let catalog = json!({
        "permissions": [{"name": "contacts.read", "resource": "contact"},
                        {"name": "contacts.write", "resource": "contact"}],
        "scopes": [{"name": "contacts.readonly", "permissions": ["contacts.read"]},
                   {"name": "contacts.write", "permissions": ["contacts.read", "contacts.write"]}],
    });
    let mut config = GuardConfig::new(ISS, AUD)
        .with_tessera_url(url)
        .with_catalog(catalog)
        .without_feed();
    config.token_cache_size = samples + 16;
    let guard = Guard::start(config).await.unwrap();
    guard.mark_synced();

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let tokens: Vec<String> = (0..samples)
        .map(|i| encode_access_token(&claims(i, now), &key))
        .collect();

    // Raw jsonwebtoken (rust_crypto backend), validating iss, aud, exp, nbf and the algorithm.
    let decoding =
        jsonwebtoken::DecodingKey::from_jwk(&serde_json::from_value(jwk).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&[ISS]);
    validation.set_audience(&[AUD]);
    validation.validate_nbf = true;
    let vk = ed25519_dalek::VerifyingKey::from_bytes(
        &URL_SAFE_NO_PAD
            .decode(key.verification_key().to_jwk()["x"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    )
    .unwrap();
    // The three verifications of each token are timed one after the other, in rotating
    // order, so that the machine's drift affects them alike.
    let mut jwt_ns = Vec::with_capacity(samples);
    let mut dalek_ns = Vec::with_capacity(samples);
    let mut uncached_ns = Vec::with_capacity(samples);
    for (i, t) in tokens.iter().enumerate() {
        for step in 0..3 {
            match (i + step) % 3 {
                0 => {
                    let t0 = Instant::now();
                    let ok = jsonwebtoken::decode::<Value>(t, &decoding, &validation).is_ok();
                    jwt_ns.push(t0.elapsed().as_nanos() as u64);
                    assert!(ok);
                }
                1 => {
                    let t0 = Instant::now();
                    let ok = raw_dalek(t, &vk, now);
                    dalek_ns.push(t0.elapsed().as_nanos() as u64);
                    assert!(ok);
                }
                _ => {
                    // The guard, uncached: every token seen for the first time.
                    let t0 = Instant::now();
                    let ok = guard.authenticate(t).await.is_ok();
                    uncached_ns.push(t0.elapsed().as_nanos() as u64);
                    assert!(ok);
                }
            }
        }
    }
    // The guard, cached: the same tokens again (a cache of `samples` tokens).
    let mut cached_ns = Vec::with_capacity(samples * 4);
    for _ in 0..4 {
        for t in &tokens {
            let t0 = Instant::now();
            let ok = guard.authenticate(t).await.is_ok();
            cached_ns.push(t0.elapsed().as_nanos() as u64);
            assert!(ok);
        }
    }

    let (jwt50, jwt99) = percentiles(jwt_ns);
    let (d50, d99) = percentiles(dalek_ns);
    let (u50, u99) = percentiles(uncached_ns);
    let (c50, c99) = percentiles(cached_ns);
    if as_json {
        println!(
            "{}",
            json!({
                "samples": samples,
                "jsonwebtoken": {"p50_ns": jwt50, "p99_ns": jwt99},
                "ed25519_dalek": {"p50_ns": d50, "p99_ns": d99},
                "guard_uncached": {"p50_ns": u50, "p99_ns": u99},
                "guard_cached": {"p50_ns": c50, "p99_ns": c99},
                "uncached_over_jsonwebtoken_p50": u50 as f64 / jwt50 as f64,
                "uncached_over_jsonwebtoken_p99": u99 as f64 / jwt99 as f64,
            })
        );
        return;
    }
    println!(
        "Ed25519 access token of {} bytes, {samples} samples",
        tokens[0].len()
    );
    println!("{:<40} {:>10} {:>10}", "case", "p50 (µs)", "p99 (µs)");
    let row = |name: &str, p50: u64, p99: u64| {
        println!(
            "{name:<40} {:>10.2} {:>10.2}",
            p50 as f64 / 1000.0,
            p99 as f64 / 1000.0
        )
    };
    row("raw jsonwebtoken 10 (rust_crypto) decode", jwt50, jwt99);
    row("raw ed25519-dalek verify + claims", d50, d99);
    row("guard, uncached (verify + cache insert)", u50, u99);
    row("guard, cached", c50, c99);
    println!(
        "uncached / jsonwebtoken: p50 {:.2}x, p99 {:.2}x (target ≤ 1.2x)",
        u50 as f64 / jwt50 as f64,
        u99 as f64 / jwt99 as f64
    );
    println!("cached p99 {:.2} µs (target ≤ 2 µs)", c99 as f64 / 1000.0);
}
