//! Handlers of `…/installations[/{ins}]`, on the agency and on `…/accounts/{acc}`: extract,
//! call `usecase::installations`, answer. Their permissions are declared in the route table
//! (`super::table`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use tessera_core::InstallationId;
use tessera_store::Installation;

use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::http::extract::{parse_id, Json, ListQuery};
use crate::http::list::List;
use crate::http::state::AppState;
use crate::usecase::installations::{self, CreateInstallation};

/// `POST …/installations`: `installations.write` where it is installed (the use case adds I2).
pub async fn install(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<CreateInstallation>,
) -> Result<(StatusCode, axum::Json<Installation>), ApiError> {
    let ins = installations::install(&s, &auth, body).await?;
    Ok((StatusCode::CREATED, axum::Json(ins)))
}

/// `GET …/installations`: `installations.read` where they are installed.
pub async fn list(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<Installation>>, ApiError> {
    q.cursor_as::<InstallationId>()?;
    let page = q.page();
    let (auth, page) = (&auth, &page);
    let items = crate::http::replica::read(&s, auth, |st| {
        Box::pin(async move { installations::list(st.as_ref(), auth, page).await })
    })
    .await?;
    Ok(axum::Json(items.into()))
}

/// `GET …/installations/{ins}`: `installations.read` where it is installed.
pub async fn get(
    State(s): State<AppState>,
    auth: Authorized,
    Path(params): Path<Vec<(String, String)>>,
) -> Result<axum::Json<Installation>, ApiError> {
    let id: InstallationId = parse_id(param(&params, "ins")?)?;
    Ok(axum::Json(
        installations::get(s.store.as_ref(), &auth, &id).await?,
    ))
}

/// `DELETE …/installations/{ins}`: `installations.write` where it is installed.
pub async fn uninstall(
    State(s): State<AppState>,
    auth: Authorized,
    Path(params): Path<Vec<(String, String)>>,
) -> Result<StatusCode, ApiError> {
    let id: InstallationId = parse_id(param(&params, "ins")?)?;
    installations::uninstall(&s, &auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, ApiError> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| ApiError::invalid(format!("missing path parameter `{name}`")))
}
