//! Verifying access tokens (RFC 9068 §4): the one check every access token goes through —
//! signature and claims, then the agency's revocation state (revoked `jti`, revoked grant
//! `sid`, uninstalled installation `ins`), a deleted client or agency, a disabled user or
//! impersonator — and the caller an active token stands for.
//!
//! INVARIANT: a token is active only if all of those hold *now*; "cannot tell" (the store or
//! the key ring unavailable) is a [`VerifyError`], never [`Inactive`]. The verified-token cache
//! is keyed by the token's keyed hash and used only while the tenant agency and the client's
//! owner agency keep their generations.

use std::sync::Arc;

use serde_json::Value;
use tessera_core::{AccountId, AgencyId, PrincipalId, UserId};
use tessera_store::{Status, StoreError};
use tessera_token::{AccessClaims, Validation};

use super::cache::Verified;
use super::client;
use super::error::OAuthError;
use super::scope::scope_permissions;
use super::tenant::{active_installation, is_platform};
use crate::caller::Caller;
use crate::engine::EngineError;
use crate::services::Services;

/// The most verified tokens remembered before the cache is cleared.
const MAX_VERIFIED: usize = 1 << 18;

/// Why a token could not be checked, or (from [`caller_from_claims`]) stands for no caller.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No signing key is loaded yet: nothing can be verified (`temporarily_unavailable`).
    #[error("no signing key is loaded yet")]
    NoKeys,
    /// The store failed (an outage is `temporarily_unavailable`).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// This node has not caught up with the agency's changes.
    #[error("this node has not reached revision {wanted} yet (it is at {have}); retry shortly")]
    Behind {
        /// Asked for.
        wanted: i64,
        /// Applied.
        have: i64,
    },
    /// The claims stand for no caller (`invalid_token`).
    #[error("{0}")]
    Invalid(&'static str),
}

impl From<EngineError> for VerifyError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(s) => Self::Store(s),
            EngineError::RevisionNotReached { wanted, have } => Self::Behind { wanted, have },
        }
    }
}

impl From<VerifyError> for OAuthError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::NoKeys | VerifyError::Behind { .. } => {
                OAuthError::unavailable(e.to_string())
            }
            VerifyError::Store(s) => s.into(),
            VerifyError::Invalid(why) => OAuthError::invalid_token(why),
        }
    }
}

/// Whether `token` has the shape of a JWT (three dot-separated parts).
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// Why an access token is not active.
#[derive(Debug)]
pub enum Inactive {
    /// It failed verification (signature, claims, type, time).
    Invalid(tessera_token::JwtError),
    /// It names something that is gone or revoked.
    Revoked(&'static str),
    /// A claim has the wrong form.
    Malformed(&'static str),
    /// Its agency, its account or its client's owner is suspended (reinstating restores it).
    /// Every other check passed: the claims are given, so the token can still be revoked.
    Suspended(crate::suspension::Suspended, Arc<AccessClaims>),
}

impl std::fmt::Display for Inactive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "{e}"),
            Self::Revoked(w) | Self::Malformed(w) => f.write_str(w),
            Self::Suspended(why, _) => f.write_str(why.message()),
        }
    }
}

impl crate::cluster::replica::ReplicaFailure for VerifyError {
    fn replica_failed(&self) -> bool {
        matches!(self, Self::Store(e) if crate::cluster::replica::ReplicaFailure::replica_failed(e))
    }
}

/// Checks an access token: signature and claims (for `audience`, or any audience for the
/// issuer's own endpoints), then whether everything it names is still valid, reading the
/// primary.
pub async fn check_access_token(
    state: &Services,
    token: &str,
    audience: Option<&str>,
) -> Result<Result<Arc<AccessClaims>, Inactive>, VerifyError> {
    check_access_token_on(state, state.store.as_ref(), token, audience).await
}

/// [`check_access_token`], its agency, user and key rows read from `store` (introspection
/// passes a replica that has applied this node's revision; authentication the primary).
pub async fn check_access_token_on(
    state: &Services,
    store: &dyn tessera_store::Store,
    token: &str,
    audience: Option<&str>,
) -> Result<Result<Arc<AccessClaims>, Inactive>, VerifyError> {
    let now_ms = state.clock.now();
    let now_s = now_ms / 1000;
    let hash = *state.pepper.hash(token.as_bytes()).as_bytes();
    let cache = &state.oauth.verified;
    let hit = cache.map.read().ok().and_then(|m| {
        m.get(&hash).and_then(|v| {
            let fresh = v.claims.exp > now_s
                && state.engine.generation_of(&v.agency) == v.tenant_generation
                && v.client_generation
                    .as_ref()
                    .is_none_or(|(a, g)| state.engine.generation_of(a) == *g);
            fresh.then(|| v.claims.clone())
        })
    });
    if let Some(claims) = hit {
        if audience.is_none_or(|a| claims.aud.iter().any(|x| x == a)) {
            // Checked on every use: a cached verification never outlives a suspension.
            if let Some(why) = suspension_of(state, &claims).await? {
                return Ok(Err(Inactive::Suspended(why, claims)));
            }
            return Ok(Ok(claims));
        }
    }
    let Some(ring) = state.keys.ring() else {
        return Err(VerifyError::NoKeys);
    };
    let claims = match tessera_token::verify(
        token,
        &*ring,
        &Validation::access_token(state.oauth.issuer(), audience, now_s),
    ) {
        Ok(c) => c,
        Err(e) => return Ok(Err(Inactive::Invalid(e))),
    };
    let Ok(agency) = claims.tenant.agency.parse::<AgencyId>() else {
        return Ok(Err(Inactive::Malformed("tenant.agency")));
    };
    let tenant_generation = state.engine.generation_of(&agency);
    // A suspension is answered last, once everything else holds (the token stays revocable).
    let agency_suspended = match store.get_agency(&agency).await {
        Ok(a) if a.status == Status::Active => false,
        // Suspended before this node applied the feed: refused the same way.
        Ok(a) if a.status == Status::Suspended => true,
        Ok(_) | Err(StoreError::NotFound) => return Ok(Err(Inactive::Revoked("agency"))),
        Err(e) => return Err(e.into()),
    };
    let platform = is_platform(state, &agency).await?;
    let entry = state.engine.entry(&agency, platform, None).await?;
    if entry.tokens.revoked_tokens.contains(&claims.jti) {
        return Ok(Err(Inactive::Revoked("token")));
    }
    if let Some(sid) = claims.extra.get("sid") {
        let Some(sid) = sid.as_str() else {
            return Ok(Err(Inactive::Malformed("sid")));
        };
        if entry.tokens.revoked_grants.contains(sid) {
            return Ok(Err(Inactive::Revoked("grant")));
        }
    }
    if let Some(ins) = claims.extra.get("ins") {
        let Some(ins) = ins.as_str() else {
            return Ok(Err(Inactive::Malformed("ins")));
        };
        // A miss is checked at the store's revision (an installation just made elsewhere).
        if !entry.tokens.installations.contains_key(ins)
            && active_installation(state, &agency, ins).await?.is_none()
        {
            return Ok(Err(Inactive::Revoked("installation")));
        }
    }
    let scope = state.admission.admit(agency.clone());
    if let Ok(user) = claims.sub.parse::<UserId>() {
        match store.get_user(&scope, &user).await {
            Ok(u) if u.status == Status::Active => {}
            Ok(_) | Err(StoreError::NotFound) => return Ok(Err(Inactive::Revoked("user"))),
            Err(e) => return Err(e.into()),
        }
    }
    // Under impersonation the impersonator must still be active too: disabling them, or
    // revoking their key, ends every session they opened.
    if let Some(actor) = claims.act.as_ref().map(|a| a.sub.as_str()) {
        let active = if let Ok(u) = actor.parse::<UserId>() {
            match store.get_user(&scope, &u).await {
                Ok(u) => u.status == Status::Active,
                Err(StoreError::NotFound) => false,
                Err(e) => return Err(e.into()),
            }
        } else if let Ok(k) = actor.parse::<tessera_core::KeyId>() {
            match store.get_api_key(&scope, &k).await {
                Ok(k) => k.revoked_at.is_none() && k.expires_at.is_none_or(|t| t > now_ms),
                Err(StoreError::NotFound) => false,
                Err(e) => return Err(e.into()),
            }
        } else {
            false
        };
        if !active {
            return Ok(Err(Inactive::Revoked("impersonator")));
        }
    }
    let client_generation = if claims.client_id.starts_with("key_") {
        // Exchanged from an API key: the key must still be valid.
        let Ok(key) = claims.client_id.parse::<tessera_core::KeyId>() else {
            return Ok(Err(Inactive::Malformed("client_id")));
        };
        match store.get_api_key(&scope, &key).await {
            Ok(k) if k.revoked_at.is_none() && k.expires_at.is_none_or(|t| t > now_ms) => {}
            Ok(_) | Err(StoreError::NotFound) => return Ok(Err(Inactive::Revoked("api_key"))),
            Err(e) => return Err(e.into()),
        }
        None
    } else {
        match client::find(state, &claims.client_id).await? {
            Some(c) => {
                let owner = c.app.agency_id.clone();
                let g = state.engine.generation_of(&owner);
                Some((owner, g))
            }
            None => return Ok(Err(Inactive::Revoked("client"))),
        }
    };
    let claims = Arc::new(claims);
    let suspended = if agency_suspended {
        Some(crate::suspension::Suspended::Agency)
    } else {
        suspension_of(state, &claims).await?
    };
    if let Some(why) = suspended {
        return Ok(Err(Inactive::Suspended(why, claims)));
    }
    if let Ok(mut m) = cache.map.write() {
        if m.len() >= MAX_VERIFIED {
            m.clear();
        }
        m.insert(
            hash,
            Verified {
                claims: claims.clone(),
                agency,
                tenant_generation,
                client_generation,
            },
        );
    }
    Ok(Ok(claims))
}

/// Why a token is refused for a suspension (its agency, its tenant account, or the owner of
/// its client), from the node's in-memory view.
pub async fn suspension_of(
    state: &Services,
    claims: &AccessClaims,
) -> Result<Option<crate::suspension::Suspended>, VerifyError> {
    let view = state.engine.suspended().await?;
    if view.is_empty() {
        return Ok(None);
    }
    let Ok(agency) = claims.tenant.agency.parse::<AgencyId>() else {
        return Ok(None);
    };
    let account = claims
        .tenant
        .account
        .as_deref()
        .and_then(|a| a.parse::<AccountId>().ok());
    Ok(view.credential(&agency, account.as_ref(), Some(&claims.client_id)))
}

/// The caller an active access token stands for: its subject, capped by its scopes, its
/// installation's scopes and (impersonating) the impersonation policy.
pub async fn caller_from_claims(
    state: &Services,
    claims: &Arc<AccessClaims>,
) -> Result<Caller, VerifyError> {
    let agency: AgencyId = claims
        .tenant
        .agency
        .parse()
        .map_err(|_| VerifyError::Invalid("malformed tenant"))?;
    let account: Option<AccountId> = match &claims.tenant.account {
        Some(a) => Some(
            a.parse()
                .map_err(|_| VerifyError::Invalid("malformed tenant account"))?,
        ),
        None => None,
    };
    let scopes: Vec<String> = claims.scopes().map(str::to_owned).collect();
    let mut cap = scope_permissions(&state.catalog, &scopes);
    let platform = is_platform(state, &agency).await?;
    let installation = match claims.extra.get("ins").and_then(Value::as_str) {
        Some(ins) => {
            let i = active_installation(state, &agency, ins)
                .await?
                .ok_or(VerifyError::Invalid("the installation was removed"))?;
            cap = cap.intersect(&scope_permissions(&state.catalog, &i.scopes));
            Some(i)
        }
        None => None,
    };
    if claims.act.is_some() {
        cap = cap.difference(&state.oauth.impersonation_forbidden);
    }
    let (principal, own) = if let Ok(user) = claims.sub.parse::<UserId>() {
        (PrincipalId::User(user), None)
    } else if let Some(i) = &installation {
        (PrincipalId::Installation(i.id.clone()), Some(cap))
    } else {
        return Err(VerifyError::Invalid(
            "the token's subject is neither a user nor an installation",
        ));
    };
    Ok(Caller {
        principal,
        agency,
        is_platform: platform,
        credential: crate::caller::Credential::AccessToken(claims.clone()),
        cap: tessera_core::CredentialCap {
            permissions: Some(cap),
            account,
        },
        own,
    })
}

/// The actor of an impersonation token, for audit records.
pub fn actor_of(claims: &AccessClaims) -> Option<&str> {
    claims.act.as_ref().map(|a| a.sub.as_str())
}
