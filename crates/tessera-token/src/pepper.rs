//! Peppered hashing of high-entropy credentials (API keys, tokens) for storage and lookup.
//! INVARIANT: a `CredentialHash` is HMAC-SHA-256 under a versioned pepper key, so a stolen
//! database alone cannot confirm a guess; the pepper key is redacted and zeroized, and hashes
//! compare in constant time. A hash is not a secret: its Debug shows the hex.

use std::fmt;
use std::hash::{Hash, Hasher};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::hex;
use crate::secret::{SecretBytes, REDACTED};

/// A versioned HMAC key; the version is stored beside each hash so peppers can rotate.
#[derive(Clone, PartialEq, Eq)]
pub struct Pepper {
    version: u32,
    key: SecretBytes<32>,
}

impl Pepper {
    /// A pepper from raw key material (normally from [`crate::MasterKey::derive_pepper`]).
    pub fn new(version: u32, key: [u8; 32]) -> Self {
        Self {
            version,
            key: SecretBytes::new(key),
        }
    }

    /// A pepper from key material already held as a secret (a stored, unwrapped pepper).
    pub fn from_secret(version: u32, key: SecretBytes<32>) -> Self {
        Self { version, key }
    }

    /// The pepper version, to store beside each hash.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// HMAC-SHA-256 of `secret` under this pepper.
    pub fn hash(&self, secret: &[u8]) -> CredentialHash {
        // HMAC accepts keys of any length, so this error arm cannot be taken.
        let mut mac = match Hmac::<Sha256>::new_from_slice(self.key.expose()) {
            Ok(mac) => mac,
            Err(_) => unreachable!("hmac accepts keys of any length"),
        };
        mac.update(secret);
        CredentialHash(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pepper")
            .field("version", &self.version)
            .field("key", &format_args!("{REDACTED}"))
            .finish()
    }
}

/// A 32-byte credential hash as stored in the database.
#[derive(Clone, Copy, Eq)]
pub struct CredentialHash([u8; 32]);

/// A stored credential hash that is not 64 lowercase hex characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("credential hash must be 64 lowercase hex characters")]
pub struct CredentialHashParseError;

impl CredentialHash {
    /// Wraps raw hash bytes (e.g. read from a binary database column).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw hash bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// Parses the form written by [`CredentialHash::to_hex`].
    pub fn from_hex(text: &str) -> Result<Self, CredentialHashParseError> {
        hex::decode(text.as_bytes())
            .map(Self)
            .ok_or(CredentialHashParseError)
    }
}

impl PartialEq for CredentialHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Hash for CredentialHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Consistent with `eq`: equal hashes have equal bytes.
        self.0.hash(state);
    }
}

impl fmt::Debug for CredentialHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CredentialHash({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn hashing_is_deterministic() {
        let pepper = Pepper::new(1, [9u8; 32]);
        assert_eq!(pepper.hash(b"tsk_abc"), pepper.hash(b"tsk_abc"));
        assert_eq!(
            pepper.hash(b"tsk_abc"),
            Pepper::new(1, [9u8; 32]).hash(b"tsk_abc")
        );
        assert_ne!(pepper.hash(b"tsk_abc"), pepper.hash(b"tsk_abd"));
    }

    #[test]
    fn hashing_depends_on_the_key() {
        let a = Pepper::new(1, [1u8; 32]);
        let b = Pepper::new(1, [2u8; 32]);
        assert_ne!(a.hash(b"secret"), b.hash(b"secret"));
    }

    #[test]
    fn hash_is_hmac_sha256_rfc4231_case_2() {
        // RFC 4231 test case 2 uses the key "Jefe"; HMAC zero-pads short keys, so the same
        // key zero-padded to 32 bytes gives the same MAC.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let h = Pepper::new(1, key).hash(b"what do ya want for nothing?");
        assert_eq!(
            h.to_hex(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hex_roundtrip() {
        let h = Pepper::new(1, [3u8; 32]).hash(b"x");
        let hex = h.to_hex();
        assert_eq!(hex.len(), 64);
        assert!(hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(CredentialHash::from_hex(&hex), Ok(h));
        assert_eq!(CredentialHash::from_bytes(*h.as_bytes()), h);
        assert_eq!(
            CredentialHash::from_hex(&hex.to_uppercase()),
            Err(CredentialHashParseError)
        );
        assert_eq!(
            CredentialHash::from_hex(&hex[..63]),
            Err(CredentialHashParseError)
        );
        assert_eq!(CredentialHash::from_hex(""), Err(CredentialHashParseError));
    }

    #[test]
    fn debug_shows_hash_but_not_pepper_key() {
        let pepper = Pepper::new(3, [0xab; 32]);
        let dbg = format!("{pepper:?}");
        assert_eq!(dbg, "Pepper { version: 3, key: [redacted] }");
        assert!(!dbg.contains("abab") && !dbg.contains("171"));
        let h = pepper.hash(b"x");
        assert_eq!(format!("{h:?}"), format!("CredentialHash({})", h.to_hex()));
        assert_eq!(pepper.version(), 3);
    }
}
