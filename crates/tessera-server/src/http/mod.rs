//! The HTTP layer: the state handlers receive, the route table (each route's permission is
//! declared there), request extractors, the OpenAPI document, and the handlers of `/v1`.
//! Nothing below this layer sees an axum type.

pub mod csv;
pub mod extract;
pub mod list;
pub mod openapi;
pub mod problem;
pub mod replica;
pub mod routes;
pub mod state;
