//! Handlers of `/v1/agencies/{agy}/bindings[/{bnd}]`: extract, call `usecase::bindings`,
//! answer. Their permissions are declared in the route table (`super::table`); routes with a
//! `Body` target leave the check at the binding's scope to the use case.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use tessera_core::{BindingId, PrincipalId};
use tessera_store::Binding;

use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::http::extract::{parse_id, Json, ListQuery};
use crate::http::list::List;
use crate::http::state::AppState;
use crate::usecase::bindings::{self, CreateBinding};

/// `POST …/bindings`: `bindings.write` at the binding's scope (the use case adds I2).
pub async fn create(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<CreateBinding>,
) -> Result<(StatusCode, axum::Json<Binding>), ApiError> {
    let binding = bindings::create(&s, &auth, body).await?;
    Ok((StatusCode::CREATED, axum::Json(binding)))
}

/// `GET …/bindings[?principal=]`: `bindings.read` on the agency.
pub async fn list(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<Binding>>, ApiError> {
    q.cursor_as::<BindingId>()?;
    let principal = q
        .get("principal")
        .map(parse_id::<PrincipalId>)
        .transpose()?;
    if let Some((k, _)) = q.rest.iter().find(|(k, _)| k != "principal") {
        return Err(ApiError::invalid(format!("unknown query parameter `{k}`")));
    }
    let page = q.page();
    let principal = principal.as_ref();
    let (auth, page) = (&auth, &page);
    let items = crate::http::replica::read(&s, auth, |st| {
        Box::pin(async move { bindings::list(st.as_ref(), auth, principal, page).await })
    })
    .await?;
    Ok(axum::Json(items.into()))
}

/// `GET …/bindings/{bnd}`: `bindings.read` at the binding's scope.
pub async fn get(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, bnd)): Path<(String, String)>,
) -> Result<axum::Json<Binding>, ApiError> {
    let id: BindingId = parse_id(&bnd)?;
    Ok(axum::Json(bindings::get(&s, &auth, &id).await?))
}

/// `DELETE …/bindings/{bnd}`: `bindings.write` at the binding's scope (the use case adds I2).
pub async fn remove(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, bnd)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id: BindingId = parse_id(&bnd)?;
    bindings::remove(&s, &auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
