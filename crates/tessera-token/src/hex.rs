//! Lowercase hex for keys and hashes, through the `hex` crate (already in the build through
//! sqlx).
//! INVARIANT: decoding accepts only lowercase hex of the exact length, so every value has
//! exactly one textual form (`hex` alone would also accept uppercase).

/// Lowercase hex of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Whether `text` is lowercase hex digits only.
fn lowercase(text: &[u8]) -> bool {
    text.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Decodes exactly `2 * N` lowercase hex characters into `N` bytes.
pub(crate) fn decode<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != 2 * N || !lowercase(text) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// Decodes lowercase hex of any even length.
pub(crate) fn decode_vec(text: &[u8]) -> Option<Vec<u8>> {
    if !lowercase(text) {
        return None;
    }
    hex::decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let bytes = [0x00, 0x01, 0xab, 0xff];
        assert_eq!(encode(&bytes), "0001abff");
        assert_eq!(decode::<4>(b"0001abff"), Some(bytes));
        assert_eq!(decode_vec(b"0001abff"), Some(bytes.to_vec()));
        assert_eq!(decode_vec(b""), Some(Vec::new()));
    }

    #[test]
    fn rejects_uppercase_wrong_length_and_junk() {
        assert_eq!(decode::<4>(b"0001ABFF"), None);
        assert_eq!(decode::<4>(b"0001abf"), None);
        assert_eq!(decode::<4>(b"0001abfff0"), None);
        assert_eq!(decode::<4>(b"0001abgz"), None);
        assert_eq!(decode_vec(b"0001ABFF"), None);
        assert_eq!(decode_vec(b"000"), None);
    }
}
