//! Handler of `GET /v1/forward-auth` (any valid credential; the permission comes from the
//! configured route table, `crate::forward_auth`): maps `X-Original-Method` and
//! `X-Original-URI` to a permission, decides as `/v1/check` does, and answers 200 with the
//! identity headers, or 403 problem+json (401 comes from authentication, before this).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_core::Reason;

use crate::error::ApiError;
use crate::forward_auth::{self as fa, NoMatch};
use crate::gate::authorized::Authorized;
use crate::gate::decide::{decide, request_context};
use crate::http::state::AppState;

/// `GET /v1/forward-auth`.
pub async fn check(
    State(s): State<AppState>,
    auth: Authorized,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // The credential's audience (the issuer, or the configured `audience`) was checked when
    // it was authenticated (`gate::authenticate_limited` → `authn::authenticate_for`).
    let caller = &auth.caller;
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(method), Some(uri)) = (text("x-original-method"), text("x-original-uri")) else {
        return Err(ApiError::forbidden(
            "X-Original-Method and X-Original-URI are required",
        ));
    };
    let m = match s.forward_auth.find(method, uri) {
        Ok(m) => m,
        Err(NoMatch::Unmapped) => {
            return Err(ApiError::forbidden(
                "no forward-auth route matches the request",
            ))
        }
        Err(NoMatch::Malformed(why)) => {
            return Err(ApiError::forbidden(format!("refused path: {why}")))
        }
        Err(NoMatch::BadId(which)) => {
            return Err(ApiError::forbidden(format!(
                "malformed {which} id in the path"
            )))
        }
    };
    // The tenant: from the path, or the credential's own.
    let agency = m.agency.clone().unwrap_or_else(|| caller.agency.clone());
    let account = m.account.clone().or_else(|| caller.cap.account.clone());
    let mut desc = request_context(&s, &auth.meta);
    desc.id = m.id.clone();
    let d = decide(
        &s,
        caller,
        m.route.permission,
        &agency,
        account.as_ref(),
        &desc,
        None,
    )
    .await?;
    if !d.allowed {
        // Audited like the gate's refusals; always 403 here (the proxy's client sees no 404).
        let _ = crate::gate::deny::deny(
            &s,
            caller,
            &agency,
            account.as_ref(),
            &m.route.permission_name,
            &d.reason,
            &auth.meta,
        )
        .await;
        let detail = match d.reason {
            Reason::OtherTenant => "the credential has no access to this tenant".to_owned(),
            ref r => format!(
                "`{}` is not granted ({})",
                m.route.permission_name,
                r.code()
            ),
        };
        return Err(ApiError::forbidden(detail).with_extra(serde_json::json!({
            "missing_permissions": [m.route.permission_name],
        })));
    }
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    // A token's `sub` (a user, or the app's client id), as a guard would name it; a key's id.
    match caller.token() {
        Some(t) => fa::put(h, fa::SUBJECT, &t.sub),
        None => fa::put(h, fa::SUBJECT, caller.principal.as_str()),
    }
    fa::put(h, fa::AGENCY, agency.as_str());
    if let Some(acc) = &account {
        fa::put(h, fa::ACCOUNT, acc.as_str());
    }
    let scopes = match (caller.token(), caller.key()) {
        (Some(t), _) => t.scope.clone(),
        (None, Some(k)) => k.scopes.join(" "),
        _ => String::new(),
    };
    if !scopes.is_empty() {
        fa::put(h, fa::SCOPES, &scopes);
    }
    if let Some(actor) = caller.actor() {
        fa::put(h, fa::ACTOR, actor);
    }
    Ok(resp)
}
