//! Cluster coordination: leases that make a cluster job run on one node at a time, the
//! platform's own change-log entries (signing keys), and the signal that a change was
//! committed (PostgreSQL `LISTEN/NOTIFY`; none on SQLite, which serves one process).
//!
//! INVARIANT: a lease is taken or renewed by one compare-and-set statement: of nodes racing
//! for a free or expired lease exactly one wins, and a live holder keeps it.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::scope::TenantScope;

/// Who holds a cluster job's lease, and until when (Unix ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The job's name.
    pub name: String,
    /// The holding node's id.
    pub holder: String,
    /// When this holder took it (kept across renewals).
    pub acquired_at: i64,
    /// When it lapses unless renewed.
    pub expires_at: i64,
}

/// Leases per cluster job and platform change-log entries. Callers: the server's job runner
/// and its signing-key rotation.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// Takes the lease `name` for `holder` until `now + ttl_ms` if it is free, expired
    /// (`expires_at <= now`) or already `holder`'s (a renewal). Returns whether `holder`
    /// holds it now. `ttl_ms` is clamped to 1 ms..=1 hour.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Gives the lease up if `holder` holds it (at shutdown, so another node takes over at
    /// once). Returns whether it did.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<bool, StoreError>;
    /// The lease row of `name`, expired or not.
    async fn lease(&self, name: &str) -> Result<Option<Lease>, StoreError>;
    /// Appends a change-log entry of `kind` about `entity` in the scope's agency (the
    /// platform tenant, for platform-wide changes such as a signing-key rotation step), so
    /// every node's feed sees it. Not audited here: the caller audits the change itself.
    /// Returns the revision.
    async fn record_platform_change(
        &self,
        t: &TenantScope,
        kind: &str,
        entity: &str,
        at: i64,
    ) -> Result<i64, StoreError>;
}

/// What a [`ChangeSignal`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeEvent {
    /// A change was committed (by any node).
    Notified,
    /// The listening connection is (re)established: notifications sent while it was down
    /// are lost, so the reader should read the change log once now.
    Connected,
    /// The listening connection is lost: the reader should poll until `Connected`.
    Lost,
}

/// A stream of [`ChangeEvent`]s from a dedicated connection (never a pooled tenant
/// connection). Dropping it stops the listener.
#[derive(Debug)]
pub struct ChangeSignal {
    rx: tokio::sync::mpsc::Receiver<ChangeEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl ChangeSignal {
    /// Wraps a listener task and the receiving end of its channel.
    pub fn new(
        rx: tokio::sync::mpsc::Receiver<ChangeEvent>,
        task: tokio::task::JoinHandle<()>,
    ) -> Self {
        Self { rx, task }
    }

    /// The next event; `None` once the listener has stopped.
    pub async fn recv(&mut self) -> Option<ChangeEvent> {
        self.rx.recv().await
    }

    /// An event already received, if any (to coalesce a burst).
    pub fn try_recv(&mut self) -> Option<ChangeEvent> {
        self.rx.try_recv().ok()
    }
}

impl Drop for ChangeSignal {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The source of [`ChangeSignal`]s: backend-specific, so outside the shared queries.
pub trait ChangeSignals: Send + Sync {
    /// A new listener, or `None` when the backend has none (SQLite: one process, polled).
    fn change_signal(&self) -> Option<ChangeSignal>;
}
