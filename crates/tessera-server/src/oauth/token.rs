//! `POST /oauth/token`: the authorization-code, client-credentials, refresh-token and
//! token-exchange grants (RFC 6749 §4.1.3, §4.4, §6; RFC 7636; RFC 8693).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tessera_core::AgencyId;
use tessera_store::{
    AppKind, CodeRedemption, Grant, Installation, NewRefreshToken, Outcome, RefreshUse, Status,
    StoreError, TenantScope,
};
use tessera_token::SecretString;

use super::client::{self, AuthMethod, Client};
use super::tokens::{self, AccessSpec};
use super::{is_protocol_scope, no_store, split_scopes, OAuthError};
use crate::auth::RequestMeta;
use crate::http::state::AppState;
use crate::services::Services;

/// The grant type URN of RFC 8693.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The form parameters of a request, each at most once (RFC 6749 §3.1, §3.2).
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses an `application/x-www-form-urlencoded` body.
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form {
            return Err(OAuthError::invalid_request(
                "send the parameters as application/x-www-form-urlencoded",
            ));
        }
        Self::from_pairs(
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
                .map_err(|_| OAuthError::invalid_request("the form body is malformed"))?,
        )
    }

    /// From decoded pairs; a repeated parameter is refused.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, OAuthError> {
        let mut map = HashMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            if v.contains('\0') {
                return Err(OAuthError::invalid_request(format!(
                    "parameter `{k}` contains a NUL character"
                )));
            }
            if map.insert(k.clone(), v).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter `{k}` is repeated"
                )));
            }
        }
        Ok(Self(map))
    }

    /// A parameter; an empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// A required parameter.
    pub fn required(&self, k: &str) -> Result<&str, OAuthError> {
        self.get(k)
            .ok_or_else(|| OAuthError::invalid_request(format!("`{k}` is required")))
    }
}

/// The request facts every token-endpoint call carries.
#[derive(Debug)]
pub struct TokenRequest {
    /// Headers.
    pub headers: HeaderMap,
    /// Form parameters.
    pub params: Params,
    /// For audit.
    pub meta: RequestMeta,
}

/// `POST /oauth/token`.
pub async fn token(State(s): State<AppState>, req: axum::extract::Request) -> Response {
    let (parts, body) = match split(req).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let meta = parts
        .extensions
        .get::<RequestMeta>()
        .cloned()
        .unwrap_or_default();
    let params = match Params::parse(&parts.headers, &body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let req = TokenRequest {
        headers: parts.headers,
        params,
        meta,
    };
    let result = match req.params.get("grant_type") {
        None => Err(OAuthError::invalid_request("`grant_type` is required")),
        Some("authorization_code") => authorization_code(&s, &req).await,
        Some("client_credentials") => client_credentials(&s, &req).await,
        Some("refresh_token") => refresh(&s, &req).await,
        Some(TOKEN_EXCHANGE) => super::exchange::exchange(&s, &req).await,
        Some(other) => Err(OAuthError::unsupported_grant_type(format!(
            "grant type `{}` is not supported",
            other.chars().take(100).collect::<String>()
        ))),
    };
    match result {
        Ok(v) => no_store(v),
        Err(e) => e.into_response(),
    }
}

/// A request's parts and its whole body, without copying the headers (the `Parts`
/// extractor clones them). The body limit is the router's.
pub async fn split(req: axum::extract::Request) -> Result<(Parts, Bytes), OAuthError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, crate::http::extract::MAX_BODY)
        .await
        .map_err(|_| OAuthError::invalid_request("the body is too large or unreadable"))?;
    Ok((parts, bytes))
}

/// An audit record of the authorization server.
pub use crate::auth::audit_event as record;

/// Whether an app of `kind` may hold a scope of `audience` (DESIGN.md §1): public scopes any
/// app; partner scopes marketplace and first-party apps; internal scopes first-party apps.
pub fn audience_allows(kind: AppKind, audience: tessera_core::catalog::Audience) -> bool {
    use tessera_core::catalog::Audience;
    match audience {
        Audience::Public => true,
        Audience::Partner => matches!(kind, AppKind::Marketplace | AppKind::FirstParty),
        Audience::Internal => kind == AppKind::FirstParty,
    }
}

/// S256 (RFC 7636 §4.2) of a verifier.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `v` is a well-formed PKCE verifier or challenge: 43 to 128 unreserved characters.
pub fn pkce_well_formed(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The active installation `id` of agency `agency`, from its current state.
pub async fn active_installation(
    state: &Services,
    agency: &AgencyId,
    id: &str,
) -> Result<Option<Installation>, OAuthError> {
    let platform = tokens::is_platform(state, agency).await?;
    let entry = state
        .engine
        .entry(agency, platform, None)
        .await
        .map_err(|e| OAuthError::from(crate::error::ApiError::from(e)))?;
    Ok(entry.tokens.installations.get(id).cloned())
}

async fn authorization_code(state: &Services, req: &TokenRequest) -> Result<Value, OAuthError> {
    let p = &req.params;
    let client = client::authenticate(
        state,
        &req.headers,
        p.get("client_id"),
        p.get("client_secret"),
    )
    .await?;
    let code = p.required("code")?;
    let redirect_uri = p.required("redirect_uri")?;
    let verifier = p.get("code_verifier").ok_or_else(|| {
        OAuthError::invalid_request("`code_verifier` is required (PKCE is mandatory)")
    })?;
    if !pkce_well_formed(verifier) {
        return Err(OAuthError::invalid_request(
            "`code_verifier` must be 43 to 128 characters of [A-Za-z0-9-._~]",
        ));
    }
    let now = state.clock.now();
    let hash = state.pepper.hash(code.as_bytes());
    let c = match state.store.redeem_code(hash.as_bytes(), now).await? {
        None => return Err(OAuthError::invalid_grant("the code is invalid")),
        Some(CodeRedemption::Replayed(c)) => {
            // RFC 6749 §4.1.2: a code used twice revokes what it issued.
            let scope = TenantScope::authenticated(c.agency_id.clone());
            let audit = record(
                state,
                &req.meta,
                client.id().as_str(),
                Some(c.user_id.as_str()),
                "oauth.code_replayed",
                Some(&c.grant_id),
                Outcome::Denied,
                json!({ "client_id": client.id().as_str(), "grant": c.grant_id }),
            );
            // The first redemption may have failed (a wrong verifier, a wrong redirect URI):
            // then no grant was created, nothing is revoked, and the replay is still recorded.
            match state
                .store
                .revoke_grant(&scope, &c.grant_id, now, &audit)
                .await
            {
                Ok(_) => state.engine.invalidate(&c.agency_id),
                Err(StoreError::NotFound) => state.audit.append(scope, audit).await?,
                Err(e) => return Err(e.into()),
            }
            return Err(OAuthError::invalid_grant(
                "the code was already used; any tokens it issued are revoked",
            ));
        }
        Some(CodeRedemption::Fresh(c)) => c,
    };
    if c.client_id != *client.id() {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if c.expires_at <= now {
        return Err(OAuthError::invalid_grant("the code has expired"));
    }
    if c.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "`redirect_uri` differs from the authorization request's",
        ));
    }
    if !tessera_token::ct_eq(s256(verifier).as_bytes(), c.code_challenge.as_bytes()) {
        return Err(OAuthError::invalid_grant(
            "the PKCE code_verifier does not match the code_challenge",
        ));
    }
    let scope = TenantScope::authenticated(c.agency_id.clone());
    let scopes = split_scopes(&c.scope);
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
        expires_at: now + state.oauth.settings.refresh_absolute_ttl * 1000,
        revoked_at: None,
    };
    let user = grant_user(state, &grant).await?;
    let (refresh, refresh_row) = new_refresh(state, &grant.id, grant.expires_at);
    let issued = grant_access(state, &client, &grant, &scopes)?;
    let audit = record(
        state,
        &req.meta,
        user.id.as_str(),
        None,
        "token.issue",
        Some(&grant.id),
        Outcome::Success,
        json!({ "grant_type": "authorization_code", "client_id": client.id().as_str(), "scope": c.scope, "jti": issued.jti }),
    );
    state
        .store
        .create_grant(&scope, &grant, Some(&refresh_row), &audit)
        .await?;
    user_tokens(
        state,
        &client,
        &user,
        &grant,
        &issued,
        &refresh,
        &scopes,
        c.nonce.clone(),
    )
}

/// The user of a grant, while they may still sign in and its installation is still there.
async fn grant_user(state: &Services, grant: &Grant) -> Result<tessera_store::User, OAuthError> {
    let user_id: tessera_core::UserId = grant
        .subject
        .parse()
        .map_err(|_| OAuthError::server("a grant has a malformed subject"))?;
    let scope = TenantScope::authenticated(grant.agency_id.clone());
    let user = match state.store.get_user(&scope, &user_id).await {
        Ok(u) if u.status == Status::Active => u,
        Ok(_) | Err(StoreError::NotFound) => {
            return Err(OAuthError::invalid_grant("the user can no longer sign in"))
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(ins) = &grant.installation {
        if active_installation(state, &grant.agency_id, ins.as_str())
            .await?
            .is_none()
        {
            return Err(OAuthError::invalid_grant("the app was uninstalled"));
        }
    }
    Ok(user)
}

/// An access token of a user's grant.
fn grant_access(
    state: &Services,
    client: &Client,
    grant: &Grant,
    scopes: &[String],
) -> Result<tokens::Issued, OAuthError> {
    tokens::mint_access(
        state,
        AccessSpec {
            sub: grant.subject.clone(),
            client_id: client.id().to_string(),
            scopes: scopes.to_vec(),
            agency: grant.agency_id.clone(),
            account: grant.account.clone(),
            act: None,
            sid: Some(grant.id.clone()),
            ins: grant.installation.clone(),
            ttl: state.oauth.settings.access_ttl,
            alg: tokens::app_alg(client.app()),
        },
    )
}

/// The token response of a user's grant: access and refresh tokens, and an id token when
/// `openid` was granted.
#[allow(clippy::too_many_arguments)]
fn user_tokens(
    state: &Services,
    client: &Client,
    user: &tessera_store::User,
    grant: &Grant,
    issued: &tokens::Issued,
    refresh: &SecretString,
    scopes: &[String],
    nonce: Option<String>,
) -> Result<Value, OAuthError> {
    let mut out = json!({
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "refresh_token": refresh.expose(),
        "scope": scopes.join(" "),
    });
    if scopes.iter().any(|s| s == "openid") {
        out["id_token"] = Value::String(tokens::mint_id_token(
            state,
            user,
            client.id().as_str(),
            nonce,
            grant.auth_time,
            scopes,
            tokens::app_alg(client.app()),
        )?);
    }
    Ok(out)
}

/// A new refresh token of grant `grant_id`.
fn new_refresh(
    state: &Services,
    grant_id: &str,
    absolute_end: i64,
) -> (SecretString, NewRefreshToken) {
    let now = state.clock.now();
    let (secret, hash) = tokens::new_secret(state, tokens::REFRESH_PREFIX);
    (
        secret,
        NewRefreshToken {
            hash,
            pepper_version: i64::from(state.pepper.version()),
            grant_id: grant_id.to_owned(),
            created_at: now,
            idle_expires_at: (now + state.oauth.settings.refresh_idle_ttl * 1000).min(absolute_end),
        },
    )
}

async fn client_credentials(state: &Services, req: &TokenRequest) -> Result<Value, OAuthError> {
    let p = &req.params;
    let client = client::authenticate(
        state,
        &req.headers,
        p.get("client_id"),
        p.get("client_secret"),
    )
    .await?;
    if client.method == AuthMethod::None {
        return Err(OAuthError::unauthorized_client(
            "public clients cannot use the client_credentials grant",
        ));
    }
    let ins = choose_installation(state, &client, p.get("installation")).await?;
    let app = client.app();
    let requested = match p.get("scope") {
        Some(s) => split_scopes(s),
        None => ins
            .scopes
            .iter()
            .filter(|s| app.scopes.contains(s))
            .cloned()
            .collect(),
    };
    for s in &requested {
        let granted = !is_protocol_scope(s)
            && ins.scopes.contains(s)
            && app.scopes.contains(s)
            && state
                .catalog
                .scope(s)
                .is_some_and(|(aud, _)| audience_allows(app.kind, aud));
        if !granted {
            return Err(OAuthError::invalid_scope(format!(
                "scope `{}` is not granted to this installation",
                s.chars().take(100).collect::<String>()
            )));
        }
    }
    if requested.is_empty() {
        return Err(OAuthError::invalid_scope(
            "the installation grants no scope this app may request",
        ));
    }
    let issued = tokens::mint_access(
        state,
        AccessSpec {
            sub: app.id.to_string(),
            client_id: app.id.to_string(),
            scopes: requested.clone(),
            agency: ins.agency_id.clone(),
            account: ins.account.clone(),
            act: None,
            sid: None,
            ins: Some(ins.id.clone()),
            ttl: state.oauth.settings.access_ttl,
            alg: tokens::app_alg(client.app()),
        },
    )?;
    let audit = record(
        state,
        &req.meta,
        app.id.as_str(),
        None,
        "token.issue",
        Some(ins.id.as_str()),
        Outcome::Success,
        json!({ "grant_type": "client_credentials", "scope": requested.join(" "), "jti": issued.jti }),
    );
    state
        .audit
        .append(TenantScope::authenticated(ins.agency_id.clone()), audit)
        .await?;
    Ok(json!({
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": requested.join(" "),
    }))
}

async fn choose_installation(
    state: &Services,
    client: &Client,
    wanted: Option<&str>,
) -> Result<Installation, OAuthError> {
    for refresh in [false, true] {
        let list = client::installations(state, client.id(), refresh).await?;
        let candidates: Vec<&Installation> = match wanted {
            Some(w) => list.iter().filter(|i| i.id.as_str() == w).collect(),
            None => list.iter().collect(),
        };
        let chosen = match candidates.as_slice() {
            [one] => *one,
            [] if !refresh => continue,
            [] => {
                return Err(match wanted {
                    Some(_) => OAuthError::invalid_request(
                        "`installation` names no installation of this app",
                    ),
                    None => OAuthError::unauthorized_client(
                        "this app is not installed anywhere: an agency must install it first",
                    ),
                })
            }
            _ => {
                return Err(OAuthError::invalid_request(
                    "this app has several installations: name one with `installation`",
                ))
            }
        };
        // The list may be older than an uninstall: the agency's current state decides.
        match active_installation(state, &chosen.agency_id, chosen.id.as_str()).await? {
            Some(i) => return Ok(i),
            None if !refresh => continue,
            None => return Err(OAuthError::invalid_grant("the installation was removed")),
        }
    }
    Err(OAuthError::invalid_grant("the installation was removed"))
}

async fn refresh(state: &Services, req: &TokenRequest) -> Result<Value, OAuthError> {
    let p = &req.params;
    let client = client::authenticate(
        state,
        &req.headers,
        p.get("client_id"),
        p.get("client_secret"),
    )
    .await?;
    let presented = p.required("refresh_token")?;
    let now = state.clock.now();
    let hash = state.pepper.hash(presented.as_bytes());
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
    let Some((rt, grant)) = state.store.find_refresh_token(hash.as_bytes()).await? else {
        return Err(invalid());
    };
    // Bound to its client (RFC 6749 §6, RFC 9700 §4.14.2).
    if grant.client_id != *client.id() {
        return Err(invalid());
    }
    if grant.revoked_at.is_some() || grant.expires_at <= now || rt.idle_expires_at <= now {
        return Err(invalid());
    }
    let granted = split_scopes(&grant.scope);
    let scopes = match p.get("scope") {
        None => granted.clone(),
        Some(s) => {
            let asked = split_scopes(s);
            if let Some(extra) = asked.iter().find(|s| !granted.contains(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope `{}` was not granted: a refresh can only narrow",
                    extra.chars().take(100).collect::<String>()
                )));
            }
            asked
        }
    };
    let scope = TenantScope::authenticated(grant.agency_id.clone());
    let user = grant_user(state, &grant).await?;
    let (new_token, new_row) = new_refresh(state, &grant.id, grant.expires_at);
    let audit = record(
        state,
        &req.meta,
        client.id().as_str(),
        Some(user.id.as_str()),
        "oauth.refresh_reused",
        Some(&grant.id),
        Outcome::Denied,
        json!({ "grant": grant.id, "client_id": client.id().as_str() }),
    );
    match state
        .store
        .rotate_refresh_token(
            &scope,
            hash.as_bytes(),
            &new_row,
            now,
            state.oauth.settings.refresh_reuse_grace_ms,
            &audit,
        )
        .await?
    {
        RefreshUse::Rotated => {}
        RefreshUse::RecentlyRotated => {
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used; use the one issued with it",
            ))
        }
        RefreshUse::Reused => {
            state.engine.invalidate(&grant.agency_id);
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used: every token of this grant is revoked",
            ));
        }
        RefreshUse::Revoked => return Err(invalid()),
    }
    let issued = grant_access(state, &client, &grant, &scopes)?;
    let audit = record(
        state,
        &req.meta,
        user.id.as_str(),
        None,
        "token.issue",
        Some(&grant.id),
        Outcome::Success,
        json!({ "grant_type": "refresh_token", "client_id": client.id().as_str(), "scope": scopes.join(" "), "jti": issued.jti }),
    );
    state.audit.append(scope, audit).await?;
    user_tokens(
        state, &client, &user, &grant, &issued, &new_token, &scopes, None,
    )
}
