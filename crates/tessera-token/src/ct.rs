//! Constant-time comparison of byte strings.
//! INVARIANT: the time taken depends only on the lengths, never on where the inputs differ.

use subtle::ConstantTimeEq;

/// Compares `a` and `b` in constant time. Different lengths compare unequal (the lengths
/// themselves are not hidden).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
