//! Why a JWT was refused: one variant per check of RFC 7519 §7.2 and RFC 8725 §3.
//! INVARIANT: messages are lowercase and never echo the token or a claim value.

use crate::jwk::Algorithm;

/// Why a token was refused. Messages are lowercase and never echo the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts, a header or payload that is not the expected JSON, or too long.
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    /// `alg: none` (RFC 8725 §3.1): an unsigned token.
    #[error("token is unsigned (`alg: none`)")]
    AlgNone,
    /// `alg` is not the algorithm of the key named by `kid` (e.g. `HS256`, or `RS256` for an
    /// Ed25519 key): each key verifies with exactly one algorithm (RFC 8725 §3.1).
    #[error("token algorithm is not the algorithm of its key ({expected})")]
    AlgorithmMismatch {
        /// The key's algorithm.
        expected: Algorithm,
    },
    /// `kid` is missing or names no published key of the issuer (unknown, retired or dropped).
    #[error("token key id is missing or names no current key of the issuer")]
    UnknownKey,
    /// The header points at keys or certificates to fetch or trust (`jku`, `x5u`, `jwk`, `x5c`).
    #[error("token header carries `{0}`, which is never trusted")]
    ForbiddenHeader(&'static str),
    /// The header lists critical extensions (`crit`), none of which are supported.
    #[error("token header carries `crit`, and no critical extension is supported")]
    CriticalHeader,
    /// The `typ` header is missing or not the expected type (e.g. an id token used as an access
    /// token).
    #[error("token type is not `{expected}`")]
    WrongType {
        /// The expected `typ`.
        expected: &'static str,
    },
    /// The signature does not verify.
    #[error("token signature is invalid")]
    BadSignature,
    /// `iss` is not the expected issuer.
    #[error("token issuer is not the expected issuer")]
    WrongIssuer,
    /// `aud` does not include the expected audience.
    #[error("token audience does not include the expected audience")]
    WrongAudience,
    /// `exp` has passed (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// A required claim is missing.
    #[error("token lacks the required claim `{0}`")]
    MissingClaim(&'static str),
}
