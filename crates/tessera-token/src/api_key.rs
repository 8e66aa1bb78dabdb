//! The API-key text format: `tsk_` + 32 random base62 characters + a 6-character checksum.
//! INVARIANT: the body carries ~190 bits from a CSPRNG; the checksum (CRC32 of prefix+body,
//! base62, zero-padded) lets a typo or truncation be rejected without any IO. Errors never
//! echo the key.

use rand::rngs::OsRng;
use rand::{CryptoRng, RngCore};

use crate::base62;
use crate::secret::SecretString;

/// Every API key starts with this; it tells API keys apart from JWTs and other tokens.
pub const API_KEY_PREFIX: &str = "tsk_";
/// Number of random base62 characters after the prefix (32 × log2(62) ≈ 190 bits).
pub const API_KEY_BODY_LEN: usize = 32;
/// Number of base62 characters of checksum at the end (62^6 > 2^32).
pub const API_KEY_CHECKSUM_LEN: usize = 6;
/// Total length of an API key, in bytes (all ASCII).
pub const API_KEY_LEN: usize = API_KEY_PREFIX.len() + API_KEY_BODY_LEN + API_KEY_CHECKSUM_LEN;

/// Why a text is not a well-formed API key. Messages never contain the text itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyFormatError {
    /// The text does not start with `tsk_`.
    #[error("api key does not start with `tsk_`")]
    WrongPrefix,
    /// The text is not exactly [`API_KEY_LEN`] bytes long.
    #[error("api key must be 42 characters long")]
    WrongLength,
    /// A character after the prefix is not base62 (`0-9`, `A-Z`, `a-z`).
    #[error("api key contains a character that is not a letter or digit")]
    InvalidCharacter,
    /// The checksum does not match: the key was mistyped, truncated or made up.
    #[error("api key checksum does not match")]
    BadChecksum,
}

/// The checksum characters for `prefix_and_body`.
fn checksum(prefix_and_body: &[u8]) -> [u8; API_KEY_CHECKSUM_LEN] {
    base62::encode_fixed(u64::from(crc32fast::hash(prefix_and_body)))
}

/// Generates a new API key from `rng`.
pub fn generate_api_key(rng: &mut (impl RngCore + CryptoRng)) -> SecretString {
    // Full capacity up front: no reallocation leaves an unzeroized copy behind.
    let mut key = String::with_capacity(API_KEY_LEN);
    key.push_str(API_KEY_PREFIX);
    base62::push_random(&mut key, API_KEY_BODY_LEN, rng);
    for c in checksum(key.as_bytes()) {
        key.push(char::from(c));
    }
    SecretString::from(key)
}

/// Generates a new API key from the operating system's CSPRNG.
pub fn generate_api_key_os() -> SecretString {
    generate_api_key(&mut OsRng)
}

/// Whether `text` claims to be an API key (prefix only). Use it to route a bearer
/// credential; [`check_api_key_format`] then validates it.
pub fn looks_like_api_key(text: &str) -> bool {
    text.starts_with(API_KEY_PREFIX)
}

/// Checks prefix, length, character set and checksum, without any IO.
pub fn check_api_key_format(text: &str) -> Result<(), ApiKeyFormatError> {
    let bytes = text.as_bytes();
    if !bytes.starts_with(API_KEY_PREFIX.as_bytes()) {
        return Err(ApiKeyFormatError::WrongPrefix);
    }
    if bytes.len() != API_KEY_LEN {
        return Err(ApiKeyFormatError::WrongLength);
    }
    let (prefix_and_body, sum) = bytes.split_at(API_KEY_LEN - API_KEY_CHECKSUM_LEN);
    let body = &prefix_and_body[API_KEY_PREFIX.len()..];
    if !body.iter().chain(sum).all(|&b| base62::is_base62(b)) {
        return Err(ApiKeyFormatError::InvalidCharacter);
    }
    if sum != checksum(prefix_and_body) {
        return Err(ApiKeyFormatError::BadChecksum);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::HashSet;

    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::base62::ALPHABET;

    fn key_from_seed(seed: u64) -> String {
        generate_api_key(&mut StdRng::seed_from_u64(seed))
            .expose()
            .to_owned()
    }

    #[test]
    fn generated_keys_pass_the_check() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..1000 {
            let key = generate_api_key(&mut rng);
            assert_eq!(key.expose().len(), API_KEY_LEN);
            assert!(looks_like_api_key(key.expose()));
            assert_eq!(check_api_key_format(key.expose()), Ok(()));
        }
        let key = generate_api_key_os();
        assert_eq!(check_api_key_format(key.expose()), Ok(()));
    }

    #[test]
    fn body_has_at_least_128_bits() {
        let bits = API_KEY_BODY_LEN as f64 * 62f64.log2();
        assert!(bits >= 128.0, "{bits}");
    }

    #[test]
    fn keys_differ() {
        let keys: HashSet<String> = (0..100)
            .map(|_| generate_api_key_os().expose().to_owned())
            .collect();
        assert_eq!(keys.len(), 100);
    }

    #[test]
    fn all_62_characters_appear_and_roughly_uniformly() {
        let mut rng = StdRng::seed_from_u64(42);
        let mut counts = [0u32; 256];
        let keys = 2000;
        for _ in 0..keys {
            let key = generate_api_key(&mut rng);
            let body = &key.expose().as_bytes()[API_KEY_PREFIX.len()..][..API_KEY_BODY_LEN];
            for &b in body {
                counts[usize::from(b)] += 1;
            }
        }
        let expected = f64::from(keys * API_KEY_BODY_LEN as u32) / 62.0;
        for &c in ALPHABET {
            let n = f64::from(counts[usize::from(c)]);
            assert!(n > 0.0, "character {} never appeared", char::from(c));
            // ~1032 expected per character; ±20% is far beyond random fluctuation (σ ≈ 32).
            assert!(
                (n - expected).abs() < expected * 0.2,
                "character {} appeared {n} times",
                char::from(c)
            );
        }
        let total: u32 = counts.iter().sum();
        assert_eq!(total, keys * API_KEY_BODY_LEN as u32);
    }

    #[test]
    fn wrong_prefix_rejected() {
        let key = key_from_seed(3);
        for bad in [
            key.replacen("tsk_", "tsx_", 1),
            key.replacen("tsk_", "TSK_", 1),
            key.replacen("tsk_", "", 1),
            format!("x{key}"),
            String::new(),
            "eyJhbGciOiJIUzI1NiJ9.e30.sig".to_owned(),
        ] {
            assert_eq!(
                check_api_key_format(&bad),
                Err(ApiKeyFormatError::WrongPrefix),
                "{bad}"
            );
            assert!(!looks_like_api_key(&bad));
        }
    }

    #[test]
    fn wrong_length_rejected() {
        let key = key_from_seed(4);
        for bad in [
            key[..API_KEY_LEN - 1].to_owned(),
            format!("{key}0"),
            "tsk_".to_owned(),
            key[..API_KEY_PREFIX.len() + API_KEY_BODY_LEN].to_owned(),
        ] {
            assert_eq!(
                check_api_key_format(&bad),
                Err(ApiKeyFormatError::WrongLength),
                "{bad}"
            );
        }
    }

    #[test]
    fn invalid_characters_rejected() {
        let key = key_from_seed(5);
        for (pos, c) in [
            (4, "-"),
            (10, "_"),
            (API_KEY_LEN - 1, "="),
            (20, " "),
            (35, "+"),
        ] {
            let mut bad = key.clone();
            bad.replace_range(pos..pos + 1, c);
            assert_eq!(
                check_api_key_format(&bad),
                Err(ApiKeyFormatError::InvalidCharacter),
                "{bad}"
            );
        }
        // A two-byte character keeps the byte length right only if another byte goes.
        let mut bad = key[..API_KEY_LEN - 2].to_owned();
        bad.push('é');
        assert_eq!(bad.len(), API_KEY_LEN);
        assert_eq!(
            check_api_key_format(&bad),
            Err(ApiKeyFormatError::InvalidCharacter)
        );
    }

    #[test]
    fn checksum_out_of_range_rejected() {
        // "zzzzzz" decodes above u32::MAX, so no key can carry it.
        let key = key_from_seed(6);
        let bad = format!("{}zzzzzz", &key[..API_KEY_LEN - API_KEY_CHECKSUM_LEN]);
        assert_eq!(
            check_api_key_format(&bad),
            Err(ApiKeyFormatError::BadChecksum)
        );
    }

    #[test]
    fn error_messages_are_lowercase_and_do_not_echo() {
        let key = key_from_seed(7);
        let mut bad = key.clone();
        bad.replace_range(10..11, if &key[10..11] == "a" { "b" } else { "a" });
        let err = check_api_key_format(&bad).unwrap_err();
        for e in [
            err,
            ApiKeyFormatError::WrongPrefix,
            ApiKeyFormatError::WrongLength,
            ApiKeyFormatError::InvalidCharacter,
            ApiKeyFormatError::BadChecksum,
        ] {
            let msg = e.to_string();
            assert!(msg.starts_with(|c: char| c.is_ascii_lowercase()), "{msg}");
            assert!(
                !msg.contains(&key[4..]) && !msg.contains(&bad[4..]),
                "{msg}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_single_substitution_fails_the_checksum(
            seed in any::<u64>(),
            pos in API_KEY_PREFIX.len()..API_KEY_LEN,
            replacement in 0usize..61,
        ) {
            let key = key_from_seed(seed);
            let original = key.as_bytes()[pos];
            // Pick among the 61 alphabet characters different from the original.
            let others: Vec<u8> = ALPHABET.iter().copied().filter(|&c| c != original).collect();
            let mut bad = key.clone().into_bytes();
            bad[pos] = others[replacement];
            let bad = String::from_utf8(bad).unwrap();
            prop_assert_eq!(check_api_key_format(&key), Ok(()));
            prop_assert_eq!(check_api_key_format(&bad), Err(ApiKeyFormatError::BadChecksum));
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,60}") {
            let _ = check_api_key_format(&text);
            let with_prefix = format!("tsk_{text}");
            let _ = check_api_key_format(&with_prefix);
        }
    }
}
