//! Stored secrets: the master keys seen, the installation-wide secrets wrapped under the master
//! key (peppers, key-encryption keys), and each agency's data key. Callers: the server's
//! `secrets` module and the `tessera keys` commands only. Nothing here is ever plaintext: every
//! `sealed` value is wrapped under the master key named by its `master_key_id`.
//!
//! INVARIANT: rewraps are compare-and-set on `master_key_id`, so a node that rewraps a row
//! another node already rewrapped changes nothing; an agency's data key is read and written
//! only in that agency's scope (row-level security on PostgreSQL).

use async_trait::async_trait;
use tessera_core::AgencyId;

use crate::error::StoreError;
use crate::scope::TenantScope;

/// One installation-wide secret (`purpose`, `version`), wrapped under a master key.
#[derive(Clone, PartialEq, Eq)]
pub struct RootSecretRow {
    /// `pepper`, `signing-keys`, `cookies`, …
    pub purpose: String,
    /// 1, 2, … (peppers rotate; the others have version 1).
    pub version: i64,
    /// The id of the master key that wraps `sealed`.
    pub master_key_id: String,
    /// The secret wrapped under that master key; empty once retired.
    pub sealed: Vec<u8>,
    /// Epoch ms.
    pub created_at: i64,
    /// When the material was destroyed (epoch ms).
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for RootSecretRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootSecretRow")
            .field("purpose", &self.purpose)
            .field("version", &self.version)
            .field("master_key_id", &self.master_key_id)
            .field("sealed_len", &self.sealed.len())
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

/// An agency's data key, wrapped under a master key.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKeyRow {
    /// The id of the master key that wraps `sealed`.
    pub master_key_id: String,
    /// The data key wrapped under that master key.
    pub sealed: Vec<u8>,
    /// Epoch ms.
    pub created_at: i64,
}

impl std::fmt::Debug for DataKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKeyRow")
            .field("master_key_id", &self.master_key_id)
            .field("sealed_len", &self.sealed.len())
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A master key as this database knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterKeyRow {
    /// The key's fingerprint (`mk_…`).
    pub key_id: String,
    /// `active`, `previous` or `retired`.
    pub state: String,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub retired_at: Option<i64>,
}

/// The secret store.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Every master key recorded, oldest first.
    async fn master_keys(&self) -> Result<Vec<MasterKeyRow>, StoreError>;
    /// Makes `key_id` the one `active` key (recording it if new); the key that was active
    /// becomes `previous`. One transaction.
    async fn activate_master_key(&self, key_id: &str, now: i64) -> Result<(), StoreError>;
    /// Marks a `previous` key `retired`. `false` when it is not `previous`.
    async fn retire_master_key(&self, key_id: &str, now: i64) -> Result<bool, StoreError>;

    /// Every installation-wide secret, by purpose then version.
    async fn root_secrets(&self) -> Result<Vec<RootSecretRow>, StoreError>;
    /// Stores a new secret; `false` (and nothing changes) when (`purpose`, `version`) exists.
    async fn insert_root_secret(&self, row: &RootSecretRow) -> Result<bool, StoreError>;
    /// Compare-and-set: replaces the wrapping of a live secret still wrapped under `from`.
    async fn rewrap_root_secret(
        &self,
        purpose: &str,
        version: i64,
        from: &str,
        to: &str,
        sealed: &[u8],
    ) -> Result<bool, StoreError>;
    /// Destroys a secret's material (sealed value emptied, `retired_at` set).
    async fn retire_root_secret(
        &self,
        purpose: &str,
        version: i64,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Every agency's id (deleted ones included), for the per-agency passes of the rotations.
    async fn all_agency_ids(&self) -> Result<Vec<AgencyId>, StoreError>;
    /// The agency's data key, if it has one.
    async fn data_key(&self, scope: &TenantScope) -> Result<Option<DataKeyRow>, StoreError>;
    /// Stores the agency's data key; `false` (nothing changes) when it has one already (or the
    /// agency is deleted: a deleted agency never gets a key again).
    async fn insert_data_key(
        &self,
        scope: &TenantScope,
        row: &DataKeyRow,
    ) -> Result<bool, StoreError>;
    /// Compare-and-set: rewraps the agency's data key if it is still wrapped under `from`.
    async fn rewrap_data_key(
        &self,
        scope: &TenantScope,
        from: &str,
        to: &str,
        sealed: &[u8],
    ) -> Result<bool, StoreError>;

    /// A person's key (sealed under the agency's data key): `None` when none was made,
    /// `Some(None)` when the person was erased (a tombstone).
    async fn person_key(
        &self,
        scope: &TenantScope,
        subject: &str,
    ) -> Result<Option<Option<Vec<u8>>>, StoreError>;
    /// Stores a person's key; `false` (nothing changes) when the subject has a key or a
    /// tombstone already, or the agency is deleted.
    async fn insert_person_key(
        &self,
        scope: &TenantScope,
        subject: &str,
        sealed: &[u8],
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Erases a person: their key is destroyed and a tombstone left so none is made again.
    /// `true` when a key was destroyed (`false`: already erased, or never had one).
    async fn erase_person_key(
        &self,
        scope: &TenantScope,
        subject: &str,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// The pepper versions the agency's stored credential hashes use (API-key and app
    /// secrets, refresh tokens).
    async fn pepper_versions_in_use(&self, scope: &TenantScope) -> Result<Vec<i64>, StoreError>;
    /// Rehashes a credential found under an older pepper: the API-key or app secret whose hash
    /// is `old` gets `new` and `version`. `false` when no such row (already rehashed).
    async fn rehash_secret(
        &self,
        scope: &TenantScope,
        old: &[u8],
        new: &[u8],
        version: i64,
    ) -> Result<bool, StoreError>;
}
