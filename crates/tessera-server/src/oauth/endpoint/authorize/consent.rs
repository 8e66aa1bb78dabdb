//! Consent: where the app may act for the user (its installations in the user's agency, or the
//! agency itself), the decision, and the code it issues (RFC 6749 §4.1.2).
//!
//! INVARIANT: a code is issued only after an explicit `allow` (or, for a first-party app with
//! one choice, a fresh sign-in) and holds at most the scopes its installation consented (I2);
//! a grant on one account goes through an installation covering it, never widened.

use axum::http::StatusCode;
use serde_json::json;
use tessera_core::{AccountId, GrantId};
use tessera_store::{AppKind, AuthCode, Outcome, User};

use super::flow::{AuthRequest, Choice, Failure, Flow, Step, FORCED_SIGN_IN_CONSENT_WINDOW_MS};
use crate::audit::action::AuditAction;
use crate::audit::record::audit_event as record;
use crate::oauth::client;
use crate::oauth::error::OAuthErrorCode;
use crate::oauth::issue::{self, CODE_PREFIX};
use crate::oauth::scope::is_protocol_scope;
use crate::oauth::settings::millis;

impl Flow<'_> {
    /// Where the app may act for `user`: its installations in the user's agency, or (for the
    /// agency's own and first-party apps) the agency itself.
    pub(super) async fn choices(
        &self,
        req: &AuthRequest,
        user: &User,
    ) -> Result<Vec<Choice>, Failure> {
        let app = &req.client.app;
        if app.kind == AppKind::Private && app.agency_id != user.agency_id {
            return Err(Failure::Redirect(
                OAuthErrorCode::AccessDenied,
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
        let scope = self.state.admission.admit(user.agency_id.clone());
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
                Failure::Redirect(
                    OAuthErrorCode::InvalidRequest,
                    "`account` is not an account id".into(),
                )
            })?;
            let covering = out
                .iter()
                .find(|c| c.account.as_ref() == Some(&id))
                .or_else(|| out.iter().find(|c| c.account.is_none()))
                .and_then(|c| c.installation.clone());
            let Some(ins) = covering else {
                return Err(Failure::Redirect(
                    OAuthErrorCode::AccessDenied,
                    "the app is not installed on this account; an administrator must install it first".into(),
                ));
            };
            let name = match self.state.store.get_account(&scope, &id).await {
                Ok(a) => a.name,
                Err(tessera_store::StoreError::NotFound) => {
                    return Err(Failure::Redirect(
                        OAuthErrorCode::AccessDenied,
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
                    OAuthErrorCode::AccessDenied,
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

    pub(super) async fn consent_step(
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
                OAuthErrorCode::ConsentRequired,
                "the user must consent".into(),
            ));
        }
        Ok(Step::Consent {
            user,
            choices,
            session: new_session,
        })
    }

    pub(super) async fn decide(
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
                    OAuthErrorCode::AccessDenied,
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
    pub(super) fn granted(req: &AuthRequest, choice: &Choice) -> Vec<String> {
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

    pub(super) async fn issue_code(
        &self,
        req: &AuthRequest,
        user: &User,
        choice: &Choice,
        auth_time: i64,
    ) -> Result<String, Failure> {
        let granted = Self::granted(req, choice);
        // The resource must be the platform's or the user's agency's, and serve a granted scope.
        let resource = match &req.resource {
            None => None,
            Some(r) => {
                let target = crate::oauth::resource::resolve(self.state, &user.agency_id, r)
                    .await
                    .map_err(|e| Failure::Redirect(e.error, e.description))?;
                if let Some(t) = &target {
                    t.narrow(&granted)
                        .map_err(|e| Failure::Redirect(e.error, e.description))?;
                }
                target.map(|t| t.identifier)
            }
        };
        let now = self.now();
        let (code, hash) = issue::new_secret(self.state, CODE_PREFIX);
        let grant_id =
            GrantId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng())
                .to_string();
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
            expires_at: now.saturating_add(millis(self.state.oauth.settings.code_ttl)),
            consumed_at: None,
            resource,
        };
        let scope = self.state.admission.admit(user.agency_id.clone());
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
            AuditAction::OauthConsent,
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
        crate::audit::sealed::append(self.state, &scope, &audit)
            .await
            .map_err(unavailable)?;
        Ok(code.expose().to_owned())
    }
}
