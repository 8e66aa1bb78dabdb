//! Handlers of `/v1/agencies/{agy}/roles[/{rol}]`: extract, call `usecase::roles`, answer.
//! Their permissions are declared in the route table (`super::table`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use tessera_core::RoleId;
use tessera_store::Role;

use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::http::extract::{parse_id, Json, ListQuery};
use crate::http::list::List;
use crate::http::state::AppState;
use crate::usecase::roles::{self, CreateRole, UpdateRole};

/// `POST …/roles`: `roles.write` on the agency (the use case adds I2).
pub async fn create(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<CreateRole>,
) -> Result<(StatusCode, axum::Json<Role>), ApiError> {
    let role = roles::create(&s, &auth, body).await?;
    Ok((StatusCode::CREATED, axum::Json(role)))
}

/// `GET …/roles`: `roles.read` on the agency.
pub async fn list(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<Role>>, ApiError> {
    q.cursor_as::<RoleId>()?;
    let page = q.page();
    let (auth, page) = (&auth, &page);
    let items = crate::http::replica::read(&s, auth, |st| {
        Box::pin(async move { roles::list(st.as_ref(), auth, page).await })
    })
    .await?;
    Ok(axum::Json(items.into()))
}

/// `GET …/roles/{rol}`: `roles.read` on the agency.
pub async fn get(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, rol)): Path<(String, String)>,
) -> Result<axum::Json<Role>, ApiError> {
    let id: RoleId = parse_id(&rol)?;
    Ok(axum::Json(roles::get(s.store.as_ref(), &auth, &id).await?))
}

/// `PATCH …/roles/{rol}`: `roles.write` on the agency (the use case adds I2).
pub async fn update(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, rol)): Path<(String, String)>,
    Json(body): Json<UpdateRole>,
) -> Result<axum::Json<Role>, ApiError> {
    let id: RoleId = parse_id(&rol)?;
    Ok(axum::Json(roles::update(&s, &auth, &id, body).await?))
}

/// `DELETE …/roles/{rol}[?remove_bindings=true]`: `roles.write` on the agency (the use case
/// adds I2 when bindings go too).
pub async fn remove(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, rol)): Path<(String, String)>,
    q: ListQuery,
) -> Result<StatusCode, ApiError> {
    let id: RoleId = parse_id(&rol)?;
    let remove_bindings = match q.get("remove_bindings") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "`remove_bindings` must be `true` or `false`, not `{other}`"
            )))
        }
    };
    roles::remove(&s, &auth, &id, remove_bindings).await?;
    Ok(StatusCode::NO_CONTENT)
}
