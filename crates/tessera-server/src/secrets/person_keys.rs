//! Per-person keys: a random 32-byte key for each (agency, user `usr_…`), sealed under the
//! agency's data key in `person_keys`, made on the first event about that person. The personal
//! fields of events about a person are sealed under that key, so erasing the person
//! (`POST /v1/agencies/{agy}/users/{usr}/erase`) destroys exactly their data; the chain hash
//! covers the ciphertext, so `/audit/verify` still passes.
//! INVARIANT: creation is race-free (insert-if-absent, then everyone reads the one stored row);
//! an erased person keeps a tombstone row, so no key is ever made for them again and later
//! events about them are stored erased; reading (reveal) always asks the store, so an erasure
//! on any node is seen at once.

use std::sync::Arc;

use rand::rngs::OsRng;
use tessera_core::AgencyId;
use tessera_store::TenantScope;
use tessera_token::SecretBytes;

use super::data_keys::{DataKeyError, DataKeys};
use super::error::SecretsError;

/// At most this many unwrapped person keys are cached; when full, a random half is dropped.
const MAX_CACHED: usize = 1 << 18;

/// The prefix of the people whose personal data gets its own key.
pub const USER_PREFIX: &str = "usr_";

/// The associated data a person's key is sealed with (binds it to its subject).
fn wrap_aad(subject: &str) -> Vec<u8> {
    format!("person-key\0{subject}").into_bytes()
}

/// Whether `id` names a user (a person).
pub fn is_user(id: &str) -> bool {
    id.starts_with(USER_PREFIX) && id.len() > USER_PREFIX.len() && !id.contains(['.', ':', '/'])
}

impl DataKeys {
    /// The person's key if this node holds it unwrapped (no store read): `Some(None)` when
    /// this node knows the person is erased, `None` when it knows nothing.
    pub fn cached_person(
        &self,
        agency: &AgencyId,
        subject: &str,
    ) -> Option<Option<Arc<SecretBytes<32>>>> {
        self.persons
            .read()
            .ok()?
            .get(&(agency.clone(), subject.to_owned()))
            .cloned()
    }

    fn remember_person(&self, agency: &AgencyId, subject: &str, key: Option<Arc<SecretBytes<32>>>) {
        if let Ok(mut c) = self.persons.write() {
            if c.len() >= MAX_CACHED {
                super::data_keys::shed_half(&mut c);
            }
            c.insert((agency.clone(), subject.to_owned()), key);
        }
    }

    fn forget_person(&self, agency: &AgencyId, subject: &str) {
        if let Ok(mut c) = self.persons.write() {
            c.remove(&(agency.clone(), subject.to_owned()));
        }
    }

    /// The person's key. With `create` (sealing), from the cache when held and made (once)
    /// when the person has none; without (reading), always from the store, never made.
    /// `Shredded` when the person was erased (or the agency deleted).
    pub async fn person_key(
        &self,
        scope: &TenantScope,
        subject: &str,
        create: bool,
        now: i64,
    ) -> Result<Arc<SecretBytes<32>>, DataKeyError> {
        let agency = scope.agency();
        if create {
            match self.cached_person(agency, subject) {
                Some(Some(k)) => return Ok(k),
                Some(None) => return Err(DataKeyError::Shredded),
                None => {}
            }
        }
        let agency_key = self.key(scope, create, now).await?;
        let store = self.store();
        let sealed = match store.person_key(scope, subject).await? {
            Some(Some(sealed)) => sealed,
            Some(None) => {
                self.remember_person(agency, subject, None);
                return Err(DataKeyError::Shredded);
            }
            None if create => {
                let fresh = SecretBytes::<32>::random(&mut OsRng);
                let sealed =
                    Self::seal_with(&agency_key, agency, &wrap_aad(subject), fresh.expose());
                // Insert-if-absent: of racing creators one row wins, and all use it.
                store
                    .insert_person_key(scope, subject, &sealed, now)
                    .await?;
                match store.person_key(scope, subject).await? {
                    Some(Some(sealed)) => sealed,
                    _ => return Err(DataKeyError::Shredded),
                }
            }
            None => return Err(DataKeyError::Shredded),
        };
        let key = Arc::new(open32(&agency_key, agency, subject, &sealed)?);
        if create {
            self.remember_person(agency, subject, Some(key.clone()));
        }
        Ok(key)
    }

    /// A person's key for a synchronous sealer that found none in memory: made here, sealed
    /// under the agency's cached key, and stored in the background (a user created by the
    /// request has no key before its handler runs). When the store keeps another row (an
    /// erasure's tombstone, or a racing key), the values sealed with this one are unreadable,
    /// never readable under the wrong person. `None` without the agency's key in memory or a
    /// runtime.
    pub fn person_key_now(
        self: &Arc<Self>,
        scope: &TenantScope,
        subject: &str,
        now: i64,
    ) -> Option<Arc<SecretBytes<32>>> {
        let agency = scope.agency();
        let agency_key = self.cached(agency)?;
        let handle = tokio::runtime::Handle::try_current().ok()?;
        let fresh = Arc::new(SecretBytes::<32>::random(&mut OsRng));
        let sealed = Self::seal_with(&agency_key, agency, &wrap_aad(subject), fresh.expose());
        self.remember_person(agency, subject, Some(fresh.clone()));
        let keys = Arc::clone(self);
        let scope = scope.clone();
        let subject = subject.to_owned();
        handle.spawn(async move {
            let kept = keys
                .store()
                .insert_person_key(&scope, &subject, &sealed, now)
                .await;
            if !matches!(kept, Ok(true)) {
                keys.forget_person(scope.agency(), &subject);
                tracing::warn!(
                    "a person's key was not stored: the events sealed with it are erased"
                );
            }
        });
        Some(fresh)
    }

    /// Loads an existing person's key into memory (never makes one): the gate, for the users
    /// a request names, before its handler seals audit records synchronously.
    pub async fn load_person(&self, scope: &TenantScope, subject: &str, now: i64) {
        let agency = scope.agency();
        if self.cached_person(agency, subject).is_some() {
            return;
        }
        let Ok(agency_key) = self.key(scope, false, now).await else {
            return;
        };
        match self.store().person_key(scope, subject).await {
            Ok(Some(Some(sealed))) => {
                if let Ok(key) = open32(&agency_key, agency, subject, &sealed) {
                    self.remember_person(agency, subject, Some(Arc::new(key)));
                }
            }
            Ok(Some(None)) => self.remember_person(agency, subject, None),
            _ => {}
        }
    }

    /// Erases a person: destroys their key (leaving a tombstone) and drops it from memory
    /// (remembering the erasure, so this node seals nothing more about them).
    /// `true` when a key was destroyed now; idempotent.
    pub async fn erase_person(
        &self,
        scope: &TenantScope,
        subject: &str,
        now: i64,
    ) -> Result<bool, DataKeyError> {
        let done = self.store().erase_person_key(scope, subject, now).await?;
        self.remember_person(scope.agency(), subject, None);
        Ok(done)
    }
}

/// Opens a person's sealed key.
fn open32(
    agency_key: &SecretBytes<32>,
    agency: &AgencyId,
    subject: &str,
    sealed: &[u8],
) -> Result<SecretBytes<32>, DataKeyError> {
    let plain = DataKeys::open_with(agency_key, agency, &wrap_aad(subject), sealed)?;
    SecretBytes::<32>::from_slice(&plain).ok_or(DataKeyError::Secrets(SecretsError::Internal(
        "a person's key is not 32 bytes".into(),
    )))
}
