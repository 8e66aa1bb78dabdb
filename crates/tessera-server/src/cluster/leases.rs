//! Which node runs each cluster job: one lease per job name in the store (`cluster_leases`),
//! taken and renewed by compare-and-set, and this node's random id.
//!
//! Why a lease table and not PostgreSQL advisory locks: the same code runs on both backends;
//! a lease needs no session of its own (an advisory lock lives on one connection, and dies
//! silently with it while the job may still be running); it is visible to operators and
//! tests (`SELECT * FROM cluster_leases`); and a dead holder's lease lapses after a bounded
//! time (`lease`) instead of whenever TCP notices. The cost: a holder that stalls longer than
//! the lease may overlap with its successor, so every job is also safe to run twice (each
//! writes through its own compare-and-set or is idempotent). Nodes' clocks must agree to well
//! within the lease (NTP): expiry compares the writers' `now`.
//!
//! INVARIANT: this node runs a job only while it holds the job's lease by its own clock, and
//! only for two thirds of the lease after its last successful renewal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngCore as _;
use tessera_store::Store;

use crate::clock::Clock;

/// Signing-key rotation (`Keys::maintain`).
pub const SIGNING_KEYS: &str = "signing_keys";
/// Audit-key rotation (`AuditKeys::maintain`).
pub const AUDIT_KEYS: &str = "audit_keys";
/// Signed audit checkpoints (`Checkpointer::run_once`).
pub const AUDIT_CHECKPOINTS: &str = "audit_checkpoints";
/// Audit retention (`Checkpointer::prune_once`).
pub const AUDIT_PRUNE: &str = "audit_prune";
/// Every cluster job, in the order their leases are renewed.
pub const JOBS: [&str; 4] = [SIGNING_KEYS, AUDIT_KEYS, AUDIT_CHECKPOINTS, AUDIT_PRUNE];

/// Lease and tick timing of the cluster jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobSettings {
    /// How long a lease lasts unless renewed; renewed every third of it. A dead holder's jobs
    /// move to another node within about this long.
    pub lease: Duration,
    /// Every job's tick, instead of their own (tests: `--cluster-job-tick-ms`).
    pub tick: Option<Duration>,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(20),
            tick: None,
        }
    }
}

/// This node's leases.
#[derive(Debug)]
pub struct Leases {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    node: String,
    lease_ms: i64,
    /// Job → until when (this node's clock, ms) this node may run it.
    held: Mutex<HashMap<&'static str, i64>>,
}

impl Leases {
    /// A node with a new random id.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, lease: Duration) -> Self {
        let id = rand::rngs::OsRng.next_u64();
        Self::with_node(store, clock, lease, format!("node_{id:016x}"))
    }

    /// A node with the given id.
    pub fn with_node(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        lease: Duration,
        node: String,
    ) -> Self {
        Self {
            store,
            clock,
            node,
            lease_ms: i64::try_from(lease.as_millis()).unwrap_or(i64::MAX).max(3),
            held: Mutex::default(),
        }
    }

    /// This node's id (the leases' `holder`).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// How often to renew: a third of the lease.
    pub fn renew_every(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.lease_ms / 3).unwrap_or(1).max(1))
    }

    /// Takes or renews every job's lease it can; records which it holds.
    pub async fn renew_all(&self) {
        for job in JOBS {
            let now = self.clock.now();
            let until = match self
                .store
                .acquire_lease(job, &self.node, now, self.lease_ms)
                .await
            {
                Ok(true) => Some(now.saturating_add(self.lease_ms.saturating_mul(2) / 3)),
                Ok(false) => None,
                Err(e) => {
                    // Not confirmed: stop running the job (its lease lapses if we are gone).
                    tracing::warn!(job, error = %e, "cluster lease not renewed");
                    None
                }
            };
            if let Ok(mut held) = self.held.lock() {
                let was = held.contains_key(job);
                match until {
                    Some(t) => {
                        held.insert(job, t);
                        if !was {
                            tracing::info!(job, node = %self.node, "cluster job lease taken");
                        }
                    }
                    None => {
                        held.remove(job);
                        if was {
                            tracing::info!(job, node = %self.node, "cluster job lease lost");
                        }
                    }
                }
            }
            crate::metrics::cluster_job_leader(job, until.is_some());
        }
    }

    /// Whether this node may run `job` now.
    pub fn holds(&self, job: &str) -> bool {
        let now = self.clock.now();
        self.held
            .lock()
            .ok()
            .and_then(|h| h.get(job).copied())
            .is_some_and(|until| until > now)
    }

    /// Gives up every lease this node holds (at shutdown: another node takes over at once).
    pub async fn release_all(&self) {
        let jobs: Vec<&'static str> = self
            .held
            .lock()
            .map(|mut h| h.drain().map(|(j, _)| j).collect())
            .unwrap_or_default();
        for job in jobs {
            if let Err(e) = self.store.release_lease(job, &self.node).await {
                tracing::warn!(job, error = %e, "cluster lease not released");
            }
            crate::metrics::cluster_job_leader(job, false);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[derive(Debug)]
    struct At(std::sync::atomic::AtomicI64);
    impl Clock for At {
        fn now(&self) -> i64 {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    #[tokio::test]
    async fn one_node_holds_each_job_until_its_lease_lapses() {
        let (connected, _dir) = tessera_store::testing::sqlite_store().await;
        let store = connected.store;
        let clock = Arc::new(At(1_000_000.into()));
        let lease = Duration::from_millis(3000);
        let a = Leases::with_node(store.clone(), clock.clone(), lease, "a".into());
        let b = Leases::with_node(store.clone(), clock.clone(), lease, "b".into());
        a.renew_all().await;
        b.renew_all().await;
        for job in JOBS {
            assert!(a.holds(job), "{job}");
            assert!(!b.holds(job), "{job}");
        }
        // `a` dies: `b` takes over once the lease has lapsed, not before.
        clock.0.fetch_add(2999, std::sync::atomic::Ordering::SeqCst);
        b.renew_all().await;
        assert!(!b.holds(SIGNING_KEYS));
        // `a`'s own view expired at two thirds of the lease: it stops before `b` starts.
        assert!(!a.holds(SIGNING_KEYS));
        clock.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        b.renew_all().await;
        assert!(b.holds(SIGNING_KEYS));
        // `a` comes back: `b` keeps it; released, `a` takes it at once.
        a.renew_all().await;
        assert!(!a.holds(SIGNING_KEYS));
        b.release_all().await;
        assert!(!b.holds(SIGNING_KEYS));
        a.renew_all().await;
        assert!(a.holds(SIGNING_KEYS));
    }
}
