//! Authentication's and the gate's failures as RFC 6749/6750 errors, for the endpoints and
//! grants that authenticate a credential or ask the gate. Kept apart from `error`, which the
//! token verifier (below authentication) uses.

use super::error::OAuthError;

/// Authentication's failures as RFC 6749/6750 errors: an outage or a lagging node is
/// `temporarily_unavailable`, a bug `server_error`, a refused credential `refused(why)` (the
/// endpoint's own refusal code).
pub fn from_authn(
    e: crate::authn::AuthnError,
    refused: impl FnOnce(String) -> OAuthError,
) -> OAuthError {
    use crate::authn::AuthnError as E;
    match e {
        E::Store(s) => s.into(),
        E::Unavailable(d) => OAuthError::unavailable(d),
        E::Internal(d) => OAuthError::server(d),
        E::Suspended(why) => OAuthError::suspended(why),
        other => refused(other.to_string()),
    }
}

/// The gate's failures as RFC 6749 errors: the same split as [`from_authn`], with the gate's
/// refusals going to `refused(why)`.
pub fn from_authz(
    e: crate::gate::error::AuthzError,
    refused: impl FnOnce(String) -> OAuthError,
) -> OAuthError {
    use crate::engine::EngineError;
    use crate::gate::error::AuthzError as E;
    match e {
        E::Authn(a) => from_authn(a, refused),
        E::Store(s) | E::Engine(EngineError::Store(s)) => s.into(),
        E::Engine(e @ EngineError::RevisionNotReached { .. }) => {
            OAuthError::unavailable(e.to_string())
        }
        E::Internal(d) => OAuthError::server(d),
        other => refused(other.to_string()),
    }
}
