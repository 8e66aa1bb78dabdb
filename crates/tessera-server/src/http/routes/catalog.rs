//! Handlers of `GET /v1/catalog` and `GET /v1/catalog/cedar-schema` (any valid credential):
//! call `usecase::catalog`, answer.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use tessera_core::catalog::CatalogFile;

use crate::gate::authorized::Authorized;
use crate::http::state::AppState;
use crate::usecase::catalog;

/// `GET /v1/catalog`: any valid credential.
pub async fn get(State(s): State<AppState>, _auth: Authorized) -> axum::Json<CatalogFile> {
    axum::Json(catalog::catalog(&s.catalog))
}

/// `GET /v1/catalog/cedar-schema`: any valid credential; the schema as text.
pub async fn schema(State(s): State<AppState>, _auth: Authorized) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        catalog::cedar_schema(&s.catalog),
    )
}
