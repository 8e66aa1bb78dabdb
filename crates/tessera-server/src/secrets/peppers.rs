//! The live peppers of this node: the current one hashes every new credential and every lookup
//! first (so the cache-hit path costs one HMAC, as before versions existed); the older live ones
//! are tried only after a miss. A miss also reloads the stored peppers (at most once per
//! `MISS_RELOAD_EVERY`, so a spray of invalid credentials costs no store read each), so a
//! credential hashed on another node under a version created a moment ago is found here too.
//! INVARIANT: versions only grow; a retired version (its material destroyed) is dropped at the
//! next reload; the set is swapped whole, so a reader sees one consistent set.

use std::sync::{Arc, RwLock};

use tessera_store::Store;
use tessera_token::{CredentialHash, Pepper};

use super::error::SecretsError;
use super::master::MasterRing;
use super::root::{open_row, pepper_version, PEPPER};

/// The shortest time between two reads of the stored peppers caused by lookup misses.
pub const MISS_RELOAD_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

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
    /// Held while the stored peppers are read; holds when the last read after a miss began.
    reload: tokio::sync::Mutex<Option<std::time::Instant>>,
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
            reload: tokio::sync::Mutex::new(None),
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
        if let Err(e) = self.reload_after_miss(store, ring).await {
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
        self.read_stored(store, ring).await
    }

    /// [`Peppers::reload`] for a lookup that missed: misses are what an attacker spraying
    /// invalid credentials makes, so the stored peppers are read at most once per
    /// [`MISS_RELOAD_EVERY`], and callers that queued behind a read take its result.
    async fn reload_after_miss(
        &self,
        store: &dyn Store,
        ring: &MasterRing,
    ) -> Result<bool, SecretsError> {
        let asked = std::time::Instant::now();
        let mut last = self.reload.lock().await;
        if last.is_some_and(|t| t >= asked || asked.duration_since(t) < MISS_RELOAD_EVERY) {
            return Ok(false);
        }
        *last = Some(std::time::Instant::now());
        self.read_stored(store, ring).await
    }

    /// Reads the stored peppers and swaps in the live set when it changed (the caller holds
    /// `reload`).
    async fn read_stored(
        &self,
        store: &dyn Store,
        ring: &MasterRing,
    ) -> Result<bool, SecretsError> {
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
