//! What the engine holds per agency: the compiled index and policies, the token revocation
//! state, and the callers and subjects resolved against them (dropped with the entry).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use tessera_core::abac::PolicySet;
use tessera_core::index::AgencyIndex;

/// One agency's compiled authorization state.
#[derive(Debug)]
pub struct AgencyEntry {
    /// RBAC index.
    pub index: AgencyIndex,
    /// Cedar policies (platform + agency), if any.
    pub policies: Option<PolicySet>,
    /// Stored policies that no longer compile: every check RBAC allows here is denied.
    pub policies_broken: bool,
    /// Authenticated callers of this agency by credential hash; dropped with the entry, so a
    /// revocation or rotation (which invalidates the agency) empties it.
    pub(super) callers: RwLock<tessera_core::fastmap::FastMap<[u8; 32], Arc<CachedCaller>>>,
    /// Principals of this agency looked up as check subjects (`None`: inactive), dropped with
    /// the entry, so disabling a user or revoking a key empties it.
    pub(super) subjects: RwLock<HashMap<String, Arc<CachedSubject>>>,
    /// The agency's users who are not active at the index's revision, sorted (`user_active`).
    pub(super) inactive_users: Box<[String]>,
    /// What makes the agency's OAuth tokens inactive early: its active installations, revoked
    /// grants and revoked access tokens, read in the same snapshot.
    pub tokens: TokenState,
    /// Installation ids presented here and found in no snapshot, even one read at the store's
    /// revision then (`oauth::tenant::active_installation`): a client repeating an unknown id
    /// costs no store read. Ids are server-minted and random, so none of them can come to
    /// exist later; a removal, the only change the other way, is already in `tokens`.
    pub(super) unknown_installations: RwLock<std::collections::HashSet<String>>,
    pub(super) last_used: AtomicU64,
    pub(super) bytes: usize,
}

/// Unknown installation ids remembered per entry (then forgotten all at once).
const MAX_UNKNOWN_INSTALLATIONS: usize = 1024;

impl AgencyEntry {
    /// Whether user `id` of this agency is active at the index's revision, from the snapshot
    /// (no read of the user's row). An id of no user counts as active: it holds no binding,
    /// as a user who does not exist yet holds none.
    pub fn user_active(&self, id: &str) -> bool {
        self.inactive_users
            .binary_search_by(|u| u.as_str().cmp(id))
            .is_err()
    }

    /// Was `id` already found in no snapshot of this entry's agency?
    pub fn installation_unknown(&self, id: &str) -> bool {
        self.unknown_installations
            .read()
            .is_ok_and(|u| u.contains(id))
    }

    /// Remembers that `id` is in no snapshot up to the store's revision.
    pub fn remember_unknown_installation(&self, id: &str) {
        if let Ok(mut u) = self.unknown_installations.write() {
            if u.len() >= MAX_UNKNOWN_INSTALLATIONS {
                u.clear();
            }
            u.insert(id.to_owned());
        }
    }
}

/// An agency's token revocation state, for introspection and bearer-token authentication.
#[derive(Debug, Default)]
pub struct TokenState {
    /// Active installations by id.
    pub installations: HashMap<String, tessera_store::Installation>,
    /// Revoked grants (refresh families) whose tokens may be unexpired.
    pub revoked_grants: std::collections::HashSet<String>,
    /// Revoked access-token ids that have not expired.
    pub revoked_tokens: std::collections::HashSet<String>,
}

impl TokenState {
    pub(super) fn from(r: tessera_store::Revocations) -> Self {
        Self {
            installations: r
                .installations
                .into_iter()
                .map(|i| (i.id.to_string(), i))
                .collect(),
            revoked_grants: r.grants.into_iter().collect(),
            revoked_tokens: r.access_tokens.into_iter().collect(),
        }
    }

    pub(super) fn bytes(&self) -> usize {
        self.installations.len() * 256
            + (self.revoked_grants.len() + self.revoked_tokens.len()) * 64
    }
}

/// A caller remembered after a successful authentication.
#[derive(Debug)]
pub struct CachedCaller {
    /// The caller.
    pub caller: Arc<crate::caller::Caller>,
    /// After this the credential is no longer valid (key expiry, or a rotated secret's grace).
    pub valid_until: Option<i64>,
}

/// A principal resolved as the subject of checks.
#[derive(Debug)]
pub struct CachedSubject {
    /// The principal with its credential grant and cap; `None` if inactive.
    pub caller: Option<Arc<crate::caller::Caller>>,
    /// After this it must be looked up again (a key's expiry).
    pub valid_until: Option<i64>,
}
