//! Custom roles of an agency. A role's permissions must exist in the catalog, apply at the
//! agency or account level, and be held by its author (I2); changing or deleting a bound role
//! needs everything each holder holds (I2). A role still bound is deleted only on request,
//! together with its bindings.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tessera_core::{Level, PermissionSet, RoleId};
use tessera_store::{Page, PageRequest, Role, RolePatch, Store, StoreError, TenantScope};

use super::validate;
use crate::audit::action::AuditAction;
use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
use crate::gate::dominates::Target;
use crate::services::Services;

/// `POST /v1/agencies/{agy}/roles`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    /// Unique in the agency.
    #[schemars(extend("minLength" = 1, "maxLength" = 200, "pattern" = super::validate::NAME_PATTERN))]
    pub name: String,
    /// What the role is for.
    #[serde(default)]
    #[schemars(extend("pattern" = super::validate::NO_NUL_PATTERN))]
    pub description: String,
    /// Catalog permissions.
    pub permissions: Vec<String>,
}

/// `PATCH /v1/agencies/{agy}/roles/{rol}`: only the fields given change.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    /// New name.
    #[schemars(extend("minLength" = 1, "maxLength" = 200, "pattern" = super::validate::NAME_PATTERN))]
    pub name: Option<String>,
    /// New description.
    #[schemars(extend("pattern" = super::validate::NO_NUL_PATTERN))]
    pub description: Option<String>,
    /// New permissions (replaces the list).
    pub permissions: Option<Vec<String>>,
}

/// Checks a permission list: known, agency- or account-level, held by the caller (I2).
async fn check_permissions(
    s: &Services,
    auth: &Authorized,
    action: AuditAction,
    names: &[String],
) -> Result<Vec<String>, ApiError> {
    let mut names: Vec<String> = names.to_vec();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Err(ApiError::invalid(
            "`permissions` must name at least one permission",
        ));
    }
    let set = s.catalog.permission_set(&names).map_err(|unknown| {
        ApiError::invalid(format!("unknown permissions: {}", unknown.join(", ")))
            .with_extra(json!({ "unknown_permissions": unknown }))
    })?;
    let tenant_level = s
        .catalog
        .level_permissions(Level::Agency)
        .union(&s.catalog.level_permissions(Level::Account));
    let platform_only: PermissionSet = set.difference(&tenant_level);
    if !platform_only.is_empty() {
        return Err(ApiError::invalid(format!(
            "platform permissions cannot be in a custom role: {}",
            s.catalog.permission_names(&platform_only).join(", ")
        )));
    }
    let missing = set.difference(&auth.effective(s, None).await?);
    if !missing.is_empty() {
        return Err(auth
            .deny_missing(s, action, s.catalog.permission_names(&missing))
            .await
            .into());
    }
    Ok(names)
}

/// Creates a custom role. Route: `roles.write` on the agency. Further (I2): refuses a role
/// with a permission the caller lacks.
pub async fn create(s: &Services, auth: &Authorized, input: CreateRole) -> Result<Role, ApiError> {
    let scope = auth.scope()?;
    let name = validate::name("name", &input.name)?;
    let permissions =
        check_permissions(s, auth, AuditAction::RoleCreate, &input.permissions).await?;
    let now = s.clock.now();
    let role = Role {
        id: RoleId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng()),
        agency_id: auth.agency.clone(),
        name,
        description: input.description.trim().chars().take(1000).collect(),
        permissions,
        created_by: auth.caller.principal.to_string(),
        created_at: now,
        updated_at: now,
    };
    let audit = auth.audit(
        s,
        AuditAction::RoleCreate,
        Some(role.id.as_str()),
        json!({ "name": role.name, "permissions": role.permissions }),
    );
    s.store.create_role(&scope, &role, &audit).await?;
    Ok(role)
}

/// A page of the agency's custom roles. Route: `roles.read` on the agency.
pub async fn list(
    store: &dyn Store,
    auth: &Authorized,
    page: &PageRequest,
) -> Result<Page<Role>, ApiError> {
    Ok(store.list_roles(&auth.scope()?, page).await?)
}

/// One custom role. Route: `roles.read` on the agency.
pub async fn get(store: &dyn Store, auth: &Authorized, id: &RoleId) -> Result<Role, ApiError> {
    Ok(store.get_role(&auth.scope()?, id).await?)
}

/// Refuses a change to a role that would change what its holders hold, unless the caller holds
/// everything each holder holds (I2): narrowing or deleting a role bound to someone stronger
/// strips them, as removing their binding would.
async fn require_dominates_holders(
    s: &Services,
    auth: &Authorized,
    scope: &TenantScope,
    id: &RoleId,
    action: AuditAction,
) -> Result<(), ApiError> {
    // The agency's index knows every binding: no store scan, whatever the agency's size.
    let entry = s
        .engine
        .entry(
            &auth.agency,
            auth.caller.is_platform && auth.agency == auth.caller.agency,
            None,
        )
        .await?;
    let holders = entry.index.holders_of(id.as_str());
    for principal in &holders {
        let target = Target::principal(s, scope, principal).await?;
        auth.require_dominates(s, &target, action).await?;
    }
    Ok(())
}

/// Changes a custom role. Route: `roles.write` on the agency. Further (I2): every new
/// permission is held by the caller, and, when the permissions change, the caller
/// `require_dominates` each holder of the role.
pub async fn update(
    s: &Services,
    auth: &Authorized,
    id: &RoleId,
    input: UpdateRole,
) -> Result<Role, ApiError> {
    let scope = auth.scope()?;
    if input.permissions.is_some() {
        s.store.get_role(&scope, id).await?;
        require_dominates_holders(s, auth, &scope, id, AuditAction::RoleUpdate).await?;
    }
    let patch = RolePatch {
        name: input
            .name
            .as_deref()
            .map(|n| validate::name("name", n))
            .transpose()?,
        description: input
            .description
            .map(|d| d.trim().chars().take(1000).collect()),
        permissions: match &input.permissions {
            Some(p) => Some(check_permissions(s, auth, AuditAction::RoleUpdate, p).await?),
            None => None,
        },
    };
    let audit = auth.audit(
        s,
        AuditAction::RoleUpdate,
        Some(id.as_str()),
        json!({ "name": patch.name, "permissions": patch.permissions }),
    );
    Ok(s.store
        .update_role(&scope, id, &patch, s.clock.now(), &audit)
        .await?)
}

/// Deletes a custom role. Route: `roles.write` on the agency. A role still bound is a 409
/// (`role_in_use`, with the count) unless `remove_bindings`, which removes them too and needs
/// the caller to `require_dominates` each holder (I2).
pub async fn remove(
    s: &Services,
    auth: &Authorized,
    id: &RoleId,
    remove_bindings: bool,
) -> Result<(), ApiError> {
    let scope = auth.scope()?;
    if remove_bindings {
        s.store.get_role(&scope, id).await?;
        require_dominates_holders(s, auth, &scope, id, AuditAction::RoleDelete).await?;
    }
    let audit = auth.audit(
        s,
        AuditAction::RoleDelete,
        Some(id.as_str()),
        json!({ "remove_bindings": remove_bindings }),
    );
    match s
        .store
        .delete_role(&scope, id, remove_bindings, s.clock.now(), &audit)
        .await
    {
        Ok(_) => Ok(()),
        Err(StoreError::Conflict { constraint }) if constraint == "role_in_use" => {
            let n = s.store.count_role_bindings(&scope, id).await?;
            Err(ApiError::new(ErrorCode::Conflict, format!("the role is still bound {n} time(s); delete with `?remove_bindings=true` to remove those bindings too"))
                .with_extra(json!({ "constraint": "role_in_use", "bindings": n })))
        }
        Err(e) => Err(e.into()),
    }
}
