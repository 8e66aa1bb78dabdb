//! The authorization server's HTTP handlers: the only OAuth code that sees axum state, headers
//! and bodies. Each parses and authenticates its request, calls the grant or lower module that
//! decides, and answers JSON that is never cached, or an RFC 6749 §5.2 error.
//!
//! INVARIANT: every route of the authorization server is registered here, in [`router`].

mod asker;
pub mod authorize;
pub mod client_auth;
pub mod discovery;
pub mod introspect;
pub mod params;
pub mod revoke;
pub mod token;
pub mod userinfo;

use axum::routing::{get, post};
use axum::Router;

use crate::http::state::AppState;

/// The routes of the authorization server.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/oauth/authorize",
            get(authorize::get).post(authorize::post),
        )
        .route("/oauth/token", post(token::token))
        .route("/oauth/introspect", post(introspect::introspect))
        .route("/oauth/revoke", post(revoke::revoke))
        .route(
            "/oauth/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::authorization_server),
        )
}
