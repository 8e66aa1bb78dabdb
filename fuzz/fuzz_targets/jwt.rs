//! JWT verification (`tessera_token::verify`, `verify_id_token`) with a fixed key set, and the
//! JWKS parser (`JwkSet::from_json`). The first byte picks the mode:
//! - 0: the rest is a compact token, verified as is (split, header, key lookup, signature);
//! - 1: the rest is `header JSON \n claims JSON`, signed here with the fixed Ed25519 key, so
//!   the claims parser and the claim checks behind the signature are reached too;
//! - 2: the rest is a JWKS document.
//!
//! INVARIANT: every input is claims or a `JwtError`/`JwkError`, never a panic.
#![no_main]

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tessera_token::{verify, verify_id_token, JwkSet, Validation, VerificationKey};

/// The kid of the Ed25519 key in the fuzz key set (tokens in the corpus name it).
const KID: &str = "fuzz-ed25519";
const ISSUER: &str = "https://tessera.test";
/// 2027-01-15, inside the corpus tokens' validity.
const NOW: i64 = 1_800_000_000;

struct Keys {
    signer: ed25519_dalek::SigningKey,
    set: JwkSet,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let signer = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let x = URL_SAFE_NO_PAD.encode(signer.verifying_key().as_bytes());
        let ed = json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": KID, "alg": "EdDSA", "use": "sig"});
        // A P-256 key too (scalar 7: not a secret), so ES256 paths are reached.
        let ec = json!({
            "kty": "EC", "crv": "P-256", "kid": "fuzz-p256", "alg": "ES256",
            "x": "jlM7b6C_e0YluzBmfAH7YH75-LioD-9bMAYocDGHsqM",
            "y": "c-sdveAzGDZtBp-DpvWQAFPHNjPLBBshxV4ahsH0ALQ",
        });
        let keys = [ed, ec]
            .iter()
            .map(|k| VerificationKey::from_jwk(k).expect("the fixed keys are valid JWKs"))
            .collect();
        Keys {
            signer,
            set: JwkSet::new(keys),
        }
    })
}

fn check(token: &str, set: &JwkSet) {
    let _ = verify(
        token,
        set,
        &Validation::access_token(ISSUER, Some("api"), NOW),
    );
    let _ = verify(token, set, &Validation::access_token(ISSUER, None, NOW));
    let _ = verify_id_token(token, set, &Validation::id_token(ISSUER, "app_fuzz", NOW));
}

fuzz_target!(init: tessera_fuzz::catch_stack_overflow(), |data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let keys = keys();
    match mode % 3 {
        0 => {
            if let Ok(token) = std::str::from_utf8(rest) {
                check(token, &keys.set);
            }
        }
        1 => {
            let (header, claims) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &[][..]),
            };
            let mut token = URL_SAFE_NO_PAD.encode(header);
            token.push('.');
            URL_SAFE_NO_PAD.encode_string(claims, &mut token);
            let signature = keys.signer.sign(token.as_bytes());
            token.push('.');
            URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
            check(&token, &keys.set);
        }
        _ => {
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(rest) {
                if let Ok(set) = JwkSet::from_json(&value) {
                    let _ = set.keys().len();
                }
            }
        }
    }
});
