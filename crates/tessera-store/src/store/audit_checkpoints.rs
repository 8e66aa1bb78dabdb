//! Signed audit checkpoints, their signing keys and audit retention (issue 12).
//!
//! INVARIANT: checkpoints are insert-only (`ON CONFLICT DO NOTHING` on (agency, seq)); key
//! writes are compare-and-set on the row's state; a prune deletes events only up to a stored
//! checkpoint and appends its own `audit.prune` event in the same transaction, so the rest of
//! the chain stays anchored and the prune itself is on the record. An append marks its head
//! due (`pending_since`) under the head's row lock; only the checkpoint's own transaction
//! clears the mark, and only if the head has not moved past the checkpoint.

use crate::audit::{AuditHead, AuditRecord};
use crate::audit_checkpoint::{
    AuditCheckpoint, AuditCheckpointBasis, AuditCheckpointDue, AuditKeyRow, AuditPrune,
};
use crate::error::StoreError;
use crate::scope::TenantScope;
use async_trait::async_trait;
use tessera_core::AgencyId;

/// Checkpoints and their keys. Callers: the server's checkpointer, pruner, audit key ring and
/// the audit verify/export handlers.
#[async_trait]
pub trait AuditCheckpoints: Send + Sync {
    /// Every audit key, by generation.
    async fn audit_keys(&self) -> Result<Vec<AuditKeyRow>, StoreError>;
    /// Stores a new audit key; a kid or generation already stored is `Conflict`.
    async fn insert_audit_key(&self, row: &AuditKeyRow) -> Result<(), StoreError>;
    /// Compare-and-set: if key `kid` is in state `expected`, sets `state`, and `retires_at`
    /// and `sealed_private` where `Some`. Returns whether the row changed.
    async fn update_audit_key(
        &self,
        kid: &str,
        expected: &str,
        state: &str,
        retires_at: Option<i64>,
        sealed_private: Option<&[u8]>,
    ) -> Result<bool, StoreError>;
    /// The agency's chain head (sequence and hash), `None` before its first event.
    async fn audit_head(&self, t: &TenantScope) -> Result<Option<AuditHead>, StoreError>;
    /// The agency's checkpoints with `seq > after_seq`, in order, at most `limit`.
    async fn audit_checkpoints(
        &self,
        t: &TenantScope,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditCheckpoint>, StoreError>;
    /// The newest checkpoint with `seq <= seq`.
    async fn audit_checkpoint_at_or_before(
        &self,
        t: &TenantScope,
        seq: i64,
    ) -> Result<Option<AuditCheckpoint>, StoreError>;
    /// The head, the newest checkpoint at or before it and up to `limit` events after that
    /// checkpoint, in one transaction (`None` before the agency's first event): what the
    /// checkpointer verifies and signs, in one round of reads instead of three.
    async fn audit_checkpoint_basis(
        &self,
        t: &TenantScope,
        limit: u32,
    ) -> Result<Option<AuditCheckpointBasis>, StoreError>;
    /// Stores a checkpoint unless one exists for its (agency, seq); returns whether it was new.
    async fn insert_audit_checkpoint(
        &self,
        t: &TenantScope,
        cp: &AuditCheckpoint,
    ) -> Result<bool, StoreError>;
    /// Stores checkpoints of several agencies (each with its scope) in one transaction, the
    /// tenant switched between them; returns how many were new. At 100k agencies with events
    /// the checkpointer signs hundreds a second, and a commit each cost the primary more than
    /// the events did. Then records them on the chain heads ([`Self::audit_checkpointed`]).
    async fn insert_audit_checkpoints(
        &self,
        cps: &[(TenantScope, AuditCheckpoint)],
    ) -> Result<usize, StoreError>;
    /// Records on each agency's chain head that a checkpoint at `seq` (signed at `at`, ms) is
    /// stored: its `checkpoint_seq` moves up to `seq`, and its due mark is cleared unless events
    /// came after `seq` (then it stays due from `at`). A transaction per head, since each
    /// holds a head's lock that the agency's appends wait for.
    async fn audit_checkpointed(&self, heads: &[(TenantScope, i64, i64)])
        -> Result<(), StoreError>;
    /// Agencies whose head is past their newest checkpoint by at least `min_events`, or whose
    /// first event after it came at or before `before_at` (ms), after agency `after` (paging),
    /// at most `limit`. Reads across tenants the heads marked due by the append path (a
    /// partial index: the agencies with events since their checkpoint, not every agency);
    /// with `sweep`, every head, adding those past their checkpoint with no mark (appended by
    /// a node of an earlier release, which did not mark heads).
    async fn audit_checkpoints_due(
        &self,
        min_events: i64,
        before_at: i64,
        sweep: bool,
        after: Option<&AgencyId>,
        limit: u32,
    ) -> Result<Vec<AuditCheckpointDue>, StoreError>;
    /// Every agency with an audit chain and its retention override (days), after agency
    /// `after` (paging), at most `limit`. Reads across tenants.
    async fn audit_retention_all(
        &self,
        after: Option<&AgencyId>,
        limit: u32,
    ) -> Result<Vec<(AgencyId, Option<i64>)>, StoreError>;
    /// The agency's retention override, in days.
    async fn audit_retention(&self, t: &TenantScope) -> Result<Option<i64>, StoreError>;
    /// Sets (`Some`) or clears the agency's retention override, with its audit event.
    async fn set_audit_retention(
        &self,
        t: &TenantScope,
        days: Option<i64>,
        set_by: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// Deletes the agency's events up to its newest checkpoint signed before `cutoff` (ms) and
    /// the checkpoints before that one, then appends `audit` with `through_seq`,
    /// `checkpoint_hash` and `events` added to its detail. `None` when there is nothing to
    /// prune.
    async fn prune_audit(
        &self,
        t: &TenantScope,
        cutoff: i64,
        audit: &AuditRecord,
    ) -> Result<Option<AuditPrune>, StoreError>;
}
