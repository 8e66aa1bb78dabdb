//! API keys of an agency, bound to the agency or one account. INVARIANT (I2): a key's scopes
//! are within what its creator holds at its scope, and only someone holding everything a key
//! holds revokes or rotates it. INVARIANT (I4): a secret is shown once and stored only as a
//! keyed hash.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_core::time::parse_rfc3339;
use tessera_core::{AccountId, KeyId};
use tessera_store::{ApiKey, Page, PageRequest, SecretHashRecord, Store, StoreError, TenantScope};
use tessera_token::Pepper;

use super::validate;
use crate::audit::action::AuditAction;
use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
use crate::gate::dominates::Target;
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
    /// The key's own rate limit, across every class it calls (replaces the default per-key
    /// limit); never above its agency's quota.
    pub rate_limit: Option<tessera_store::KeyRateLimit>,
}

/// `POST …/api-keys/{key}/rotate`; the body may be empty.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// How long the old secret keeps working (0 to 604800 seconds, default 3600).
    #[schemars(extend("maximum" = 604800))]
    pub grace_seconds: Option<u64>,
}

/// How long a rotated secret keeps working: at most `MAX_GRACE_SECONDS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grace(u64);

impl Grace {
    /// The grace asked for (`DEFAULT_GRACE_SECONDS` if none); 400 beyond the maximum.
    pub fn new(seconds: Option<u64>) -> Result<Self, ApiError> {
        let grace = seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
        if grace > MAX_GRACE_SECONDS {
            return Err(ApiError::invalid(format!(
                "`grace_seconds` must be at most {MAX_GRACE_SECONDS}"
            )));
        }
        Ok(Self(grace))
    }

    /// In seconds.
    pub fn seconds(self) -> u64 {
        self.0
    }

    /// The end of the grace, from `now` (epoch milliseconds).
    pub fn until(self, now: i64) -> i64 {
        now + i64::try_from(self.0 * 1000).unwrap_or(i64::MAX)
    }
}

impl RotateKey {
    /// The grace asked for, checked.
    pub fn grace(&self) -> Result<Grace, ApiError> {
        Grace::new(self.grace_seconds)
    }
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

fn new_secret(pepper: &Pepper) -> (tessera_token::SecretString, SecretHashRecord) {
    let secret = tessera_token::generate_api_key_os();
    let hash = pepper.hash(secret.expose().as_bytes());
    (
        secret,
        SecretHashRecord {
            hash: hash.as_bytes().to_vec(),
            pepper_version: i64::from(pepper.version()),
        },
    )
}

/// Issues an API key and its secret. Route: `api_keys.write`, checked here at the key's scope
/// (the agency, or `account`). Further: known scopes, a future `expires_at`, an existing
/// account, and (I2) every permission of its scopes held by the caller there.
pub async fn create(
    s: &Services,
    auth: &Authorized,
    input: CreateKey,
) -> Result<KeyWithSecret, ApiError> {
    let scope = auth.require_at(s, input.account.as_ref()).await?;
    let name = validate::name("name", &input.name)?;
    let mut scopes = input.scopes;
    scopes.sort();
    scopes.dedup();
    let permissions = s.catalog.scopes_permissions(&scopes).map_err(|unknown| {
        ApiError::invalid(format!("unknown scopes: {}", unknown.join(", ")))
            .with_extra(json!({ "unknown_scopes": unknown }))
    })?;
    let now = s.clock.now();
    let expires_at = match &input.expires_at {
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
    let missing = permissions.difference(&auth.effective(s, input.account.as_ref()).await?);
    if !missing.is_empty() {
        return Err(auth
            .deny_missing(
                s,
                AuditAction::ApiKeyCreate,
                s.catalog.permission_names(&missing),
            )
            .await
            .into());
    }
    let rate_limit = match input.rate_limit {
        None => None,
        Some(r) => Some(key_rate_limit(s, auth, r).await?),
    };
    let (secret, hash) = new_secret(&s.pepper.current());
    let key = ApiKey {
        rate_limit,
        id: KeyId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng()),
        agency_id: auth.agency.clone(),
        name,
        account: input.account,
        scopes,
        created_by: auth.caller.principal.to_string(),
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
        rotated_at: None,
    };
    let detail = json!({ "name": key.name, "scopes": key.scopes, "account": key.account, "expires_at": key.expires_at, "rate_limit": key.rate_limit });
    let audit = auth.audit(s, AuditAction::ApiKeyCreate, Some(key.id.as_str()), detail);
    s.store
        .create_api_key(&scope, &key, &hash, &[], &audit)
        .await?;
    Ok(KeyWithSecret {
        key,
        secret: secret.expose().to_owned(),
    })
}

/// A key's own limit: valid, and no faster than its agency's quota in any class that has one.
async fn key_rate_limit(
    s: &Services,
    auth: &Authorized,
    r: tessera_store::KeyRateLimit,
) -> Result<tessera_store::KeyRateLimit, ApiError> {
    let q = crate::ratelimit::Quota::new(r.limit, r.period_seconds).ok_or_else(|| {
        ApiError::invalid("`rate_limit` needs `limit` ≥ 1 and `period_seconds` 1 to 86400")
    })?;
    let limits = crate::gate::limit::agency_limits(s, &auth.agency).await;
    for class in crate::ratelimit::Class::ALL {
        if let Some(agency) =
            crate::ratelimit::plans::effective(&s.limiter.settings, limits.as_deref(), class)
        {
            if q.rate() > agency.rate() {
                return Err(ApiError::invalid(format!(
                    "`rate_limit` ({}/{} s) exceeds the agency's `{}` quota ({}/{} s)",
                    q.limit,
                    q.period_seconds,
                    class.name(),
                    agency.limit,
                    agency.period_seconds
                ))
                .with_extra(json!({ "agency_quota": { "class": class.name(), "limit": agency.limit, "period_seconds": agency.period_seconds } })));
            }
        }
    }
    Ok(r)
}

/// A page of the agency's keys (never their secrets). Route: `api_keys.read` on the agency.
pub async fn list(
    store: &dyn Store,
    auth: &Authorized,
    page: &PageRequest,
) -> Result<Page<ApiKey>, ApiError> {
    Ok(store.list_api_keys(&auth.scope()?, page).await?)
}

/// Loads a key in the gate's tenant, then checks the route's permission at its scope.
async fn load(
    s: &Services,
    auth: &Authorized,
    id: &KeyId,
) -> Result<(ApiKey, TenantScope), ApiError> {
    let key = s.store.get_api_key(&auth.gate_scope(), id).await?;
    let scope = auth.require_at(s, key.account.as_ref()).await?;
    Ok((key, scope))
}

/// One key. Route: `api_keys.read`, checked here at the key's scope.
pub async fn get(s: &Services, auth: &Authorized, id: &KeyId) -> Result<ApiKey, ApiError> {
    Ok(load(s, auth, id).await?.0)
}

/// Revokes a key, from the next request on. Route: `api_keys.write`, checked here at the key's
/// scope. Further: `require_dominates` the key (I2).
pub async fn revoke(s: &Services, auth: &Authorized, id: &KeyId) -> Result<(), ApiError> {
    let (key, scope) = load(s, auth, id).await?;
    auth.require_dominates(s, &Target::key(s, &key), AuditAction::ApiKeyRevoke)
        .await?;
    let audit = auth.audit(
        s,
        AuditAction::ApiKeyRevoke,
        Some(key.id.as_str()),
        json!({ "name": key.name }),
    );
    s.store
        .revoke_api_key(&scope, &key.id, s.clock.now(), &audit)
        .await?;
    Ok(())
}

/// Rotates a key: a new secret, the old one valid for `grace`. Route: `api_keys.write`, checked
/// here at the key's scope. Further: `require_dominates` the key, since the new secret is its
/// whole power (I2); a revoked key is a 409.
pub async fn rotate(
    s: &Services,
    auth: &Authorized,
    id: &KeyId,
    grace: Grace,
) -> Result<KeyWithSecret, ApiError> {
    let (key, scope) = load(s, auth, id).await?;
    auth.require_dominates(s, &Target::key(s, &key), AuditAction::ApiKeyRotate)
        .await?;
    if key.revoked_at.is_some() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "a revoked key cannot be rotated",
        ));
    }
    let now = s.clock.now();
    let (secret, hash) = new_secret(&s.pepper.current());
    let audit = auth.audit(
        s,
        AuditAction::ApiKeyRotate,
        Some(key.id.as_str()),
        json!({ "grace_seconds": grace.seconds() }),
    );
    let key = s
        .store
        .rotate_api_key(&scope, &key.id, &hash, grace.until(now), now, &audit)
        .await?;
    Ok(KeyWithSecret {
        key,
        secret: secret.expose().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_defaults_to_an_hour_and_is_at_most_a_week() {
        assert_eq!(Grace::new(None).unwrap().seconds(), DEFAULT_GRACE_SECONDS);
        assert_eq!(Grace::new(Some(0)).unwrap().until(5_000), 5_000);
        assert_eq!(
            Grace::new(Some(MAX_GRACE_SECONDS)).unwrap().until(0),
            7 * 24 * 3600 * 1000
        );
        let e = Grace::new(Some(MAX_GRACE_SECONDS + 1)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(RotateKey::default().grace().is_ok());
    }
}
