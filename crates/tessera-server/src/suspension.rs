//! What is suspended, platform-wide, as every node keeps it in memory: the suspended agencies,
//! the suspended accounts, and the apps (OAuth clients) whose owning agency is suspended. It is
//! normally empty, so the hot path (API-key and access-token authentication, introspection,
//! checks) pays one atomic read and, when anything is suspended, a hash lookup or two.
//!
//! INVARIANT: the view is loaded from the store before it is first used, and reloaded by the
//! engine when the change feed shows a suspension or a reinstatement (before it drops the
//! agency's cached callers), and at once by the node that made the change; a credential is
//! checked against the view on every use, cached or not, so no cache outlives a suspension.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use tessera_core::{AccountId, AgencyId};
use tessera_store::{Store, StoreError};

/// Why a credential is refused for a suspension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suspended {
    /// The credential's agency is suspended.
    Agency,
    /// The account the credential is bound to is suspended.
    Account,
    /// The agency that owns the credential's app (client) is suspended.
    AppOwner,
}

impl Suspended {
    /// The stable error code: `agency_suspended` (for the agency or the app's owner) or
    /// `account_suspended`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Agency | Self::AppOwner => "agency_suspended",
            Self::Account => "account_suspended",
        }
    }

    /// The message a refused client reads.
    pub fn message(self) -> &'static str {
        match self {
            Self::Agency => "the agency is suspended: its credentials are refused until it is reinstated; contact the platform operator",
            Self::Account => "the account is suspended: credentials bound to it are refused until it is reinstated; contact the agency",
            Self::AppOwner => "the agency that owns this app is suspended: the app's tokens are refused until it is reinstated; contact the platform operator",
        }
    }
}

/// One consistent read of what is suspended.
#[derive(Debug, Default)]
pub struct View {
    agencies: HashSet<u128>,
    accounts: HashSet<(u128, u128)>,
    apps: HashMap<String, AgencyId>,
}

impl View {
    fn from(s: tessera_store::Suspensions) -> Self {
        Self {
            agencies: s.agencies.iter().map(AgencyId::bits).collect(),
            accounts: s
                .accounts
                .iter()
                .map(|(g, a)| (g.bits(), a.bits()))
                .collect(),
            apps: s
                .apps
                .into_iter()
                .map(|(app, owner)| (app.to_string(), owner))
                .collect(),
        }
    }

    /// Whether nothing is suspended.
    pub fn is_empty(&self) -> bool {
        self.agencies.is_empty() && self.accounts.is_empty()
    }

    /// Whether this agency is suspended.
    pub fn agency(&self, agency: &AgencyId) -> bool {
        !self.agencies.is_empty() && self.agencies.contains(&agency.bits())
    }

    /// Whether this account is suspended.
    pub fn account(&self, agency: &AgencyId, account: &AccountId) -> bool {
        !self.accounts.is_empty() && self.accounts.contains(&(agency.bits(), account.bits()))
    }

    /// Whether the app (client id) belongs to a suspended agency.
    pub fn app_owner(&self, client_id: &str) -> bool {
        !self.apps.is_empty() && self.apps.contains_key(client_id)
    }

    /// Why a credential of `agency`, bound to `account`, obtained by `client` (an app's
    /// client id), is refused, if it is.
    pub fn credential(
        &self,
        agency: &AgencyId,
        account: Option<&AccountId>,
        client: Option<&str>,
    ) -> Option<Suspended> {
        if self.is_empty() {
            return None;
        }
        if self.agency(agency) {
            return Some(Suspended::Agency);
        }
        if client.is_some_and(|c| self.app_owner(c)) {
            return Some(Suspended::AppOwner);
        }
        if account.is_some_and(|a| self.account(agency, a)) {
            return Some(Suspended::Account);
        }
        None
    }
}

/// The node's view, loaded on first use and swapped whole on reload.
#[derive(Debug, Default)]
pub struct Suspensions {
    current: RwLock<Option<Arc<View>>>,
    /// False while nothing is suspended (checked before the lock).
    any: AtomicBool,
    loaded: AtomicBool,
    load: tokio::sync::Mutex<()>,
}

/// The change-log kinds after which the view is reloaded.
pub const CHANGE_KINDS: &[&str] = &[
    "agency.suspend",
    "agency.reinstate",
    "agency.delete",
    "account.suspend",
    "account.reinstate",
    "account.delete",
];

impl Suspensions {
    /// The current view, loaded from the store the first time.
    pub async fn view(&self, store: &dyn Store) -> Result<Arc<View>, StoreError> {
        if self.loaded.load(Ordering::Acquire) {
            if !self.any.load(Ordering::Acquire) {
                return Ok(empty());
            }
            if let Some(v) = self.current.read().ok().and_then(|c| c.clone()) {
                return Ok(v);
            }
        }
        let _one = self.load.lock().await;
        if self.loaded.load(Ordering::Acquire) {
            if let Some(v) = self.current.read().ok().and_then(|c| c.clone()) {
                return Ok(v);
            }
        }
        self.reload(store).await
    }

    /// Reads the view again from the store and installs it.
    pub async fn reload(&self, store: &dyn Store) -> Result<Arc<View>, StoreError> {
        let view = Arc::new(View::from(store.suspensions().await?));
        if let Ok(mut c) = self.current.write() {
            self.any
                .store(!view.is_empty() || !view.apps.is_empty(), Ordering::Release);
            *c = Some(view.clone());
            self.loaded.store(true, Ordering::Release);
        }
        Ok(view)
    }

    /// Whether a change of this kind in `agency` calls for a reload: a suspension or a
    /// reinstatement, or a new app of an agency that is suspended.
    pub fn affected_by(&self, kind: &str, agency: &AgencyId) -> bool {
        CHANGE_KINDS.contains(&kind)
            || (kind.starts_with("app.")
                && self.any.load(Ordering::Acquire)
                && self
                    .current
                    .read()
                    .ok()
                    .and_then(|c| c.clone())
                    .is_some_and(|v| v.agency(agency)))
    }
}

/// The shared empty view.
fn empty() -> Arc<View> {
    static EMPTY: std::sync::OnceLock<Arc<View>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Arc::new(View::default())).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_names_what_is_suspended_and_nothing_else() {
        let (a, b) = (AgencyId::generate(), AgencyId::generate());
        let (acc, other) = (AccountId::generate(), AccountId::generate());
        let app = tessera_core::AppId::generate();
        let v = View::from(tessera_store::Suspensions {
            agencies: vec![a.clone()],
            accounts: vec![(b.clone(), acc.clone())],
            apps: vec![(app.clone(), a.clone())],
        });
        assert_eq!(v.credential(&a, None, None), Some(Suspended::Agency));
        assert_eq!(v.credential(&b, None, None), None);
        assert_eq!(v.credential(&b, Some(&acc), None), Some(Suspended::Account));
        assert_eq!(v.credential(&b, Some(&other), None), None);
        assert_eq!(
            v.credential(&b, None, Some(app.as_str())),
            Some(Suspended::AppOwner)
        );
        assert_eq!(Suspended::AppOwner.code(), "agency_suspended");
        assert_eq!(Suspended::Account.code(), "account_suspended");
        assert!(View::default().credential(&a, Some(&acc), None).is_none());
    }
}
