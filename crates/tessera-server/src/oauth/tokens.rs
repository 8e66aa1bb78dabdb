//! Minting and checking Tessera's tokens: RFC 9068 access tokens, OIDC id tokens, opaque
//! refresh tokens and codes; and the one check every access token goes through — signature
//! and claims, then the agency's revocation state (revoked `jti`, revoked grant `sid`,
//! uninstalled installation `ins`), a deleted client or agency, a disabled user.
//!
//! INVARIANT: a token is active only if all of those hold *now*; the verified-token cache is
//! keyed by the token's keyed hash and dropped whenever the tenant agency or the client's
//! owner agency changes (their generations move).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};
use tessera_core::{AccountId, AgencyId, InstallationId, PermissionSet, PrincipalId, UserId};
use tessera_store::{Status, StoreError, TenantScope};
use tessera_token::{AccessClaims, Actor, Algorithm, IdClaims, SecretString, Tenant, Validation};

use super::OAuthError;
use crate::auth::Caller;
use crate::services::Services;

/// The most verified tokens remembered before the cache is cleared.
const MAX_VERIFIED: usize = 1 << 18;

/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "trt_";
/// Prefix of authorization codes.
pub const CODE_PREFIX: &str = "tac_";
/// Prefix of client secrets.
pub const CLIENT_SECRET_PREFIX: &str = "tcs_";

#[derive(Debug)]
struct Verified {
    claims: Arc<AccessClaims>,
    agency: AgencyId,
    tenant_generation: u64,
    client_generation: Option<(AgencyId, u64)>,
}

/// Access tokens that passed every check, by keyed hash.
#[derive(Debug, Default)]
pub struct VerifiedCache {
    map: RwLock<HashMap<[u8; 32], Verified>>,
}

/// What an access token is issued with.
#[derive(Clone, Debug)]
pub struct AccessSpec {
    /// `usr_…`, or the client id for client credentials.
    pub sub: String,
    /// The client.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The agency acted in.
    pub agency: AgencyId,
    /// The account, if bound to one.
    pub account: Option<AccountId>,
    /// The impersonator or delegate.
    pub act: Option<Actor>,
    /// The grant (refresh family) it came from.
    pub sid: Option<String>,
    /// The installation it acts through.
    pub ins: Option<InstallationId>,
    /// Lifetime, seconds.
    pub ttl: i64,
    /// The signing algorithm (the client's choice).
    pub alg: Algorithm,
}

/// An issued access token.
#[derive(Debug)]
pub struct Issued {
    /// The JWT.
    pub token: String,
    /// Its `jti`.
    pub jti: String,
    /// Its expiry (epoch seconds).
    pub exp: i64,
    /// Seconds until expiry.
    pub expires_in: i64,
}

fn signing_ring(
    state: &Services,
    alg: Algorithm,
    now_s: i64,
) -> Result<Arc<tessera_token::KeyRing>, OAuthError> {
    let ring = state
        .keys
        .ring()
        .ok_or_else(|| OAuthError::unavailable("no signing key is loaded yet; retry shortly"))?;
    if ring.signing_key_for(alg, now_s).is_none() {
        return Err(OAuthError::unavailable(
            "no signing key is active; retry shortly",
        ));
    }
    Ok(ring)
}

/// The algorithm an app's tokens are signed with (EdDSA unless it asked for ES256 or RS256).
pub fn app_alg(app: &tessera_store::App) -> Algorithm {
    Algorithm::from_name(&app.token_signing_alg).unwrap_or(Algorithm::EdDsa)
}

/// The algorithm for tokens of `client_id` (an app's choice; EdDSA otherwise).
pub async fn client_alg(state: &Services, client_id: &str) -> Algorithm {
    match super::client::lookup(state, client_id).await {
        Ok(Some(c)) => app_alg(&c.app),
        _ => Algorithm::EdDsa,
    }
}

/// A random token id.
pub fn new_jti() -> String {
    // 22 base62 characters (~131 bits) from the thread's CSPRNG (seeded from the OS): a
    // token id must be unique and unguessable, and a system call per token is too slow.
    tessera_token::generate_opaque_token("", &mut rand::thread_rng()).expose()[..22].to_owned()
}

/// Signs an access token.
pub fn mint_access(state: &Services, spec: AccessSpec) -> Result<Issued, OAuthError> {
    let now_s = state.clock.now() / 1000;
    let ring = signing_ring(state, spec.alg, now_s)?;
    let key = ring
        .signing_key_for(spec.alg, now_s)
        .ok_or_else(|| OAuthError::unavailable("no signing key is active"))?;
    let mut extra = Map::new();
    if let Some(sid) = spec.sid {
        extra.insert("sid".into(), Value::String(sid));
    }
    if let Some(ins) = spec.ins {
        extra.insert("ins".into(), Value::String(ins.to_string()));
    }
    let jti = new_jti();
    let exp = now_s + spec.ttl;
    let claims = AccessClaims {
        iss: state.oauth.issuer().to_owned(),
        sub: spec.sub,
        aud: vec![state.oauth.issuer().to_owned()],
        exp,
        iat: now_s,
        nbf: now_s,
        jti: jti.clone(),
        client_id: spec.client_id,
        scope: spec.scopes.join(" "),
        tenant: Tenant {
            agency: spec.agency.to_string(),
            account: spec.account.map(|a| a.to_string()),
        },
        act: spec.act,
        extra,
    };
    Ok(Issued {
        token: tessera_token::encode_access_token(&claims, key),
        jti,
        exp,
        expires_in: spec.ttl,
    })
}

/// Signs an OpenID Connect id token for `user`, with the claims its scopes release.
pub fn mint_id_token(
    state: &Services,
    user: &tessera_store::User,
    client_id: &str,
    nonce: Option<String>,
    auth_time_ms: Option<i64>,
    scopes: &[String],
    alg: Algorithm,
) -> Result<String, OAuthError> {
    let now_s = state.clock.now() / 1000;
    let ring = signing_ring(state, alg, now_s)?;
    let key = ring
        .signing_key_for(alg, now_s)
        .ok_or_else(|| OAuthError::unavailable("no signing key is active"))?;
    let claims = IdClaims {
        iss: state.oauth.issuer().to_owned(),
        sub: user.id.to_string(),
        aud: vec![client_id.to_owned()],
        exp: now_s + state.oauth.settings.access_ttl,
        iat: now_s,
        auth_time: auth_time_ms.map(|t| t / 1000),
        nonce,
        azp: Some(client_id.to_owned()),
        extra: user_claims(user, scopes),
    };
    Ok(tessera_token::encode_id_token(&claims, key))
}

/// The user claims released by `scopes` (OIDC Core §5.4).
pub fn user_claims(user: &tessera_store::User, scopes: &[String]) -> Map<String, Value> {
    let mut m = Map::new();
    if scopes.iter().any(|s| s == "email") {
        m.insert("email".into(), Value::String(user.email.clone()));
        // Emails are set by agency admins, not verified by a round trip.
        m.insert("email_verified".into(), Value::Bool(false));
    }
    if scopes.iter().any(|s| s == "profile") {
        m.insert("name".into(), Value::String(user.name.clone()));
        m.insert("updated_at".into(), Value::from(user.updated_at / 1000));
    }
    m.insert("agency".into(), Value::String(user.agency_id.to_string()));
    m
}

/// A new opaque secret with `prefix` and its keyed hash.
pub fn new_secret(state: &Services, prefix: &str) -> (SecretString, Vec<u8>) {
    let secret = tessera_token::generate_opaque_token_os(prefix);
    let hash = state.pepper.hash(secret.expose().as_bytes());
    (secret, hash.as_bytes().to_vec())
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
}

impl std::fmt::Display for Inactive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "{e}"),
            Self::Revoked(w) | Self::Malformed(w) => f.write_str(w),
        }
    }
}

/// Whether an agency is the platform tenant (the id is read once).
pub async fn is_platform(state: &Services, agency: &AgencyId) -> Result<bool, StoreError> {
    if let Some(p) = state.platform_id.get() {
        return Ok(p == agency);
    }
    match state.store.platform_agency().await? {
        Some(p) => {
            let is = &p.id == agency;
            let _ = state.platform_id.set(p.id);
            Ok(is)
        }
        None => Ok(false),
    }
}

/// Checks an access token: signature and claims (for `audience`, or any audience for the
/// issuer's own endpoints), then whether everything it names is still valid.
pub async fn check_access_token(
    state: &Services,
    token: &str,
    audience: Option<&str>,
) -> Result<Result<Arc<AccessClaims>, Inactive>, OAuthError> {
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
            return Ok(Ok(claims));
        }
    }
    let Some(ring) = state.keys.ring() else {
        return Err(OAuthError::unavailable("no signing key is loaded yet"));
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
    match state.store.get_agency(&agency).await {
        Ok(a) if a.status == Status::Active => {}
        Ok(_) | Err(StoreError::NotFound) => return Ok(Err(Inactive::Revoked("agency"))),
        Err(e) => return Err(e.into()),
    }
    let platform = is_platform(state, &agency).await?;
    let entry = state
        .engine
        .entry(&agency, platform, None)
        .await
        .map_err(|e| OAuthError::from(crate::error::ApiError::from(e)))?;
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
        if !entry.tokens.installations.contains_key(ins) {
            return Ok(Err(Inactive::Revoked("installation")));
        }
    }
    let scope = TenantScope::authenticated(agency.clone());
    if let Ok(user) = claims.sub.parse::<UserId>() {
        match state.store.get_user(&scope, &user).await {
            Ok(u) if u.status == Status::Active => {}
            Ok(_) | Err(StoreError::NotFound) => return Ok(Err(Inactive::Revoked("user"))),
            Err(e) => return Err(e.into()),
        }
    }
    // Under impersonation the impersonator must still be active too: disabling them, or
    // revoking their key, ends every session they opened.
    if let Some(actor) = claims.act.as_ref().map(|a| a.sub.as_str()) {
        let active = if let Ok(u) = actor.parse::<UserId>() {
            match state.store.get_user(&scope, &u).await {
                Ok(u) => u.status == Status::Active,
                Err(StoreError::NotFound) => false,
                Err(e) => return Err(e.into()),
            }
        } else if let Ok(k) = actor.parse::<tessera_core::KeyId>() {
            match state.store.get_api_key(&scope, &k).await {
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
        match state.store.get_api_key(&scope, &key).await {
            Ok(k) if k.revoked_at.is_none() && k.expires_at.is_none_or(|t| t > now_ms) => {}
            Ok(_) | Err(StoreError::NotFound) => return Ok(Err(Inactive::Revoked("api_key"))),
            Err(e) => return Err(e.into()),
        }
        None
    } else {
        match super::client::lookup(state, &claims.client_id).await? {
            Some(c) => {
                let owner = c.app.agency_id.clone();
                let g = state.engine.generation_of(&owner);
                Some((owner, g))
            }
            None => return Ok(Err(Inactive::Revoked("client"))),
        }
    };
    let claims = Arc::new(claims);
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

/// The catalog permissions of a token's scopes (protocol scopes grant none; unknown ones
/// none either: deny by default).
pub fn scope_permissions(state: &Services, scopes: &[String]) -> PermissionSet {
    scopes
        .iter()
        .filter_map(|s| state.catalog.scope(s).map(|(_, p)| p))
        .fold(PermissionSet::default(), |a, p| a.union(&p))
}

/// The caller an active access token stands for: its subject, capped by its scopes, its
/// installation's scopes and (impersonating) the impersonation policy.
pub async fn caller_from_claims(
    state: &Services,
    claims: &Arc<AccessClaims>,
) -> Result<Caller, OAuthError> {
    let agency: AgencyId = claims
        .tenant
        .agency
        .parse()
        .map_err(|_| OAuthError::invalid_token("malformed tenant"))?;
    let account: Option<AccountId> = match &claims.tenant.account {
        Some(a) => Some(
            a.parse()
                .map_err(|_| OAuthError::invalid_token("malformed tenant account"))?,
        ),
        None => None,
    };
    let scopes: Vec<String> = claims.scopes().map(str::to_owned).collect();
    let mut cap = scope_permissions(state, &scopes);
    let platform = is_platform(state, &agency).await?;
    let installation = match claims.extra.get("ins").and_then(Value::as_str) {
        Some(ins) => {
            let entry = state
                .engine
                .entry(&agency, platform, None)
                .await
                .map_err(|e| OAuthError::from(crate::error::ApiError::from(e)))?;
            let i = entry
                .tokens
                .installations
                .get(ins)
                .cloned()
                .ok_or_else(|| OAuthError::invalid_token("the installation was removed"))?;
            cap = cap.intersect(&scope_permissions(state, &i.scopes));
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
        return Err(OAuthError::invalid_token(
            "the token's subject is neither a user nor an installation",
        ));
    };
    Ok(Caller {
        principal,
        agency,
        is_platform: platform,
        key: None,
        cap: tessera_core::CredentialCap {
            permissions: Some(cap),
            account,
        },
        own,
        token: Some(claims.clone()),
    })
}

/// The actor of an impersonation token, for audit records.
pub fn actor_of(claims: &AccessClaims) -> Option<&str> {
    claims.act.as_ref().map(|a| a.sub.as_str())
}
