//! Role bindings: `bindings.write` / `bindings.read` at the binding's scope (the agency, or
//! the one account it covers). Nobody grants a role whose permissions they lack there (I2).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tessera_core::{AccountId, BindingId, Level, PrincipalId, RoleId};
use tessera_store::{Binding, StoreError, TenantScope};

use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
use crate::gate::dominates::Target;
use crate::http::extract::{parse_id, Json, ListQuery};
use crate::http::list::List;
use crate::http::state::AppState;
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
    s: &Services,
    scope: &TenantScope,
    p: &PrincipalId,
) -> Result<bool, ApiError> {
    let r = match p {
        PrincipalId::User(u) => s.store.get_user(scope, u).await.map(|_| true),
        PrincipalId::Key(k) => s
            .store
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

/// Requires `bindings.write` at the binding's scope, and every permission of the role there.
pub async fn create(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<CreateBinding>,
) -> Result<(StatusCode, axum::Json<Binding>), ApiError> {
    let scope = auth.require_at(&s, body.account.as_ref()).await?;
    let (level, permissions) = match body.role.parse::<RoleId>() {
        // A custom role may be bound agency-wide or on one account, like an account-level role.
        Ok(id) => match s.store.get_role(&scope, &id).await {
            Ok(role) => (Level::Account, s.engine.role_permissions(&role.permissions)),
            Err(StoreError::NotFound) => {
                return Err(ApiError::new(
                    ErrorCode::NotFound,
                    format!("no role `{}` in this agency", body.role),
                ))
            }
            Err(e) => return Err(e.into()),
        },
        Err(_) => s
            .catalog
            .role(&body.role)
            .ok_or_else(|| ApiError::invalid(format!("unknown role `{}`", body.role)))?,
    };
    match level {
        Level::Platform if !(auth.caller.is_platform && auth.agency == auth.caller.agency) => {
            return Err(ApiError::invalid(format!(
                "`{}` is a platform role: it can only be bound in the platform tenant",
                body.role
            )));
        }
        Level::Agency if body.account.is_some() => {
            return Err(ApiError::invalid(format!(
                "`{}` is an agency-level role: bind it without `account`",
                body.role
            )));
        }
        _ => {}
    }
    if let Some(acc) = &body.account {
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
    if !principal_exists(&s, &scope, &body.principal).await? {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "`principal` names no active user or key of this agency",
        ));
    }
    let missing = permissions.difference(&auth.effective(&s, body.account.as_ref()).await?);
    if !missing.is_empty() {
        return Err(auth
            .deny_missing(&s, "binding.create", s.catalog.permission_names(&missing))
            .await
            .into());
    }
    let now = s.clock.now();
    let binding = Binding {
        id: BindingId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng()),
        agency_id: auth.agency.clone(),
        principal: body.principal,
        role: body.role,
        account: body.account,
        created_by: auth.caller.principal.to_string(),
        created_at: now,
    };
    let detail =
        json!({ "principal": binding.principal, "role": binding.role, "account": binding.account });
    let audit = auth.audit(&s, "binding.create", Some(binding.id.as_str()), detail);
    s.store.create_binding(&scope, &binding, &audit).await?;
    Ok((StatusCode::CREATED, axum::Json(binding)))
}

/// Requires `bindings.read` on the agency.
pub async fn list(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<Binding>>, ApiError> {
    q.cursor_as::<BindingId>()?;
    let principal = q
        .get("principal")
        .map(parse_id::<PrincipalId>)
        .transpose()?;
    if let Some((k, _)) = q.rest.iter().find(|(k, _)| k != "principal") {
        return Err(ApiError::invalid(format!("unknown query parameter `{k}`")));
    }
    Ok(axum::Json(
        s.store
            .list_bindings(&auth.scope()?, principal.as_ref(), &q.page())
            .await?
            .into(),
    ))
}

async fn load(
    s: &Services,
    auth: &Authorized,
    bnd: &str,
) -> Result<(Binding, TenantScope), ApiError> {
    let id: BindingId = parse_id(bnd)?;
    let binding = s.store.get_binding(&auth.gate_scope(), &id).await?;
    let scope = auth.require_at(s, binding.account.as_ref()).await?;
    Ok((binding, scope))
}

/// Requires `bindings.read` at the binding's scope.
pub async fn get(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, bnd)): Path<(String, String)>,
) -> Result<axum::Json<Binding>, ApiError> {
    Ok(axum::Json(load(&s, &auth, &bnd).await?.0))
}

/// Requires `bindings.write` at the binding's scope, and every permission its principal
/// holds: nobody strips the roles of someone more privileged than themselves (I2).
pub async fn remove(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, bnd)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (binding, scope) = load(&s, &auth, &bnd).await?;
    let target = Target::principal(&s, &scope, &binding.principal).await?;
    auth.require_dominates(&s, &target, "binding.delete")
        .await?;
    let detail =
        json!({ "principal": binding.principal, "role": binding.role, "account": binding.account });
    let audit = auth.audit(&s, "binding.delete", Some(binding.id.as_str()), detail);
    s.store
        .delete_binding(&scope, &binding.id, s.clock.now(), &audit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
