//! Handlers of `/v1/agencies/{agy}/apps[/{app}[/rotate-secret]]`: extract, call
//! `usecase::apps`, answer. Their permissions are declared in the route table (`super::table`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use tessera_core::AppId;
use tessera_store::App;

use super::api_keys::optional_json;
use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::http::extract::{parse_id, Json, ListQuery};
use crate::http::list::List;
use crate::http::state::AppState;
use crate::usecase::apps::{self, AppWithSecret, CreateApp, RotateSecret};

/// `POST …/apps`: `apps.write` on the agency (first-party apps: platform callers only).
pub async fn create(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<CreateApp>,
) -> Result<(StatusCode, axum::Json<AppWithSecret>), ApiError> {
    let app = apps::create(&s, &auth, body).await?;
    Ok((StatusCode::CREATED, axum::Json(app)))
}

/// `GET …/apps`: `apps.read` on the agency.
pub async fn list(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<App>>, ApiError> {
    q.cursor_as::<AppId>()?;
    let page = q.page();
    let (auth, page) = (&auth, &page);
    let items = crate::http::replica::read(&s, auth, |st| {
        Box::pin(async move { apps::list(st.as_ref(), auth, page).await })
    })
    .await?;
    Ok(axum::Json(items.into()))
}

/// `GET …/apps/{app}`: `apps.read` on the agency.
pub async fn get(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, app)): Path<(String, String)>,
) -> Result<axum::Json<App>, ApiError> {
    let id: AppId = parse_id(&app)?;
    Ok(axum::Json(apps::get(s.store.as_ref(), &auth, &id).await?))
}

/// `DELETE …/apps/{app}`: `apps.write` on the agency (the use case adds I2).
pub async fn remove(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, app)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id: AppId = parse_id(&app)?;
    apps::remove(&s, &auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/apps/{app}/rotate-secret` (the body may be empty): `apps.write` on the agency (the
/// use case adds I2).
pub async fn rotate_secret(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, app)): Path<(String, String)>,
    body: Bytes,
) -> Result<axum::Json<AppWithSecret>, ApiError> {
    let grace = optional_json::<RotateSecret>(&body)?.grace()?;
    let id: AppId = parse_id(&app)?;
    Ok(axum::Json(
        apps::rotate_secret(&s, &auth, &id, grace).await?,
    ))
}
