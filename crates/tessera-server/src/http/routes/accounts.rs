//! Accounts of an agency: `accounts.create`/`accounts.read` on the agency for the collection,
//! and `accounts.read`/`update`/`delete` on the account itself for one account.

use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tessera_core::AccountId;
use tessera_store::Account;

use super::validate;
use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::http::extract::{Json, ListQuery};
use crate::http::list::List;
use crate::http::state::AppState;

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

/// Requires `accounts.create` on the agency.
pub async fn create(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<CreateAccount>,
) -> Result<(StatusCode, axum::Json<Account>), ApiError> {
    let scope = auth.scope()?;
    let name = validate::name("name", &body.name)?;
    let now = s.clock.now();
    let account = Account {
        id: AccountId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng()),
        agency_id: auth.agency.clone(),
        name,
        created_at: now,
        updated_at: now,
    };
    let audit = auth.audit(
        &s,
        "account.create",
        Some(account.id.as_str()),
        json!({ "name": account.name }),
    );
    s.store.create_account(&scope, &account, &audit).await?;
    Ok((StatusCode::CREATED, axum::Json(account)))
}

/// Requires `accounts.read` on the agency.
pub async fn list(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<Account>>, ApiError> {
    q.cursor_as::<AccountId>()?;
    Ok(axum::Json(
        s.store
            .list_accounts(&auth.scope()?, &q.page())
            .await?
            .into(),
    ))
}

/// Requires `accounts.read` on the account.
pub async fn get(
    State(s): State<AppState>,
    auth: Authorized,
) -> Result<axum::Json<Account>, ApiError> {
    Ok(axum::Json(
        s.store
            .get_account(&auth.scope()?, account_of(&auth)?)
            .await?,
    ))
}

/// Requires `accounts.update` on the account.
pub async fn update(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<UpdateAccount>,
) -> Result<axum::Json<Account>, ApiError> {
    let id = account_of(&auth)?;
    let name = validate::name("name", &body.name)?;
    let audit = auth.audit(
        &s,
        "account.update",
        Some(id.as_str()),
        json!({ "name": name }),
    );
    Ok(axum::Json(
        s.store
            .update_account(&auth.scope()?, id, &name, s.clock.now(), &audit)
            .await?,
    ))
}

/// Requires `accounts.delete` on the account.
pub async fn remove(State(s): State<AppState>, auth: Authorized) -> Result<StatusCode, ApiError> {
    let id = account_of(&auth)?;
    let audit = auth.audit(&s, "account.delete", Some(id.as_str()), json!({}));
    s.store
        .delete_account(&auth.scope()?, id, s.clock.now(), &audit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
