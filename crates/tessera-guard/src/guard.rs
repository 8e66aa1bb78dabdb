//! The guard: verifies a bearer credential into a [`Principal`], applies the revocation feed,
//! introspects API keys and asks `/v1/check`.
//! INVARIANT: a JWT is accepted only if its key's own algorithm verifies it (never the header's
//! choice alone), `iss`, `aud` (this service's resource), `typ: at+jwt` and `exp`/`nbf` hold,
//! and no revocation applied from the feed refuses it; until the guard has completed its first
//! read of the feed it accepts no JWT (503, fail closed). Every cached answer is re-checked
//! against the revocation state whenever that state changed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::header::{HeaderName, ACCEPT, AUTHORIZATION};
use hyper::{Method, StatusCode};
use serde_json::Value;
use tessera_token::{JwkSet, JwtError, TokenType, Validation};

use crate::catalog::Catalog;
use crate::config::{CatalogSource, GuardConfig};
use crate::error::GuardError;
use crate::http;
use crate::principal::{CredentialKind, Identity, Principal};
use crate::refusal::Refusal;
use crate::revocation::{FeedPage, Revoked};

/// Verifies credentials for one resource server. Cheap to clone (an `Arc`). Start one with
/// [`Guard::start`].
#[derive(Clone, Debug)]
pub struct Guard {
    pub(crate) inner: Arc<Inner>,
}

/// A verified token, kept until it expires.
#[derive(Debug)]
struct CachedToken {
    token: Box<str>,
    principal: Principal,
    /// `exp` plus the leeway.
    valid_until: i64,
    /// The revocation generation it was last found clean at.
    clean_at: AtomicU64,
}

/// An API key's introspection, kept briefly.
#[derive(Debug, Clone)]
pub(crate) struct KeyAnswer {
    pub(crate) principal: Option<Principal>,
    pub(crate) until: Instant,
}

/// A cached `/v1/check` answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckAnswer {
    pub(crate) allowed: bool,
    pub(crate) revision: i64,
    pub(crate) at: Instant,
}

#[derive(Debug)]
struct JwksState {
    keys: Arc<JwkSet>,
    expires: Instant,
    /// The last refetch for an unknown `kid` (the throttle).
    last_fetch: Option<Instant>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: GuardConfig,
    pub(crate) catalog: Catalog,
    jwks: RwLock<JwksState>,
    pub(crate) jwks_fetching: tokio::sync::Mutex<()>,
    pub(crate) jwks_fetches: AtomicU64,
    tokens: RwLock<HashMap<Box<str>, CachedToken>>,
    pub(crate) revoked: RwLock<Revoked>,
    pub(crate) generation: AtomicU64,
    pub(crate) synced: AtomicBool,
    pub(crate) cursor: Mutex<Option<String>>,
    pub(crate) api_keys: Mutex<HashMap<[u8; 32], KeyAnswer>>,
    pub(crate) checks: Mutex<HashMap<String, CheckAnswer>>,
    pub(crate) latest_revision: AtomicI64,
    pub(crate) resyncs: AtomicU64,
    /// When the guard was created, and milliseconds after it of the last good read of the feed.
    pub(crate) started: Instant,
    pub(crate) last_read_ms: AtomicU64,
}

/// Unix seconds now.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Guard {
    /// Reads the catalog and the JWKS; the background tasks are started by `start`.
    pub(crate) async fn connect(config: GuardConfig) -> Result<Self, GuardError> {
        let catalog = match &config.catalog {
            CatalogSource::Given(v) => Catalog::from_json(v)?,
            CatalogSource::Fetch => {
                let answer = get(&config, "/v1/catalog", true, Duration::ZERO).await?;
                if answer.status != StatusCode::OK {
                    return Err(GuardError::Protocol(format!(
                        "GET /v1/catalog: {}",
                        answer.status
                    )));
                }
                Catalog::from_json(&answer.json::<Value>("catalog")?)?
            }
        };
        let (keys, ttl) = fetch_jwks(&config).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                catalog,
                jwks: RwLock::new(JwksState {
                    keys: Arc::new(keys),
                    expires: Instant::now() + ttl,
                    last_fetch: None,
                }),
                jwks_fetching: tokio::sync::Mutex::new(()),
                jwks_fetches: AtomicU64::new(1),
                tokens: RwLock::new(HashMap::new()),
                revoked: RwLock::new(Revoked::default()),
                generation: AtomicU64::new(1),
                synced: AtomicBool::new(false),
                cursor: Mutex::new(None),
                api_keys: Mutex::new(HashMap::new()),
                checks: Mutex::new(HashMap::new()),
                latest_revision: AtomicI64::new(0),
                resyncs: AtomicU64::new(0),
                started: Instant::now(),
                last_read_ms: AtomicU64::new(0),
                config,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GuardConfig {
        &self.inner.config
    }

    /// The catalog's scopes and permissions.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// Whether the first read of the revocation feed has completed (JWTs are refused with 503
    /// until then).
    pub fn is_synced(&self) -> bool {
        if !self.inner.synced.load(Ordering::Acquire) {
            return false;
        }
        match self.inner.config.feed_max_staleness {
            Some(max) if self.inner.config.feed => {
                let last = Duration::from_millis(self.inner.last_read_ms.load(Ordering::Acquire));
                self.inner.started.elapsed().saturating_sub(last) <= max
            }
            _ => true,
        }
    }

    /// Declares the revocation state current without a feed (tests and benchmarks that run
    /// with [`GuardConfig::without_feed`]).
    pub fn mark_synced(&self) {
        self.inner.synced.store(true, Ordering::Release);
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> u64 {
        self.inner.jwks_fetches.load(Ordering::Relaxed)
    }

    /// How many times the guard had to resynchronise with the feed (410).
    pub fn resyncs(&self) -> u64 {
        self.inner.resyncs.load(Ordering::Relaxed)
    }

    /// The feed cursor the guard has read up to.
    pub fn cursor(&self) -> Option<String> {
        self.inner.cursor.lock().ok().and_then(|c| c.clone())
    }

    /// How many revocation entries are held.
    pub fn revocations_held(&self) -> usize {
        self.inner.revoked.read().map(|r| r.len()).unwrap_or(0)
    }

    /// Authenticates the value of an `Authorization` header.
    pub async fn authenticate_header(&self, header: Option<&str>) -> Result<Principal, Refusal> {
        let Some(value) = header else {
            return Err(Refusal::Missing);
        };
        let Some((scheme, token)) = value.split_once(' ') else {
            return Err(Refusal::invalid("malformed authorization header"));
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Refusal::Missing);
        }
        self.authenticate(token.trim()).await
    }

    /// Authenticates a bearer credential: an API key by introspection, otherwise a JWT.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, Refusal> {
        if tessera_token::looks_like_api_key(token) {
            // A malformed key (checksum) is refused here, without asking Tessera: random
            // `tsk_…` strings cannot turn the guard into an introspection amplifier.
            if tessera_token::check_api_key_format(token).is_err() {
                return Err(Refusal::invalid("api key is malformed"));
            }
            return self.api_key(token).await;
        }
        if let Some(hit) = self.cached(token) {
            return hit;
        }
        self.verify_fresh(token).await
    }

    /// The cached answer for `token`, if it is in the cache and not expired.
    pub(crate) fn cached(&self, token: &str) -> Option<Result<Principal, Refusal>> {
        let inner = &self.inner;
        let signature = token.rsplit_once('.')?.1;
        let tokens = inner.tokens.read().ok()?;
        let entry = tokens.get(signature)?;
        if *entry.token != *token {
            return None;
        }
        let now = unix_now();
        if now >= entry.valid_until {
            return Some(Err(Refusal::invalid("token has expired")));
        }
        if !self.is_synced() {
            return Some(Err(Refusal::NotReady));
        }
        let generation = inner.generation.load(Ordering::Acquire);
        if entry.clean_at.load(Ordering::Acquire) != generation {
            if let Some(why) = self.revoked(&entry.principal, now) {
                return Some(Err(why));
            }
            entry.clean_at.store(generation, Ordering::Release);
        }
        Some(Ok(entry.principal.clone()))
    }

    fn revoked(&self, principal: &Principal, now: i64) -> Option<Refusal> {
        if !self.is_synced() {
            return Some(Refusal::NotReady);
        }
        let revoked = self.inner.revoked.read().ok()?;
        revoked.refuses(&principal.0, now).map(Refusal::invalid)
    }

    /// Verifies a JWT that is not in the cache, and caches it.
    async fn verify_fresh(&self, token: &str) -> Result<Principal, Refusal> {
        if !self.is_synced() {
            return Err(Refusal::NotReady);
        }
        let now = unix_now();
        let claims = match self.verify_signed(token, now) {
            Err(JwtError::UnknownKey) => {
                if self.refetch_for_unknown_kid().await {
                    self.verify_signed(token, now)
                } else {
                    Err(JwtError::UnknownKey)
                }
            }
            other => other,
        }
        .map_err(|e| Refusal::Invalid(e.to_string()))?;
        let permissions = self.inner.catalog.permissions(claims.scopes());
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let identity = Identity {
            installation: text(claims.extra.get("ins")),
            session: text(claims.extra.get("sid")),
            scopes: claims.scopes().map(str::to_owned).collect(),
            subject: claims.sub,
            tenant: claims.tenant,
            permissions,
            act: claims.act,
            client_id: Some(claims.client_id),
            kind: CredentialKind::AccessToken,
            token_id: Some(claims.jti),
            expires_at: Some(claims.exp),
        };
        let principal = Principal(Arc::new(identity));
        let generation = self.inner.generation.load(Ordering::Acquire);
        if let Some(why) = self.revoked(&principal, now) {
            return Err(why);
        }
        self.remember(token, &principal, claims.exp, generation, now);
        Ok(principal)
    }

    fn verify_signed(
        &self,
        token: &str,
        now: i64,
    ) -> Result<tessera_token::AccessClaims, JwtError> {
        let config = &self.inner.config;
        let keys = match self.inner.jwks.read() {
            Ok(state) => state.keys.clone(),
            Err(_) => return Err(JwtError::UnknownKey),
        };
        let expected = Validation {
            issuer: &config.issuer,
            audience: Some(&config.resource),
            typ: TokenType::AccessToken,
            now,
            leeway_secs: config.leeway_secs,
        };
        tessera_token::verify(token, &*keys, &expected)
    }

    fn remember(&self, token: &str, principal: &Principal, exp: i64, generation: u64, now: i64) {
        let Some((_, signature)) = token.rsplit_once('.') else {
            return;
        };
        let Ok(mut tokens) = self.inner.tokens.write() else {
            return;
        };
        if tokens.len() >= self.inner.config.token_cache_size {
            tokens.retain(|_, e| e.valid_until > now);
            if tokens.len() >= self.inner.config.token_cache_size {
                // Still full of live tokens: start over rather than grow without bound.
                tokens.clear();
            }
        }
        tokens.insert(
            signature.into(),
            CachedToken {
                token: token.into(),
                principal: principal.clone(),
                valid_until: exp.saturating_add(self.inner.config.leeway_secs.max(0)),
                clean_at: AtomicU64::new(generation),
            },
        );
    }

    /// Refetches the JWKS for an unknown `kid`, at most once per configured interval.
    /// Returns whether a fetch happened (so verification is worth retrying).
    async fn refetch_for_unknown_kid(&self) -> bool {
        let every = self.inner.config.unknown_kid_refetch;
        let due = |state: &JwksState| state.last_fetch.is_none_or(|t| t.elapsed() >= every);
        if !self.inner.jwks.read().map(|s| due(&s)).unwrap_or(false) {
            return false;
        }
        let _single = self.inner.jwks_fetching.lock().await;
        // Another request may have refetched while this one waited: retry with its keys.
        match self.inner.jwks.write() {
            Ok(mut s) if due(&s) => s.last_fetch = Some(Instant::now()),
            Ok(_) => return true,
            Err(_) => return false,
        }
        self.refresh_jwks().await.is_ok()
    }

    /// Fetches the JWKS now and installs it.
    pub(crate) async fn refresh_jwks(&self) -> Result<Duration, GuardError> {
        self.inner.jwks_fetches.fetch_add(1, Ordering::Relaxed);
        let (keys, ttl) = fetch_jwks(&self.inner.config).await?;
        if let Ok(mut s) = self.inner.jwks.write() {
            s.keys = Arc::new(keys);
            s.expires = Instant::now() + ttl;
        }
        Ok(ttl)
    }

    /// When the current JWKS expires.
    pub(crate) fn jwks_expires(&self) -> Instant {
        self.inner
            .jwks
            .read()
            .map(|s| s.expires)
            .unwrap_or_else(|_| Instant::now())
    }

    /// Applies a page of the feed (and the resync rule: `fresh` replaces the whole state).
    pub(crate) fn apply_page(&self, page: &FeedPage, fresh: Option<Revoked>) {
        let now = unix_now();
        let mut keys = Vec::new();
        if let Ok(mut revoked) = self.inner.revoked.write() {
            if let Some(fresh) = fresh {
                *revoked = fresh;
            }
            for item in &page.items {
                if let Some(key) = revoked.apply(item) {
                    keys.push(key);
                }
            }
            revoked.prune(now);
        }
        if let Ok(n) = page.next.parse::<i64>() {
            self.inner.latest_revision.fetch_max(n, Ordering::AcqRel);
        }
        if !keys.is_empty() {
            if let Ok(mut m) = self.inner.api_keys.lock() {
                m.retain(|_, a| {
                    a.principal
                        .as_ref()
                        .is_none_or(|p| !keys.iter().any(|k| k == p.subject()))
                });
            }
        }
        if let Ok(mut c) = self.inner.cursor.lock() {
            *c = Some(page.next.clone());
        }
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Builds the state of a resync in a side buffer (so requests keep the old state until
    /// the new one is complete).
    pub(crate) fn note_resync(&self) {
        self.inner.resyncs.fetch_add(1, Ordering::Relaxed);
    }

    /// Notes a successful read of the feed.
    pub(crate) fn note_read(&self) {
        let ms = self.inner.started.elapsed().as_millis() as u64;
        self.inner.last_read_ms.store(ms, Ordering::Release);
    }

    pub(crate) fn set_synced(&self) {
        self.inner.synced.store(true, Ordering::Release);
    }
}

/// `application/x-www-form-urlencoded` value encoding.
pub(crate) fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn auth_headers(config: &GuardConfig) -> Vec<(HeaderName, String)> {
    let mut h = vec![(ACCEPT, "application/json".to_owned())];
    if let Some(key) = &config.credential {
        h.push((AUTHORIZATION, format!("Bearer {key}")));
    }
    h
}

/// `GET <tessera><path>` (with the credential when `auth`), allowing `extra` beyond the
/// configured timeout.
pub(crate) async fn get(
    config: &GuardConfig,
    path: &str,
    auth: bool,
    extra: Duration,
) -> Result<http::Answer, GuardError> {
    let headers = if auth {
        auth_headers(config)
    } else {
        vec![(ACCEPT, "application/json".to_owned())]
    };
    http::send(
        Method::GET,
        &format!("{}{path}", config.tessera_url),
        &headers,
        None,
        config.http_timeout + extra,
    )
    .await
}

pub(crate) async fn call(
    config: &GuardConfig,
    method: Method,
    path: &str,
    body: Option<(&'static str, Vec<u8>)>,
) -> Result<http::Answer, GuardError> {
    http::send(
        method,
        &format!("{}{path}", config.tessera_url),
        &auth_headers(config),
        body,
        config.http_timeout,
    )
    .await
}

/// Fetches the JWKS and its lifetime (`Cache-Control: max-age`, bounded below).
async fn fetch_jwks(config: &GuardConfig) -> Result<(JwkSet, Duration), GuardError> {
    let answer = get(config, "/.well-known/jwks.json", false, Duration::ZERO).await?;
    if answer.status != StatusCode::OK {
        return Err(GuardError::Protocol(format!("jwks: {}", answer.status)));
    }
    let value: Value = answer.json("jwks")?;
    let keys = JwkSet::from_json(&value).map_err(|e| GuardError::Protocol(format!("jwks: {e}")))?;
    let ttl = http::max_age(&answer.headers)
        .unwrap_or(config.jwks_default_ttl)
        .max(config.jwks_min_ttl);
    Ok((keys, ttl))
}
