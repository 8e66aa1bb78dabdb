//! Handlers of the check API (`/v1/check`, `/v1/check/batch`) and of who-holds-what
//! (`…/principals/{id}/permissions`, `…/accounts/{acc}/principals`): extract, call
//! `usecase::check` or `usecase::principals`, answer. Their permissions are declared in the
//! route table (`super::table`); asking about another principal needs `bindings.read`, which
//! the use cases check.

use axum::extract::{Path, State};
use tessera_core::{AccountId, PrincipalId};

use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::http::extract::{parse_id, Json, ListQuery};
use crate::http::state::AppState;
use crate::usecase::check::{self, BatchRequest, BatchResponse, CheckRequest, CheckResponse};
use crate::usecase::principals::{self, EffectivePermissions, Holders};

/// `POST /v1/check`: any valid credential (NUL in the body is data: a check is never stored).
pub async fn check(
    State(s): State<AppState>,
    auth: Authorized,
    Json(req): Json<CheckRequest, true>,
) -> Result<axum::Json<CheckResponse>, ApiError> {
    Ok(axum::Json(check::check(&s, &auth, &req).await?))
}

/// `POST /v1/check/batch`: any valid credential; each check as for `/v1/check`.
pub async fn batch(
    State(s): State<AppState>,
    auth: Authorized,
    Json(req): Json<BatchRequest, true>,
) -> Result<axum::Json<BatchResponse>, ApiError> {
    Ok(axum::Json(check::batch(&s, &auth, &req).await?))
}

/// `GET …/principals/{id}/permissions[?account=]`: `bindings.read` at the agency (or account),
/// checked by the use case.
pub async fn permissions(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, id)): Path<(String, String)>,
    q: ListQuery,
) -> Result<axum::Json<EffectivePermissions>, ApiError> {
    let principal: PrincipalId = parse_id(&id)?;
    let account = q.get("account").map(parse_id::<AccountId>).transpose()?;
    Ok(axum::Json(
        principals::effective(&s, &auth, principal, account).await?,
    ))
}

/// `GET …/accounts/{acc}/principals?permission=`: `bindings.read` on the account.
pub async fn principals(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<Holders>, ApiError> {
    let permission = q
        .get("permission")
        .ok_or_else(|| ApiError::invalid("`permission` is required"))?;
    Ok(axum::Json(
        principals::holders(&s, &auth, permission, q.cursor.as_deref(), q.limit).await?,
    ))
}
