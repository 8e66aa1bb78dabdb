//! Handlers of `/v1/agencies/{agy}/limits`: extract, call `usecase::limits`, answer. Their
//! permissions are declared in the route table (`super::table`).

use axum::extract::State;

use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::http::extract::Json;
use crate::http::state::AppState;
use crate::usecase::limits::{self, AgencyLimitsView, PutLimits};

/// `GET /v1/agencies/{agy}/limits`: `agencies.read` on the agency.
pub async fn get(
    State(s): State<AppState>,
    auth: Authorized,
) -> Result<axum::Json<AgencyLimitsView>, ApiError> {
    Ok(axum::Json(limits::get(&s, &auth).await?))
}

/// `PUT /v1/agencies/{agy}/limits`: `agencies.write` (platform).
pub async fn put(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<PutLimits>,
) -> Result<axum::Json<AgencyLimitsView>, ApiError> {
    Ok(axum::Json(limits::put(&s, &auth, body).await?))
}
