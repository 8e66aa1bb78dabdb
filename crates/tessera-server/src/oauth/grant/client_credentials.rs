//! The client-credentials grant (RFC 6749 §4.4): a confidential app acts as one of its
//! installations, with at most the scopes that installation consented and the app registered
//! (and its kind may hold: public, partner or internal audiences).
//!
//! INVARIANT (I2): an installation token never carries a scope its installation did not
//! consent; public clients cannot use this grant; an installation removed since the client's
//! list was cached is seen in its agency's current state and refused.

use serde_json::json;
use tessera_store::{Installation, Outcome};

use super::{GrantError, TokenResponse};
use crate::audit::action::AuditAction;
use crate::audit::record::audit_event as record;
use crate::audit::writer::Issue;
use crate::caller::RequestMeta;
use crate::oauth::client::{self, AuthMethod, Client};
use crate::oauth::issue::{self, AccessSpec};
use crate::oauth::resource::resolve;
use crate::oauth::scope::{audience_allows, is_protocol_scope, shown, split_scopes};
use crate::oauth::tenant::active_installation;
use crate::services::Services;

/// A client-credentials request: the authenticated client and its optional parameters.
#[derive(Debug)]
pub struct ClientCredentialsRequest<'a> {
    /// The authenticated client.
    pub client: Client,
    /// `installation`: which one, when the app has several.
    pub installation: Option<&'a str>,
    /// `scope`: default, every scope the installation consented and the app registered.
    pub scope: Option<&'a str>,
    /// `resource` (RFC 8707): bind the token to this resource server (its `aud`), with the
    /// scopes it serves only.
    pub resource: Option<&'a str>,
}

/// Issues an installation access token.
pub async fn issue_token(
    state: &Services,
    meta: &RequestMeta,
    req: ClientCredentialsRequest<'_>,
) -> Result<TokenResponse, GrantError> {
    let client = req.client;
    if client.method == AuthMethod::None {
        return Err(GrantError::UnauthorizedClient(
            "public clients cannot use the client_credentials grant".into(),
        ));
    }
    let ins = choose_installation(state, &client, req.installation).await?;
    super::refuse_suspended(
        state,
        &ins.agency_id,
        ins.account.as_ref(),
        client.id().as_str(),
    )
    .await?;
    let app = client.app();
    let requested = match req.scope {
        Some(s) => split_scopes(s),
        None => ins
            .scopes
            .iter()
            .filter(|s| app.scopes.contains(s))
            .cloned()
            .collect(),
    };
    for s in &requested {
        let granted = !is_protocol_scope(s)
            && ins.scopes.contains(s)
            && app.scopes.contains(s)
            && state
                .catalog
                .scope(s)
                .is_some_and(|(aud, _)| audience_allows(app.kind, aud));
        if !granted {
            return Err(GrantError::InvalidScope(format!(
                "scope `{}` is not granted to this installation",
                shown(s)
            )));
        }
    }
    if requested.is_empty() {
        return Err(GrantError::InvalidScope(
            "the installation grants no scope this app may request".into(),
        ));
    }
    let target = match req.resource {
        Some(r) => resolve(state, &ins.agency_id, r)
            .await
            .map_err(GrantError::Mapped)?,
        None => None,
    };
    let requested = match &target {
        Some(t) => t.narrow(&requested).map_err(GrantError::Mapped)?,
        None => requested,
    };
    let issued = issue::mint_access(
        state,
        AccessSpec {
            sub: app.id.to_string(),
            client_id: app.id.to_string(),
            scopes: requested.clone(),
            agency: ins.agency_id.clone(),
            account: ins.account.clone(),
            act: None,
            sid: None,
            ins: Some(ins.id.clone()),
            ttl: crate::oauth::settings::secs(state.oauth.settings.access_ttl),
            alg: issue::app_alg(client.app()),
            aud: target.as_ref().map(|t| t.identifier.clone()),
        },
    )?;
    let audit = record(
        state,
        meta,
        app.id.as_str(),
        None,
        AuditAction::TokenIssue,
        Some(ins.id.as_str()),
        Outcome::Success,
        json!({ "grant_type": "client_credentials" }),
    );
    let issue = Issue {
        record: audit,
        scope: requested.join(" "),
        jti: issued.jti.clone(),
    };
    state
        .audit
        .append_issue(state.admission.admit(ins.agency_id.clone()), issue)
        .await?;
    Ok(TokenResponse::bearer(
        issued.token,
        issued.expires_in,
        &requested,
    ))
}

/// The installation the token acts through: the one named, or the app's only one.
async fn choose_installation(
    state: &Services,
    client: &Client,
    wanted: Option<&str>,
) -> Result<Installation, GrantError> {
    for refresh in [false, true] {
        let list = client::installations(state, client.id(), refresh).await?;
        let candidates: Vec<&Installation> = match wanted {
            Some(w) => list.iter().filter(|i| i.id.as_str() == w).collect(),
            None => list.iter().collect(),
        };
        let chosen = match candidates.as_slice() {
            [one] => *one,
            [] if !refresh => continue,
            [] => {
                return Err(match wanted {
                    Some(_) => GrantError::InvalidRequest(
                        "`installation` names no installation of this app".into(),
                    ),
                    None => GrantError::UnauthorizedClient(
                        "this app is not installed anywhere: an agency must install it first"
                            .into(),
                    ),
                })
            }
            _ => {
                return Err(GrantError::InvalidRequest(
                    "this app has several installations: name one with `installation`".into(),
                ))
            }
        };
        // The list may be older than an uninstall: the agency's current state decides.
        match active_installation(state, &chosen.agency_id, chosen.id.as_str()).await? {
            Some(i) => return Ok(i),
            None if !refresh => continue,
            None => {
                return Err(GrantError::InvalidGrant(
                    "the installation was removed".into(),
                ))
            }
        }
    }
    Err(GrantError::InvalidGrant(
        "the installation was removed".into(),
    ))
}
