//! Handlers of `/v1/agencies/{agy}/accounts[/{acc}]`: extract, call `usecase::accounts`,
//! answer. Their permissions are declared in the route table (`super::table`).

use axum::extract::State;
use axum::http::StatusCode;
use tessera_core::AccountId;
use tessera_store::Account;

use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::http::extract::{Json, ListQuery};
use crate::http::list::List;
use crate::http::state::AppState;
use crate::usecase::accounts::{self, CreateAccount, UpdateAccount};

/// `POST …/accounts`: `accounts.create` on the agency.
pub async fn create(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<CreateAccount>,
) -> Result<(StatusCode, axum::Json<Account>), ApiError> {
    let account = accounts::create(&s, &auth, body).await?;
    Ok((StatusCode::CREATED, axum::Json(account)))
}

/// `GET …/accounts`: `accounts.read` on the agency.
pub async fn list(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<Account>>, ApiError> {
    q.cursor_as::<AccountId>()?;
    let page = q.page();
    let (auth, page) = (&auth, &page);
    let items = crate::http::replica::read(&s, auth, |st| {
        Box::pin(async move { accounts::list(st.as_ref(), auth, page).await })
    })
    .await?;
    Ok(axum::Json(items.into()))
}

/// `GET …/accounts/{acc}`: `accounts.read` on the account.
pub async fn get(
    State(s): State<AppState>,
    auth: Authorized,
) -> Result<axum::Json<Account>, ApiError> {
    Ok(axum::Json(accounts::get(s.store.as_ref(), &auth).await?))
}

/// `PATCH …/accounts/{acc}`: `accounts.update` on the account.
pub async fn update(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<UpdateAccount>,
) -> Result<axum::Json<Account>, ApiError> {
    Ok(axum::Json(accounts::update(&s, &auth, body).await?))
}

/// `DELETE …/accounts/{acc}`: `accounts.delete` on the account.
pub async fn remove(State(s): State<AppState>, auth: Authorized) -> Result<StatusCode, ApiError> {
    accounts::remove(&s, &auth).await?;
    Ok(StatusCode::NO_CONTENT)
}
