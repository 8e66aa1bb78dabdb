//! The per-agency, hash-chained audit log (I5): append one event or a batch, list and export.
//!
//! INVARIANT: each agency's chain is appended under its head's row lock, so it never forks;
//! a batch takes the heads in agency order, so concurrent batches cannot deadlock.

use crate::audit::{AuditEvent, AuditRecord};
use crate::error::StoreError;
use crate::page::{Page, PageRequest};
use crate::records::AuditFilter;
use crate::scope::TenantScope;
use async_trait::async_trait;

/// The audit log. Callers: the server's audit writer (denied requests, sign-ins, batched
/// hot-path events) and the audit list/export handlers, with the tenant's scope.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends an event on its own (denied requests, sign-ins).
    async fn append_audit(
        &self,
        t: &TenantScope,
        audit: &AuditRecord,
    ) -> Result<AuditEvent, StoreError>;
    /// The tenant's audit events, in id order (ids are time-ordered to the millisecond).
    async fn list_audit(
        &self,
        t: &TenantScope,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, StoreError>;
    /// Every event of the tenant in order, for export and verification.
    async fn audit_chain(
        &self,
        t: &TenantScope,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError>;
    /// Appends events to several tenants' chains in one transaction (group commit); each
    /// record goes to the chain of its scope, in order.
    async fn append_audit_batch(
        &self,
        events: &[(TenantScope, AuditRecord)],
    ) -> Result<(), StoreError>;
}
