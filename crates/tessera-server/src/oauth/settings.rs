//! The authorization server's settings and per-node state (`OAuth`): lifetimes, the cookie key,
//! the sign-in throttle, the client and verified-token caches, and the impersonation policy.
//!
//! INVARIANT: built once per node from the master key and the catalog; nothing here reads the
//! store, so `Services` can hold it without an import cycle.

use tessera_core::{Catalog, PermissionSet};

use super::cache::{ClientCache, VerifiedCache};
use crate::oauth_ui::{CookieKey, SignInThrottle};

/// Lifetimes and limits of the authorization server.
///
/// The lifetimes stay integers (seconds, or milliseconds where named): `cli.rs`, `config.rs`
/// and the test harness build this struct field by field, so a `Duration` here changes their
/// code too (left for whoever owns them).
#[derive(Clone, Debug)]
pub struct OAuthSettings {
    /// The `iss` of every token and the base of discovery (no trailing slash).
    pub issuer: String,
    /// Access-token lifetime, seconds (default 15 minutes).
    pub access_ttl: i64,
    /// Authorization-code lifetime, seconds (default 60).
    pub code_ttl: i64,
    /// A refresh token unused this long expires, seconds (default 14 days).
    pub refresh_idle_ttl: i64,
    /// A refresh family ends this long after sign-in, seconds (default 90 days).
    pub refresh_absolute_ttl: i64,
    /// A rotated refresh token presented again within this window is refused without revoking
    /// its family (a client's own retry), milliseconds (default 2 s, at most 5 s).
    pub refresh_reuse_grace_ms: i64,
    /// Impersonation tokens live at most this long, seconds (1 hour).
    pub impersonation_ttl: i64,
    /// A browser sign-in session lasts this long, seconds (default 8 hours).
    pub session_ttl: i64,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080".into(),
            access_ttl: 900,
            code_ttl: 60,
            refresh_idle_ttl: 14 * 86_400,
            refresh_absolute_ttl: 90 * 86_400,
            refresh_reuse_grace_ms: 2_000,
            impersonation_ttl: 3_600,
            session_ttl: 8 * 3_600,
        }
    }
}

/// The permissions an impersonation token never carries, by default: billing, API keys and app
/// credentials, changing users, and impersonation itself.
pub fn impersonation_forbidden(catalog: &Catalog) -> PermissionSet {
    let mut set = PermissionSet::default();
    for p in &catalog.file().permissions {
        let forbidden = matches!(p.resource.as_str(), "billing" | "api_key")
            || matches!(
                p.name.as_str(),
                "apps.write" | "users.update" | "users.delete" | "users.impersonate"
            );
        if forbidden {
            if let Some(ix) = catalog.permission(&p.name) {
                set.insert(ix);
            }
        }
    }
    set
}

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
    /// The authorization server for `settings`, with keys derived from the master key.
    pub fn new(
        settings: OAuthSettings,
        master: &tessera_token::MasterKey,
        catalog: &Catalog,
    ) -> Self {
        Self {
            settings,
            cookies: CookieKey::from_master(master),
            throttle: SignInThrottle::new(100_000),
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
