//! RFC 8693 token exchange (§2.1): downscoping — fewer scopes, one account, a shorter life —
//! and, with `requested_subject`, impersonation (in `impersonate`).
//!
//! INVARIANT (I2): a downscoped token carries a subset of its subject token's scopes, never
//! outlives it, and keeps its subject, actor, grant and installation. Only the subject token's
//! own client may exchange it (or no authenticated client: the token is the proof).

use std::sync::Arc;

use serde_json::{json, Value};
use tessera_core::{AccountId, GrantId, InstallationId};
use tessera_store::{Outcome, StoreError};

use super::exchanged::{exchanged, remaining, ExchangeRequest, Exchanged};
use super::{GrantError, TokenResponse};
use crate::audit::action::AuditAction;
use crate::audit::record::audit_event as record;
use crate::caller::{Caller, RequestMeta};
use crate::oauth::error::OAuthError;
use crate::oauth::issue::{self, AccessSpec};
use crate::oauth::refusal::from_authn;
use crate::oauth::resource::{invalid_target, resolve, single, Target};
use crate::oauth::scope::{shown, split_scopes};
use crate::oauth::verify::{self, actor_of};
use crate::services::Services;

/// The subject token's caller, and the resource (RFC 8707) it is bound to (`None`: the
/// issuer, or an API key).
async fn subject(
    state: &Services,
    token: &str,
) -> Result<(Arc<Caller>, Option<String>), GrantError> {
    let inactive = |why: String| format!("the subject token is not active: {why}");
    if verify::looks_like_jwt(token) {
        // Any audience: a token bound to a resource may be narrowed, keeping its `aud`.
        match verify::check_access_token(state, token, None).await {
            Ok(Ok(claims)) => {
                let issuer = state.oauth.issuer();
                let bound = match claims.aud.as_slice() {
                    [one] if one != issuer => Some(one.clone()),
                    auds if auds.iter().any(|a| a == issuer) => None,
                    _ => {
                        return Err(GrantError::InvalidGrant(inactive(
                            "it has several audiences".into(),
                        )))
                    }
                };
                let caller = verify::caller_from_claims(state, &claims)
                    .await
                    .map_err(|e| GrantError::Mapped(e.into()))?;
                Ok((Arc::new(caller), bound))
            }
            Ok(Err(verify::Inactive::Suspended(why, _))) => {
                Err(GrantError::Mapped(OAuthError::suspended(why)))
            }
            Ok(Err(why)) => Err(GrantError::InvalidGrant(inactive(why.to_string()))),
            Err(e) => Err(GrantError::Mapped(e.into())),
        }
    } else {
        // An outage is `temporarily_unavailable`, not an inactive token.
        crate::authn::authenticate_token(state, token)
            .await
            .map(|c| (c, None))
            .map_err(|e| {
                GrantError::Mapped(from_authn(e, |d| OAuthError::invalid_grant(inactive(d))))
            })
    }
}

/// Exchanges a subject token.
pub async fn exchange(
    state: &Services,
    meta: &RequestMeta,
    req: ExchangeRequest<'_>,
) -> Result<TokenResponse, GrantError> {
    // One audience per token: the issuer (Tessera's API) or one resource server (RFC 8707).
    let wanted = single(&req.targets)
        .map_err(GrantError::Mapped)?
        .filter(|w| *w != state.oauth.issuer());
    if req.requested_subject.is_some() && wanted.is_some() {
        return Err(GrantError::InvalidTarget(format!(
            "impersonation tokens are issued for `{}` only",
            state.oauth.issuer()
        )));
    }
    let (caller, bound) = subject(state, req.subject_token).await?;
    let account = match req.account {
        None => None,
        Some(a) => Some(
            a.parse::<AccountId>()
                .map_err(|_| GrantError::InvalidRequest("`account` is not an account id".into()))?,
        ),
    };
    let expires_in = match req.expires_in {
        None => None,
        Some(e) => Some(e.parse::<i64>().ok().filter(|e| *e > 0).ok_or_else(|| {
            GrantError::InvalidRequest("`expires_in` must be a positive number of seconds".into())
        })?),
    };
    // The result belongs to the subject token's own client: a client that authenticates must
    // be that client (RFC 8693 §2.1 leaves the policy to the server; re-issuing a user's token
    // to another client would hand it a consent it never got). An API key is its own client.
    let client_id = match (caller.token(), caller.key()) {
        (Some(t), _) => t.client_id.clone(),
        (None, Some(k)) => k.id.to_string(),
        (None, None) => return Err(GrantError::InvalidClient("authenticate the client".into())),
    };
    if let Some(c) = &req.client {
        if c.id().as_str() != client_id {
            let on_behalf = caller.principal.to_string();
            let audit = record(
                state,
                meta,
                c.id().as_str(),
                Some(&on_behalf),
                AuditAction::TokenExchange,
                None,
                Outcome::Denied,
                json!({
                    "why": "client_mismatch",
                    "client_id": c.id().as_str(),
                    "subject_client_id": client_id,
                    "kind": if req.requested_subject.is_some() { "impersonation" } else { "downscope" },
                }),
            );
            state
                .audit
                .append(state.admission.admit(caller.agency.clone()), audit)
                .await?;
            return Err(GrantError::InvalidGrant(
                "the subject token was issued to another client: only its own client may exchange it".into(),
            ));
        }
    }
    let out = Exchanged {
        account,
        expires_in,
        client_id,
    };
    match req.requested_subject {
        Some(_) if bound.is_some() => Err(GrantError::InvalidGrant(
            "a token bound to a resource cannot impersonate".into(),
        )),
        Some(target) => {
            super::impersonate::impersonate(state, meta, &req, &caller, target, out).await
        }
        None => {
            // A token bound to a resource stays bound to it: it may repeat it, never change
            // or drop it (which would widen it back to Tessera's own API).
            let resource = match (bound.as_deref(), wanted) {
                (Some(b), Some(w)) if b != w => {
                    return Err(GrantError::Mapped(invalid_target(
                        "the subject token is bound to another resource",
                    )))
                }
                (Some(b), None) if req.targets.iter().any(|t| *t == state.oauth.issuer()) => {
                    return Err(GrantError::Mapped(invalid_target(format!(
                        "the subject token is bound to `{}`: it cannot be exchanged for the issuer",
                        shown(b)
                    ))))
                }
                (b, w) => b.or(w),
            };
            let target = match resource {
                Some(r) => resolve(state, &caller.agency, r)
                    .await
                    .map_err(GrantError::Mapped)?,
                None => None,
            };
            downscope(state, meta, &req, &caller, out, target).await
        }
    }
}

/// A narrower token of the same subject (RFC 8693 §2.1 `scope`, RFC 8707 resource binding).
async fn downscope(
    state: &Services,
    meta: &RequestMeta,
    req: &ExchangeRequest<'_>,
    caller: &Caller,
    out: Exchanged,
    target: Option<Target>,
) -> Result<TokenResponse, GrantError> {
    let Exchanged {
        account,
        expires_in,
        client_id,
    } = out;
    let alg = issue::client_alg(state, &client_id).await;
    let Some(claims) = caller.token() else {
        return Err(GrantError::InvalidRequest(
            "an API key can be exchanged for impersonation only; downscope an access token".into(),
        ));
    };
    let held: Vec<String> = claims.scopes().map(str::to_owned).collect();
    let scopes = match req.scope {
        None => held.clone(),
        Some(s) => split_scopes(s),
    };
    if let Some(extra) = scopes.iter().find(|s| !held.contains(s)) {
        return Err(GrantError::InvalidScope(format!(
            "scope `{}` is not in the subject token: an exchange can only narrow",
            shown(extra)
        )));
    }
    let scopes = match &target {
        Some(t) => t.narrow(&scopes).map_err(GrantError::Mapped)?,
        None => scopes,
    };
    let account = match (&caller.cap.account, account) {
        (Some(have), Some(want)) if *have != want => {
            return Err(GrantError::InvalidTarget(
                "the subject token is bound to another account".into(),
            ))
        }
        (Some(have), _) => Some(have.clone()),
        (None, Some(want)) => {
            let scope = state.admission.admit(caller.agency.clone());
            match state.store.get_account(&scope, &want).await {
                Ok(_) => Some(want),
                Err(StoreError::NotFound) => {
                    return Err(GrantError::InvalidTarget(
                        "`account` names no account of the token's agency".into(),
                    ))
                }
                Err(e) => return Err(e.into()),
            }
        }
        (None, None) => None,
    };
    let left = remaining(state, caller).unwrap_or(0);
    // Never longer than the subject token.
    let ttl = expires_in.unwrap_or(left).min(left);
    if ttl <= 0 {
        return Err(GrantError::InvalidGrant(
            "the subject token has expired".into(),
        ));
    }
    // The derived token stays bound to the subject's grant and installation, so revoking either
    // revokes it: a binding that does not parse refuses the exchange, never drops the binding.
    let malformed =
        |what: &str| GrantError::InvalidGrant(format!("the subject token's `{what}` is malformed"));
    let sid: Option<GrantId> = claims
        .extra
        .get("sid")
        .and_then(Value::as_str)
        .map(str::parse)
        .transpose()
        .map_err(|_| malformed("sid"))?;
    let ins: Option<InstallationId> = claims
        .extra
        .get("ins")
        .and_then(Value::as_str)
        .map(str::parse)
        .transpose()
        .map_err(|_| malformed("ins"))?;
    let issued = issue::mint_access(
        state,
        AccessSpec {
            sub: claims.sub.clone(),
            client_id,
            scopes: scopes.clone(),
            agency: caller.agency.clone(),
            account: account.clone(),
            act: claims.act.clone(),
            sid,
            ins,
            ttl,
            alg,
            aud: target.as_ref().map(|t| t.identifier.clone()),
        },
    )?;
    let audit = record(
        state,
        meta,
        actor_of(claims).unwrap_or(&claims.sub),
        actor_of(claims).map(|_| claims.sub.as_str()),
        AuditAction::TokenExchange,
        Some(&claims.jti),
        Outcome::Success,
        json!({ "kind": "downscope", "scope": scopes.join(" "), "account": account.as_ref().map(AccountId::as_str), "jti": issued.jti, "from_jti": claims.jti, "resource": target.as_ref().map(|t| t.identifier.as_str()) }),
    );
    state
        .audit
        .append(state.admission.admit(caller.agency.clone()), audit)
        .await?;
    Ok(exchanged(issued.token, issued.expires_in, &scopes))
}
