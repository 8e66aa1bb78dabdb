//! `POST /oauth/revoke` (RFC 7009): revokes a refresh token's whole grant, or one access
//! token (its `jti`, until it would have expired).
//!
//! INVARIANT: the answer is 200 for a token that is invalid, already revoked or not the
//! caller's to see (§2.2: it never says whose a token is); only the caller's own tokens (by the
//! rules of `asker`) are revoked.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_core::AgencyId;
use tessera_store::Outcome;

use super::asker::{asker, Asker};
use super::params::{self, Params};
use crate::audit::action::AuditAction;
use crate::audit::record::audit_event as record;
use crate::caller::RequestMeta;
use crate::http::state::AppState;
use crate::oauth::error::{no_store, OAuthError};
use crate::oauth::issue::REFRESH_PREFIX;
use crate::oauth::verify;
use crate::services::Services;

/// `POST /oauth/revoke`. Authenticated by a client's credentials (a public client by its
/// `client_id`, RFC 7009 §2.1) or a bearer API key or access token.
pub async fn revoke(State(s): State<AppState>, req: axum::extract::Request) -> Response {
    let (parts, body) = match params::split(req).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let meta = params::meta(&parts);
    let rate = std::sync::Mutex::new(None);
    match run_revoke(&s, &parts.headers, &body, &meta, &rate).await {
        Ok(()) => {
            let mut resp = no_store(json!({}));
            if let Some(r) = rate.lock().ok().and_then(|mut r| r.take()) {
                crate::ratelimit::headers::apply(resp.headers_mut(), &r);
            }
            resp
        }
        Err(e) => e.into_response(),
    }
}

async fn run_revoke(
    state: &Services,
    headers: &HeaderMap,
    body: &[u8],
    meta: &RequestMeta,
    rate: &std::sync::Mutex<Option<crate::ratelimit::Report>>,
) -> Result<(), OAuthError> {
    let p = Params::parse(headers, body)?;
    // A public client revokes its own tokens with its `client_id` (RFC 7009 §2.1); a token
    // of another client is answered 200 and left alone, as for a confidential client (§2.2:
    // the answer never says whose a token is).
    let asker = asker(state, headers, &p, true, meta.addr, rate).await?;
    let token = p.required("token")?;
    let now = state.clock.now();
    let actor = match &asker {
        Asker::Client(c) => c.id().to_string(),
        Asker::Credential(c) => c.principal.to_string(),
    };
    if token.starts_with(REFRESH_PREFIX) {
        let Some(((_, grant, scope), _, _)) =
            crate::peppered::find_by_hash(state, token.as_bytes(), |h| async move {
                state.store.find_refresh_token(h.as_bytes()).await
            })
            .await?
        else {
            return Ok(());
        };
        let account = grant.account.as_ref().map(|a| a.to_string());
        if !asker.may_see(
            grant.client_id.as_str(),
            grant.agency_id.as_str(),
            account.as_deref(),
        ) {
            // RFC 7009 §2.2: an invalid token is not an error; neither says whose it is.
            return Ok(());
        }
        let audit = record(
            state,
            meta,
            &actor,
            Some(&grant.subject),
            AuditAction::TokenRevoke,
            Some(&grant.id),
            Outcome::Success,
            json!({ "token_type": "refresh_token", "grant": grant.id }),
        );
        let audit = crate::audit::sealed::seal(state, &scope, audit).await;
        state
            .store
            .revoke_grant(&scope, &grant.id, now, &audit)
            .await?;
        state.engine.invalidate(&grant.agency_id);
        return Ok(());
    }
    if verify::looks_like_jwt(token) {
        let claims = match verify::check_access_token(state, token, None).await? {
            Ok(c) => c,
            // A suspended agency's token is still revoked: reinstating must not revive it.
            Err(verify::Inactive::Suspended(_, c)) => c,
            // Invalid, expired or already revoked: nothing to do.
            Err(_) => return Ok(()),
        };
        if !asker.may_see(
            &claims.client_id,
            &claims.tenant.agency,
            claims.tenant.account.as_deref(),
        ) {
            return Ok(());
        }
        let Ok(agency) = claims.tenant.agency.parse::<AgencyId>() else {
            return Ok(());
        };
        let audit = record(
            state,
            meta,
            &actor,
            Some(&claims.sub),
            AuditAction::TokenRevoke,
            Some(&claims.jti),
            Outcome::Success,
            json!({ "token_type": "access_token", "jti": claims.jti }),
        );
        let scope = state.admission.admit(agency.clone());
        let audit = crate::audit::sealed::seal(state, &scope, audit).await;
        state
            .store
            .revoke_access_token(&scope, &claims.jti, claims.exp * 1000, &audit)
            .await?;
        state.engine.invalidate(&agency);
        return Ok(());
    }
    Ok(())
}
