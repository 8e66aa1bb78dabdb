//! Authentication: turns a bearer credential (an API key or an RFC 9068 access token) into a
//! `Caller`, from the engine's cache when this node has seen it since its agency last changed,
//! else from the store. INVARIANT (I4): API keys are found by their peppered hash, after their
//! format and checksum are checked, never by their plaintext.

use std::sync::Arc;

use tessera_core::{AgencyId, CredentialCap, PermissionSet, PrincipalId};
use tessera_store::{ApiKey, Status, TenantScope};
use tessera_token::{check_api_key_format, looks_like_api_key};

use crate::caller::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::services::Services;

/// The `Authorization` header of a request, as the HTTP layer read it.
#[derive(Clone, Copy, Debug)]
pub enum Presented<'a> {
    /// No header.
    Absent,
    /// A header that is not visible ASCII.
    NotText,
    /// The header's value.
    Value(&'a str),
}

/// Authenticates the `Authorization: Bearer` credential: from the engine's cache when this
/// node has seen it since its agency last changed, else from the store.
pub async fn authenticate(
    state: &Services,
    header: Presented<'_>,
) -> Result<Arc<Caller>, ApiError> {
    let raw = match header {
        Presented::Absent => {
            return Err(ApiError::unauthenticated(
                "send a credential as `Authorization: Bearer <API key or access token>`",
            ))
        }
        Presented::NotText => {
            return Err(ApiError::unauthenticated(
                "the authorization header is not valid text",
            ))
        }
        Presented::Value(v) => v,
    };
    let token = match raw.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
        _ => {
            return Err(ApiError::unauthenticated(
                "use the `Bearer` authorization scheme",
            ))
        }
    };
    // A Bearer credential was presented: a refusal says `invalid_token` (RFC 6750 §3.1).
    authenticate_token(state, token)
        .await
        .map_err(ApiError::presented)
}

/// Authenticates a bearer credential: an API key or an access token.
pub async fn authenticate_token(state: &Services, token: &str) -> Result<Arc<Caller>, ApiError> {
    if crate::oauth::tokens::looks_like_jwt(token) {
        return authenticate_access_token(state, token).await;
    }
    if !looks_like_api_key(token) {
        return Err(ApiError::unauthenticated(
            "the credential is neither a Tessera API key nor an access token",
        ));
    }
    // The format and checksum are checked before any storage read.
    check_api_key_format(token)
        .map_err(|e| ApiError::unauthenticated(format!("invalid API key: {e}")))?;
    let invalid = || ApiError::unauthenticated("the API key is invalid, expired or revoked");
    let hash = state.pepper.hash(token.as_bytes());
    let now = state.clock.now();
    if let Some(caller) = state.engine.cached_caller(hash.as_bytes(), now).await {
        if let Some(key) = &caller.key {
            state.key_usage.record(&caller.agency, &key.id, now);
        }
        return Ok(caller);
    }
    let found = state
        .store
        .find_key_by_secret(hash.as_bytes())
        .await?
        .ok_or_else(invalid)?;
    // Read before the key: a revocation committed after this point moves the generation and
    // keeps this authentication out of the cache.
    let generation = state.engine.generation_of(&found.agency);
    if found.valid_until.is_some_and(|until| until <= now) {
        return Err(invalid());
    }
    let agency = match state.store.get_agency(&found.agency).await {
        Ok(a) if a.status == Status::Active => a,
        Ok(_) | Err(tessera_store::StoreError::NotFound) => return Err(invalid()),
        Err(e) => return Err(e.into()),
    };
    let scope = TenantScope::authenticated(agency.id.clone());
    let key = state
        .store
        .get_api_key(&scope, &found.key)
        .await
        .map_err(|e| match e {
            tessera_store::StoreError::NotFound => invalid(),
            e => e.into(),
        })?;
    if key.revoked_at.is_some() || key.expires_at.is_some_and(|at| at <= now) {
        return Err(invalid());
    }
    let (own, cap) = key_grant(state, &key).ok_or_else(invalid)?;
    state.key_usage.record(&agency.id, &key.id, now);
    let valid_until = match (found.valid_until, key.expires_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let caller = Arc::new(Caller {
        principal: PrincipalId::Key(key.id.clone()),
        agency: agency.id,
        is_platform: agency.is_platform,
        cap: CredentialCap {
            permissions: cap,
            account: key.account.clone(),
        },
        own,
        key: Some(key),
        token: None,
    });
    state
        .engine
        .remember_caller(*hash.as_bytes(), caller.clone(), valid_until, generation)
        .await;
    Ok(caller)
}

/// Authenticates an access token (RFC 9068 JWT): verified, checked against the agency's
/// revocations, and cached with the agency's callers until it expires or the agency changes.
async fn authenticate_access_token(state: &Services, token: &str) -> Result<Arc<Caller>, ApiError> {
    let hash = state.pepper.hash(token.as_bytes());
    let now = state.clock.now();
    if let Some(caller) = state.engine.cached_caller(hash.as_bytes(), now).await {
        // The caller is cached with its tenant agency; its client (a marketplace app lives in
        // another agency) is checked against that agency's state too.
        let client_ok = match caller.token.as_ref().map(|t| t.client_id.as_str()) {
            Some(id) if !id.starts_with("key_") => crate::oauth::client::lookup(state, id)
                .await
                .map_err(oauth_to_api)?
                .is_some(),
            _ => true,
        };
        if client_ok {
            return Ok(caller);
        }
        return Err(ApiError::unauthenticated(
            "the access token is not valid: its client was deleted",
        ));
    }
    let issuer = state.oauth.issuer().to_owned();
    let claims = match crate::oauth::tokens::check_access_token(state, token, Some(&issuer)).await {
        Ok(Ok(c)) => c,
        Ok(Err(why)) => {
            return Err(ApiError::unauthenticated(format!(
                "the access token is not valid: {why}"
            )))
        }
        Err(e) => return Err(oauth_to_api(e)),
    };
    let agency: AgencyId = claims
        .tenant
        .agency
        .parse()
        .map_err(|_| ApiError::unauthenticated("the access token has a malformed tenant"))?;
    let generation = state.engine.generation_of(&agency);
    let caller = Arc::new(
        crate::oauth::tokens::caller_from_claims(state, &claims)
            .await
            .map_err(oauth_to_api)?,
    );
    state
        .engine
        .remember_caller(
            *hash.as_bytes(),
            caller.clone(),
            Some(claims.exp.saturating_mul(1000)),
            generation,
        )
        .await;
    Ok(caller)
}

fn oauth_to_api(e: crate::oauth::OAuthError) -> ApiError {
    match e.status.as_u16() {
        503 => ApiError::new(ErrorCode::Unavailable, e.description),
        401 => ApiError::unauthenticated(e.description),
        s if s >= 500 => ApiError::internal(e.description),
        _ => ApiError::unauthenticated(e.description),
    }
}

/// An API key's own grant and cap: its scopes' permissions, or nothing for an unscoped key
/// (which holds only what is bound to it). `None` if a scope left the catalog.
pub fn key_grant(
    state: &Services,
    key: &ApiKey,
) -> Option<(Option<PermissionSet>, Option<PermissionSet>)> {
    if key.scopes.is_empty() {
        return Some((None, None));
    }
    let set = state.catalog.scopes_permissions(&key.scopes).ok()?;
    Some((Some(set), Some(set)))
}
