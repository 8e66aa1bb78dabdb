//! The server's domain error: a stable `code` (I7), a message for the client and optional extra
//! members; every layer's typed error converts into it here, in one place. `http::problem`
//! renders it as RFC 9457 problem+json.
//!
//! INVARIANT: a client's mistake is always a 4xx with a code from `ErrorCode`; a 5xx body
//! carries the request id only, and the detail goes to the log.

use serde_json::json;
use tessera_store::StoreError;

use crate::engine::EngineError;

/// Stable machine-readable error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// 400: the request is malformed or a field is invalid.
    InvalidRequest,
    /// 400: an id has the wrong type prefix or form.
    InvalidId,
    /// 401: no valid credential.
    Unauthenticated,
    /// 403: authenticated but not allowed.
    Forbidden,
    /// 404: no such object (or another tenant's: the same answer).
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 408: the request (its body) did not arrive in time; the connection is closed.
    RequestTimeout,
    /// 409: uniqueness or state conflict.
    Conflict,
    /// 413.
    PayloadTooLarge,
    /// 415.
    UnsupportedMediaType,
    /// 429.
    RateLimited,
    /// 500.
    Internal,
    /// 503: the store is unreachable.
    Unavailable,
    /// 409: the store has not reached the revision the caller asked for (after a bounded wait).
    RevisionNotReached,
    /// 403: the credential's agency (or its app's owner) is suspended.
    AgencySuspended,
    /// 403: the account the credential is bound to is suspended.
    AccountSuspended,
    /// 403: a marketplace app's scopes await (or failed) review: installable in its own
    /// agency only.
    AppNotApproved,
    /// 409: the platform tenant cannot be suspended.
    PlatformNotSuspendable,
    /// 503: a fail-closed rate limit cannot be decided (Redis unreachable).
    TemporarilyUnavailable,
    /// 410: a revocation-feed cursor older than the feed's retention (resynchronise).
    CursorExpired,
    /// 400: a webhook's event filter names an action (or group) the server never emits.
    UnknownEvent,
    /// 400: a webhook URL points at a loopback, private, link-local, CGNAT, multicast or
    /// unspecified address (SSRF), and private targets are not allowed.
    TargetRefused,
}

impl ErrorCode {
    /// The wire code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidId => "invalid_id",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::RevisionNotReached => "revision_not_reached",
            Self::AgencySuspended => "agency_suspended",
            Self::AccountSuspended => "account_suspended",
            Self::AppNotApproved => "app_not_approved",
            Self::PlatformNotSuspendable => "platform_not_suspendable",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::CursorExpired => "cursor_expired",
            Self::UnknownEvent => "unknown_event",
            Self::TargetRefused => "target_refused",
        }
    }

    /// The problem's title.
    pub fn title(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid request",
            Self::InvalidId => "invalid id",
            Self::Unauthenticated => "authentication required",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not found",
            Self::MethodNotAllowed => "method not allowed",
            Self::RequestTimeout => "request timeout",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload too large",
            Self::UnsupportedMediaType => "unsupported media type",
            Self::RateLimited => "rate limited",
            Self::Internal => "internal error",
            Self::Unavailable => "service unavailable",
            Self::RevisionNotReached => "revision not reached",
            Self::AgencySuspended => "agency suspended",
            Self::AccountSuspended => "account suspended",
            Self::AppNotApproved => "app not approved",
            Self::PlatformNotSuspendable => "the platform cannot be suspended",
            Self::TemporarilyUnavailable => "temporarily unavailable",
            Self::CursorExpired => "cursor expired",
            Self::UnknownEvent => "unknown event",
            Self::TargetRefused => "webhook target refused",
        }
    }
}

/// An error answered as problem+json.
#[derive(Debug)]
pub struct ApiError {
    /// The stable code.
    pub code: ErrorCode,
    /// A human message for this occurrence (never a secret, never an internal detail).
    pub detail: String,
    /// Extra members, such as `missing_permissions`.
    pub extra: Option<serde_json::Value>,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u64>,
    /// On a 401: a credential was presented and refused, so the challenge says
    /// `error="invalid_token"` (RFC 6750 §3.1); without one it is a bare challenge.
    pub invalid_token: bool,
}

impl ApiError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            extra: None,
            retry_after: None,
            invalid_token: false,
        }
    }
    /// The answer to a refused rate-limit decision: 429 `rate_limited` with `Retry-After` and
    /// the IETF headers; or 503 `temporarily_unavailable` when a fail-closed class cannot be
    /// decided. `None` when the request goes through.
    pub fn from_verdict(v: &crate::ratelimit::Verdict) -> Option<Self> {
        match v {
            crate::ratelimit::Verdict::Allowed(_) => None,
            crate::ratelimit::Verdict::Limited(r) => {
                let mut e = Self::new(
                    ErrorCode::RateLimited,
                    format!(
                        "rate limit `{}` reached; retry after {} s",
                        r.policy, r.reset_seconds
                    ),
                );
                e.retry_after = Some(r.reset_seconds);
                // The body names the policy; `http::problem` renders the IETF headers from it.
                Some(e.with_extra(json!({ "rate_limit": {
                    "policy": r.policy,
                    "limit": r.quota.limit,
                    "period_seconds": r.quota.period_seconds,
                    "remaining": r.remaining,
                    "reset_seconds": r.reset_seconds,
                } })))
            }
            crate::ratelimit::Verdict::Unavailable => {
                let mut e = Self::new(
                    ErrorCode::TemporarilyUnavailable,
                    "rate limits cannot be checked right now; retry shortly",
                );
                e.retry_after = Some(1);
                Some(e)
            }
        }
    }
    /// 400 `invalid_request`.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, detail)
    }
    /// 404 `not_found`, identical for missing objects and other tenants' objects.
    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "no such object")
    }
    /// 401 `unauthenticated`.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, detail)
    }
    /// Marks a 401 as answering a presented, refused credential (RFC 6750 §3.1
    /// `invalid_token`); other errors are unchanged.
    #[must_use]
    pub fn presented(mut self) -> Self {
        if self.code == ErrorCode::Unauthenticated {
            self.invalid_token = true;
        }
        self
    }
    /// 403 `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, detail)
    }
    /// 403 `agency_suspended` or `account_suspended`.
    pub fn suspended(why: crate::suspension::Suspended) -> Self {
        let code = match why.code() {
            "account_suspended" => ErrorCode::AccountSuspended,
            _ => ErrorCode::AgencySuspended,
        };
        Self::new(code, why.message())
    }
    /// Adds extra problem members.
    #[must_use]
    pub fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = Some(extra);
        self
    }
    /// A 500 whose cause is logged, not shown.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            ErrorCode::Internal,
            "an internal error occurred; quote the request id to the operator",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found(),
            StoreError::Conflict { constraint } => {
                let what = match constraint.as_str() {
                    "email" => "a user with this email already exists in this agency".to_owned(),
                    "binding" => "this principal already has this role at this scope".to_owned(),
                    other => format!("an object with this `{other}` already exists"),
                };
                Self::new(ErrorCode::Conflict, what).with_extra(json!({ "constraint": constraint }))
            }
            StoreError::Reference => Self::new(
                ErrorCode::Conflict,
                "the request refers to an object that no longer exists",
            ),
            StoreError::Unavailable(cause) => {
                crate::metrics::store_error();
                tracing::error!(error = %cause, "store unavailable");
                Self::new(
                    ErrorCode::Unavailable,
                    "the store is unavailable; retry later",
                )
            }
            other => {
                crate::metrics::store_error();
                Self::internal(other)
            }
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(s) => s.into(),
            EngineError::RevisionNotReached { wanted, have } => {
                let mut err = ApiError::new(ErrorCode::RevisionNotReached, format!("this node has not reached revision {wanted} yet (it is at {have}); retry shortly"));
                err.retry_after = Some(1);
                err
            }
        }
    }
}

impl From<crate::authn::AuthnError> for ApiError {
    fn from(e: crate::authn::AuthnError) -> Self {
        use crate::authn::AuthnError as E;
        let refused = e.is_refusal();
        let err = match e {
            E::Store(s) => return s.into(),
            E::Suspended(why) => return Self::suspended(why),
            E::Unavailable(detail) => Self::new(ErrorCode::Unavailable, detail),
            E::Internal(detail) => Self::internal(detail),
            other => Self::unauthenticated(other.to_string()),
        };
        // A Bearer credential was presented and refused: the challenge says `invalid_token`
        // (RFC 6750 §3.1).
        if refused {
            err.presented()
        } else {
            err
        }
    }
}

impl From<crate::gate::error::AuthzError> for ApiError {
    fn from(e: crate::gate::error::AuthzError) -> Self {
        use crate::gate::error::AuthzError as E;
        let message = e.to_string();
        match e {
            E::Hidden => Self::not_found(),
            E::OutsideScope { permission } => Self::forbidden(message).with_extra(
                json!({ "missing_permissions": [permission], "reason": "outside_credential_scope" }),
            ),
            E::OutsideAccount { permission } => Self::forbidden(message).with_extra(
                json!({ "missing_permissions": [permission], "reason": "outside_credential_account" }),
            ),
            E::Policy { permission, reason } | E::NotGranted { permission, reason } => {
                Self::forbidden(message)
                    .with_extra(json!({ "missing_permissions": [permission], "reason": reason }))
            }
            E::Missing { message, missing } => {
                Self::forbidden(message).with_extra(json!({ "missing_permissions": missing }))
            }
            E::Authn(e) => e.into(),
            E::Engine(e) => e.into(),
            E::Store(e) => e.into(),
            E::Internal(what) => Self::internal(what),
        }
    }
}
