//! Base62 (`0-9A-Za-z`) helpers shared by API keys and opaque tokens.
//! INVARIANT: random characters are drawn uniformly (no modulo bias); fixed-width encoding
//! is most significant digit first and zero-padded.

use rand::{CryptoRng, Rng, RngCore};

/// The base62 alphabet, in digit order.
pub(crate) const ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether `b` is one of the 62 alphabet characters.
pub(crate) fn is_base62(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Appends `count` characters drawn uniformly from the alphabet to `out`.
///
/// `out` should have enough capacity reserved so that no reallocation leaves an
/// unzeroized copy of the secret behind.
pub(crate) fn push_random(out: &mut String, count: usize, rng: &mut (impl RngCore + CryptoRng)) {
    for _ in 0..count {
        // `gen_range` rejects out-of-range samples, so every character has probability 1/62.
        let digit = rng.gen_range(0..ALPHABET.len());
        out.push(char::from(ALPHABET[digit]));
    }
}

/// Encodes `value` as exactly `N` base62 digits, most significant first, zero-padded.
/// Digits beyond `N` are dropped, so callers pick `N` with `62^N` above the value range.
pub(crate) fn encode_fixed<const N: usize>(mut value: u64) -> [u8; N] {
    let mut out = [ALPHABET[0]; N];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_matches_predicate() {
        for b in 0..=u8::MAX {
            assert_eq!(is_base62(b), ALPHABET.contains(&b), "byte {b}");
        }
    }

    #[test]
    fn encode_fixed_pads_and_orders() {
        assert_eq!(&encode_fixed::<6>(0), b"000000");
        assert_eq!(&encode_fixed::<6>(61), b"00000z");
        assert_eq!(&encode_fixed::<6>(62), b"000010");
        assert_eq!(&encode_fixed::<6>(u64::from(u32::MAX)), b"4gfFC3");
    }
}
