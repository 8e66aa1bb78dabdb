//! Handlers of `/v1/agencies/{agy}/audit[/export|/verify|/retention]`: parse the query, call
//! `usecase::audit`, answer (JSON, or streamed JSON Lines for the export). Their permissions
//! are declared in the route table (`super::table`).

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use tessera_core::time::parse_rfc3339;
use tessera_store::{AuditEvent, AuditFilter};

use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::http::extract::{Json, ListQuery};
use crate::http::list::List;
use crate::http::state::AppState;
use crate::usecase::audit::{self, ExportRange, Retention, SetRetention, Verification};

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
    let page = q.page();
    let f = &f;
    let (auth, page) = (&auth, &page);
    let items = crate::http::replica::read(&s, auth, |st| {
        Box::pin(async move { audit::list(st.as_ref(), auth, f, page).await })
    })
    .await?;
    Ok(axum::Json(items.into()))
}

/// `GET …/audit/export?from=&to=&cursor=`: `audit_log.read` on the agency; streamed JSON
/// Lines, a bounded batch of events at a time.
pub async fn export(
    State(s): State<AppState>,
    auth: Authorized,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    let mut range = ExportRange::default();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let time = |name: &str| {
            parse_rfc3339(&v)
                .ok_or_else(|| ApiError::invalid(format!("`{name}` must be an RFC 3339 time")))
        };
        match &*k {
            "from" => range.from = Some(time("from")?),
            "to" => range.to = Some(time("to")?),
            "cursor" => {
                range.cursor = Some(v.parse::<i64>().ok().filter(|c| *c >= 0).ok_or_else(|| {
                    ApiError::invalid("`cursor` is not a cursor this export returned")
                })?)
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "unknown query parameter `{}`",
                    other.chars().take(64).collect::<String>()
                )))
            }
        }
    }
    let export = audit::export(&s, &auth, range).await?;
    let stream = futures_util::stream::unfold(export, |mut e| async move {
        match e.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok::<_, std::io::Error>(chunk), e)),
            Ok(None) => None,
            Err(err) => {
                // Headers are sent: the connection is cut, and the missing `end` line tells
                // the client the export is incomplete (resume from the last `cursor`).
                tracing::warn!(error = %err.detail, "audit export stopped");
                Some((Err(std::io::Error::other("audit export failed")), e))
            }
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/jsonl"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    ))
}

/// `GET …/audit/verify`: `audit_log.read` on the agency.
pub async fn verify(
    State(s): State<AppState>,
    auth: Authorized,
) -> Result<axum::Json<Verification>, ApiError> {
    Ok(axum::Json(audit::verify(&s, &auth).await?))
}

/// `GET …/audit/retention`: `audit_log.read` on the agency.
pub async fn retention(
    State(s): State<AppState>,
    auth: Authorized,
) -> Result<axum::Json<Retention>, ApiError> {
    Ok(axum::Json(audit::retention(&s, &auth).await?))
}

/// `PUT …/audit/retention`: `audit_log.retention` (platform principals only).
pub async fn set_retention(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<SetRetention>,
) -> Result<axum::Json<Retention>, ApiError> {
    Ok(axum::Json(audit::set_retention(&s, &auth, body).await?))
}
