//! The material the services are built from: this node's master ring and the unwrapped
//! installation-wide secrets.
//! INVARIANT: `derived` and a first `load` of the same master key give the same values.

use std::sync::Arc;

use tessera_store::Store;
use tessera_token::{MasterKey, MasterKeys};

use super::error::SecretsError;
use super::master::MasterRing;
use super::root::RootSecrets;

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
