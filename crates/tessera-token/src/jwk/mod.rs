//! Public keys as JSON Web Keys (RFC 7517), their thumbprints (RFC 7638) and key ids, for the
//! three algorithms Tessera signs with: `EdDSA` over Ed25519 (RFC 8037), `ES256` (RFC 7518
//! §3.4) and `RS256` (RFC 7518 §3.3). INVARIANT: a [`VerificationKey`] is bound to exactly one
//! algorithm, holds a point that is on its curve and not of small order (or an RSA modulus of
//! [`RSA_MIN_BITS`] to [`RSA_MAX_BITS`] bits), and its JWK round-trips through
//! [`VerificationKey::from_jwk`].
//!
//! Layout, imports flowing down the list: `algorithm` and `error` (leaves), `public_key`
//! (material, thumbprint, kid), `verification_key` (JWK import and export), `set` (JWK sets).

mod algorithm;
mod error;
mod public_key;
mod set;
mod verification_key;

pub use algorithm::Algorithm;
pub use error::JwkError;
pub(crate) use public_key::PublicKey;
pub use public_key::{KID_THUMBPRINT_BYTES, RSA_MAX_BITS, RSA_MIN_BITS};
pub use set::JwkSet;
pub use verification_key::VerificationKey;
