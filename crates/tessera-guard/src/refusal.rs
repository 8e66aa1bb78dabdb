//! The answers of a guard that refuses a request: 401 with `WWW-Authenticate` (RFC 6750 §3),
//! 403 problem+json (with `insufficient_scope` for a missing scope), 404 for another tenant's
//! object, 503 while the guard cannot decide.
//! INVARIANT: no answer echoes the credential.

use axum::http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No bearer credential (401, no error code: RFC 6750 §3.1).
    Missing,
    /// A credential that is malformed, invalid, expired or revoked (401 `invalid_token`).
    Invalid(String),
    /// The guard has not read the revocation feed yet (503).
    NotReady,
    /// Tessera could not be asked (introspection, check) (503).
    Unavailable(String),
    /// The credential's scopes do not carry the route's permission (403 `insufficient_scope`).
    InsufficientScope {
        /// The route's permission.
        permission: String,
        /// The scopes that would carry it, space-separated.
        scopes: String,
    },
    /// Tessera's check denied it (403).
    Forbidden(String),
    /// Another tenant's object (404).
    NotFound,
}

impl Refusal {
    pub(crate) fn invalid(why: &str) -> Self {
        Self::Invalid(why.to_owned())
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Missing | Self::Invalid(_) => StatusCode::UNAUTHORIZED,
            Self::NotReady | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::InsufficientScope { .. } | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
        }
    }

    /// The answer, with `realm` in `WWW-Authenticate`.
    pub fn into_response_with_realm(self, realm: &str) -> Response {
        let status = self.status();
        let realm = quote(realm);
        let (code, title, detail, challenge) = match &self {
            Self::Missing => (
                "unauthenticated",
                "Unauthorized",
                "a bearer credential is required".to_owned(),
                Some(format!("Bearer realm=\"{realm}\"")),
            ),
            Self::Invalid(why) => (
                "unauthenticated",
                "Unauthorized",
                why.clone(),
                Some(format!(
                    "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{}\"",
                    quote(why)
                )),
            ),
            Self::NotReady => (
                "unavailable",
                "Service Unavailable",
                "the guard has not read the revocation feed yet".to_owned(),
                None,
            ),
            Self::Unavailable(why) => ("unavailable", "Service Unavailable", why.clone(), None),
            Self::InsufficientScope { permission, scopes } => (
                "forbidden",
                "Forbidden",
                format!("the credential's scopes do not carry `{permission}`"),
                Some(format!(
                    "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{}\"",
                    quote(scopes)
                )),
            ),
            Self::Forbidden(why) => ("forbidden", "Forbidden", why.clone(), None),
            Self::NotFound => (
                "not_found",
                "Not Found",
                "no such resource".to_owned(),
                None,
            ),
        };
        let body = json!({
            "type": format!("https://tessera.dev/problems/{code}"),
            "title": title,
            "status": status.as_u16(),
            "detail": detail,
            "code": code,
        });
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(challenge) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        self.into_response_with_realm("tessera")
    }
}

/// A quoted-string body (RFC 9110 §5.6.4) without `"` or `\` or control characters.
fn quote(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}
