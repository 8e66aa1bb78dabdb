//! The authorization-code grant (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.6): a code redeemed
//! once, by the client it was issued to, with the same `redirect_uri` and the verifier of its
//! S256 challenge, becomes a grant with an access token, a refresh token and (with `openid`)
//! an id token.
//!
//! INVARIANT: a code is redeemed at most once; a second redemption revokes whatever the first
//! issued (RFC 6749 §4.1.2) and is audited even when the first failed.

use serde_json::json;
use tessera_store::{CodeRedemption, Grant, Outcome, StoreError};

use super::user_tokens::{grant_access, grant_user, new_refresh, user_tokens, UserTokens};
use super::{GrantError, TokenResponse};
use crate::audit::action::AuditAction;
use crate::audit::record::audit_event as record;
use crate::caller::RequestMeta;
use crate::oauth::client::Client;
use crate::oauth::pkce;
use crate::oauth::resource::{invalid_target, resolve};
use crate::oauth::scope::split_scopes;
use crate::oauth::settings::millis;
use crate::services::Services;

/// A code redemption: the authenticated client and the parameters of RFC 6749 §4.1.3 (the
/// verifier already checked for form, RFC 7636 §4.1).
#[derive(Debug)]
pub struct CodeRequest<'a> {
    /// The authenticated (or, public, identified) client.
    pub client: Client,
    /// `code`.
    pub code: &'a str,
    /// `redirect_uri`, compared exactly with the authorization request's.
    pub redirect_uri: &'a str,
    /// `code_verifier`.
    pub verifier: &'a str,
    /// `resource` (RFC 8707): the authorization request's, repeated, or one for a code
    /// that named none.
    pub resource: Option<&'a str>,
}

/// Redeems a code.
pub async fn redeem(
    state: &Services,
    meta: &RequestMeta,
    req: CodeRequest<'_>,
) -> Result<TokenResponse, GrantError> {
    let client = req.client;
    let now = state.clock.now();
    // A lookup before authentication: the store derives the code's scope from its row. Under
    // every live pepper (a code issued just before a pepper rotation).
    let found = crate::peppered::find_by_hash(state, req.code.as_bytes(), |h| async move {
        state.store.redeem_code(h.as_bytes(), now).await
    })
    .await?
    .map(|(found, _, _)| found);
    let (c, scope) = match found {
        None => return Err(GrantError::InvalidGrant("the code is invalid".into())),
        Some((CodeRedemption::Replayed(c), scope)) => {
            // RFC 6749 §4.1.2: a code used twice revokes what it issued.
            let audit = record(
                state,
                meta,
                client.id().as_str(),
                Some(c.user_id.as_str()),
                AuditAction::OauthCodeReplayed,
                Some(&c.grant_id),
                Outcome::Denied,
                json!({ "client_id": client.id().as_str(), "grant": c.grant_id }),
            );
            // The first redemption may have failed (a wrong verifier, a wrong redirect URI):
            // then no grant was created, nothing is revoked, and the replay is still recorded.
            let audit = crate::audit::sealed::seal(state, &scope, audit).await;
            match state
                .store
                .revoke_grant(&scope, &c.grant_id, now, &audit)
                .await
            {
                Ok(_) => state.engine.invalidate(&c.agency_id),
                Err(StoreError::NotFound) => state.audit.append(scope, audit).await?,
                Err(e) => return Err(e.into()),
            }
            return Err(GrantError::InvalidGrant(
                "the code was already used; any tokens it issued are revoked".into(),
            ));
        }
        Some((CodeRedemption::Fresh(c), scope)) => (c, scope),
    };
    if c.client_id != *client.id() {
        return Err(GrantError::InvalidGrant(
            "the code was issued to another client".into(),
        ));
    }
    if c.expires_at <= now {
        return Err(GrantError::InvalidGrant("the code has expired".into()));
    }
    if c.redirect_uri != req.redirect_uri {
        return Err(GrantError::InvalidGrant(
            "`redirect_uri` differs from the authorization request's".into(),
        ));
    }
    if !tessera_token::ct_eq(
        pkce::s256(req.verifier).as_bytes(),
        c.code_challenge.as_bytes(),
    ) {
        return Err(GrantError::InvalidGrant(
            "the PKCE code_verifier does not match the code_challenge".into(),
        ));
    }
    super::refuse_suspended(
        state,
        &c.agency_id,
        c.account.as_ref(),
        client.id().as_str(),
    )
    .await?;
    let granted = split_scopes(&c.scope);
    // One resource per grant: the token request may repeat the code's, or name one for a
    // code that had none; another is `invalid_target`.
    let resource = match (c.resource.as_deref(), req.resource) {
        (Some(had), Some(asked)) if had != asked => {
            return Err(GrantError::Mapped(invalid_target(
                "`resource` differs from the authorization request's",
            )))
        }
        (had, asked) => had.or(asked),
    };
    let target = match resource {
        Some(r) => resolve(state, &c.agency_id, r)
            .await
            .map_err(GrantError::Mapped)?,
        None => None,
    };
    let scopes = match &target {
        Some(t) => t.narrow(&granted).map_err(GrantError::Mapped)?,
        None => granted.clone(),
    };
    let grant = Grant {
        id: c.grant_id.clone(),
        agency_id: c.agency_id.clone(),
        kind: "authorization_code".into(),
        client_id: client.id().clone(),
        subject: c.user_id.to_string(),
        installation: c.installation.clone(),
        account: c.account.clone(),
        scope: c.scope.clone(),
        auth_time: Some(c.auth_time),
        created_at: now,
        expires_at: now.saturating_add(millis(state.oauth.settings.refresh_absolute_ttl)),
        revoked_at: None,
        resource: target.as_ref().map(|t| t.identifier.clone()),
    };
    let user = grant_user(state, &grant).await?;
    let (refresh, refresh_row) = new_refresh(state, &grant.id, grant.expires_at);
    let issued = grant_access(state, &client, &grant, &scopes, grant.resource.clone())?;
    let audit = record(
        state,
        meta,
        user.id.as_str(),
        None,
        AuditAction::TokenIssue,
        Some(&grant.id),
        Outcome::Success,
        json!({ "grant_type": "authorization_code", "client_id": client.id().as_str(), "scope": c.scope, "jti": issued.jti, "resource": grant.resource }),
    );
    let audit = crate::audit::sealed::seal(state, &scope, audit).await;
    state
        .store
        .create_grant(&scope, &grant, Some(&refresh_row), &audit)
        .await?;
    user_tokens(
        state,
        UserTokens {
            client: &client,
            user: &user,
            grant: &grant,
            issued: &issued,
            refresh: &refresh,
            scopes: &scopes,
            id_scopes: &granted,
            nonce: c.nonce.clone(),
        },
    )
}
