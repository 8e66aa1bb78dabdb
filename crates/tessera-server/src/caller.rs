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
    /// The client's address.
    pub ip: Option<String>,
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
    /// The API key, when the credential is one.
    pub key: Option<ApiKey>,
    /// The credential's cap (scopes, account).
    pub cap: CredentialCap,
    /// What the credential grants by itself (an API key's scopes, an installation's consented
    /// scopes), at `cap.account`.
    pub own: Option<PermissionSet>,
    /// The access token, when the credential is one.
    pub token: Option<Arc<tessera_token::AccessClaims>>,
}

impl Caller {
    /// The impersonator, when this caller acts under an impersonation token.
    pub fn actor(&self) -> Option<&str> {
        self.token
            .as_ref()
            .and_then(|t| t.act.as_ref())
            .map(|a| a.sub.as_str())
    }
}
