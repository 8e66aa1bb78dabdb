//! What the grants of a user (authorization code, refresh token) share: the grant's user while
//! they may still sign in, its access token, its refresh token, and the token response with an
//! id token when `openid` was granted (OIDC Core §3.1.3.3).
//!
//! INVARIANT: a user's grant issues nothing once the user is disabled or deleted or the
//! installation it acts through is removed; a refresh token never outlives its family.

use tessera_store::{Grant, NewRefreshToken, Status, StoreError, User};
use tessera_token::SecretString;

use super::{GrantError, TokenResponse};
use tessera_core::GrantId;

use crate::oauth::client::Client;
use crate::oauth::issue::{self, AccessSpec, Issued};
use crate::oauth::settings::{millis, secs};
use crate::oauth::tenant::active_installation;
use crate::services::Services;

/// The user of a grant, while they may still sign in and its installation is still there.
pub(super) async fn grant_user(state: &Services, grant: &Grant) -> Result<User, GrantError> {
    let user_id: tessera_core::UserId = grant
        .subject
        .parse()
        .map_err(|_| GrantError::Internal("a grant has a malformed subject".into()))?;
    let scope = state.admission.admit(grant.agency_id.clone());
    let user = match state.store.get_user(&scope, &user_id).await {
        Ok(u) if u.status == Status::Active => u,
        Ok(_) | Err(StoreError::NotFound) => {
            return Err(GrantError::InvalidGrant(
                "the user can no longer sign in".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(ins) = &grant.installation {
        if active_installation(state, &grant.agency_id, ins.as_str())
            .await?
            .is_none()
        {
            return Err(GrantError::InvalidGrant("the app was uninstalled".into()));
        }
    }
    Ok(user)
}

/// An access token of a user's grant, for `aud` (a resource server's identifier, RFC 8707;
/// `None`: the issuer).
pub(super) fn grant_access(
    state: &Services,
    client: &Client,
    grant: &Grant,
    scopes: &[String],
    aud: Option<String>,
) -> Result<Issued, GrantError> {
    // The token's `sid`: revoking the grant revokes it, so a malformed stored id is an error,
    // never a token without one.
    let sid: GrantId = grant.id.parse().map_err(|_| {
        GrantError::Internal(format!("stored grant `{}` has a malformed id", grant.id))
    })?;
    Ok(issue::mint_access(
        state,
        AccessSpec {
            sub: grant.subject.clone(),
            client_id: client.id().to_string(),
            scopes: scopes.to_vec(),
            agency: grant.agency_id.clone(),
            account: grant.account.clone(),
            act: None,
            sid: Some(sid),
            ins: grant.installation.clone(),
            ttl: secs(state.oauth.settings.access_ttl),
            alg: issue::app_alg(client.app()),
            aud,
        },
    )?)
}

/// What a user's grant answers.
pub(super) struct UserTokens<'a> {
    pub(super) client: &'a Client,
    pub(super) user: &'a User,
    pub(super) grant: &'a Grant,
    pub(super) issued: &'a Issued,
    pub(super) refresh: &'a SecretString,
    /// The access token's scopes (narrowed to its resource, if bound to one).
    pub(super) scopes: &'a [String],
    /// The scopes before that narrowing: `openid` among them yields an id token.
    pub(super) id_scopes: &'a [String],
    pub(super) nonce: Option<String>,
}

/// The token response of a user's grant: access and refresh tokens, and an id token when
/// `openid` was granted.
pub(super) fn user_tokens(
    state: &Services,
    t: UserTokens<'_>,
) -> Result<TokenResponse, GrantError> {
    let mut out = TokenResponse::bearer(t.issued.token.clone(), t.issued.expires_in, t.scopes);
    out.refresh_token = Some(t.refresh.expose().to_owned());
    if t.id_scopes.iter().any(|s| s == "openid") {
        out.id_token = Some(issue::mint_id_token(
            state,
            t.user,
            t.client.id().as_str(),
            t.nonce,
            t.grant.auth_time,
            t.id_scopes,
            issue::app_alg(t.client.app()),
        )?);
    }
    Ok(out)
}

/// A new refresh token of grant `grant_id`.
pub(super) fn new_refresh(
    state: &Services,
    grant_id: &str,
    absolute_end: i64,
) -> (SecretString, NewRefreshToken) {
    let now = state.clock.now();
    let (secret, hash) = issue::new_secret(state, issue::REFRESH_PREFIX);
    (
        secret,
        NewRefreshToken {
            hash,
            pepper_version: i64::from(state.pepper.version()),
            grant_id: grant_id.to_owned(),
            created_at: now,
            idle_expires_at: now
                .saturating_add(millis(state.oauth.settings.refresh_idle_ttl))
                .min(absolute_end),
        },
    )
}
