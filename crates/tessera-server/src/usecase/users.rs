//! Users of an agency. Passwords are hashed with argon2id (OWASP parameters) on the bounded
//! password pool and never returned; a weak one is a 400, a full pool a 503 with `Retry-After`.
//! INVARIANT (I2): whoever changes or deletes a user holds everything that user holds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_core::UserId;
use tessera_store::{NewUser, Page, PageRequest, Status, Store, User, UserPatch};

use super::validate;
use crate::audit::action::AuditAction;
use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
use crate::gate::dominates::Target;
use crate::passwords::PasswordPool;
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

/// Checks the password policy and hashes on the bounded pool (503 with `Retry-After` if busy).
async fn hash_password(pool: &PasswordPool, password: &str) -> Result<String, ApiError> {
    tessera_token::check_password_policy(password)
        .map_err(|e| ApiError::invalid(format!("`password`: {e}")))?;
    let password = tessera_token::SecretString::new(password.to_owned());
    // argon2id takes tens of milliseconds and 19 MiB: the bounded pool runs it, or says busy.
    pool.run(move || tessera_token::hash_password_os(password.expose()))
        .await
        .map_err(|busy| {
            let mut e = ApiError::new(ErrorCode::Unavailable, busy.to_string());
            e.retry_after = Some(1);
            e
        })?
        .map_err(ApiError::internal)
}

/// Creates a user. Route: `users.create` on the agency. Checks email, name and password.
pub async fn create(s: &Services, auth: &Authorized, input: CreateUser) -> Result<User, ApiError> {
    let scope = auth.scope()?;
    let email = validate::email(&input.email)?;
    let name = validate::name("name", &input.name)?;
    let password_hash = match &input.password {
        Some(p) => Some(hash_password(&s.passwords, p).await?),
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
    // The new person's key, made before the record about them is sealed (the gate could not
    // load it: the id did not exist). Should the creation fail, the key names no one.
    if let Err(e) = s
        .data_keys
        .person_key(&scope, user.id.as_str(), true, now)
        .await
    {
        tracing::warn!(error = %e, "no person key for a new user");
    }
    let audit = auth.audit(
        s,
        AuditAction::UserCreate,
        Some(user.id.as_str()),
        json!({ "email": user.email }),
    );
    Ok(s.store.create_user(&scope, &user, &audit).await?)
}

/// A page of the agency's users. Route: `users.read` on the agency.
pub async fn list(
    store: &dyn Store,
    auth: &Authorized,
    page: &PageRequest,
) -> Result<Page<User>, ApiError> {
    Ok(store.list_users(&auth.scope()?, page).await?)
}

/// One user. Route: `users.read` on the agency.
pub async fn get(store: &dyn Store, auth: &Authorized, id: &UserId) -> Result<User, ApiError> {
    Ok(store.get_user(&auth.scope()?, id).await?)
}

/// Changes a user's email, name, password or status. Route: `users.update` on the agency.
/// Further: `require_dominates` the user (I2): whoever sets a user's password, email or status
/// can become or silence that user. A missing user is the 404 before the privilege check.
pub async fn update(
    s: &Services,
    auth: &Authorized,
    id: &UserId,
    input: UpdateUser,
) -> Result<User, ApiError> {
    let scope = auth.scope()?;
    // Not found first (the same 404 as another tenant's user), then the privilege check.
    s.store.get_user(&scope, id).await?;
    auth.require_dominates(s, &Target::user(id), AuditAction::UserUpdate)
        .await?;
    let patch = UserPatch {
        email: input.email.as_deref().map(validate::email).transpose()?,
        name: input
            .name
            .as_deref()
            .map(|n| validate::name("name", n))
            .transpose()?,
        status: input.status.map(|s| match s {
            UserStatus::Active => Status::Active,
            UserStatus::Disabled => Status::Disabled,
        }),
        password_hash: match &input.password {
            Some(p) => Some(hash_password(&s.passwords, p).await?),
            None => None,
        },
    };
    let detail = json!({
        "email": patch.email, "name": patch.name, "status": patch.status.map(Status::as_str),
        "password_changed": patch.password_hash.is_some(),
    });
    let audit = auth.audit(s, AuditAction::UserUpdate, Some(id.as_str()), detail);
    Ok(s.store
        .update_user(&scope, id, &patch, s.clock.now(), &audit)
        .await?)
}

/// Deletes a user and their bindings. Route: `users.delete` on the agency. Further:
/// `require_dominates` the user (I2).
pub async fn remove(s: &Services, auth: &Authorized, id: &UserId) -> Result<(), ApiError> {
    s.store.get_user(&auth.scope()?, id).await?;
    auth.require_dominates(s, &Target::user(id), AuditAction::UserDelete)
        .await?;
    let audit = auth.audit(s, AuditAction::UserDelete, Some(id.as_str()), json!({}));
    s.store
        .delete_user(&auth.scope()?, id, s.clock.now(), &audit)
        .await?;
    Ok(())
}

/// What erasing a person did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UserErased {
    /// The user (`usr_…`).
    pub id: String,
    /// Always `true`: the person's personal data in audit events is unreadable from now on,
    /// and later events about them are stored erased.
    pub erased: bool,
    /// Whether a key was destroyed by this call (`false`: erased before, or no event about the
    /// user held personal data). Repeating the call is harmless.
    pub key_destroyed: bool,
}

/// Erases a person's personal data in the agency's audit events (crypto-shredding): their
/// person key is destroyed and a tombstone keeps a new one from being made. Route:
/// `users.erase` on the agency. Further: the user is the agency's (a live user, or one whose
/// key or tombstone the agency holds: a deleted user can be erased), else 404; a live user
/// must be dominated by the caller (I2). Idempotent.
pub async fn erase(s: &Services, auth: &Authorized, id: &UserId) -> Result<UserErased, ApiError> {
    let scope = auth.scope()?;
    match s.store.get_user(&scope, id).await {
        Ok(_) => {
            auth.require_dominates(s, &Target::user(id), AuditAction::UserErase)
                .await?;
        }
        Err(tessera_store::StoreError::NotFound) => {
            let known = s
                .store
                .person_key(&scope, id.as_str())
                .await
                .map_err(ApiError::from)?;
            if known.is_none() {
                return Err(ApiError::not_found());
            }
        }
        Err(e) => return Err(e.into()),
    }
    let now = s.clock.now();
    // Built (and sealed) before the key goes: its client address and agent, the only personal
    // fields it has, are then unreadable with the rest.
    let record = auth.audit(s, AuditAction::UserErase, Some(id.as_str()), json!({}));
    let key_destroyed = s
        .data_keys
        .erase_person(&scope, id.as_str(), now)
        .await
        .map_err(ApiError::internal)?;
    let mut record = record;
    if let Some(d) = record.detail.as_object_mut() {
        d.insert("key_destroyed".into(), json!(key_destroyed));
    }
    s.audit.append(scope, record).await?;
    Ok(UserErased {
        id: id.as_str().to_owned(),
        erased: true,
        key_destroyed,
    })
}
