//! The one place errors become HTTP: `ApiError` as RFC 9457 problem+json, its status from its
//! code, and the RFC 6750 challenge on a 401.
//!
//! INVARIANT: a client's mistake is always a 4xx with a code from `ErrorCode`; a 5xx body
//! carries the request id only, and the detail goes to the log.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{ApiError, ErrorCode};

impl ErrorCode {
    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest | Self::InvalidId | Self::UnknownEvent | Self::TargetRefused => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::RevisionNotReached => StatusCode::CONFLICT,
            Self::AgencySuspended | Self::AccountSuspended | Self::AppNotApproved => {
                StatusCode::FORBIDDEN
            }
            Self::PlatformNotSuspendable => StatusCode::CONFLICT,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::CursorExpired => StatusCode::GONE,
        }
    }
}

/// The rate-limit report a 429's `rate_limit` member carries (see `ApiError::from_verdict`).
fn rate_report(
    code: ErrorCode,
    extra: Option<&serde_json::Value>,
) -> Option<crate::ratelimit::Report> {
    if code != ErrorCode::RateLimited {
        return None;
    }
    let r = extra?.get("rate_limit")?;
    let n = |k: &str| r.get(k).and_then(serde_json::Value::as_u64);
    Some(crate::ratelimit::Report {
        policy: r.get("policy")?.as_str()?.to_owned(),
        quota: crate::ratelimit::Quota {
            limit: u32::try_from(n("limit")?).ok()?,
            period_seconds: u32::try_from(n("period_seconds")?).ok()?,
        },
        remaining: n("remaining")?,
        reset_seconds: n("reset_seconds")?,
    })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let rate = rate_report(self.code, self.extra.as_ref());
        let mut body = json!({
            "type": format!("https://tessera.dev/problems/{}", self.code.as_str()),
            "title": self.code.title(),
            "status": status.as_u16(),
            "detail": self.detail,
            "code": self.code.as_str(),
        });
        if let (Some(serde_json::Value::Object(extra)), Some(obj)) =
            (self.extra, body.as_object_mut())
        {
            for (k, v) in extra {
                obj.entry(k).or_insert(v);
            }
        }
        let mut resp = (status, body.to_string()).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.code == ErrorCode::Unauthenticated {
            // RFC 6750 §3: no credential, a bare challenge; a refused one, with its error.
            let challenge = if self.invalid_token {
                "Bearer realm=\"tessera\", error=\"invalid_token\""
            } else {
                "Bearer realm=\"tessera\""
            };
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if self.code == ErrorCode::RequestTimeout {
            // RFC 9110 §15.5.9: the server closes the connection.
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(r) = &rate {
            crate::ratelimit::headers::apply(h, r);
        }
        resp
    }
}
