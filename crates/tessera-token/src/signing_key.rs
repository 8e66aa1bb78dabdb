//! Private signing keys: generation, signing, and sealing for storage under the master key.
//! INVARIANT: a key signs with exactly one algorithm; its `kid` is derived from its public key
//! (RFC 7638 thumbprint, truncated); the private half never leaves this type except sealed
//! ([`SigningKey::seal`]), is redacted when printed and zeroized on drop. A sealed key is bound
//! to its algorithm and kid, so it cannot be opened under another record's identity.

use std::fmt;

use ed25519_dalek::Signer as _;
use rand::{CryptoRng, RngCore};
use zeroize::Zeroize;

use crate::envelope::{self, EnvelopeError};
use crate::jwk::{Algorithm, PublicKey, VerificationKey};
use crate::jwt::{cached_headers, TokenType};
use crate::secret::{SecretBytes, REDACTED};

/// The purpose under which the master key derives the key that seals signing keys:
/// `master_key.derive_key(SIGNING_KEYS_PURPOSE)`.
pub const SIGNING_KEYS_PURPOSE: &str = "signing-keys";

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

/// The private key material, by algorithm. Both types zeroize themselves on drop.
enum PrivateKey {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

/// A private signing key with its kid, its public half and its pre-encoded JWT headers.
pub struct SigningKey {
    private: PrivateKey,
    public: VerificationKey,
    /// `base64url(header)` for each [`TokenType`], computed once.
    headers: [String; 2],
}

impl SigningKey {
    /// Generates a fresh key for `alg` from `rng`.
    pub fn generate(alg: Algorithm, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let private = match alg {
            Algorithm::EdDsa => PrivateKey::Ed25519(ed25519_dalek::SigningKey::generate(rng)),
            Algorithm::Es256 => PrivateKey::P256(p256::ecdsa::SigningKey::random(rng)),
        };
        Self::from_private(private)
    }

    /// Restores a key from its 32 private bytes (the Ed25519 seed, or the P-256 scalar).
    pub(crate) fn from_private_bytes(alg: Algorithm, bytes: &[u8; 32]) -> Option<Self> {
        let private = match alg {
            Algorithm::EdDsa => PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(bytes)),
            Algorithm::Es256 => PrivateKey::P256(p256::ecdsa::SigningKey::from_slice(bytes).ok()?),
        };
        Some(Self::from_private(private))
    }

    fn from_private(private: PrivateKey) -> Self {
        let key = match &private {
            PrivateKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
            PrivateKey::P256(k) => PublicKey::P256(*k.verifying_key()),
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

    /// The base64url JWT header for tokens of type `typ`.
    pub(crate) fn header_b64(&self, typ: TokenType) -> &str {
        &self.headers[typ as usize]
    }

    /// Signs `message`: 64 bytes, `R ‖ S` for Ed25519 (RFC 8032) and `r ‖ s` for ES256
    /// (RFC 7518 §3.4). ES256 uses deterministic nonces (RFC 6979), so no RNG is needed.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        match &self.private {
            PrivateKey::Ed25519(k) => k.sign(message).to_bytes(),
            PrivateKey::P256(k) => {
                let signature: p256::ecdsa::Signature = k.sign(message);
                signature.to_bytes().into()
            }
        }
    }

    /// The 32 private bytes, wiped when dropped.
    fn private_bytes(&self) -> SecretBytes<32> {
        match &self.private {
            PrivateKey::Ed25519(k) => SecretBytes::new(k.to_bytes()),
            PrivateKey::P256(k) => {
                let mut bytes: [u8; 32] = k.to_bytes().into();
                let secret = SecretBytes::new(bytes);
                bytes.zeroize();
                secret
            }
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
            private.expose(),
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
        let bytes: &[u8; 32] = opened.as_slice().try_into().map_err(|_| invalid())?;
        let key = Self::from_private_bytes(alg, bytes).ok_or_else(invalid)?;
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
            assert_eq!(back.sign(b"m"), key.sign(b"m"));
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
            a.private_bytes().expose(),
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
