//! The authorization engine of a node: one `AgencyIndex` (+ compiled Cedar policies) per
//! agency, built on first use from a consistent store snapshot, kept in a memory-bounded cache,
//! and invalidated by this node's own writes at once and by other nodes' writes through the
//! change feed.
//!
//! INVARIANT: an answer carries the revision it is valid at; a cached index is dropped when a
//! change of its agency is seen, and an index built from a snapshot older than a local write to
//! its agency is never cached (generation check), so a removed binding or revoked key never
//! allows a check evaluated at a later revision.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tessera_core::abac::PolicySet;
use tessera_core::fastmap::FastMap;
use tessera_core::index::{AgencyIndex, BuiltinRoles, IndexInput};
use tessera_core::{AgencyId, Catalog};
use tessera_store::{Store, StoreError};

mod entry;
pub use entry::{AgencyEntry, CachedCaller, CachedSubject, TokenState};

/// The most subjects one agency entry remembers before its map is cleared.
const MAX_SUBJECTS: usize = 100_000;

/// The most credential hashes remembered before the map is cleared.
const MAX_REMEMBERED: usize = 1 << 20;

/// Why an index could not be had.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node could not reach the requested revision in time.
    #[error("revision {wanted} is not reached yet (at {have})")]
    RevisionNotReached {
        /// Asked for.
        wanted: i64,
        /// Applied.
        have: i64,
    },
}

/// Cache statistics, for metrics and benchmarks.
#[derive(Clone, Copy, Debug, Default)]
pub struct CacheStats {
    /// Indexes held.
    pub entries: usize,
    /// Their approximate size.
    pub bytes: usize,
    /// Lookups answered by a held index, since start.
    pub hits: u64,
    /// Lookups that found no usable index (missing, or older than the revision asked), since
    /// start: each built one or waited for a concurrent build of the same agency.
    pub misses: u64,
    /// Indexes built from the store, since start (at most one at a time per agency).
    pub builds: u64,
    /// Indexes dropped to stay within the budget, since start.
    pub evictions: u64,
}

/// Shards of the build lock ([`Engine::entry`]): builds of different agencies rarely wait
/// for each other.
const BUILD_SHARDS: usize = 256;

/// The node's engine.
#[derive(Debug)]
pub struct Engine {
    store: Arc<dyn Store>,
    /// Index builds read a replica when it has applied the revision they must reflect.
    reads: Arc<crate::cluster::replica::Reads>,
    clock: Arc<dyn crate::clock::Clock>,
    builtin: Arc<BuiltinRoles>,
    catalog: Arc<Catalog>,
    schema: Arc<cedar_policy::Schema>,
    /// The platform-wide policies alone (break-glass asks them apart from an agency's);
    /// `Err` if they do not compile, which denies every override.
    platform_set: Result<Option<PolicySet>, ()>,
    entries: RwLock<FastMap<u128, Arc<AgencyEntry>>>,
    key_agencies: RwLock<FastMap<[u8; 32], (AgencyId, bool)>>,
    generations: Mutex<FastMap<u128, u64>>,
    bytes: AtomicU64,
    budget: u64,
    applied: AtomicI64,
    tick: AtomicU64,
    /// Cache counters: ticks taken by builds (hits are the other ticks, so a hit costs one
    /// atomic add, not two), misses, evictions.
    counters: [AtomicU64; 3],
    /// The highest hit count [`Engine::stats`] reported.
    hits_reported: AtomicU64,
    /// One build at a time per shard of agencies: concurrent first checks in one agency (a
    /// hot tenant on a fresh node) wait for one build instead of each reading the store.
    building: Box<[tokio::sync::Mutex<()>]>,
    /// Scopes for the agencies it loads.
    admission: Arc<crate::gate::admission::Admission>,
    feed: tokio::sync::Mutex<()>,
    /// What is suspended platform-wide (reloaded from the feed).
    suspensions: crate::suspension::Suspensions,
    /// Rung on every invalidation (a local write, or a change seen on the feed): wakes the
    /// revocation feed's waiting readers.
    bell: tokio::sync::watch::Sender<u64>,
    /// Rung when the feed shows a platform signing-key change (another node's rotation, or
    /// `tessera keys rotate`): the node reloads its key ring.
    keys_bell: tokio::sync::watch::Sender<u64>,
}

impl Engine {
    /// A new engine with a memory budget in bytes.
    #[expect(
        clippy::too_many_arguments,
        reason = "the engine's parts, built once in `Services`"
    )]
    pub fn new(
        store: Arc<dyn Store>,
        reads: Arc<crate::cluster::replica::Reads>,
        catalog: Arc<Catalog>,
        schema: Arc<cedar_policy::Schema>,
        platform_policies: Vec<(String, String)>,
        budget: u64,
        clock: Arc<dyn crate::clock::Clock>,
        admission: Arc<crate::gate::admission::Admission>,
    ) -> Self {
        let platform_set = if platform_policies.is_empty() {
            Ok(None)
        } else {
            PolicySet::compile(&schema, &platform_policies)
                .map(Some)
                .map_err(|_| ())
        };
        Self {
            platform_set,
            store,
            reads,
            clock,
            admission,
            builtin: BuiltinRoles::new(&catalog),
            catalog,
            schema,
            entries: RwLock::default(),
            key_agencies: RwLock::default(),
            generations: Mutex::default(),
            bytes: AtomicU64::new(0),
            budget,
            applied: AtomicI64::new(0),
            tick: AtomicU64::new(0),
            counters: Default::default(),
            hits_reported: AtomicU64::new(0),
            building: (0..BUILD_SHARDS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            feed: tokio::sync::Mutex::new(()),
            suspensions: crate::suspension::Suspensions::default(),
            bell: tokio::sync::watch::channel(0).0,
            keys_bell: tokio::sync::watch::channel(0).0,
        }
    }

    /// The platform-wide policies alone.
    pub fn platform_policies(&self) -> tessera_core::decision::Policies<'_> {
        match &self.platform_set {
            Ok(None) => tessera_core::decision::Policies::None,
            Ok(Some(set)) => tessera_core::decision::Policies::Set(set),
            Err(()) => tessera_core::decision::Policies::Broken,
        }
    }

    /// The Cedar schema generated from the catalog.
    pub fn schema(&self) -> &cedar_policy::Schema {
        &self.schema
    }

    /// The latest change-feed revision this node has applied.
    pub fn applied(&self) -> i64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Sets the starting point of the feed (at start-up: the store's current revision).
    pub fn start_at(&self, revision: i64) {
        self.applied.store(revision, Ordering::Release);
    }

    /// Entries and bytes held.
    pub fn stats(&self) -> CacheStats {
        let entries = self.entries.read().map(|e| e.len()).unwrap_or(0);
        CacheStats {
            entries,
            bytes: usize::try_from(self.bytes.load(Ordering::Relaxed)).unwrap_or(usize::MAX),
            hits: self.hits(),
            misses: self.counters[1].load(Ordering::Relaxed),
            builds: self.counters[0].load(Ordering::Relaxed),
            evictions: self.counters[2].load(Ordering::Relaxed),
        }
    }

    /// Hits so far: every hit and every build takes one tick, builds are counted, hits are the
    /// rest. A build racing this read could make it one short; the highest value reported is
    /// kept, so the counter never goes backwards.
    fn hits(&self) -> u64 {
        let ticks = self.tick.load(Ordering::Relaxed);
        let hits = ticks.saturating_sub(self.counters[0].load(Ordering::Relaxed));
        self.hits_reported
            .fetch_max(hits, Ordering::Relaxed)
            .max(hits)
    }

    /// The generation of an agency: it moves on every invalidation.
    pub fn generation_of(&self, agency: &AgencyId) -> u64 {
        self.generation(agency.bits())
    }

    /// A caller authenticated before with this credential hash, if still valid at `now`.
    pub async fn cached_caller(
        &self,
        hash: &[u8; 32],
        now: i64,
    ) -> Option<Arc<crate::caller::Caller>> {
        let (agency, is_platform) = self.key_agencies.read().ok()?.get(hash).cloned()?;
        let entry = self.entry(&agency, is_platform, None).await.ok()?;
        let cached = entry.callers.read().ok()?.get(hash).cloned()?;
        if cached.valid_until.is_some_and(|until| until <= now) {
            return None;
        }
        Some(cached.caller.clone())
    }

    /// Remembers an authenticated caller, unless its agency changed since `generation` (a
    /// revocation racing the authentication must win).
    pub async fn remember_caller(
        &self,
        hash: [u8; 32],
        caller: Arc<crate::caller::Caller>,
        valid_until: Option<i64>,
        generation: u64,
    ) {
        let Ok(entry) = self.entry(&caller.agency, caller.is_platform, None).await else {
            return;
        };
        if self.generation_of(&caller.agency) != generation {
            return;
        }
        if let Ok(mut k) = self.key_agencies.write() {
            if k.len() >= MAX_REMEMBERED {
                k.clear();
            }
            k.insert(hash, (caller.agency.clone(), caller.is_platform));
        }
        let mut callers = match entry.callers.write() {
            Ok(c) => c,
            Err(_) => return,
        };
        callers.insert(
            hash,
            Arc::new(CachedCaller {
                caller,
                valid_until,
            }),
        );
    }

    /// A subject resolved before in this entry, if still valid at `now`.
    pub fn cached_subject(
        entry: &AgencyEntry,
        principal: &str,
        now: i64,
    ) -> Option<Arc<CachedSubject>> {
        let s = entry.subjects.read().ok()?.get(principal).cloned()?;
        if s.valid_until.is_some_and(|until| until <= now) {
            return None;
        }
        Some(s)
    }

    /// Remembers a subject, unless the agency changed since `generation`.
    pub fn remember_subject(
        &self,
        agency: &AgencyId,
        entry: &AgencyEntry,
        principal: &str,
        subject: CachedSubject,
        generation: u64,
    ) {
        if self.generation_of(agency) != generation {
            return;
        }
        if let Ok(mut s) = entry.subjects.write() {
            if s.len() >= MAX_SUBJECTS {
                s.clear();
            }
            s.insert(principal.to_owned(), Arc::new(subject));
        }
    }

    fn generation(&self, key: u128) -> u64 {
        self.generations
            .lock()
            .map(|g| g.get(&key).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Drops an agency's index after a local write (which reads of it then take from the
    /// primary until the feed has seen the write: see `cluster::replica`).
    pub fn invalidate(&self, agency: &AgencyId) {
        self.reads.wrote(agency);
        self.drop_entry(agency);
    }

    /// After a local write that recorded no change (a rename, a new account): its index and
    /// caches stay, as no decision can differ, but reads of the agency still go to the primary
    /// until the feed has moved past the write (its admin lists must show it).
    pub fn wrote(&self, agency: &AgencyId) {
        self.reads.wrote(agency);
    }

    /// Drops an agency's index (a change seen on the feed, or a local write).
    fn drop_entry(&self, agency: &AgencyId) {
        let key = agency.bits();
        if let Ok(mut g) = self.generations.lock() {
            *g.entry(key).or_default() += 1;
        }
        if let Ok(mut e) = self.entries.write() {
            if let Some(old) = e.remove(&key) {
                self.bytes.fetch_sub(old.bytes as u64, Ordering::Relaxed);
            }
        }
        self.bell.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees the bell rung after this call (some agency changed).
    pub fn listen(&self) -> tokio::sync::watch::Receiver<u64> {
        self.bell.subscribe()
    }

    /// A receiver that sees the feed's signing-key changes after this call.
    pub fn listen_keys(&self) -> tokio::sync::watch::Receiver<u64> {
        self.keys_bell.subscribe()
    }

    /// The revision an entry's answers are valid at: its snapshot, or later if the feed has
    /// moved on without touching its agency.
    pub fn valid_at(&self, entry: &AgencyEntry) -> i64 {
        entry.index.revision().max(self.applied())
    }

    /// The held entry of an agency, if it is valid at `at_least`.
    fn held(&self, key: u128, at_least: Option<i64>) -> Option<Arc<AgencyEntry>> {
        let entry = self.entries.read().ok()?.get(&key).cloned()?;
        at_least
            .is_none_or(|w| self.valid_at(&entry) >= w)
            .then_some(entry)
    }

    /// The entry of an agency, built if missing; `at_least` forces a revision.
    pub async fn entry(
        &self,
        agency: &AgencyId,
        is_platform: bool,
        at_least: Option<i64>,
    ) -> Result<Arc<AgencyEntry>, EngineError> {
        if let Some(wanted) = at_least {
            if wanted > self.applied() {
                self.poll().await?;
            }
        }
        let key = agency.bits();
        if let Some(entry) = self.held(key, at_least) {
            entry
                .last_used
                .store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
            return Ok(entry);
        }
        self.counters[1].fetch_add(1, Ordering::Relaxed);
        let shard = usize::try_from(key % BUILD_SHARDS as u128).unwrap_or(0);
        let _turn = self.building[shard].lock().await;
        // Built by the task this one waited for (then it is as fresh as this one's build).
        if let Some(entry) = self.held(key, at_least) {
            return Ok(entry);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            let entry = self.build(agency, is_platform, at_least).await?;
            match at_least {
                Some(w) if entry.index.revision() < w => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(EngineError::RevisionNotReached {
                            wanted: w,
                            have: entry.index.revision(),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                _ => return Ok(entry),
            }
        }
    }

    async fn build(
        &self,
        agency: &AgencyId,
        is_platform: bool,
        at_least: Option<i64>,
    ) -> Result<Arc<AgencyEntry>, EngineError> {
        let key = agency.bits();
        let generation = self.generation(key);
        // The engine loads what a decision needs, before the decision.
        let scope = &self.admission.admit(agency.clone());
        let now = self.clock.now();
        // A replica may build it once it has applied what this node has (and the caller asks).
        let floor = crate::cluster::replica::Floor {
            revision: self.applied().max(at_least.unwrap_or(0)),
            writers: crate::cluster::replica::Writers::Agencies(agency, None),
            untracked: false,
        };
        let snap = self
            .reads
            .run_checked(
                floor,
                |st| Box::pin(async move { st.authz_snapshot(scope, now).await }),
                |s| s.revision,
            )
            .await?;
        let mut input = IndexInput::default();
        for r in &snap.roles {
            // Permissions that left the catalog are dropped: deny by default.
            let set = r
                .permissions
                .iter()
                .filter_map(|p| self.catalog.permission(p))
                .collect();
            input.roles.push((r.id.clone(), set));
        }
        for b in snap.bindings {
            input.bindings.push((b.id, b.principal, b.role, b.account));
        }
        let (index, skipped) = AgencyIndex::build(
            agency.clone(),
            is_platform,
            snap.revision,
            self.builtin.clone(),
            input,
        );
        if !skipped.is_empty() {
            tracing::warn!(agency = %agency, bindings = skipped.len(), "bindings name unknown roles and grant nothing");
        }
        // The platform's set is compiled once (`platform_set`); only the agency's own texts
        // are parsed here, then merged with it.
        let sources: Vec<(String, String)> = snap
            .policies
            .into_iter()
            .map(|p| (p.id.to_string(), p.cedar))
            .collect();
        let own = if sources.is_empty() {
            Ok(None)
        } else {
            PolicySet::compile(&self.schema, &sources)
                .map(Some)
                .map_err(|d| format!("{} problem(s)", d.len()))
        };
        let combined = match (&self.platform_set, own) {
            (Ok(None), Ok(own)) => Ok(own),
            (Ok(Some(platform)), Ok(None)) => Ok(Some(platform.clone())),
            (Ok(Some(platform)), Ok(Some(own))) => PolicySet::merge(platform, &own).map(Some),
            (Err(()), _) => Err("the platform's policies do not compile".to_owned()),
            (_, Err(e)) => Err(e),
        };
        let (policies, policies_broken) = match combined {
            Ok(p) => (p, false),
            Err(why) => {
                // Policies were validated when written; if the catalog changed under them,
                // fail closed: every check in the agency that RBAC allows is denied.
                tracing::error!(agency = %agency, problems = %why, "stored policies no longer compile; denying");
                (None, true)
            }
        };
        let tokens = TokenState::from(snap.revocations);
        // Sorted here, in bytes: the database's collation may order text otherwise.
        let mut inactive_users = snap.inactive_users;
        inactive_users.sort_unstable();
        let inactive_users = inactive_users.into_boxed_slice();
        let bytes = index.approx_bytes()
            + sources_bytes(&sources)
            + tokens.bytes()
            + inactive_users.iter().map(|u| u.len() + 24).sum::<usize>();
        let entry = Arc::new(AgencyEntry {
            tokens,
            inactive_users,
            index,
            policies,
            policies_broken,
            callers: RwLock::default(),
            unknown_installations: RwLock::default(),
            subjects: RwLock::default(),
            last_used: AtomicU64::new({
                // Counted before the tick: `stats` never sees a build's tick as a hit.
                self.counters[0].fetch_add(1, Ordering::Relaxed);
                self.tick.fetch_add(1, Ordering::Relaxed)
            }),
            bytes,
        });
        if self.generation(key) == generation {
            if let Ok(mut e) = self.entries.write() {
                if let Some(old) = e.insert(key, entry.clone()) {
                    self.bytes.fetch_sub(old.bytes as u64, Ordering::Relaxed);
                }
                self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
            }
            self.evict_if_needed();
        }
        Ok(entry)
    }

    /// Drops the least recently used tenth of the entries when over budget.
    fn evict_if_needed(&self) {
        if self.bytes.load(Ordering::Relaxed) <= self.budget {
            return;
        }
        let Ok(mut e) = self.entries.write() else {
            return;
        };
        let mut ages: Vec<(u64, u128)> = e
            .iter()
            .map(|(k, v)| (v.last_used.load(Ordering::Relaxed), *k))
            .collect();
        ages.sort_unstable();
        let drop = (ages.len() / 10).max(1);
        for (_, k) in ages.into_iter().take(drop) {
            if let Some(old) = e.remove(&k) {
                self.counters[2].fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_sub(old.bytes as u64, Ordering::Relaxed);
            }
        }
    }

    /// Applies the change feed: drops the index of every agency that changed.
    pub async fn poll(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.feed.lock().await;
        let n = self.reads.poll_begin();
        self.apply_feed().await?;
        self.reads.poll_end(n, self.applied());
        Ok(())
    }

    /// Reads the change feed from the applied revision on and applies it (under `feed`).
    async fn apply_feed(&self) -> Result<(), StoreError> {
        loop {
            let after = self.applied();
            let changes = self.store.changes_since(after, 1000).await?;
            let Some(last) = changes.last().map(|c| c.revision) else {
                return Ok(());
            };
            // The suspension view is replaced before the agencies' caches are dropped, so a
            // caller re-authenticated in between already meets the new view.
            if changes
                .iter()
                .any(|c| self.suspensions.affected_by(&c.kind, &c.agency))
            {
                self.suspensions.reload(self.store.as_ref()).await?;
            }
            for c in &changes {
                self.drop_entry(&c.agency);
            }
            if changes.iter().any(|c| c.kind == SIGNING_KEY_CHANGE) {
                self.keys_bell.send_modify(|n| *n = n.wrapping_add(1));
            }
            self.applied.store(last, Ordering::Release);
            if changes.len() < 1000 {
                return Ok(());
            }
        }
    }

    /// What is suspended, as this node knows it (loaded from the store on first use).
    pub async fn suspended(&self) -> Result<Arc<crate::suspension::View>, StoreError> {
        self.suspensions.view(self.store.as_ref()).await
    }

    /// Reads what is suspended again (after this node suspended or reinstated something).
    pub async fn reload_suspensions(&self) -> Result<(), StoreError> {
        self.suspensions.reload(self.store.as_ref()).await.map(drop)
    }

    /// Resolves a custom role's permissions against the catalog (for grant checks).
    pub fn role_permissions(&self, permissions: &[String]) -> tessera_core::PermissionSet {
        permissions
            .iter()
            .filter_map(|p| self.catalog.permission(p))
            .collect()
    }
}

/// The change-log kind of a platform signing-key change (written by `keys.rs`).
pub const SIGNING_KEY_CHANGE: &str = "signing_key";

fn sources_bytes(sources: &[(String, String)]) -> usize {
    sources.iter().map(|(a, b)| a.len() + b.len() * 8).sum()
}
