//! Who is calling: the verified credential as a handler sees it, and the tenant a route
//! resolved for the request.
//! INVARIANT: a `Principal` exists only for a credential the guard verified (signature,
//! claims, revocation) or Tessera introspected as active; the extractor refuses (500) on a
//! route the guard did not protect, so a handler cannot be reached without one by mistake.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub use tessera_token::{Actor, Tenant};

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A JWT access token, verified locally.
    AccessToken,
    /// An API key (`tsk_…`), introspected.
    ApiKey,
}

/// The verified caller. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Principal(pub(crate) Arc<Identity>);

/// What a principal is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) subject: String,
    pub(crate) tenant: Tenant,
    pub(crate) scopes: Vec<String>,
    pub(crate) permissions: BTreeSet<String>,
    pub(crate) act: Option<Actor>,
    pub(crate) installation: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) kind: CredentialKind,
    pub(crate) token_id: Option<String>,
    pub(crate) session: Option<String>,
    pub(crate) expires_at: Option<i64>,
}

impl Principal {
    /// `sub`: the user (`usr_…`), the app for client credentials, or the API key id (`key_…`).
    pub fn subject(&self) -> &str {
        &self.0.subject
    }
    /// The tenant the credential acts in.
    pub fn tenant(&self) -> &Tenant {
        &self.0.tenant
    }
    /// The agency (`agy_…`).
    pub fn agency(&self) -> &str {
        &self.0.tenant.agency
    }
    /// The account (`acc_…`), when the credential is bound to one.
    pub fn account(&self) -> Option<&str> {
        self.0.tenant.account.as_deref()
    }
    /// The granted scopes.
    pub fn scopes(&self) -> &[String] {
        &self.0.scopes
    }
    /// The permissions the scopes carry (per the catalog).
    pub fn permissions(&self) -> &BTreeSet<String> {
        &self.0.permissions
    }
    /// Whether the scopes carry `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.0.permissions.contains(permission)
    }
    /// The actor chain (impersonation or delegation), the current actor outermost.
    pub fn act(&self) -> Option<&Actor> {
        self.0.act.as_ref()
    }
    /// The actor chain's subjects, outermost first.
    pub fn actors(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let mut next = self.0.act.as_ref();
        while let Some(a) = next {
            out.push(a.sub.as_str());
            next = a.act.as_deref();
        }
        out
    }
    /// The installation (`ins_…`) the token came through.
    pub fn installation(&self) -> Option<&str> {
        self.0.installation.as_deref()
    }
    /// The OAuth client (`client_id`) of an access token.
    pub fn client_id(&self) -> Option<&str> {
        self.0.client_id.as_deref()
    }
    /// How the caller authenticated.
    pub fn kind(&self) -> CredentialKind {
        self.0.kind
    }
    /// The token id (`jti`) of an access token.
    pub fn token_id(&self) -> Option<&str> {
        self.0.token_id.as_deref()
    }
    /// The grant (`sid`) of a user's access token.
    pub fn session(&self) -> Option<&str> {
        self.0.session.as_deref()
    }
    /// Expiry, Unix seconds.
    pub fn expires_at(&self) -> Option<i64> {
        self.0.expires_at
    }
}

/// The tenant a route resolved for this request (from its path or the credential), which the
/// guard has checked against the credential's tenant. Scope every data access by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenancy {
    /// The agency.
    pub agency: String,
    /// The account, when the route or the credential names one.
    pub account: Option<String>,
}

fn unguarded() -> Response {
    tracing::error!("a handler asked for the principal on a route the guard does not protect");
    (StatusCode::INTERNAL_SERVER_ERROR, "route not guarded").into_response()
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(unguarded)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Tenancy {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Tenancy>()
            .cloned()
            .ok_or_else(unguarded)
    }
}
