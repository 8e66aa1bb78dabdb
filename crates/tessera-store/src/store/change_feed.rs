//! The change feed: the global revision, the feed of decision-changing writes and one
//! agency's authorization snapshot read at a revision.
//!
//! INVARIANT: revisions are gap-free and a change is visible only once every lower revision
//! is, so a tailer resuming after the last revision it saw misses nothing.

use crate::error::StoreError;
use crate::records::{AuthzSnapshot, Change, RevocationChange, Suspensions};
use crate::scope::TenantScope;
use async_trait::async_trait;

/// Revisions and what changed at them. Callers: the authorization cache (snapshot per
/// agency, with a scope) and the cache invalidation tailer (the global feed).
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// The latest revision of the change log.
    async fn revision(&self) -> Result<i64, StoreError>;
    /// Every role, binding and policy of the tenant, its revocations (active installations;
    /// grants revoked whose `expires_at` is after `now` minus one day; revoked access tokens
    /// not expired at `now`) and the global revision, read in one consistent snapshot: it
    /// reflects exactly the writes up to `revision`.
    async fn authz_snapshot(&self, t: &TenantScope, now: i64) -> Result<AuthzSnapshot, StoreError>;
    /// The global change feed (every agency), in revision order: at most `limit` changes
    /// (clamped to 1..=10000) with a revision above `after_revision`. The revisions are
    /// gap-free, and a change is returned only once every lower revision is visible, so a
    /// tailer that resumes after the last revision it saw misses nothing.
    async fn changes_since(
        &self,
        after_revision: i64,
        limit: u32,
    ) -> Result<Vec<Change>, StoreError>;
    /// What is suspended platform-wide: agencies, accounts, and the apps whose owning agency
    /// is suspended. Read by every node at start and again when the feed shows a suspension
    /// or a reinstatement (normally all three lists are empty).
    async fn suspensions(&self) -> Result<Suspensions, StoreError>;
    /// The revocation feed: changes of the `REVOCATION_KINDS` kinds with a revision above
    /// `after_revision` and written after `min_at` (Unix ms), in revision order, at most
    /// `limit` (clamped to 1..=1000). `Some(scope)`: that agency's alone, read under its
    /// tenant scope (row-level security on PostgreSQL); `None`: every agency (the feed
    /// reader, for platform principals).
    async fn revocations_since(
        &self,
        tenant: Option<&TenantScope>,
        after_revision: i64,
        min_at: i64,
        limit: u32,
    ) -> Result<Vec<RevocationChange>, StoreError>;
    /// Whether a revocation change with a revision above `after_revision` was written at or
    /// before `cutoff` (Unix ms): one a reader resuming there can no longer be served (the
    /// feed's retention dropped it). Same `tenant` rule as `revocations_since`.
    async fn revocations_dropped(
        &self,
        tenant: Option<&TenantScope>,
        after_revision: i64,
        cutoff: i64,
    ) -> Result<bool, StoreError>;
}
