//! A verification key: a public key bound to its key id and its one algorithm, and its JWK
//! form (RFC 7517 §4; OKP per RFC 8037 §2, EC and RSA per RFC 7518 §6.2 and §6.3).
//! INVARIANT: a [`VerificationKey`] holds a point that is on its curve and not of small order
//! (or an odd RSA modulus of [`RSA_MIN_BITS`] to [`RSA_MAX_BITS`] bits), and its JWK
//! round-trips through [`VerificationKey::from_jwk`].

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::elliptic_curve::sec1::EncodedPoint;
use serde_json::{json, Value};

use super::algorithm::Algorithm;
use super::error::JwkError;
use super::public_key::{p256_coordinates, rsa_parameters, PublicKey, RSA_MAX_BITS, RSA_MIN_BITS};

/// Parses the `n` and `e` of an RSA JWK: canonical base64url of minimal big-endian integers
/// (no leading zero octet, RFC 7518 §6.3.1.1), a modulus of [`RSA_MIN_BITS`] to
/// [`RSA_MAX_BITS`] bits.
pub(super) fn rsa_public_key(n: &str, e: &str) -> Result<rsa::RsaPublicKey, JwkError> {
    let integer = |text: &str, name: &'static str| {
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| JwkError::BadCoordinate(name))?;
        match bytes.first() {
            None | Some(0) => Err(JwkError::BadCoordinate(name)),
            Some(_) => Ok(rsa::BigUint::from_bytes_be(&bytes)),
        }
    };
    let n = integer(n, "n")?;
    let e = integer(e, "e")?;
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&n.bits()) {
        return Err(JwkError::InvalidRsaKey);
    }
    // Checks that `n` is odd and `e` odd, at least 3, below `n` and at most 2^33 − 1.
    rsa::RsaPublicKey::new_with_max_size(n, e, RSA_MAX_BITS).map_err(|_| JwkError::InvalidRsaKey)
}

/// A public key with its key id and its one algorithm: what a verifier needs.
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationKey {
    kid: String,
    key: PublicKey,
}

impl VerificationKey {
    pub(crate) fn new(kid: String, key: PublicKey) -> Self {
        Self { kid, key }
    }

    /// The key id, as it appears in JWT headers and the JWKS.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The only algorithm this key verifies.
    pub fn alg(&self) -> Algorithm {
        self.key.alg()
    }

    pub(crate) fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// The full RFC 7638 SHA-256 thumbprint, base64url (43 characters). Tessera's own `kid`s
    /// are its first 16 characters.
    pub fn thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.thumbprint())
    }

    /// The public JWK: `kty`, `crv`, `x` (and `y`) — or `kty`, `n`, `e` for RSA — `kid`,
    /// `alg`, `use: "sig"`.
    pub fn to_jwk(&self) -> Value {
        match &self.key {
            PublicKey::Ed25519(key) => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(key.as_bytes()),
                "kid": self.kid,
                "alg": "EdDSA",
                "use": "sig",
            }),
            PublicKey::P256(key) => {
                let (x, y) = p256_coordinates(key);
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": x,
                    "y": y,
                    "kid": self.kid,
                    "alg": "ES256",
                    "use": "sig",
                })
            }
            PublicKey::Rsa(key) => {
                let (n, e) = rsa_parameters(key);
                json!({
                    "kty": "RSA",
                    "n": n,
                    "e": e,
                    "kid": self.kid,
                    "alg": "RS256",
                    "use": "sig",
                })
            }
        }
    }

    /// Parses a public JWK. `kid` is required (it is how a token names its key); `alg` and
    /// `use`, when present, must be the key type's algorithm and `sig`. Private members are
    /// ignored: only the public key is read.
    pub fn from_jwk(jwk: &Value) -> Result<Self, JwkError> {
        let obj = jwk.as_object().ok_or(JwkError::NotAnObject)?;
        let member = |name: &'static str| {
            obj.get(name)
                .and_then(Value::as_str)
                .ok_or(JwkError::MissingMember(name))
        };
        let kid = member("kid")?.to_owned();
        let key = match member("kty")? {
            kty @ ("OKP" | "EC") => ec_public_key(kty, &member)?,
            "RSA" => PublicKey::Rsa(Box::new(rsa_public_key(member("n")?, member("e")?)?)),
            _ => return Err(JwkError::UnsupportedKeyType),
        };
        if let Some(alg) = obj.get("alg") {
            if alg.as_str() != Some(key.alg().as_str()) {
                return Err(JwkError::AlgorithmMismatch);
            }
        }
        if let Some(usage) = obj.get("use") {
            if usage.as_str() != Some("sig") {
                return Err(JwkError::NotForSignatures);
            }
        }
        Ok(Self { kid, key })
    }
}

/// The public key of an `OKP` or `EC` JWK, whose members `member` reads.
fn ec_public_key<'j>(
    kty: &str,
    member: &dyn Fn(&'static str) -> Result<&'j str, JwkError>,
) -> Result<PublicKey, JwkError> {
    Ok(match (kty, member("crv")?) {
        ("OKP", "Ed25519") => {
            let x = coordinate::<32>(member("x")?, "x")?;
            let key =
                ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| JwkError::InvalidPoint)?;
            if key.is_weak() {
                return Err(JwkError::InvalidPoint);
            }
            PublicKey::Ed25519(key)
        }
        ("EC", "P-256") => {
            let x = coordinate::<32>(member("x")?, "x")?;
            let y = coordinate::<32>(member("y")?, "y")?;
            let point = EncodedPoint::<p256::NistP256>::from_affine_coordinates(
                &x.into(),
                &y.into(),
                false,
            );
            let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                .map_err(|_| JwkError::InvalidPoint)?;
            PublicKey::P256(key)
        }
        _ => return Err(JwkError::UnsupportedKeyType),
    })
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg())
            .finish()
    }
}

/// Decodes a base64url coordinate of exactly `N` bytes.
pub(super) fn coordinate<const N: usize>(
    text: &str,
    name: &'static str,
) -> Result<[u8; N], JwkError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| JwkError::BadCoordinate(name))?;
    bytes.try_into().map_err(|_| JwkError::BadCoordinate(name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use serde_json::json;

    use super::*;
    use crate::jwk::public_key::fixtures::{rfc8037_key, RFC8037_X};
    use crate::jwk::set::JwkSet;

    #[test]
    fn jwk_round_trip_both_algorithms() {
        let ed = rfc8037_key();
        let p = PublicKey::P256(
            *p256::ecdsa::SigningKey::from_slice(&[3u8; 32])
                .unwrap()
                .verifying_key(),
        );
        for key in [ed, p] {
            let vk = VerificationKey::new(key.kid(), key);
            let jwk = vk.to_jwk();
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["alg"], vk.alg().as_str());
            assert_eq!(jwk["kid"], vk.kid());
            assert_eq!(VerificationKey::from_jwk(&jwk).unwrap(), vk);
        }
    }

    #[test]
    fn bad_jwks_are_rejected() {
        let good = VerificationKey::new(rfc8037_key().kid(), rfc8037_key()).to_jwk();
        let with = |k: &str, v: Value| {
            let mut j = good.clone();
            j[k] = v;
            VerificationKey::from_jwk(&j)
        };
        let without = |k: &str| {
            let mut j = good.clone();
            j.as_object_mut().unwrap().remove(k);
            VerificationKey::from_jwk(&j)
        };
        assert_eq!(
            VerificationKey::from_jwk(&json!([])),
            Err(JwkError::NotAnObject)
        );
        assert_eq!(without("kid"), Err(JwkError::MissingMember("kid")));
        assert_eq!(without("x"), Err(JwkError::MissingMember("x")));
        assert_eq!(with("kty", json!("RSA")), Err(JwkError::MissingMember("n")));
        assert_eq!(with("kty", json!("oct")), Err(JwkError::UnsupportedKeyType));
        assert_eq!(
            with("crv", json!("Ed448")),
            Err(JwkError::UnsupportedKeyType)
        );
        assert_eq!(
            with("alg", json!("ES256")),
            Err(JwkError::AlgorithmMismatch)
        );
        assert_eq!(
            with("alg", json!("HS256")),
            Err(JwkError::AlgorithmMismatch)
        );
        assert_eq!(with("use", json!("enc")), Err(JwkError::NotForSignatures));
        assert_eq!(with("x", json!("AAAA")), Err(JwkError::BadCoordinate("x")));
        assert_eq!(
            with("x", json!(format!("{RFC8037_X}="))),
            Err(JwkError::BadCoordinate("x"))
        );
        // The identity point is of small order: a "weak" key that must never verify anything.
        let identity = URL_SAFE_NO_PAD.encode({
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        });
        assert_eq!(with("x", json!(identity)), Err(JwkError::InvalidPoint));
        // A P-256 point off the curve.
        let p = PublicKey::P256(
            *p256::ecdsa::SigningKey::from_slice(&[3u8; 32])
                .unwrap()
                .verifying_key(),
        );
        let mut jwk = VerificationKey::new(p.kid(), p).to_jwk();
        jwk["y"] = json!(URL_SAFE_NO_PAD.encode([1u8; 32]));
        assert_eq!(VerificationKey::from_jwk(&jwk), Err(JwkError::InvalidPoint));
        // Algorithm names are case-sensitive.
        assert_eq!(Algorithm::from_name("eddsa"), None);
        assert_eq!(Algorithm::from_name("EdDSA"), Some(Algorithm::EdDsa));
    }

    #[test]
    fn rsa_jwk_export_and_round_trip() {
        let key = crate::signing_key::test_rsa_key();
        let vk = key.verification_key();
        let jwk = vk.to_jwk();
        let mut members: Vec<&str> = jwk
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        members.sort_unstable();
        assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["alg"], "RS256");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(jwk["kid"], key.kid());
        // 2048 bits = 256 octets = 342 base64url characters, no leading zero octet.
        let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
        assert_eq!(n.len(), 256);
        assert_ne!(n[0], 0);
        assert_eq!(VerificationKey::from_jwk(&jwk).unwrap(), *vk);
        assert!(vk.thumbprint().starts_with(vk.kid()));
        assert_eq!(
            JwkSet::from_json(&json!({"keys": [jwk]})).unwrap().keys(),
            std::slice::from_ref(vk)
        );
    }

    #[test]
    fn bad_rsa_jwks_are_rejected() {
        let good = crate::signing_key::test_rsa_key()
            .verification_key()
            .to_jwk();
        let with = |k: &str, v: Value| {
            let mut j = good.clone();
            j[k] = v;
            VerificationKey::from_jwk(&j)
        };
        let n = URL_SAFE_NO_PAD.decode(good["n"].as_str().unwrap()).unwrap();
        // A leading zero octet is not the minimal encoding (RFC 7518 §6.3.1.1).
        let padded = URL_SAFE_NO_PAD.encode([&[0u8][..], &n].concat());
        assert_eq!(with("n", json!(padded)), Err(JwkError::BadCoordinate("n")));
        assert_eq!(with("n", json!("")), Err(JwkError::BadCoordinate("n")));
        assert_eq!(with("n", json!("!!")), Err(JwkError::BadCoordinate("n")));
        assert_eq!(with("e", json!("AA")), Err(JwkError::BadCoordinate("e")));
        // Too short (1024 bits: RFC 7518 §3.3 demands 2048) or too long.
        assert_eq!(
            with("n", json!(URL_SAFE_NO_PAD.encode(&n[..128]))),
            Err(JwkError::InvalidRsaKey)
        );
        assert_eq!(
            with("n", json!(URL_SAFE_NO_PAD.encode([0xffu8; 513]))),
            Err(JwkError::InvalidRsaKey)
        );
        // An even modulus, an even or tiny exponent.
        let mut even = n.clone();
        *even.last_mut().unwrap() &= 0xfe;
        assert_eq!(
            with("n", json!(URL_SAFE_NO_PAD.encode(&even))),
            Err(JwkError::InvalidRsaKey)
        );
        assert_eq!(with("e", json!("AQAA")), Err(JwkError::InvalidRsaKey));
        assert_eq!(with("e", json!("AQ")), Err(JwkError::InvalidRsaKey));
        // An RSA key is for RS256 only.
        assert_eq!(
            with("alg", json!("PS256")),
            Err(JwkError::AlgorithmMismatch)
        );
        assert_eq!(
            with("alg", json!("RS384")),
            Err(JwkError::AlgorithmMismatch)
        );
        assert_eq!(
            with("alg", json!("ES256")),
            Err(JwkError::AlgorithmMismatch)
        );
        let mut j = good.clone();
        j.as_object_mut().unwrap().remove("e");
        assert_eq!(
            VerificationKey::from_jwk(&j),
            Err(JwkError::MissingMember("e"))
        );
        assert_eq!(Algorithm::from_name("rs256"), None);
        assert_eq!(Algorithm::from_name("RS256"), Some(Algorithm::Rs256));
    }

    #[test]
    fn errors_are_lowercase() {
        for e in [
            JwkError::NotAnObject,
            JwkError::MissingMember("x"),
            JwkError::UnsupportedKeyType,
            JwkError::AlgorithmMismatch,
            JwkError::NotForSignatures,
            JwkError::BadCoordinate("x"),
            JwkError::InvalidPoint,
            JwkError::InvalidRsaKey,
            JwkError::NotASet,
        ] {
            let msg = e.to_string();
            assert!(msg.starts_with(|c: char| c.is_ascii_lowercase()), "{msg}");
        }
    }
}
