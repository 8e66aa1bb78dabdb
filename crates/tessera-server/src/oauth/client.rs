//! Client authentication (RFC 6749 §2.3): `client_secret_basic`, `client_secret_post`, and
//! `none` for public clients, with the client records cached per node and dropped when their
//! owner agency changes (the change feed moves its generation).
//!
//! INVARIANT (I4): a secret is compared as a keyed hash, in constant time; a failed
//! authentication says nothing about whether the client exists.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use tessera_core::AppId;
use tessera_store::{App, ClientRecord, Installation};

use super::OAuthError;
use crate::services::Services;

/// The most clients remembered before the cache is cleared.
const MAX_CLIENTS: usize = 100_000;
/// A client's list of installations is re-read at least this often (ms), so a new
/// installation in another agency is seen.
const INSTALLATIONS_TTL_MS: i64 = 30_000;

#[derive(Debug)]
struct CachedClient {
    record: Arc<ClientRecord>,
    generation: u64,
}

#[derive(Debug)]
struct CachedInstallations {
    list: Arc<Vec<Installation>>,
    read_at: i64,
}

/// Recently used clients and their installations.
#[derive(Debug, Default)]
pub struct ClientCache {
    clients: RwLock<HashMap<String, CachedClient>>,
    installations: RwLock<HashMap<String, CachedInstallations>>,
}

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

/// Decodes `application/x-www-form-urlencoded` text (Basic credentials are encoded so,
/// RFC 6749 §2.3.1).
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The client credentials a request presents: (client_id, secret, method).
pub fn presented(
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<Option<(String, Option<String>, AuthMethod)>, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| OAuthError::invalid_client("malformed authorization header"))?;
            match v.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
                    let raw = STANDARD.decode(rest.trim()).map_err(|_| {
                        OAuthError::invalid_client("Basic credentials are not base64")
                    })?;
                    let raw = String::from_utf8(raw).map_err(|_| {
                        OAuthError::invalid_client("Basic credentials are not UTF-8")
                    })?;
                    let (id, secret) = raw.split_once(':').ok_or_else(|| {
                        OAuthError::invalid_client("Basic credentials lack a `:`")
                    })?;
                    let id = form_decode(id)
                        .ok_or_else(|| OAuthError::invalid_client("malformed client id"))?;
                    let secret = form_decode(secret)
                        .ok_or_else(|| OAuthError::invalid_client("malformed client secret"))?;
                    Some((id, secret))
                }
                _ => None,
            }
        }
        None => None,
    };
    match (basic, form_id, form_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
            "use one client authentication method, not both Basic and client_secret",
        )),
        (Some((id, secret)), form_id, None) => {
            if form_id.is_some_and(|f| f != id) {
                return Err(OAuthError::invalid_request(
                    "`client_id` differs from the Basic credentials",
                ));
            }
            Ok(Some((id, Some(secret), AuthMethod::Basic)))
        }
        (None, Some(id), Some(secret)) => Ok(Some((
            id.to_owned(),
            Some(secret.to_owned()),
            AuthMethod::Post,
        ))),
        (None, Some(id), None) => Ok(Some((id.to_owned(), None, AuthMethod::None))),
        (None, None, Some(_)) => Err(OAuthError::invalid_request(
            "`client_secret` without `client_id`",
        )),
        (None, None, None) => Ok(None),
    }
}

/// The client `id`, from the cache while its owner agency is unchanged. `None`: no such
/// client, or a deleted one.
pub async fn lookup(state: &Services, id: &str) -> Result<Option<Arc<ClientRecord>>, OAuthError> {
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
    let Some(found) = state.store.find_client(&app_id).await? else {
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

/// Authenticates the client of a token-endpoint request. Confidential clients must present a
/// valid secret; public clients present their id only.
pub async fn authenticate(
    state: &Services,
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<Client, OAuthError> {
    let (id, secret, method) = presented(headers, form_id, form_secret)?
        .ok_or_else(|| OAuthError::invalid_client("authenticate the client (client_id)"))?;
    authenticate_as(state, &id, secret.as_deref(), method).await
}

/// Authenticates presented client credentials.
pub async fn authenticate_as(
    state: &Services,
    id: &str,
    secret: Option<&str>,
    method: AuthMethod,
) -> Result<Client, OAuthError> {
    let fail = || OAuthError::invalid_client("client authentication failed");
    let record = lookup(state, id).await?;
    let Some(record) = record else {
        // Do the same work as for a known client.
        if let Some(s) = secret {
            std::hint::black_box(state.pepper.hash(s.as_bytes()));
        }
        return Err(fail());
    };
    let now = state.clock.now();
    match (record.app.confidential, secret) {
        (true, Some(secret)) => {
            let hash = state.pepper.hash(secret.as_bytes());
            let mut ok = false;
            for s in &record.secrets {
                let valid = s.valid_until.is_none_or(|t| t > now);
                ok |= valid & tessera_token::ct_eq(hash.as_bytes(), &s.hash);
            }
            if !ok {
                return Err(fail());
            }
        }
        (true, None) => {
            return Err(OAuthError::invalid_client(
                "this client is confidential: authenticate with its secret",
            ))
        }
        (false, Some(_)) => {
            return Err(OAuthError::invalid_client(
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

/// The active installations of client `app` in every agency (cached briefly; each is checked
/// against its agency's current state before use).
pub async fn installations(
    state: &Services,
    app: &AppId,
    refresh: bool,
) -> Result<Arc<Vec<Installation>>, OAuthError> {
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
    let list = Arc::new(state.store.client_installations(app).await?);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        h.insert(header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let got = presented(&basic("app%5F1", "a%2Bb+c"), None, None).unwrap();
        assert_eq!(
            got,
            Some(("app_1".into(), Some("a+b c".into()), AuthMethod::Basic))
        );
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        assert!(presented(&basic("a", "b"), Some("a"), Some("b")).is_err());
        assert!(presented(&basic("a", "b"), Some("other"), None).is_err());
        assert!(presented(&HeaderMap::new(), None, Some("s")).is_err());
    }

    #[test]
    fn post_and_none() {
        let h = HeaderMap::new();
        assert_eq!(
            presented(&h, Some("c"), Some("s")).unwrap(),
            Some(("c".into(), Some("s".into()), AuthMethod::Post))
        );
        assert_eq!(
            presented(&h, Some("c"), None).unwrap(),
            Some(("c".into(), None, AuthMethod::None))
        );
        assert_eq!(presented(&h, None, None).unwrap(), None);
    }

    #[test]
    fn bad_percent_escapes_fail() {
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%4"), None);
        assert_eq!(form_decode("a%41"), Some("aA".into()));
    }
}
