//! API keys (`tsk_…`) by introspection (`POST /oauth/introspect`, RFC 7662), with short
//! positive and negative caches keyed by the key's SHA-256.
//! INVARIANT: the key itself is never kept; a cached answer still passes the revocation
//! state (agency, account suspensions) on every use; "cannot ask" is 503, never inactive.

use std::sync::Arc;
use std::time::Instant;

use hyper::{Method, StatusCode};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::guard::{call, form_encode, unix_now, Guard, KeyAnswer};
use crate::principal::{CredentialKind, Identity, Principal, Tenant};
use crate::refusal::Refusal;

#[derive(Deserialize)]
struct Introspection {
    #[serde(default)]
    active: bool,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    tenant: Option<Tenant>,
    #[serde(default)]
    exp: Option<i64>,
}

impl Guard {
    /// An API key, by introspection (cached briefly, positive and negative).
    pub(crate) async fn api_key(&self, key: &str) -> Result<Principal, Refusal> {
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let now = Instant::now();
        let hit = self
            .inner
            .api_keys
            .lock()
            .ok()
            .and_then(|m| m.get(&hash).filter(|a| a.until > now).cloned());
        let principal = match hit {
            Some(answer) => answer.principal,
            None => {
                let principal = self.introspect(key).await?;
                let config = &self.inner.config;
                let ttl = if principal.is_some() {
                    config.api_key_ttl
                } else {
                    config.api_key_negative_ttl
                };
                if let Ok(mut m) = self.inner.api_keys.lock() {
                    if m.len() >= config.api_key_cache_size {
                        m.retain(|_, a| a.until > now);
                        if m.len() >= config.api_key_cache_size {
                            m.clear();
                        }
                    }
                    m.insert(
                        hash,
                        KeyAnswer {
                            principal: principal.clone(),
                            until: now + ttl,
                        },
                    );
                }
                principal
            }
        };
        let principal = principal.ok_or_else(|| Refusal::invalid("api key is not active"))?;
        if principal.expires_at().is_some_and(|exp| exp <= unix_now()) {
            return Err(Refusal::invalid("api key has expired"));
        }
        // Agency, account and user suspensions from the feed apply to keys as well.
        if let Ok(revoked) = self.inner.revoked.read() {
            if let Some(why) = revoked.refuses(&principal.0, unix_now()) {
                return Err(Refusal::invalid(why));
            }
        }
        Ok(principal)
    }

    async fn introspect(&self, key: &str) -> Result<Option<Principal>, Refusal> {
        let config = &self.inner.config;
        let body = format!("token={}", form_encode(key)).into_bytes();
        let answer = call(
            config,
            Method::POST,
            "/oauth/introspect",
            Some(("application/x-www-form-urlencoded", body)),
        )
        .await
        .map_err(|e| Refusal::Unavailable(e.to_string()))?;
        if answer.status != StatusCode::OK {
            return Err(Refusal::Unavailable(format!(
                "introspection answered {}",
                answer.status
            )));
        }
        let i: Introspection = answer
            .json("introspection")
            .map_err(|e| Refusal::Unavailable(e.to_string()))?;
        let (true, Some(sub), Some(tenant)) = (i.active, i.sub, i.tenant) else {
            return Ok(None);
        };
        let scopes: Vec<String> = i
            .scope
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let permissions = self
            .inner
            .catalog
            .permissions(scopes.iter().map(String::as_str));
        Ok(Some(Principal(Arc::new(Identity {
            subject: sub,
            tenant,
            scopes,
            permissions,
            act: None,
            installation: None,
            client_id: i.client_id,
            kind: CredentialKind::ApiKey,
            token_id: None,
            session: None,
            expires_at: i.exp,
        }))))
    }
}
