//! Handlers and routes of `/v1/resource-servers[/{rsv}]` (platform-wide, platform principals
//! only) and `/v1/agencies/{agy}/resource-servers[/{rsv}]` (an agency's): extract, call
//! `usecase::resource_servers`, answer. Their permissions are declared in [`routes`].

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use tessera_core::ResourceServerId;

use super::{Access, RouteSpec};
use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::gate::TargetFrom;
use crate::http::extract::{parse_id, Json, ListQuery};
use crate::http::list::List;
use crate::http::state::AppState;
use crate::usecase::resource_servers::{self, CreateResourceServer, ResourceServerView};

/// The resource-server routes, platform-wide and per agency.
pub(super) fn routes() -> Vec<RouteSpec> {
    use axum::routing::{delete, get, post};
    use Access::{Permission as P, Platform};
    let mut out = Vec::new();
    for (base, one, write, read) in [
        (
            "/v1/resource-servers",
            "/v1/resource-servers/{rsv}",
            Platform("resource_servers.write"),
            Platform("resource_servers.read"),
        ),
        (
            "/v1/agencies/{agy}/resource-servers",
            "/v1/agencies/{agy}/resource-servers/{rsv}",
            P("resource_servers.write", TargetFrom::Path),
            P("resource_servers.read", TargetFrom::Path),
        ),
    ] {
        let platform = matches!(write, Platform(_));
        out.extend([
            RouteSpec::new(
                Method::POST,
                base,
                write,
                if platform {
                    "Register a platform-wide resource server (RFC 8707)"
                } else {
                    "Register a resource server of the agency (RFC 8707)"
                },
                post(create),
            )
            .body::<CreateResourceServer>()
            .returns::<ResourceServerView>(201),
            RouteSpec::new(
                Method::GET,
                base,
                read,
                if platform {
                    "List platform-wide resource servers"
                } else {
                    "List the agency's resource servers"
                },
                get(list),
            )
            .returns::<List<ResourceServerView>>(200),
            RouteSpec::new(
                Method::GET,
                one,
                read,
                "Read a resource server",
                get(read_one),
            )
            .returns::<ResourceServerView>(200),
            RouteSpec::new(
                Method::DELETE,
                one,
                write,
                "Delete a resource server (`resource=` naming it is refused from then on)",
                delete(remove),
            )
            .empty(),
        ]);
    }
    out
}

fn rsv_of(params: &HashMap<String, String>) -> Result<ResourceServerId, ApiError> {
    parse_id(params.get("rsv").map(String::as_str).unwrap_or_default())
}

/// `POST …/resource-servers`: `resource_servers.write` (platform-wide: in the platform tenant).
pub async fn create(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<CreateResourceServer>,
) -> Result<(StatusCode, axum::Json<ResourceServerView>), ApiError> {
    let r = resource_servers::create(&s, &auth, body).await?;
    Ok((StatusCode::CREATED, axum::Json(r)))
}

/// `GET …/resource-servers`: `resource_servers.read`.
pub async fn list(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<ResourceServerView>>, ApiError> {
    q.cursor_as::<ResourceServerId>()?;
    Ok(axum::Json(
        resource_servers::list(&s, &auth, &q.page()).await?.into(),
    ))
}

/// `GET …/resource-servers/{rsv}`: `resource_servers.read`.
pub async fn read_one(
    State(s): State<AppState>,
    auth: Authorized,
    Path(params): Path<HashMap<String, String>>,
) -> Result<axum::Json<ResourceServerView>, ApiError> {
    let id = rsv_of(&params)?;
    Ok(axum::Json(resource_servers::get(&s, &auth, &id).await?))
}

/// `DELETE …/resource-servers/{rsv}`: `resource_servers.write`.
pub async fn remove(
    State(s): State<AppState>,
    auth: Authorized,
    Path(params): Path<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let id = rsv_of(&params)?;
    resource_servers::remove(&s, &auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
