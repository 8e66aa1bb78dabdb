//! The live peppers of this node: the current one hashes every new credential and every lookup
//! first (so the cache-hit path costs one HMAC, as before versions existed); the older live ones
//! are tried only after a miss. A miss also reloads the stored peppers, so a credential hashed
//! on another node under a version created a millisecond ago is found here too.
//! INVARIANT: versions only grow; a retired version (its material destroyed) is dropped at the
//! next reload; the set is swapped whole, so a reader sees one consistent set.

use std::sync::{Arc, RwLock};

use tessera_store::Store;
use tessera_token::{CredentialHash, Pepper};

use super::error::SecretsError;
use super::master::MasterRing;
use super::root::{open_row, pepper_version, PEPPER};

/// One consistent set of live peppers, oldest first, never empty.
#[derive(Debug)]
pub struct PepperSet {
    live: Vec<Arc<Pepper>>,
}

impl PepperSet {
    /// The current (newest) pepper.
    pub fn current(&self) -> &Arc<Pepper> {
        // INVARIANT: `live` is never empty (checked by `Peppers::new` and `reload`).
        &self.live[self.live.len() - 1]
    }

    /// The live peppers older than the current one, newest first.
    pub fn older(&self) -> impl Iterator<Item = &Arc<Pepper>> {
        self.live.iter().rev().skip(1)
    }

    /// The live pepper of `version`, if any.
    pub fn version(&self, version: u32) -> Option<&Arc<Pepper>> {
        self.live.iter().find(|p| p.version() == version)
    }
}

/// The peppers, swappable as a whole.
pub struct Peppers {
    set: RwLock<Arc<PepperSet>>,
    reload: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Peppers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.snapshot();
        f.debug_struct("Peppers")
            .field(
                "versions",
                &set.live.iter().map(|p| p.version()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Peppers {
    /// The live peppers, oldest first; `None` when empty.
    pub fn new(peppers: Vec<Pepper>) -> Option<Self> {
        if peppers.is_empty() {
            return None;
        }
        let mut live: Vec<Arc<Pepper>> = peppers.into_iter().map(Arc::new).collect();
        live.sort_by_key(|p| p.version());
        Some(Self {
            set: RwLock::new(Arc::new(PepperSet { live })),
            reload: tokio::sync::Mutex::new(()),
        })
    }

    /// The current set.
    pub fn snapshot(&self) -> Arc<PepperSet> {
        match self.set.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The current pepper.
    pub fn current(&self) -> Arc<Pepper> {
        self.snapshot().current().clone()
    }

    /// The hash of `secret` under the current pepper (new credentials, first lookups).
    pub fn hash(&self, secret: &[u8]) -> CredentialHash {
        self.current().hash(secret)
    }

    /// The current pepper's version.
    pub fn version(&self) -> u32 {
        self.current().version()
    }

    /// The hash of `secret` under pepper `version`, if it is live.
    pub fn hash_with(&self, version: u32, secret: &[u8]) -> Option<CredentialHash> {
        self.snapshot().version(version).map(|p| p.hash(secret))
    }

    /// After a miss under the current pepper: reloads the stored peppers, then returns the
    /// hashes of `secret` under every live version but the one `tried` (newest first), with
    /// their versions. Lookups try them in order.
    pub async fn fallbacks(
        &self,
        store: &dyn Store,
        ring: &MasterRing,
        secret: &[u8],
        tried: u32,
    ) -> Vec<(u32, CredentialHash)> {
        if let Err(e) = self.reload(store, ring).await {
            tracing::warn!(error = %e, code = e.code(), "could not reload the peppers");
        }
        let set = self.snapshot();
        set.live
            .iter()
            .rev()
            .filter(|p| p.version() != tried)
            .map(|p| (p.version(), p.hash(secret)))
            .collect()
    }

    /// Reads the stored peppers and swaps in the live set when it changed. Concurrent callers
    /// wait for one read. Returns whether the set changed.
    pub async fn reload(&self, store: &dyn Store, ring: &MasterRing) -> Result<bool, SecretsError> {
        let _one = self.reload.lock().await;
        let rows: Vec<_> = store
            .root_secrets()
            .await?
            .into_iter()
            .filter(|r| r.purpose == PEPPER && r.retired_at.is_none())
            .collect();
        let current = self.snapshot();
        let same = rows.len() == current.live.len()
            && rows
                .iter()
                .all(|r| pepper_version(r).is_ok_and(|v| current.version(v).is_some()));
        if same || rows.is_empty() {
            return Ok(false);
        }
        let mut live = Vec::with_capacity(rows.len());
        for row in &rows {
            let version = pepper_version(row)?;
            live.push(match current.version(version) {
                Some(p) => p.clone(),
                None => Arc::new(Pepper::from_secret(version, open_row(ring, row).await?)),
            });
        }
        live.sort_by_key(|p| p.version());
        let versions: Vec<u32> = live.iter().map(|p| p.version()).collect();
        match self.set.write() {
            Ok(mut s) => *s = Arc::new(PepperSet { live }),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(PepperSet { live }),
        }
        tracing::info!(?versions, "peppers reloaded");
        Ok(true)
    }
}
