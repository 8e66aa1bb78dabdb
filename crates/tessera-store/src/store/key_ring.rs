//! The issuer's token-signing key ring: platform keys, no tenant, no audit event or change-log
//! entry written here. On PostgreSQL the table has no row-level security (it holds no tenant
//! data; private keys are sealed under the master key). Times are epoch seconds.
//!
//! INVARIANT: writes are compare-and-set on the row's state, so that nodes applying the same
//! rotation plan at once cannot both win: exactly one sees `true`, the others re-read and
//! re-plan.

use crate::error::StoreError;
use crate::records::SigningKeyRow;
use async_trait::async_trait;

/// The signing-key ring. Callers: the server's key rotation and JWKS publication only.
#[async_trait]
pub trait KeyRing: Send + Sync {
    /// Every signing key, ordered by `created_at`, then `kid` (compared bytewise, the same on
    /// both backends).
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, StoreError>;
    /// Stores a new signing key. A `kid` already stored is `Conflict { constraint: "kid" }`.
    async fn insert_signing_key(&self, row: &SigningKeyRow) -> Result<(), StoreError>;
    /// Compare-and-set: if key `kid` is currently in one of `expected_states`, sets its
    /// `state`, and `retires_at`, `expires_at` and the sealed private key where they are
    /// `Some` (`None` leaves the stored value; retiring a key passes `Some(&[])` to wipe it).
    /// Returns whether a row changed: `false` (and nothing changes) when the key is missing
    /// or in another state, or when `expected_states` is empty.
    async fn update_signing_key(
        &self,
        kid: &str,
        expected_states: &[&str],
        state: &str,
        retires_at: Option<i64>,
        expires_at: Option<i64>,
        sealed_private: Option<&[u8]>,
    ) -> Result<bool, StoreError>;
    /// Compare-and-set: deletes key `kid` if it is currently in one of `expected_states`.
    /// Returns whether a row was deleted (`false` when it is missing, in another state, or
    /// `expected_states` is empty).
    async fn delete_signing_key(
        &self,
        kid: &str,
        expected_states: &[&str],
    ) -> Result<bool, StoreError>;
}
