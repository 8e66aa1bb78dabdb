//! Handlers of `/v1/agencies/{agy}/audit[/export|/verify]`: parse the query, call
//! `usecase::audit`, answer (JSON, or JSON Lines for the export). Their permission,
//! `audit_log.read`, is declared in the route table (`super::table`).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use tessera_core::time::parse_rfc3339;
use tessera_store::{AuditEvent, AuditFilter};

use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::http::extract::ListQuery;
use crate::http::list::List;
use crate::http::state::AppState;
use crate::usecase::audit::{self, Verification};

/// `GET …/audit?after=&actor=&action=`: `audit_log.read` on the agency.
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
        audit::list(s.store.as_ref(), &auth, &f, &q.page())
            .await?
            .into(),
    ))
}

/// `GET …/audit/export`: `audit_log.read` on the agency; JSON Lines.
pub async fn export(
    State(s): State<AppState>,
    auth: Authorized,
) -> Result<impl IntoResponse, ApiError> {
    let out = audit::export(s.store.as_ref(), &auth).await?;
    Ok(([(header::CONTENT_TYPE, "application/jsonl")], out))
}

/// `GET …/audit/verify`: `audit_log.read` on the agency.
pub async fn verify(
    State(s): State<AppState>,
    auth: Authorized,
) -> Result<axum::Json<Verification>, ApiError> {
    Ok(axum::Json(audit::verify(s.store.as_ref(), &auth).await?))
}
