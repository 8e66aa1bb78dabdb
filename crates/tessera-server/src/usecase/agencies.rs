//! Agencies (tenants): created, listed and deleted by platform staff, read and renamed by their
//! own admins. INVARIANT: the platform tenant is never deleted; each change is audited in the
//! same write.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tessera_core::AgencyId;
use tessera_store::{Agency, Page, PageRequest, Status, Store};

use super::validate;
use crate::audit::action::AuditAction;
use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
use crate::services::Services;

/// `POST /v1/agencies`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgency {
    /// Display name, 1 to 200 characters.
    #[schemars(extend("minLength" = 1, "maxLength" = 200, "pattern" = super::validate::NAME_PATTERN))]
    pub name: String,
}

/// `PATCH /v1/agencies/{agy}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgency {
    /// New display name.
    #[schemars(extend("minLength" = 1, "maxLength" = 200, "pattern" = super::validate::NAME_PATTERN))]
    pub name: String,
}

/// Creates an agency. Route: `agencies.create` (platform principals only).
pub async fn create(
    s: &Services,
    auth: &Authorized,
    input: CreateAgency,
) -> Result<Agency, ApiError> {
    let name = validate::name("name", &input.name)?;
    let now = s.clock.now();
    let agency = Agency {
        id: AgencyId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng()),
        name,
        status: Status::Active,
        suspended_reason: None,
        suspended_at: None,
        is_platform: false,
        created_at: now,
        updated_at: now,
    };
    let audit = auth.audit(
        s,
        AuditAction::AgencyCreate,
        Some(agency.id.as_str()),
        json!({ "name": agency.name }),
    );
    s.store.create_agency(&agency, &audit).await?;
    Ok(agency)
}

/// A page of every agency. Route: `agencies.read` (platform principals only).
pub async fn list(store: &dyn Store, page: &PageRequest) -> Result<Page<Agency>, ApiError> {
    Ok(store.list_agencies(page).await?)
}

/// The agency acted in. Route: `agencies.read` on it.
pub async fn get(store: &dyn Store, auth: &Authorized) -> Result<Agency, ApiError> {
    auth.scope()?;
    Ok(store.get_agency(&auth.agency).await?)
}

/// Renames the agency acted in. Route: `agencies.update` on it.
pub async fn update(
    s: &Services,
    auth: &Authorized,
    input: UpdateAgency,
) -> Result<Agency, ApiError> {
    auth.scope()?;
    let name = validate::name("name", &input.name)?;
    let audit = auth.audit(
        s,
        AuditAction::AgencyUpdate,
        Some(auth.agency.as_str()),
        json!({ "name": name }),
    );
    Ok(s.store
        .update_agency(&auth.agency, &name, s.clock.now(), &audit)
        .await?)
}

/// Deletes the agency acted in (its credentials stop working; its audit trail stays; its data
/// key is destroyed, so what it sealed is unreadable). Route:
/// `agencies.delete` (platform). Refuses (409) to delete the caller's own (platform) tenant.
pub async fn remove(s: &Services, auth: &Authorized) -> Result<(), ApiError> {
    auth.scope()?;
    if auth.agency == auth.caller.agency {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the platform tenant cannot be deleted",
        ));
    }
    let audit = auth.audit(
        s,
        AuditAction::AgencyDelete,
        Some(auth.agency.as_str()),
        json!({}),
    );
    s.store
        .delete_agency(&auth.agency, s.clock.now(), &audit)
        .await?;
    // Its data key was deleted in that transaction: drop this node's unwrapped copy too.
    s.data_keys.forget(&auth.agency);
    Ok(())
}
