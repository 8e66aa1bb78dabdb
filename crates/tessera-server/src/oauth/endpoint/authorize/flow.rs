//! The state of one `/oauth/authorize` request: the validated authorization request, the
//! per-browser CSRF binding, the signed-in session, and what a step answers.
//!
//! INVARIANT: the CSRF binding is a 43-character random value from the browser's own cookie,
//! or a new one (then set on the answer); the session cookie only ever carries ids and a time.

use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tessera_core::AccountId;
use tessera_store::{ClientRecord, Installation, User};

use crate::caller::RequestMeta;
use crate::http::state::AppState;
use crate::oauth::error::OAuthErrorCode;
use crate::oauth_ui::{is_loopback_issuer, read_cookie};

pub(super) const SESSION_COOKIE: &str = "tessera_session";
pub(super) const CSRF_COOKIE: &str = "tessera_csrf";
pub(super) const COOKIE_PATH: &str = "/oauth";
pub(super) const SAME_MESSAGE: &str = "The email or password is incorrect.";

/// A signed-in browser.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Session {
    pub(super) sub: String,
    pub(super) agy: String,
    /// When the user signed in (ms): the id token's `auth_time`, and what `max_age` and
    /// `prompt=login` are measured against.
    pub(super) at: i64,
}

/// A consent page may stand this long (ms) after the sign-in that `max_age` or `prompt=login`
/// forced before the decision needs a new sign-in.
pub(super) const FORCED_SIGN_IN_CONSENT_WINDOW_MS: i64 = 10 * 60 * 1000;

/// A validated authorization request.
#[derive(Debug)]
pub(super) struct AuthRequest {
    pub(super) client: std::sync::Arc<ClientRecord>,
    pub(super) redirect_uri: String,
    pub(super) state: Option<String>,
    pub(super) scopes: Vec<String>,
    pub(super) challenge: String,
    pub(super) nonce: Option<String>,
    pub(super) prompt: Option<String>,
    /// OIDC Core §3.1.2.1 `max_age`, seconds: a session signed in longer ago than this must
    /// sign in again.
    pub(super) max_age: Option<i64>,
    pub(super) account: Option<String>,
    /// RFC 8707 `resource`: the resource server the tokens are for (resolved for the user's
    /// agency when the code is issued).
    pub(super) resource: Option<String>,
    /// The query string, for the forms' action.
    pub(super) query: String,
}

/// What went wrong, and where to say so.
pub(super) enum Failure {
    /// Shown on a page: the client or redirect URI cannot be trusted.
    Page(StatusCode, String),
    /// Sent back to the client.
    Redirect(OAuthErrorCode, String),
    /// A sign-in rate limit refused the attempt: a 429 page with `Retry-After` (seconds).
    Limited(u64),
}

/// The most users (one per agency) whose password one sign-in attempt checks.
pub(super) const MAX_SIGN_IN_CANDIDATES: usize = 4;

pub(super) struct Flow<'a> {
    pub(super) state: &'a AppState,
    pub(super) meta: std::sync::Arc<RequestMeta>,
    pub(super) parts: &'a Parts,
    /// The per-browser CSRF binding, and whether it is new (to be set).
    pub(super) binding: String,
    pub(super) new_binding: bool,
}

impl<'a> Flow<'a> {
    pub(super) fn new(state: &'a AppState, parts: &'a Parts) -> Self {
        let meta = crate::observe::request_meta(&parts.extensions);
        let existing = read_cookie(&parts.headers, CSRF_COOKIE)
            .filter(|v| v.len() == 43 && v.bytes().all(|b| b.is_ascii_alphanumeric()))
            .map(str::to_owned);
        let new_binding = existing.is_none();
        let binding = existing.unwrap_or_else(|| {
            tessera_token::generate_opaque_token_os("")
                .expose()
                .to_owned()
        });
        Self {
            state,
            meta,
            parts,
            binding,
            new_binding,
        }
    }
    pub(super) fn secure(&self) -> bool {
        !is_loopback_issuer(self.state.oauth.issuer())
    }
    pub(super) fn now(&self) -> i64 {
        self.state.clock.now()
    }
}

/// One place the app may act: through an installation, or in the agency itself.
#[derive(Debug, Clone)]
pub(super) struct Choice {
    pub(super) installation: Option<Installation>,
    pub(super) account: Option<AccountId>,
    pub(super) name: String,
}

impl Choice {
    pub(super) fn value(&self) -> String {
        match (&self.installation, &self.account) {
            (Some(i), _) => i.id.to_string(),
            (None, Some(a)) => a.to_string(),
            (None, None) => "agency".into(),
        }
    }
}

/// What a step of the flow answers.
pub(super) enum Step {
    SignIn {
        error: Option<&'static str>,
        email: String,
    },
    Consent {
        user: User,
        choices: Vec<Choice>,
        session: Option<String>,
    },
    Redirect {
        code: String,
        session: Option<String>,
    },
}
