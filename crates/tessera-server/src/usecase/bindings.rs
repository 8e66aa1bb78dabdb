//! Role bindings: a principal of the agency holds a role agency-wide or on one account.
//! INVARIANT (I2): nobody grants a role whose permissions they lack at the binding's scope,
//! and nobody removes a binding of a principal holding more than they do.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tessera_core::{AccountId, BindingId, Level, PrincipalId, RoleId};
use tessera_store::{Binding, Page, PageRequest, Store, StoreError, TenantScope};

use crate::audit::action::AuditAction;
use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
use crate::gate::dominates::Target;
use crate::services::Services;

/// `POST /v1/agencies/{agy}/bindings`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBinding {
    /// A `usr_` or `key_` id of this agency.
    pub principal: PrincipalId,
    /// A built-in role's name (`agency_admin`, `account_user`, …) or a custom role's id.
    pub role: String,
    /// Omit for an agency-wide binding (it covers every account).
    pub account: Option<AccountId>,
}

/// Whether a principal exists (and can hold roles) in the agency.
async fn principal_exists(
    store: &dyn Store,
    scope: &TenantScope,
    p: &PrincipalId,
) -> Result<bool, ApiError> {
    let r = match p {
        PrincipalId::User(u) => store.get_user(scope, u).await.map(|_| true),
        PrincipalId::Key(k) => store
            .get_api_key(scope, k)
            .await
            .map(|k| k.revoked_at.is_none()),
        // Installations hold their consented scopes, never roles.
        PrincipalId::Installation(_) => Ok(false),
    };
    match r {
        Ok(v) => Ok(v),
        Err(StoreError::NotFound) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Grants a role. Route: `bindings.write`, checked here at the binding's scope (the agency, or
/// `account`). Further: a platform role only in the platform tenant, an agency-level role only
/// agency-wide, the account and principal exist, and (I2) the caller holds every permission of
/// the role there.
pub async fn create(
    s: &Services,
    auth: &Authorized,
    input: CreateBinding,
) -> Result<Binding, ApiError> {
    let scope = auth.require_at(s, input.account.as_ref()).await?;
    let (level, permissions) = match input.role.parse::<RoleId>() {
        // A custom role may be bound agency-wide or on one account, like an account-level role.
        Ok(id) => match s.store.get_role(&scope, &id).await {
            Ok(role) => (Level::Account, s.engine.role_permissions(&role.permissions)),
            Err(StoreError::NotFound) => {
                return Err(ApiError::new(
                    ErrorCode::NotFound,
                    format!("no role `{}` in this agency", input.role),
                ))
            }
            Err(e) => return Err(e.into()),
        },
        Err(_) => s
            .catalog
            .role(&input.role)
            .ok_or_else(|| ApiError::invalid(format!("unknown role `{}`", input.role)))?,
    };
    match level {
        Level::Platform if !(auth.caller.is_platform && auth.agency == auth.caller.agency) => {
            return Err(ApiError::invalid(format!(
                "`{}` is a platform role: it can only be bound in the platform tenant",
                input.role
            )));
        }
        Level::Agency if input.account.is_some() => {
            return Err(ApiError::invalid(format!(
                "`{}` is an agency-level role: bind it without `account`",
                input.role
            )));
        }
        _ => {}
    }
    if let Some(acc) = &input.account {
        match s.store.get_account(&scope, acc).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => {
                return Err(ApiError::new(
                    ErrorCode::NotFound,
                    "`account` names no account of this agency",
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !principal_exists(s.store.as_ref(), &scope, &input.principal).await? {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "`principal` names no active user or key of this agency",
        ));
    }
    let missing = permissions.difference(&auth.effective(s, input.account.as_ref()).await?);
    if !missing.is_empty() {
        return Err(auth
            .deny_missing(
                s,
                AuditAction::BindingCreate,
                s.catalog.permission_names(&missing),
            )
            .await
            .into());
    }
    let now = s.clock.now();
    let binding = Binding {
        id: BindingId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng()),
        agency_id: auth.agency.clone(),
        principal: input.principal,
        role: input.role,
        account: input.account,
        created_by: auth.caller.principal.to_string(),
        created_at: now,
    };
    let detail =
        json!({ "principal": binding.principal, "role": binding.role, "account": binding.account });
    let audit = auth.audit(
        s,
        AuditAction::BindingCreate,
        Some(binding.id.as_str()),
        detail,
    );
    s.store.create_binding(&scope, &binding, &audit).await?;
    Ok(binding)
}

/// A page of the agency's bindings, of one principal if given. Route: `bindings.read` on the
/// agency.
pub async fn list(
    store: &dyn Store,
    auth: &Authorized,
    principal: Option<&PrincipalId>,
    page: &PageRequest,
) -> Result<Page<Binding>, ApiError> {
    Ok(store.list_bindings(&auth.scope()?, principal, page).await?)
}

/// Loads a binding in the gate's tenant, then checks the route's permission at its scope.
async fn load(
    s: &Services,
    auth: &Authorized,
    id: &BindingId,
) -> Result<(Binding, TenantScope), ApiError> {
    let binding = s.store.get_binding(&auth.gate_scope(), id).await?;
    let scope = auth.require_at(s, binding.account.as_ref()).await?;
    Ok((binding, scope))
}

/// One binding. Route: `bindings.read`, checked here at the binding's scope.
pub async fn get(s: &Services, auth: &Authorized, id: &BindingId) -> Result<Binding, ApiError> {
    Ok(load(s, auth, id).await?.0)
}

/// Removes a binding. Route: `bindings.write`, checked here at the binding's scope. Further:
/// `require_dominates` its principal: nobody strips the roles of someone more privileged (I2).
pub async fn remove(s: &Services, auth: &Authorized, id: &BindingId) -> Result<(), ApiError> {
    let (binding, scope) = load(s, auth, id).await?;
    let target = Target::principal(s, &scope, &binding.principal).await?;
    auth.require_dominates(s, &target, AuditAction::BindingDelete)
        .await?;
    let detail =
        json!({ "principal": binding.principal, "role": binding.role, "account": binding.account });
    let audit = auth.audit(
        s,
        AuditAction::BindingDelete,
        Some(binding.id.as_str()),
        detail,
    );
    s.store
        .delete_binding(&scope, &binding.id, s.clock.now(), &audit)
        .await?;
    Ok(())
}
