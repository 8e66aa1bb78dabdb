//! Tessera's credential formats and secret handling: API keys, opaque tokens, peppered
//! credential hashes, the master key and password hashing.
//! INVARIANT: no secret is ever printed (Debug/Display say `[redacted]`), secrets zeroize on
//! drop, secrets are compared in constant time, and randomness comes in as a parameter
//! (convenience `*_os` functions use `OsRng`). The only IO is the master key file.

mod base62;
mod hex;

pub mod api_key;
pub mod ct;
pub mod master_key;
pub mod opaque;
pub mod password;
pub mod pepper;
pub mod secret;

pub use api_key::{
    check_api_key_format, generate_api_key, generate_api_key_os, looks_like_api_key,
    ApiKeyFormatError, API_KEY_BODY_LEN, API_KEY_CHECKSUM_LEN, API_KEY_LEN, API_KEY_PREFIX,
};
pub use ct::ct_eq;
pub use master_key::{MasterKey, MasterKeyError};
pub use opaque::{generate_opaque_token, generate_opaque_token_os, OPAQUE_TOKEN_BODY_LEN};
pub use password::{
    check_password_policy, hash_password, hash_password_os, verify_dummy, verify_password,
    PasswordError, PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS,
};
pub use pepper::{CredentialHash, CredentialHashParseError, Pepper};
pub use secret::{SecretBytes, SecretString};
