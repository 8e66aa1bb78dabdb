//! The authorization server's settings and per-node state (`OAuth`): lifetimes, the cookie key,
//! the sign-in throttle, the client and verified-token caches, and the impersonation policy.
//!
//! INVARIANT: built once per node from the master key and the catalog; nothing here reads the
//! store, so `Services` can hold it without an import cycle.

use std::time::Duration;

use tessera_core::{Catalog, PermissionSet};

use super::cache::{ClientCache, VerifiedCache};
use crate::oauth_ui::cookie::CookieKey;
use crate::oauth_ui::throttle::SignInThrottle;

/// Lifetimes and limits of the authorization server.
///
/// Lifetimes are `Duration`s; `secs` and `millis` convert them for epoch arithmetic.
#[derive(Clone, Debug)]
pub struct OAuthSettings {
    /// The `iss` of every token and the base of discovery (no trailing slash).
    pub issuer: String,
    /// Access-token lifetime (default 15 minutes).
    pub access_ttl: Duration,
    /// Authorization-code lifetime (default 60 s).
    pub code_ttl: Duration,
    /// A refresh token unused this long expires (default 14 days).
    pub refresh_idle_ttl: Duration,
    /// A refresh family ends this long after sign-in (default 90 days).
    pub refresh_absolute_ttl: Duration,
    /// A rotated refresh token presented again within this window is refused without revoking
    /// its family (a client's own retry) (default 2 s, at most 5 s).
    pub refresh_reuse_grace: Duration,
    /// Impersonation tokens live at most this long (1 hour).
    pub impersonation_ttl: Duration,
    /// A browser sign-in session lasts this long (default 8 hours).
    pub session_ttl: Duration,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080".into(),
            access_ttl: Duration::from_secs(900),
            code_ttl: Duration::from_secs(60),
            refresh_idle_ttl: Duration::from_secs(14 * 86_400),
            refresh_absolute_ttl: Duration::from_secs(90 * 86_400),
            refresh_reuse_grace: Duration::from_millis(2_000),
            impersonation_ttl: Duration::from_secs(3_600),
            session_ttl: Duration::from_secs(8 * 3_600),
        }
    }
}

/// `d` in whole seconds, for epoch-second arithmetic (saturating).
pub fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// `d` in milliseconds, for epoch-millisecond arithmetic (saturating).
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The permissions an impersonation token never carries, by default: billing, API keys and app
/// credentials, changing or erasing users, impersonation itself, and compliance evidence (an impersonator
/// never reads the reports, nor the history of the user they act as).
pub fn impersonation_forbidden(catalog: &Catalog) -> PermissionSet {
    let mut set = PermissionSet::default();
    for p in &catalog.file().permissions {
        let forbidden = matches!(p.resource.as_str(), "billing" | "api_key")
            || matches!(
                p.name.as_str(),
                "apps.write"
                    | "users.update"
                    | "users.delete"
                    | "users.erase"
                    | "users.impersonate"
                    | "compliance.read"
            );
        if forbidden {
            if let Some(ix) = catalog.permission(&p.name) {
                set.insert(ix);
            }
        }
    }
    set
}

/// The most keys of each kind the sign-in throttle remembers on a node.
pub const THROTTLE_ENTRIES: usize = 100_000;

/// The authorization server's state on this node.
#[derive(Debug)]
pub struct OAuth {
    /// Settings.
    pub settings: OAuthSettings,
    /// Signs cookies and CSRF tokens.
    pub cookies: CookieKey,
    /// Slows repeated failed sign-ins.
    pub throttle: SignInThrottle,
    /// OAuth clients seen recently.
    pub clients: ClientCache,
    /// Access tokens verified recently.
    pub verified: VerifiedCache,
    /// The impersonation policy.
    pub impersonation_forbidden: PermissionSet,
}

impl OAuth {
    /// The authorization server for `settings`, with the installation's cookie key.
    pub fn new(
        settings: OAuthSettings,
        cookie_key: tessera_token::SecretBytes<32>,
        catalog: &Catalog,
    ) -> Self {
        Self {
            settings,
            cookies: CookieKey::from_secret(cookie_key),
            throttle: SignInThrottle::new(THROTTLE_ENTRIES),
            clients: ClientCache::default(),
            verified: VerifiedCache::default(),
            impersonation_forbidden: impersonation_forbidden(catalog),
        }
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }
}
