//! OAuth scopes (RFC 6749 §3.3): an ordered, deduplicated set of scope tokens, written as one
//! space-delimited string. INVARIANT: a [`Scopes`] value holds only well-formed tokens
//! (`scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`), each once, in first-seen order, so its
//! [`Display`](fmt::Display) form parses back to the same value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest part of a refused token an error message repeats, in characters.
const ERROR_TOKEN_CHARS: usize = 100;

/// Why a string is not a scope token or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// A token is empty or holds a character outside `%x21 / %x23-5B / %x5D-7E` (RFC 6749
    /// §3.3): a control character, a non-ASCII character, `"` or `\`. The message repeats at
    /// most the first 100 characters of the token, escaped.
    #[error("`{}` is not a valid scope (RFC 6749 §3.3 allows printable ASCII except space, `\"` and `\\`)", shown(.token))]
    InvalidToken {
        /// The token as given.
        token: String,
    },
}

/// The start of a refused token, escaped so that it prints on one line.
fn shown(token: &str) -> String {
    token
        .chars()
        .take(ERROR_TOKEN_CHARS)
        .flat_map(char::escape_debug)
        .collect()
}

/// Whether `token` is a `scope-token` of RFC 6749 §3.3.
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// An ordered set of OAuth scope tokens (RFC 6749 §3.3).
///
/// Tokens keep the order in which they were first seen (the order of the `scope` parameter,
/// which is the order Tessera's OAuth endpoints write back); a repeated token is kept once.
/// Equality compares that order too: two values are equal exactly when they print alike; compare
/// as sets with [`Scopes::is_subset_of`] both ways. Serde reads and writes the space-delimited
/// string; [`serde_vec`] reads and writes an array of tokens instead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Scopes {
    /// Distinct, valid tokens, in first-seen order. Scope lists are short (a handful to a few
    /// dozen), so a vector with linear lookups beats hashing.
    tokens: Vec<String>,
}

impl Scopes {
    /// No scope.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a space-delimited `scope` value (RFC 6749 §3.3). Empty segments (leading,
    /// trailing or repeated spaces) are skipped, as Tessera has always read them; an empty
    /// string is the empty set.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        s.split(' ')
            .filter(|t| !t.is_empty())
            .try_fold(Self::new(), |mut scopes, token| {
                scopes.insert(token)?;
                Ok(scopes)
            })
    }

    /// Adds `token` at the end unless it is already present; returns whether it was added.
    pub fn insert(&mut self, token: &str) -> Result<bool, ScopeError> {
        if !is_scope_token(token) {
            return Err(ScopeError::InvalidToken {
                token: token.to_owned(),
            });
        }
        if self.contains(token) {
            return Ok(false);
        }
        self.tokens.push(token.to_owned());
        Ok(true)
    }

    /// Whether `token` is in the set.
    pub fn contains(&self, token: &str) -> bool {
        self.tokens.iter().any(|t| t == token)
    }

    /// The tokens, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.tokens.iter()
    }

    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there is no token.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether every token of `self` is in `other` (order does not matter).
    pub fn is_subset_of(&self, other: &Scopes) -> bool {
        self.tokens.iter().all(|t| other.contains(t))
    }

    /// The tokens of `self` that are also in `other`, in the order of `self`.
    pub fn intersection(&self, other: &Scopes) -> Scopes {
        Scopes {
            tokens: self
                .tokens
                .iter()
                .filter(|t| other.contains(t))
                .cloned()
                .collect(),
        }
    }

    /// The tokens in lexicographic order (the order API keys store their scopes in).
    pub fn sorted(mut self) -> Scopes {
        self.tokens.sort_unstable();
        self
    }

    /// The tokens as a vector, in order (for records that store scopes as an array).
    pub fn into_vec(self) -> Vec<String> {
        self.tokens
    }
}

impl TryFrom<Vec<String>> for Scopes {
    type Error = ScopeError;

    /// Checks and deduplicates tokens stored as an array, keeping first-seen order.
    fn try_from(tokens: Vec<String>) -> Result<Self, ScopeError> {
        tokens.iter().try_fold(Self::new(), |mut scopes, token| {
            scopes.insert(token)?;
            Ok(scopes)
        })
    }
}

impl From<Scopes> for Vec<String> {
    fn from(scopes: Scopes) -> Self {
        scopes.into_vec()
    }
}

impl FromStr for Scopes {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, ScopeError> {
        Self::parse(s)
    }
}

impl fmt::Display for Scopes {
    /// The `scope` value: the tokens joined by single spaces, in order (RFC 6749 §3.3).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut tokens = self.tokens.iter();
        if let Some(first) = tokens.next() {
            f.write_str(first)?;
            for token in tokens {
                f.write_str(" ")?;
                f.write_str(token)?;
            }
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a Scopes {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Scopes::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde for a [`Scopes`] field stored as an array of tokens (`["a", "b"]`) rather than the
/// space-delimited string: `#[serde(with = "tessera_core::scope::serde_vec")]`.
pub mod serde_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::scope::Scopes;

    /// Writes the tokens as an array, in order.
    pub fn serialize<S: Serializer>(scopes: &Scopes, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(scopes.iter())
    }

    /// Reads an array of tokens, checked and deduplicated.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Scopes, D::Error> {
        let tokens = Vec::<String>::deserialize(d)?;
        Scopes::try_from(tokens).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use proptest::prelude::*;

    use super::*;

    fn scopes(s: &str) -> Scopes {
        Scopes::parse(s).unwrap()
    }

    #[test]
    fn parses_in_first_seen_order_without_repeats() {
        let s = scopes("  contacts.write openid contacts.write  offline_access ");
        assert_eq!(
            s.iter().map(String::as_str).collect::<Vec<_>>(),
            ["contacts.write", "openid", "offline_access"]
        );
        assert_eq!(s.to_string(), "contacts.write openid offline_access");
        assert_eq!(s.len(), 3);
        assert!(s.contains("openid") && !s.contains("open"));
        assert!(scopes("").is_empty() && scopes("   ").is_empty());
        assert_eq!(Scopes::new().to_string(), "");
        assert_eq!("a b".parse::<Scopes>(), Ok(scopes("a b")));
    }

    #[test]
    fn rfc6749_token_characters() {
        // Every printable ASCII character but space, `"` and `\` (RFC 6749 §3.3).
        let all: String = (0x21u8..=0x7E)
            .filter(|b| !matches!(b, b'"' | b'\\'))
            .map(char::from)
            .collect();
        assert_eq!(scopes(&all).len(), 1);
        for bad in ["a\"b", "a\\b", "tab\there", "nl\n", "é", "\u{7f}", "\u{0}"] {
            assert_eq!(
                Scopes::parse(&format!("ok {bad}")),
                Err(ScopeError::InvalidToken { token: bad.into() }),
                "{bad:?}"
            );
        }
        assert!(!is_scope_token(""));
        let mut s = Scopes::new();
        assert!(s.insert("").is_err());
        assert_eq!(s.insert("a"), Ok(true));
        assert_eq!(s.insert("a"), Ok(false));
    }

    #[test]
    fn errors_are_lowercase_escaped_and_bounded() {
        let err = Scopes::parse(&format!("a\n{}", "x".repeat(500))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("`a\\nxxx"), "{msg}");
        assert!(msg.len() < 260, "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn subset_and_intersection() {
        let granted = scopes("contacts.read contacts.write openid");
        let asked = scopes("openid contacts.read");
        assert!(asked.is_subset_of(&granted));
        assert!(!granted.is_subset_of(&asked));
        assert!(Scopes::new().is_subset_of(&asked));
        let both = granted.intersection(&scopes("openid users.read contacts.read"));
        assert_eq!(both.to_string(), "contacts.read openid");
        assert_eq!(scopes("b a c").sorted().to_string(), "a b c");
    }

    #[test]
    fn serde_forms() {
        let s = scopes("openid contacts.read");
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!("openid contacts.read")
        );
        let back: Scopes = serde_json::from_str(r#""openid  contacts.read openid""#).unwrap();
        assert_eq!(back, s);
        assert!(serde_json::from_str::<Scopes>(r#""a\"b""#).is_err());

        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Record {
            #[serde(with = "serde_vec")]
            scopes: Scopes,
        }
        let r = Record { scopes: s.clone() };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"{"scopes":["openid","contacts.read"]}"#);
        assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), r);
        assert!(serde_json::from_str::<Record>(r#"{"scopes":["a b"]}"#).is_err());
        assert_eq!(
            Scopes::try_from(vec!["x".to_owned(), "y".to_owned(), "x".to_owned()]).map(Vec::from),
            Ok(vec!["x".to_owned(), "y".to_owned()])
        );
    }

    fn arb_token() -> impl Strategy<Value = String> {
        // A small alphabet so that sets overlap, plus every allowed punctuation character.
        prop_oneof!["[a-d]{1,2}", "[!#-\\[\\]-~]{1,6}",]
    }

    fn arb_scopes() -> impl Strategy<Value = Scopes> {
        proptest::collection::vec(arb_token(), 0..8).prop_map(|v| Scopes::try_from(v).unwrap())
    }

    proptest! {
        /// `Display` then parse gives the same value (same tokens, same order).
        #[test]
        fn display_parse_round_trip(s in arb_scopes()) {
            let text = s.to_string();
            prop_assert_eq!(Scopes::parse(&text), Ok(s.clone()));
            let json = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(serde_json::from_str::<Scopes>(&json).unwrap(), s);
        }

        /// The intersection is a subset of both sides, and holds every common token.
        #[test]
        fn intersection_is_the_greatest_common_subset(a in arb_scopes(), b in arb_scopes()) {
            let both = a.intersection(&b);
            prop_assert!(both.is_subset_of(&a) && both.is_subset_of(&b));
            for t in &a {
                prop_assert_eq!(both.contains(t), b.contains(t));
            }
            prop_assert_eq!(a.is_subset_of(&b), both == a);
        }

        /// Subset is reflexive and transitive, and ignores order.
        #[test]
        fn subset_is_a_preorder(a in arb_scopes(), b in arb_scopes(), c in arb_scopes()) {
            prop_assert!(a.is_subset_of(&a));
            prop_assert!(a.is_subset_of(&a.clone().sorted()) && a.clone().sorted().is_subset_of(&a));
            if a.is_subset_of(&b) && b.is_subset_of(&c) {
                prop_assert!(a.is_subset_of(&c));
            }
        }
    }
}
