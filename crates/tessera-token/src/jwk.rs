//! Public keys as JSON Web Keys (RFC 7517), their thumbprints (RFC 7638) and key ids, for the
//! three algorithms Tessera signs with: `EdDSA` over Ed25519 (RFC 8037), `ES256` (RFC 7518
//! §3.4) and `RS256` (RFC 7518 §3.3). INVARIANT: a [`VerificationKey`] is bound to exactly one
//! algorithm, holds a point that is on its curve and not of small order (or an RSA modulus of
//! [`RSA_MIN_BITS`] to [`RSA_MAX_BITS`] bits), and its JWK round-trips through
//! [`VerificationKey::from_jwk`].

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::elliptic_curve::sec1::EncodedPoint;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used with these algorithms."
pub const RSA_MIN_BITS: usize = 2048;

/// The largest RSA modulus accepted (a bound on the cost of one verification).
pub const RSA_MAX_BITS: usize = 4096;

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
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3). OpenID Connect Core §15.1 requires
    /// every provider to support it.
    #[serde(rename = "RS256")]
    Rs256,
}

impl Algorithm {
    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDsa => "EdDSA",
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
        }
    }

    /// The algorithm with JWS `alg` name `name` (exact, case-sensitive as RFC 7515 requires).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "EdDSA" => Some(Algorithm::EdDsa),
            "ES256" => Some(Algorithm::Es256),
            "RS256" => Some(Algorithm::Rs256),
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
    #[error("jwk key type is not supported (expected `OKP`/`Ed25519`, `EC`/`P-256` or `RSA`)")]
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
    /// The RSA modulus or exponent is unusable: a modulus outside 2048 to 4096 bits or even,
    /// an exponent that is even, below 3 or not below the modulus.
    #[error("jwk rsa public key is invalid or of an unsupported size")]
    InvalidRsaKey,
    /// A JWK set has no `keys` array.
    #[error("jwk set has no `keys` array")]
    NotASet,
}

/// The public key material, by algorithm.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
    /// Boxed: an RSA key is two heap integers, and the other variants stay small.
    Rsa(Box<rsa::RsaPublicKey>),
}

impl PublicKey {
    pub(crate) fn alg(&self) -> Algorithm {
        match self {
            PublicKey::Ed25519(_) => Algorithm::EdDsa,
            PublicKey::P256(_) => Algorithm::Es256,
            PublicKey::Rsa(_) => Algorithm::Rs256,
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
            // RFC 7638 §3.2: `e`, `kty`, `n`.
            PublicKey::Rsa(key) => {
                let (n, e) = rsa_parameters(key);
                format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#)
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

/// The modulus and exponent of an RSA key, base64url of their minimal big-endian octets
/// (RFC 7518 §6.3.1.1 and §6.3.1.2).
fn rsa_parameters(key: &rsa::RsaPublicKey) -> (String, String) {
    use rsa::traits::PublicKeyParts as _;
    (
        URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    )
}

/// Parses the `n` and `e` of an RSA JWK: canonical base64url of minimal big-endian integers
/// (no leading zero octet, RFC 7518 §6.3.1.1), a modulus of [`RSA_MIN_BITS`] to
/// [`RSA_MAX_BITS`] bits.
fn rsa_public_key(n: &str, e: &str) -> Result<rsa::RsaPublicKey, JwkError> {
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

    /// Parses `{"keys": [...]}`. Keys of a type Tessera does not verify with (symmetric, other
    /// curves) or meant for encryption are skipped, as RFC 7517 §5 allows; a supported
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

    /// RFC 7638 §3.1: the example RSA key (RFC 7515 Appendix A.2) and its thumbprint.
    const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    #[test]
    fn rfc7638_rsa_thumbprint() {
        let key = PublicKey::Rsa(Box::new(rsa_public_key(RFC7638_N, "AQAB").unwrap()));
        assert_eq!(
            key.canonical_json(),
            format!(r#"{{"e":"AQAB","kty":"RSA","n":"{RFC7638_N}"}}"#)
        );
        let vk = VerificationKey::new(key.kid(), key);
        assert_eq!(
            vk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(vk.kid(), "NzbLsXh8uDCcd-6M");
        assert_eq!(vk.alg(), Algorithm::Rs256);
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
    fn jwk_set_skips_foreign_keys() {
        let vk = VerificationKey::new(rfc8037_key().kid(), rfc8037_key());
        let set = json!({"keys": [
            {"kty": "EC", "crv": "P-384", "kid": "r", "x": "AQAB", "y": "AQAB"},
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
            JwkError::InvalidRsaKey,
            JwkError::NotASet,
        ] {
            let msg = e.to_string();
            assert!(msg.starts_with(|c: char| c.is_ascii_lowercase()), "{msg}");
        }
    }
}
