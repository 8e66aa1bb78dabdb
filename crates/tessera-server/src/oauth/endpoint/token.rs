//! `POST /oauth/token` (RFC 6749 §3.2): parses the form, authenticates the client (RFC 6749
//! §2.3.1; optional for token exchange, whose subject token is the proof, RFC 8693 §2.1),
//! checks the grant's parameters, and hands a typed request to the grant in `oauth::grant`.
//!
//! INVARIANT: an unsupported `grant_type` is refused before any client authentication; every
//! answer, success or error, is `Cache-Control: no-store` (RFC 6749 §5.1).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::client_auth;
use super::params::{self, Params};
use crate::caller::RequestMeta;
use crate::http::state::AppState;
use crate::oauth::client;
use crate::oauth::error::{no_store_json, OAuthError};
use crate::oauth::grant::authorization_code::{self, CodeRequest};
use crate::oauth::grant::client_credentials::{self, ClientCredentialsRequest};
use crate::oauth::grant::exchanged::{accepted_type, ExchangeRequest};
use crate::oauth::grant::refresh_token::{self, RefreshRequest};
use crate::oauth::grant::token_exchange;
use crate::oauth::grant::TokenResponse;
use crate::oauth::pkce;
use crate::services::Services;

/// The grant type URN of RFC 8693.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// `POST /oauth/token`. Authenticated by the client's credentials (Basic or form), or for
/// token exchange by the subject token itself.
pub async fn token(State(s): State<AppState>, req: axum::extract::Request) -> Response {
    let (parts, body) = match params::split(req).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let meta = params::meta(&parts);
    let rate = std::sync::Mutex::new(None);
    let result = match Params::parse(&parts.headers, &body) {
        Ok(params) => dispatch(&s, &parts.headers, &params, &meta, &rate).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(v) => match answer(&v) {
            Ok(v) => {
                let mut resp = no_store_json(v);
                if let Some(r) = rate.lock().ok().and_then(|mut r| r.take()) {
                    crate::ratelimit::headers::apply(resp.headers_mut(), &r);
                }
                resp
            }
            Err(e) => OAuthError::server(e.to_string()).into_response(),
        },
        Err(e) => e.into_response(),
    }
}

/// The token response as JSON, in one buffer sized for its tokens (no regrowth).
fn answer(v: &TokenResponse) -> serde_json::Result<Vec<u8>> {
    let tokens = v.access_token.len()
        + v.refresh_token.as_ref().map_or(0, String::len)
        + v.id_token.as_ref().map_or(0, String::len);
    let mut out = Vec::with_capacity(tokens + v.scope.len() + 160);
    serde_json::to_writer(&mut out, v)?;
    Ok(out)
}

async fn dispatch(
    state: &Services,
    headers: &HeaderMap,
    p: &Params,
    meta: &RequestMeta,
    rate: &std::sync::Mutex<Option<crate::ratelimit::Report>>,
) -> Result<TokenResponse, OAuthError> {
    // One rate-limit decision, once the client is known (its IP alone if it is not).
    let authenticate = || async {
        let client =
            client_auth::authenticate(state, headers, p.get("client_id"), p.get("client_secret"))
                .await;
        let who = client
            .as_ref()
            .ok()
            .map(|c| (c.id().as_str(), &c.app().agency_id));
        charge(state, meta, who, rate).await?;
        client
    };
    match p.get("grant_type") {
        None => {
            charge(state, meta, None, rate).await?;
            Err(OAuthError::invalid_request("`grant_type` is required"))
        }
        Some("authorization_code") => {
            let client = authenticate().await?;
            let code = p.required("code")?;
            let redirect_uri = p.required("redirect_uri")?;
            let verifier = p.get("code_verifier").ok_or_else(|| {
                OAuthError::invalid_request("`code_verifier` is required (PKCE is mandatory)")
            })?;
            if !pkce::well_formed(verifier) {
                return Err(OAuthError::invalid_request(
                    "`code_verifier` must be 43 to 128 characters of [A-Za-z0-9-._~]",
                ));
            }
            let req = CodeRequest {
                client,
                code,
                redirect_uri,
                verifier,
                resource: p.resource()?,
            };
            Ok(authorization_code::redeem(state, meta, req).await?)
        }
        Some("client_credentials") => {
            let req = ClientCredentialsRequest {
                client: authenticate().await?,
                installation: p.get("installation"),
                scope: p.get("scope"),
                resource: p.resource()?,
            };
            Ok(client_credentials::issue_token(state, meta, req).await?)
        }
        Some("refresh_token") => {
            let client = authenticate().await?;
            let req = RefreshRequest {
                client,
                refresh_token: p.required("refresh_token")?,
                scope: p.get("scope"),
                resource: p.resource()?,
            };
            Ok(refresh_token::refresh(state, meta, req).await?)
        }
        Some(TOKEN_EXCHANGE) => {
            let req = exchange_request(state, headers, p).await;
            let who = req
                .as_ref()
                .ok()
                .and_then(|r| r.client.as_ref())
                .map(|c| (c.id().as_str(), &c.app().agency_id));
            charge(state, meta, who, rate).await?;
            let req = req?;
            Ok(token_exchange::exchange(state, meta, req).await?)
        }
        Some(other) => {
            charge(state, meta, None, rate).await?;
            Err(OAuthError::unsupported_grant_type(format!(
                "grant type `{}` is not supported",
                crate::oauth::scope::shown(other)
            )))
        }
    }
}

/// Charges the token class: the IP, and the client and its agency when one authenticated.
async fn charge(
    state: &Services,
    meta: &RequestMeta,
    client: Option<(&str, &tessera_core::AgencyId)>,
    rate: &std::sync::Mutex<Option<crate::ratelimit::Report>>,
) -> Result<(), OAuthError> {
    let v =
        crate::gate::limit::for_client(state, crate::ratelimit::Class::Token, meta.addr, client)
            .await;
    if let Some(e) = OAuthError::from_verdict(&v) {
        return Err(e);
    }
    if let (crate::ratelimit::Verdict::Allowed(Some(r)), Ok(mut slot)) = (v, rate.lock()) {
        *slot = Some(r);
    }
    Ok(())
}

/// The parameters of RFC 8693 §2.1. Client authentication is optional: the subject token is
/// the proof. If presented, it must be valid (and, in the grant, the subject token's client).
async fn exchange_request<'a>(
    state: &Services,
    headers: &HeaderMap,
    p: &'a Params,
) -> Result<ExchangeRequest<'a>, OAuthError> {
    let client = match client_auth::presented(headers, p.get("client_id"), p.get("client_secret"))?
    {
        Some((id, secret, method)) => {
            Some(client::authenticate_as(state, &id, secret.as_deref(), method).await?)
        }
        None => None,
    };
    let subject_token = p.required("subject_token")?;
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
    Ok(ExchangeRequest {
        client,
        subject_token,
        targets: p.get("audience").into_iter().chain(p.resource()?).collect(),
        account: p.get("account"),
        expires_in: p.get("expires_in"),
        scope: p.get("scope"),
        requested_subject: p.get("requested_subject"),
        reason: p.get("reason"),
    })
}
