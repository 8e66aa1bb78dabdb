//! The installation's secrets, stored wrapped under the master key instead of derived from it:
//! the master keys this node holds (`master`), the installation-wide secrets (`root`: the
//! versioned peppers, the signing-key and cookie keys), the per-agency data keys (`data_keys`),
//! and the master-key and pepper rotations (`rotate`).
//! INVARIANT: the master key only wraps; rotating it rewraps rows and changes no hash, token or
//! sealed value. Unwrapped material lives in memory only, in types that zeroize on drop and
//! print `[redacted]`.

pub mod data_keys;
pub mod master;
pub mod peppers;
pub mod personal;
pub mod root;
pub mod rotate;

use std::sync::Arc;

use tessera_store::{Store, StoreError};
use tessera_token::{MasterKey, MasterKeys, SecretBytes};

pub use data_keys::{DataKeyError, DataKeys};
pub use master::MasterRing;
pub use peppers::Peppers;
pub use root::RootSecrets;

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

/// Everything the services need from the secrets: the master ring, and the unwrapped
/// installation-wide secrets.
#[derive(Debug)]
pub struct Material {
    /// This node's master keys.
    pub ring: Arc<MasterRing>,
    /// The installation-wide secrets, unwrapped.
    pub root: RootSecrets,
}

impl Material {
    /// The material an installation had before secrets were stored: derived from `master`
    /// (the first version of each stored secret is exactly this), with a fixed ring. Tests use
    /// it; `serve` uses [`Material::load`].
    pub fn derived(master: &MasterKey) -> Self {
        Self {
            ring: Arc::new(MasterRing::fixed(MasterKeys::single(master.clone()))),
            root: RootSecrets::derived(master),
        }
    }

    /// Loads the stored secrets (creating their first versions from the legacy derivations on
    /// a database that has none), unwrapped with `ring`.
    pub async fn load(
        store: &dyn Store,
        ring: Arc<MasterRing>,
        now: i64,
    ) -> Result<Self, SecretsError> {
        let root = RootSecrets::load_or_init(store, &ring, now).await?;
        Ok(Self { ring, root })
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
