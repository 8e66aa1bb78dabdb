//! Handlers of `/v1/agencies/{agy}/suspend|reinstate`, `…/accounts/{acc}/suspend|reinstate`,
//! `…/apps/{app}/review` and `PATCH …/apps/{app}`: extract, call `usecase::suspension` or
//! `usecase::app_review`, answer. Their permissions are declared in the route table.

use axum::extract::{Path, State};
use tessera_core::AppId;
use tessera_store::{Account, Agency, App};

use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::http::extract::{parse_id, Json};
use crate::http::state::AppState;
use crate::usecase::app_review::{self, Review, UpdateApp};
use crate::usecase::suspension::{self, Reason};

/// `POST /v1/agencies/{agy}/suspend`: `agencies.suspend` (platform).
pub async fn suspend_agency(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<Reason>,
) -> Result<axum::Json<Agency>, ApiError> {
    Ok(axum::Json(
        suspension::agency(&s, &auth, &body, true).await?,
    ))
}

/// `POST /v1/agencies/{agy}/reinstate`: `agencies.suspend` (platform).
pub async fn reinstate_agency(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<Reason>,
) -> Result<axum::Json<Agency>, ApiError> {
    Ok(axum::Json(
        suspension::agency(&s, &auth, &body, false).await?,
    ))
}

/// `POST …/accounts/{acc}/suspend`: `accounts.suspend` on the account.
pub async fn suspend_account(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<Reason>,
) -> Result<axum::Json<Account>, ApiError> {
    Ok(axum::Json(
        suspension::account(&s, &auth, &body, true).await?,
    ))
}

/// `POST …/accounts/{acc}/reinstate`: `accounts.suspend` on the account.
pub async fn reinstate_account(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<Reason>,
) -> Result<axum::Json<Account>, ApiError> {
    Ok(axum::Json(
        suspension::account(&s, &auth, &body, false).await?,
    ))
}

/// `POST …/apps/{app}/review`: `apps.review` (platform).
pub async fn review_app(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, app)): Path<(String, String)>,
    Json(body): Json<Review>,
) -> Result<axum::Json<App>, ApiError> {
    let id: AppId = parse_id(&app)?;
    Ok(axum::Json(app_review::review(&s, &auth, &id, body).await?))
}

/// `PATCH …/apps/{app}`: `apps.write` on the agency (the use case adds I2 and review).
pub async fn update_app(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, app)): Path<(String, String)>,
    Json(body): Json<UpdateApp>,
) -> Result<axum::Json<App>, ApiError> {
    let id: AppId = parse_id(&app)?;
    Ok(axum::Json(app_review::update(&s, &auth, &id, body).await?))
}
