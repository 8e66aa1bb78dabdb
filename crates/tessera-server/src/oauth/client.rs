//! OAuth clients (RFC 6749 §2): finding a client record (cached per node, dropped when its
//! owner agency changes), checking presented credentials (§2.3.1: a confidential client's
//! secret; a public client presents its id only), and a client's installations.
//!
//! INVARIANT (I4): a secret is compared as a keyed hash, in constant time, against every
//! unexpired secret of the client; an unknown client costs the same hash and gets the same
//! answer, so a failed authentication says nothing about whether the client exists.

use std::sync::Arc;

use tessera_core::AppId;
use tessera_store::{App, ClientRecord, Installation, StoreError};

use super::cache::{CachedClient, CachedInstallations};
use super::error::OAuthError;
use crate::services::Services;

/// The most clients remembered before the cache is cleared.
const MAX_CLIENTS: usize = 100_000;
/// A client's list of installations is re-read at least this often (ms), so a new
/// installation in another agency is seen.
const INSTALLATIONS_TTL_MS: i64 = 30_000;

/// How the client authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic.
    Basic,
    /// Form parameters.
    Post,
    /// A public client: `client_id` only.
    None,
}

/// An authenticated (or, for a public client, identified) client.
#[derive(Clone, Debug)]
pub struct Client {
    /// The app.
    pub app: Arc<ClientRecord>,
    /// How it authenticated.
    pub method: AuthMethod,
}

impl Client {
    /// The app record.
    pub fn app(&self) -> &App {
        &self.app.app
    }
    /// The client id.
    pub fn id(&self) -> &AppId {
        &self.app.app.id
    }
}

/// Why presented client credentials were not accepted (RFC 6749 §5.2 `invalid_client`), or
/// could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// Refused: `invalid_client`.
    #[error("{0}")]
    Refused(&'static str),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ClientAuthError> for OAuthError {
    fn from(e: ClientAuthError) -> Self {
        match e {
            ClientAuthError::Refused(why) => OAuthError::invalid_client(why),
            ClientAuthError::Store(s) => s.into(),
        }
    }
}

/// The client `id`, from the cache while its owner agency is unchanged. `None`: no such
/// client, or a deleted one.
pub async fn find(state: &Services, id: &str) -> Result<Option<Arc<ClientRecord>>, StoreError> {
    let Ok(app_id) = id.parse::<AppId>() else {
        return Ok(None);
    };
    let cache = &state.oauth.clients;
    if let Some(hit) = cache.clients.read().ok().and_then(|c| {
        c.get(id).and_then(|e| {
            (e.generation == state.engine.generation_of(&e.record.app.agency_id))
                .then(|| e.record.clone())
        })
    }) {
        return Ok((hit.app.deleted_at.is_none()).then_some(hit));
    }
    // Before authentication: the store's scope for the row is not needed by the cache.
    let Some((found, _)) = state.store.find_client(&app_id).await? else {
        return Ok(None);
    };
    // Read the generation after the record: a change committed in between moves it and the
    // next lookup reads again.
    let generation = state.engine.generation_of(&found.app.agency_id);
    let record = Arc::new(found);
    if let Ok(mut c) = cache.clients.write() {
        if c.len() >= MAX_CLIENTS {
            c.clear();
        }
        c.insert(
            id.to_owned(),
            CachedClient {
                record: record.clone(),
                generation,
            },
        );
    }
    Ok((record.app.deleted_at.is_none()).then_some(record))
}

/// Authenticates presented client credentials: `secret` for a confidential client, none for a
/// public one.
pub async fn authenticate_as(
    state: &Services,
    id: &str,
    secret: Option<&str>,
    method: AuthMethod,
) -> Result<Client, ClientAuthError> {
    let fail = ClientAuthError::Refused("client authentication failed");
    let Some(record) = find(state, id).await? else {
        // Do the same work as for a known client.
        if let Some(s) = secret {
            std::hint::black_box(state.pepper.hash(s.as_bytes()));
        }
        return Err(fail);
    };
    let now = state.clock.now();
    match (record.app.confidential, secret) {
        (true, Some(secret)) => {
            // Each stored secret is checked under the pepper version it was hashed with.
            let current = state.pepper.current();
            let (mut ok, mut stale, unknown) =
                check_secrets(state, &record, secret, &current, now).await;
            if !ok && unknown {
                // A cached record may hold a hash since rehashed, its pepper retired: read
                // the client again.
                forget(state, id);
                if let Some(fresh) = find(state, id).await? {
                    (ok, stale, _) = check_secrets(state, &fresh, secret, &current, now).await;
                }
            }
            if !ok {
                return Err(fail);
            }
            if let Some(old) = stale {
                // Rehashed under the current pepper on this use (best effort: the old hash
                // keeps working while its version is live).
                let scope = state.admission.admit(record.app.agency_id.clone());
                let new = current.hash(secret.as_bytes());
                if let Err(e) = state
                    .store
                    .rehash_secret(&scope, &old, new.as_bytes(), i64::from(current.version()))
                    .await
                {
                    tracing::warn!(error = %e, "could not rehash a client secret under the current pepper");
                }
                forget(state, id);
            }
        }
        (true, None) => {
            return Err(ClientAuthError::Refused(
                "this client is confidential: authenticate with its secret",
            ))
        }
        (false, Some(_)) => {
            return Err(ClientAuthError::Refused(
                "this client is public and has no secret",
            ))
        }
        (false, None) => {}
    }
    Ok(Client {
        app: record,
        method,
    })
}

/// Drops client `id` from this node's cache (its stored secrets changed).
fn forget(state: &Services, id: &str) {
    if let Ok(mut c) = state.oauth.clients.clients.write() {
        c.remove(id);
    }
}

/// Checks `secret` against each of the client's stored secrets, each under the pepper version
/// it was hashed with. Returns whether one matched, the hash of the match if it is under an
/// older pepper (to rehash), and whether a stored version is not live on this node.
async fn check_secrets(
    state: &Services,
    record: &ClientRecord,
    secret: &str,
    current: &tessera_token::Pepper,
    now: i64,
) -> (bool, Option<Vec<u8>>, bool) {
    let mut ok = false;
    let mut stale = None;
    let mut unknown = false;
    for s in &record.secrets {
        let version = u32::try_from(s.pepper_version).unwrap_or(0);
        let hash = if version == current.version() {
            Some(current.hash(secret.as_bytes()))
        } else {
            match state.pepper.hash_with(version, secret.as_bytes()) {
                Some(h) => Some(h),
                // A version newer than this node knows: learn it.
                None if version > current.version() => {
                    let _ = state.pepper.reload(state.store.as_ref(), &state.ring).await;
                    state.pepper.hash_with(version, secret.as_bytes())
                }
                None => None,
            }
        };
        unknown |= hash.is_none();
        let valid = s.valid_until.is_none_or(|t| t > now);
        let matched = hash.is_some_and(|h| valid & tessera_token::ct_eq(h.as_bytes(), &s.hash));
        if matched && version < current.version() {
            stale = Some(s.hash.clone());
        }
        ok |= matched;
    }
    (ok, stale, unknown)
}

/// The active installations of client `app` in every agency (cached briefly; each is checked
/// against its agency's current state before use).
pub async fn installations(
    state: &Services,
    app: &AppId,
    refresh: bool,
) -> Result<Arc<Vec<Installation>>, StoreError> {
    let now = state.clock.now();
    let cache = &state.oauth.clients;
    if !refresh {
        if let Some(hit) = cache.installations.read().ok().and_then(|c| {
            c.get(app.as_str())
                .filter(|e| now - e.read_at < INSTALLATIONS_TTL_MS)
                .map(|e| e.list.clone())
        }) {
            return Ok(hit);
        }
    }
    // The cache keeps the rows; each use checks its agency's current state.
    let list: Vec<Installation> = state
        .store
        .client_installations(app)
        .await?
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    let list = Arc::new(list);
    if let Ok(mut c) = cache.installations.write() {
        if c.len() >= MAX_CLIENTS {
            c.clear();
        }
        c.insert(
            app.to_string(),
            CachedInstallations {
                list: list.clone(),
                read_at: now,
            },
        );
    }
    Ok(list)
}
