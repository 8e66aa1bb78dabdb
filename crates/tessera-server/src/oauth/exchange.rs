//! RFC 8693 token exchange: downscoping (fewer scopes, one account, a shorter life) and
//! impersonation (`requested_subject` + `reason`).
//!
//! INVARIANT (I2): a downscoped token carries a subset of its subject token's scopes, never
//! outlives it, and keeps its subject, actor, grant and installation. An impersonation token
//! carries at most target ∩ impersonator ∩ the impersonation policy: the impersonator must hold
//! `users.impersonate` there, may not impersonate someone holding what they do not, may not
//! chain impersonations, and gets no refresh token and at most one hour. Only the subject
//! token's own client may exchange it (or no authenticated client: the token is the proof);
//! the scopes the impersonation policy cuts into are not listed in the result.

use std::sync::Arc;

use serde_json::{json, Value};
use tessera_core::{AccountId, CredentialCap, PrincipalId, UserId};
use tessera_store::{Outcome, Status, StoreError, TenantScope};
use tessera_token::Actor;

use super::token::{record, TokenRequest};
use super::tokens::{self, AccessSpec};
use super::{client, is_protocol_scope, split_scopes, OAuthError};
use crate::auth::{self, Caller};
use crate::services::Services;

/// RFC 8693 §3 token type of access tokens.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 §3 token type of JWTs.
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

fn accepted_type(t: &str) -> bool {
    t == ACCESS_TOKEN_TYPE || t == JWT_TYPE
}

/// The subject token's caller.
async fn subject(state: &Services, token: &str) -> Result<Arc<Caller>, OAuthError> {
    if tokens::looks_like_jwt(token) {
        match tokens::check_access_token(state, token, Some(state.oauth.issuer())).await? {
            Ok(claims) => Ok(Arc::new(tokens::caller_from_claims(state, &claims).await?)),
            Err(why) => Err(OAuthError::invalid_grant(format!(
                "the subject token is not active: {why}"
            ))),
        }
    } else {
        auth::authenticate_token(state, token).await.map_err(|e| {
            OAuthError::invalid_grant(format!("the subject token is not active: {}", e.detail))
        })
    }
}

/// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`.
pub async fn exchange(state: &Services, req: &TokenRequest) -> Result<Value, OAuthError> {
    let p = &req.params;
    // Client authentication is optional: the subject token is the proof. If presented, it must
    // be valid and be the subject token's own client; the result is issued to that client.
    let client = match client::presented(&req.headers, p.get("client_id"), p.get("client_secret"))?
    {
        Some((id, secret, method)) => {
            Some(client::authenticate_as(state, &id, secret.as_deref(), method).await?)
        }
        None => None,
    };
    let token = p.required("subject_token")?;
    let token_type = p.required("subject_token_type")?;
    if !accepted_type(token_type) {
        return Err(OAuthError::invalid_request(
            "`subject_token_type` must be urn:ietf:params:oauth:token-type:access_token",
        ));
    }
    if p.get("actor_token").is_some() || p.get("actor_token_type").is_some() {
        return Err(OAuthError::invalid_request(
            "`actor_token` is not supported: impersonate with `requested_subject` and the caller's token as `subject_token`",
        ));
    }
    if let Some(t) = p.get("requested_token_type") {
        if !accepted_type(t) {
            return Err(OAuthError::invalid_request(
                "only access tokens can be requested",
            ));
        }
    }
    for target in [p.get("audience"), p.get("resource")].into_iter().flatten() {
        if target != state.oauth.issuer() {
            return Err(OAuthError::invalid_target(format!(
                "tokens are issued for `{}` only",
                state.oauth.issuer()
            )));
        }
    }
    let caller = subject(state, token).await?;
    let account = match p.get("account") {
        None => None,
        Some(a) => Some(
            a.parse::<AccountId>()
                .map_err(|_| OAuthError::invalid_request("`account` is not an account id"))?,
        ),
    };
    let expires_in = match p.get("expires_in") {
        None => None,
        Some(e) => Some(e.parse::<i64>().ok().filter(|e| *e > 0).ok_or_else(|| {
            OAuthError::invalid_request("`expires_in` must be a positive number of seconds")
        })?),
    };
    // The result belongs to the subject token's own client: a client that authenticates must
    // be that client (RFC 8693 §2.1 leaves the policy to the server; re-issuing a user's token
    // to another client would hand it a consent it never got). An API key is its own client.
    let client_id = match (&caller.token, &caller.key) {
        (Some(t), _) => t.client_id.clone(),
        (None, Some(k)) => k.id.to_string(),
        (None, None) => return Err(OAuthError::invalid_client("authenticate the client")),
    };
    if let Some(c) = &client {
        if c.id().as_str() != client_id {
            let on_behalf = caller.principal.to_string();
            let audit = record(
                state,
                &req.meta,
                c.id().as_str(),
                Some(&on_behalf),
                "token.exchange",
                None,
                Outcome::Denied,
                json!({
                    "why": "client_mismatch",
                    "client_id": c.id().as_str(),
                    "subject_client_id": client_id,
                    "kind": if p.get("requested_subject").is_some() { "impersonation" } else { "downscope" },
                }),
            );
            state
                .audit
                .append(TenantScope::authenticated(caller.agency.clone()), audit)
                .await?;
            return Err(OAuthError::invalid_grant(
                "the subject token was issued to another client: only its own client may exchange it",
            ));
        }
    }
    match p.get("requested_subject") {
        Some(target) => {
            impersonate(state, req, &caller, target, account, expires_in, client_id).await
        }
        None => downscope(state, req, &caller, account, expires_in, client_id).await,
    }
}

fn remaining(state: &Services, caller: &Caller) -> Option<i64> {
    caller
        .token
        .as_ref()
        .map(|t| t.exp - state.clock.now() / 1000)
}

async fn downscope(
    state: &Services,
    req: &TokenRequest,
    caller: &Caller,
    account: Option<AccountId>,
    expires_in: Option<i64>,
    client_id: String,
) -> Result<Value, OAuthError> {
    let alg = tokens::client_alg(state, &client_id).await;
    let Some(claims) = &caller.token else {
        return Err(OAuthError::invalid_request(
            "an API key can be exchanged for impersonation only; downscope an access token",
        ));
    };
    let held: Vec<String> = claims.scopes().map(str::to_owned).collect();
    let scopes = match req.params.get("scope") {
        None => held.clone(),
        Some(s) => split_scopes(s),
    };
    if let Some(extra) = scopes.iter().find(|s| !held.contains(s)) {
        return Err(OAuthError::invalid_scope(format!(
            "scope `{}` is not in the subject token: an exchange can only narrow",
            extra.chars().take(100).collect::<String>()
        )));
    }
    let account = match (&caller.cap.account, account) {
        (Some(have), Some(want)) if *have != want => {
            return Err(OAuthError::invalid_target(
                "the subject token is bound to another account",
            ))
        }
        (Some(have), _) => Some(have.clone()),
        (None, Some(want)) => {
            let scope = TenantScope::authenticated(caller.agency.clone());
            match state.store.get_account(&scope, &want).await {
                Ok(_) => Some(want),
                Err(StoreError::NotFound) => {
                    return Err(OAuthError::invalid_target(
                        "`account` names no account of the token's agency",
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
        return Err(OAuthError::invalid_grant("the subject token has expired"));
    }
    let issued = tokens::mint_access(
        state,
        AccessSpec {
            sub: claims.sub.clone(),
            client_id,
            scopes: scopes.clone(),
            agency: caller.agency.clone(),
            account: account.clone(),
            act: claims.act.clone(),
            sid: claims
                .extra
                .get("sid")
                .and_then(Value::as_str)
                .map(str::to_owned),
            ins: claims
                .extra
                .get("ins")
                .and_then(Value::as_str)
                .and_then(|i| i.parse().ok()),
            ttl,
            alg,
        },
    )?;
    let audit = record(
        state,
        &req.meta,
        tokens::actor_of(claims).unwrap_or(&claims.sub),
        tokens::actor_of(claims).map(|_| claims.sub.as_str()),
        "token.exchange",
        Some(&claims.jti),
        Outcome::Success,
        json!({ "kind": "downscope", "scope": scopes.join(" "), "account": account.as_ref().map(AccountId::as_str), "jti": issued.jti, "from_jti": claims.jti }),
    );
    state
        .audit
        .append(TenantScope::authenticated(caller.agency.clone()), audit)
        .await?;
    Ok(json!({
        "access_token": issued.token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": scopes.join(" "),
    }))
}

#[allow(clippy::too_many_arguments)]
async fn impersonate(
    state: &Services,
    req: &TokenRequest,
    caller: &Caller,
    target: &str,
    account: Option<AccountId>,
    expires_in: Option<i64>,
    client_id: String,
) -> Result<Value, OAuthError> {
    let alg = tokens::client_alg(state, &client_id).await;
    let reason = req
        .params
        .get("reason")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("`reason` is required to impersonate"))?;
    if reason.chars().count() > 500 {
        return Err(OAuthError::invalid_request(
            "`reason` must be at most 500 characters",
        ));
    }
    if caller.token.as_ref().is_some_and(|t| t.act.is_some()) {
        return Err(OAuthError::invalid_grant(
            "an impersonation token cannot be used to impersonate again",
        ));
    }
    if matches!(caller.principal, PrincipalId::Installation(_)) {
        return Err(OAuthError::invalid_grant(
            "an app's token cannot impersonate users",
        ));
    }
    let target: UserId = target
        .parse()
        .map_err(|_| OAuthError::invalid_target("`requested_subject` must be a user id (usr_…)"))?;
    let agency = caller.agency.clone();
    let scope = TenantScope::authenticated(agency.clone());
    // Another agency's user is the same unknown target as a missing one (I1).
    let user = match state.store.get_user(&scope, &target).await {
        Ok(u) if u.status == Status::Active => u,
        Ok(_) | Err(StoreError::NotFound) => {
            return Err(OAuthError::invalid_target(
                "`requested_subject` names no active user of your agency",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if PrincipalId::User(user.id.clone()) == caller.principal {
        return Err(OAuthError::invalid_target(
            "you cannot impersonate yourself",
        ));
    }
    let account = match (&caller.cap.account, account) {
        (Some(have), Some(want)) if *have != want => {
            return Err(OAuthError::invalid_target(
                "your credential is bound to another account",
            ))
        }
        (Some(have), _) => Some(have.clone()),
        (None, want) => want,
    };
    if let Some(acc) = &account {
        match state.store.get_account(&scope, acc).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => {
                return Err(OAuthError::invalid_target(
                    "`account` names no account of your agency",
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
    let impersonate = state
        .catalog
        .permission("users.impersonate")
        .ok_or_else(|| OAuthError::server("the catalog lacks users.impersonate"))?;
    let meta = &req.meta;
    let d = auth::decide(
        state,
        caller,
        impersonate,
        &agency,
        account.as_ref(),
        &auth::request_context(state, meta),
        None,
    )
    .await?;
    let denied = |why: &str, detail: Value| {
        record(
            state,
            meta,
            caller.principal.as_str(),
            Some(user.id.as_str()),
            "impersonation.start",
            Some(user.id.as_str()),
            Outcome::Denied,
            json!({ "why": why, "detail": detail, "reason": reason }),
        )
    };
    if !d.allowed {
        let _ = state
            .store
            .append_audit(&scope, &denied("not_permitted", json!(d.reason.code())))
            .await;
        return Err(OAuthError::invalid_grant(
            "the subject token does not allow impersonating users here (users.impersonate)",
        ));
    }
    let forbidden = state.oauth.impersonation_forbidden;
    let mine = auth::effective_of(state, caller, &agency, account.as_ref()).await?;
    let as_target = Caller {
        principal: PrincipalId::User(user.id.clone()),
        agency: agency.clone(),
        is_platform: caller.is_platform,
        key: None,
        cap: CredentialCap {
            permissions: None,
            account: None,
        },
        own: None,
        token: None,
    };
    let theirs = auth::effective_of(state, &as_target, &agency, account.as_ref()).await?;
    // "More privileged" compares people, not credentials: what the impersonator holds
    // through their roles (their token's scopes only cap the result, below).
    let uncapped = Caller {
        cap: CredentialCap {
            permissions: None,
            account: caller.cap.account.clone(),
        },
        token: None,
        ..caller.clone()
    };
    let held = auth::effective_of(state, &uncapped, &agency, account.as_ref()).await?;
    let beyond = theirs.difference(&forbidden).difference(&held);
    if !beyond.is_empty() {
        let names = state.catalog.permission_names(&beyond);
        let _ = state
            .store
            .append_audit(&scope, &denied("more_privileged_target", json!(names)))
            .await;
        return Err(OAuthError::invalid_target(
            "this user holds permissions you do not: you cannot impersonate a more privileged user",
        ));
    }
    let allowed = mine.intersect(&theirs).difference(&forbidden);
    let default_scopes: Vec<String> = match (&caller.token, &caller.key) {
        (Some(t), _) => t.scopes().map(str::to_owned).collect(),
        (None, Some(k)) => k.scopes.clone(),
        (None, None) => Vec::new(),
    };
    // A scope is listed only if it is wholly effective under the impersonation policy: one
    // that maps to any permission the policy removes (`users.impersonate`, `users.write`,
    // `billing.*`, …) is dropped, so a resource server that trusts the token's `scope` claim
    // is never told of a power the token does not carry (RFC 6749 §3.3: the response's
    // `scope` says what was issued).
    let effective = |perms: &tessera_core::PermissionSet| perms.intersect(&forbidden).is_empty();
    let scopes: Vec<String> = match req.params.get("scope") {
        Some(s) => {
            let asked = split_scopes(s);
            for s in &asked {
                let within = !is_protocol_scope(s)
                    && state
                        .catalog
                        .scope(s)
                        .is_some_and(|(_, perms)| perms.difference(&forbidden).is_subset(&mine));
                if !within {
                    return Err(OAuthError::invalid_scope(format!(
                        "scope `{}` is beyond what you may do here",
                        s.chars().take(100).collect::<String>()
                    )));
                }
            }
            asked
                .into_iter()
                .filter(|s| {
                    state
                        .catalog
                        .scope(s)
                        .is_some_and(|(_, perms)| effective(&perms))
                })
                .collect()
        }
        None => default_scopes
            .into_iter()
            .filter(|s| {
                state.catalog.scope(s).is_some_and(|(_, perms)| {
                    effective(&perms)
                        && !perms.is_empty()
                        && perms.is_subset(&mine)
                        && !perms.intersect(&allowed).is_empty()
                })
            })
            .collect(),
    };
    if scopes.is_empty() {
        return Err(OAuthError::invalid_scope(
            "no scope is left for the impersonation (scopes that include a permission the impersonation policy removes are dropped): name narrower scopes with `scope`",
        ));
    }
    let mut ttl = state.oauth.settings.impersonation_ttl;
    if let Some(left) = remaining(state, caller) {
        ttl = ttl.min(left);
    }
    if let Some(e) = expires_in {
        ttl = ttl.min(e);
    }
    if ttl <= 0 {
        return Err(OAuthError::invalid_grant("the subject token has expired"));
    }
    let issued = tokens::mint_access(
        state,
        AccessSpec {
            sub: user.id.to_string(),
            client_id,
            scopes: scopes.clone(),
            agency: agency.clone(),
            account: account.clone(),
            act: Some(Actor {
                sub: caller.principal.to_string(),
                act: None,
            }),
            sid: None,
            ins: None,
            ttl,
            alg,
        },
    )?;
    let audit = record(
        state,
        meta,
        caller.principal.as_str(),
        Some(user.id.as_str()),
        "impersonation.start",
        Some(user.id.as_str()),
        Outcome::Success,
        json!({
            "reason": reason,
            "scope": scopes.join(" "),
            "account": account.as_ref().map(AccountId::as_str),
            "jti": issued.jti,
            "expires_at": issued.exp,
            "permissions": state.catalog.permission_names(&allowed),
        }),
    );
    state.store.append_audit(&scope, &audit).await?;
    Ok(json!({
        "access_token": issued.token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": scopes.join(" "),
    }))
}
