//! `GET /v1/catalog`: the catalog as loaded (any authenticated caller).

use axum::extract::State;
use tessera_core::catalog::CatalogFile;

use crate::gate::authorized::Authorized;
use crate::http::state::AppState;

/// Any valid credential.
pub async fn get(State(s): State<AppState>, _auth: Authorized) -> axum::Json<CatalogFile> {
    axum::Json(s.catalog.file().clone())
}
