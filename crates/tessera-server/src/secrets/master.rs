//! This node's master keys, from their source (file, variable or command), reloaded when a
//! stored value names a key id the node does not hold, or when the database's `active` key is
//! not this node's current one (a rotation began elsewhere).
//! INVARIANT: a new value is only ever wrapped under the database's `active` master key, and
//! only once this node holds it; an unknown key id is an error, never a guess.

use std::sync::{Arc, RwLock};

use tessera_store::Store;
use tessera_token::{MasterKey, MasterKeySource, MasterKeys};

use super::error::SecretsError;

/// The master keys this node holds.
pub struct MasterRing {
    source: Option<MasterKeySource>,
    keys: RwLock<Arc<MasterKeys>>,
    reload: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for MasterRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterRing")
            .field(
                "source",
                &self.source.as_ref().map(MasterKeySource::describe),
            )
            .field(
                "key_ids",
                &self
                    .snapshot()
                    .all()
                    .iter()
                    .map(MasterKey::key_id)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl MasterRing {
    /// Fixed keys with no source to reload (tests, and the `derived` material).
    pub fn fixed(keys: MasterKeys) -> Self {
        Self {
            source: None,
            keys: RwLock::new(Arc::new(keys)),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    /// Loads the keys from `source` (blocking: call at start-up, or from `spawn_blocking`).
    /// Returns the ring and whether a key file was just created.
    pub fn from_source(source: MasterKeySource) -> Result<(Self, bool), SecretsError> {
        let (keys, created) = source.load()?;
        Ok((
            Self {
                source: Some(source),
                keys: RwLock::new(Arc::new(keys)),
                reload: tokio::sync::Mutex::new(()),
            },
            created,
        ))
    }

    /// The keys as last loaded.
    pub fn snapshot(&self) -> Arc<MasterKeys> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The current key (the source's first).
    pub fn current(&self) -> MasterKey {
        self.snapshot().current().clone()
    }

    /// Reads the source again (a no-op for fixed keys). Concurrent callers wait for one read.
    pub async fn reload(&self) -> Result<(), SecretsError> {
        let Some(source) = self.source.clone() else {
            return Ok(());
        };
        let _one = self.reload.lock().await;
        let (keys, _) = tokio::task::spawn_blocking(move || source.load())
            .await
            .map_err(|e| SecretsError::Internal(format!("key source task failed: {e}")))??;
        let ids: Vec<String> = keys.all().iter().map(MasterKey::key_id).collect();
        tracing::info!(current = %ids.first().map_or("", String::as_str), keys = ids.len(), "master keys reloaded");
        match self.keys.write() {
            Ok(mut k) => *k = Arc::new(keys),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(keys),
        }
        Ok(())
    }

    /// The key with id `key_id`, reloading the source once if this node does not hold it.
    pub async fn key(&self, key_id: &str) -> Result<MasterKey, SecretsError> {
        if let Some(k) = self.snapshot().by_id(key_id) {
            return Ok(k.clone());
        }
        self.reload().await?;
        self.snapshot()
            .by_id(key_id)
            .cloned()
            .ok_or_else(|| SecretsError::UnknownMasterKey(key_id.to_owned()))
    }

    /// The key new values are wrapped under: the database's `active` key (recorded as this
    /// node's current one if the database has none yet).
    pub async fn for_wrapping(
        &self,
        store: &dyn Store,
        now: i64,
    ) -> Result<MasterKey, SecretsError> {
        let active = store
            .master_keys()
            .await?
            .into_iter()
            .find(|k| k.state == "active");
        match active {
            Some(row) => self.key(&row.key_id).await,
            None => {
                let current = self.current();
                store.activate_master_key(&current.key_id(), now).await?;
                Ok(current)
            }
        }
    }
}
