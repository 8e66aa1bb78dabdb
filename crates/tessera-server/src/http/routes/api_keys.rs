//! API keys: `api_keys.write` / `api_keys.read` at the key's scope (the agency, or the one
//! account it is bound to). A key's scopes must be within what its creator holds there (I2);
//! its secret is shown once and stored only as a keyed hash (I4).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_core::time::parse_rfc3339;
use tessera_core::{AccountId, KeyId};
use tessera_store::{ApiKey, SecretHashRecord, StoreError, TenantScope};

use super::validate;
use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
use crate::gate::dominates::Target;
use crate::http::extract::{parse_id, Json, ListQuery};
use crate::http::list::List;
use crate::http::state::AppState;
use crate::services::Services;

/// The longest grace period a rotation may keep the old secret valid: 7 days.
pub const MAX_GRACE_SECONDS: u64 = 7 * 24 * 3600;
/// The grace period when none is given: 1 hour.
pub const DEFAULT_GRACE_SECONDS: u64 = 3600;

/// `POST /v1/agencies/{agy}/api-keys`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A label.
    #[schemars(extend("minLength" = 1, "maxLength" = 200, "pattern" = super::validate::NAME_PATTERN))]
    pub name: String,
    /// Catalog scopes; the key can do at most what they allow. An empty list makes a key that
    /// holds nothing until a role is bound to it.
    pub scopes: Vec<String>,
    /// Bind the key to one account.
    pub account: Option<AccountId>,
    /// RFC 3339 time after which the key stops working.
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: Option<String>,
}

/// `POST …/api-keys/{key}/rotate`; the body may be empty.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// How long the old secret keeps working (0 to 604800 seconds, default 3600).
    #[schemars(extend("maximum" = 604800))]
    pub grace_seconds: Option<u64>,
}

/// A key with its secret: returned once, at creation and rotation.
#[derive(Serialize, JsonSchema)]
pub struct KeyWithSecret {
    /// The key.
    #[serde(flatten)]
    pub key: ApiKey,
    /// The secret: store it now, it is never shown again.
    pub secret: String,
}

impl std::fmt::Debug for KeyWithSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyWithSecret")
            .field("key", &self.key)
            .field("secret", &"[redacted]")
            .finish()
    }
}

fn new_secret(s: &Services) -> (tessera_token::SecretString, SecretHashRecord) {
    let secret = tessera_token::generate_api_key_os();
    let hash = s.pepper.hash(secret.expose().as_bytes());
    (
        secret,
        SecretHashRecord {
            hash: hash.as_bytes().to_vec(),
            pepper_version: i64::from(s.pepper.version()),
        },
    )
}

/// Requires `api_keys.write` at the key's scope, and every permission of its scopes there.
pub async fn create(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<CreateKey>,
) -> Result<(StatusCode, axum::Json<KeyWithSecret>), ApiError> {
    let scope = auth.require_at(&s, body.account.as_ref()).await?;
    let name = validate::name("name", &body.name)?;
    let mut scopes = body.scopes;
    scopes.sort();
    scopes.dedup();
    let permissions = s.catalog.scopes_permissions(&scopes).map_err(|unknown| {
        ApiError::invalid(format!("unknown scopes: {}", unknown.join(", ")))
            .with_extra(json!({ "unknown_scopes": unknown }))
    })?;
    let now = s.clock.now();
    let expires_at = match &body.expires_at {
        None => None,
        Some(t) => {
            let at = parse_rfc3339(t).ok_or_else(|| {
                ApiError::invalid(
                    "`expires_at` must be an RFC 3339 time, such as 2030-01-01T00:00:00Z",
                )
            })?;
            if at <= now {
                return Err(ApiError::invalid("`expires_at` must be in the future"));
            }
            Some(at)
        }
    };
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
    let missing = permissions.difference(&auth.effective(&s, body.account.as_ref()).await?);
    if !missing.is_empty() {
        return Err(auth
            .deny_missing(&s, "api_key.create", s.catalog.permission_names(&missing))
            .await
            .into());
    }
    let (secret, hash) = new_secret(&s);
    let key = ApiKey {
        id: KeyId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng()),
        agency_id: auth.agency.clone(),
        name,
        account: body.account,
        scopes,
        created_by: auth.caller.principal.to_string(),
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
        rotated_at: None,
    };
    let detail = json!({ "name": key.name, "scopes": key.scopes, "account": key.account, "expires_at": key.expires_at });
    let audit = auth.audit(&s, "api_key.create", Some(key.id.as_str()), detail);
    s.store
        .create_api_key(&scope, &key, &hash, &[], &audit)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(KeyWithSecret {
            key,
            secret: secret.expose().to_owned(),
        }),
    ))
}

/// Requires `api_keys.read` on the agency.
pub async fn list(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<ApiKey>>, ApiError> {
    q.cursor_as::<KeyId>()?;
    Ok(axum::Json(
        s.store
            .list_api_keys(&auth.scope()?, &q.page())
            .await?
            .into(),
    ))
}

async fn load(
    s: &Services,
    auth: &Authorized,
    key: &str,
) -> Result<(ApiKey, TenantScope), ApiError> {
    let id: KeyId = parse_id(key)?;
    let key = s.store.get_api_key(&auth.gate_scope(), &id).await?;
    let scope = auth.require_at(s, key.account.as_ref()).await?;
    Ok((key, scope))
}

/// Requires `api_keys.read` at the key's scope.
pub async fn get(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, key)): Path<(String, String)>,
) -> Result<axum::Json<ApiKey>, ApiError> {
    Ok(axum::Json(load(&s, &auth, &key).await?.0))
}

/// Requires `api_keys.write` at the key's scope, and every permission the key holds (I2).
/// Takes effect on the next request.
pub async fn revoke(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (key, scope) = load(&s, &auth, &key).await?;
    auth.require_dominates(&s, &Target::key(&s, &key), "api_key.revoke")
        .await?;
    let audit = auth.audit(
        &s,
        "api_key.revoke",
        Some(key.id.as_str()),
        json!({ "name": key.name }),
    );
    s.store
        .revoke_api_key(&scope, &key.id, s.clock.now(), &audit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Requires `api_keys.write` at the key's scope, and every permission the key holds: the new
/// secret is the key's whole power, so only someone who holds it all may receive it (I2).
pub async fn rotate(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, key)): Path<(String, String)>,
    body: Bytes,
) -> Result<axum::Json<KeyWithSecret>, ApiError> {
    let body: RotateKey = if body.iter().all(u8::is_ascii_whitespace) {
        RotateKey::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("invalid body: {e}")))?
    };
    let grace = body.grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    if grace > MAX_GRACE_SECONDS {
        return Err(ApiError::invalid(format!(
            "`grace_seconds` must be at most {MAX_GRACE_SECONDS}"
        )));
    }
    let (key, scope) = load(&s, &auth, &key).await?;
    auth.require_dominates(&s, &Target::key(&s, &key), "api_key.rotate")
        .await?;
    if key.revoked_at.is_some() {
        return Err(ApiError::new(
            crate::error::ErrorCode::Conflict,
            "a revoked key cannot be rotated",
        ));
    }
    let now = s.clock.now();
    let (secret, hash) = new_secret(&s);
    let until = now + i64::try_from(grace * 1000).unwrap_or(i64::MAX);
    let audit = auth.audit(
        &s,
        "api_key.rotate",
        Some(key.id.as_str()),
        json!({ "grace_seconds": grace }),
    );
    let key = s
        .store
        .rotate_api_key(&scope, &key.id, &hash, until, now, &audit)
        .await?;
    Ok(axum::Json(KeyWithSecret {
        key,
        secret: secret.expose().to_owned(),
    }))
}
