//! lead: the paths `auth.rs` and `http/routes/apps.rs` import today, reachable as
//! `crate::oauth::tokens::…` and `crate::oauth::token::…` (aliases of this module). Each item
//! names its new home; delete this module and its aliases in `oauth/mod.rs` once the callers
//! import those paths (and `authn` matches on `VerifyError` instead of `LegacyOAuthError`).

use std::sync::Arc;

use tessera_token::AccessClaims;

use super::error::{LegacyOAuthError, OAuthError};
use super::verify::{self, Inactive};
use crate::auth::Caller;
use crate::services::Services;

pub use super::issue::{new_secret, CLIENT_SECRET_PREFIX};
pub use super::scope::audience_allows;
pub use super::verify::looks_like_jwt;

/// [`verify::check_access_token`], with the error `auth::oauth_to_api` takes.
pub async fn check_access_token(
    state: &Services,
    token: &str,
    audience: Option<&str>,
) -> Result<Result<Arc<AccessClaims>, Inactive>, LegacyOAuthError> {
    verify::check_access_token(state, token, audience)
        .await
        .map_err(|e| OAuthError::from(e).into())
}

/// [`verify::caller_from_claims`], with the error `auth::oauth_to_api` takes.
pub async fn caller_from_claims(
    state: &Services,
    claims: &Arc<AccessClaims>,
) -> Result<Caller, LegacyOAuthError> {
    verify::caller_from_claims(state, claims)
        .await
        .map_err(|e| OAuthError::from(e).into())
}
