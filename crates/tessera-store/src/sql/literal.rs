//! Values inlined in SQL text: PostgreSQL's `BEGIN` with its tenant setting goes as one simple
//! query (which takes no parameters) and inlines the value, checked here first.

/// May `value` go into a single-quoted SQL literal as it is? Only characters that can neither
/// end the literal nor escape (ids, hex, lookup keys made of these): anything else is bound
/// in a second round trip (`PgStore::begin_set`).
pub(crate) fn literal_safe(value: &str) -> bool {
    value.len() <= 256
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'@' | b'+' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use super::literal_safe;

    #[test]
    fn only_values_that_cannot_leave_a_literal_are_inlined() {
        for ok in [
            "agy_01JD5Y8Q9X2ZP3M4N5R6S7T8V9",
            "on",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "https://api.example.com/v1",
            "user+tag@example.com",
        ] {
            assert!(literal_safe(ok), "{ok}");
        }
        for bad in [
            "a'b",
            "a\\b",
            "x'); DROP TABLE agencies; --",
            "with space",
            "é@example.com",
            "a\0b",
            "line\nbreak",
            &"a".repeat(257),
        ] {
            assert!(!literal_safe(bad), "{bad:?}");
        }
    }
}
