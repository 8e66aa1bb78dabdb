//! The token endpoint's grants as use cases (RFC 6749 §4.1.3, §4.4, §6; RFC 8693): each takes
//! `&Services`, a client-authenticated, parsed request and the request's audit facts, and
//! returns the issued tokens ([`TokenResponse`]) or a [`GrantError`].
//!
//! INVARIANT: no HTTP here (no axum type, no headers): the endpoint parses and authenticates,
//! a grant decides and issues, and `GrantError` is the only way a grant says no.

pub mod authorization_code;
pub mod client_credentials;
pub mod exchanged;
mod impersonate;
pub mod refresh_token;
pub mod token_exchange;
mod user_tokens;

use serde::Serialize;
use tessera_store::StoreError;

use super::error::{OAuthError, OAuthErrorCode};
use super::issue::NoSigningKey;
use crate::engine::EngineError;

/// Why a grant was refused (RFC 6749 §5.2, RFC 8693 §2.2.2), or could not be decided.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// `invalid_request`: a parameter is missing, malformed or unsupported.
    #[error("{0}")]
    InvalidRequest(String),
    /// `invalid_client`: the client is not who the token belongs to (token exchange).
    #[error("{0}")]
    InvalidClient(String),
    /// `invalid_grant`: the code, refresh token or subject token is not (or no longer) valid
    /// for this client.
    #[error("{0}")]
    InvalidGrant(String),
    /// `unauthorized_client`: this client may not use this grant.
    #[error("{0}")]
    UnauthorizedClient(String),
    /// `invalid_scope`: more than was granted, or nothing left.
    #[error("{0}")]
    InvalidScope(String),
    /// `invalid_target`: an audience, account or subject that is not available (RFC 8693).
    #[error("{0}")]
    InvalidTarget(String),
    /// `temporarily_unavailable`: no signing key yet, or the node lags its agency.
    #[error("{0}")]
    Unavailable(String),
    /// `server_error`: an inconsistency that is not the client's doing.
    #[error("{0}")]
    Internal(String),
    /// The store failed (an outage is `temporarily_unavailable`).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Authentication or the gate failed, already mapped by `oauth::refusal` (an outage to
    /// `temporarily_unavailable`, a refusal to the grant's own code).
    #[error("{0}")]
    Mapped(OAuthError),
}

/// Refuses a grant whose agency, account or client's owner is suspended: 403
/// `agency_suspended` / `account_suspended`, before anything is issued, rotated or revoked
/// (reinstating restores the grant as it was).
pub async fn refuse_suspended(
    state: &crate::services::Services,
    agency: &tessera_core::AgencyId,
    account: Option<&tessera_core::AccountId>,
    client: &str,
) -> Result<(), GrantError> {
    let view = state.engine.suspended().await?;
    match view.credential(agency, account, Some(client)) {
        Some(why) => Err(GrantError::Mapped(OAuthError::suspended(why))),
        None => Ok(()),
    }
}

impl From<NoSigningKey> for GrantError {
    fn from(e: NoSigningKey) -> Self {
        Self::Unavailable(e.0.to_owned())
    }
}

impl From<EngineError> for GrantError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(s) => Self::Store(s),
            e @ EngineError::RevisionNotReached { .. } => {
                Self::Unavailable(format!("{e}; retry shortly"))
            }
        }
    }
}

impl From<GrantError> for OAuthError {
    fn from(e: GrantError) -> Self {
        let (code, d) = match e {
            GrantError::InvalidRequest(d) => (OAuthErrorCode::InvalidRequest, d),
            GrantError::InvalidClient(d) => (OAuthErrorCode::InvalidClient, d),
            GrantError::InvalidGrant(d) => (OAuthErrorCode::InvalidGrant, d),
            GrantError::UnauthorizedClient(d) => (OAuthErrorCode::UnauthorizedClient, d),
            GrantError::InvalidScope(d) => (OAuthErrorCode::InvalidScope, d),
            GrantError::InvalidTarget(d) => (OAuthErrorCode::InvalidTarget, d),
            GrantError::Unavailable(d) => (OAuthErrorCode::TemporarilyUnavailable, d),
            GrantError::Internal(d) => (OAuthErrorCode::ServerError, d),
            GrantError::Store(s) => return s.into(),
            GrantError::Mapped(e) => return e,
        };
        OAuthError::new(code, d)
    }
}

/// The token endpoint's success answer (RFC 6749 §5.1; RFC 8693 §2.2.1 adds
/// `issued_token_type`; OIDC Core §3.1.3.3 adds `id_token`).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// RFC 8693: the type of the issued token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The refresh token of a user's grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The scopes issued.
    pub scope: String,
    /// The id token, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl TokenResponse {
    /// A bearer access token with these scopes.
    fn bearer(access_token: String, expires_in: i64, scopes: &[String]) -> Self {
        Self {
            access_token,
            issued_token_type: None,
            token_type: "Bearer",
            expires_in,
            refresh_token: None,
            scope: scopes.join(" "),
            id_token: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_errors_keep_their_rfc_codes() {
        let cases = [
            (
                GrantError::InvalidRequest("x".into()),
                "invalid_request",
                400,
            ),
            (GrantError::InvalidClient("x".into()), "invalid_client", 401),
            (GrantError::InvalidGrant("x".into()), "invalid_grant", 400),
            (
                GrantError::UnauthorizedClient("x".into()),
                "unauthorized_client",
                400,
            ),
            (GrantError::InvalidScope("x".into()), "invalid_scope", 400),
            (GrantError::InvalidTarget("x".into()), "invalid_target", 400),
            (
                GrantError::Unavailable("x".into()),
                "temporarily_unavailable",
                503,
            ),
            (GrantError::Internal("x".into()), "server_error", 500),
            (
                GrantError::Store(StoreError::Unavailable("down".into())),
                "temporarily_unavailable",
                503,
            ),
            (GrantError::Store(StoreError::NotFound), "server_error", 500),
        ];
        for (e, code, status) in cases {
            let o = OAuthError::from(e);
            assert_eq!(o.error.as_str(), code);
            assert_eq!(o.error.status().as_u16(), status, "{code}");
        }
    }

    #[test]
    fn token_responses_leave_out_what_was_not_issued() {
        let r = TokenResponse::bearer("at".into(), 900, &["a".into(), "b".into()]);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({ "access_token": "at", "token_type": "Bearer", "expires_in": 900, "scope": "a b" })
        );
    }
}
