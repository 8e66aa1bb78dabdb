//! The JOSE header of Tessera's tokens (RFC 7515 §4): the token types a `typ` header names
//! (RFC 9068 §2.1 `at+jwt`, OIDC `JWT`) and the pre-encoded header a signing key writes.
//! A leaf module: signing keys and JWT verification both build on it, and it imports neither.
//! INVARIANT: a header Tessera writes carries exactly `alg`, `typ` and `kid`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;

use crate::jwk::Algorithm;

/// What a token is for, as its `typ` header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenType {
    /// An OAuth access token: `typ: at+jwt` (RFC 9068 §2.1).
    AccessToken = 0,
    /// An OpenID Connect id token: `typ: JWT`.
    IdToken = 1,
}

impl TokenType {
    /// The `typ` header value Tessera writes.
    pub fn header_value(self) -> &'static str {
        match self {
            TokenType::AccessToken => "at+jwt",
            TokenType::IdToken => "JWT",
        }
    }

    /// Whether a `typ` header value names this type. Media types compare case-insensitively
    /// and may carry the `application/` prefix (RFC 7515 §4.1.9).
    pub(crate) fn matches(self, typ: &str) -> bool {
        let short = match typ.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
            _ => typ,
        };
        short.eq_ignore_ascii_case(self.header_value())
    }
}

/// The base64url headers of a key's tokens, one per [`TokenType`], in that order.
pub(crate) fn cached_headers(alg: Algorithm, kid: &str) -> [String; 2] {
    [TokenType::AccessToken, TokenType::IdToken].map(|typ| {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'a str,
            typ: &'a str,
            kid: &'a str,
        }
        let header = Header {
            alg: alg.as_str(),
            typ: typ.header_value(),
            kid,
        };
        // Serializing three strings cannot fail.
        let json = serde_json::to_vec(&header).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    })
}
