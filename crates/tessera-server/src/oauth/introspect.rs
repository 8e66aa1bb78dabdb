//! Introspection (RFC 7662), revocation (RFC 7009) and the OIDC userinfo endpoint.
//!
//! INVARIANT: introspection answers `{"active": false}` — nothing more — for anything invalid,
//! revoked, expired, or that the caller may not see: a client sees its own tokens; an API key
//! or access token sees the tokens of its agency (of its account, if bound to one); platform
//! credentials see every agency's. Revocation also accepts a public client identified by its
//! `client_id` (RFC 7009 §2.1), for its own tokens only.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use tessera_core::{AgencyId, UserId};
use tessera_store::{Outcome, Status, StoreError, TenantScope};

use super::token::{record, Params};
use super::tokens::{self, REFRESH_PREFIX};
use super::{client, no_store, OAuthError};
use crate::auth::{self, Caller, RequestMeta};
use crate::http::state::AppState;
use crate::services::Services;

/// Who is asking.
enum Asker {
    Client(client::Client),
    Credential(std::sync::Arc<Caller>),
}

impl Asker {
    /// Whether this asker may learn about a token of `client_id` in (`agency`, `account`).
    fn may_see(&self, client_id: &str, agency: &str, account: Option<&str>) -> bool {
        match self {
            Self::Client(c) => c.id().as_str() == client_id,
            Self::Credential(c) => {
                c.is_platform
                    || (c.agency.as_str() == agency
                        && c.cap
                            .account
                            .as_ref()
                            .is_none_or(|a| Some(a.as_str()) == account))
            }
        }
    }
}

fn bearer(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(s, _)| s.eq_ignore_ascii_case("bearer"))
}

/// Who asks. `public`: a public client may identify itself by `client_id` alone (revocation,
/// RFC 7009 §2.1); introspection needs an authenticated client or credential (RFC 7662 §2.1).
async fn asker(
    state: &Services,
    headers: &HeaderMap,
    p: &Params,
    public: bool,
) -> Result<Asker, OAuthError> {
    if bearer(headers) {
        let caller = auth::authenticate(state, headers)
            .await
            .map_err(|e| OAuthError::invalid_client(e.detail))?;
        return Ok(Asker::Credential(caller));
    }
    let c =
        client::authenticate(state, headers, p.get("client_id"), p.get("client_secret")).await?;
    if c.method == client::AuthMethod::None && !public {
        return Err(OAuthError::invalid_client(
            "introspection and revocation need an authenticated client or credential",
        ));
    }
    Ok(Asker::Client(c))
}

fn inactive() -> Response {
    no_store(json!({ "active": false }))
}

/// `POST /oauth/introspect`.
pub async fn introspect(State(s): State<AppState>, req: axum::extract::Request) -> Response {
    let (parts, body) = match super::token::split(req).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    match run_introspect(&s, &parts.headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn run_introspect(
    state: &Services,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let p = Params::parse(headers, body)?;
    let asker = asker(state, headers, &p, false).await?;
    let token = p.required("token")?;
    if token.starts_with(REFRESH_PREFIX) {
        return introspect_refresh(state, &asker, token).await;
    }
    if tokens::looks_like_jwt(token) {
        let claims = match tokens::check_access_token(state, token, None).await? {
            Ok(c) => c,
            Err(_) => return Ok(inactive()),
        };
        if !asker.may_see(
            &claims.client_id,
            &claims.tenant.agency,
            claims.tenant.account.as_deref(),
        ) {
            return Ok(inactive());
        }
        let mut out = Map::new();
        out.insert("active".into(), Value::Bool(true));
        out.insert("token_type".into(), Value::String("Bearer".into()));
        let v = serde_json::to_value(&*claims).map_err(|e| OAuthError::server(e.to_string()))?;
        if let Value::Object(m) = v {
            out.extend(m);
        }
        return Ok(no_store(Value::Object(out)));
    }
    if tessera_token::looks_like_api_key(token) {
        let Ok(caller) = auth::authenticate_token(state, token).await else {
            return Ok(inactive());
        };
        let Some(key) = &caller.key else {
            return Ok(inactive());
        };
        let account = key.account.as_ref().map(|a| a.to_string());
        if !asker.may_see("", key.agency_id.as_str(), account.as_deref()) {
            return Ok(inactive());
        }
        let mut out = json!({
            "active": true,
            "token_type": "api_key",
            "sub": key.id.as_str(),
            "scope": key.scopes.join(" "),
            "iat": key.created_at / 1000,
            "iss": state.oauth.issuer(),
            "tenant": { "agency": key.agency_id.as_str(), "account": account },
        });
        if let Some(exp) = key.expires_at {
            out["exp"] = Value::from(exp / 1000);
        }
        return Ok(no_store(out));
    }
    Ok(inactive())
}

async fn introspect_refresh(
    state: &Services,
    asker: &Asker,
    token: &str,
) -> Result<Response, OAuthError> {
    let now = state.clock.now();
    let hash = state.pepper.hash(token.as_bytes());
    let Some((rt, grant)) = state.store.find_refresh_token(hash.as_bytes()).await? else {
        return Ok(inactive());
    };
    let installed = match &grant.installation {
        Some(ins) => super::token::active_installation(state, &grant.agency_id, ins.as_str())
            .await?
            .is_some(),
        None => true,
    };
    let active = installed
        && grant.revoked_at.is_none()
        && rt.rotated_at.is_none()
        && rt.idle_expires_at > now
        && grant.expires_at > now
        && super::client::lookup(state, grant.client_id.as_str())
            .await?
            .is_some();
    let account = grant.account.as_ref().map(|a| a.to_string());
    if !active
        || !asker.may_see(
            grant.client_id.as_str(),
            grant.agency_id.as_str(),
            account.as_deref(),
        )
    {
        return Ok(inactive());
    }
    Ok(no_store(json!({
        "active": true,
        "token_type": "refresh_token",
        "client_id": grant.client_id.as_str(),
        "sub": grant.subject,
        "scope": grant.scope,
        "iat": rt.created_at / 1000,
        "exp": rt.idle_expires_at.min(grant.expires_at) / 1000,
        "iss": state.oauth.issuer(),
        "sid": grant.id,
        "tenant": { "agency": grant.agency_id.as_str(), "account": account },
    })))
}

/// `POST /oauth/revoke`.
pub async fn revoke(State(s): State<AppState>, req: axum::extract::Request) -> Response {
    let (parts, body) = match super::token::split(req).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let meta = parts
        .extensions
        .get::<RequestMeta>()
        .cloned()
        .unwrap_or_default();
    match run_revoke(&s, &parts.headers, &body, &meta).await {
        Ok(()) => no_store(json!({})),
        Err(e) => e.into_response(),
    }
}

async fn run_revoke(
    state: &Services,
    headers: &HeaderMap,
    body: &[u8],
    meta: &RequestMeta,
) -> Result<(), OAuthError> {
    let p = Params::parse(headers, body)?;
    // A public client revokes its own tokens with its `client_id` (RFC 7009 §2.1); a token
    // of another client is answered 200 and left alone, as for a confidential client (§2.2:
    // the answer never says whose a token is).
    let asker = asker(state, headers, &p, true).await?;
    let token = p.required("token")?;
    let now = state.clock.now();
    let actor = match &asker {
        Asker::Client(c) => c.id().to_string(),
        Asker::Credential(c) => c.principal.to_string(),
    };
    if token.starts_with(REFRESH_PREFIX) {
        let hash = state.pepper.hash(token.as_bytes());
        let Some((_, grant)) = state.store.find_refresh_token(hash.as_bytes()).await? else {
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
            "token.revoke",
            Some(&grant.id),
            Outcome::Success,
            json!({ "token_type": "refresh_token", "grant": grant.id }),
        );
        let scope = TenantScope::authenticated(grant.agency_id.clone());
        state
            .store
            .revoke_grant(&scope, &grant.id, now, &audit)
            .await?;
        state.engine.invalidate(&grant.agency_id);
        return Ok(());
    }
    if tokens::looks_like_jwt(token) {
        let claims = match tokens::check_access_token(state, token, None).await? {
            Ok(c) => c,
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
            "token.revoke",
            Some(&claims.jti),
            Outcome::Success,
            json!({ "token_type": "access_token", "jti": claims.jti }),
        );
        state
            .store
            .revoke_access_token(
                &TenantScope::authenticated(agency.clone()),
                &claims.jti,
                claims.exp * 1000,
                &audit,
            )
            .await?;
        state.engine.invalidate(&agency);
        return Ok(());
    }
    Ok(())
}

/// The challenge of a userinfo 403 (RFC 6750 §3: `insufficient_scope` with the scope needed).
const USERINFO_SCOPE_CHALLENGE: &str =
    "Bearer realm=\"tessera\", error=\"insufficient_scope\", scope=\"openid\"";

/// `GET|POST /oauth/userinfo` (OIDC Core §5.3).
pub async fn userinfo(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match run_userinfo(&s, &headers).await {
        Ok(v) => no_store(v),
        Err(e) => e.into_response(),
    }
}

async fn run_userinfo(state: &Services, headers: &HeaderMap) -> Result<Value, OAuthError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .ok_or_else(|| {
            let mut e = OAuthError::invalid_token("send the access token as a Bearer token");
            e.error = "invalid_request";
            e.challenge = Some("Bearer");
            e
        })?;
    let claims = match tokens::check_access_token(state, token, Some(state.oauth.issuer())).await? {
        Ok(c) => c,
        Err(why) => {
            return Err(OAuthError::invalid_token(format!(
                "the access token is not active: {why}"
            )))
        }
    };
    // RFC 6750 §3.1: a 403 names the scope the resource needs in its challenge.
    let insufficient = |d: &str| {
        let mut e = OAuthError::insufficient_scope(d);
        e.challenge = Some(USERINFO_SCOPE_CHALLENGE);
        e
    };
    let scopes: Vec<String> = claims.scopes().map(str::to_owned).collect();
    if !scopes.iter().any(|s| s == "openid") {
        return Err(insufficient("the access token lacks the `openid` scope"));
    }
    let Ok(user_id) = claims.sub.parse::<UserId>() else {
        return Err(insufficient("the token's subject is not a user"));
    };
    let agency: AgencyId = claims
        .tenant
        .agency
        .parse()
        .map_err(|_| OAuthError::invalid_token("malformed tenant"))?;
    let user = match state
        .store
        .get_user(&TenantScope::authenticated(agency), &user_id)
        .await
    {
        Ok(u) if u.status == Status::Active => u,
        Ok(_) | Err(StoreError::NotFound) => {
            return Err(OAuthError::invalid_token("the user is no longer active"))
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = tokens::user_claims(&user, &scopes);
    out.insert("sub".into(), Value::String(user.id.to_string()));
    Ok(Value::Object(out))
}
