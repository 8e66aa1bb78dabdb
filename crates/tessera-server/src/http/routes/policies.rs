//! Handlers of `/v1/agencies/{agy}/policies[/{pol}]`: extract, call `usecase::policies` (the
//! same use cases `tessera policies` runs offline), answer. Their permissions are declared in
//! the route table (`super::table`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use tessera_core::PolicyId;
use tessera_store::Policy;

use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::http::extract::{parse_id, Json, ListQuery};
use crate::http::list::List;
use crate::http::state::AppState;
use crate::usecase::actor::Actor;
use crate::usecase::policies::{self, CreatePolicy};

/// `POST …/policies`: `policies.write` on the agency.
pub async fn create(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<CreatePolicy>,
) -> Result<(StatusCode, axum::Json<Policy>), ApiError> {
    let policy = policies::create(&s, &auth, body).await?;
    Ok((StatusCode::CREATED, axum::Json(policy)))
}

/// `GET …/policies`: `policies.read` on the agency.
pub async fn list(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<Policy>>, ApiError> {
    q.cursor_as::<PolicyId>()?;
    let page = q.page();
    let (auth, page) = (&auth, &page);
    let items = crate::http::replica::read(&s, auth, |st| {
        Box::pin(async move { policies::list(st.as_ref(), Actor::Caller(auth), page).await })
    })
    .await?;
    Ok(axum::Json(items.into()))
}

/// `GET …/policies/{pol}`: `policies.read` on the agency.
pub async fn get(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, pol)): Path<(String, String)>,
) -> Result<axum::Json<Policy>, ApiError> {
    let id: PolicyId = parse_id(&pol)?;
    Ok(axum::Json(
        policies::get(s.store.as_ref(), &auth, &id).await?,
    ))
}

/// `DELETE …/policies/{pol}`: `policies.write` on the agency.
pub async fn remove(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, pol)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id: PolicyId = parse_id(&pol)?;
    policies::remove(
        s.store.as_ref(),
        s.clock.as_ref(),
        Actor::Caller(&auth),
        &id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
