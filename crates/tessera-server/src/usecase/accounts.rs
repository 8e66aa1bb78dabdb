//! Accounts of an agency: created and listed on the agency, read, renamed and deleted on the
//! account itself (the gate checked the account from the path). Each change is audited in the
//! same write; deleting an account removes its bindings and keys.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tessera_core::AccountId;
use tessera_store::{Account, Page, PageRequest, Store};

use super::validate;
use crate::audit::action::AuditAction;
use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::services::Services;

/// `POST /v1/agencies/{agy}/accounts`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// Display name, 1 to 200 characters.
    #[schemars(extend("minLength" = 1, "maxLength" = 200, "pattern" = super::validate::NAME_PATTERN))]
    pub name: String,
}

/// `PATCH /v1/agencies/{agy}/accounts/{acc}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    /// New display name.
    #[schemars(extend("minLength" = 1, "maxLength" = 200, "pattern" = super::validate::NAME_PATTERN))]
    pub name: String,
}

fn account_of(auth: &Authorized) -> Result<&AccountId, ApiError> {
    auth.account
        .as_ref()
        .ok_or_else(|| ApiError::internal("account route without `{acc}`"))
}

/// Creates an account. Route: `accounts.create` on the agency.
pub async fn create(
    s: &Services,
    auth: &Authorized,
    input: CreateAccount,
) -> Result<Account, ApiError> {
    let scope = auth.scope()?;
    let name = validate::name("name", &input.name)?;
    let now = s.clock.now();
    let account = Account {
        id: AccountId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng()),
        agency_id: auth.agency.clone(),
        name,
        status: tessera_store::Status::Active,
        suspended_reason: None,
        suspended_at: None,
        created_at: now,
        updated_at: now,
    };
    let audit = auth.audit(
        s,
        AuditAction::AccountCreate,
        Some(account.id.as_str()),
        json!({ "name": account.name }),
    );
    s.store.create_account(&scope, &account, &audit).await?;
    Ok(account)
}

/// A page of the agency's accounts. Route: `accounts.read` on the agency.
pub async fn list(
    store: &dyn Store,
    auth: &Authorized,
    page: &PageRequest,
) -> Result<Page<Account>, ApiError> {
    Ok(store.list_accounts(&auth.scope()?, page).await?)
}

/// The account acted on. Route: `accounts.read` on it.
pub async fn get(store: &dyn Store, auth: &Authorized) -> Result<Account, ApiError> {
    Ok(store.get_account(&auth.scope()?, account_of(auth)?).await?)
}

/// Renames the account acted on. Route: `accounts.update` on it.
pub async fn update(
    s: &Services,
    auth: &Authorized,
    input: UpdateAccount,
) -> Result<Account, ApiError> {
    let id = account_of(auth)?;
    let name = validate::name("name", &input.name)?;
    let audit = auth.audit(
        s,
        AuditAction::AccountUpdate,
        Some(id.as_str()),
        json!({ "name": name }),
    );
    Ok(s.store
        .update_account(&auth.scope()?, id, &name, s.clock.now(), &audit)
        .await?)
}

/// Deletes the account acted on, its bindings and its keys. Route: `accounts.delete` on it.
pub async fn remove(s: &Services, auth: &Authorized) -> Result<(), ApiError> {
    let id = account_of(auth)?;
    let audit = auth.audit(s, AuditAction::AccountDelete, Some(id.as_str()), json!({}));
    s.store
        .delete_account(&auth.scope()?, id, s.clock.now(), &audit)
        .await?;
    Ok(())
}
