//! Private signing keys: generation, signing, and sealing for storage under the master key.
//! INVARIANT: a key signs with exactly one algorithm; its `kid` is derived from its public key
//! (RFC 7638 thumbprint, truncated); the private half never leaves this type except sealed
//! ([`SigningKey::seal`]), is redacted when printed and zeroized on drop. A sealed key is bound
//! to its algorithm and kid, so it cannot be opened under another record's identity. ES256
//! signatures are always low-s (see [`SigningKey::sign`]).

use std::fmt;

use ed25519_dalek::Signer as _;
use rand::{CryptoRng, RngCore};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::envelope::{self, EnvelopeError};
use crate::jose::{cached_headers, TokenType};
use crate::jwk::{Algorithm, PublicKey, VerificationKey, RSA_MAX_BITS, RSA_MIN_BITS};
use crate::secret::{SecretBytes, REDACTED};

/// The purpose under which the master key derives the key that seals signing keys:
/// `master_key.derive_key(SIGNING_KEYS_PURPOSE)`.
pub const SIGNING_KEYS_PURPOSE: &str = "signing-keys";

/// The size of the RSA keys Tessera generates (RFC 7518 §3.3 requires at least 2048 bits).
pub const RSA_KEY_BITS: usize = 2048;

/// Why a signing key could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningKeyError {
    /// The sealed private key could not be opened (wrong master key, or altered).
    #[error("cannot open sealed signing key `{kid}`: {source}")]
    Sealed {
        kid: String,
        #[source]
        source: EnvelopeError,
    },
    /// The opened bytes are not a private key of the record's algorithm.
    #[error("sealed signing key `{kid}` is not a valid {alg} private key")]
    InvalidPrivateKey { kid: String, alg: Algorithm },
    /// The private key does not match the record's kid or public JWK.
    #[error("signing key `{kid}` does not match its public key record")]
    PublicKeyMismatch { kid: String },
}

/// The private key material, by algorithm. All three types zeroize themselves on drop.
enum PrivateKey {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
    /// Boxed: the key with its CRT values is a dozen heap integers.
    Rsa(Box<rsa::RsaPrivateKey>),
}

/// A signature: 64 bytes for EdDSA and ES256, the modulus size (256 bytes for 2048-bit keys)
/// for RS256.
pub(crate) enum Signature {
    Fixed([u8; 64]),
    Rsa(Vec<u8>),
}

impl AsRef<[u8]> for Signature {
    fn as_ref(&self) -> &[u8] {
        match self {
            Signature::Fixed(bytes) => bytes,
            Signature::Rsa(bytes) => bytes,
        }
    }
}

/// A private signing key with its kid, its public half and its pre-encoded JWT headers.
pub struct SigningKey {
    private: PrivateKey,
    public: VerificationKey,
    /// `base64url(header)` for each [`TokenType`], computed once.
    headers: [String; 2],
}

impl SigningKey {
    /// Generates a fresh key for `alg` from `rng`. An RSA key ([`RSA_KEY_BITS`] bits, e =
    /// 65537) takes a prime search: tens to hundreds of milliseconds in an optimised build.
    pub fn generate(alg: Algorithm, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let private = match alg {
            Algorithm::EdDsa => PrivateKey::Ed25519(ed25519_dalek::SigningKey::generate(rng)),
            Algorithm::Es256 => PrivateKey::P256(p256::ecdsa::SigningKey::random(rng)),
            Algorithm::Rs256 => PrivateKey::Rsa(Box::new(generate_rsa(rng))),
        };
        Self::from_private(private)
    }

    /// Restores a key from its private bytes as [`SigningKey::private_bytes`] wrote them:
    /// the 32-byte Ed25519 seed, the 32-byte P-256 scalar, or the PKCS#1 DER `RSAPrivateKey`
    /// (RFC 8017 Appendix A.1.2) of an RSA key of 2048 to 4096 bits that passes the
    /// consistency checks.
    pub(crate) fn from_private_bytes(alg: Algorithm, bytes: &[u8]) -> Option<Self> {
        let private = match alg {
            Algorithm::EdDsa => PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(
                bytes.try_into().ok()?,
            )),
            Algorithm::Es256 => {
                let scalar: &[u8; 32] = bytes.try_into().ok()?;
                PrivateKey::P256(p256::ecdsa::SigningKey::from_slice(scalar).ok()?)
            }
            Algorithm::Rs256 => {
                let key = rsa::RsaPrivateKey::from_pkcs1_der(bytes).ok()?;
                let bits = key.n().bits();
                if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) || key.validate().is_err() {
                    return None;
                }
                PrivateKey::Rsa(Box::new(key))
            }
        };
        Some(Self::from_private(private))
    }

    fn from_private(private: PrivateKey) -> Self {
        let key = match &private {
            PrivateKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
            PrivateKey::P256(k) => PublicKey::P256(*k.verifying_key()),
            PrivateKey::Rsa(k) => PublicKey::Rsa(Box::new(k.to_public_key())),
        };
        let public = VerificationKey::new(key.kid(), key);
        let headers = cached_headers(public.alg(), public.kid());
        Self {
            private,
            public,
            headers,
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        self.public.kid()
    }

    /// The one algorithm this key signs with.
    pub fn alg(&self) -> Algorithm {
        self.public.alg()
    }

    /// The public half.
    pub fn verification_key(&self) -> &VerificationKey {
        &self.public
    }

    /// The length in bytes of this key's signatures.
    pub(crate) fn signature_len(&self) -> usize {
        match &self.private {
            PrivateKey::Ed25519(_) | PrivateKey::P256(_) => 64,
            PrivateKey::Rsa(k) => k.size(),
        }
    }

    /// The base64url JWT header for tokens of type `typ`.
    pub(crate) fn header_b64(&self, typ: TokenType) -> &str {
        &self.headers[typ as usize]
    }

    /// Signs `message`: 64 bytes, `R ‖ S` for Ed25519 (RFC 8032) and `r ‖ s` for ES256
    /// (RFC 7518 §3.4); for RS256 the RSASSA-PKCS1-v1_5 signature with SHA-256 (RFC 7518
    /// §3.3, RFC 8017 §8.2), as long as the modulus.
    ///
    /// ES256 uses deterministic nonces (RFC 6979) and always yields the low-s form (`s ≤ n/2`):
    /// `(r, n − s)` verifies too, so verification refuses high `s` to keep signatures (and so
    /// token strings) non-malleable. RS256 signatures are deterministic; the RSA operation is
    /// blinded with randomness from the OS, against timing attacks on the private key.
    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        match &self.private {
            PrivateKey::Ed25519(k) => Signature::Fixed(k.sign(message).to_bytes()),
            PrivateKey::P256(k) => {
                let signature: p256::ecdsa::Signature = k.sign(message);
                let signature = signature.normalize_s().unwrap_or(signature);
                Signature::Fixed(signature.to_bytes().into())
            }
            PrivateKey::Rsa(k) => {
                let digest = Sha256::digest(message);
                let scheme = rsa::Pkcs1v15Sign::new::<Sha256>();
                // Fails only if the modulus is too short for the padded digest, which a key of
                // at least 2048 bits never is (checked when it was made or restored).
                Signature::Rsa(
                    k.sign_with_rng(&mut rand::rngs::OsRng, scheme, &digest)
                        .unwrap_or_default(),
                )
            }
        }
    }

    /// The private bytes, wiped when dropped: the 32-byte Ed25519 seed or P-256 scalar, or the
    /// PKCS#1 DER encoding of an RSA key.
    fn private_bytes(&self) -> Zeroizing<Vec<u8>> {
        match &self.private {
            PrivateKey::Ed25519(k) => {
                let mut bytes = k.to_bytes();
                let secret = Zeroizing::new(bytes.to_vec());
                bytes.zeroize();
                secret
            }
            PrivateKey::P256(k) => {
                let mut bytes: [u8; 32] = k.to_bytes().into();
                let secret = Zeroizing::new(bytes.to_vec());
                bytes.zeroize();
                secret
            }
            // Encoding a consistent key cannot fail; an empty result would not unseal.
            PrivateKey::Rsa(k) => k
                .to_pkcs1_der()
                .map(|der| Zeroizing::new(der.as_bytes().to_vec()))
                .unwrap_or_default(),
        }
    }

    /// The private key sealed under `envelope_key` (derived with [`SIGNING_KEYS_PURPOSE`]),
    /// bound to this key's algorithm and kid.
    pub fn seal(
        &self,
        envelope_key: &SecretBytes<32>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Vec<u8> {
        let private = self.private_bytes();
        envelope::seal(
            envelope_key,
            &private,
            sealing_aad(self.alg(), self.kid()).as_bytes(),
            rng,
        )
    }

    /// Opens a key sealed by [`SigningKey::seal`] and checks that it is the key `kid` of
    /// algorithm `alg` (and, when given, that its public JWK is `public_jwk`).
    pub fn unseal(
        alg: Algorithm,
        kid: &str,
        public_jwk: Option<&serde_json::Value>,
        sealed: &[u8],
        envelope_key: &SecretBytes<32>,
    ) -> Result<Self, SigningKeyError> {
        let opened = envelope::open(envelope_key, sealed, sealing_aad(alg, kid).as_bytes())
            .map_err(|source| SigningKeyError::Sealed {
                kid: kid.to_owned(),
                source,
            })?;
        let invalid = || SigningKeyError::InvalidPrivateKey {
            kid: kid.to_owned(),
            alg,
        };
        let key = Self::from_private_bytes(alg, &opened).ok_or_else(invalid)?;
        let matches = key.kid() == kid
            && public_jwk.is_none_or(|jwk| {
                VerificationKey::from_jwk(jwk).is_ok_and(|vk| &vk == key.verification_key())
            });
        if !matches {
            return Err(SigningKeyError::PublicKeyMismatch {
                kid: kid.to_owned(),
            });
        }
        Ok(key)
    }
}

/// A fresh RSA key of [`RSA_KEY_BITS`] bits with e = 65537.
fn generate_rsa(rng: &mut (impl RngCore + CryptoRng)) -> rsa::RsaPrivateKey {
    // INVARIANT: rsa 0.9 fails only for fewer than two primes or a modulus under 64 bits, so
    // this loop runs once; it retries rather than panics to keep generation infallible.
    loop {
        if let Ok(key) = rsa::RsaPrivateKey::new(rng, RSA_KEY_BITS) {
            return key;
        }
    }
}

/// The associated data a sealed signing key is bound to.
fn sealing_aad(alg: Algorithm, kid: &str) -> String {
    format!("tessera/signing-key/v1/{alg}/{kid}")
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid())
            .field("alg", &self.alg())
            .field("private", &format_args!("{REDACTED}"))
            .finish()
    }
}

/// One RS256 key for the whole test binary: RSA key generation is too slow to repeat in every
/// test.
#[cfg(test)]
pub(crate) fn test_rsa_key() -> &'static SigningKey {
    use rand::SeedableRng as _;
    static KEY: std::sync::OnceLock<SigningKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        SigningKey::generate(
            Algorithm::Rs256,
            &mut rand::rngs::StdRng::seed_from_u64(2048),
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::MasterKey;

    #[test]
    fn seal_round_trip_both_algorithms() {
        let mut rng = StdRng::seed_from_u64(1);
        let ek = MasterKey::from_bytes([1u8; 32]).derive_key(SIGNING_KEYS_PURPOSE);
        for alg in [Algorithm::EdDsa, Algorithm::Es256] {
            let key = SigningKey::generate(alg, &mut rng);
            assert_eq!(key.alg(), alg);
            assert_eq!(key.kid().len(), 16);
            let sealed = key.seal(&ek, &mut rng);
            let jwk = key.verification_key().to_jwk();
            let back = SigningKey::unseal(alg, key.kid(), Some(&jwk), &sealed, &ek).unwrap();
            assert_eq!(back.verification_key(), key.verification_key());
            assert_eq!(back.sign(b"m").as_ref(), key.sign(b"m").as_ref());
        }
    }

    #[test]
    fn seal_round_trip_rs256() {
        let mut rng = StdRng::seed_from_u64(4);
        let ek = MasterKey::from_bytes([1u8; 32]).derive_key(SIGNING_KEYS_PURPOSE);
        let key = test_rsa_key();
        assert_eq!(key.alg(), Algorithm::Rs256);
        assert_eq!(key.kid().len(), 16);
        assert_eq!(key.signature_len(), 256);
        let sealed = key.seal(&ek, &mut rng);
        let jwk = key.verification_key().to_jwk();
        let back =
            SigningKey::unseal(Algorithm::Rs256, key.kid(), Some(&jwk), &sealed, &ek).unwrap();
        assert_eq!(back.verification_key(), key.verification_key());
        // PKCS#1 v1.5 signatures are deterministic.
        assert_eq!(back.sign(b"m").as_ref(), key.sign(b"m").as_ref());
        assert_eq!(key.sign(b"m").as_ref().len(), 256);
        // Sealed as an RS256 key, it opens as nothing else.
        assert!(matches!(
            SigningKey::unseal(Algorithm::Es256, key.kid(), None, &sealed, &ek),
            Err(SigningKeyError::Sealed { .. })
        ));
        // 32 bytes are no RSA key, and an RSA key is no 32-byte key.
        let short = envelope::seal(
            &ek,
            &[7u8; 32],
            sealing_aad(Algorithm::Rs256, "k").as_bytes(),
            &mut rng,
        );
        assert!(matches!(
            SigningKey::unseal(Algorithm::Rs256, "k", None, &short, &ek),
            Err(SigningKeyError::InvalidPrivateKey { .. })
        ));
        let der = envelope::seal(
            &ek,
            &key.private_bytes(),
            sealing_aad(Algorithm::EdDsa, "k").as_bytes(),
            &mut rng,
        );
        assert!(matches!(
            SigningKey::unseal(Algorithm::EdDsa, "k", None, &der, &ek),
            Err(SigningKeyError::InvalidPrivateKey { .. })
        ));
        let dbg = format!("{key:?}");
        assert!(dbg.contains("[redacted]") && dbg.contains("Rs256"), "{dbg}");
    }

    #[test]
    fn es256_signatures_are_low_s() {
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..8 {
            let key = SigningKey::generate(Algorithm::Es256, &mut rng);
            for m in [&b"a"[..], b"b", b"c", b"d"] {
                let sig = key.sign(m);
                let sig = p256::ecdsa::Signature::from_slice(sig.as_ref()).unwrap();
                assert!(sig.normalize_s().is_none(), "high s from sign()");
            }
        }
    }

    #[test]
    fn sealed_key_is_bound_to_its_identity() {
        let mut rng = StdRng::seed_from_u64(2);
        let ek = SecretBytes::new([4u8; 32]);
        let a = SigningKey::generate(Algorithm::EdDsa, &mut rng);
        let b = SigningKey::generate(Algorithm::EdDsa, &mut rng);
        let sealed = a.seal(&ek, &mut rng);
        // Under another kid or algorithm the envelope does not open.
        assert!(matches!(
            SigningKey::unseal(Algorithm::EdDsa, b.kid(), None, &sealed, &ek),
            Err(SigningKeyError::Sealed { .. })
        ));
        assert!(matches!(
            SigningKey::unseal(Algorithm::Es256, a.kid(), None, &sealed, &ek),
            Err(SigningKeyError::Sealed { .. })
        ));
        assert!(matches!(
            SigningKey::unseal(
                Algorithm::EdDsa,
                a.kid(),
                None,
                &sealed,
                &SecretBytes::new([5u8; 32])
            ),
            Err(SigningKeyError::Sealed { .. })
        ));
        // A record whose public JWK was swapped is caught.
        let other_jwk = b.verification_key().to_jwk();
        assert_eq!(
            SigningKey::unseal(Algorithm::EdDsa, a.kid(), Some(&other_jwk), &sealed, &ek)
                .unwrap_err(),
            SigningKeyError::PublicKeyMismatch {
                kid: a.kid().to_owned()
            }
        );
    }

    #[test]
    fn kid_is_checked_even_if_the_envelope_opens() {
        // Seal key `a`'s bytes under the identity of key `b` (as an attacker with the envelope
        // key could): unsealing as `b` yields a key whose kid is not `b`'s.
        let mut rng = StdRng::seed_from_u64(3);
        let ek = SecretBytes::new([4u8; 32]);
        let a = SigningKey::generate(Algorithm::EdDsa, &mut rng);
        let b = SigningKey::generate(Algorithm::EdDsa, &mut rng);
        let forged = envelope::seal(
            &ek,
            &a.private_bytes(),
            sealing_aad(Algorithm::EdDsa, b.kid()).as_bytes(),
            &mut rng,
        );
        assert!(matches!(
            SigningKey::unseal(Algorithm::EdDsa, b.kid(), None, &forged, &ek),
            Err(SigningKeyError::PublicKeyMismatch { .. })
        ));
        // Bytes that are no P-256 scalar (zero) are rejected.
        let zero = envelope::seal(
            &ek,
            &[0u8; 32],
            sealing_aad(Algorithm::Es256, "k").as_bytes(),
            &mut rng,
        );
        assert!(matches!(
            SigningKey::unseal(Algorithm::Es256, "k", None, &zero, &ek),
            Err(SigningKeyError::InvalidPrivateKey { .. })
        ));
    }

    #[test]
    fn debug_is_redacted() {
        let key = SigningKey::from_private_bytes(Algorithm::EdDsa, &[0xab; 32]).unwrap();
        let dbg = format!("{key:?}");
        assert!(
            dbg.contains("[redacted]") && dbg.contains(key.kid()),
            "{dbg}"
        );
        assert!(
            !dbg.contains("171") && !dbg.to_lowercase().contains("abab"),
            "{dbg}"
        );
    }

    #[test]
    fn errors_are_lowercase() {
        for e in [
            SigningKeyError::Sealed {
                kid: "k".into(),
                source: EnvelopeError::Unauthentic,
            },
            SigningKeyError::InvalidPrivateKey {
                kid: "k".into(),
                alg: Algorithm::Es256,
            },
            SigningKeyError::PublicKeyMismatch { kid: "k".into() },
        ] {
            let msg = e.to_string();
            assert!(msg.starts_with(|c: char| c.is_ascii_lowercase()), "{msg}");
        }
    }
}
