//! Reading and validating the authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, OIDC
//! Core §3.1.2.1) from the query string every step carries.
//!
//! INVARIANT: until the client and its exactly registered `redirect_uri` are known (RFC 9700
//! §4.1.3), a failure is shown on a page, never redirected (RFC 6749 §4.1.2.1); a store outage
//! there is a 503 page, not "unknown client".

use axum::http::StatusCode;

use super::flow::{AuthRequest, Failure, Flow};
use crate::oauth::client;
use crate::oauth::endpoint::params::Params;
use crate::oauth::error::OAuthErrorCode;
use crate::oauth::pkce;
use crate::oauth::scope::{audience_allows, is_protocol_scope, shown, split_scopes};

impl Flow<'_> {
    /// Parses and validates the query.
    pub(super) async fn request(&self) -> Result<AuthRequest, (Option<AuthRequest>, Failure)> {
        let (req, p) = self.base().await.map_err(|f| (None, f))?;
        let mut req = req;
        match self.validate(&mut req, &p) {
            Ok(()) => Ok(req),
            Err(f) => Err((Some(req), f)),
        }
    }

    /// The client and its redirect URI: until they match, nothing is redirected.
    pub(super) async fn base(&self) -> Result<(AuthRequest, Params), Failure> {
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
        // An outage is said as such, not as an unknown client.
        let client = match client::find(self.state, client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(bad("The authorization request names an unknown client.")),
            Err(_) => {
                return Err(Failure::Page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is temporarily unavailable. Try again shortly.".into(),
                ))
            }
        };
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
            resource: None,
            query: query.clone(),
        };
        Ok((req, p))
    }

    /// The rest of the request; failures go back to the client.
    pub(super) fn validate(&self, req: &mut AuthRequest, p: &Params) -> Result<(), Failure> {
        match p.get("response_type") {
            Some("code") => {}
            Some(_) => {
                return Err(Failure::Redirect(
                    OAuthErrorCode::UnsupportedResponseType,
                    "only response_type=code is supported".into(),
                ))
            }
            None => {
                return Err(Failure::Redirect(
                    OAuthErrorCode::InvalidRequest,
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
                    OAuthErrorCode::InvalidRequest,
                    format!(
                        "response_mode `{}` is not supported: only `query` is",
                        shown(other)
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
                        OAuthErrorCode::InvalidRequest,
                        "`max_age` must be a non-negative whole number of seconds".into(),
                    )
                })?;
            req.max_age = Some(i64::from(secs));
        }
        let challenge = p.get("code_challenge").ok_or_else(|| {
            Failure::Redirect(
                OAuthErrorCode::InvalidRequest,
                "PKCE is required: send code_challenge with code_challenge_method=S256".into(),
            )
        })?;
        if p.get("code_challenge_method") != Some("S256") {
            return Err(Failure::Redirect(
                OAuthErrorCode::InvalidRequest,
                "code_challenge_method must be S256 (plain is not accepted)".into(),
            ));
        }
        if !pkce::well_formed(challenge) || challenge.len() != 43 {
            return Err(Failure::Redirect(
                OAuthErrorCode::InvalidRequest,
                "code_challenge must be the 43-character base64url S256 of the verifier".into(),
            ));
        }
        req.challenge = challenge.to_owned();
        if req.state.as_ref().is_some_and(|s| s.len() > 1024)
            || req.nonce.as_ref().is_some_and(|n| n.len() > 512)
        {
            return Err(Failure::Redirect(
                OAuthErrorCode::InvalidRequest,
                "`state` or `nonce` is too long".into(),
            ));
        }
        if let Some(prompt) = &req.prompt {
            if !prompt
                .split(' ')
                .all(|p| matches!(p, "none" | "login" | "consent" | "select_account"))
            {
                return Err(Failure::Redirect(
                    OAuthErrorCode::InvalidRequest,
                    "unsupported `prompt` value".into(),
                ));
            }
        }
        let scopes = split_scopes(p.get("scope").unwrap_or_default());
        if scopes.is_empty() {
            return Err(Failure::Redirect(
                OAuthErrorCode::InvalidScope,
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
                    OAuthErrorCode::InvalidScope,
                    format!("scope `{}` is not available to this client", shown(s)),
                ));
            }
        }
        req.scopes = scopes;
        // RFC 8707 §2: one absolute URI without a fragment; whose it is, and what it serves,
        // is decided once the user's agency is known (when the code is issued).
        let resource = p
            .resource()
            .map_err(|e| Failure::Redirect(e.error, e.description))?;
        if let Some(r) = resource {
            if r.len() > crate::oauth::resource::MAX_RESOURCE_LEN
                || r.contains('#')
                || !r.contains("://")
            {
                return Err(Failure::Redirect(
                    OAuthErrorCode::InvalidTarget,
                    "`resource` must be an absolute URI without a fragment".into(),
                ));
            }
            req.resource = Some(r.to_owned());
        }
        Ok(())
    }
}
