//! Wrappers that keep secrets out of logs and memory dumps.
//! INVARIANT: `Debug` and `Display` print `[redacted]`, the contents are zeroized on drop,
//! and equality is checked in constant time. Reading the secret needs an explicit `expose`.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// What `Debug` and `Display` print in place of a secret.
pub(crate) const REDACTED: &str = "[redacted]";

/// A secret string (API key, token, password): redacted when printed, zeroized on drop.
#[derive(Clone, Default)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps `secret`.
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The secret itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(secret: String) -> Self {
        Self(secret)
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl PartialEq for SecretString {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for SecretString {}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A fixed-size secret key: redacted when printed, zeroized on drop.
#[derive(Clone)]
pub struct SecretBytes<const N: usize>([u8; N]);

impl<const N: usize> SecretBytes<N> {
    /// Wraps `bytes`.
    pub fn new(bytes: [u8; N]) -> Self {
        Self(bytes)
    }

    /// The secret bytes. Do not log them.
    pub fn expose(&self) -> &[u8; N] {
        &self.0
    }

    /// Fresh random bytes from `rng`, filled in place (no other copy is made).
    pub fn random(rng: &mut (impl rand::RngCore + rand::CryptoRng)) -> Self {
        let mut key = Self([0u8; N]);
        rng.fill_bytes(&mut key.0);
        key
    }

    /// Copies exactly `N` bytes (an unwrapped secret); `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut key = Self([0u8; N]);
        if bytes.len() != N {
            return None;
        }
        key.0.copy_from_slice(bytes);
        Some(key)
    }
}

impl<const N: usize> From<[u8; N]> for SecretBytes<N> {
    fn from(bytes: [u8; N]) -> Self {
        Self(bytes)
    }
}

impl<const N: usize> Drop for SecretBytes<N> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<const N: usize> PartialEq for SecretBytes<N> {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl<const N: usize> Eq for SecretBytes<N> {}

impl<const N: usize> fmt::Debug for SecretBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<const N: usize> fmt::Display for SecretBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_string_is_redacted() {
        let s = SecretString::from("hunter2hunter2".to_owned());
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s:#?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(s.expose(), "hunter2hunter2");
    }

    #[test]
    fn secret_bytes_is_redacted() {
        let k = SecretBytes::new([7u8; 32]);
        assert_eq!(format!("{k:?}"), "[redacted]");
        assert_eq!(format!("{k}"), "[redacted]");
        assert_eq!(k.expose(), &[7u8; 32]);
    }

    #[test]
    fn equality() {
        assert_eq!(
            SecretString::from("a".to_owned()),
            SecretString::from("a".to_owned())
        );
        assert_ne!(
            SecretString::from("a".to_owned()),
            SecretString::from("b".to_owned())
        );
        assert_ne!(
            SecretString::from("a".to_owned()),
            SecretString::from("ab".to_owned())
        );
        assert_eq!(SecretBytes::new([1u8; 4]), SecretBytes::new([1u8; 4]));
        assert_ne!(SecretBytes::new([1u8; 4]), SecretBytes::new([1, 1, 1, 2]));
    }
}
