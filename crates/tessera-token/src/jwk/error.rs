//! Why a JWK (RFC 7517 §4) or a JWK set (RFC 7517 §5) cannot be used for verification.
//! INVARIANT: messages are lowercase and name members, never key material.

/// Why a JWK could not be used as a verification key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    /// The JWK is not a JSON object.
    #[error("jwk is not a json object")]
    NotAnObject,
    /// A required member is missing or not a string.
    #[error("jwk member `{0}` is missing or not a string")]
    MissingMember(&'static str),
    /// `kty`/`crv` name a key type Tessera does not verify with.
    #[error("jwk key type is not supported (expected `OKP`/`Ed25519`, `EC`/`P-256` or `RSA`)")]
    UnsupportedKeyType,
    /// `alg` is present and is not the one algorithm this key type is used with.
    #[error("jwk `alg` does not match its key type")]
    AlgorithmMismatch,
    /// `use` is present and is not `sig`.
    #[error("jwk `use` is not `sig`")]
    NotForSignatures,
    /// A coordinate is not canonical unpadded base64url of the right length.
    #[error("jwk member `{0}` is not a base64url coordinate of the right length")]
    BadCoordinate(&'static str),
    /// The coordinates are not a usable point (off the curve, or of small order).
    #[error("jwk public key is not a valid point of its curve")]
    InvalidPoint,
    /// The RSA modulus or exponent is unusable: a modulus outside 2048 to 4096 bits or even,
    /// an exponent that is even, below 3 or not below the modulus.
    #[error("jwk rsa public key is invalid or of an unsupported size")]
    InvalidRsaKey,
    /// A JWK set has no `keys` array.
    #[error("jwk set has no `keys` array")]
    NotASet,
}
