//! Envelope encryption of secrets at rest (private signing keys, per-agency data keys) under a
//! key derived from the master key, with XChaCha20-Poly1305.
//! Format: `version (1 byte) ‖ nonce (24 random bytes) ‖ ciphertext ‖ tag (16 bytes)`.
//! INVARIANT: the version byte and the caller's `aad` are authenticated, so a flipped bit
//! anywhere, a wrong key or a sealed value moved to another context (other `aad`) fails to
//! open; opened plaintext is zeroized on drop.

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::secret::SecretBytes;

/// The format version written by [`seal`].
pub const ENVELOPE_VERSION: u8 = 1;
/// Length of the random nonce.
const NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag.
const TAG_LEN: usize = 16;
/// Bytes a sealed value carries beyond its plaintext.
pub const ENVELOPE_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// Why a sealed value could not be opened. Messages never contain key or plaintext bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Shorter than the version, nonce and tag together.
    #[error("sealed value is truncated")]
    Truncated,
    /// The first byte names a format this build does not know.
    #[error("sealed value has unknown format version {0}")]
    UnknownVersion(u8),
    /// The tag does not match: wrong key, wrong associated data, or the bytes were altered.
    #[error("sealed value failed authentication: wrong key or context, or it was altered")]
    Unauthentic,
}

/// The associated data actually authenticated: the version byte, then the caller's `aad`.
fn full_aad(aad: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(1 + aad.len());
    full.push(ENVELOPE_VERSION);
    full.extend_from_slice(aad);
    full
}

/// Encrypts `plaintext` under `key`, binding it to `aad` (which is not stored: [`open`] must be
/// given the same bytes). The nonce is drawn from `rng`; 192 random bits never repeat in
/// practice, so one key may seal any number of values.
pub fn seal(
    key: &SecretBytes<32>,
    plaintext: &[u8],
    aad: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);

    // The plaintext is copied straight into the output buffer and encrypted there, so no
    // other copy of it is left behind.
    let mut out = Vec::with_capacity(plaintext.len() + ENVELOPE_OVERHEAD);
    out.push(ENVELOPE_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let body = &mut out[1 + NONCE_LEN..];
    let tag =
        match cipher.encrypt_in_place_detached(XNonce::from_slice(&nonce), &full_aad(aad), body) {
            Ok(tag) => tag,
            // XChaCha20 refuses only messages beyond 256 GiB, which no caller seals.
            Err(_) => unreachable!("xchacha20-poly1305 seals anything below 256 gib"),
        };
    out.extend_from_slice(&tag);
    out
}

/// Decrypts a value written by [`seal`] with the same `key` and `aad`.
pub fn open(
    key: &SecretBytes<32>,
    sealed: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let (&version, rest) = sealed.split_first().ok_or(EnvelopeError::Truncated)?;
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(EnvelopeError::Truncated);
    }
    if version != ENVELOPE_VERSION {
        return Err(EnvelopeError::UnknownVersion(version));
    }
    let (nonce, rest) = rest.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);

    let cipher = XChaCha20Poly1305::new(key.expose().into());
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    // The tag is checked before anything is decrypted.
    cipher
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            &full_aad(aad),
            &mut plaintext,
            Tag::from_slice(tag),
        )
        .map_err(|_| EnvelopeError::Unauthentic)?;
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::MasterKey;

    fn key(byte: u8) -> SecretBytes<32> {
        SecretBytes::new([byte; 32])
    }

    #[test]
    fn round_trip_and_layout() {
        let mut rng = StdRng::seed_from_u64(1);
        let sealed = seal(&key(1), b"private key bytes", b"kid-1", &mut rng);
        assert_eq!(sealed.len(), 17 + ENVELOPE_OVERHEAD);
        assert_eq!(sealed[0], ENVELOPE_VERSION);
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        let opened = open(&key(1), &sealed, b"kid-1").unwrap();
        assert_eq!(opened.as_slice(), b"private key bytes");
        // Empty plaintext and empty aad work too.
        let sealed = seal(&key(1), b"", b"", &mut rng);
        assert_eq!(open(&key(1), &sealed, b"").unwrap().as_slice(), b"");
    }

    #[test]
    fn nonces_are_fresh() {
        let mut rng = StdRng::seed_from_u64(2);
        let a = seal(&key(1), b"same", b"", &mut rng);
        let b = seal(&key(1), b"same", b"", &mut rng);
        assert_ne!(a, b);
        assert_ne!(a[1..25], b[1..25]);
    }

    #[test]
    fn wrong_key_or_aad_fails() {
        let mut rng = StdRng::seed_from_u64(3);
        let sealed = seal(&key(1), b"secret", b"kid-1", &mut rng);
        assert_eq!(
            open(&key(2), &sealed, b"kid-1"),
            Err(EnvelopeError::Unauthentic)
        );
        assert_eq!(
            open(&key(1), &sealed, b"kid-2"),
            Err(EnvelopeError::Unauthentic)
        );
        assert_eq!(open(&key(1), &sealed, b""), Err(EnvelopeError::Unauthentic));
    }

    #[test]
    fn master_key_purposes_are_separate() {
        let mut rng = StdRng::seed_from_u64(4);
        let master = MasterKey::from_bytes([9u8; 32]);
        let sealed = seal(&master.derive_key("signing-keys"), b"k", b"", &mut rng);
        assert!(open(&master.derive_key("signing-keys"), &sealed, b"").is_ok());
        assert_eq!(
            open(&master.derive_key("data-keys"), &sealed, b""),
            Err(EnvelopeError::Unauthentic)
        );
    }

    #[test]
    fn truncation_and_version() {
        let mut rng = StdRng::seed_from_u64(5);
        let sealed = seal(&key(1), b"secret", b"", &mut rng);
        for len in 0..ENVELOPE_OVERHEAD {
            assert_eq!(
                open(&key(1), &sealed[..len], b""),
                Err(EnvelopeError::Truncated),
                "{len}"
            );
        }
        // Cutting ciphertext bytes leaves a well-formed but unauthentic value.
        assert_eq!(
            open(&key(1), &sealed[..sealed.len() - 1], b""),
            Err(EnvelopeError::Unauthentic)
        );
        let mut other = sealed.clone();
        other[0] = 2;
        assert_eq!(
            open(&key(1), &other, b""),
            Err(EnvelopeError::UnknownVersion(2))
        );
    }

    #[test]
    fn errors_are_lowercase() {
        for e in [
            EnvelopeError::Truncated,
            EnvelopeError::UnknownVersion(7),
            EnvelopeError::Unauthentic,
        ] {
            let msg = e.to_string();
            assert!(msg.starts_with(|c: char| c.is_ascii_lowercase()), "{msg}");
        }
    }

    proptest! {
        #[test]
        fn any_bit_flip_is_detected(
            plaintext in proptest::collection::vec(any::<u8>(), 0..80),
            aad in proptest::collection::vec(any::<u8>(), 0..20),
            bit in any::<prop::sample::Index>(),
            seed in any::<u64>(),
        ) {
            let mut rng = StdRng::seed_from_u64(seed);
            let sealed = seal(&key(7), &plaintext, &aad, &mut rng);
            let opened = open(&key(7), &sealed, &aad).unwrap();
            prop_assert_eq!(opened.as_slice(), &plaintext[..]);
            let bit = bit.index(sealed.len() * 8);
            let mut bad = sealed.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(open(&key(7), &bad, &aad).is_err());
            // A flipped bit of the associated data is detected as well.
            if !aad.is_empty() {
                let mut bad_aad = aad.clone();
                bad_aad[bit % aad.len()] ^= 1 << (bit % 8);
                prop_assert_eq!(open(&key(7), &sealed, &bad_aad), Err(EnvelopeError::Unauthentic));
            }
        }
    }
}
