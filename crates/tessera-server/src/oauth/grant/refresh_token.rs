//! The refresh-token grant (RFC 6749 §6) with rotation (RFC 9700 §4.14.2): a refresh token is
//! bound to its client, may narrow the scopes it was granted, and is replaced on every use.
//!
//! INVARIANT: a rotated token presented again within the reuse grace is refused and changes
//! nothing (a client's own retry); after it, its whole family (grant) is revoked.

use serde_json::json;
use tessera_store::{Outcome, RefreshUse};

use super::user_tokens::{grant_access, grant_user, new_refresh, user_tokens, UserTokens};
use super::{GrantError, TokenResponse};
use crate::audit::action::AuditAction;
use crate::audit::record::audit_event as record;
use crate::caller::RequestMeta;
use crate::oauth::client::Client;
use crate::oauth::resource::{invalid_target, resolve};
use crate::oauth::scope::{shown, split_scopes};
use crate::oauth::settings::millis;
use crate::services::Services;

/// A refresh: the authenticated client, the presented token and an optional narrower `scope`.
#[derive(Debug)]
pub struct RefreshRequest<'a> {
    /// The authenticated (or, public, identified) client.
    pub client: Client,
    /// `refresh_token`.
    pub refresh_token: &'a str,
    /// `scope`: a subset of the granted scopes.
    pub scope: Option<&'a str>,
    /// `resource` (RFC 8707): the grant's own, or one for a grant bound to none.
    pub resource: Option<&'a str>,
}

/// Rotates a refresh token and issues new tokens.
pub async fn refresh(
    state: &Services,
    meta: &RequestMeta,
    req: RefreshRequest<'_>,
) -> Result<TokenResponse, GrantError> {
    let client = req.client;
    let now = state.clock.now();
    let invalid =
        || GrantError::InvalidGrant("the refresh token is invalid, expired or revoked".into());
    // A lookup before authentication: the store derives the token's scope from its row. Under
    // every live pepper (a token older than the current one hashes under its own).
    let Some(((rt, grant, scope), _, hash)) =
        crate::peppered::find_by_hash(state, req.refresh_token.as_bytes(), |h| async move {
            state.store.find_refresh_token(h.as_bytes()).await
        })
        .await?
    else {
        return Err(invalid());
    };
    // Bound to its client (RFC 6749 §6, RFC 9700 §4.14.2).
    if grant.client_id != *client.id() {
        return Err(invalid());
    }
    if grant.revoked_at.is_some() || grant.expires_at <= now || rt.idle_expires_at <= now {
        return Err(invalid());
    }
    // Refused before any rotation: the family is kept for the reinstatement.
    super::refuse_suspended(
        state,
        &grant.agency_id,
        grant.account.as_ref(),
        grant.client_id.as_str(),
    )
    .await?;
    let granted = split_scopes(&grant.scope);
    let scopes = match req.scope {
        None => granted.clone(),
        Some(s) => {
            let asked = split_scopes(s);
            if let Some(extra) = asked.iter().find(|s| !granted.contains(s)) {
                return Err(GrantError::InvalidScope(format!(
                    "scope `{}` was not granted: a refresh can only narrow",
                    shown(extra)
                )));
            }
            asked
        }
    };
    // A grant bound to a resource keeps it (another is `invalid_target`); one bound to none
    // may bind a single token to a resource, narrowing it.
    let resource = match (grant.resource.as_deref(), req.resource) {
        (Some(had), Some(asked)) if had != asked => {
            return Err(GrantError::Mapped(invalid_target(
                "this refresh token is bound to another resource",
            )))
        }
        (had, asked) => had.or(asked),
    };
    let target = match resource {
        Some(r) => resolve(state, &grant.agency_id, r)
            .await
            .map_err(GrantError::Mapped)?,
        None => None,
    };
    let narrowed = match &target {
        Some(t) => t.narrow(&scopes).map_err(GrantError::Mapped)?,
        None => scopes.clone(),
    };
    let user = grant_user(state, &grant).await?;
    let (new_token, new_row) = new_refresh(state, &grant.id, grant.expires_at);
    let audit = record(
        state,
        meta,
        client.id().as_str(),
        Some(user.id.as_str()),
        AuditAction::OauthRefreshReused,
        Some(&grant.id),
        Outcome::Denied,
        json!({ "grant": grant.id, "client_id": client.id().as_str() }),
    );
    let audit = crate::audit::sealed::seal(state, &scope, audit).await;
    match state
        .store
        .rotate_refresh_token(
            &scope,
            hash.as_bytes(),
            &new_row,
            now,
            millis(state.oauth.settings.refresh_reuse_grace),
            &audit,
        )
        .await?
    {
        RefreshUse::Rotated => {}
        RefreshUse::RecentlyRotated => {
            return Err(GrantError::InvalidGrant(
                "the refresh token was already used; use the one issued with it".into(),
            ))
        }
        RefreshUse::Reused => {
            state.engine.invalidate(&grant.agency_id);
            return Err(GrantError::InvalidGrant(
                "the refresh token was already used: every token of this grant is revoked".into(),
            ));
        }
        RefreshUse::Revoked => return Err(invalid()),
    }
    let issued = grant_access(
        state,
        &client,
        &grant,
        &narrowed,
        target.as_ref().map(|t| t.identifier.clone()),
    )?;
    let audit = record(
        state,
        meta,
        user.id.as_str(),
        None,
        AuditAction::TokenIssue,
        Some(&grant.id),
        Outcome::Success,
        json!({ "grant_type": "refresh_token", "client_id": client.id().as_str(), "scope": narrowed.join(" "), "jti": issued.jti, "resource": target.as_ref().map(|t| t.identifier.as_str()) }),
    );
    state.audit.append(scope, audit).await?;
    user_tokens(
        state,
        UserTokens {
            client: &client,
            user: &user,
            grant: &grant,
            issued: &issued,
            refresh: &new_token,
            scopes: &narrowed,
            id_scopes: &scopes,
            nonce: None,
        },
    )
}
