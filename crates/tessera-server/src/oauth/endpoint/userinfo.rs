//! `GET|POST /oauth/userinfo` (OIDC Core §5.3): the signed-in user's claims, as released by the
//! access token's scopes (§5.4).
//!
//! INVARIANT: a missing token is 401 with a bare `Bearer` challenge, an inactive one 401
//! `invalid_token`, a token without `openid` 403 `insufficient_scope` (RFC 6750 §3.1); a store
//! outage is 503 `temporarily_unavailable`, never 401.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tessera_core::{AgencyId, UserId};
use tessera_store::{Status, StoreError};

use crate::http::state::AppState;
use crate::oauth::error::{no_store, OAuthError, OAuthErrorCode};
use crate::oauth::issue;
use crate::oauth::verify;
use crate::services::Services;

/// `GET|POST /oauth/userinfo` (OIDC Core §5.3). Authenticated by a bearer access token with
/// the `openid` scope.
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
            OAuthError::new(
                OAuthErrorCode::MissingBearer,
                "send the access token as a Bearer token",
            )
        })?;
    let claims = match verify::check_access_token(state, token, Some(state.oauth.issuer())).await? {
        Ok(c) => c,
        Err(why) => {
            return Err(OAuthError::invalid_token(format!(
                "the access token is not active: {why}"
            )))
        }
    };
    // RFC 6750 §3.1: a 403 names the scope the resource needs in its challenge.
    let insufficient = |d: &str| OAuthError::new(OAuthErrorCode::InsufficientScope, d);
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
        .get_user(&state.admission.admit(agency), &user_id)
        .await
    {
        Ok(u) if u.status == Status::Active => u,
        Ok(_) | Err(StoreError::NotFound) => {
            return Err(OAuthError::invalid_token("the user is no longer active"))
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = issue::user_claims(&user, &scopes);
    out.insert("sub".into(), Value::String(user.id.to_string()));
    Ok(Value::Object(out))
}
