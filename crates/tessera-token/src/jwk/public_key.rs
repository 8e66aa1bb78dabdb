//! Public key material of the three algorithms, its RFC 7638 JWK thumbprint and the key id
//! Tessera derives from it. INVARIANT: a key's `kid` is the first [`KID_THUMBPRINT_BYTES`]
//! bytes of its SHA-256 thumbprint over the canonical JSON (required members only, in
//! lexicographic order, no whitespace: RFC 7638 §3.2), base64url.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::algorithm::Algorithm;

/// RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used with these algorithms."
pub const RSA_MIN_BITS: usize = 2048;

/// The largest RSA modulus accepted (a bound on the cost of one verification).
pub const RSA_MAX_BITS: usize = 4096;

/// Bytes of the RFC 7638 thumbprint kept in a Tessera `kid` (96 bits, 16 base64url characters).
pub const KID_THUMBPRINT_BYTES: usize = 12;

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
    pub(super) fn canonical_json(&self) -> String {
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
pub(super) fn p256_coordinates(key: &p256::ecdsa::VerifyingKey) -> (String, String) {
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
pub(super) fn rsa_parameters(key: &rsa::RsaPublicKey) -> (String, String) {
    use rsa::traits::PublicKeyParts as _;
    (
        URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    )
}

/// Fixtures for the JWK unit tests.
#[cfg(test)]
pub(super) mod fixtures {
    #![allow(clippy::unwrap_used)]

    use super::PublicKey;

    /// RFC 8037 Appendix A.2: the example Ed25519 public key.
    pub(in crate::jwk) const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    pub(in crate::jwk) fn rfc8037_key() -> PublicKey {
        let x = crate::jwk::verification_key::coordinate::<32>(RFC8037_X, "x").unwrap();
        PublicKey::Ed25519(ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::fixtures::rfc8037_key;
    use super::*;
    use crate::jwk::verification_key::{rsa_public_key, VerificationKey};

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
}
