//! Public keys as JSON Web Keys (RFC 7517), their thumbprints (RFC 7638) and key ids, for the
//! two algorithms Tessera signs with: `EdDSA` over Ed25519 (RFC 8037) and `ES256` (RFC 7518
//! §3.4). INVARIANT: a [`VerificationKey`] is bound to exactly one algorithm, holds a point that
//! is on its curve and not of small order, and its JWK round-trips through
//! [`VerificationKey::from_jwk`].

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::elliptic_curve::sec1::EncodedPoint;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Bytes of the RFC 7638 thumbprint kept in a Tessera `kid` (96 bits, 16 base64url characters).
pub const KID_THUMBPRINT_BYTES: usize = 12;

/// A JWS signature algorithm Tessera signs and verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// Ed25519 (RFC 8037 §3.1): the default.
    #[serde(rename = "EdDSA")]
    EdDsa,
    /// ECDSA with P-256 and SHA-256 (RFC 7518 §3.4).
    #[serde(rename = "ES256")]
    Es256,
}

impl Algorithm {
    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDsa => "EdDSA",
            Algorithm::Es256 => "ES256",
        }
    }

    /// The algorithm with JWS `alg` name `name` (exact, case-sensitive as RFC 7515 requires).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "EdDSA" => Some(Algorithm::EdDsa),
            "ES256" => Some(Algorithm::Es256),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a JWK could not be used as a verification key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    /// The JWK is not a JSON object.
    #[error("jwk is not a json object")]
    NotAnObject,
    /// A required member is missing or not a string.
    #[error("jwk member `{0}` is missing or not a string")]
    MissingMember(&'static str),
    /// `kty`/`crv` name a key type Tessera does not verify with.
    #[error("jwk key type is not supported (expected `OKP`/`Ed25519` or `EC`/`P-256`)")]
    UnsupportedKeyType,
    /// `alg` is present and is not the one algorithm this key type is used with.
    #[error("jwk `alg` does not match its key type")]
    AlgorithmMismatch,
    /// `use` is present and is not `sig`.
    #[error("jwk `use` is not `sig`")]
    NotForSignatures,
    /// A coordinate is not canonical unpadded base64url of the right length.
    #[error("jwk member `{0}` is not a base64url coordinate of the right length")]
    BadCoordinate(&'static str),
    /// The coordinates are not a usable point (off the curve, or of small order).
    #[error("jwk public key is not a valid point of its curve")]
    InvalidPoint,
    /// A JWK set has no `keys` array.
    #[error("jwk set has no `keys` array")]
    NotASet,
}

/// The public key material, by algorithm.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

impl PublicKey {
    pub(crate) fn alg(&self) -> Algorithm {
        match self {
            PublicKey::Ed25519(_) => Algorithm::EdDsa,
            PublicKey::P256(_) => Algorithm::Es256,
        }
    }

    /// The RFC 7638 canonical JSON: the required members only, in lexicographic order, no
    /// whitespace.
    fn canonical_json(&self) -> String {
        match self {
            PublicKey::Ed25519(key) => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(key.as_bytes())
            ),
            PublicKey::P256(key) => {
                let (x, y) = p256_coordinates(key);
                format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#)
            }
        }
    }

    /// The RFC 7638 JWK thumbprint with SHA-256.
    pub(crate) fn thumbprint(&self) -> [u8; 32] {
        Sha256::digest(self.canonical_json().as_bytes()).into()
    }

    /// Tessera's key id: the first [`KID_THUMBPRINT_BYTES`] bytes of the thumbprint, base64url.
    pub(crate) fn kid(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.thumbprint()[..KID_THUMBPRINT_BYTES])
    }
}

/// The affine coordinates of a P-256 key, base64url.
fn p256_coordinates(key: &p256::ecdsa::VerifyingKey) -> (String, String) {
    let point = key.to_encoded_point(false);
    // An uncompressed encoding of a valid (non-identity) point always has both coordinates.
    let x = point
        .x()
        .map(|x| URL_SAFE_NO_PAD.encode(x))
        .unwrap_or_default();
    let y = point
        .y()
        .map(|y| URL_SAFE_NO_PAD.encode(y))
        .unwrap_or_default();
    (x, y)
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

    /// The public JWK: `kty`, `crv`, `x` (and `y`), `kid`, `alg`, `use: "sig"`.
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
        let kty = member("kty")?;
        if kty != "OKP" && kty != "EC" {
            return Err(JwkError::UnsupportedKeyType);
        }
        let key = match (kty, member("crv")?) {
            ("OKP", "Ed25519") => {
                let x = coordinate::<32>(member("x")?, "x")?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map_err(|_| JwkError::InvalidPoint)?;
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

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg())
            .finish()
    }
}

/// Decodes a base64url coordinate of exactly `N` bytes.
fn coordinate<const N: usize>(text: &str, name: &'static str) -> Result<[u8; N], JwkError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| JwkError::BadCoordinate(name))?;
    bytes.try_into().map_err(|_| JwkError::BadCoordinate(name))
}

/// A set of verification keys, e.g. a JWKS fetched from an issuer (RFC 7517 §5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwkSet {
    keys: Vec<VerificationKey>,
}

impl JwkSet {
    /// Builds a set from keys.
    pub fn new(keys: Vec<VerificationKey>) -> Self {
        Self { keys }
    }

    /// Parses `{"keys": [...]}`. Keys of a type Tessera does not verify with (RSA, symmetric,
    /// other curves) or meant for encryption are skipped, as RFC 7517 §5 allows; a supported
    /// key that is malformed fails the whole set.
    pub fn from_json(jwks: &Value) -> Result<Self, JwkError> {
        let list = jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwkError::NotASet)?;
        let mut keys = Vec::with_capacity(list.len());
        for jwk in list {
            match VerificationKey::from_jwk(jwk) {
                Ok(key) => keys.push(key),
                Err(JwkError::UnsupportedKeyType | JwkError::NotForSignatures) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Self { keys })
    }

    /// The keys, in the order of the set.
    pub fn keys(&self) -> &[VerificationKey] {
        &self.keys
    }

    /// The key with id `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// RFC 8037 Appendix A.2: the example Ed25519 public key.
    const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn rfc8037_key() -> PublicKey {
        let x = coordinate::<32>(RFC8037_X, "x").unwrap();
        PublicKey::Ed25519(ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap())
    }

    #[test]
    fn rfc8037_thumbprint() {
        // RFC 8037 Appendix A.3.
        let key = rfc8037_key();
        assert_eq!(
            key.canonical_json(),
            r#"{"crv":"Ed25519","kty":"OKP","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#
        );
        let vk = VerificationKey::new(key.kid(), key);
        assert_eq!(
            vk.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
        assert_eq!(vk.kid(), "kPrK_qmxVWaYVA9w");
        assert_eq!(vk.kid().len(), 16);
        assert!(vk.thumbprint().starts_with(vk.kid()));
    }

    #[test]
    fn rfc7638_style_thumbprint_for_p256() {
        // RFC 7638 §3.1 prescribes the member order `crv, kty, x, y` for EC keys.
        let sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let key = PublicKey::P256(*sk.verifying_key());
        let json = key.canonical_json();
        assert!(
            json.starts_with(r#"{"crv":"P-256","kty":"EC","x":""#),
            "{json}"
        );
        assert!(json.contains(r#"","y":""#), "{json}");
        let expected: [u8; 32] = Sha256::digest(json.as_bytes()).into();
        assert_eq!(key.thumbprint(), expected);
    }

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
        assert_eq!(with("kty", json!("RSA")), Err(JwkError::UnsupportedKeyType));
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
    fn jwk_set_skips_foreign_keys() {
        let vk = VerificationKey::new(rfc8037_key().kid(), rfc8037_key());
        let set = json!({"keys": [
            {"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            vk.to_jwk(),
        ]});
        let parsed = JwkSet::from_json(&set).unwrap();
        assert_eq!(parsed.keys().len(), 1);
        assert_eq!(parsed.get(vk.kid()), Some(&vk));
        assert_eq!(parsed.get("r"), None);
        assert_eq!(JwkSet::from_json(&json!({})), Err(JwkError::NotASet));
        let mut broken = vk.to_jwk();
        broken["x"] = json!("!");
        assert_eq!(
            JwkSet::from_json(&json!({"keys": [broken]})),
            Err(JwkError::BadCoordinate("x"))
        );
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
            JwkError::NotASet,
        ] {
            let msg = e.to_string();
            assert!(msg.starts_with(|c: char| c.is_ascii_lowercase()), "{msg}");
        }
    }
}
