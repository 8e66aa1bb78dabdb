//! Users of an agency: `users.create`/`read`/`update`/`delete` on the agency. Passwords are
//! hashed with argon2id (OWASP parameters) and never returned; a weak one is a 400.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tessera_core::UserId;
use tessera_store::{NewUser, Status, User, UserPatch};

use super::validate;
use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
use crate::gate::dominates::Target;
use crate::http::extract::{parse_id, Json, ListQuery};
use crate::http::list::List;
use crate::http::state::AppState;
use crate::services::Services;

/// `POST /v1/agencies/{agy}/users`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Sign-in email, unique in the agency (case-insensitively).
    #[schemars(extend("maxLength" = 254, "pattern" = super::validate::EMAIL_PATTERN))]
    pub email: String,
    /// Display name.
    #[schemars(extend("minLength" = 1, "maxLength" = 200, "pattern" = super::validate::NAME_PATTERN))]
    pub name: String,
    /// At least 12 characters; omit to create a user who cannot sign in with a password yet.
    #[schemars(extend("minLength" = 12, "maxLength" = 256, "pattern" = super::validate::NO_NUL_PATTERN))]
    pub password: Option<String>,
}

impl std::fmt::Debug for CreateUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUser")
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// The states a user can be put in.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// Can sign in and act.
    Active,
    /// Cannot.
    Disabled,
}

/// `PATCH /v1/agencies/{agy}/users/{usr}`: only the fields given change.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// New email.
    #[schemars(extend("maxLength" = 254, "pattern" = super::validate::EMAIL_PATTERN))]
    pub email: Option<String>,
    /// New name.
    #[schemars(extend("minLength" = 1, "maxLength" = 200, "pattern" = super::validate::NAME_PATTERN))]
    pub name: Option<String>,
    /// New password.
    #[schemars(extend("minLength" = 12, "maxLength" = 256, "pattern" = super::validate::NO_NUL_PATTERN))]
    pub password: Option<String>,
    /// `active` or `disabled`.
    pub status: Option<UserStatus>,
}

impl std::fmt::Debug for UpdateUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateUser")
            .field("email", &self.email)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

async fn hash_password(s: &Services, password: &str) -> Result<String, ApiError> {
    tessera_token::check_password_policy(password)
        .map_err(|e| ApiError::invalid(format!("`password`: {e}")))?;
    let password = tessera_token::SecretString::new(password.to_owned());
    // argon2id takes tens of milliseconds and 19 MiB: the bounded pool runs it, or says busy.
    s.passwords
        .run(move || tessera_token::hash_password_os(password.expose()))
        .await
        .map_err(|busy| {
            let mut e = ApiError::new(ErrorCode::Unavailable, busy.to_string());
            e.retry_after = Some(1);
            e
        })?
        .map_err(ApiError::internal)
}

/// Requires `users.create` on the agency.
pub async fn create(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<CreateUser>,
) -> Result<(StatusCode, axum::Json<User>), ApiError> {
    let scope = auth.scope()?;
    let email = validate::email(&body.email)?;
    let name = validate::name("name", &body.name)?;
    let password_hash = match &body.password {
        Some(p) => Some(hash_password(&s, p).await?),
        None => None,
    };
    let now = s.clock.now();
    let user = NewUser {
        id: UserId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng()),
        email,
        name,
        password_hash,
        now,
    };
    let audit = auth.audit(
        &s,
        "user.create",
        Some(user.id.as_str()),
        json!({ "email": user.email }),
    );
    let user = s.store.create_user(&scope, &user, &audit).await?;
    Ok((StatusCode::CREATED, axum::Json(user)))
}

/// Requires `users.read` on the agency.
pub async fn list(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<User>>, ApiError> {
    q.cursor_as::<UserId>()?;
    Ok(axum::Json(
        s.store.list_users(&auth.scope()?, &q.page()).await?.into(),
    ))
}

/// Requires `users.read` on the agency.
pub async fn get(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, usr)): Path<(String, String)>,
) -> Result<axum::Json<User>, ApiError> {
    let id: UserId = parse_id(&usr)?;
    Ok(axum::Json(s.store.get_user(&auth.scope()?, &id).await?))
}

/// Requires `users.update` on the agency, and every permission the user holds anywhere in
/// it: whoever sets a user's password, email or status can become or silence that user (I2).
pub async fn update(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, usr)): Path<(String, String)>,
    Json(body): Json<UpdateUser>,
) -> Result<axum::Json<User>, ApiError> {
    let id: UserId = parse_id(&usr)?;
    let scope = auth.scope()?;
    // Not found first (the same 404 as another tenant's user), then the privilege check.
    s.store.get_user(&scope, &id).await?;
    auth.require_dominates(&s, &Target::user(&id), "user.update")
        .await?;
    let patch = UserPatch {
        email: body.email.as_deref().map(validate::email).transpose()?,
        name: body
            .name
            .as_deref()
            .map(|n| validate::name("name", n))
            .transpose()?,
        status: body.status.map(|s| match s {
            UserStatus::Active => Status::Active,
            UserStatus::Disabled => Status::Disabled,
        }),
        password_hash: match &body.password {
            Some(p) => Some(hash_password(&s, p).await?),
            None => None,
        },
    };
    let detail = json!({
        "email": patch.email, "name": patch.name, "status": patch.status.map(Status::as_str),
        "password_changed": patch.password_hash.is_some(),
    });
    let audit = auth.audit(&s, "user.update", Some(id.as_str()), detail);
    Ok(axum::Json(
        s.store
            .update_user(&scope, &id, &patch, s.clock.now(), &audit)
            .await?,
    ))
}

/// Requires `users.delete` on the agency, and every permission the user holds (I2).
pub async fn remove(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, usr)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id: UserId = parse_id(&usr)?;
    s.store.get_user(&auth.scope()?, &id).await?;
    auth.require_dominates(&s, &Target::user(&id), "user.delete")
        .await?;
    let audit = auth.audit(&s, "user.delete", Some(id.as_str()), json!({}));
    s.store
        .delete_user(&auth.scope()?, &id, s.clock.now(), &audit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
