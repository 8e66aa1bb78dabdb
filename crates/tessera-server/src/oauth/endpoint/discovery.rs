//! OpenID Connect Discovery 1.0 and RFC 8414 authorization-server metadata: every endpoint
//! and every supported value, from the same settings the endpoints use. Discovery §3:
//! `id_token_signing_alg_values_supported` "MUST" include RS256, which the ring always keeps a
//! lineage for; the client authentication methods listed are the ones the endpoints accept
//! from a client (RFC 8414 §2), so no `bearer`: a bearer token is not a client credential.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{json, Value};

use super::token::TOKEN_EXCHANGE;
use crate::http::state::AppState;
use crate::oauth::grant::exchanged::{ACCESS_TOKEN_TYPE, JWT_TYPE};
use crate::oauth::scope::PROTOCOL_SCOPES;
use crate::services::Services;

/// The metadata document.
pub fn metadata(state: &Services) -> Value {
    let iss = state.oauth.issuer();
    let mut scopes: Vec<String> = PROTOCOL_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    scopes.extend(
        state
            .catalog
            .file()
            .scopes
            .iter()
            .filter(|s| s.audience != tessera_core::catalog::Audience::Internal)
            .map(|s| s.name.clone()),
    );
    // The algorithms the ring signs with, the default (Ed25519) first; RS256 is among them
    // once the first maintenance has run (before that the ring is empty and nothing signs).
    let present: Vec<&'static str> = state
        .keys
        .ring()
        .map(|r| r.records().map(|k| k.alg.as_str()).collect())
        .unwrap_or_default();
    let mut algs: Vec<&'static str> = state
        .keys
        .algorithms()
        .into_iter()
        .map(|a| a.as_str())
        .filter(|a| present.contains(a))
        .collect();
    if algs.is_empty() {
        algs.push("EdDSA");
    }
    json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oauth/authorize"),
        "token_endpoint": format!("{iss}/oauth/token"),
        "introspection_endpoint": format!("{iss}/oauth/introspect"),
        "revocation_endpoint": format!("{iss}/oauth/revoke"),
        "userinfo_endpoint": format!("{iss}/oauth/userinfo"),
        "jwks_uri": format!("{iss}/.well-known/jwks.json"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token", TOKEN_EXCHANGE],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "userinfo_signing_alg_values_supported": ["none"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "email", "email_verified", "name", "updated_at", "agency"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "login", "consent"],
        "token_exchange_token_types_supported": [ACCESS_TOKEN_TYPE, JWT_TYPE],
        "access_token_signing_alg_values_supported": algs,
        // Not registered metadata: says that `resource` (RFC 8707) is accepted at the
        // authorization and token endpoints, and binds the access token's `aud`.
        "resource_indicators_supported": true,
    })
}

fn answer(state: &Services) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(metadata(state)),
    )
}

/// `GET /.well-known/openid-configuration`. Public: no authentication.
pub async fn openid_configuration(State(s): State<AppState>) -> impl IntoResponse {
    answer(&s)
}

/// `GET /.well-known/oauth-authorization-server`. Public: no authentication.
pub async fn authorization_server(State(s): State<AppState>) -> impl IntoResponse {
    answer(&s)
}
