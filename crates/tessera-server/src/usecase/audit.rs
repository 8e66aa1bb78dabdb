//! Reading an agency's audit log: filtered pages, the whole hash chain as JSON Lines, and
//! verification of the chain. Read-only: nothing here writes to the log it reads.
//! INVARIANT: the chain is read in bounded batches, in sequence order.

use schemars::JsonSchema;
use serde::Serialize;
use tessera_store::audit::verify_chain;
use tessera_store::{AuditEvent, AuditFilter, ChainHash, Page, PageRequest, Store};

use crate::error::ApiError;
use crate::gate::authorized::Authorized;

const BATCH: u32 = 1000;

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

/// The agency's whole chain as JSON Lines, hashes included. Route: `audit_log.read` on the
/// agency.
pub async fn export(store: &dyn Store, auth: &Authorized) -> Result<String, ApiError> {
    let scope = auth.scope()?;
    let mut out = String::new();
    let mut after = 0;
    loop {
        let batch = store.audit_chain(&scope, after, BATCH).await?;
        for e in &batch {
            out.push_str(&serde_json::to_string(e).map_err(ApiError::internal)?);
            out.push('\n');
        }
        match batch.last() {
            Some(e) if batch.len() == BATCH as usize => after = e.seq,
            _ => break,
        }
    }
    Ok(out)
}

/// The result of verifying a chain.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Verification {
    /// Whether every event links to the one before it and hashes to its stored hash.
    pub ok: bool,
    /// Events checked.
    pub events: u64,
    /// Signed checkpoints checked.
    pub checkpoints: u64,
    /// The sequence number of the first event that breaks the chain.
    pub first_bad: Option<i64>,
}

/// Verifies the agency's hash chain. Route: `audit_log.read` on the agency.
pub async fn verify(store: &dyn Store, auth: &Authorized) -> Result<Verification, ApiError> {
    let scope = auth.scope()?;
    let (mut prev, mut seq, mut events) = (ChainHash::GENESIS, 0i64, 0u64);
    loop {
        let batch = store.audit_chain(&scope, seq, BATCH).await?;
        match verify_chain(prev, seq, &batch) {
            Ok(last) => prev = last,
            Err(bad) => {
                return Ok(Verification {
                    ok: false,
                    events: events + batch.iter().filter(|e| e.seq < bad).count() as u64,
                    checkpoints: 0,
                    first_bad: Some(bad),
                })
            }
        }
        events += batch.len() as u64;
        match batch.last() {
            Some(e) if batch.len() == BATCH as usize => seq = e.seq,
            _ => break,
        }
    }
    Ok(Verification {
        ok: true,
        events,
        checkpoints: 0,
        first_bad: None,
    })
}
