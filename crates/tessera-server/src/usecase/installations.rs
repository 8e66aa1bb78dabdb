//! Installations of apps on an agency (agency-wide) or on one of its accounts. The installer
//! consents scopes the app requests, and only ones whose permissions they hold there (I2);
//! another agency's private app is as invisible as a missing one (I1). Uninstalling revokes
//! every grant through the installation at once. A marketplace app's scopes not approved by
//! a platform reviewer are installable in its own agency only (403 `app_not_approved`
//! elsewhere).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tessera_core::{AppId, InstallationId};
use tessera_store::{AppKind, Installation, Page, PageRequest, Store, StoreError};

use crate::audit::action::AuditAction;
use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
use crate::services::Services;

/// `POST …/installations`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInstallation {
    /// The app (`client_id`): one of this agency's, a marketplace app, or a first-party app.
    pub app: AppId,
    /// The scopes consented: the most any token of the installation carries.
    pub scopes: Vec<String>,
}

/// Installs an app where the gate checked (the account from the path, or the agency). Route:
/// `installations.write` there. Further: the app is installable here, the scopes are ones it
/// requests, and (I2) the caller holds every permission of them there.
pub async fn install(
    s: &Services,
    auth: &Authorized,
    input: CreateInstallation,
) -> Result<Installation, ApiError> {
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
    let app = match s.store.find_client(&input.app).await? {
        Some((c, _)) if c.app.deleted_at.is_none() => c.app,
        _ => return Err(missing_app()),
    };
    // Another agency's private app is as invisible as a missing one (I1).
    if app.kind == AppKind::Private && app.agency_id != auth.agency {
        return Err(missing_app());
    }
    let mut scopes = input.scopes;
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
    // A marketplace app's scopes awaiting (or refused at) review are installable in its own
    // agency only, for testing.
    if app.agency_id != auth.agency {
        let unapproved: Vec<String> = scopes
            .iter()
            .filter(|sc| !app.approved_scopes.contains(sc))
            .cloned()
            .collect();
        if !unapproved.is_empty() {
            return Err(ApiError::new(
                ErrorCode::AppNotApproved,
                format!(
                    "the platform has not approved these scopes of the app ({}): it can be installed with them only in its own agency until a reviewer approves them",
                    unapproved.join(", ")
                ),
            )
            .with_extra(json!({ "review": app.review, "unapproved_scopes": unapproved })));
        }
    }
    let permissions = s
        .catalog
        .scopes_permissions(&scopes)
        .map_err(|unknown| ApiError::invalid(format!("unknown scopes: {}", unknown.join(", "))))?;
    let missing = permissions.difference(&auth.effective(s, account.as_ref()).await?);
    if !missing.is_empty() {
        return Err(auth
            .deny_missing(
                s,
                AuditAction::InstallationCreate,
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
        s,
        AuditAction::InstallationCreate,
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
    Ok(ins)
}

/// A page of the installations where the gate checked: on the account, or (agency level) only
/// the agency-wide ones. Route: `installations.read` there.
pub async fn list(
    store: &dyn Store,
    auth: &Authorized,
    page: &PageRequest,
) -> Result<Page<Installation>, ApiError> {
    let page = store
        .list_installations(&auth.scope()?, auth.account.as_ref(), page)
        .await?;
    // The agency-level list shows only agency-wide installations.
    Ok(if auth.account.is_none() {
        Page {
            next_cursor: page.next_cursor,
            items: page
                .items
                .into_iter()
                .filter(|i| i.account.is_none())
                .collect(),
        }
    } else {
        page
    })
}

/// One live installation where the gate checked (another account's is a 404). Route:
/// `installations.read` there.
pub async fn get(
    store: &dyn Store,
    auth: &Authorized,
    id: &InstallationId,
) -> Result<Installation, ApiError> {
    let ins = store.get_installation(&auth.scope()?, id).await?;
    if ins.revoked_at.is_some() || ins.account != auth.account {
        return Err(ApiError::not_found());
    }
    Ok(ins)
}

/// Uninstalls: every token of the installation is revoked. Route: `installations.write` where
/// it is installed.
pub async fn uninstall(
    s: &Services,
    auth: &Authorized,
    id: &InstallationId,
) -> Result<(), ApiError> {
    let ins = get(s.store.as_ref(), auth, id).await?;
    let audit = auth.audit(
        s,
        AuditAction::InstallationRevoke,
        Some(ins.id.as_str()),
        json!({ "app": ins.app_id.as_str(), "account": ins.account }),
    );
    s.store
        .revoke_installation(&auth.scope()?, &ins.id, s.clock.now(), &audit)
        .await?;
    Ok(())
}
