//! Marketplace review of apps, and changes to an app's details. A marketplace app asking for
//! `partner` scopes is `pending` until a platform reviewer holding `apps.review` approves it;
//! until then (and after a rejection) its unapproved scopes are installable in its own agency
//! only, for testing. A partner scope added later sends the app back to review for that scope;
//! the scopes already approved keep working in existing installations.
//!
//! INVARIANT: only a platform principal holding `apps.review` decides (the permission is
//! platform-level); a rejection carries a reason; a decision and a change are audited in the
//! write itself; a change is validated exactly like a creation and never gives an app scopes
//! whose permissions the caller does not hold (I2).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tessera_core::AppId;
use tessera_store::{App, AppReview, AppUpdate};

use super::apps::{check_redirect_uris, check_scopes, needs_review, require_holds_scopes};
use super::suspension::reason;
use super::validate;
use crate::audit::action::AuditAction;
use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
use crate::services::Services;

/// A reviewer's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Every pending scope becomes installable everywhere.
    Approve,
    /// The pending scopes stay installable in the app's own agency only.
    Reject,
}

/// `POST /v1/agencies/{agy}/apps/{app}/review`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// `approve` or `reject`.
    pub decision: Decision,
    /// Why (required to reject, 1 to 500 characters); kept in the audit trail, and on the app
    /// when it is rejected.
    #[schemars(extend("maxLength" = 500))]
    pub reason: Option<String>,
}

/// `PATCH /v1/agencies/{agy}/apps/{app}`: each field left out stays as it is.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApp {
    /// New display name.
    #[schemars(extend("minLength" = 1, "maxLength" = 200, "pattern" = super::validate::NAME_PATTERN))]
    pub name: Option<String>,
    /// New redirect URIs (the whole list).
    #[schemars(extend("maxItems" = 20))]
    pub redirect_uris: Option<Vec<String>>,
    /// New scopes (the whole list).
    pub scopes: Option<Vec<String>>,
}

/// The app acted on, not deleted.
async fn current(s: &Services, auth: &Authorized, id: &AppId) -> Result<App, ApiError> {
    super::apps::get(s.store.as_ref(), auth, id).await
}

/// Decides on an app's pending scopes. Route: `apps.review` on the app's agency (platform
/// principals only). Further: a rejection needs a reason (400); an app with nothing pending
/// is a 409 `conflict`.
pub async fn review(
    s: &Services,
    auth: &Authorized,
    id: &AppId,
    input: Review,
) -> Result<App, ApiError> {
    let why = match (&input.reason, input.decision) {
        (Some(r), _) => Some(reason(r)?),
        (None, Decision::Reject) => {
            return Err(ApiError::invalid("a rejection needs a `reason`"));
        }
        (None, Decision::Approve) => None,
    };
    let app = current(s, auth, id).await?;
    if app.pending_scopes.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "nothing in this app awaits review",
        ));
    }
    let (action, update) = match input.decision {
        Decision::Approve => (
            AuditAction::AppApprove,
            AppUpdate {
                name: app.name.clone(),
                redirect_uris: app.redirect_uris.clone(),
                scopes: app.scopes.clone(),
                review: AppReview::Approved,
                approved_scopes: app.scopes.clone(),
                review_reason: None,
            },
        ),
        Decision::Reject => (
            AuditAction::AppReject,
            AppUpdate {
                name: app.name.clone(),
                redirect_uris: app.redirect_uris.clone(),
                scopes: app.scopes.clone(),
                review: AppReview::Rejected,
                approved_scopes: app.approved_scopes.clone(),
                review_reason: why.clone(),
            },
        ),
    };
    let audit = auth.audit(
        s,
        action,
        Some(app.id.as_str()),
        json!({ "reason": why, "scopes": app.pending_scopes, "previous_review": app.review }),
    );
    Ok(s.store
        .update_app(&auth.scope()?, &app.id, &update, s.clock.now(), &audit)
        .await?)
}

/// Changes an app's name, redirect URIs or scopes. Route: `apps.write` on the agency.
/// Further: validated like a creation; the caller holds every permission of the app's scopes
/// before and after the change (I2); a partner scope of a marketplace app not approved yet
/// puts the app back to `pending` for that scope.
pub async fn update(
    s: &Services,
    auth: &Authorized,
    id: &AppId,
    input: UpdateApp,
) -> Result<App, ApiError> {
    let app = current(s, auth, id).await?;
    require_holds_scopes(s, auth, &app, AuditAction::AppUpdate).await?;
    let name = match &input.name {
        Some(n) => validate::name("name", n)?,
        None => app.name.clone(),
    };
    let redirect_uris = match &input.redirect_uris {
        Some(u) => check_redirect_uris(u)?,
        None => app.redirect_uris.clone(),
    };
    let scopes = match input.scopes {
        Some(sc) => check_scopes(s, app.kind, sc)?,
        None => app.scopes.clone(),
    };
    let after = App {
        scopes: scopes.clone(),
        ..app.clone()
    };
    require_holds_scopes(s, auth, &after, AuditAction::AppUpdate).await?;
    // Approved scopes stay approved; a new scope that needs no review is approved at once.
    let approved_scopes: Vec<String> = scopes
        .iter()
        .filter(|sc| app.approved_scopes.contains(sc) || !needs_review(s, app.kind, sc))
        .cloned()
        .collect();
    let pending: Vec<String> = scopes
        .iter()
        .filter(|sc| !approved_scopes.contains(sc))
        .cloned()
        .collect();
    let (review, review_reason) = if pending.is_empty() {
        (AppReview::Approved, None)
    } else if pending.iter().all(|sc| app.pending_scopes.contains(sc))
        && app.review == AppReview::Rejected
    {
        // Nothing new to review: a rejection stands.
        (AppReview::Rejected, app.review_reason.clone())
    } else {
        (AppReview::Pending, None)
    };
    let update = AppUpdate {
        name,
        redirect_uris,
        scopes,
        review,
        approved_scopes,
        review_reason,
    };
    let audit = auth.audit(
        s,
        AuditAction::AppUpdate,
        Some(app.id.as_str()),
        json!({ "name": update.name, "redirect_uris": update.redirect_uris, "scopes": update.scopes, "review": update.review, "pending_scopes": pending }),
    );
    Ok(s.store
        .update_app(&auth.scope()?, &app.id, &update, s.clock.now(), &audit)
        .await?)
}
