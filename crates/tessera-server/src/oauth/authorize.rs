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

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_core::{AccountId, AgencyId, EventId, UserId};
use tessera_store::{
    AppKind, AuthCode, ClientRecord, Installation, Outcome, Status, TenantScope, User,
};

use super::token::{audience_allows, pkce_well_formed, record, Params};
use super::tokens::{self, CODE_PREFIX};
use super::{client, is_protocol_scope, split_scopes};
use crate::auth::RequestMeta;
use crate::http::state::AppState;
use crate::oauth_ui::{
    consent_page, error_page, html_response, is_loopback_issuer, read_cookie, set_cookie_header,
    sign_in_page, Consent, SignIn,
};
use crate::services::Services;

const SESSION_COOKIE: &str = "tessera_session";
const CSRF_COOKIE: &str = "tessera_csrf";
const COOKIE_PATH: &str = "/oauth";
const SAME_MESSAGE: &str = "The email or password is incorrect.";

/// A signed-in browser.
#[derive(Debug, Serialize, Deserialize)]
struct Session {
    sub: String,
    agy: String,
    /// When the user signed in (ms): the id token's `auth_time`, and what `max_age` and
    /// `prompt=login` are measured against.
    at: i64,
}

/// A consent page may stand this long (ms) after the sign-in that `max_age` or `prompt=login`
/// forced before the decision needs a new sign-in.
const FORCED_SIGN_IN_CONSENT_WINDOW_MS: i64 = 10 * 60 * 1000;

/// A validated authorization request.
#[derive(Debug)]
struct AuthRequest {
    client: std::sync::Arc<ClientRecord>,
    redirect_uri: String,
    state: Option<String>,
    scopes: Vec<String>,
    challenge: String,
    nonce: Option<String>,
    prompt: Option<String>,
    /// OIDC Core §3.1.2.1 `max_age`, seconds: a session signed in longer ago than this must
    /// sign in again.
    max_age: Option<i64>,
    account: Option<String>,
    /// The query string, for the forms' action.
    query: String,
}

/// What went wrong, and where to say so.
enum Failure {
    /// Shown on a page: the client or redirect URI cannot be trusted.
    Page(StatusCode, String),
    /// Sent back to the client.
    Redirect(&'static str, String),
}

/// The most users (one per agency) whose password one sign-in attempt checks.
const MAX_SIGN_IN_CANDIDATES: usize = 4;

struct Flow<'a> {
    state: &'a AppState,
    meta: RequestMeta,
    parts: &'a Parts,
    /// The per-browser CSRF binding, and whether it is new (to be set).
    binding: String,
    new_binding: bool,
}

/// `GET /oauth/authorize`.
pub async fn get(State(s): State<AppState>, parts: Parts) -> Response {
    let flow = Flow::new(&s, &parts);
    let req = match flow.request().await {
        Ok(r) => r,
        Err((req, f)) => return flow.fail(req.as_ref(), f),
    };
    let result = flow.begin(&req).await;
    flow.finish(&req, result)
}

/// `POST /oauth/authorize`: the sign-in or the consent form.
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

impl<'a> Flow<'a> {
    fn new(state: &'a AppState, parts: &'a Parts) -> Self {
        let meta = parts
            .extensions
            .get::<RequestMeta>()
            .cloned()
            .unwrap_or_default();
        let existing = read_cookie(&parts.headers, CSRF_COOKIE)
            .filter(|v| v.len() == 43 && v.bytes().all(|b| b.is_ascii_alphanumeric()))
            .map(str::to_owned);
        let new_binding = existing.is_none();
        let binding = existing.unwrap_or_else(|| {
            tessera_token::generate_opaque_token_os("")
                .expose()
                .to_owned()
        });
        Self {
            state,
            meta,
            parts,
            binding,
            new_binding,
        }
    }

    fn secure(&self) -> bool {
        !is_loopback_issuer(self.state.oauth.issuer())
    }

    fn now(&self) -> i64 {
        self.state.clock.now()
    }

    /// Parses and validates the query.
    async fn request(&self) -> Result<AuthRequest, (Option<AuthRequest>, Failure)> {
        let (req, p) = self.base().await.map_err(|f| (None, f))?;
        let mut req = req;
        match self.validate(&mut req, &p) {
            Ok(()) => Ok(req),
            Err(f) => Err((Some(req), f)),
        }
    }

    /// The client and its redirect URI: until they match, nothing is redirected.
    async fn base(&self) -> Result<(AuthRequest, Params), Failure> {
        let query = self.parts.uri.query().unwrap_or_default().to_owned();
        let bad = |m: &str| Failure::Page(StatusCode::BAD_REQUEST, m.to_owned());
        let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(&query)
            .map_err(|_| bad("The authorization request is malformed."))?;
        let p = Params::from_pairs(pairs).map_err(|e| {
            bad(&format!(
                "The authorization request is invalid: {}",
                e.description
            ))
        })?;
        let client_id = p
            .get("client_id")
            .ok_or_else(|| bad("The authorization request names no client (client_id)."))?;
        // The client record is needed before anything can be redirected; the cache answers.
        let client = client::lookup(self.state, client_id)
            .await
            .ok()
            .flatten()
            .ok_or_else(|| bad("The authorization request names an unknown client."))?;
        let redirect_uri = p
            .get("redirect_uri")
            .ok_or_else(|| bad("The authorization request must name its redirect_uri."))?;
        // Exact string match (RFC 9700 §4.1.3): no prefix, case or normalisation.
        if !client.app.redirect_uris.iter().any(|u| u == redirect_uri) {
            return Err(bad("The redirect_uri is not registered for this client."));
        }
        let req = AuthRequest {
            client: client.clone(),
            redirect_uri: redirect_uri.to_owned(),
            state: p.get("state").map(str::to_owned),
            scopes: Vec::new(),
            challenge: String::new(),
            nonce: p.get("nonce").map(str::to_owned),
            prompt: p.get("prompt").map(str::to_owned),
            max_age: None,
            account: p.get("account").map(str::to_owned),
            query: query.clone(),
        };
        Ok((req, p))
    }

    /// The rest of the request; failures go back to the client.
    fn validate(&self, req: &mut AuthRequest, p: &Params) -> Result<(), Failure> {
        match p.get("response_type") {
            Some("code") => {}
            Some(_) => {
                return Err(Failure::Redirect(
                    "unsupported_response_type",
                    "only response_type=code is supported".into(),
                ))
            }
            None => {
                return Err(Failure::Redirect(
                    "invalid_request",
                    "`response_type` is required".into(),
                ))
            }
        }
        // OAuth 2.0 Multiple Response Type Encoding Practices §2.1: the code goes back in the
        // query only; `fragment`, `form_post` and anything else are refused, not ignored.
        match p.get("response_mode") {
            None | Some("query") => {}
            Some(other) => {
                return Err(Failure::Redirect(
                    "invalid_request",
                    format!(
                        "response_mode `{}` is not supported: only `query` is",
                        other.chars().take(100).collect::<String>()
                    ),
                ))
            }
        }
        // OIDC Core §3.1.2.1: `max_age` is a non-negative number of seconds.
        if let Some(m) = p.get("max_age") {
            let secs = m
                .parse::<u32>()
                .ok()
                .filter(|_| m.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    Failure::Redirect(
                        "invalid_request",
                        "`max_age` must be a non-negative whole number of seconds".into(),
                    )
                })?;
            req.max_age = Some(i64::from(secs));
        }
        let challenge = p.get("code_challenge").ok_or_else(|| {
            Failure::Redirect(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256".into(),
            )
        })?;
        if p.get("code_challenge_method") != Some("S256") {
            return Err(Failure::Redirect(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not accepted)".into(),
            ));
        }
        if !pkce_well_formed(challenge) || challenge.len() != 43 {
            return Err(Failure::Redirect(
                "invalid_request",
                "code_challenge must be the 43-character base64url S256 of the verifier".into(),
            ));
        }
        req.challenge = challenge.to_owned();
        if req.state.as_ref().is_some_and(|s| s.len() > 1024)
            || req.nonce.as_ref().is_some_and(|n| n.len() > 512)
        {
            return Err(Failure::Redirect(
                "invalid_request",
                "`state` or `nonce` is too long".into(),
            ));
        }
        if let Some(prompt) = &req.prompt {
            if !prompt
                .split(' ')
                .all(|p| matches!(p, "none" | "login" | "consent" | "select_account"))
            {
                return Err(Failure::Redirect(
                    "invalid_request",
                    "unsupported `prompt` value".into(),
                ));
            }
        }
        let scopes = split_scopes(p.get("scope").unwrap_or_default());
        if scopes.is_empty() {
            return Err(Failure::Redirect(
                "invalid_scope",
                "name the scopes the app needs".into(),
            ));
        }
        let app = &req.client.app;
        for s in &scopes {
            let ok = is_protocol_scope(s)
                || (app.scopes.contains(s)
                    && self
                        .state
                        .catalog
                        .scope(s)
                        .is_some_and(|(aud, _)| audience_allows(app.kind, aud)));
            if !ok {
                return Err(Failure::Redirect(
                    "invalid_scope",
                    format!(
                        "scope `{}` is not available to this client",
                        s.chars().take(100).collect::<String>()
                    ),
                ));
            }
        }
        req.scopes = scopes;
        Ok(())
    }

    fn session(&self) -> Option<Session> {
        let raw = read_cookie(&self.parts.headers, SESSION_COOKIE)?;
        let bytes = self
            .state
            .oauth
            .cookies
            .open("session", raw, self.now() / 1000)?;
        serde_json::from_slice(&bytes).ok()
    }

    async fn session_user(&self) -> Result<Option<User>, Failure> {
        let Some(sess) = self.session() else {
            return Ok(None);
        };
        let (Ok(agency), Ok(user)) = (sess.agy.parse::<AgencyId>(), sess.sub.parse::<UserId>())
        else {
            return Ok(None);
        };
        match self
            .state
            .store
            .get_user(&TenantScope::authenticated(agency), &user)
            .await
        {
            Ok(u) if u.status == Status::Active => Ok(Some(u)),
            Ok(_) | Err(tessera_store::StoreError::NotFound) => Ok(None),
            Err(_) => Err(Failure::Page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable. Try again shortly.".into(),
            )),
        }
    }

    fn auth_time(&self) -> i64 {
        self.session().map_or_else(|| self.now(), |s| s.at)
    }

    /// Whether the browser's sign-in is too old for `req`: `prompt=login` asks for a new one,
    /// and `max_age` for one at most that many seconds ago (OIDC Core §3.1.2.1; `max_age=0`
    /// always signs in again). `grace` (ms) is added to the allowed age.
    fn sign_in_too_old(&self, req: &AuthRequest, grace: i64) -> bool {
        let Some(sess) = self.session() else {
            return false;
        };
        let login = req
            .prompt
            .as_deref()
            .is_some_and(|p| p.split(' ').any(|x| x == "login"));
        let limit = if login {
            Some(0)
        } else {
            req.max_age.map(|m| m.saturating_mul(1000))
        };
        limit.is_some_and(|limit| {
            (limit == 0 && grace == 0) || self.now() - sess.at > limit.saturating_add(grace)
        })
    }

    /// The first step: sign-in, or consent for a signed-in browser.
    async fn begin(&self, req: &AuthRequest) -> Result<Step, Failure> {
        let user = if self.sign_in_too_old(req, 0) {
            None
        } else {
            self.session_user().await?
        };
        let none = req
            .prompt
            .as_deref()
            .is_some_and(|p| p.split(' ').any(|x| x == "none"));
        match user {
            None if none => Err(Failure::Redirect(
                "login_required",
                "the user is not signed in".into(),
            )),
            None => Ok(Step::SignIn {
                error: None,
                email: String::new(),
            }),
            Some(u) => self.consent_step(req, u, None).await,
        }
    }

    /// Signs in with email and password. At most [`MAX_SIGN_IN_CANDIDATES`] password hashes
    /// run per attempt, in the bounded pool, one attempt per account at a time.
    async fn sign_in(&self, req: &AuthRequest, form: &Params) -> Result<Step, Failure> {
        let email = form.get("email").unwrap_or_default().trim().to_owned();
        let password = form.get("password").unwrap_or_default().to_owned();
        let ip = self.meta.ip.clone();
        let unavailable = || {
            Failure::Page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable. Try again shortly.".into(),
            )
        };
        // At most two attempts in progress per client address, refused at once beyond.
        let _ip_slot = self
            .state
            .oauth
            .throttle
            .ip_slot(ip.as_deref())
            .map_err(|_| {
                Failure::Page(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many sign-in attempts from your address at once. Try again shortly."
                        .into(),
                )
            })?;
        // One attempt per account at a time: parallel guesses wait in line, each for the
        // backoff the failures before it earned (held until this attempt is counted).
        let _turn = self
            .state
            .oauth
            .throttle
            .account_turn(&email)
            .await
            .map_err(|_| unavailable())?;
        // The backoff is read after the wait for this account's turn, with every failure before it.
        let now = self.now();
        let delay = self.state.oauth.throttle.delay(&email, ip.as_deref(), now);
        if !delay.is_zero() {
            tokio::time::sleep(delay.min(Duration::from_secs(10))).await;
        }
        // A place in the hashing pool before any other work: a refusal costs nothing.
        let ticket = self.state.passwords.admit().map_err(|_| unavailable())?;
        let candidates = if email.is_empty() || email.len() > 254 || password.is_empty() {
            Vec::new()
        } else {
            self.state
                .store
                .find_users_by_email(&email)
                .await
                .map_err(|_| unavailable())?
        };
        let app = &req.client.app;
        let installed_in: Vec<AgencyId> = client::installations(self.state, &app.id, false)
            .await
            .map(|l| l.iter().map(|i| i.agency_id.clone()).collect())
            .unwrap_or_default();
        let mut candidates: Vec<_> = candidates
            .into_iter()
            .filter(|c| c.user.status == Status::Active)
            .filter(|c| app.kind != AppKind::Private || c.user.agency_id == app.agency_id)
            .filter_map(|c| c.password_hash.map(|h| (c.user, h)))
            .collect();
        // One email may be a user in many agencies (each agency makes its own): the agencies
        // where the app is installed first, and a bounded number of hashes per attempt, so an
        // agency creating users with someone's email cannot multiply the cost of a sign-in.
        candidates.sort_by_key(|(u, _)| !installed_in.contains(&u.agency_id));
        candidates.truncate(MAX_SIGN_IN_CANDIDATES);
        // Verify against every candidate (or a dummy hash): the same work whether or not the
        // email exists (argon2id runs off the async threads).
        let checked = ticket
            .run(move || {
                if candidates.is_empty() {
                    tessera_token::verify_dummy(&password);
                    return Vec::new();
                }
                candidates
                    .into_iter()
                    .filter(|(_, h)| tessera_token::verify_password(&password, h))
                    .map(|(u, _)| u)
                    .collect::<Vec<User>>()
            })
            .await
            .map_err(|_| unavailable())?;
        let chosen = checked
            .iter()
            .find(|u| installed_in.contains(&u.agency_id))
            .or_else(|| checked.first())
            .cloned();
        let Some(user) = chosen else {
            self.state
                .oauth
                .throttle
                .record_failure(&email, ip.as_deref(), now);
            tracing::info!(request_id = %self.meta.request_id, "failed sign-in");
            return Ok(Step::SignIn {
                error: Some(SAME_MESSAGE),
                email,
            });
        };
        self.state
            .oauth
            .throttle
            .record_success(&email, ip.as_deref(), now);
        let audit = record(
            self.state,
            &self.meta,
            user.id.as_str(),
            None,
            "auth.sign_in",
            Some(user.id.as_str()),
            Outcome::Success,
            json!({ "method": "password", "client_id": app.id.as_str() }),
        );
        self.state
            .store
            .append_audit(&TenantScope::authenticated(user.agency_id.clone()), &audit)
            .await
            .map_err(|_| unavailable())?;
        let session = Session {
            sub: user.id.to_string(),
            agy: user.agency_id.to_string(),
            at: now,
        };
        let sealed = self.state.oauth.cookies.seal(
            "session",
            &serde_json::to_vec(&session).unwrap_or_default(),
            now / 1000 + self.state.oauth.settings.session_ttl,
        );
        self.consent_step(req, user, Some(sealed)).await
    }

    /// Where the app may act for `user`: its installations in the user's agency, or (for the
    /// agency's own and first-party apps) the agency itself.
    async fn choices(&self, req: &AuthRequest, user: &User) -> Result<Vec<Choice>, Failure> {
        let app = &req.client.app;
        if app.kind == AppKind::Private && app.agency_id != user.agency_id {
            return Err(Failure::Redirect(
                "access_denied",
                "this app belongs to another agency".into(),
            ));
        }
        let unavailable = || {
            Failure::Page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable. Try again shortly.".into(),
            )
        };
        let list = client::installations(self.state, &app.id, true)
            .await
            .map_err(|_| unavailable())?;
        let scope = TenantScope::authenticated(user.agency_id.clone());
        let mut out = Vec::new();
        for ins in list.iter().filter(|i| i.agency_id == user.agency_id) {
            let name = match &ins.account {
                Some(acc) => match self.state.store.get_account(&scope, acc).await {
                    Ok(a) => a.name,
                    Err(_) => continue,
                },
                None => "All accounts".to_owned(),
            };
            out.push(Choice {
                installation: Some(ins.clone()),
                account: ins.account.clone(),
                name,
            });
        }
        if let Some(wanted) = &req.account {
            // A grant on one account goes through an installation covering it: the account's
            // own, else an agency-wide one; its consented scopes cap the grant (I2). Without
            // one, the app has no consent on that account: refused, never widened.
            let id: AccountId = wanted.parse().map_err(|_| {
                Failure::Redirect("invalid_request", "`account` is not an account id".into())
            })?;
            let covering = out
                .iter()
                .find(|c| c.account.as_ref() == Some(&id))
                .or_else(|| out.iter().find(|c| c.account.is_none()))
                .and_then(|c| c.installation.clone());
            let Some(ins) = covering else {
                return Err(Failure::Redirect(
                    "access_denied",
                    "the app is not installed on this account; an administrator must install it first".into(),
                ));
            };
            let name = match self.state.store.get_account(&scope, &id).await {
                Ok(a) => a.name,
                Err(tessera_store::StoreError::NotFound) => {
                    return Err(Failure::Redirect(
                        "access_denied",
                        "`account` names no account of this agency".into(),
                    ))
                }
                Err(_) => return Err(unavailable()),
            };
            return Ok(vec![Choice {
                installation: Some(ins),
                account: Some(id),
                name,
            }]);
        }
        if out.is_empty() {
            if app.kind == AppKind::Marketplace {
                return Err(Failure::Redirect(
                    "access_denied",
                    "the app is not installed in this agency; an administrator must install it first".into(),
                ));
            }
            // The agency's own (or the platform's) app, installed nowhere in the agency: it
            // acts in the agency itself, within the user's bindings and the app's scopes.
            out.push(Choice {
                installation: None,
                account: None,
                name: "All accounts".to_owned(),
            });
        }
        Ok(out)
    }

    async fn consent_step(
        &self,
        req: &AuthRequest,
        user: User,
        new_session: Option<String>,
    ) -> Result<Step, Failure> {
        let choices = self.choices(req, &user).await?;
        // The platform's own apps need no consent screen.
        let skip = req.client.app.kind == AppKind::FirstParty
            && choices.len() == 1
            && !req
                .prompt
                .as_deref()
                .is_some_and(|p| p.split(' ').any(|x| x == "consent"));
        let none = req
            .prompt
            .as_deref()
            .is_some_and(|p| p.split(' ').any(|x| x == "none"));
        if skip {
            let auth_time = if new_session.is_some() {
                self.now()
            } else {
                self.auth_time()
            };
            let code = self.issue_code(req, &user, &choices[0], auth_time).await?;
            return Ok(Step::Redirect {
                code,
                session: new_session,
            });
        }
        if none {
            return Err(Failure::Redirect(
                "consent_required",
                "the user must consent".into(),
            ));
        }
        Ok(Step::Consent {
            user,
            choices,
            session: new_session,
        })
    }

    async fn decide(
        &self,
        req: &AuthRequest,
        decision: &str,
        picked: Option<&str>,
    ) -> Result<Step, Failure> {
        // The consent page followed a sign-in `begin` checked (or forced); a decision long
        // after it signs in again.
        let fresh = !self.sign_in_too_old(req, FORCED_SIGN_IN_CONSENT_WINDOW_MS);
        let user = if fresh {
            self.session_user().await?
        } else {
            None
        };
        let Some(user) = user else {
            return Ok(Step::SignIn {
                error: None,
                email: String::new(),
            });
        };
        match decision {
            "allow" => {}
            "deny" => {
                return Err(Failure::Redirect(
                    "access_denied",
                    "the user declined".into(),
                ))
            }
            _ => {
                return Err(Failure::Page(
                    StatusCode::BAD_REQUEST,
                    "The form is incomplete.".into(),
                ))
            }
        }
        let choices = self.choices(req, &user).await?;
        let choice = match (picked, choices.as_slice()) {
            (_, [one]) => one,
            (Some(p), many) => many.iter().find(|c| c.value() == p).ok_or_else(|| {
                Failure::Page(
                    StatusCode::BAD_REQUEST,
                    "Choose an account from the list.".into(),
                )
            })?,
            (None, _) => {
                return Err(Failure::Page(
                    StatusCode::BAD_REQUEST,
                    "Choose an account from the list.".into(),
                ))
            }
        };
        let code = self
            .issue_code(req, &user, choice, self.auth_time())
            .await?;
        Ok(Step::Redirect {
            code,
            session: None,
        })
    }

    /// The scopes granted through `choice`: the requested ones the installation consented
    /// (every protocol scope requested).
    fn granted(req: &AuthRequest, choice: &Choice) -> Vec<String> {
        req.scopes
            .iter()
            .filter(|s| {
                is_protocol_scope(s)
                    || choice
                        .installation
                        .as_ref()
                        .is_none_or(|i| i.scopes.contains(s))
            })
            .cloned()
            .collect()
    }

    async fn issue_code(
        &self,
        req: &AuthRequest,
        user: &User,
        choice: &Choice,
        auth_time: i64,
    ) -> Result<String, Failure> {
        let granted = Self::granted(req, choice);
        let now = self.now();
        let (code, hash) = tokens::new_secret(self.state, CODE_PREFIX);
        let grant_id = format!(
            "grt_{}",
            &EventId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng())
                .as_str()[4..]
        );
        let row = AuthCode {
            hash,
            agency_id: user.agency_id.clone(),
            client_id: req.client.app.id.clone(),
            user_id: user.id.clone(),
            installation: choice.installation.as_ref().map(|i| i.id.clone()),
            account: choice.account.clone(),
            redirect_uri: req.redirect_uri.clone(),
            scope: granted.join(" "),
            code_challenge: req.challenge.clone(),
            nonce: req.nonce.clone(),
            auth_time,
            grant_id: grant_id.clone(),
            created_at: now,
            expires_at: now + self.state.oauth.settings.code_ttl * 1000,
            consumed_at: None,
        };
        let scope = TenantScope::authenticated(user.agency_id.clone());
        let unavailable = |_| {
            Failure::Page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable. Try again shortly.".into(),
            )
        };
        self.state
            .store
            .create_code(&scope, &row)
            .await
            .map_err(unavailable)?;
        let audit = record(
            self.state,
            &self.meta,
            user.id.as_str(),
            None,
            "oauth.consent",
            Some(req.client.app.id.as_str()),
            Outcome::Success,
            json!({
                "client_id": req.client.app.id.as_str(),
                "scope": row.scope,
                "installation": row.installation.as_ref().map(|i| i.as_str()),
                "account": row.account.as_ref().map(|a| a.as_str()),
                "grant": grant_id,
            }),
        );
        self.state
            .store
            .append_audit(&scope, &audit)
            .await
            .map_err(unavailable)?;
        Ok(code.expose().to_owned())
    }

    fn redirect_to(&self, req: &AuthRequest, pairs: &[(&str, &str)]) -> String {
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

    fn action(&self, req: &AuthRequest) -> String {
        format!("/oauth/authorize?{}", req.query)
    }

    fn with_cookies(&self, mut resp: Response, session: Option<&str>) -> Response {
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
                self.state.oauth.settings.session_ttl,
                secure,
                COOKIE_PATH,
            );
            if let Ok(v) = HeaderValue::from_str(&c) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        resp
    }

    fn finish(&self, req: &AuthRequest, step: Result<Step, Failure>) -> Response {
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

    fn fail(&self, req: Option<&AuthRequest>, f: Failure) -> Response {
        match (f, req) {
            (Failure::Redirect(error, description), Some(req)) => {
                let to = self.redirect_to(
                    req,
                    &[("error", error), ("error_description", &description)],
                );
                self.with_cookies(see_other(&to), None)
            }
            (Failure::Redirect(_, description), None) | (Failure::Page(_, description), None) => {
                html_response(
                    StatusCode::BAD_REQUEST,
                    error_page("Sign-in request rejected", &description),
                )
            }
            (Failure::Page(status, description), Some(_)) => {
                let mut resp = self.with_cookies(
                    html_response(status, error_page("Sign-in request rejected", &description)),
                    None,
                );
                if status == StatusCode::SERVICE_UNAVAILABLE
                    || status == StatusCode::TOO_MANY_REQUESTS
                {
                    resp.headers_mut().insert(
                        axum::http::header::RETRY_AFTER,
                        axum::http::HeaderValue::from_static("1"),
                    );
                }
                resp
            }
        }
    }
}

/// One place the app may act: through an installation, or in the agency itself.
#[derive(Debug, Clone)]
struct Choice {
    installation: Option<Installation>,
    account: Option<AccountId>,
    name: String,
}

impl Choice {
    fn value(&self) -> String {
        match (&self.installation, &self.account) {
            (Some(i), _) => i.id.to_string(),
            (None, Some(a)) => a.to_string(),
            (None, None) => "agency".into(),
        }
    }
}

enum Step {
    SignIn {
        error: Option<&'static str>,
        email: String,
    },
    Consent {
        user: User,
        choices: Vec<Choice>,
        session: Option<String>,
    },
    Redirect {
        code: String,
        session: Option<String>,
    },
}

fn see_other(to: &str) -> Response {
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
