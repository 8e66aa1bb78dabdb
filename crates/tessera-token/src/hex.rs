//! Lowercase hex encoding for keys and hashes.
//! INVARIANT: decoding accepts only lowercase hex of the exact length, so every value has
//! exactly one textual form.

/// Lowercase hex of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Decodes exactly `2 * N` lowercase hex characters into `N` bytes.
pub(crate) fn decode<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (nibble(*hi)?, nibble(*lo)?),
            _ => return None,
        };
        *slot = (hi << 4) | lo;
    }
    Some(out)
}

/// Decodes lowercase hex of any even length.
pub(crate) fn decode_vec(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some((nibble(*hi)? << 4) | nibble(*lo)?),
            _ => None,
        })
        .collect()
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
