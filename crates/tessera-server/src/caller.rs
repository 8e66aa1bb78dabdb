//! Who is calling: the authenticated caller and the request facts every audit event carries.
//! A leaf module: the engine caches callers, authentication builds them, the gate and every
//! use case read them; it imports none of those.

use std::sync::Arc;

use tessera_core::{AgencyId, CredentialCap, PermissionSet, PrincipalId};
use tessera_store::ApiKey;

/// Facts about the request that every audit event carries.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    /// `req_…`, echoed as `x-request-id`.
    pub request_id: String,
    /// The client's address as text (audit, Cedar's `context.ip`): the peer's, or the one
    /// trusted proxies forwarded (`net::forwarded`).
    pub ip: Option<String>,
    /// The same address (rate limits and sign-in backoff key on it).
    pub addr: Option<std::net::IpAddr>,
    /// The client's user agent.
    pub user_agent: Option<String>,
}

/// An authenticated caller: who, from which agency, with which credential.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who.
    pub principal: PrincipalId,
    /// Its own agency.
    pub agency: AgencyId,
    /// Whether that is the platform tenant.
    pub is_platform: bool,
    /// The credential presented.
    pub credential: Credential,
    /// The credential's cap (scopes, account).
    pub cap: CredentialCap,
    /// What the credential grants by itself (an API key's scopes, an installation's consented
    /// scopes), at `cap.account`.
    pub own: Option<PermissionSet>,
}

/// The credential a caller presented.
#[derive(Clone, Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "a caller is built once per credential and shared in an `Arc`: boxing the key would add an allocation and save nothing"
)]
pub enum Credential {
    /// An API key, as stored (never its secret).
    ApiKey(ApiKey),
    /// An RFC 9068 access token's verified claims.
    AccessToken(Arc<tessera_token::AccessClaims>),
    /// None: a principal taken as the subject of a check or a comparison, not a request's
    /// caller.
    None,
}

impl Caller {
    /// The impersonator, when this caller acts under an impersonation token.
    pub fn actor(&self) -> Option<&str> {
        self.token()
            .and_then(|t| t.act.as_ref())
            .map(|a| a.sub.as_str())
    }

    /// The API key, when the credential is one.
    pub fn key(&self) -> Option<&ApiKey> {
        match &self.credential {
            Credential::ApiKey(k) => Some(k),
            _ => None,
        }
    }

    /// The access token's claims, when the credential is one.
    pub fn token(&self) -> Option<&Arc<tessera_token::AccessClaims>> {
        match &self.credential {
            Credential::AccessToken(t) => Some(t),
            _ => None,
        }
    }
}
