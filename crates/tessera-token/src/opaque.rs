//! Opaque random tokens (refresh tokens, authorization codes): a caller-chosen prefix
//! followed by 43 base62 characters.
//! INVARIANT: the random part carries ~256 bits from a CSPRNG; the token is a `SecretString`.

use rand::rngs::OsRng;
use rand::{CryptoRng, RngCore};

use crate::base62;
use crate::secret::SecretString;

/// Number of random base62 characters after the prefix (43 × log2(62) ≈ 256 bits).
pub const OPAQUE_TOKEN_BODY_LEN: usize = 43;

/// `prefix` followed by [`OPAQUE_TOKEN_BODY_LEN`] random base62 characters from `rng`.
pub fn generate_opaque_token(prefix: &str, rng: &mut (impl RngCore + CryptoRng)) -> SecretString {
    let mut token = String::with_capacity(prefix.len() + OPAQUE_TOKEN_BODY_LEN);
    token.push_str(prefix);
    base62::push_random(&mut token, OPAQUE_TOKEN_BODY_LEN, rng);
    SecretString::from(token)
}

/// [`generate_opaque_token`] with the operating system's CSPRNG.
pub fn generate_opaque_token_os(prefix: &str) -> SecretString {
    generate_opaque_token(prefix, &mut OsRng)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn shape() {
        let mut rng = StdRng::seed_from_u64(9);
        let token = generate_opaque_token("trt_", &mut rng);
        let text = token.expose();
        assert_eq!(text.len(), 4 + OPAQUE_TOKEN_BODY_LEN);
        assert!(text.starts_with("trt_"));
        assert!(text[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(OPAQUE_TOKEN_BODY_LEN as f64 * 62f64.log2() >= 256.0);
        assert_eq!(format!("{token:?}"), "[redacted]");
    }

    #[test]
    fn tokens_differ() {
        let a = generate_opaque_token_os("");
        let b = generate_opaque_token_os("");
        assert_eq!(a.expose().len(), OPAQUE_TOKEN_BODY_LEN);
        assert_ne!(a, b);
    }
}
