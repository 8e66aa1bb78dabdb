//! OAuth clients (apps) and their installations.
//!
//! Apps: `apps.write` / `apps.read` on the owning agency. A first-party app is registered by a
//! platform admin only, and is the only kind that may hold `internal` scopes; a marketplace
//! app holds public and partner scopes; an agency-private app public ones. Redirect URIs are
//! absolute https URLs (http only on loopback), matched exactly at authorization.
//!
//! Installations: `installations.write` / `installations.read` at the account (or agency)
//! installed on. The installer consents scopes of the app, and only ones whose permissions they
//! hold there (I2). Uninstalling revokes every grant through the installation at once.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_core::{AppId, InstallationId};
use tessera_store::{App, AppKind, Installation, SecretHashRecord, StoreError};

use super::validate;
use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
use crate::http::extract::{parse_id, Json, ListQuery};
use crate::http::list::List;
use crate::http::state::AppState;
use crate::oauth::issue::{new_secret, CLIENT_SECRET_PREFIX};
use crate::oauth::scope::audience_allows;
use crate::services::Services;

/// The most redirect URIs an app registers.
const MAX_REDIRECT_URIS: usize = 20;

/// `POST /v1/agencies/{agy}/apps`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    /// Display name, shown on the consent page.
    #[schemars(extend("minLength" = 1, "maxLength" = 200, "pattern" = super::validate::NAME_PATTERN))]
    pub name: String,
    /// Redirect URIs, matched exactly: https, or http on a loopback host.
    #[schemars(extend("maxItems" = 20))]
    pub redirect_uris: Vec<String>,
    /// The catalog scopes the app may ever request.
    pub scopes: Vec<String>,
    /// A confidential client gets a secret; a public one (a SPA, a native app) does not.
    pub confidential: bool,
    /// `private` (default), `marketplace`, or `first_party` (platform admins only).
    pub kind: Option<AppKind>,
    /// How its tokens (access and id tokens) are signed: `EdDSA` (default, Ed25519), `ES256`
    /// or `RS256` (RSASSA-PKCS1-v1_5 with SHA-256, which every OpenID Connect library
    /// supports), for client libraries without EdDSA.
    #[schemars(extend("enum" = ["EdDSA", "ES256", "RS256"]))]
    pub token_signing_alg: Option<String>,
}

/// `POST …/apps/{app}/rotate-secret`; the body may be empty.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the old secret keeps working (0 to 604800 seconds, default 3600).
    #[schemars(extend("maximum" = 604800))]
    pub grace_seconds: Option<u64>,
}

/// An app, with its secret when one was just made.
#[derive(Serialize, JsonSchema)]
pub struct AppWithSecret {
    /// The app.
    #[serde(flatten)]
    pub app: App,
    /// The OAuth `client_id` (the app's id).
    pub client_id: String,
    /// The client secret: shown once, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for AppWithSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppWithSecret")
            .field("app", &self.app)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// Whether `host` is a loopback host (RFC 8252 §7.3).
fn loopback(host: &str) -> bool {
    host == "127.0.0.1" || host == "[::1]" || host == "localhost"
}

/// Checks one redirect URI: absolute, https (http only on loopback), no fragment, no
/// credentials, no wildcards.
pub fn redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > 2000 || uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "`{}…` is too long or has spaces or control characters",
            uri.chars().take(60).collect::<String>()
        ));
    }
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| format!("`{uri}` is not an absolute URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("`{uri}` must name a host, without credentials"));
    }
    if uri.contains('#') {
        return Err(format!(
            "`{uri}` must not have a fragment (RFC 6749 §3.1.2)"
        ));
    }
    if uri.contains('*') {
        return Err(format!(
            "`{uri}`: wildcards are not allowed; URIs match exactly"
        ));
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => format!("[{}]", v6.split(']').next().unwrap_or_default()),
        None => authority
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase(),
    };
    match scheme {
        "https" => Ok(()),
        "http" if loopback(&host) => Ok(()),
        "http" => Err(format!(
            "`{uri}`: plain http is allowed on loopback hosts only"
        )),
        _ => Err(format!(
            "`{uri}` must use https (or http on a loopback host)"
        )),
    }
}

/// Requires `apps.write` on the agency (platform admins for first-party apps).
pub async fn create(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<CreateApp>,
) -> Result<(StatusCode, axum::Json<AppWithSecret>), ApiError> {
    let scope = auth.scope()?;
    let name = validate::name("name", &body.name)?;
    let kind = body.kind.unwrap_or(AppKind::Private);
    if kind == AppKind::FirstParty && !auth.caller.is_platform {
        return Err(ApiError::forbidden(
            "only platform admins register first-party apps",
        ));
    }
    if body.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(ApiError::invalid(format!(
            "at most {MAX_REDIRECT_URIS} redirect URIs"
        )));
    }
    let mut uris = Vec::with_capacity(body.redirect_uris.len());
    for u in &body.redirect_uris {
        redirect_uri(u).map_err(|e| ApiError::invalid(format!("redirect_uris: {e}")))?;
        if !uris.contains(u) {
            uris.push(u.clone());
        }
    }
    let mut scopes = body.scopes;
    scopes.sort();
    scopes.dedup();
    let mut bad = Vec::new();
    for sc in &scopes {
        match s.catalog.scope(sc) {
            None => bad.push(format!("`{sc}` is not a catalog scope")),
            Some((aud, _)) if !audience_allows(kind, aud) => bad.push(format!(
                "`{sc}` has audience `{}`, which a {} app may not hold",
                format!("{aud:?}").to_ascii_lowercase(),
                kind.as_str()
            )),
            Some(_) => {}
        }
    }
    if !bad.is_empty() {
        return Err(ApiError::invalid(bad.join("; ")).with_extra(json!({ "invalid_scopes": bad })));
    }
    let alg = match body.token_signing_alg.as_deref() {
        None | Some("EdDSA") => "EdDSA",
        Some("ES256") => "ES256",
        Some("RS256") => "RS256",
        Some(_) => {
            return Err(ApiError::invalid(
                "`token_signing_alg` must be `EdDSA`, `ES256` or `RS256`",
            ))
        }
    };
    let now = s.clock.now();
    let app = App {
        id: AppId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng()),
        agency_id: auth.agency.clone(),
        name,
        kind,
        confidential: body.confidential,
        token_signing_alg: alg.to_owned(),
        redirect_uris: uris,
        scopes,
        created_by: auth.caller.principal.to_string(),
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    let secret = body
        .confidential
        .then(|| new_secret(&s, CLIENT_SECRET_PREFIX));
    let record = secret.as_ref().map(|(_, hash)| SecretHashRecord {
        hash: hash.clone(),
        pepper_version: i64::from(s.pepper.version()),
    });
    let audit = auth.audit(
        &s,
        "app.create",
        Some(app.id.as_str()),
        json!({ "name": app.name, "kind": app.kind, "scopes": app.scopes, "redirect_uris": app.redirect_uris, "confidential": app.confidential }),
    );
    s.store
        .create_app(&scope, &app, record.as_ref(), &audit)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(AppWithSecret {
            client_id: app.id.to_string(),
            app,
            client_secret: secret.map(|(s, _)| s.expose().to_owned()),
        }),
    ))
}

/// Requires `apps.read` on the agency.
pub async fn list(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<App>>, ApiError> {
    q.cursor_as::<AppId>()?;
    Ok(axum::Json(
        s.store.list_apps(&auth.scope()?, &q.page()).await?.into(),
    ))
}

async fn load(s: &Services, auth: &Authorized, app: &str) -> Result<App, ApiError> {
    let id: AppId = parse_id(app)?;
    let app = s.store.get_app(&auth.scope()?, &id).await?;
    if app.deleted_at.is_some() {
        return Err(ApiError::not_found());
    }
    Ok(app)
}

/// Refuses a change to an app (a new secret, its deletion) unless the caller holds, agency-wide,
/// every permission of the app's scopes: a client's secret obtains tokens with those scopes,
/// so handing it to someone who lacks them escalates (I2).
async fn require_holds_scopes(
    s: &Services,
    auth: &Authorized,
    app: &App,
    action: &str,
) -> Result<(), ApiError> {
    let permissions = s
        .catalog
        .scopes_permissions(&app.scopes)
        .map_err(|unknown| {
            ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "the app names scopes the catalog no longer defines: {}",
                    unknown.join(", ")
                ),
            )
        })?;
    let missing = permissions.difference(&auth.effective(s, None).await?);
    if missing.is_empty() {
        return Ok(());
    }
    let names = s.catalog.permission_names(&missing);
    let message = format!(
        "the app's scopes grant permissions you do not hold, so you cannot change it: {}",
        names.join(", ")
    );
    Err(auth
        .refuse_missing(s, action, Some(app.id.as_str()), names, message)
        .await
        .into())
}

/// Requires `apps.read` on the agency.
pub async fn get(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, app)): Path<(String, String)>,
) -> Result<axum::Json<App>, ApiError> {
    Ok(axum::Json(load(&s, &auth, &app).await?))
}

/// Requires `apps.write` on the agency. Its clients stop authenticating at once and its
/// tokens introspect as inactive.
pub async fn remove(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, app)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let app = load(&s, &auth, &app).await?;
    require_holds_scopes(&s, &auth, &app, "app.delete").await?;
    let audit = auth.audit(
        &s,
        "app.delete",
        Some(app.id.as_str()),
        json!({ "name": app.name }),
    );
    s.store
        .delete_app(&auth.scope()?, &app.id, s.clock.now(), &audit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Requires `apps.write` on the agency: a new secret, the old one valid for a grace period.
pub async fn rotate_secret(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, app)): Path<(String, String)>,
    body: Bytes,
) -> Result<axum::Json<AppWithSecret>, ApiError> {
    let body: RotateSecret = if body.iter().all(u8::is_ascii_whitespace) {
        RotateSecret::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("invalid body: {e}")))?
    };
    let grace = body
        .grace_seconds
        .unwrap_or(super::api_keys::DEFAULT_GRACE_SECONDS);
    if grace > super::api_keys::MAX_GRACE_SECONDS {
        return Err(ApiError::invalid(format!(
            "`grace_seconds` must be at most {}",
            super::api_keys::MAX_GRACE_SECONDS
        )));
    }
    let app = load(&s, &auth, &app).await?;
    require_holds_scopes(&s, &auth, &app, "app.rotate_secret").await?;
    if !app.confidential {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "a public client has no secret to rotate",
        ));
    }
    let now = s.clock.now();
    let (secret, hash) = new_secret(&s, CLIENT_SECRET_PREFIX);
    let record = SecretHashRecord {
        hash,
        pepper_version: i64::from(s.pepper.version()),
    };
    let until = now + i64::try_from(grace * 1000).unwrap_or(i64::MAX);
    let audit = auth.audit(
        &s,
        "app.rotate_secret",
        Some(app.id.as_str()),
        json!({ "grace_seconds": grace }),
    );
    let app = s
        .store
        .rotate_app_secret(&auth.scope()?, &app.id, &record, until, now, &audit)
        .await?;
    Ok(axum::Json(AppWithSecret {
        client_id: app.id.to_string(),
        app,
        client_secret: Some(secret.expose().to_owned()),
    }))
}

/// `POST …/installations`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInstallation {
    /// The app (`client_id`): one of this agency's, a marketplace app, or a first-party app.
    pub app: AppId,
    /// The scopes consented: the most any token of the installation carries.
    pub scopes: Vec<String>,
}

/// Requires `installations.write` where it is installed, and the permissions of its scopes.
pub async fn install(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<CreateInstallation>,
) -> Result<(StatusCode, axum::Json<Installation>), ApiError> {
    let scope = auth.scope()?;
    let account = auth.account.clone();
    if let Some(acc) = &account {
        s.store.get_account(&scope, acc).await?;
    }
    let missing_app = || {
        ApiError::new(
            ErrorCode::NotFound,
            "`app` names no app this agency can install",
        )
    };
    let app = match s.store.find_client(&body.app).await? {
        Some(c) if c.app.deleted_at.is_none() => c.app,
        _ => return Err(missing_app()),
    };
    // Another agency's private app is as invisible as a missing one (I1).
    if app.kind == AppKind::Private && app.agency_id != auth.agency {
        return Err(missing_app());
    }
    let mut scopes = body.scopes;
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(ApiError::invalid("consent at least one scope"));
    }
    let outside: Vec<String> = scopes
        .iter()
        .filter(|sc| !app.scopes.contains(sc))
        .cloned()
        .collect();
    if !outside.is_empty() {
        return Err(ApiError::invalid(format!(
            "the app does not request these scopes: {}",
            outside.join(", ")
        ))
        .with_extra(json!({ "invalid_scopes": outside })));
    }
    let permissions = s
        .catalog
        .scopes_permissions(&scopes)
        .map_err(|unknown| ApiError::invalid(format!("unknown scopes: {}", unknown.join(", "))))?;
    let missing = permissions.difference(&auth.effective(&s, account.as_ref()).await?);
    if !missing.is_empty() {
        return Err(auth
            .deny_missing(
                &s,
                "installation.create",
                s.catalog.permission_names(&missing),
            )
            .await
            .into());
    }
    let now = s.clock.now();
    let ins = Installation {
        id: InstallationId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng()),
        agency_id: auth.agency.clone(),
        app_id: app.id.clone(),
        app_agency_id: app.agency_id.clone(),
        account,
        scopes,
        created_by: auth.caller.principal.to_string(),
        created_at: now,
        revoked_at: None,
    };
    let audit = auth.audit(
        &s,
        "installation.create",
        Some(ins.id.as_str()),
        json!({ "app": app.id.as_str(), "app_name": app.name, "account": ins.account, "scopes": ins.scopes }),
    );
    match s.store.create_installation(&scope, &ins, &audit).await {
        Ok(()) => {}
        Err(StoreError::Conflict { .. }) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the app is already installed there; uninstall it first",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    Ok((StatusCode::CREATED, axum::Json(ins)))
}

/// Requires `installations.read` where they are installed.
pub async fn installations(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<Installation>>, ApiError> {
    q.cursor_as::<InstallationId>()?;
    let page = s
        .store
        .list_installations(&auth.scope()?, auth.account.as_ref(), &q.page())
        .await?;
    // The agency-level list shows only agency-wide installations.
    let page = if auth.account.is_none() {
        tessera_store::Page {
            next_cursor: page.next_cursor,
            items: page
                .items
                .into_iter()
                .filter(|i| i.account.is_none())
                .collect(),
        }
    } else {
        page
    };
    Ok(axum::Json(page.into()))
}

async fn load_installation(
    s: &Services,
    auth: &Authorized,
    ins: &str,
) -> Result<Installation, ApiError> {
    let id: InstallationId = parse_id(ins)?;
    let ins = s.store.get_installation(&auth.scope()?, &id).await?;
    if ins.revoked_at.is_some() || ins.account != auth.account {
        return Err(ApiError::not_found());
    }
    Ok(ins)
}

/// Requires `installations.read` where it is installed.
pub async fn installation(
    State(s): State<AppState>,
    auth: Authorized,
    Path(params): Path<Vec<(String, String)>>,
) -> Result<axum::Json<Installation>, ApiError> {
    let ins = param(&params, "ins")?;
    Ok(axum::Json(load_installation(&s, &auth, ins).await?))
}

/// Requires `installations.write` where it is installed: revokes every token of it.
pub async fn uninstall(
    State(s): State<AppState>,
    auth: Authorized,
    Path(params): Path<Vec<(String, String)>>,
) -> Result<StatusCode, ApiError> {
    let ins = load_installation(&s, &auth, param(&params, "ins")?).await?;
    let audit = auth.audit(
        &s,
        "installation.revoke",
        Some(ins.id.as_str()),
        json!({ "app": ins.app_id.as_str(), "account": ins.account }),
    );
    s.store
        .revoke_installation(&auth.scope()?, &ins.id, s.clock.now(), &audit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, ApiError> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| ApiError::invalid(format!("missing path parameter `{name}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris() {
        for ok in [
            "https://app.example.com/cb",
            "https://app.example.com/cb?x=1",
            "http://127.0.0.1:8765/callback",
            "http://localhost/cb",
            "http://[::1]:9000/cb",
        ] {
            assert!(redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.example.com/cb",
            "https://app.example.com/cb#frag",
            "https://*.example.com/cb",
            "https://user:pw@example.com/cb",
            "/relative",
            "javascript:alert(1)",
            "ftp://example.com/",
            "https:///nohost",
            "https://exa mple.com/",
        ] {
            assert!(redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
