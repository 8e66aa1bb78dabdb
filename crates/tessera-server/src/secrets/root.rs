//! The installation-wide secrets: the peppers (versioned), the key that seals token and audit
//! signing keys (`signing-keys`), and the sign-in cookie key (`cookies`), stored in
//! `root_secrets` wrapped under the master key.
//! INVARIANT: version 1 of each is the value the master key used to derive, created on the
//! first start that finds none, so an installation that predates stored secrets keeps every
//! hash and sealed value; inserts never overwrite (two nodes starting at once agree on one row).

use rand::rngs::OsRng;
use tessera_store::{RootSecretRow, Store};
use tessera_token::{MasterKey, Pepper, SecretBytes, SIGNING_KEYS_PURPOSE};

use super::error::{unwrap32, wrap_purpose, SecretsError};
use super::master::MasterRing;

/// The pepper purpose (versions 1, 2, …).
pub const PEPPER: &str = "pepper";
/// The key that seals private signing keys (token and audit).
pub const SIGNING_KEYS: &str = "signing-keys";
/// The sign-in cookie key.
pub const COOKIES: &str = "cookies";

/// The installation-wide secrets, unwrapped.
#[derive(Debug, Clone)]
pub struct RootSecrets {
    /// The live peppers, oldest first (the last is current).
    pub peppers: Vec<Pepper>,
    /// Seals private signing keys.
    pub signing_kek: SecretBytes<32>,
    /// Authenticates sign-in cookies and CSRF tokens.
    pub cookie_key: SecretBytes<32>,
}

/// The legacy derivation of a secret's first version.
fn legacy(master: &MasterKey, purpose: &str) -> SecretBytes<32> {
    match purpose {
        PEPPER => master.derive_pepper_key(1),
        SIGNING_KEYS => master.derive_key(SIGNING_KEYS_PURPOSE),
        _ => master.derive_key(crate::oauth_ui::cookie::KEY_PURPOSE),
    }
}

impl RootSecrets {
    /// The first versions, derived from `master` (not stored).
    pub fn derived(master: &MasterKey) -> Self {
        Self {
            peppers: vec![Pepper::from_secret(1, legacy(master, PEPPER))],
            signing_kek: legacy(master, SIGNING_KEYS),
            cookie_key: legacy(master, COOKIES),
        }
    }

    /// Loads the stored secrets; on a database without them, stores the first versions,
    /// derived from the master key the database's key source holds as current.
    pub async fn load_or_init(
        store: &dyn Store,
        ring: &MasterRing,
        now: i64,
    ) -> Result<Self, SecretsError> {
        let mut rows = store.root_secrets().await?;
        let missing: Vec<&str> = [PEPPER, SIGNING_KEYS, COOKIES]
            .into_iter()
            .filter(|p| !rows.iter().any(|r| r.purpose == *p && r.version == 1))
            .collect();
        if !missing.is_empty() {
            // The legacy values come from the key the installation ran with: the current one.
            let legacy_key = ring.current();
            let wrap = ring.for_wrapping(store, now).await?;
            for purpose in missing {
                let value = legacy(&legacy_key, purpose);
                let row = RootSecretRow {
                    purpose: purpose.to_owned(),
                    version: 1,
                    master_key_id: wrap.key_id(),
                    sealed: wrap.wrap(&wrap_purpose(purpose, 1), value.expose(), &mut OsRng),
                    created_at: now,
                    retired_at: None,
                };
                if store.insert_root_secret(&row).await? {
                    tracing::info!(
                        purpose,
                        "stored secret created from the master key's derivation"
                    );
                }
            }
            rows = store.root_secrets().await?;
        }
        let mut peppers = Vec::new();
        let mut signing_kek = None;
        let mut cookie_key = None;
        for row in rows.iter().filter(|r| r.retired_at.is_none()) {
            let value = open_row(ring, row).await?;
            match row.purpose.as_str() {
                PEPPER => peppers.push(Pepper::from_secret(pepper_version(row)?, value)),
                SIGNING_KEYS if row.version == 1 => signing_kek = Some(value),
                COOKIES if row.version == 1 => cookie_key = Some(value),
                _ => {}
            }
        }
        peppers.sort_by_key(Pepper::version);
        match (peppers.is_empty(), signing_kek, cookie_key) {
            (false, Some(signing_kek), Some(cookie_key)) => Ok(Self {
                peppers,
                signing_kek,
                cookie_key,
            }),
            _ => Err(SecretsError::Internal(
                "the stored secrets are incomplete (a live pepper, `signing-keys` and `cookies` are required)".into(),
            )),
        }
    }

    /// The current pepper.
    pub fn current_pepper(&self) -> Option<&Pepper> {
        self.peppers.last()
    }
}

/// A pepper row's version as the token crate counts them.
pub(crate) fn pepper_version(row: &RootSecretRow) -> Result<u32, SecretsError> {
    u32::try_from(row.version)
        .map_err(|_| SecretsError::Unauthentic(wrap_purpose(&row.purpose, row.version)))
}

/// Unwraps a stored secret with the master key its row names.
pub(crate) async fn open_row(
    ring: &MasterRing,
    row: &RootSecretRow,
) -> Result<SecretBytes<32>, SecretsError> {
    let key = ring.key(&row.master_key_id).await?;
    unwrap32(&key, &wrap_purpose(&row.purpose, row.version), &row.sealed)
}
