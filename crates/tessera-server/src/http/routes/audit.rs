//! The audit log of an agency (`audit_log.read`): filtered pages, a JSON Lines export with
//! the chain hashes, and verification of the hash chain.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use schemars::JsonSchema;
use serde::Serialize;
use tessera_core::time::parse_rfc3339;
use tessera_store::audit::verify_chain;
use tessera_store::{AuditEvent, AuditFilter, ChainHash};

use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::http::extract::ListQuery;
use crate::http::list::List;
use crate::http::state::AppState;

const BATCH: u32 = 1000;

/// Requires `audit_log.read` on the agency.
pub async fn list(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<AuditEvent>>, ApiError> {
    q.cursor_as::<i64>()?;
    let mut f = AuditFilter::default();
    for (k, v) in &q.rest {
        match k.as_str() {
            "after" => {
                f.after = Some(
                    parse_rfc3339(v)
                        .ok_or_else(|| ApiError::invalid("`after` must be an RFC 3339 time"))?,
                )
            }
            "actor" => f.actor = Some(v.clone()),
            "action" => f.action = Some(v.clone()),
            other => {
                return Err(ApiError::invalid(format!(
                    "unknown query parameter `{other}`"
                )))
            }
        }
    }
    Ok(axum::Json(
        s.store
            .list_audit(&auth.scope()?, &f, &q.page())
            .await?
            .into(),
    ))
}

/// Requires `audit_log.read` on the agency.
pub async fn export(
    State(s): State<AppState>,
    auth: Authorized,
) -> Result<impl IntoResponse, ApiError> {
    let scope = auth.scope()?;
    let mut out = String::new();
    let mut after = 0;
    loop {
        let batch = s.store.audit_chain(&scope, after, BATCH).await?;
        for e in &batch {
            out.push_str(&serde_json::to_string(e).map_err(ApiError::internal)?);
            out.push('\n');
        }
        match batch.last() {
            Some(e) if batch.len() == BATCH as usize => after = e.seq,
            _ => break,
        }
    }
    Ok(([(header::CONTENT_TYPE, "application/jsonl")], out))
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

/// Requires `audit_log.read` on the agency.
pub async fn verify(
    State(s): State<AppState>,
    auth: Authorized,
) -> Result<axum::Json<Verification>, ApiError> {
    let scope = auth.scope()?;
    let (mut prev, mut seq, mut events) = (ChainHash::GENESIS, 0i64, 0u64);
    loop {
        let batch = s.store.audit_chain(&scope, seq, BATCH).await?;
        match verify_chain(prev, seq, &batch) {
            Ok(last) => prev = last,
            Err(bad) => {
                return Ok(axum::Json(Verification {
                    ok: false,
                    events: events + batch.iter().filter(|e| e.seq < bad).count() as u64,
                    checkpoints: 0,
                    first_bad: Some(bad),
                }))
            }
        }
        events += batch.len() as u64;
        match batch.last() {
            Some(e) if batch.len() == BATCH as usize => seq = e.seq,
            _ => break,
        }
    }
    Ok(axum::Json(Verification {
        ok: true,
        events,
        checkpoints: 0,
        first_bad: None,
    }))
}
