//! Tessera's credential formats and secret handling: API keys, opaque tokens, peppered
//! credential hashes, the master key, password hashing, envelope encryption, signing keys with
//! their rotation and JWKS, and JWT access and id tokens.
//! INVARIANT: no secret is ever printed (Debug/Display say `[redacted]`), secrets zeroize on
//! drop, secrets are compared in constant time, and time and randomness come in as parameters
//! (convenience `*_os` functions use `OsRng`). The only IO is the master key's source (a
//! file, a variable or a command).

mod base62;
mod hex;

pub mod api_key;
pub mod ct;
pub mod envelope;
pub mod jose;
pub mod jwk;
pub mod jwt;
pub mod keyring;
pub mod master_key;
pub mod master_source;
pub mod opaque;
pub mod password;
pub mod pepper;
pub mod rotation;
pub mod secret;
pub mod signing_key;

pub use api_key::{
    check_api_key_format, generate_api_key, generate_api_key_os, looks_like_api_key,
    ApiKeyFormatError, API_KEY_BODY_LEN, API_KEY_CHECKSUM_LEN, API_KEY_LEN, API_KEY_PREFIX,
};
pub use ct::ct_eq;
pub use envelope::EnvelopeError;
pub use jwk::{Algorithm, JwkError, JwkSet, VerificationKey};
pub use jwt::{
    encode_access_token, encode_id_token, verify, verify_id_token, AccessClaims, Actor, IdClaims,
    JwtError, KeySource, Tenant, TokenType, Validation,
};
pub use keyring::{KeyRecord, KeyRing, KeyRingError, KeyState};
pub use master_key::{MasterKey, MasterKeyError};
pub use master_source::{MasterKeySource, MasterKeys, MasterSourceError};
pub use opaque::{generate_opaque_token, generate_opaque_token_os, OPAQUE_TOKEN_BODY_LEN};
pub use password::{
    check_password_policy, hash_password, hash_password_os, verify_dummy, verify_password,
    PasswordError, PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS,
};
pub use pepper::{CredentialHash, CredentialHashParseError, Pepper};
pub use rotation::{
    apply_plan, plan_manual_rotation, plan_rotation, RotationPolicy, RotationPolicyError,
    StaleTransition, Transition,
};
pub use secret::{SecretBytes, SecretString};
pub use signing_key::{SigningKey, SigningKeyError, SIGNING_KEYS_PURPOSE};
