//! `POST /oauth/introspect` (RFC 7662): whether a token is active and, to a caller who may see
//! it, its claims. Access tokens, refresh tokens and API keys are accepted.
//!
//! INVARIANT: `{"active": false}` — nothing more — for anything invalid, revoked, expired, or
//! that the caller may not see (RFC 7662 §2.2); but "cannot tell" (a store outage) is 503
//! `temporarily_unavailable`, never `active: false`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::asker::{asker, Asker};
use super::params::{self, Params};
use crate::http::state::AppState;
use crate::oauth::client;
use crate::oauth::error::{no_store, no_store_json, OAuthError};
use crate::oauth::issue::REFRESH_PREFIX;
use crate::oauth::refusal::from_authn;
use crate::oauth::tenant::active_installation;
use crate::oauth::verify;
use crate::services::Services;

fn inactive() -> Response {
    no_store(json!({ "active": false }))
}

/// `POST /oauth/introspect`. Authenticated by a confidential client's credentials or a
/// bearer API key or access token (RFC 7662 §2.1).
pub async fn introspect(State(s): State<AppState>, req: axum::extract::Request) -> Response {
    let (parts, body) = match params::split(req).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let addr = params::meta(&parts).addr;
    let rate = std::sync::Mutex::new(None);
    match run_introspect(&s, &parts.headers, &body, addr, &rate).await {
        Ok(mut r) => {
            if let Some(report) = rate.lock().ok().and_then(|mut r| r.take()) {
                crate::ratelimit::headers::apply(r.headers_mut(), &report);
            }
            r
        }
        Err(e) => e.into_response(),
    }
}

async fn run_introspect(
    state: &Services,
    headers: &HeaderMap,
    body: &[u8],
    addr: Option<std::net::IpAddr>,
    rate: &std::sync::Mutex<Option<crate::ratelimit::Report>>,
) -> Result<Response, OAuthError> {
    let p = Params::parse(headers, body)?;
    let asker = asker(state, headers, &p, false, addr, rate).await?;
    let token = p.required("token")?;
    if token.starts_with(REFRESH_PREFIX) {
        return introspect_refresh(state, &asker, token).await;
    }
    if verify::looks_like_jwt(token) {
        // An outage is an error (503), never `active: false`.
        // Its store reads may come from a replica that has applied this node's revision and
        // every write of this node (a revocation made here is read from the primary).
        let floor = crate::cluster::replica::Floor {
            revision: state.engine.applied(),
            writers: crate::cluster::replica::Writers::Any,
            untracked: false,
        };
        let checked = state
            .reads
            .run(floor, |st| {
                Box::pin(async move {
                    verify::check_access_token_on(state, st.as_ref(), token, None).await
                })
            })
            .await?;
        let claims = match checked {
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
        return active_jwt(&claims);
    }
    if tessera_token::looks_like_api_key(token) {
        // A refused key is inactive; an outage is `temporarily_unavailable`, never
        // `active: false` (RFC 7662 §2.2 describes tokens, not the server's health).
        let caller = match crate::authn::authenticate_token(state, token).await {
            Ok(c) => c,
            Err(e) if e.is_refusal() => return Ok(inactive()),
            // Suspended (its agency or its account): inactive until reinstated.
            Err(crate::authn::AuthnError::Suspended(_)) => return Ok(inactive()),
            Err(e) => return Err(from_authn(e, OAuthError::invalid_request)),
        };
        let Some(key) = caller.key() else {
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

/// The answer for an active access token: `active`, `token_type`, then its claims, written in
/// one buffer (no intermediate JSON tree: this is the hot path of a resource server).
fn active_jwt(claims: &tessera_token::AccessClaims) -> Result<Response, OAuthError> {
    const HEAD: &[u8] = br#"{"active":true,"token_type":"Bearer""#;
    // Tessera mints no such claim (its extra claims are `sid` and `ins`); were one there, it
    // would repeat a key of the answer, and a client reading the last would take the claim's
    // word for whether the token is active.
    if claims.extra.contains_key("active") || claims.extra.contains_key("token_type") {
        return Err(OAuthError::server(
            "the token carries a claim named like a field of the introspection answer",
        ));
    }
    let mut body = Vec::with_capacity(512);
    body.extend_from_slice(HEAD);
    let at = body.len();
    serde_json::to_writer(&mut body, claims).map_err(|e| OAuthError::server(e.to_string()))?;
    // `{"iss":…}` follows the head: its brace becomes the separator.
    let object = body.len() > at + 2;
    match body.get_mut(at) {
        Some(b) if *b == b'{' && object => *b = b',',
        _ => return Err(OAuthError::server("the claims are not a JSON object")),
    }
    Ok(no_store_json(body))
}

async fn introspect_refresh(
    state: &Services,
    asker: &Asker,
    token: &str,
) -> Result<Response, OAuthError> {
    let now = state.clock.now();
    let Some(((rt, grant, _), _, _)) =
        crate::peppered::find_by_hash(state, token.as_bytes(), |h| async move {
            state.store.find_refresh_token(h.as_bytes()).await
        })
        .await?
    else {
        return Ok(inactive());
    };
    let installed = match &grant.installation {
        Some(ins) => active_installation(state, &grant.agency_id, ins.as_str())
            .await?
            .is_some(),
        None => true,
    };
    let suspended = state
        .engine
        .suspended()
        .await?
        .credential(
            &grant.agency_id,
            grant.account.as_ref(),
            Some(grant.client_id.as_str()),
        )
        .is_some();
    let active = installed
        && !suspended
        && grant.revoked_at.is_none()
        && rt.rotated_at.is_none()
        && rt.idle_expires_at > now
        && grant.expires_at > now
        && client::find(state, grant.client_id.as_str())
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

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};
    use tessera_token::{AccessClaims, Actor, Tenant};

    use super::active_jwt;

    fn claims(extra: Map<String, Value>, act: Option<Actor>) -> AccessClaims {
        AccessClaims {
            iss: "http://issuer".into(),
            sub: "app_01".into(),
            aud: vec!["http://issuer".into()],
            exp: 2,
            iat: 1,
            nbf: 1,
            jti: "j\"1".into(),
            client_id: "app_01".into(),
            scope: "a b".into(),
            tenant: Tenant {
                agency: "agy_01".into(),
                account: None,
            },
            act,
            extra,
        }
    }

    /// The tree the answer used to be built as: `active`, `token_type`, then the claims.
    fn as_tree(c: &AccessClaims) -> String {
        let mut out = Map::new();
        out.insert("active".into(), Value::Bool(true));
        out.insert("token_type".into(), Value::String("Bearer".into()));
        if let Value::Object(m) = serde_json::to_value(c).unwrap() {
            out.extend(m);
        }
        Value::Object(out).to_string()
    }

    async fn body(c: &AccessClaims) -> String {
        let resp = active_jwt(c).unwrap();
        assert_eq!(resp.headers()["cache-control"], "no-store");
        assert_eq!(resp.headers()["content-type"], "application/json");
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_answer_is_the_tree_written_at_once() {
        let mut extra = Map::new();
        extra.insert("ins".into(), json!("ins_01"));
        let act = Some(Actor {
            sub: "usr_02".into(),
            act: None,
        });
        for c in [claims(Map::new(), None), claims(extra, act)] {
            assert_eq!(body(&c).await, as_tree(&c));
        }
    }

    #[test]
    fn a_claim_named_like_a_field_of_the_answer_is_refused_not_repeated() {
        for name in ["active", "token_type"] {
            let mut extra = Map::new();
            extra.insert(name.into(), json!(false));
            assert!(active_jwt(&claims(extra, None)).is_err(), "{name}");
        }
    }
}
