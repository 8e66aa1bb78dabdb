//! Sign-in with email and password, and the browser session it seals into a cookie; when a
//! session is too old for the request (`prompt=login`, `max_age`: OIDC Core §3.1.2.1).
//!
//! INVARIANT: a wrong email and a wrong password answer the same message after the same work
//! (a dummy hash when no user matches); failed sign-ins are slowed per account and per address,
//! never locked out; at most `MAX_SIGN_IN_CANDIDATES` hashes run per attempt.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use tessera_core::{AgencyId, UserId};
use tessera_store::{AppKind, Outcome, Status, User};

use super::flow::{
    AuthRequest, Failure, Flow, Session, Step, MAX_SIGN_IN_CANDIDATES, SAME_MESSAGE, SESSION_COOKIE,
};
use crate::audit::action::AuditAction;
use crate::audit::record::audit_event as record;
use crate::oauth::client;
use crate::oauth::endpoint::params::Params;
use crate::oauth::error::OAuthErrorCode;
use crate::oauth::settings::secs;
use crate::oauth_ui::read_cookie;
use crate::oauth_ui::throttle::{Assessment, Lane};

impl Flow<'_> {
    pub(super) fn session(&self) -> Option<Session> {
        let raw = read_cookie(&self.parts.headers, SESSION_COOKIE)?;
        let bytes = self
            .state
            .oauth
            .cookies
            .open("session", raw, self.now() / 1000)?;
        serde_json::from_slice(&bytes).ok()
    }

    pub(super) async fn session_user(&self) -> Result<Option<User>, Failure> {
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
            .get_user(&self.state.admission.admit(agency), &user)
            .await
        {
            // A session of a suspended agency counts as none (signing in again says why).
            Ok(u) if u.status == Status::Active => match self.state.engine.suspended().await {
                Ok(view) if view.agency(&u.agency_id) => Ok(None),
                Ok(_) => Ok(Some(u)),
                Err(_) => Err(Failure::Page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is temporarily unavailable. Try again shortly.".into(),
                )),
            },
            Ok(_) | Err(tessera_store::StoreError::NotFound) => Ok(None),
            Err(_) => Err(Failure::Page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable. Try again shortly.".into(),
            )),
        }
    }

    pub(super) fn auth_time(&self) -> i64 {
        self.session().map_or_else(|| self.now(), |s| s.at)
    }

    /// Whether the browser's sign-in is too old for `req`: `prompt=login` asks for a new one,
    /// and `max_age` for one at most that many seconds ago (OIDC Core §3.1.2.1; `max_age=0`
    /// always signs in again). `grace` (ms) is added to the allowed age.
    pub(super) fn sign_in_too_old(&self, req: &AuthRequest, grace: i64) -> bool {
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
    /// Refuses to start (or go on with) a flow for an app whose owning agency is suspended.
    async fn refuse_suspended_client(&self, req: &AuthRequest) -> Result<(), Failure> {
        let view = self.state.engine.suspended().await.map_err(|_| {
            Failure::Page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable. Try again shortly.".into(),
            )
        })?;
        if view.agency(&req.client.app.agency_id) {
            return Err(Failure::Page(
                StatusCode::FORBIDDEN,
                "This application's provider is suspended: it cannot sign you in until it is reinstated.".into(),
            ));
        }
        Ok(())
    }

    pub(super) async fn begin(&self, req: &AuthRequest) -> Result<Step, Failure> {
        self.refuse_suspended_client(req).await?;
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
                OAuthErrorCode::LoginRequired,
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
    pub(super) async fn sign_in(&self, req: &AuthRequest, form: &Params) -> Result<Step, Failure> {
        self.refuse_suspended_client(req).await?;
        let email = form.get("email").unwrap_or_default().trim().to_owned();
        let password = form.get("password").unwrap_or_default().to_owned();
        let ip = self.meta.addr;
        let throttle = &self.state.oauth.throttle;
        let unavailable = || {
            Failure::Page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable. Try again shortly.".into(),
            )
        };
        // The sign-in class's rate limits (per address and per email), before any work.
        match crate::gate::limit::for_sign_in(self.state, self.meta.addr, &email).await {
            crate::ratelimit::Verdict::Allowed(_) => {}
            crate::ratelimit::Verdict::Limited(r) => return Err(Failure::Limited(r.reset_seconds)),
            crate::ratelimit::Verdict::Unavailable => return Err(unavailable()),
        }
        // At most two attempts in progress per client address, refused at once beyond.
        let _ip_slot = throttle.ip_slot(ip).map_err(|_| {
            Failure::Page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-in attempts from your address at once. Try again shortly.".into(),
            )
        })?;
        // One attempt per account and lane at a time: parallel guesses wait in line, each for
        // the backoff the failures before it earned (held until this attempt is counted). An
        // address with no failure on record queues apart from known guessers.
        let lane = throttle.assess(&email, ip, self.now()).await.lane;
        let _turn = throttle
            .account_turn(&email, lane)
            .await
            .map_err(|_| unavailable())?;
        // The backoff is read after the wait for this account's turn, with every failure before it.
        let now = self.now();
        let seen = throttle.assess(&email, ip, now).await;
        if !seen.delay.is_zero() {
            tokio::time::sleep(seen.delay.min(Duration::from_secs(10))).await;
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
            .map(|(c, _scope)| c)
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
            throttle.record_failure(&email, ip, now).await;
            tracing::info!(request_id = %self.meta.request_id, "failed sign-in");
            self.audit_throttled(req, &seen, None).await?;
            return Ok(Step::SignIn {
                error: Some(SAME_MESSAGE),
                email,
            });
        };
        throttle.record_success(&email, ip).await;
        self.audit_throttled(req, &seen, Some(&user)).await?;
        // Only now, with the password verified, may the page say the agency is suspended (no
        // account enumeration); the refusal is audited in the agency's chain.
        let suspended = self
            .state
            .engine
            .suspended()
            .await
            .map_err(|_| unavailable())?
            .agency(&user.agency_id);
        if suspended {
            let audit = record(
                self.state,
                &self.meta,
                user.id.as_str(),
                None,
                AuditAction::AuthSignIn,
                Some(user.id.as_str()),
                Outcome::Denied,
                json!({ "method": "password", "client_id": app.id.as_str(), "reason": "agency_suspended" }),
            );
            crate::audit::sealed::append(
                self.state,
                &self.state.admission.admit(user.agency_id.clone()),
                &audit,
            )
            .await
            .map_err(|_| unavailable())?;
            return Err(Failure::Page(
                StatusCode::FORBIDDEN,
                "Your agency is suspended: you cannot sign in until it is reinstated. Contact the platform operator.".into(),
            ));
        }
        let audit = record(
            self.state,
            &self.meta,
            user.id.as_str(),
            None,
            AuditAction::AuthSignIn,
            Some(user.id.as_str()),
            Outcome::Success,
            json!({ "method": "password", "client_id": app.id.as_str() }),
        );
        crate::audit::sealed::append(
            self.state,
            &self.state.admission.admit(user.agency_id.clone()),
            &audit,
        )
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
            now / 1000 + secs(self.state.oauth.settings.session_ttl),
        );
        self.consent_step(req, user, Some(sealed)).await
    }

    /// Records a sign-in attempt that was slowed down (a suspected guess), in the chain of the
    /// agency whose app asked: its outcome, the failures on record and the delay it waited.
    async fn audit_throttled(
        &self,
        req: &AuthRequest,
        seen: &Assessment,
        user: Option<&User>,
    ) -> Result<(), Failure> {
        if seen.delay.is_zero() {
            return Ok(());
        }
        let app = &req.client.app;
        let audit = record(
            self.state,
            &self.meta,
            user.map_or("anonymous", |u| u.id.as_str()),
            None,
            AuditAction::AuthSignInThrottled,
            user.map(|u| u.id.as_str()),
            if user.is_some() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            json!({
                "client_id": app.id.as_str(),
                "delay_ms": u64::try_from(seen.delay.as_millis()).unwrap_or(u64::MAX),
                "account_failures": seen.account_failures,
                "ip_failures": seen.ip_failures,
                "clean_ip": seen.lane == Lane::Clean,
                "cluster_wide": seen.shared,
            }),
        );
        self.state
            .audit
            .append(self.state.admission.admit(app.agency_id.clone()), audit)
            .await
            .map_err(|_| {
                Failure::Page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is temporarily unavailable. Try again shortly.".into(),
                )
            })
    }
}
