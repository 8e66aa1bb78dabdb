//! Tests of JWT signing and verification: round trips, the RFC 8037 known answer, one test per
//! attack RFC 8725 warns about (each must fail with its own error), and a timing print.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use hmac::{Hmac, Mac};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Map, Value};
use sha2::Sha256;

use super::*;
use crate::keyring::{KeyRecord, KeyState};
use crate::rotation::{apply_plan, plan_rotation, RotationPolicy};
use crate::secret::SecretBytes;

const ISS: &str = "https://id.example.com";
const AUD: &str = "https://api.example.com";
const NOW: i64 = 1_700_000_000;

fn ek() -> SecretBytes<32> {
    SecretBytes::new([6u8; 32])
}

fn access_claims() -> AccessClaims {
    AccessClaims {
        iss: ISS.into(),
        sub: "usr_01J0000000000000000000000".into(),
        aud: vec![AUD.into()],
        exp: NOW + 900,
        iat: NOW,
        nbf: NOW,
        jti: "tok_01J0000000000000000000000".into(),
        client_id: "app_01J0000000000000000000000".into(),
        scope: "contacts.readonly contacts.write".into(),
        tenant: Tenant {
            agency: "agy_01J0000000000000000000000".into(),
            account: Some("acc_01J0000000000000000000000".into()),
        },
        act: None,
        extra: Map::new(),
    }
}

fn id_claims() -> IdClaims {
    IdClaims {
        iss: ISS.into(),
        sub: "usr_01J0000000000000000000000".into(),
        aud: vec!["app_client".into()],
        exp: NOW + 300,
        iat: NOW,
        auth_time: Some(NOW - 10),
        nonce: Some("n-0S6_WzA2Mj".into()),
        azp: None,
        extra: Map::new(),
    }
}

fn validation() -> Validation<'static> {
    Validation::access_token(ISS, Some(AUD), NOW)
}

/// A ring with an active Ed25519 key and a pending ES256 key; returns both keys' kids.
fn ring() -> (KeyRing, String, String) {
    let mut rng = StdRng::seed_from_u64(11);
    let (ed, _) = KeyRecord::generate(Algorithm::EdDsa, KeyState::Active, 0, 0, &ek(), &mut rng);
    let (es, _) = KeyRecord::generate(
        Algorithm::Es256,
        KeyState::Pending,
        0,
        i64::MAX,
        &ek(),
        &mut rng,
    );
    let (ed_kid, es_kid) = (ed.kid.clone(), es.kid.clone());
    (KeyRing::new(&[ed, es], &ek()).unwrap(), ed_kid, es_kid)
}

fn signing_key(ring: &KeyRing) -> &SigningKey {
    ring.signing_key(NOW).unwrap()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with any header and payload, signed by `sign` over `header.payload`.
fn forge(header: &Value, payload: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(signature))
}

/// A token signed by `key` with a header of our choosing.
fn forge_signed(key: &SigningKey, header: &Value, payload: &Value) -> String {
    forge(header, payload, |m| key.sign(m).as_ref().to_vec())
}

fn good_header(key: &SigningKey) -> Value {
    json!({"alg": key.alg().as_str(), "typ": "at+jwt", "kid": key.kid()})
}

fn payload() -> Value {
    serde_json::to_value(access_claims()).unwrap()
}

#[test]
fn round_trip_every_algorithm() {
    let mut rng = StdRng::seed_from_u64(1);
    for alg in [Algorithm::EdDsa, Algorithm::Es256, Algorithm::Rs256] {
        let generated;
        let key = if alg == Algorithm::Rs256 {
            crate::signing_key::test_rsa_key()
        } else {
            generated = SigningKey::generate(alg, &mut rng);
            &generated
        };
        let mut claims = access_claims();
        claims.aud.push("https://other.example.com".into());
        claims.act = Some(Actor {
            sub: "usr_support".into(),
            act: Some(Box::new(Actor {
                sub: "app_delegate".into(),
                act: None,
            })),
        });
        claims.extra.insert("cnf".into(), json!({"jkt": "abc"}));
        let token = encode_access_token(&claims, key);
        let back = verify(&token, key.verification_key(), &validation()).unwrap();
        assert_eq!(back, claims);
        assert_eq!(
            back.scopes().collect::<Vec<_>>(),
            ["contacts.readonly", "contacts.write"]
        );

        // The header is exactly alg, typ, kid.
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            header,
            json!({"alg": alg.as_str(), "typ": "at+jwt", "kid": key.kid()})
        );

        let id = id_claims();
        let token = encode_id_token(&id, key);
        let expected = Validation::id_token(ISS, "app_client", NOW);
        assert_eq!(
            verify_id_token(&token, key.verification_key(), &expected).unwrap(),
            id
        );
    }
}

#[test]
fn single_audience_is_a_string_and_optional_claims_are_omitted() {
    let (ring, _, _) = ring();
    let mut claims = access_claims();
    claims.tenant.account = None;
    let token = encode_access_token(&claims, signing_key(&ring));
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["aud"], json!(AUD));
    assert_eq!(payload["tenant"], json!({"agency": claims.tenant.agency}));
    assert!(payload.get("act").is_none());
    assert_eq!(verify(&token, &ring, &validation()).unwrap(), claims);
}

/// RFC 8037 Appendix A.1, A.4 and A.5: the example key, and the known signature over the
/// example payload, checked with our signing key, our base64url and our signature check.
#[test]
fn rfc8037_ed25519_known_answer() {
    const D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const JWS: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.\
        hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

    let d: [u8; 32] = URL_SAFE_NO_PAD.decode(D).unwrap().try_into().unwrap();
    let key = SigningKey::from_private_bytes(Algorithm::EdDsa, &d).unwrap();
    let jwk = key.verification_key().to_jwk();
    assert_eq!(jwk["x"], X);
    assert_eq!(
        key.verification_key().thumbprint(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );

    // A.4: signing `{"alg":"EdDSA"}` . "Example of Ed25519 signing" gives the RFC's JWS.
    let input = format!(
        "{}.{}",
        b64(r#"{"alg":"EdDSA"}"#),
        b64("Example of Ed25519 signing")
    );
    let jws = format!("{input}.{}", b64(key.sign(input.as_bytes())));
    assert_eq!(jws, JWS);

    // A.5: the RFC's JWS verifies with the public key alone (parsed from its JWK), and fails
    // with any bit of the signature flipped.
    let public = VerificationKey::from_jwk(&json!({
        "kty": "OKP", "crv": "Ed25519", "x": X, "kid": "rfc8037"
    }))
    .unwrap();
    let parts = split(JWS).unwrap();
    assert_eq!(check_signature(public.public_key(), &parts), Ok(()));
    assert_eq!(
        URL_SAFE_NO_PAD.decode(parts.payload).unwrap(),
        b"Example of Ed25519 signing"
    );
    let mut sig = URL_SAFE_NO_PAD.decode(parts.signature).unwrap();
    sig[10] ^= 0x04;
    let tampered = format!("{}.{}", parts.signing_input, b64(&sig));
    assert_eq!(
        check_signature(public.public_key(), &split(&tampered).unwrap()),
        Err(JwtError::BadSignature)
    );

    // And our own token with this key carries the same signature primitive end to end.
    let token = encode_access_token(&access_claims(), &key);
    let public = VerificationKey::from_jwk(&jwk).unwrap();
    assert!(verify(&token, &public, &validation()).is_ok());
}

#[test]
fn malformed_tokens() {
    let (ring, _, _) = ring();
    let key = signing_key(&ring);
    let good = encode_access_token(&access_claims(), key);
    let (h, rest) = good.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    let long = "a".repeat(MAX_TOKEN_LEN + 1);
    for bad in [
        "",
        ".",
        "..",
        "abc",
        "a.b",
        &format!("{h}.{p}"),
        &format!("{h}.{p}.{s}.{s}"),
        &format!("{h}.{p}.{s}."),
        &format!("!!.{p}.{s}"),
        &format!("{h}=.{p}.{s}"),
        &format!("{}.{p}.{s}", b64("not json")),
        &format!("{}.{p}.{s}", b64("[1,2]")),
        &format!("{}.{p}.{s}", b64(r#"{"typ":"at+jwt"}"#)),
        &format!(
            "{}.{p}.{s}",
            b64(r#"{"alg":"EdDSA","alg":"EdDSA","typ":"at+jwt"}"#)
        ),
        &format!("{h}.{p}.{}", "*".repeat(86)),
        &long,
    ] {
        assert!(
            matches!(
                verify(bad, &ring, &validation()),
                Err(JwtError::Malformed(_))
            ),
            "{bad:.60}: {:?}",
            verify(bad, &ring, &validation())
        );
    }
    // Validly signed payloads that are not claims.
    for payload in ["not json", "[]", r#"{"exp":"tomorrow"}"#, r#"{"aud":5}"#] {
        let input = format!("{h}.{}", b64(payload));
        let token = format!("{input}.{}", b64(key.sign(input.as_bytes())));
        assert!(
            matches!(
                verify(&token, &ring, &validation()),
                Err(JwtError::Malformed(_))
            ),
            "{payload}"
        );
    }
    // A payload with base64 padding is not canonical base64url.
    let input = format!("{h}.{p}=");
    let token = format!("{input}.{}", b64(key.sign(input.as_bytes())));
    assert!(matches!(
        verify(&token, &ring, &validation()),
        Err(JwtError::Malformed(_))
    ));
}

#[test]
fn alg_none_is_rejected() {
    let (ring, kid, _) = ring();
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": kid});
        for token in [
            forge(&header, &payload(), |_| Vec::new()),
            forge(&header, &payload(), |_| vec![0u8; 64]),
        ] {
            // An empty signature leaves a trailing dot: still three parts.
            assert_eq!(
                verify(&token, &ring, &validation()),
                Err(JwtError::AlgNone),
                "{alg}"
            );
        }
    }
}

#[test]
fn other_algorithms_are_rejected() {
    let (ring, ed_kid, es_kid) = ring();
    let ed = ring.verification_key(&ed_kid).unwrap().clone();
    let hmac = |secret: &[u8]| {
        let secret = secret.to_vec();
        move |m: &[u8]| {
            let mut mac = Hmac::<Sha256>::new_from_slice(&secret).unwrap();
            mac.update(m);
            mac.finalize().into_bytes().to_vec()
        }
    };
    let x = URL_SAFE_NO_PAD
        .decode(ed.to_jwk()["x"].as_str().unwrap())
        .unwrap();
    let jwk_text = ed.to_jwk().to_string();
    // HS256 keyed with the public key (raw bytes, base64url text, the JWK JSON): the classic
    // algorithm-confusion attack.
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": ed_kid});
    for secret in [
        x.clone(),
        ed.to_jwk()["x"].as_str().unwrap().as_bytes().to_vec(),
        jwk_text.into_bytes(),
    ] {
        let token = forge(&header, &payload(), hmac(&secret));
        assert_eq!(
            verify(&token, &ring, &validation()),
            Err(JwtError::AlgorithmMismatch {
                expected: Algorithm::EdDsa
            })
        );
    }
    for alg in [
        "RS256", "PS256", "ES384", "ES256", "Ed25519", "eddsa", "EDDSA", "HS512",
    ] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": ed_kid});
        let token = forge(&header, &payload(), |_| vec![1u8; 64]);
        assert_eq!(
            verify(&token, &ring, &validation()),
            Err(JwtError::AlgorithmMismatch {
                expected: Algorithm::EdDsa
            }),
            "{alg}"
        );
    }
    // The ES256 key accepts ES256 only.
    let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": es_kid});
    let token = forge(&header, &payload(), |_| vec![1u8; 64]);
    assert_eq!(
        verify(&token, &ring, &validation()),
        Err(JwtError::AlgorithmMismatch {
            expected: Algorithm::Es256
        })
    );
    // An `alg` that is not a string is malformed.
    let header = json!({"alg": 1, "typ": "at+jwt", "kid": ed_kid});
    let token = forge(&header, &payload(), |_| vec![1u8; 64]);
    assert!(matches!(
        verify(&token, &ring, &validation()),
        Err(JwtError::Malformed(_))
    ));
}

#[test]
fn unknown_or_missing_kid_is_rejected() {
    let (ring, _, _) = ring();
    let key = signing_key(&ring);
    let mut rng = StdRng::seed_from_u64(5);
    let stranger = SigningKey::generate(Algorithm::EdDsa, &mut rng);
    // A perfectly signed token from a key the issuer does not publish.
    let token = encode_access_token(&access_claims(), &stranger);
    assert_eq!(
        verify(&token, &ring, &validation()),
        Err(JwtError::UnknownKey)
    );
    let header = json!({"alg": "EdDSA", "typ": "at+jwt"});
    let token = forge_signed(key, &header, &payload());
    assert_eq!(
        verify(&token, &ring, &validation()),
        Err(JwtError::UnknownKey)
    );
    let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": ""});
    let token = forge_signed(key, &header, &payload());
    assert_eq!(
        verify(&token, &ring, &validation()),
        Err(JwtError::UnknownKey)
    );
}

#[test]
fn key_carrying_headers_are_rejected() {
    let (ring, _, _) = ring();
    let key = signing_key(&ring);
    let mut rng = StdRng::seed_from_u64(6);
    let attacker = SigningKey::generate(Algorithm::EdDsa, &mut rng);
    for (name, value) in [
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        // The attacker's own key embedded, token signed with it under the issuer's kid.
        ("jwk", attacker.verification_key().to_jwk()),
        ("x5c", json!(["MIIB..."])),
        ("jku", Value::Null),
    ] {
        let mut header = good_header(key);
        header[name] = value;
        for signer in [key, &attacker] {
            let token = forge_signed(signer, &header, &payload());
            assert_eq!(
                verify(&token, &ring, &validation()),
                Err(JwtError::ForbiddenHeader(name)),
                "{name}"
            );
        }
    }
    let mut header = good_header(key);
    header["crit"] = json!(["exp"]);
    header["exp"] = json!(NOW);
    let token = forge_signed(key, &header, &payload());
    assert_eq!(
        verify(&token, &ring, &validation()),
        Err(JwtError::CriticalHeader)
    );
    let mut header = good_header(key);
    header["crit"] = json!(["b64"]);
    header["b64"] = json!(false);
    let token = forge_signed(key, &header, &payload());
    assert_eq!(
        verify(&token, &ring, &validation()),
        Err(JwtError::CriticalHeader)
    );
    // Unknown, non-critical members are ignored.
    let mut header = good_header(key);
    header["cty"] = json!("JWT");
    header["x5t"] = json!("abc");
    let token = forge_signed(key, &header, &payload());
    assert!(verify(&token, &ring, &validation()).is_ok());
}

#[test]
fn token_type_is_enforced() {
    let (ring, _, _) = ring();
    let key = signing_key(&ring);
    let wrong_type = Err(JwtError::WrongType { expected: "at+jwt" });

    // An id token presented as an access token (even one carrying every access claim).
    let mut id_with_access_claims = id_claims();
    for (k, v) in payload().as_object().unwrap() {
        id_with_access_claims.extra.insert(k.clone(), v.clone());
    }
    id_with_access_claims.extra.remove("iss");
    id_with_access_claims.extra.remove("sub");
    id_with_access_claims.extra.remove("aud");
    id_with_access_claims.extra.remove("exp");
    id_with_access_claims.extra.remove("iat");
    let id_token = encode_id_token(&id_with_access_claims, key);
    assert_eq!(verify(&id_token, &ring, &validation()), wrong_type);
    // An access token presented as an id token.
    let access = encode_access_token(&access_claims(), key);
    assert_eq!(
        verify_id_token(&access, &ring, &Validation::id_token(ISS, AUD, NOW)),
        Err(JwtError::WrongType { expected: "JWT" })
    );
    for typ in [
        json!(null),
        json!("JWT"),
        json!("jwt"),
        json!("at+jwt2"),
        json!(1),
    ] {
        let mut header = good_header(key);
        header["typ"] = typ.clone();
        let token = forge_signed(key, &header, &payload());
        let result = verify(&token, &ring, &validation());
        assert!(
            result == wrong_type || matches!(result, Err(JwtError::Malformed(_))),
            "{typ}: {result:?}"
        );
    }
    let mut header = good_header(key);
    header.as_object_mut().unwrap().remove("typ");
    let token = forge_signed(key, &header, &payload());
    assert_eq!(verify(&token, &ring, &validation()), wrong_type);
    // The media-type forms RFC 7515 §4.1.9 allows.
    for typ in ["application/at+jwt", "AT+JWT", "Application/At+Jwt"] {
        let mut header = good_header(key);
        header["typ"] = json!(typ);
        let token = forge_signed(key, &header, &payload());
        assert!(verify(&token, &ring, &validation()).is_ok(), "{typ}");
    }
}

#[test]
fn bad_signatures_are_rejected() {
    let (ring, _, es_kid) = ring();
    let key = signing_key(&ring);
    let token = encode_access_token(&access_claims(), key);
    let (input, sig) = token.rsplit_once('.').unwrap();

    // Any bit of the signature.
    let raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    for bit in [0, 7, 100, 255, 256, 511] {
        let mut bad = raw.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let token = format!("{input}.{}", b64(&bad));
        assert_eq!(
            verify(&token, &ring, &validation()),
            Err(JwtError::BadSignature),
            "{bit}"
        );
    }
    // A payload changed under the original signature.
    let mut claims = access_claims();
    claims.scope.push_str(" billing.write");
    let (h, _) = input.split_once('.').unwrap();
    let swapped = format!("{h}.{}.{sig}", b64(serde_json::to_vec(&claims).unwrap()));
    assert_eq!(
        verify(&swapped, &ring, &validation()),
        Err(JwtError::BadSignature)
    );
    // Signatures of the wrong length.
    for sig in [
        String::new(),
        b64([0u8; 63]),
        b64([0u8; 65]),
        b64([0u8; 32]),
    ] {
        let token = format!("{input}.{sig}");
        assert_eq!(
            verify(&token, &ring, &validation()),
            Err(JwtError::BadSignature)
        );
    }
    // Ed25519's non-canonical S (S + ℓ) must not verify (malleability).
    let mut s = [0u8; 32];
    s.copy_from_slice(&raw[32..]);
    let l: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(s[i]) + u16::from(l[i]) + carry;
        s[i] = sum as u8;
        carry = sum >> 8;
    }
    let mut malleated = raw.clone();
    malleated[32..].copy_from_slice(&s);
    let token = format!("{input}.{}", b64(&malleated));
    assert_eq!(
        verify(&token, &ring, &validation()),
        Err(JwtError::BadSignature)
    );
    // The Ed25519 signature under the ES256 key's kid and alg.
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": es_kid});
    let token = forge_signed(key, &header, &payload());
    assert_eq!(
        verify(&token, &ring, &validation()),
        Err(JwtError::BadSignature)
    );
}

/// An access token signed by the shared test RS256 key.
fn rs256_token() -> (&'static SigningKey, String) {
    let key = crate::signing_key::test_rsa_key();
    (key, encode_access_token(&access_claims(), key))
}

#[test]
fn rs256_round_trip_and_jwks() {
    let (key, token) = rs256_token();
    let (header, _) = token.split_once('.').unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(
        header,
        json!({"alg": "RS256", "typ": "at+jwt", "kid": key.kid()})
    );
    // A 2048-bit signature: 256 bytes, 342 base64url characters.
    assert_eq!(token.rsplit_once('.').unwrap().1.len(), 342);
    // Verified from the published JWK alone, as a resource server does.
    let jwks = JwkSet::from_json(&json!({"keys": [key.verification_key().to_jwk()]})).unwrap();
    assert_eq!(
        verify(&token, &jwks, &validation()).unwrap(),
        access_claims()
    );
    let id = id_claims();
    let token = encode_id_token(&id, key);
    let expected = Validation::id_token(ISS, "app_client", NOW);
    assert_eq!(verify_id_token(&token, &jwks, &expected).unwrap(), id);
}

#[test]
fn rs256_alg_confusion_is_refused() {
    let (ring, ed_kid, es_kid) = ring();
    let rsa = crate::signing_key::test_rsa_key();
    let keys = vec![
        ring.verification_key(&ed_kid).unwrap().clone(),
        ring.verification_key(&es_kid).unwrap().clone(),
        rsa.verification_key().clone(),
    ];
    let keys = JwkSet::new(keys);
    let rsa_kid = rsa.kid();
    // A genuine RS256 signature, but under a header that names another algorithm for the RSA
    // key: refused before the signature is looked at.
    for alg in [
        "PS256", "RS384", "RS512", "ES256", "EdDSA", "HS256", "rs256",
    ] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": rsa_kid});
        let token = forge_signed(rsa, &header, &payload());
        assert_eq!(
            verify(&token, &keys, &validation()),
            Err(JwtError::AlgorithmMismatch {
                expected: Algorithm::Rs256
            }),
            "{alg}"
        );
    }
    // HS256 keyed with the RSA public key (its `n`, or the JWK text): the classic confusion.
    let jwk = rsa.verification_key().to_jwk();
    for secret in [
        jwk["n"].as_str().unwrap().as_bytes().to_vec(),
        jwk.to_string().into_bytes(),
    ] {
        let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": rsa_kid});
        let token = forge(&header, &payload(), |m| {
            let mut mac = Hmac::<Sha256>::new_from_slice(&secret).unwrap();
            mac.update(m);
            mac.finalize().into_bytes().to_vec()
        });
        assert_eq!(
            verify(&token, &keys, &validation()),
            Err(JwtError::AlgorithmMismatch {
                expected: Algorithm::Rs256
            })
        );
    }
    // RS256 named in the header, but the kid is an Ed25519 or ES256 key: each key verifies with
    // its own algorithm only.
    for (kid, expected) in [(&ed_kid, Algorithm::EdDsa), (&es_kid, Algorithm::Es256)] {
        let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": kid});
        let token = forge_signed(rsa, &header, &payload());
        assert_eq!(
            verify(&token, &keys, &validation()),
            Err(JwtError::AlgorithmMismatch { expected })
        );
    }
}

#[test]
fn rs256_bad_signatures_are_rejected() {
    let (key, token) = rs256_token();
    let keys = key.verification_key();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    for bit in [0, 7, 1000, 2047] {
        let mut bad = raw.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let token = format!("{input}.{}", b64(&bad));
        assert_eq!(
            verify(&token, keys, &validation()),
            Err(JwtError::BadSignature),
            "{bit}"
        );
    }
    // Wrong lengths: one byte short or long, a leading zero added, an EdDSA-sized signature.
    for bad in [
        raw[1..].to_vec(),
        [&raw[..], &[0u8]].concat(),
        [&[0u8][..], &raw[..]].concat(),
        vec![1u8; 64],
        Vec::new(),
    ] {
        let token = format!("{input}.{}", b64(&bad));
        assert_eq!(
            verify(&token, keys, &validation()),
            Err(JwtError::BadSignature)
        );
    }
    // The modulus itself (a "signature" not below n), and all-ones.
    let n = URL_SAFE_NO_PAD
        .decode(keys.to_jwk()["n"].as_str().unwrap())
        .unwrap();
    for bad in [n, vec![0xffu8; 256]] {
        let token = format!("{input}.{}", b64(&bad));
        assert_eq!(
            verify(&token, keys, &validation()),
            Err(JwtError::BadSignature)
        );
    }
    // Non-canonical base64url (trailing bits set in the last character) is not accepted as
    // the same signature.
    let mut last = sig.to_owned();
    let c = last.pop().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let i = alphabet.find(c).unwrap();
    last.push(alphabet.as_bytes()[i ^ 1] as char);
    assert!(verify(&format!("{input}.{last}"), keys, &validation()).is_err());
    // A payload changed under the original signature.
    let mut claims = access_claims();
    claims.scope.push_str(" billing.write");
    let (h, _) = input.split_once('.').unwrap();
    let swapped = format!("{h}.{}.{sig}", b64(serde_json::to_vec(&claims).unwrap()));
    assert_eq!(
        verify(&swapped, keys, &validation()),
        Err(JwtError::BadSignature)
    );
}

/// ECDSA malleability: `(r, n − s)` is a second valid signature of the same message. Tessera
/// signs low-s only and refuses high-s, so each token has exactly one valid signature.
#[test]
fn es256_high_s_is_refused() {
    use p256::ecdsa::signature::Verifier as _;
    let mut rng = StdRng::seed_from_u64(21);
    let key = SigningKey::generate(Algorithm::Es256, &mut rng);
    let token = encode_access_token(&access_claims(), &key);
    assert!(verify(&token, key.verification_key(), &validation()).is_ok());
    let (input, sig) = token.rsplit_once('.').unwrap();
    let low = p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
    assert!(low.normalize_s().is_none(), "Tessera signs low-s");
    // s → n − s.
    let (r, s) = low.split_scalars();
    let high_s: p256::Scalar = -*s;
    let high = p256::ecdsa::Signature::from_scalars(r.to_bytes(), high_s.to_bytes()).unwrap();
    assert_ne!(high, low);
    assert_eq!(high.normalize_s(), Some(low));
    // The plain ECDSA check accepts it: the malleability is real…
    let PublicKey::P256(vk) = key.verification_key().public_key() else {
        panic!("not a P-256 key")
    };
    assert!(vk.verify(input.as_bytes(), &high).is_ok());
    // …and Tessera refuses it.
    let malleated = format!("{input}.{}", b64(high.to_bytes()));
    assert_eq!(
        verify(&malleated, key.verification_key(), &validation()),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn issuer_audience_and_times() {
    let (ring, _, _) = ring();
    let key = signing_key(&ring);
    let token = |f: &dyn Fn(&mut AccessClaims)| {
        let mut claims = access_claims();
        f(&mut claims);
        encode_access_token(&claims, key)
    };
    let check = |t: &str, v: Validation<'_>| verify(t, &ring, &v).map(|_| ());

    let t = token(&|c| c.iss = "https://evil.example.com".into());
    assert_eq!(check(&t, validation()), Err(JwtError::WrongIssuer));
    let t = token(&|c| c.iss = format!("{ISS}/"));
    assert_eq!(check(&t, validation()), Err(JwtError::WrongIssuer));

    let t = token(&|c| c.aud = vec!["https://other.example.com".into()]);
    assert_eq!(check(&t, validation()), Err(JwtError::WrongAudience));
    // Without an expected audience (the issuer itself) any audience passes.
    assert_eq!(check(&t, Validation::access_token(ISS, None, NOW)), Ok(()));
    let t = token(&|c| c.aud = vec!["x".into(), AUD.into()]);
    assert_eq!(check(&t, validation()), Ok(()));

    // exp: valid strictly before exp + leeway.
    let t = token(&|c| {
        c.exp = NOW;
        c.iat = NOW - 100;
        c.nbf = NOW - 100;
    });
    let strict = Validation {
        leeway_secs: 0,
        ..validation()
    };
    assert_eq!(check(&t, strict), Err(JwtError::Expired));
    assert_eq!(
        check(
            &t,
            Validation {
                now: NOW - 1,
                ..strict
            }
        ),
        Ok(())
    );
    assert_eq!(check(&t, validation()), Ok(()));
    assert_eq!(
        check(
            &t,
            Validation {
                now: NOW + 30,
                ..validation()
            }
        ),
        Err(JwtError::Expired)
    );
    let t = token(&|c| c.exp = i64::MAX);
    assert_eq!(
        check(
            &t,
            Validation {
                now: i64::MAX,
                ..validation()
            }
        ),
        Err(JwtError::Expired)
    );

    // nbf and iat in the future, beyond the leeway.
    let t = token(&|c| c.nbf = NOW + 31);
    assert_eq!(check(&t, validation()), Err(JwtError::NotYetValid));
    let t = token(&|c| c.nbf = NOW + 30);
    assert_eq!(check(&t, validation()), Ok(()));
    let t = token(&|c| c.iat = NOW + 31);
    assert_eq!(check(&t, validation()), Err(JwtError::NotYetValid));
    let t = token(&|c| c.iat = NOW + 10);
    assert_eq!(check(&t, strict), Err(JwtError::NotYetValid));
    // A negative leeway counts as none.
    let t = token(&|_| ());
    assert_eq!(
        check(
            &t,
            Validation {
                leeway_secs: -100,
                ..validation()
            }
        ),
        Ok(())
    );
}

#[test]
fn missing_claims_are_named() {
    let (ring, _, _) = ring();
    let key = signing_key(&ring);
    for claim in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "nbf",
        "jti",
        "client_id",
        "scope",
        "tenant",
    ] {
        let mut p = payload();
        p.as_object_mut().unwrap().remove(claim);
        let token = forge_signed(key, &good_header(key), &p);
        assert_eq!(
            verify(&token, &ring, &validation()),
            Err(JwtError::MissingClaim(claim)),
            "{claim}"
        );
        let mut p = payload();
        p[claim] = Value::Null;
        let token = forge_signed(key, &good_header(key), &p);
        assert_eq!(
            verify(&token, &ring, &validation()),
            Err(JwtError::MissingClaim(claim)),
            "{claim}: null"
        );
    }
    let mut p = payload();
    p["aud"] = json!([]);
    let token = forge_signed(key, &good_header(key), &p);
    assert_eq!(
        verify(&token, &ring, &validation()),
        Err(JwtError::MissingClaim("aud"))
    );
    // `tenant` without its agency is not a tenant.
    let mut p = payload();
    p["tenant"] = json!({"account": "acc_x"});
    let token = forge_signed(key, &good_header(key), &p);
    assert!(matches!(
        verify(&token, &ring, &validation()),
        Err(JwtError::Malformed(_))
    ));
    // Id tokens need iss, sub, aud, exp and iat.
    let id_header = json!({"alg": "EdDSA", "typ": "JWT", "kid": key.kid()});
    let v = Validation::id_token(ISS, "app_client", NOW);
    for claim in ["iss", "sub", "aud", "exp", "iat"] {
        let mut p = serde_json::to_value(id_claims()).unwrap();
        p.as_object_mut().unwrap().remove(claim);
        let token = forge_signed(key, &id_header, &p);
        assert_eq!(
            verify_id_token(&token, &ring, &v),
            Err(JwtError::MissingClaim(claim))
        );
    }
}

#[test]
fn retired_and_dropped_keys_stop_verifying() {
    let policy = RotationPolicy {
        alg: Algorithm::EdDsa,
        period_secs: 1000,
        publish_ahead_secs: 100,
        token_lifetime_secs: 950,
    };
    let mut rng = StdRng::seed_from_u64(9);
    let mut records = Vec::new();
    let mut at = |now: i64, records: &mut Vec<KeyRecord>| {
        let plan = plan_rotation(records, now, &policy);
        apply_plan(records, &plan, now, &ek(), &mut rng).unwrap();
        KeyRing::new(records, &ek()).unwrap()
    };
    let first_ring = at(0, &mut records);
    let mut claims = access_claims();
    claims.iat = 999;
    claims.nbf = 999;
    claims.exp = 999 + 900;
    let token = encode_access_token(&claims, first_ring.signing_key(999).unwrap());
    let token_kid = first_ring.signing_key(999).unwrap().kid().to_owned();
    let v = |now| Validation::access_token(ISS, Some(AUD), now);

    at(900, &mut records);
    let ring = at(1000, &mut records);
    assert_ne!(
        ring.signing_key(1000).unwrap().kid(),
        first_ring.signing_key(0).unwrap().kid()
    );
    // Retiring: still verifies while the token lives (and a resource server's JWKS has it).
    assert!(verify(&token, &ring, &v(1500)).is_ok());
    let jwks = JwkSet::from_json(&ring.jwks(1500)).unwrap();
    assert!(verify(&token, &jwks, &v(1500)).is_ok());
    // Retired: the key is gone from the ring and the JWKS.
    let ring = at(1950, &mut records);
    assert!(records.iter().any(|r| r.state == KeyState::Retired));
    assert_eq!(verify(&token, &ring, &v(1000)), Err(JwtError::UnknownKey));
    let jwks = JwkSet::from_json(&ring.jwks(1950)).unwrap();
    assert_eq!(verify(&token, &jwks, &v(1000)), Err(JwtError::UnknownKey));
    // Dropped.
    let ring = at(1951, &mut records);
    assert!(!records.iter().any(|r| r.kid == token_kid));
    assert_eq!(verify(&token, &ring, &v(1000)), Err(JwtError::UnknownKey));
}

#[test]
fn verification_through_a_fetched_jwks() {
    let (ring, _, _) = ring();
    let token = encode_access_token(&access_claims(), signing_key(&ring));
    let jwks_text = ring.jwks(NOW).to_string();
    let jwks = JwkSet::from_json(&serde_json::from_str(&jwks_text).unwrap()).unwrap();
    assert_eq!(
        verify(&token, &jwks, &validation()).unwrap(),
        access_claims()
    );
    let keys: Vec<VerificationKey> = jwks.keys().to_vec();
    assert!(verify(&token, keys.as_slice(), &validation()).is_ok());
}

#[test]
fn errors_are_lowercase() {
    for e in [
        JwtError::Malformed("x"),
        JwtError::AlgNone,
        JwtError::AlgorithmMismatch {
            expected: Algorithm::EdDsa,
        },
        JwtError::UnknownKey,
        JwtError::ForbiddenHeader("jku"),
        JwtError::CriticalHeader,
        JwtError::WrongType { expected: "at+jwt" },
        JwtError::BadSignature,
        JwtError::WrongIssuer,
        JwtError::WrongAudience,
        JwtError::Expired,
        JwtError::NotYetValid,
        JwtError::MissingClaim("exp"),
    ] {
        let msg = e.to_string();
        assert!(msg.starts_with(|c: char| c.is_ascii_lowercase()), "{msg}");
    }
}

/// Median sign and verify times over 2,000 tokens per algorithm. Prints, does not assert; the
/// figures mean something only in a release build:
/// `cargo test --release -p tessera-token jwt -- --nocapture`.
#[test]
fn jwt_sign_and_verify_timing() {
    let iterations = if cfg!(debug_assertions) { 50 } else { 2_000 };
    let mut rng = StdRng::seed_from_u64(12);
    for alg in [Algorithm::EdDsa, Algorithm::Es256, Algorithm::Rs256] {
        let generated;
        let key = if alg == Algorithm::Rs256 {
            crate::signing_key::test_rsa_key()
        } else {
            generated = SigningKey::generate(alg, &mut rng);
            &generated
        };
        let keys = JwkSet::new(vec![key.verification_key().clone()]);
        let claims = access_claims();
        let mut sign = Vec::with_capacity(iterations);
        let mut check = Vec::with_capacity(iterations);
        let mut tokens = Vec::with_capacity(iterations);
        for i in 0..iterations {
            let mut claims = claims.clone();
            claims.jti = format!("tok_{i:026}");
            let start = Instant::now();
            let token = encode_access_token(&claims, key);
            sign.push(start.elapsed());
            tokens.push(token);
        }
        for token in &tokens {
            let start = Instant::now();
            let verified = verify(token, &keys, &validation());
            check.push(start.elapsed());
            assert!(verified.is_ok());
        }
        sign.sort_unstable();
        check.sort_unstable();
        if alg == Algorithm::Rs256 {
            // Key generation is a prime search: its time varies a lot from key to key.
            let keys = if cfg!(debug_assertions) { 1 } else { 5 };
            let mut times: Vec<_> = (0..keys)
                .map(|_| {
                    let start = Instant::now();
                    SigningKey::generate(alg, &mut rng);
                    start.elapsed()
                })
                .collect();
            times.sort_unstable();
            println!(
                "jwt RS256: key generation median {:.0} ms, slowest {:.0} ms ({keys} keys)",
                times[keys / 2].as_secs_f64() * 1e3,
                times[keys - 1].as_secs_f64() * 1e3,
            );
        }
        println!(
            "jwt {alg}: median sign {:.1} µs, median verify {:.1} µs ({iterations} tokens of {} bytes{})",
            sign[iterations / 2].as_secs_f64() * 1e6,
            check[iterations / 2].as_secs_f64() * 1e6,
            tokens[0].len(),
            if cfg!(debug_assertions) { ", debug build" } else { "" }
        );
    }
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics_or_verifies(text in "[A-Za-z0-9_.=-]{0,300}") {
        let (ring, _, _) = ring();
        prop_assert!(verify(&text, &ring, &validation()).is_err());
    }

    #[test]
    fn any_character_change_breaks_the_token(pos in any::<prop::sample::Index>(), c in "[A-Za-z0-9_.-]") {
        let (ring, _, _) = ring();
        let token = encode_access_token(&access_claims(), signing_key(&ring));
        let pos = pos.index(token.len());
        prop_assume!(token[pos..pos + 1] != c);
        let mut bad = token.clone();
        bad.replace_range(pos..pos + 1, &c);
        prop_assert!(verify(&bad, &ring, &validation()).is_err());
    }
}
