//! The checkpointer and the pruner: background tasks every node runs.
//!
//! The checkpointer signs, per agency, a checkpoint of the chain head every `events` events or
//! `seconds` seconds, whichever comes first (defaults 1000 events / 60 s; `--audit-checkpoint-
//! events`, `--audit-checkpoint-seconds`). The pruner deletes events older than the retention
//! period (default 400 days; a platform-set override per agency, at least
//! [`MIN_RETENTION_DAYS`]) up to the newest checkpoint signed before the cutoff.
//!
//! INVARIANT: a checkpoint is signed only after the events since the previous checkpoint were
//! read back and found to link to that checkpoint's hash and to the head (a tampered chain is
//! never signed); the (agency, seq) primary key makes duplicates impossible when nodes race.
//! Neither task touches the append path: they read the heads, and write their own rows.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use ed25519_dalek::Signer as _;
use serde_json::json;
use tessera_core::AgencyId;
use tessera_store::{
    AuditCheckpoint, AuditRecord, ChainHash, Outcome, Store, StoreError, TenantScope,
};

use crate::audit::action::AuditAction;
use crate::audit::keys::AuditKeys;
use crate::audit::verify::checkpoint_message;
use crate::clock::Clock;

/// Checkpoint every this many events by default.
pub const DEFAULT_CHECKPOINT_EVENTS: i64 = 1000;
/// Checkpoint at most this many seconds after an event by default.
pub const DEFAULT_CHECKPOINT_SECONDS: i64 = 60;
/// Events are kept this many days by default.
pub const DEFAULT_RETENTION_DAYS: i64 = 400;
/// The shortest retention a platform admin may set for an agency.
pub const MIN_RETENTION_DAYS: i64 = 90;
/// The longest (100 years).
pub const MAX_RETENTION_DAYS: i64 = 36_500;

const DAY_MS: i64 = 86_400_000;
/// Events read per page while verifying. A page is decoded and hashed on the runtime's worker
/// with no await in between, and coalesced token-issue events carry every token's facts
/// (kilobytes each): pages of 1,000 held one core's requests for tens of milliseconds (pinned
/// introspection p99 38 ms behind an issue burst; 11 ms with pages of 200). Each page's read
/// lets the other tasks run.
const BATCH: u32 = 64;
/// Due agencies read per page. The scan reads only the heads the append path marked due (a
/// partial index by agency, migration 0015), not every agency's head as it did before.
const DUE_PAGE: u32 = 20_000;
/// Checkpoints stored per transaction.
const STORE_BATCH: usize = 256;
/// How often a pass sweeps every chain head rather than the marked ones (an hour).
const SWEEP_EVERY_MS: i64 = 3_600_000;

/// Checkpoint and retention settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditSettings {
    /// Checkpoint after this many events.
    pub checkpoint_events: i64,
    /// Checkpoint at most this many seconds after an event.
    pub checkpoint_seconds: i64,
    /// Retention in days when an agency has no override.
    pub retention_days: i64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            checkpoint_events: DEFAULT_CHECKPOINT_EVENTS,
            checkpoint_seconds: DEFAULT_CHECKPOINT_SECONDS,
            retention_days: DEFAULT_RETENTION_DAYS,
        }
    }
}

/// Why a checkpoint was not signed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain since the last checkpoint does not verify: it is not signed.
    #[error("agency `{agency}`: the audit chain does not verify at seq {seq}; not signing it")]
    Tampered {
        /// The agency.
        agency: AgencyId,
        /// The first bad sequence number.
        seq: i64,
    },
    /// No audit key can sign yet.
    #[error("no active audit key")]
    NoKey,
}

/// The checkpointer and pruner of this node.
pub struct Checkpointer {
    store: Arc<dyn Store>,
    admission: Arc<crate::gate::admission::Admission>,
    keys: Arc<AuditKeys>,
    clock: Arc<dyn Clock>,
    settings: AuditSettings,
    reported: Mutex<HashSet<(AgencyId, i64)>>,
    /// When this node last swept every chain head (ms), if it has.
    swept: Mutex<Option<i64>>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Checkpointer {
    /// A checkpointer signing with `keys`.
    pub fn new(
        store: Arc<dyn Store>,
        admission: Arc<crate::gate::admission::Admission>,
        keys: Arc<AuditKeys>,
        clock: Arc<dyn Clock>,
        settings: AuditSettings,
    ) -> Self {
        Self {
            store,
            admission,
            keys,
            clock,
            settings,
            reported: Mutex::default(),
            swept: Mutex::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> AuditSettings {
        self.settings
    }

    /// Signs a checkpoint for every agency that is due; returns how many this node stored.
    /// An agency whose chain does not verify is skipped (and logged once per head).
    pub async fn run_once(&self) -> Result<usize, CheckpointError> {
        let now = self.clock.now();
        if self.keys.signer(now / 1000).is_none() {
            let _ = self.keys.maintain(now / 1000).await;
        }
        let before = now.saturating_sub(self.settings.checkpoint_seconds.saturating_mul(1000));
        // A pass reads the heads the append path marked due. The first pass of this node, and
        // one an hour, sweeps every head instead: during a rolling upgrade, nodes of the
        // previous release append without marking.
        let sweep = self
            .swept
            .lock()
            .map(|s| s.is_none_or(|at| now.saturating_sub(at) >= SWEEP_EVERY_MS))
            .unwrap_or(true);
        let started = std::time::Instant::now();
        let mut after: Option<AgencyId> = None;
        let mut made = 0;
        let mut found = 0;
        loop {
            let due = self
                .store
                .audit_checkpoints_due(
                    self.settings.checkpoint_events.max(1),
                    before,
                    sweep,
                    after.as_ref(),
                    DUE_PAGE,
                )
                .await?;
            found += due.len();
            for chunk in due.chunks(STORE_BATCH) {
                let mut signed = Vec::with_capacity(chunk.len());
                for d in chunk {
                    match self.prepare(&d.agency_id).await {
                        Ok(Some(cp)) => signed.push(cp),
                        Ok(None) => {}
                        Err(CheckpointError::Tampered { agency, seq }) => {
                            let fresh = self
                                .reported
                                .lock()
                                .map(|mut r| r.insert((agency.clone(), seq)))
                                .unwrap_or(true);
                            if fresh {
                                tracing::error!(%agency, seq, "audit chain does not verify: checkpoint refused (possible tampering)");
                            }
                        }
                        Err(CheckpointError::NoKey) => return Err(CheckpointError::NoKey),
                        Err(e) => {
                            tracing::warn!(agency = %d.agency_id, error = %e, "audit checkpoint failed")
                        }
                    }
                }
                // One transaction for the chunk's checkpoints (a commit each was most of the
                // checkpointer's cost on the primary at 100k agencies).
                match self.store.insert_audit_checkpoints(&signed).await {
                    Ok(n) => made += n,
                    Err(e) => {
                        tracing::warn!(error = %e, checkpoints = signed.len(), "audit checkpoints not stored")
                    }
                }
            }
            match due.last() {
                Some(d) if due.len() == DUE_PAGE as usize => after = Some(d.agency_id.clone()),
                _ => break,
            }
        }
        if sweep {
            if let Ok(mut s) = self.swept.lock() {
                *s = Some(now);
            }
        }
        crate::metrics::audit_checkpoint_pass(found, made, started.elapsed());
        Ok(made)
    }

    /// Signs a checkpoint of the agency's current head, after verifying the events since its
    /// previous checkpoint. Returns whether a new checkpoint was stored.
    pub async fn checkpoint(&self, agency: &AgencyId) -> Result<bool, CheckpointError> {
        match self.prepare(agency).await? {
            Some((scope, cp)) => Ok(self.store.insert_audit_checkpoint(&scope, &cp).await?),
            None => Ok(false),
        }
    }

    /// Verifies the agency's events since its previous checkpoint and signs its head: the
    /// checkpoint to store with its scope, or `None` when the head is already checkpointed.
    async fn prepare(
        &self,
        agency: &AgencyId,
    ) -> Result<Option<(TenantScope, AuditCheckpoint)>, CheckpointError> {
        let scope = self.admission.admit(agency.clone());
        // The head, the last checkpoint and the first page of events after it: one read.
        let Some(basis) = self.store.audit_checkpoint_basis(&scope, BATCH).await? else {
            return Ok(None);
        };
        let head = basis.head;
        let (mut seq, mut prev) = match &basis.checkpoint {
            Some(cp) => (cp.seq, cp.hash),
            None => (0, ChainHash::GENESIS),
        };
        if head.seq <= seq {
            // Already signed (by another node, or stored before its head was updated): only
            // the head's mark is left to clear.
            self.store
                .audit_checkpointed(&[(scope, seq, self.clock.now())])
                .await?;
            return Ok(None);
        }
        let tampered = |seq: i64| CheckpointError::Tampered {
            agency: agency.clone(),
            seq,
        };
        let mut batch = basis.events;
        loop {
            // No event, or none that continues the chain within the head: a gap.
            if batch.first().is_none_or(|e| e.seq > head.seq) {
                return Err(tampered(seq + 1));
            }
            for e in batch.iter().take_while(|e| e.seq <= head.seq) {
                if e.seq != seq + 1 || e.prev_hash != prev || !e.hash_is_valid() {
                    return Err(tampered(seq + 1));
                }
                seq = e.seq;
                prev = e.hash;
            }
            if seq >= head.seq {
                break;
            }
            batch = self.store.audit_chain(&scope, seq, BATCH).await?;
        }
        if prev != head.hash {
            return Err(tampered(head.seq));
        }
        let now = self.clock.now();
        let (kid, key) = self.keys.signer(now / 1000).ok_or(CheckpointError::NoKey)?;
        let msg = checkpoint_message(agency.as_str(), head.seq, &head.hash, now, &kid);
        let cp = AuditCheckpoint {
            agency_id: agency.clone(),
            seq: head.seq,
            hash: head.hash,
            at: now,
            signature: key.sign(&msg).to_bytes().to_vec(),
            kid,
        };
        Ok(Some((scope, cp)))
    }

    /// The retention of an agency in days: its override, else the default.
    pub fn retention_days(&self, override_days: Option<i64>) -> i64 {
        override_days.unwrap_or(self.settings.retention_days)
    }

    /// Prunes every agency's events older than its retention, up to a checkpoint; returns the
    /// events deleted.
    pub async fn prune_once(&self) -> Result<u64, CheckpointError> {
        let now = self.clock.now();
        let mut after: Option<AgencyId> = None;
        let mut deleted = 0;
        loop {
            let page = self.store.audit_retention_all(after.as_ref(), 500).await?;
            for (agency, days) in &page {
                let days = self.retention_days(*days);
                let cutoff = now.saturating_sub(days.saturating_mul(DAY_MS));
                let scope = self.admission.admit(agency.clone());
                let record = AuditRecord {
                    id: tessera_core::EventId::generate_at(
                        u64::try_from(now).unwrap_or(0),
                        &mut rand::thread_rng(),
                    ),
                    at: now,
                    actor: "system".into(),
                    on_behalf_of: None,
                    action: AuditAction::AuditPrune.into(),
                    target: Some(agency.to_string()),
                    outcome: Outcome::Success,
                    request_id: "audit-retention".into(),
                    ip: None,
                    user_agent: None,
                    detail: json!({ "retention_days": days }),
                };
                match self.store.prune_audit(&scope, cutoff, &record).await {
                    Ok(Some(p)) => {
                        tracing::info!(%agency, through_seq = p.through_seq, events = p.events, "audit events pruned");
                        deleted += p.events;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(%agency, error = %e, "audit pruning failed"),
                }
            }
            match page.last() {
                Some((a, _)) if page.len() == 500 => after = Some(a.clone()),
                _ => break,
            }
        }
        Ok(deleted)
    }
}
