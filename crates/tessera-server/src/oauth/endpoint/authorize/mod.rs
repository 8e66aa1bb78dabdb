//! `/oauth/authorize`: the authorization-code flow with PKCE S256, and its sign-in and consent
//! pages (server-rendered HTML, no script).
//!
//! The request's parameters travel in the query string of every step: the pages post back to
//! the same URL, so each step validates the whole request again. Until the client and its
//! redirect URI are known to match exactly, errors are shown on a page and never redirected
//! (RFC 6749 §4.1.2.1); after that, they go back to the client with `state` and `iss`
//! (RFC 9207).
//!
//! INVARIANT: a code is issued only after a sign-in in this browser (a sealed session cookie)
//! and an explicit consent posted with a valid CSRF token (bound to a per-browser cookie);
//! a wrong email and a wrong password answer the same message after the same work; failed
//! sign-ins are slowed per account and per address, never locked out. `prompt=login` and a
//! session older than `max_age` (OIDC Core §3.1.2.1) sign in again. A grant on one account
//! (`account=`) goes through an installation covering it and holds at most its consented
//! scopes. Only `response_mode=query` is served.

pub mod consent;
pub mod flow;
pub mod request;
pub mod respond;
pub mod sign_in;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;

use self::flow::{Failure, Flow};
use crate::http::state::AppState;
use crate::oauth::endpoint::params::Params;

/// `GET /oauth/authorize`. Unauthenticated: the browser signs in on the page it answers
/// (or brings its sealed session cookie).
pub async fn get(State(s): State<AppState>, parts: Parts) -> Response {
    let flow = Flow::new(&s, &parts);
    let req = match flow.request().await {
        Ok(r) => r,
        Err((req, f)) => return flow.fail(req.as_ref(), f),
    };
    let result = flow.begin(&req).await;
    flow.finish(&req, result)
}

/// `POST /oauth/authorize`: the sign-in or the consent form. Authenticated by the CSRF token
/// bound to the browser's cookie, then by the password or the sealed session cookie.
pub async fn post(State(s): State<AppState>, parts: Parts, body: Bytes) -> Response {
    let flow = Flow::new(&s, &parts);
    let req = match flow.request().await {
        Ok(r) => r,
        Err((req, f)) => return flow.fail(req.as_ref(), f),
    };
    let form = match serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .map_err(|_| ())
        .and_then(|p| Params::from_pairs(p).map_err(|_| ()))
    {
        Ok(f) => f,
        Err(()) => {
            return flow.fail(
                Some(&req),
                Failure::Page(
                    StatusCode::BAD_REQUEST,
                    "The form could not be read.".into(),
                ),
            )
        }
    };
    let now_s = s.clock.now() / 1000;
    let csrf_ok = !flow.new_binding
        && form
            .get("csrf_token")
            .is_some_and(|t| s.oauth.cookies.check_csrf(&flow.binding, t, now_s));
    if !csrf_ok {
        return flow.fail(
            Some(&req),
            Failure::Page(
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this site. Go back to the app and start again.".into(),
            ),
        );
    }
    let result = if form.get("password").is_some() || form.get("email").is_some() {
        flow.sign_in(&req, &form).await
    } else if let Some(decision) = form.get("decision") {
        flow.decide(&req, decision, form.get("account")).await
    } else {
        Err(Failure::Page(
            StatusCode::BAD_REQUEST,
            "The form is incomplete.".into(),
        ))
    };
    flow.finish(&req, result)
}
