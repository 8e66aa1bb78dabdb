//! The platform's first start (run by `tessera serve`, no route): with an empty store, the
//! platform tenant, a platform-admin API key bound `platform_admin`, and their audit event,
//! committed in one write. INVARIANT: the secret is handed to `keep` before the commit and
//! never logged; when another node bootstrapped first, nothing of ours is valid.

use serde_json::json;
use tessera_core::{AgencyId, BindingId, EventId, KeyId, PrincipalId};
use tessera_store::{
    Agency, ApiKey, AuditRecord, Binding, Bootstrap, Outcome, SecretHashRecord, Status, Store,
    StoreError,
};
use tessera_token::{Pepper, SecretString};

use crate::audit::action::AuditAction;
use crate::clock::Clock;

/// Why the bootstrap failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The store failed before anything was kept.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The secret could not be kept.
    #[error(transparent)]
    Keep(#[from] std::io::Error),
    /// The secret was kept, then the commit failed: the kept secret is not valid.
    #[error(transparent)]
    Commit(StoreError),
}

/// What a bootstrap did.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrapped {
    /// The store already had a platform tenant: nothing was done, `keep` was not called.
    Already,
    /// This call created the platform tenant and its first admin key.
    Created,
    /// `keep` was called, but another node committed first: the kept secret is not valid.
    Lost,
}

/// Bootstraps an empty store: builds the platform tenant and its first admin key (scope
/// `platform.admin`, role `platform_admin`), hands the secret to `keep` (`key_file` names where
/// it is kept, for the audit event), then commits. Operator only: there is no route.
pub async fn bootstrap(
    store: &dyn Store,
    clock: &dyn Clock,
    pepper: &Pepper,
    key_file: &str,
    keep: impl FnOnce(&SecretString) -> std::io::Result<()>,
) -> Result<Bootstrapped, BootstrapError> {
    if store.platform_agency().await?.is_some() {
        return Ok(Bootstrapped::Already);
    }
    let now = clock.now();
    let ms = u64::try_from(now).unwrap_or(0);
    let rng = &mut rand::thread_rng();
    let platform = Agency {
        id: AgencyId::generate_at(ms, rng),
        name: "Platform".into(),
        status: Status::Active,
        suspended_reason: None,
        suspended_at: None,
        is_platform: true,
        created_at: now,
        updated_at: now,
    };
    let secret = tessera_token::generate_api_key_os();
    let hash = pepper.hash(secret.expose().as_bytes());
    let key = ApiKey {
        rate_limit: None,
        id: KeyId::generate_at(ms, rng),
        agency_id: platform.id.clone(),
        name: "bootstrap platform admin".into(),
        account: None,
        scopes: vec!["platform.admin".into()],
        created_by: "system".into(),
        created_at: now,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        rotated_at: None,
    };
    let binding = Binding {
        id: BindingId::generate_at(ms, rng),
        agency_id: platform.id.clone(),
        principal: PrincipalId::Key(key.id.clone()),
        role: "platform_admin".into(),
        account: None,
        created_by: "system".into(),
        created_at: now,
    };
    let audit = AuditRecord {
        id: EventId::generate_at(ms, rng),
        at: now,
        actor: "system".into(),
        on_behalf_of: None,
        action: AuditAction::PlatformBootstrap.into(),
        target: Some(key.id.to_string()),
        outcome: Outcome::Success,
        request_id: "bootstrap".into(),
        ip: None,
        user_agent: None,
        detail: json!({ "key_file": key_file }),
    };
    // Kept first: if the commit then fails, the next start makes a new one.
    keep(&secret)?;
    let b = Bootstrap {
        platform,
        key,
        secret: SecretHashRecord {
            hash: hash.as_bytes().to_vec(),
            pepper_version: i64::from(pepper.version()),
        },
        binding,
        audit,
    };
    match store.bootstrap(b).await {
        Ok(true) => Ok(Bootstrapped::Created),
        // Another node bootstrapped first (seen, or racing us to the unique platform row).
        Ok(false) | Err(StoreError::Conflict { .. }) => Ok(Bootstrapped::Lost),
        Err(e) => Err(BootstrapError::Commit(e)),
    }
}
