//! Platform administration: the schema, the health check, the bootstrap and the agencies
//! themselves (global rows, no tenant scope). Called by the CLI and by handlers that hold a
//! platform permission, never on behalf of an agency's principal.

use async_trait::async_trait;
use tessera_core::AgencyId;

use crate::audit::AuditRecord;
use crate::error::StoreError;
use crate::page::{Page, PageRequest};
use crate::records::{Agency, Bootstrap};

/// The platform's own operations, outside any tenant. Callers: `tessera migrate`/`serve` at
/// start, the health check, and platform-admin handlers (after their permission check).
#[async_trait]
pub trait PlatformAdmin: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Applies pending migrations; returns how many ran.
    async fn migrate(&self) -> Result<usize, StoreError>;
    /// Whether the store answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// The platform tenant, once bootstrapped.
    async fn platform_agency(&self) -> Result<Option<Agency>, StoreError>;
    /// Creates the platform tenant, its first admin key and the key's binding, atomically.
    /// Returns `false` (and changes nothing) if the store was already bootstrapped.
    async fn bootstrap(&self, b: Bootstrap) -> Result<bool, StoreError>;
    /// Creates an agency.
    async fn create_agency(&self, a: &Agency, audit: &AuditRecord) -> Result<(), StoreError>;
    /// An agency that is not deleted (the platform tenant included).
    async fn get_agency(&self, id: &AgencyId) -> Result<Agency, StoreError>;
    /// Agencies, in id order (ids are time-ordered to the millisecond) (not the platform tenant, not deleted ones).
    async fn list_agencies(&self, page: &PageRequest) -> Result<Page<Agency>, StoreError>;
    /// Renames an agency.
    async fn update_agency(
        &self,
        id: &AgencyId,
        name: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<Agency, StoreError>;
    /// Marks an agency deleted: its credentials stop working, its audit trail stays.
    async fn delete_agency(
        &self,
        id: &AgencyId,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// Suspends (`Some(reason)`) or reinstates (`None`) an agency other than the platform
    /// tenant; returns it as it stands after, and whether it changed. An agency already in
    /// the asked state is returned unchanged, with nothing written; a change is committed with
    /// its audit event and a change-log entry (`agency.suspend`/`agency.reinstate`).
    async fn set_agency_suspended(
        &self,
        id: &AgencyId,
        reason: Option<&str>,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<(Agency, bool), StoreError>;
}
