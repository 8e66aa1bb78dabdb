//! OAuth 2.x and OpenID Connect: the authorization server.
//!
//! `/oauth/authorize` (code flow with PKCE S256, server-rendered sign-in and consent pages),
//! `/oauth/token` (authorization code, client credentials, refresh token rotation, RFC 8693
//! token exchange for downscoping and impersonation), `/oauth/introspect` (RFC 7662),
//! `/oauth/revoke` (RFC 7009), `/oauth/userinfo`, and the discovery documents (OIDC Discovery,
//! RFC 8414).
//!
//! INVARIANT (I2): every token carries at most what its subject holds now: user tokens are
//! checked against the user's bindings at every use (the token's scopes only cap them),
//! installation tokens hold at most the installation's consented scopes, downscoped tokens
//! only narrow, and impersonation yields at most target ∩ impersonator ∩ the impersonation
//! policy. (I4) codes, refresh tokens and client secrets are stored as keyed hashes.
//! Errors are RFC 6749 §5.2 bodies, mapped in one place (`OAuthError`).

pub mod authorize;
pub mod client;
pub mod discovery;
pub mod exchange;
pub mod introspect;
pub mod token;
pub mod tokens;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use tessera_core::{Catalog, PermissionSet};

use crate::http::state::AppState;

/// Lifetimes and limits of the authorization server.
#[derive(Clone, Debug)]
pub struct OAuthSettings {
    /// The `iss` of every token and the base of discovery (no trailing slash).
    pub issuer: String,
    /// Access-token lifetime, seconds (default 15 minutes).
    pub access_ttl: i64,
    /// Authorization-code lifetime, seconds (default 60).
    pub code_ttl: i64,
    /// A refresh token unused this long expires, seconds (default 14 days).
    pub refresh_idle_ttl: i64,
    /// A refresh family ends this long after sign-in, seconds (default 90 days).
    pub refresh_absolute_ttl: i64,
    /// A rotated refresh token presented again within this window is refused without revoking
    /// its family (a client's own retry), milliseconds (default 2 s, at most 5 s).
    pub refresh_reuse_grace_ms: i64,
    /// Impersonation tokens live at most this long, seconds (1 hour).
    pub impersonation_ttl: i64,
    /// A browser sign-in session lasts this long, seconds (default 8 hours).
    pub session_ttl: i64,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080".into(),
            access_ttl: 900,
            code_ttl: 60,
            refresh_idle_ttl: 14 * 86_400,
            refresh_absolute_ttl: 90 * 86_400,
            refresh_reuse_grace_ms: 2_000,
            impersonation_ttl: 3_600,
            session_ttl: 8 * 3_600,
        }
    }
}

/// Scopes of the OpenID Connect protocol: they map to no permission.
pub const PROTOCOL_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Whether `s` is a protocol scope.
pub fn is_protocol_scope(s: &str) -> bool {
    PROTOCOL_SCOPES.contains(&s)
}

/// The permissions an impersonation token never carries, by default: billing, API keys and app
/// credentials, changing users, and impersonation itself.
pub fn impersonation_forbidden(catalog: &Catalog) -> PermissionSet {
    let mut set = PermissionSet::default();
    for p in &catalog.file().permissions {
        let forbidden = matches!(p.resource.as_str(), "billing" | "api_key")
            || matches!(
                p.name.as_str(),
                "apps.write" | "users.update" | "users.delete" | "users.impersonate"
            );
        if forbidden {
            if let Some(ix) = catalog.permission(&p.name) {
                set.insert(ix);
            }
        }
    }
    set
}

/// The authorization server's state on this node.
#[derive(Debug)]
pub struct OAuth {
    /// Settings.
    pub settings: OAuthSettings,
    /// Signs cookies and CSRF tokens.
    pub cookies: crate::oauth_ui::CookieKey,
    /// Slows repeated failed sign-ins.
    pub throttle: crate::oauth_ui::SignInThrottle,
    /// OAuth clients seen recently.
    pub clients: client::ClientCache,
    /// Access tokens verified recently.
    pub verified: tokens::VerifiedCache,
    /// The impersonation policy.
    pub impersonation_forbidden: PermissionSet,
}

impl OAuth {
    /// The authorization server for `settings`, with keys derived from the master key.
    pub fn new(
        settings: OAuthSettings,
        master: &tessera_token::MasterKey,
        catalog: &Catalog,
    ) -> Self {
        Self {
            settings,
            cookies: crate::oauth_ui::CookieKey::from_master(master),
            throttle: crate::oauth_ui::SignInThrottle::new(100_000),
            clients: client::ClientCache::default(),
            verified: tokens::VerifiedCache::default(),
            impersonation_forbidden: impersonation_forbidden(catalog),
        }
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }
}

/// The routes of the authorization server.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/oauth/authorize",
            get(authorize::get).post(authorize::post),
        )
        .route("/oauth/token", post(token::token))
        .route("/oauth/introspect", post(introspect::introspect))
        .route("/oauth/revoke", post(introspect::revoke))
        .route(
            "/oauth/userinfo",
            get(introspect::userinfo).post(introspect::userinfo),
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

/// An RFC 6749 §5.2 error (also RFC 7009, 7662, 8693 and OIDC `userinfo` errors).
#[derive(Debug)]
pub struct OAuthError {
    /// The `error` code.
    pub error: &'static str,
    /// A human description (never secret).
    pub description: String,
    /// The HTTP status.
    pub status: StatusCode,
    /// For `invalid_client` over Basic auth: ask for it again (RFC 6749 §5.2).
    pub challenge: Option<&'static str>,
}

impl OAuthError {
    fn new(error: &'static str, status: StatusCode, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
            status,
            challenge: None,
        }
    }
    /// `invalid_request` (400).
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", StatusCode::BAD_REQUEST, d)
    }
    /// `invalid_client` (401).
    pub fn invalid_client(d: impl Into<String>) -> Self {
        let mut e = Self::new("invalid_client", StatusCode::UNAUTHORIZED, d);
        e.challenge = Some("Basic realm=\"tessera\"");
        e
    }
    /// `invalid_grant` (400).
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", StatusCode::BAD_REQUEST, d)
    }
    /// `unauthorized_client` (400).
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new("unauthorized_client", StatusCode::BAD_REQUEST, d)
    }
    /// `unsupported_grant_type` (400).
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_grant_type", StatusCode::BAD_REQUEST, d)
    }
    /// `invalid_scope` (400).
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", StatusCode::BAD_REQUEST, d)
    }
    /// `invalid_target` (400, RFC 8693).
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new("invalid_target", StatusCode::BAD_REQUEST, d)
    }
    /// `invalid_token` (401, RFC 6750).
    pub fn invalid_token(d: impl Into<String>) -> Self {
        let mut e = Self::new("invalid_token", StatusCode::UNAUTHORIZED, d);
        e.challenge = Some("Bearer error=\"invalid_token\"");
        e
    }
    /// `insufficient_scope` (403, RFC 6750).
    pub fn insufficient_scope(d: impl Into<String>) -> Self {
        Self::new("insufficient_scope", StatusCode::FORBIDDEN, d)
    }
    /// `server_error` (500).
    pub fn server(d: impl Into<String>) -> Self {
        Self::new("server_error", StatusCode::INTERNAL_SERVER_ERROR, d)
    }
    /// `temporarily_unavailable` (503).
    pub fn unavailable(d: impl Into<String>) -> Self {
        Self::new(
            "temporarily_unavailable",
            StatusCode::SERVICE_UNAVAILABLE,
            d,
        )
    }
}

impl From<tessera_store::StoreError> for OAuthError {
    fn from(e: tessera_store::StoreError) -> Self {
        tracing::warn!(error = %e, "store error on an OAuth endpoint");
        match e {
            tessera_store::StoreError::Unavailable(_) => {
                Self::unavailable("the store is not reachable; retry shortly")
            }
            _ => Self::server("the request could not be completed"),
        }
    }
}

impl From<crate::error::ApiError> for OAuthError {
    fn from(e: crate::error::ApiError) -> Self {
        let status = e.code.status();
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::CONFLICT {
            Self::unavailable(e.detail)
        } else if status.is_server_error() {
            Self::server(e.detail)
        } else if status == StatusCode::UNAUTHORIZED {
            Self::invalid_token(e.detail)
        } else {
            Self::invalid_request(e.detail)
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            axum::Json(json!({ "error": self.error, "error_description": self.description })),
        )
            .into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(c) = self.challenge {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        resp
    }
}

/// A JSON answer that must not be cached (RFC 6749 §5.1).
pub fn no_store(body: serde_json::Value) -> Response {
    let mut resp = axum::Json(body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// Splits a space-separated scope string into distinct names, in order.
pub fn split_scopes(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split(' ').filter(|p| !p.is_empty()) {
        if !out.iter().any(|o| o == part) {
            out.push(part.to_owned());
        }
    }
    out
}
