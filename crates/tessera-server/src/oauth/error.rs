//! The one place OAuth errors become HTTP: the error codes of RFC 6749 §4.1.2.1 and §5.2,
//! RFC 6750 §3.1, RFC 7009 §2.2.1, RFC 8693 §2.2.2 and RFC 8707, each with its wire string,
//! status and `WWW-Authenticate` challenge in one `match` ([`OAuthErrorCode::wire`]).
//!
//! INVARIANT: a store outage is `temporarily_unavailable` (503, `Retry-After`), never an
//! `invalid_*` answer; a `server_error` body carries no internal detail beyond the description.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_store::StoreError;

/// Every `error` code the authorization server answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthErrorCode {
    /// RFC 6749 §5.2: "The request is missing a required parameter, includes an unsupported
    /// parameter value (other than grant type), repeats a parameter, …or is otherwise
    /// malformed." (400)
    InvalidRequest,
    /// RFC 6750 §3.1 for a protected resource (`userinfo`): "If the request lacks any
    /// authentication information … the resource server SHOULD NOT include an error code";
    /// Tessera answers `invalid_request` in the body, 401 with a bare `Bearer` challenge.
    MissingBearer,
    /// RFC 6749 §5.2: "Client authentication failed (e.g., unknown client, no client
    /// authentication included, or unsupported authentication method)." (401, `Basic`
    /// challenge)
    InvalidClient,
    /// RFC 6749 §5.2: "The provided authorization grant … or refresh token is invalid,
    /// expired, revoked, does not match the redirection URI …, or was issued to another
    /// client." (400)
    InvalidGrant,
    /// RFC 6749 §5.2: "The authenticated client is not authorized to use this authorization
    /// grant type." (400)
    UnauthorizedClient,
    /// RFC 6749 §5.2: "The authorization grant type is not supported by the authorization
    /// server." (400)
    UnsupportedGrantType,
    /// RFC 6749 §5.2: "The requested scope is invalid, unknown, malformed, or exceeds the
    /// scope granted by the resource owner." (400)
    InvalidScope,
    /// RFC 8693 §2.2.2 / RFC 8707 §2: "The authorization server is unable to determine how to
    /// process the request or the requested resource is invalid." (400)
    InvalidTarget,
    /// RFC 7009 §2.2.1: "The authorization server does not support the revocation of the
    /// presented token type." (400)
    UnsupportedTokenType,
    /// RFC 6749 §4.1.2.1: "The resource owner or authorization server denied the request."
    AccessDenied,
    /// RFC 6749 §4.1.2.1: "The authorization server does not support obtaining an
    /// authorization code using this method."
    UnsupportedResponseType,
    /// OIDC Core §3.1.2.6: `prompt=none` and the user is not signed in.
    LoginRequired,
    /// OIDC Core §3.1.2.6: `prompt=none` and the user must consent.
    ConsentRequired,
    /// RFC 6750 §3.1: "The access token provided is expired, revoked, malformed, or invalid
    /// for other reasons." (401, `Bearer error="invalid_token"`)
    InvalidToken,
    /// RFC 6750 §3.1: "The request requires higher privileges than provided by the access
    /// token." (403; the only scoped resource here is `userinfo`, which needs `openid`)
    InsufficientScope,
    /// RFC 6749 §4.1.2.1 (and §5.2 by extension): "The authorization server is currently
    /// unable to handle the request due to a temporary overloading or maintenance." (503,
    /// `Retry-After`)
    TemporarilyUnavailable,
    /// RFC 6749 §4.1.2.1: "The authorization server encountered an unexpected condition that
    /// prevented it from fulfilling the request." (500)
    ServerError,
    /// Tessera: the agency of the grant, of the client, or owning the app, is suspended (403).
    /// Answered as problem+json carrying the RFC 6749 members too.
    AgencySuspended,
    /// Tessera: the account the grant is bound to is suspended (403), like `AgencySuspended`.
    AccountSuspended,
}

/// How a code goes on the wire.
struct Wire {
    code: &'static str,
    status: StatusCode,
    challenge: Option<&'static str>,
}

impl OAuthErrorCode {
    /// The wire string, status and challenge: the one mapping.
    fn wire(self) -> Wire {
        let (code, status, challenge) = match self {
            Self::InvalidRequest => ("invalid_request", StatusCode::BAD_REQUEST, None),
            Self::MissingBearer => ("invalid_request", StatusCode::UNAUTHORIZED, Some("Bearer")),
            Self::InvalidClient => (
                "invalid_client",
                StatusCode::UNAUTHORIZED,
                Some("Basic realm=\"tessera\""),
            ),
            Self::InvalidGrant => ("invalid_grant", StatusCode::BAD_REQUEST, None),
            Self::UnauthorizedClient => ("unauthorized_client", StatusCode::BAD_REQUEST, None),
            Self::UnsupportedGrantType => ("unsupported_grant_type", StatusCode::BAD_REQUEST, None),
            Self::InvalidScope => ("invalid_scope", StatusCode::BAD_REQUEST, None),
            Self::InvalidTarget => ("invalid_target", StatusCode::BAD_REQUEST, None),
            Self::UnsupportedTokenType => ("unsupported_token_type", StatusCode::BAD_REQUEST, None),
            Self::AccessDenied => ("access_denied", StatusCode::FORBIDDEN, None),
            Self::UnsupportedResponseType => {
                ("unsupported_response_type", StatusCode::BAD_REQUEST, None)
            }
            Self::LoginRequired => ("login_required", StatusCode::BAD_REQUEST, None),
            Self::ConsentRequired => ("consent_required", StatusCode::BAD_REQUEST, None),
            Self::InvalidToken => (
                "invalid_token",
                StatusCode::UNAUTHORIZED,
                Some("Bearer error=\"invalid_token\""),
            ),
            Self::InsufficientScope => (
                "insufficient_scope",
                StatusCode::FORBIDDEN,
                Some("Bearer realm=\"tessera\", error=\"insufficient_scope\", scope=\"openid\""),
            ),
            Self::TemporarilyUnavailable => (
                "temporarily_unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                None,
            ),
            Self::ServerError => ("server_error", StatusCode::INTERNAL_SERVER_ERROR, None),
            Self::AgencySuspended => ("agency_suspended", StatusCode::FORBIDDEN, None),
            Self::AccountSuspended => ("account_suspended", StatusCode::FORBIDDEN, None),
        };
        Wire {
            code,
            status,
            challenge,
        }
    }

    /// The `error` string.
    pub fn as_str(self) -> &'static str {
        self.wire().code
    }

    /// The HTTP status of a JSON error answer.
    pub fn status(self) -> StatusCode {
        self.wire().status
    }
}

/// An OAuth error answer: `{"error", "error_description"}` (RFC 6749 §5.2).
#[derive(Debug)]
pub struct OAuthError {
    /// The `error` code.
    pub error: OAuthErrorCode,
    /// A human description (never secret).
    pub description: String,
    /// Refused by a rate limit: answered 429 problem+json `rate_limited` (with `error` and
    /// `error_description` too), `Retry-After` and the IETF headers.
    pub limited: Option<Box<crate::ratelimit::Report>>,
}

impl OAuthError {
    /// An error with a code and a description.
    pub fn new(error: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
            limited: None,
        }
    }
    /// `invalid_request` (400).
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidRequest, d)
    }
    /// `invalid_client` (401).
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidClient, d)
    }
    /// `invalid_grant` (400).
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidGrant, d)
    }
    /// `unsupported_grant_type` (400).
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::UnsupportedGrantType, d)
    }
    /// `invalid_token` (401, RFC 6750).
    pub fn invalid_token(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidToken, d)
    }
    /// `server_error` (500).
    pub fn server(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::ServerError, d)
    }
    /// `temporarily_unavailable` (503).
    pub fn unavailable(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::TemporarilyUnavailable, d)
    }
    /// 403 `agency_suspended` / `account_suspended`.
    pub fn suspended(why: crate::suspension::Suspended) -> Self {
        let code = match why {
            crate::suspension::Suspended::Account => OAuthErrorCode::AccountSuspended,
            _ => OAuthErrorCode::AgencySuspended,
        };
        Self::new(code, why.message())
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error.as_str(), self.description)
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "store error on an OAuth endpoint");
        match e {
            StoreError::Unavailable(_) => {
                Self::unavailable("the store is not reachable; retry shortly")
            }
            _ => Self::server("the request could not be completed"),
        }
    }
}

impl OAuthError {
    /// The answer to a refused rate-limit decision (`None`: the request goes through).
    pub fn from_verdict(v: &crate::ratelimit::Verdict) -> Option<Self> {
        match v {
            crate::ratelimit::Verdict::Allowed(_) => None,
            crate::ratelimit::Verdict::Limited(r) => {
                let mut e = Self::unavailable(format!(
                    "rate limit `{}` reached; retry after {} s",
                    r.policy, r.reset_seconds
                ));
                e.limited = Some(Box::new(r.clone()));
                Some(e)
            }
            crate::ratelimit::Verdict::Unavailable => Some(Self::unavailable(
                "rate limits cannot be checked right now; retry shortly",
            )),
        }
    }
}

fn limited_response(r: &crate::ratelimit::Report, description: &str) -> Response {
    let body = json!({
        "type": "https://tessera.dev/problems/rate_limited",
        "title": "rate limited",
        "status": 429,
        "detail": description,
        "code": "rate_limited",
        "error": "temporarily_unavailable",
        "error_description": description,
    });
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::RETRY_AFTER, HeaderValue::from(r.reset_seconds));
    crate::ratelimit::headers::apply(h, r);
    resp
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        if let Some(r) = &self.limited {
            return limited_response(r, &self.description);
        }
        let wire = self.error.wire();
        if matches!(
            self.error,
            OAuthErrorCode::AgencySuspended | OAuthErrorCode::AccountSuspended
        ) {
            return suspended_response(&wire, &self.description);
        }
        let mut resp = (
            wire.status,
            axum::Json(json!({ "error": wire.code, "error_description": self.description })),
        )
            .into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(c) = wire.challenge {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        if self.error == OAuthErrorCode::TemporarilyUnavailable {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

/// A suspension refusal: problem+json (RFC 9457: `type`, `title`, `status`, `detail`, `code`)
/// that also carries the RFC 6749 members (`error`, `error_description`), so both kinds of
/// client read it; never cached.
fn suspended_response(wire: &Wire, description: &str) -> Response {
    let body = json!({
        "type": format!("https://tessera.dev/problems/{}", wire.code),
        "title": wire.code.replace('_', " "),
        "status": wire.status.as_u16(),
        "detail": description,
        "code": wire.code,
        "error": wire.code,
        "error_description": description,
    });
    uncached(
        (wire.status, body.to_string()).into_response(),
        "application/problem+json",
    )
}

/// `resp` with its content type, and not to be cached (RFC 6749 §5.1).
fn uncached(mut resp: Response, content_type: &'static str) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// A JSON document already serialized, that must not be cached (RFC 6749 §5.1).
pub fn no_store_json(body: Vec<u8>) -> Response {
    uncached(
        Response::new(axum::body::Body::from(body)),
        "application/json",
    )
}

/// A JSON answer that must not be cached (RFC 6749 §5.1).
pub fn no_store(body: serde_json::Value) -> Response {
    uncached(axum::Json(body).into_response(), "application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_one_wire_form() {
        use OAuthErrorCode as C;
        let all = [
            C::InvalidRequest,
            C::MissingBearer,
            C::InvalidClient,
            C::InvalidGrant,
            C::UnauthorizedClient,
            C::UnsupportedGrantType,
            C::InvalidScope,
            C::InvalidTarget,
            C::UnsupportedTokenType,
            C::AccessDenied,
            C::UnsupportedResponseType,
            C::LoginRequired,
            C::ConsentRequired,
            C::InvalidToken,
            C::InsufficientScope,
            C::TemporarilyUnavailable,
            C::ServerError,
            C::AgencySuspended,
            C::AccountSuspended,
        ];
        for c in all {
            let w = c.wire();
            assert!(w.code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            // RFC 6750 §3: a 401 always carries a challenge.
            if w.status == StatusCode::UNAUTHORIZED {
                assert!(w.challenge.is_some(), "{}", w.code);
            }
        }
        assert_eq!(
            C::TemporarilyUnavailable.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn an_outage_is_temporarily_unavailable_with_retry_after() {
        let e = OAuthError::from(StoreError::Unavailable("down".into()));
        assert_eq!(e.error, OAuthErrorCode::TemporarilyUnavailable);
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().contains_key(header::RETRY_AFTER));
    }
}
