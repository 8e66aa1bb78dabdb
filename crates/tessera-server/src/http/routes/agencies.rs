//! Handlers of `/v1/agencies` and `/v1/agencies/{agy}`: extract, call `usecase::agencies`,
//! answer. Their permissions are declared in the route table (`super::table`).

use axum::extract::State;
use axum::http::StatusCode;
use tessera_core::AgencyId;
use tessera_store::Agency;

use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::http::extract::{Json, ListQuery};
use crate::http::list::List;
use crate::http::state::AppState;
use crate::usecase::agencies::{self, CreateAgency, UpdateAgency};

/// `POST /v1/agencies`: `agencies.create` (platform).
pub async fn create(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<CreateAgency>,
) -> Result<(StatusCode, axum::Json<Agency>), ApiError> {
    let agency = agencies::create(&s, &auth, body).await?;
    Ok((StatusCode::CREATED, axum::Json(agency)))
}

/// `GET /v1/agencies`: `agencies.read` (platform).
pub async fn list(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<Agency>>, ApiError> {
    q.cursor_as::<AgencyId>()?;
    let page = q.page();
    let (auth, page) = (&auth, &page);
    let items = crate::http::replica::read(&s, auth, |st| {
        Box::pin(async move { agencies::list(st.as_ref(), page).await })
    })
    .await?;
    Ok(axum::Json(items.into()))
}

/// `GET /v1/agencies/{agy}`: `agencies.read` on the agency.
pub async fn get(
    State(s): State<AppState>,
    auth: Authorized,
) -> Result<axum::Json<Agency>, ApiError> {
    Ok(axum::Json(agencies::get(s.store.as_ref(), &auth).await?))
}

/// `PATCH /v1/agencies/{agy}`: `agencies.update` on the agency.
pub async fn update(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<UpdateAgency>,
) -> Result<axum::Json<Agency>, ApiError> {
    Ok(axum::Json(agencies::update(&s, &auth, body).await?))
}

/// `DELETE /v1/agencies/{agy}`: `agencies.delete` (platform).
pub async fn remove(State(s): State<AppState>, auth: Authorized) -> Result<StatusCode, ApiError> {
    agencies::remove(&s, &auth).await?;
    Ok(StatusCode::NO_CONTENT)
}
