//! What each step answers: the sign-in or consent page, or a redirect back to the client with
//! `code` or `error` plus `state` and `iss` (RFC 6749 §4.1.2, RFC 9207), with the CSRF binding
//! and session cookies.
//!
//! INVARIANT: only `response_mode=query` is served; a redirect goes only to the registered
//! `redirect_uri` of a validated request; answers are `no-store`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_store::AppKind;

use super::flow::{AuthRequest, Failure, Flow, Step, COOKIE_PATH, CSRF_COOKIE, SESSION_COOKIE};
use crate::oauth::settings::secs;
use crate::oauth_ui::{
    consent_page, error_page, html_response, set_cookie_header, sign_in_page, Consent, SignIn,
};
use crate::services::Services;

impl Flow<'_> {
    pub(super) fn redirect_to(&self, req: &AuthRequest, pairs: &[(&str, &str)]) -> String {
        let mut all: Vec<(&str, &str)> = pairs.to_vec();
        if let Some(s) = &req.state {
            all.push(("state", s));
        }
        all.push(("iss", self.state.oauth.issuer()));
        let q = serde_urlencoded::to_string(&all).unwrap_or_default();
        let sep = if req.redirect_uri.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}{q}", req.redirect_uri)
    }

    pub(super) fn action(&self, req: &AuthRequest) -> String {
        format!("/oauth/authorize?{}", req.query)
    }

    pub(super) fn with_cookies(&self, mut resp: Response, session: Option<&str>) -> Response {
        let secure = self.secure();
        if self.new_binding {
            let c = set_cookie_header(CSRF_COOKIE, &self.binding, 86_400, secure, COOKIE_PATH);
            if let Ok(v) = HeaderValue::from_str(&c) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        if let Some(sealed) = session {
            let c = set_cookie_header(
                SESSION_COOKIE,
                sealed,
                secs(self.state.oauth.settings.session_ttl),
                secure,
                COOKIE_PATH,
            );
            if let Ok(v) = HeaderValue::from_str(&c) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        resp
    }

    pub(super) fn finish(&self, req: &AuthRequest, step: Result<Step, Failure>) -> Response {
        let step = match step {
            Ok(s) => s,
            Err(f) => return self.fail(Some(req), f),
        };
        let csrf = self
            .state
            .oauth
            .cookies
            .csrf_token(&self.binding, self.now() / 1000);
        let action = self.action(req);
        let app = &req.client.app;
        match step {
            Step::SignIn { error, email } => {
                let page = sign_in_page(&SignIn {
                    action: &action,
                    csrf: &csrf,
                    client_name: &app.name,
                    email: &email,
                    error,
                    hidden: &[],
                });
                let status = if error.is_some() {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::OK
                };
                self.with_cookies(html_response(status, page), None)
            }
            Step::Consent {
                user,
                choices,
                session,
            } => {
                let described: Vec<(String, String)> = choices
                    .first()
                    .map(|c| Self::granted(req, c))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| {
                        let d = describe(self.state, &s);
                        (s, d)
                    })
                    .collect();
                let scopes: Vec<(&str, &str)> = described
                    .iter()
                    .map(|(a, b)| (a.as_str(), b.as_str()))
                    .collect();
                let values: Vec<(String, String)> = choices
                    .iter()
                    .map(|c| (c.value(), c.name.clone()))
                    .collect();
                let options: Vec<(&str, &str)> = if choices.len() > 1 {
                    values
                        .iter()
                        .map(|(a, b)| (a.as_str(), b.as_str()))
                        .collect()
                } else {
                    Vec::new()
                };
                let kind = match app.kind {
                    AppKind::Private => "An app of your agency",
                    AppKind::Marketplace => "Marketplace app",
                    AppKind::FirstParty => "Platform app",
                };
                let page = consent_page(&Consent {
                    action: &action,
                    csrf: &csrf,
                    client_name: &app.name,
                    client_kind: kind,
                    user_email: &user.email,
                    account: choices.first().map(|c| c.name.as_str()),
                    accounts: &options,
                    scopes: &scopes,
                    hidden: &[],
                });
                self.with_cookies(html_response(StatusCode::OK, page), session.as_deref())
            }
            Step::Redirect { code, session } => {
                let to = self.redirect_to(req, &[("code", &code)]);
                self.with_cookies(see_other(&to), session.as_deref())
            }
        }
    }

    pub(super) fn fail(&self, req: Option<&AuthRequest>, f: Failure) -> Response {
        match (f, req) {
            (Failure::Redirect(error, description), Some(req)) => {
                let to = self.redirect_to(
                    req,
                    &[
                        ("error", error.as_str()),
                        ("error_description", &description),
                    ],
                );
                self.with_cookies(see_other(&to), None)
            }
            (Failure::Redirect(_, description), None) => html_response(
                StatusCode::BAD_REQUEST,
                error_page("Sign-in request rejected", &description),
            ),
            (Failure::Limited(secs), _) => {
                let mut resp = html_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    error_page(
                        "Too many sign-in attempts",
                        &format!("Too many sign-in attempts. Try again in {secs} seconds."),
                    ),
                );
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                resp
            }
            (Failure::Page(status, description), req) => {
                let page =
                    html_response(status, error_page("Sign-in request rejected", &description));
                // Before the request is known (no `req`), no cookie is set.
                let mut resp = match req {
                    Some(_) => self.with_cookies(page, None),
                    None => page,
                };
                if status == StatusCode::SERVICE_UNAVAILABLE
                    || status == StatusCode::TOO_MANY_REQUESTS
                {
                    resp.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                }
                resp
            }
        }
    }
}

pub(super) fn see_other(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A scope in plain words: the catalog's description, or the protocol scope's meaning.
fn describe(state: &Services, scope: &str) -> String {
    match scope {
        "openid" => "Know who you are (your user id).".into(),
        "profile" => "See your name.".into(),
        "email" => "See your email address.".into(),
        "offline_access" => "Keep access while you are not using it.".into(),
        other => state
            .catalog
            .file()
            .scopes
            .iter()
            .find(|s| s.name == other)
            .map_or_else(|| other.to_owned(), |s| s.description.clone()),
    }
}
