//! Handlers of `/v1/agencies/{agy}/api-keys[/{key}[/rotate]]`: extract, call
//! `usecase::api_keys`, answer. Their permissions are declared in the route table
//! (`super::table`); routes with a `Body` target leave the check at the key's scope to the use
//! case.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use tessera_core::KeyId;
use tessera_store::ApiKey;

use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::http::extract::{parse_id, Json, ListQuery};
use crate::http::list::List;
use crate::http::state::AppState;
use crate::usecase::api_keys::{self, CreateKey, KeyWithSecret, RotateKey};

/// A JSON body that may be empty (then `T::default()`).
pub(super) fn optional_json<T: Default + DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("invalid body: {e}")))
    }
}

/// `POST …/api-keys`: `api_keys.write` at the key's scope (the use case adds I2).
pub async fn create(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<CreateKey>,
) -> Result<(StatusCode, axum::Json<KeyWithSecret>), ApiError> {
    let key = api_keys::create(&s, &auth, body).await?;
    Ok((StatusCode::CREATED, axum::Json(key)))
}

/// `GET …/api-keys`: `api_keys.read` on the agency.
pub async fn list(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<ApiKey>>, ApiError> {
    q.cursor_as::<KeyId>()?;
    let page = q.page();
    let (auth, page) = (&auth, &page);
    let items = crate::http::replica::read(&s, auth, |st| {
        Box::pin(async move { api_keys::list(st.as_ref(), auth, page).await })
    })
    .await?;
    Ok(axum::Json(items.into()))
}

/// `GET …/api-keys/{key}`: `api_keys.read` at the key's scope.
pub async fn get(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, key)): Path<(String, String)>,
) -> Result<axum::Json<ApiKey>, ApiError> {
    let id: KeyId = parse_id(&key)?;
    Ok(axum::Json(api_keys::get(&s, &auth, &id).await?))
}

/// `DELETE …/api-keys/{key}`: `api_keys.write` at the key's scope (the use case adds I2).
pub async fn revoke(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id: KeyId = parse_id(&key)?;
    api_keys::revoke(&s, &auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/api-keys/{key}/rotate` (the body may be empty): `api_keys.write` at the key's scope
/// (the use case adds I2).
pub async fn rotate(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, key)): Path<(String, String)>,
    body: Bytes,
) -> Result<axum::Json<KeyWithSecret>, ApiError> {
    let grace = optional_json::<RotateKey>(&body)?.grace()?;
    let id: KeyId = parse_id(&key)?;
    Ok(axum::Json(api_keys::rotate(&s, &auth, &id, grace).await?))
}
