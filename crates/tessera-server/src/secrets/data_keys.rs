//! Per-agency data keys: each agency's 32-byte key, wrapped under the master key in
//! `agency_data_keys`, created on first use, cached unwrapped in memory. `seal`/`open` encrypt
//! an agency's secret and personal data (XChaCha20-Poly1305, bound to the agency and the
//! caller's context).
//! INVARIANT: creation is race-free (insert-if-absent, then everyone reads the one stored row);
//! a deleted agency's key is deleted with it and never recreated, and `open` then fails with
//! the distinct `Shredded` error, whoever holds the master key.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rand::rngs::OsRng;
use tessera_core::AgencyId;
use tessera_store::{DataKeyRow, Store, StoreError, TenantScope};
use tessera_token::SecretBytes;
use zeroize::Zeroizing;

use super::error::{unwrap32, SecretsError};
use super::master::MasterRing;

/// At most this many unwrapped keys are cached (about 100 bytes each); when full, a random
/// half is dropped. Clearing all of it (as it once did, at 100k) made a platform of 100k
/// agencies re-read every key at once, on the audit writer's path.
const MAX_CACHED: usize = 1 << 18;

/// Drops about half of a full cache's entries, chosen at random: amortised O(1) per insert,
/// and no cliff where every entry is read again at once.
pub(super) fn shed_half<K, V>(cache: &mut HashMap<K, V>) {
    use rand::Rng as _;
    let mut rng = rand::thread_rng();
    cache.retain(|_, _| rng.gen_bool(0.5));
}

/// Why a data key could not seal or open a value.
#[derive(Debug, thiserror::Error)]
pub enum DataKeyError {
    /// The agency's data key was destroyed (the agency was deleted): the value is unreadable
    /// for good.
    #[error("the agency's data key was destroyed: the value is erased")]
    Shredded,
    /// The value does not open under the agency's key (altered, or another context).
    #[error("the sealed value does not open under the agency's data key")]
    Unauthentic,
    /// The key could not be loaded or unwrapped.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

impl From<StoreError> for DataKeyError {
    fn from(e: StoreError) -> Self {
        Self::Secrets(SecretsError::Store(e))
    }
}

/// A person in an agency: (agency, user id).
pub(super) type PersonRef = (AgencyId, String);

/// The data keys of every agency this node has used.
pub struct DataKeys {
    store: Arc<dyn Store>,
    ring: Arc<MasterRing>,
    cache: RwLock<HashMap<AgencyId, Arc<SecretBytes<32>>>>,
    /// Unwrapped person keys (`secrets::person_keys`), for sealing only; `None`: erased.
    pub(super) persons: RwLock<HashMap<PersonRef, Option<Arc<SecretBytes<32>>>>>,
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKeys").finish_non_exhaustive()
    }
}

/// The purpose a data key is wrapped for (binds the wrapped key to its agency).
fn wrap_purpose(agency: &AgencyId) -> String {
    format!("data-key/{agency}")
}

/// The associated data of a sealed value: the agency, then the caller's context.
fn full_aad(agency: &AgencyId, aad: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(agency.as_str().len() + 1 + aad.len());
    full.extend_from_slice(agency.as_str().as_bytes());
    full.push(0);
    full.extend_from_slice(aad);
    full
}

impl DataKeys {
    /// Data keys stored in `store`, wrapped with `ring`.
    pub fn new(store: Arc<dyn Store>, ring: Arc<MasterRing>) -> Self {
        Self {
            store,
            ring,
            cache: RwLock::new(HashMap::new()),
            persons: RwLock::new(HashMap::new()),
        }
    }

    /// The store the keys live in.
    pub(super) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The agency's key if this node holds it unwrapped (no store read).
    pub fn cached(&self, agency: &AgencyId) -> Option<Arc<SecretBytes<32>>> {
        self.cache.read().ok()?.get(agency).cloned()
    }

    /// Drops an agency's unwrapped key from memory (its agency was deleted).
    pub fn forget(&self, agency: &AgencyId) {
        if let Ok(mut c) = self.cache.write() {
            c.remove(agency);
        }
        if let Ok(mut c) = self.persons.write() {
            c.retain(|(a, _), _| a != agency);
        }
    }

    /// The agency's key: cached, or unwrapped from its row; with `create`, made (once) when
    /// the agency has none. `Shredded` when the agency has none and may not get one.
    pub async fn key(
        &self,
        scope: &TenantScope,
        create: bool,
        now: i64,
    ) -> Result<Arc<SecretBytes<32>>, DataKeyError> {
        let agency = scope.agency();
        if let Some(k) = self.cached(agency) {
            return Ok(k);
        }
        let row = match self.store.data_key(scope).await? {
            Some(row) => row,
            None if create => {
                let wrap = self.ring.for_wrapping(self.store.as_ref(), now).await?;
                let fresh = SecretBytes::<32>::random(&mut OsRng);
                let row = DataKeyRow {
                    master_key_id: wrap.key_id(),
                    sealed: wrap.wrap(&wrap_purpose(agency), fresh.expose(), &mut OsRng),
                    created_at: now,
                };
                // Insert-if-absent: of racing creators one row wins, and all use it.
                self.store.insert_data_key(scope, &row).await?;
                self.store
                    .data_key(scope)
                    .await?
                    .ok_or(DataKeyError::Shredded)?
            }
            None => return Err(DataKeyError::Shredded),
        };
        let master = self.ring.key(&row.master_key_id).await?;
        let key = Arc::new(unwrap32(&master, &wrap_purpose(agency), &row.sealed)?);
        if let Ok(mut c) = self.cache.write() {
            if c.len() >= MAX_CACHED {
                shed_half(&mut c);
            }
            c.insert(agency.clone(), key.clone());
        }
        Ok(key)
    }

    /// Seals `plaintext` under the agency's data key (created on first use), bound to `aad`.
    pub async fn seal(
        &self,
        scope: &TenantScope,
        aad: &[u8],
        plaintext: &[u8],
        now: i64,
    ) -> Result<Vec<u8>, DataKeyError> {
        let key = self.key(scope, true, now).await?;
        Ok(Self::seal_with(&key, scope.agency(), aad, plaintext))
    }

    /// Seals with a key already in hand (the audit writer's batches).
    pub fn seal_with(
        key: &SecretBytes<32>,
        agency: &AgencyId,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Vec<u8> {
        tessera_token::envelope::seal(key, plaintext, &full_aad(agency, aad), &mut OsRng)
    }

    /// Opens a value [`DataKeys::seal`] sealed for the same agency and `aad`.
    pub async fn open(
        &self,
        scope: &TenantScope,
        aad: &[u8],
        sealed: &[u8],
        now: i64,
    ) -> Result<Zeroizing<Vec<u8>>, DataKeyError> {
        let key = self.key(scope, false, now).await?;
        Self::open_with(&key, scope.agency(), aad, sealed)
    }

    /// Opens with a key already in hand.
    pub fn open_with(
        key: &SecretBytes<32>,
        agency: &AgencyId,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, DataKeyError> {
        tessera_token::envelope::open(key, sealed, &full_aad(agency, aad))
            .map_err(|_| DataKeyError::Unauthentic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_cache_sheds_about_half_not_all() {
        let mut c: HashMap<u32, u32> = (0..10_000).map(|i| (i, i)).collect();
        shed_half(&mut c);
        assert!((4_000..6_000).contains(&c.len()), "{} left", c.len());
        assert!(c.iter().all(|(k, v)| k == v));
    }
}
