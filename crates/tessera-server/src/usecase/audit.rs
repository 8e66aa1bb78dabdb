//! Reading an agency's audit log: filtered pages, the export (streamed JSON Lines, events and
//! signed checkpoints interleaved in chain order), verification of the chain against its
//! checkpoints, and the retention setting.
//! INVARIANT: the chain is read in bounded batches, in sequence order; an export that does not
//! start at seq 1 starts with the signed checkpoint that anchors it, so every export verifies
//! on its own; only platform principals change retention, never below the minimum.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_core::time::format_rfc3339;
use tessera_store::audit::EventFields;
use tessera_store::{
    AuditCheckpoint, AuditEvent, AuditFilter, Page, PageRequest, Store, TenantScope,
};

use crate::audit::action::AuditAction;
use crate::audit::checkpoint::{MAX_RETENTION_DAYS, MIN_RETENTION_DAYS};
use crate::audit::verify::{ChainVerifier, CheckpointView, EventView, Failure, Reason};
use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::services::Services;

/// Events read per batch.
pub const BATCH: u32 = 1000;

/// A page of the agency's audit events matching `filter`, their personal fields opened with
/// the agency's data key (or `[erased]` when it was destroyed). Route: `audit_log.read` on the
/// agency.
pub async fn list(
    store: &dyn Store,
    auth: &Authorized,
    filter: &AuditFilter,
    page: &PageRequest,
) -> Result<Page<AuditEvent>, ApiError> {
    let scope = auth.scope()?;
    let mut page = store.list_audit(&scope, filter, page).await?;
    let now = page.items.last().map_or(0, |e| e.at);
    let admit = |a| auth.admission.admit(a);
    crate::secrets::personal::reveal(&auth.data_keys, &scope, admit, &mut page.items, now).await;
    Ok(page)
}

/// Where an export starts and stops.
#[derive(Clone, Debug, Default)]
pub struct ExportRange {
    /// Events at or after this time (epoch ms), rounded down to the anchoring checkpoint.
    pub from: Option<i64>,
    /// Stop before the first event after this time (epoch ms).
    pub to: Option<i64>,
    /// Resume after this sequence number (the `cursor` of the last line received), rounded
    /// down to the anchoring checkpoint.
    pub cursor: Option<i64>,
}

/// An export in progress: yields the next chunk of lines until the end.
#[derive(Debug)]
pub struct Export {
    store: std::sync::Arc<dyn Store>,
    /// The primary, when `store` is a replica: a chunk the replica fails is read from it.
    fallback: Option<std::sync::Arc<dyn Store>>,
    scope: TenantScope,
    after: i64,
    to: Option<i64>,
    anchor: Option<AuditCheckpoint>,
    done: bool,
    last: i64,
}

/// The JSON Lines of a checkpoint.
pub fn checkpoint_line(cp: &AuditCheckpoint) -> String {
    json!({
        "type": "checkpoint",
        "cursor": cp.seq.to_string(),
        "agency_id": cp.agency_id.as_str(),
        "seq": cp.seq,
        "hash": cp.hash.to_hex(),
        "at": format_rfc3339(cp.at),
        "kid": cp.kid,
        "signature": URL_SAFE_NO_PAD.encode(&cp.signature),
    })
    .to_string()
}

/// The JSON line of an event: `type` and `cursor`, then the event's fields exactly as the list
/// serves them (its stored form: `detail` as canonical JSON, `at` in RFC 3339 to the ms).
pub fn event_line(e: &AuditEvent, out: &mut String) -> Result<(), ApiError> {
    let body = serde_json::to_string(e).map_err(ApiError::internal)?;
    out.push_str("{\"type\":\"event\",\"cursor\":\"");
    out.push_str(&e.seq.to_string());
    out.push_str("\",");
    out.push_str(body.get(1..).unwrap_or("}"));
    out.push('\n');
    Ok(())
}

/// Starts an export of the agency's chain. Route: `audit_log.read` on the agency.
pub async fn export(
    s: &Services,
    auth: &Authorized,
    range: ExportRange,
) -> Result<Export, ApiError> {
    let scope = auth.scope()?;
    let (scope, range) = (&scope, &range);
    let mut export = s
        .reads
        .run(auth.read_floor(s.engine.applied()), |st| {
            Box::pin(async move { Export::start(st, scope.clone(), range.clone()).await })
        })
        .await?;
    if s.reads.has_replica() {
        export.fallback = Some(s.store.clone());
    }
    Ok(export)
}

impl Export {
    /// Starts an export of the scope's chain (the route checks the caller first).
    pub async fn start(
        store: std::sync::Arc<dyn Store>,
        scope: TenantScope,
        range: ExportRange,
    ) -> Result<Export, ApiError> {
        // The first sequence number wanted.
        let mut first = range.cursor.map_or(1, |c| c.saturating_add(1));
        if let Some(from) = range.from {
            let page = store
                .list_audit(
                    &scope,
                    &AuditFilter {
                        after: Some(from),
                        ..Default::default()
                    },
                    &PageRequest {
                        limit: 1,
                        cursor: None,
                    },
                )
                .await?;
            first = first.max(page.items.first().map_or(i64::MAX, |e| e.seq));
        }
        // A pruned chain starts after its anchoring checkpoint.
        if let Some(e) = store.audit_chain(&scope, 0, 1).await?.first() {
            first = first.max(e.seq);
        }
        let anchor = if first > 1 {
            store
                .audit_checkpoint_at_or_before(&scope, first.saturating_sub(1))
                .await?
        } else {
            None
        };
        let after = anchor.as_ref().map_or(0, |a| a.seq);
        Ok(Export {
            store,
            fallback: None,
            scope,
            after,
            to: range.to,
            anchor,
            done: false,
            last: after,
        })
    }

    /// The next chunk of lines (at most [`BATCH`] events and their checkpoints), or `None` at
    /// the end (after the trailer line). A chunk a replica fails is read again from the
    /// primary, from the same position.
    pub async fn next_chunk(&mut self) -> Result<Option<String>, ApiError> {
        let (anchor, done, after, last) = (self.anchor.clone(), self.done, self.after, self.last);
        match self.chunk().await {
            Err(e) if e.code == crate::error::ErrorCode::Unavailable && self.fallback.is_some() => {
                tracing::warn!(
                    "read replica failed during an audit export: continuing on the primary"
                );
                if let Some(primary) = self.fallback.take() {
                    self.store = primary;
                }
                (self.anchor, self.done, self.after, self.last) = (anchor, done, after, last);
                self.chunk().await
            }
            other => other,
        }
    }

    async fn chunk(&mut self) -> Result<Option<String>, ApiError> {
        if self.done {
            return Ok(None);
        }
        let mut out = String::with_capacity(512 * BATCH as usize);
        if let Some(a) = self.anchor.take() {
            out.push_str(&checkpoint_line(&a));
            out.push('\n');
        }
        let events = self
            .store
            .audit_chain(&self.scope, self.after, BATCH)
            .await?;
        let events: Vec<&AuditEvent> = events
            .iter()
            .take_while(|e| self.to.is_none_or(|to| e.at <= to))
            .collect();
        let Some(last) = events.last().map(|e| e.seq) else {
            self.done = true;
            if self.to.is_none() {
                // Checkpoints beyond the last event (there should be none): exported, so that
                // an offline verifier sees the events they cover are missing.
                for c in self
                    .store
                    .audit_checkpoints(&self.scope, self.after, BATCH)
                    .await?
                {
                    out.push_str(&checkpoint_line(&c));
                    out.push('\n');
                }
            }
            out.push_str(
                &json!({ "type": "end", "cursor": self.last.to_string(), "last_seq": self.last })
                    .to_string(),
            );
            out.push('\n');
            return Ok(Some(out));
        };
        let cps = self
            .store
            .audit_checkpoints(&self.scope, self.after, BATCH)
            .await?;
        let mut cps = cps.iter().filter(|c| c.seq <= last).peekable();
        for e in events {
            while let Some(c) = cps.next_if(|c| c.seq < e.seq) {
                out.push_str(&checkpoint_line(c));
                out.push('\n');
            }
            event_line(e, &mut out)?;
            if let Some(c) = cps.next_if(|c| c.seq == e.seq) {
                out.push_str(&checkpoint_line(c));
                out.push('\n');
            }
        }
        self.after = last;
        self.last = last;
        Ok(Some(out))
    }
}

/// The result of verifying a chain.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Verification {
    /// Whether the chain and its checkpoints verify.
    pub ok: bool,
    /// Events checked.
    pub events: u64,
    /// Signed checkpoints checked (signature valid, hash matching the chain).
    pub checkpoints: u64,
    /// The first bad (or missing) sequence number.
    pub first_bad: Option<i64>,
    /// Why (stable code): `hash_mismatch`, `broken_link`, `sequence_gap`, `out_of_order`,
    /// `checkpoint_signature`, `checkpoint_mismatch`, `missing_events`, `unknown_key`,
    /// `head_mismatch`, `wrong_agency`.
    pub reason: Option<Reason>,
    /// Words for people.
    pub detail: Option<String>,
    /// 0 when the chain starts at seq 1; else the checkpoint it starts from (after pruning).
    pub start_seq: i64,
    /// The last sequence number verified.
    pub last_seq: i64,
    /// The newest checkpoint that matched the chain. Events up to it cannot be altered without
    /// the audit signing key; events after it are protected only by the hash chain (someone
    /// with write access to the database could rewrite them) until the next checkpoint, at
    /// most `--audit-checkpoint-seconds` later.
    pub anchored_seq: Option<i64>,
}

fn event_view<'a>(e: &'a AuditEvent, detail: &'a str) -> EventView<'a> {
    EventView {
        fields: EventFields {
            seq: e.seq,
            agency: e.agency_id.as_str(),
            id: e.id.as_str(),
            at: e.at,
            actor: &e.actor,
            on_behalf_of: e.on_behalf_of.as_deref(),
            action: &e.action,
            target: e.target.as_deref(),
            outcome: e.outcome.as_str(),
            request_id: &e.request_id,
            ip: e.ip.as_deref(),
            user_agent: e.user_agent.as_deref(),
            detail,
        },
        prev_hash: e.prev_hash,
        hash: e.hash,
    }
}

fn checkpoint_view(c: &AuditCheckpoint) -> CheckpointView<'_> {
    CheckpointView {
        agency: c.agency_id.as_str(),
        seq: c.seq,
        hash: c.hash,
        at: c.at,
        kid: &c.kid,
        signature: &c.signature,
    }
}

/// Verifies the agency's chain, its checkpoints (against this server's audit keys) and its
/// head. Route: `audit_log.read` on the agency.
pub async fn verify(s: &Services, auth: &Authorized) -> Result<Verification, ApiError> {
    let scope = auth.scope()?;
    let keys: HashMap<String, ed25519_dalek::VerifyingKey> = s
        .audit_keys
        .ring()
        .iter()
        .map(|k| (k.kid.clone(), k.public))
        .collect();
    let (scope, keys) = (&scope, &keys);
    s.reads
        .run(auth.read_floor(s.engine.applied()), |st| {
            Box::pin(async move { verify_scope(st.as_ref(), scope, keys).await })
        })
        .await
}

/// [`verify`] for a scope, with these trusted keys.
pub async fn verify_scope(
    store: &dyn Store,
    scope: &TenantScope,
    keys: &HashMap<String, ed25519_dalek::VerifyingKey>,
) -> Result<Verification, ApiError> {
    let mut v = ChainVerifier::new(keys, Some(scope.agency().as_str()));
    // The head first: events committed after it are not looked at.
    let head = store.audit_head(scope).await?;
    let head_seq = head.map_or(0, |h| h.seq);
    let mut prunes: Vec<(i64, String)> = Vec::new();
    let outcome = async {
        let mut cps: std::collections::VecDeque<AuditCheckpoint> =
            store.audit_checkpoints(scope, 0, BATCH).await?.into();
        let mut cp_after = cps.back().map_or(i64::MAX, |c| c.seq);
        let mut after = 0;
        let mut detail = String::new();
        loop {
            let batch = store.audit_chain(scope, after, BATCH).await?;
            let batch: Vec<&AuditEvent> = batch.iter().take_while(|e| e.seq <= head_seq).collect();
            for e in &batch {
                loop {
                    if cps.is_empty() && cp_after != i64::MAX {
                        cps = store
                            .audit_checkpoints(scope, cp_after, BATCH)
                            .await?
                            .into();
                        cp_after = cps.back().map_or(i64::MAX, |c| c.seq);
                    }
                    match cps.front() {
                        Some(c) if c.seq < e.seq => {
                            if let Err(f) = v.checkpoint(&checkpoint_view(c)) {
                                return Ok(Err(f));
                            }
                            cps.pop_front();
                        }
                        _ => break,
                    }
                }
                detail.clear();
                detail.push_str(&e.detail.to_string());
                if let Err(f) = v.event(&event_view(e, &detail)) {
                    return Ok(Err(f));
                }
                if e.action == AuditAction::AuditPrune.as_str() {
                    if let (Some(t), Some(h)) = (
                        e.detail["through_seq"].as_i64(),
                        e.detail["checkpoint_hash"].as_str(),
                    ) {
                        prunes.push((t, h.to_owned()));
                    }
                }
            }
            match batch.last() {
                Some(e) if batch.len() == BATCH as usize => after = e.seq,
                _ => break,
            }
        }
        // The checkpoints after the last event: each must match it (or names missing events).
        loop {
            if cps.is_empty() && cp_after != i64::MAX {
                cps = store
                    .audit_checkpoints(scope, cp_after, BATCH)
                    .await?
                    .into();
                cp_after = cps.back().map_or(i64::MAX, |c| c.seq);
            }
            let Some(c) = cps.pop_front() else { break };
            if c.seq > head_seq {
                // Signed after the head was read (not this verification's business), unless
                // the head, read again, is still before it: then its events are gone.
                let fresh = store.audit_head(scope).await?.map_or(0, |h| h.seq);
                if fresh >= c.seq {
                    break;
                }
            }
            if let Err(f) = v.checkpoint(&checkpoint_view(&c)) {
                return Ok(Err(f));
            }
        }
        Ok::<_, ApiError>(Ok(v))
    }
    .await?;
    let report = |cov: Option<&crate::audit::verify::Coverage>, f: Option<Failure>| Verification {
        ok: f.is_none(),
        events: cov.map_or(0, |c| c.events),
        checkpoints: cov.map_or(0, |c| c.checkpoints),
        first_bad: f.as_ref().and_then(|f| f.seq),
        reason: f.as_ref().map(|f| f.reason),
        detail: f.map(|f| f.detail),
        start_seq: cov.map_or(0, |c| c.start_seq),
        last_seq: cov.map_or(0, |c| c.last_seq),
        anchored_seq: cov.and_then(|c| c.anchored_seq),
    };
    let v = match outcome {
        Ok(v) => v,
        Err(f) => {
            return Ok(Verification {
                ok: false,
                first_bad: f.seq,
                reason: Some(f.reason),
                detail: Some(f.detail),
                ..report(None, None)
            });
        }
    };
    let last_hash = v.last_hash();
    let cov = match v.finish() {
        Ok(c) => c,
        Err(f) => return Ok(report(None, Some(f))),
    };
    let bad = |reason, seq, detail: &str| Failure {
        reason,
        seq: Some(seq),
        detail: detail.to_owned(),
    };
    let pruned_ok = cov.start_seq == 0
        || prunes
            .iter()
            .any(|(t, h)| *t == cov.start_seq && Some(h.as_str()) == cov.start_hash.as_deref());
    let failure = match head {
        _ if !pruned_ok => Some(bad(
            Reason::MissingEvents,
            1,
            "the chain starts at a checkpoint, but no `audit.prune` event records that pruning",
        )),
        None => Some(bad(
            Reason::HeadMismatch,
            cov.last_seq,
            "the chain has events but no head",
        )),
        Some(h) if h.seq > cov.last_seq => Some(bad(
            Reason::MissingEvents,
            cov.last_seq + 1,
            "the chain ends before its head",
        )),
        Some(h) if h.seq == cov.last_seq && Some(h.hash) != last_hash => Some(bad(
            Reason::HeadMismatch,
            h.seq,
            "the head's hash is not the last event's",
        )),
        Some(_) => None,
    };
    Ok(report(Some(&cov), failure))
}

/// An agency's audit retention.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Retention {
    /// The retention in force, in days.
    pub days: i64,
    /// The platform-set override, if any.
    pub override_days: Option<i64>,
    /// The server's default (`--audit-retention-days`).
    pub default_days: i64,
    /// The shortest override allowed.
    pub minimum_days: i64,
}

/// `PUT …/audit/retention`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRetention {
    /// Days to keep events, 90 to 36500; null: back to the server's default.
    pub days: Option<i64>,
}

/// The agency's retention. Route: `audit_log.read` on the agency.
pub async fn retention(s: &Services, auth: &Authorized) -> Result<Retention, ApiError> {
    let scope = auth.scope()?;
    let o = s.store.audit_retention(&scope).await?;
    Ok(Retention {
        days: s.checkpointer.retention_days(o),
        override_days: o,
        default_days: s.checkpointer.settings().retention_days,
        minimum_days: MIN_RETENTION_DAYS,
    })
}

/// Sets the agency's retention. Route: `audit_log.retention`, platform level only (an agency
/// admin cannot shorten its own evidence), never below [`MIN_RETENTION_DAYS`].
pub async fn set_retention(
    s: &Services,
    auth: &Authorized,
    input: SetRetention,
) -> Result<Retention, ApiError> {
    let scope = auth.scope()?;
    if let Some(d) = input.days {
        if !(MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&d) {
            return Err(ApiError::invalid(format!(
                "`days` must be {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS}"
            )));
        }
    }
    let previous = s.store.audit_retention(&scope).await?;
    let audit = auth.audit(
        s,
        AuditAction::AuditRetentionSet,
        Some(auth.agency.as_str()),
        json!({ "days": input.days, "previous": previous }),
    );
    s.store
        .set_audit_retention(
            &scope,
            input.days,
            &auth.caller.principal.to_string(),
            s.clock.now(),
            &audit,
        )
        .await?;
    retention(s, auth).await
}
