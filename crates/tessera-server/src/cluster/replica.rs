//! Read replicas (`--replica-url`): which store answers a read that accepts staleness bounded
//! by revision (index builds, admin lists, audit reads, the store reads of JWT introspection).
//! Every other read, and every write, uses the primary.
//!
//! INVARIANT: a read goes to the replica only when the replica is known to have applied at
//! least the revision its answer must reflect (`Floor::revision`: the node's applied revision,
//! or the caller's `at_least_revision`) and no write this node made to the agencies concerned
//! is still unseen by its feed; otherwise it waits for the replica (at most `WAIT`) or reads
//! the primary. A replica that fails sends the read to the primary at once and stays out for
//! `DOWN_FOR`, so an outage adds no latency to every request.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_core::AgencyId;
use tessera_store::{Store, StoreError};

/// The longest a read waits for a lagging replica before it reads the primary.
pub const WAIT: Duration = Duration::from_millis(150);
/// How often a waiting read asks the replica how far it is.
const WAIT_STEP: Duration = Duration::from_millis(15);
/// How long a failed replica is left out before a read tries it again.
pub const DOWN_FOR: Duration = Duration::from_secs(3);
/// The longest a probe of the replica's revision may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// After a write of this node, reads of rows outside the change log (lists, audit) of its
/// agency stay on the primary this long: the change log's revision does not cover them.
pub const FRESH_FOR: Duration = Duration::from_secs(5);
/// The most agencies with a pending local write remembered; beyond it every read that must
/// reflect local writes goes to the primary until the feed catches up.
const MAX_MARKS: usize = 100_000;

/// A boxed read, run against the store it is given.
pub type ReadFuture<'f, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'f>>;

/// An error that may mean the store that answered (not the request) failed.
pub trait ReplicaFailure {
    /// Whether the read should be retried on the primary.
    fn replica_failed(&self) -> bool;
}

impl ReplicaFailure for StoreError {
    fn replica_failed(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Whose local writes an answer must reflect.
#[derive(Clone, Copy, Debug)]
pub enum Writers<'a> {
    /// These agencies' (the agency acted in and the caller's).
    Agencies(&'a AgencyId, Option<&'a AgencyId>),
    /// Any agency's (the agency is known only inside the read, as in introspection).
    Any,
}

/// What a read's answer must reflect.
#[derive(Clone, Copy, Debug)]
pub struct Floor<'a> {
    /// The revision the answer must reflect.
    pub revision: i64,
    /// Whose local writes it must reflect.
    pub writers: Writers<'a>,
    /// Whether it reads rows outside the change log (lists, audit), which a local write keeps
    /// on the primary for `FRESH_FOR` whatever the feed has seen.
    pub untracked: bool,
}

/// Which store answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The read replica.
    Replica,
    /// The primary.
    Primary,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Self::Replica => "replica",
            Self::Primary => "primary",
        }
    }
}

/// A write of this node not yet seen by its feed.
#[derive(Clone, Copy, Debug)]
struct Mark {
    /// The feed poll that must complete before the change log reflects it.
    poll: u64,
    /// When it was made.
    at: Instant,
}

/// The read router of a node; one per `Services`.
pub struct Reads {
    primary: Arc<dyn Store>,
    replica: Option<Arc<dyn Store>>,
    /// The highest revision the replica was seen at.
    seen: AtomicI64,
    /// The node's applied revision at its last feed poll (for the lag gauge).
    head: AtomicI64,
    up: AtomicBool,
    /// Milliseconds since `born` until which the replica is left out (0: not down).
    down_until: AtomicU64,
    born: Instant,
    polls_started: AtomicU64,
    polls_done: AtomicU64,
    marks: Mutex<HashMap<u128, Mark>>,
    /// The latest local write of any agency.
    any_mark: Mutex<Option<Mark>>,
    counts: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl std::fmt::Debug for Reads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reads")
            .field("replica", &self.replica.is_some())
            .field("up", &self.is_up())
            .field("seen", &self.seen.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Reads {
    /// A router over the primary and, when configured, a replica of it.
    pub fn new(primary: Arc<dyn Store>, replica: Option<Arc<dyn Store>>) -> Self {
        Self {
            primary,
            replica,
            seen: AtomicI64::new(0),
            head: AtomicI64::new(0),
            up: AtomicBool::new(true),
            down_until: AtomicU64::new(0),
            born: Instant::now(),
            polls_started: AtomicU64::new(0),
            polls_done: AtomicU64::new(0),
            marks: Mutex::default(),
            any_mark: Mutex::default(),
            counts: Mutex::default(),
        }
    }

    /// Whether a replica is configured.
    pub fn has_replica(&self) -> bool {
        self.replica.is_some()
    }

    /// Whether the replica answered last time (true when none is configured).
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Reads counted so far, by (target, reason).
    pub fn counts(&self) -> BTreeMap<(&'static str, &'static str), u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// How many revisions the replica trails the node's applied revision (0 when ahead).
    pub fn lag(&self) -> i64 {
        (self.head.load(Ordering::Relaxed) - self.seen.load(Ordering::Relaxed)).max(0)
    }

    /// Notes a write of this node to `agency` (it is on the primary; the feed has not seen it).
    pub fn wrote(&self, agency: &AgencyId) {
        if self.replica.is_none() {
            return;
        }
        let mark = Mark {
            poll: self.polls_started.load(Ordering::Acquire) + 1,
            at: Instant::now(),
        };
        if let Ok(mut any) = self.any_mark.lock() {
            *any = Some(mark);
        }
        if let Ok(mut m) = self.marks.lock() {
            if m.len() >= MAX_MARKS {
                // The global mark still covers every agency until the feed catches up.
                m.clear();
            }
            m.insert(agency.bits(), mark);
        }
    }

    /// A feed poll begins (under the feed's lock): returns its number.
    pub fn poll_begin(&self) -> u64 {
        self.polls_started.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Poll `n` applied every change up to `applied`: the writes made before it began are in
    /// the change log the node has applied.
    pub fn poll_end(&self, n: u64, applied: i64) {
        self.polls_done.fetch_max(n, Ordering::AcqRel);
        self.head.fetch_max(applied, Ordering::Relaxed);
        if let Ok(mut m) = self.marks.lock() {
            m.retain(|_, mark| !self.settled(mark, true));
        }
    }

    /// Whether a local write is reflected where a read may now look: the feed has seen it
    /// (and, for rows outside the change log, `FRESH_FOR` has passed).
    fn settled(&self, mark: &Mark, untracked: bool) -> bool {
        self.polls_done.load(Ordering::Acquire) >= mark.poll
            && (!untracked || mark.at.elapsed() >= FRESH_FOR)
    }

    fn fresh_write(&self, writers: Writers<'_>, untracked: bool) -> bool {
        match writers {
            Writers::Any => self
                .any_mark
                .lock()
                .map(|m| m.is_some_and(|m| !self.settled(&m, untracked)))
                .unwrap_or(true),
            Writers::Agencies(a, b) => {
                let Ok(m) = self.marks.lock() else {
                    return true;
                };
                [Some(a), b].into_iter().flatten().any(|ag| {
                    m.get(&ag.bits())
                        .is_some_and(|mk| !self.settled(mk, untracked))
                })
            }
        }
    }

    fn count(&self, target: Target, reason: &'static str) {
        if let Ok(mut c) = self.counts.lock() {
            *c.entry((target.name(), reason)).or_default() += 1;
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn is_left_out(&self) -> bool {
        self.down_until.load(Ordering::Relaxed) > self.now_ms()
    }

    /// The replica failed: left out for `DOWN_FOR`, logged once per transition.
    fn mark_down(&self, error: &dyn std::fmt::Debug) {
        let until = self.now_ms().saturating_add(DOWN_FOR.as_millis() as u64);
        self.down_until.store(until, Ordering::Relaxed);
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = ?error, "read replica unavailable: reads go to the primary");
        }
    }

    fn mark_up(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            self.down_until.store(0, Ordering::Relaxed);
            tracing::warn!("read replica reachable again: it serves reads");
        }
    }

    /// Asks the replica how far it is (bounded by `PROBE_TIMEOUT`); `None` when it failed.
    pub async fn probe(&self) -> Option<i64> {
        let replica = self.replica.as_ref()?;
        let res = tokio::time::timeout(PROBE_TIMEOUT, replica.revision()).await;
        match res {
            Ok(Ok(r)) => {
                self.mark_up();
                self.seen.fetch_max(r, Ordering::Relaxed);
                Some(r)
            }
            Ok(Err(e)) => {
                self.mark_down(&e);
                None
            }
            Err(_) => {
                self.mark_down(&"timed out");
                None
            }
        }
    }

    /// The store a read at `floor` may use, and why.
    async fn pick(&self, floor: &Floor<'_>) -> (Target, &'static str) {
        if self.replica.is_none() {
            return (Target::Primary, "no_replica");
        }
        if self.is_left_out() {
            return (Target::Primary, "down");
        }
        if self.fresh_write(floor.writers, floor.untracked) {
            return (Target::Primary, "fresh_write");
        }
        if self.seen.load(Ordering::Relaxed) >= floor.revision {
            return (Target::Replica, "current");
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match self.probe().await {
                None => return (Target::Primary, "error"),
                Some(r) if r >= floor.revision => return (Target::Replica, "caught_up"),
                Some(_) => {}
            }
            if tokio::time::Instant::now() + WAIT_STEP > deadline {
                return (Target::Primary, "lag");
            }
            tokio::time::sleep(WAIT_STEP).await;
        }
    }

    /// Runs `read` on the replica when it may answer at `floor`, else on the primary; a
    /// replica failure reruns it on the primary at once.
    pub async fn run<'f, T, E: ReplicaFailure + std::fmt::Debug>(
        &self,
        floor: Floor<'_>,
        read: impl Fn(Arc<dyn Store>) -> ReadFuture<'f, T, E>,
    ) -> Result<T, E> {
        self.run_checked(floor, read, |_| i64::MAX).await
    }

    /// Like `run`, for an answer that carries the revision it was read at (`revision_of`): a
    /// replica answer below `floor.revision` (a replica that went back, such as a failover
    /// to a staler one) is read again from the primary.
    pub async fn run_checked<'f, T, E: ReplicaFailure + std::fmt::Debug>(
        &self,
        floor: Floor<'_>,
        read: impl Fn(Arc<dyn Store>) -> ReadFuture<'f, T, E>,
        revision_of: impl Fn(&T) -> i64,
    ) -> Result<T, E> {
        let (target, reason) = self.pick(&floor).await;
        let replica = match (target, &self.replica) {
            (Target::Replica, Some(r)) => r.clone(),
            _ => {
                if self.replica.is_some() {
                    self.count(Target::Primary, reason);
                }
                return read(self.primary.clone()).await;
            }
        };
        match read(replica).await {
            Err(e) if e.replica_failed() => {
                self.mark_down(&e);
                self.count(Target::Primary, "error");
                read(self.primary.clone()).await
            }
            Ok(v) if revision_of(&v) < floor.revision => {
                self.count(Target::Primary, "lag");
                read(self.primary.clone()).await
            }
            other => {
                if other.is_ok() {
                    self.mark_up();
                }
                self.count(Target::Replica, reason);
                other
            }
        }
    }

    /// The state `/readyz` shows for the replica: `up` or `unreachable` (probed now), `None`
    /// when none is configured.
    pub async fn readiness(&self) -> Option<&'static str> {
        self.replica.as_ref()?;
        Some(if self.probe().await.is_some() {
            "up"
        } else {
            "unreachable"
        })
    }

    /// The Prometheus lines of the replica (nothing when none is configured).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.replica.is_none() {
            return out;
        }
        let _ = writeln!(out, "# HELP tessera_replica_reads_total Reads that accept staleness bounded by revision, by the store that answered and why.");
        let _ = writeln!(out, "# TYPE tessera_replica_reads_total counter");
        for ((target, reason), n) in self.counts() {
            let _ = writeln!(
                out,
                "tessera_replica_reads_total{{target=\"{target}\",reason=\"{reason}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP tessera_replica_lag_revisions Revisions the replica trails this node's applied revision (as last seen).");
        let _ = writeln!(out, "# TYPE tessera_replica_lag_revisions gauge");
        let _ = writeln!(out, "tessera_replica_lag_revisions {}", self.lag());
        let _ = writeln!(
            out,
            "# HELP tessera_replica_up Whether the read replica answered last time."
        );
        let _ = writeln!(out, "# TYPE tessera_replica_up gauge");
        let _ = writeln!(out, "tessera_replica_up {}", u8::from(self.is_up()));
        out
    }
}
