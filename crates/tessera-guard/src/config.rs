//! How a guard is configured: who issues the tokens, which resource it protects, its own
//! credential, and the timings of its caches.
//! INVARIANT: every default is safe: short negative caches, fail closed before the first read
//! of the revocation feed.

use std::time::Duration;

use serde_json::Value;

/// Where the scope → permission map comes from.
#[derive(Debug, Clone)]
pub enum CatalogSource {
    /// `GET <tessera>/v1/catalog` at start, with the guard's credential.
    Fetch,
    /// The catalog document (the JSON `GET /v1/catalog` answers, or the same fields).
    Given(Value),
}

/// The guard's configuration. Build it with [`GuardConfig::new`] and the `with_*` methods.
#[derive(Clone)]
pub struct GuardConfig {
    /// The issuer exactly as tokens carry it in `iss`.
    pub issuer: String,
    /// Where to reach Tessera (defaults to the issuer): JWKS, catalog, feed, introspection.
    pub tessera_url: String,
    /// This service's resource identifier: the `aud` its tokens must carry.
    pub resource: String,
    /// The guard's own credential (an API key `tsk_…`), for the catalog, the revocation feed
    /// (`revocations.read`), introspection and `/v1/check`.
    pub credential: Option<String>,
    /// `realm` in `WWW-Authenticate`.
    pub realm: String,
    /// Clock leeway on `exp`/`nbf`/`iat`, seconds.
    pub leeway_secs: i64,
    /// An unknown `kid` refetches the JWKS at most once per this interval.
    pub unknown_kid_refetch: Duration,
    /// JWKS lifetime when the answer has no `Cache-Control: max-age`.
    pub jwks_default_ttl: Duration,
    /// The shortest JWKS lifetime honoured (a `max-age=0` does not mean "refetch per request").
    pub jwks_min_ttl: Duration,
    /// The most verified tokens kept.
    pub token_cache_size: usize,
    /// How long an active API key's introspection is reused.
    pub api_key_ttl: Duration,
    /// How long an inactive API key's introspection is reused.
    pub api_key_negative_ttl: Duration,
    /// The most API key answers kept.
    pub api_key_cache_size: usize,
    /// The longest an ABAC answer is reused (answers of an older revision are never reused).
    pub check_ttl: Duration,
    /// Long-poll `wait` on the revocation feed, seconds (1..=60).
    pub feed_wait_secs: u64,
    /// Items per page of the feed.
    pub feed_page: usize,
    /// Where scopes map to permissions.
    pub catalog: CatalogSource,
    /// Timeout of one call to Tessera (the long poll adds its `wait`).
    pub http_timeout: Duration,
    /// Once synchronised, the longest the guard goes without a successful read of the feed
    /// before it refuses JWTs again (503): a feed it cannot read would otherwise let revoked
    /// tokens through. `None` keeps accepting on the last state.
    pub feed_max_staleness: Option<Duration>,
    /// Run the revocation feed. Off only for tests and benchmarks: then no JWT is accepted
    /// until [`crate::Guard::mark_synced`] is called.
    pub feed: bool,
}

impl std::fmt::Debug for GuardConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardConfig")
            .field("issuer", &self.issuer)
            .field("tessera_url", &self.tessera_url)
            .field("resource", &self.resource)
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

impl GuardConfig {
    /// A guard for `resource` (its identifier URI) accepting tokens of `issuer`.
    pub fn new(issuer: impl Into<String>, resource: impl Into<String>) -> Self {
        let issuer = issuer.into().trim_end_matches('/').to_owned();
        Self {
            tessera_url: issuer.clone(),
            issuer,
            resource: resource.into(),
            credential: None,
            realm: "tessera".into(),
            leeway_secs: 30,
            unknown_kid_refetch: Duration::from_secs(30),
            jwks_default_ttl: Duration::from_secs(300),
            jwks_min_ttl: Duration::from_secs(5),
            token_cache_size: 100_000,
            api_key_ttl: Duration::from_secs(30),
            api_key_negative_ttl: Duration::from_secs(5),
            api_key_cache_size: 10_000,
            check_ttl: Duration::from_secs(10),
            feed_wait_secs: 25,
            feed_page: 1000,
            catalog: CatalogSource::Fetch,
            http_timeout: Duration::from_secs(10),
            feed_max_staleness: Some(Duration::from_secs(90)),
            feed: true,
        }
    }

    /// The guard's API key.
    pub fn with_credential(mut self, key: impl Into<String>) -> Self {
        self.credential = Some(key.into());
        self
    }

    /// Reach Tessera at `url` rather than at the issuer URL.
    pub fn with_tessera_url(mut self, url: impl Into<String>) -> Self {
        self.tessera_url = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// The catalog as configuration instead of fetching it.
    pub fn with_catalog(mut self, catalog: Value) -> Self {
        self.catalog = CatalogSource::Given(catalog);
        self
    }

    /// The unknown-`kid` refetch interval.
    pub fn with_unknown_kid_refetch(mut self, every: Duration) -> Self {
        self.unknown_kid_refetch = every;
        self
    }

    /// Disables the revocation feed (tests and benchmarks only).
    pub fn without_feed(mut self) -> Self {
        self.feed = false;
        self
    }
}
