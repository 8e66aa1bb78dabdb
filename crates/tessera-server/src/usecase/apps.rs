//! OAuth clients (apps) of an agency. A first-party app is registered by a platform admin only,
//! and is the only kind that may hold `internal` scopes; a marketplace app holds public and
//! partner scopes; an agency-private app public ones. Redirect URIs are absolute https URLs
//! (http only on loopback), matched exactly at authorization. INVARIANT (I2): only a caller
//! holding every permission of an app's scopes rotates its secret or deletes it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_core::AppId;
use tessera_store::{App, AppKind, AppReview, Page, PageRequest, SecretHashRecord, Store};

use super::api_keys::Grace;
use super::validate;
use crate::audit::action::AuditAction;
use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
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

impl RotateSecret {
    /// The grace asked for, checked.
    pub fn grace(&self) -> Result<Grace, ApiError> {
        Grace::new(self.grace_seconds)
    }
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

/// Checks redirect URIs (at most `MAX_REDIRECT_URIS`, each by `redirect_uri`), without
/// duplicates.
pub fn check_redirect_uris(input: &[String]) -> Result<Vec<String>, ApiError> {
    if input.len() > MAX_REDIRECT_URIS {
        return Err(ApiError::invalid(format!(
            "at most {MAX_REDIRECT_URIS} redirect URIs"
        )));
    }
    let mut uris = Vec::with_capacity(input.len());
    for u in input {
        redirect_uri(u).map_err(|e| ApiError::invalid(format!("redirect_uris: {e}")))?;
        if !uris.contains(u) {
            uris.push(u.clone());
        }
    }
    Ok(uris)
}

/// Checks an app's scopes: catalog scopes, each allowed to the app's kind; sorted, without
/// duplicates.
pub fn check_scopes(
    s: &Services,
    kind: AppKind,
    mut scopes: Vec<String>,
) -> Result<Vec<String>, ApiError> {
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
    Ok(scopes)
}

/// Registers an app; a confidential one's secret is in the answer, once. Route: `apps.write` on
/// the agency. Further: a first-party app needs a platform caller (403); redirect URIs, scopes
/// (each allowed to the app's kind) and the signing algorithm are checked.
pub async fn create(
    s: &Services,
    auth: &Authorized,
    input: CreateApp,
) -> Result<AppWithSecret, ApiError> {
    let scope = auth.scope()?;
    let name = validate::name("name", &input.name)?;
    let kind = input.kind.unwrap_or(AppKind::Private);
    if kind == AppKind::FirstParty && !auth.caller.is_platform {
        return Err(ApiError::forbidden(
            "only platform admins register first-party apps",
        ));
    }
    let uris = check_redirect_uris(&input.redirect_uris)?;
    let scopes = check_scopes(s, kind, input.scopes)?;
    let alg = match input.token_signing_alg.as_deref() {
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
    // A marketplace app's partner scopes wait for a platform reviewer (`apps.review`); until
    // then they are installable in its own agency only. Nothing else needs review.
    let approved_scopes: Vec<String> = scopes
        .iter()
        .filter(|sc| !needs_review(s, kind, sc))
        .cloned()
        .collect();
    let pending_scopes: Vec<String> = scopes
        .iter()
        .filter(|sc| !approved_scopes.contains(sc))
        .cloned()
        .collect();
    let review = if pending_scopes.is_empty() {
        AppReview::Approved
    } else {
        AppReview::Pending
    };
    let app = App {
        id: AppId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng()),
        agency_id: auth.agency.clone(),
        name,
        kind,
        confidential: input.confidential,
        token_signing_alg: alg.to_owned(),
        redirect_uris: uris,
        scopes,
        review,
        approved_scopes,
        pending_scopes,
        review_reason: None,
        created_by: auth.caller.principal.to_string(),
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    let secret = input
        .confidential
        .then(|| new_secret(s, CLIENT_SECRET_PREFIX));
    let record = secret.as_ref().map(|(_, hash)| SecretHashRecord {
        hash: hash.clone(),
        pepper_version: i64::from(s.pepper.version()),
    });
    let audit = auth.audit(
        s,
        AuditAction::AppCreate,
        Some(app.id.as_str()),
        json!({ "name": app.name, "kind": app.kind, "scopes": app.scopes, "redirect_uris": app.redirect_uris, "confidential": app.confidential, "review": app.review, "pending_scopes": app.pending_scopes }),
    );
    s.store
        .create_app(&scope, &app, record.as_ref(), &audit)
        .await?;
    Ok(AppWithSecret {
        client_id: app.id.to_string(),
        app,
        client_secret: secret.map(|(s, _)| s.expose().to_owned()),
    })
}

/// Whether a scope of an app of this kind waits for a platform reviewer: a `partner` scope
/// of a marketplace app.
pub fn needs_review(s: &Services, kind: AppKind, scope: &str) -> bool {
    kind == AppKind::Marketplace
        && matches!(
            s.catalog.scope(scope),
            Some((tessera_core::catalog::Audience::Partner, _))
        )
}

/// A page of the agency's apps. Route: `apps.read` on the agency.
pub async fn list(
    store: &dyn Store,
    auth: &Authorized,
    page: &PageRequest,
) -> Result<Page<App>, ApiError> {
    Ok(store.list_apps(&auth.scope()?, page).await?)
}

/// One app, not deleted. Route: `apps.read` on the agency.
pub async fn get(store: &dyn Store, auth: &Authorized, id: &AppId) -> Result<App, ApiError> {
    let app = store.get_app(&auth.scope()?, id).await?;
    if app.deleted_at.is_some() {
        return Err(ApiError::not_found());
    }
    Ok(app)
}

/// Refuses a change to an app (a new secret, its deletion) unless the caller holds, agency-wide,
/// every permission of the app's scopes: a client's secret obtains tokens with those scopes,
/// so handing it to someone who lacks them escalates (I2).
pub async fn require_holds_scopes(
    s: &Services,
    auth: &Authorized,
    app: &App,
    action: AuditAction,
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

/// Deletes an app: its clients stop authenticating at once and its tokens introspect as
/// inactive. Route: `apps.write` on the agency. Further (I2): the caller holds every permission
/// of the app's scopes.
pub async fn remove(s: &Services, auth: &Authorized, id: &AppId) -> Result<(), ApiError> {
    let app = get(s.store.as_ref(), auth, id).await?;
    require_holds_scopes(s, auth, &app, AuditAction::AppDelete).await?;
    let audit = auth.audit(
        s,
        AuditAction::AppDelete,
        Some(app.id.as_str()),
        json!({ "name": app.name }),
    );
    s.store
        .delete_app(&auth.scope()?, &app.id, s.clock.now(), &audit)
        .await?;
    Ok(())
}

/// Rotates a confidential app's secret: a new one, the old one valid for `grace`. Route:
/// `apps.write` on the agency. Further (I2): the caller holds every permission of the app's
/// scopes; a public client is a 409.
pub async fn rotate_secret(
    s: &Services,
    auth: &Authorized,
    id: &AppId,
    grace: Grace,
) -> Result<AppWithSecret, ApiError> {
    let app = get(s.store.as_ref(), auth, id).await?;
    require_holds_scopes(s, auth, &app, AuditAction::AppRotateSecret).await?;
    if !app.confidential {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "a public client has no secret to rotate",
        ));
    }
    let now = s.clock.now();
    let (secret, hash) = new_secret(s, CLIENT_SECRET_PREFIX);
    let record = SecretHashRecord {
        hash,
        pepper_version: i64::from(s.pepper.version()),
    };
    let audit = auth.audit(
        s,
        AuditAction::AppRotateSecret,
        Some(app.id.as_str()),
        json!({ "grace_seconds": grace.seconds() }),
    );
    let app = s
        .store
        .rotate_app_secret(
            &auth.scope()?,
            &app.id,
            &record,
            grace.until(now),
            now,
            &audit,
        )
        .await?;
    Ok(AppWithSecret {
        client_id: app.id.to_string(),
        app,
        client_secret: Some(secret.expose().to_owned()),
    })
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
