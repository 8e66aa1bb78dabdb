//! Agencies: created and listed by platform staff (`agencies.create`, `agencies.read` in the
//! platform tenant); read and renamed by their own admins; deleted by the platform.

use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tessera_core::AgencyId;
use tessera_store::{Agency, Status};

use super::validate;
use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::http::extract::{Json, ListQuery};
use crate::http::list::List;
use crate::http::state::AppState;

/// `POST /v1/agencies`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgency {
    /// Display name, 1 to 200 characters.
    #[schemars(extend("minLength" = 1, "maxLength" = 200, "pattern" = super::validate::NAME_PATTERN))]
    pub name: String,
}

/// `PATCH /v1/agencies/{agy}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgency {
    /// New display name.
    #[schemars(extend("minLength" = 1, "maxLength" = 200, "pattern" = super::validate::NAME_PATTERN))]
    pub name: String,
}

/// Requires `agencies.create` (platform).
pub async fn create(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<CreateAgency>,
) -> Result<(StatusCode, axum::Json<Agency>), ApiError> {
    let name = validate::name("name", &body.name)?;
    let now = s.clock.now();
    let agency = Agency {
        id: AgencyId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng()),
        name,
        status: Status::Active,
        is_platform: false,
        created_at: now,
        updated_at: now,
    };
    let audit = auth.audit(
        &s,
        "agency.create",
        Some(agency.id.as_str()),
        json!({ "name": agency.name }),
    );
    s.store.create_agency(&agency, &audit).await?;
    Ok((StatusCode::CREATED, axum::Json(agency)))
}

/// Requires `agencies.read` (platform).
pub async fn list(
    State(s): State<AppState>,
    _auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<Agency>>, ApiError> {
    q.cursor_as::<AgencyId>()?;
    Ok(axum::Json(s.store.list_agencies(&q.page()).await?.into()))
}

/// Requires `agencies.read` on the agency.
pub async fn get(
    State(s): State<AppState>,
    auth: Authorized,
) -> Result<axum::Json<Agency>, ApiError> {
    auth.scope()?;
    Ok(axum::Json(s.store.get_agency(&auth.agency).await?))
}

/// Requires `agencies.update` on the agency.
pub async fn update(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<UpdateAgency>,
) -> Result<axum::Json<Agency>, ApiError> {
    auth.scope()?;
    let name = validate::name("name", &body.name)?;
    let audit = auth.audit(
        &s,
        "agency.update",
        Some(auth.agency.as_str()),
        json!({ "name": name }),
    );
    Ok(axum::Json(
        s.store
            .update_agency(&auth.agency, &name, s.clock.now(), &audit)
            .await?,
    ))
}

/// Requires `agencies.delete` (platform).
pub async fn remove(State(s): State<AppState>, auth: Authorized) -> Result<StatusCode, ApiError> {
    auth.scope()?;
    if auth.agency == auth.caller.agency {
        return Err(ApiError::new(
            crate::error::ErrorCode::Conflict,
            "the platform tenant cannot be deleted",
        ));
    }
    let audit = auth.audit(&s, "agency.delete", Some(auth.agency.as_str()), json!({}));
    s.store
        .delete_agency(&auth.agency, s.clock.now(), &audit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
