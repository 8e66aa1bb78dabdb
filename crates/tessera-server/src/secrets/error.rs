//! The secrets' error (stable codes, no key material) and the wrapping helpers every secret
//! shares.
//! INVARIANT: a stored secret is wrapped with its purpose and version as associated data, so a
//! wrapped value moved to another row does not open.

use tessera_store::StoreError;
use tessera_token::{MasterKey, SecretBytes};

/// Why a secret could not be loaded, unwrapped or rotated. No variant carries key material.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The master key's source failed (its own stable code: `MasterSourceError::code`).
    #[error(transparent)]
    Source(#[from] tessera_token::MasterSourceError),
    /// A stored value is wrapped under a master key this node's source does not hold.
    #[error("a stored secret is wrapped under master key `{0}`, which the key source does not hold (add it back, after the current key, until `tessera keys rotate-master` has run)")]
    UnknownMasterKey(String),
    /// A stored value does not open under the key its row names (altered, or a wrong key).
    #[error("stored secret `{0}` does not open under its master key")]
    Unauthentic(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else (a task that could not run).
    #[error("{0}")]
    Internal(String),
}

impl SecretsError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Source(e) => e.code(),
            Self::UnknownMasterKey(_) => "master_key_unknown",
            Self::Unauthentic(_) => "secret_unauthentic",
            Self::Store(_) => "store_unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

/// The associated data a stored secret is wrapped with: its purpose and version.
pub(crate) fn wrap_purpose(purpose: &str, version: i64) -> String {
    format!("{purpose}/{version}")
}

/// Opens a value wrapped under `key` as exactly 32 bytes.
pub(crate) fn unwrap32(
    key: &MasterKey,
    purpose: &str,
    sealed: &[u8],
) -> Result<SecretBytes<32>, SecretsError> {
    key.unwrap(purpose, sealed)
        .ok()
        .and_then(|pt| SecretBytes::from_slice(&pt))
        .ok_or_else(|| SecretsError::Unauthentic(purpose.to_owned()))
}
