//! First start: with an empty store, create the platform tenant and a platform-admin API key,
//! and write the key (alone, on one line) to `<data-dir>/bootstrap-admin.key`, mode 0600.
//! The secret never reaches a log. Later starts change nothing.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::json;
use tessera_core::{AgencyId, BindingId, EventId, KeyId, PrincipalId};
use tessera_store::{
    Agency, ApiKey, AuditRecord, Binding, Bootstrap, Outcome, SecretHashRecord, Status,
};

use crate::services::Services;

/// The file the first platform-admin key is written to.
pub const KEY_FILE: &str = "bootstrap-admin.key";

/// Writes `contents` to `path` atomically with mode 0600.
fn write_secret_file(path: &Path, contents: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("key.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Bootstraps an empty store; returns the key file's path if this call did it.
pub async fn ensure(state: &Services, data_dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    if state.store.platform_agency().await?.is_some() {
        return Ok(None);
    }
    let now = state.clock.now();
    let ms = u64::try_from(now).unwrap_or(0);
    let rng = &mut rand::thread_rng();
    let platform = Agency {
        id: AgencyId::generate_at(ms, rng),
        name: "Platform".into(),
        status: Status::Active,
        is_platform: true,
        created_at: now,
        updated_at: now,
    };
    let secret = tessera_token::generate_api_key_os();
    let hash = state.pepper.hash(secret.expose().as_bytes());
    let key = ApiKey {
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
        action: "platform.bootstrap".into(),
        target: Some(key.id.to_string()),
        outcome: Outcome::Success,
        request_id: "bootstrap".into(),
        ip: None,
        user_agent: None,
        detail: json!({ "key_file": KEY_FILE }),
    };
    let path = data_dir.join(KEY_FILE);
    // The file first: if the store commit then fails, the next start writes a new one.
    write_secret_file(&path, &format!("{}\n", secret.expose()))?;
    let b = Bootstrap {
        platform,
        key,
        secret: SecretHashRecord {
            hash: hash.as_bytes().to_vec(),
            pepper_version: i64::from(state.pepper.version()),
        },
        binding,
        audit,
    };
    match state.store.bootstrap(b).await {
        Ok(true) => Ok(Some(path)),
        // Another node bootstrapped first (seen, or racing us to the unique platform row):
        // our key is not valid.
        Ok(false) | Err(tessera_store::StoreError::Conflict { .. }) => {
            let _ = std::fs::remove_file(&path);
            Ok(None)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(e.into())
        }
    }
}
