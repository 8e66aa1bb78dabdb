//! Handlers of `/v1/agencies/{agy}/users[/{usr}]`: extract, call `usecase::users`, answer.
//! Their permissions are declared in the route table (`super::table`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use tessera_core::UserId;
use tessera_store::User;

use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::http::extract::{parse_id, Json, ListQuery};
use crate::http::list::List;
use crate::http::state::AppState;
use crate::usecase::users::{self, CreateUser, UpdateUser};

/// `POST …/users`: `users.create` on the agency.
pub async fn create(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<CreateUser>,
) -> Result<(StatusCode, axum::Json<User>), ApiError> {
    let user = users::create(&s, &auth, body).await?;
    Ok((StatusCode::CREATED, axum::Json(user)))
}

/// `GET …/users`: `users.read` on the agency.
pub async fn list(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<User>>, ApiError> {
    q.cursor_as::<UserId>()?;
    let page = q.page();
    let (auth, page) = (&auth, &page);
    let items = crate::http::replica::read(&s, auth, |st| {
        Box::pin(async move { users::list(st.as_ref(), auth, page).await })
    })
    .await?;
    Ok(axum::Json(items.into()))
}

/// `GET …/users/{usr}`: `users.read` on the agency.
pub async fn get(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, usr)): Path<(String, String)>,
) -> Result<axum::Json<User>, ApiError> {
    let id: UserId = parse_id(&usr)?;
    Ok(axum::Json(users::get(s.store.as_ref(), &auth, &id).await?))
}

/// `PATCH …/users/{usr}`: `users.update` on the agency (the use case adds I2).
pub async fn update(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, usr)): Path<(String, String)>,
    Json(body): Json<UpdateUser>,
) -> Result<axum::Json<User>, ApiError> {
    let id: UserId = parse_id(&usr)?;
    Ok(axum::Json(users::update(&s, &auth, &id, body).await?))
}

/// `DELETE …/users/{usr}`: `users.delete` on the agency (the use case adds I2).
pub async fn remove(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, usr)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id: UserId = parse_id(&usr)?;
    users::remove(&s, &auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/users/{usr}/erase`: `users.erase` on the agency (the use case adds I2).
pub async fn erase(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, usr)): Path<(String, String)>,
) -> Result<axum::Json<users::UserErased>, ApiError> {
    let id: UserId = parse_id(&usr)?;
    Ok(axum::Json(users::erase(&s, &auth, &id).await?))
}
