//! Authentication: turns a bearer credential (an API key or an RFC 9068 access token) into a
//! `Caller`, from the engine's cache when this node has seen it since its agency last changed,
//! else from the store. INVARIANT (I4): API keys are found by their peppered hash, after their
//! format and checksum are checked, never by their plaintext.

use std::sync::Arc;

use tessera_core::{AgencyId, CredentialCap, PermissionSet, PrincipalId};
use tessera_store::{ApiKey, Status};
use tessera_token::{check_api_key_format, looks_like_api_key};

use crate::caller::Caller;

use crate::services::Services;

/// Why a credential was not accepted. Mapped to problem+json in `crate::error` and to RFC 6750
/// in `crate::oauth`, each in one place; a store outage is never a refusal (503, not 401).
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    /// No `Authorization` header.
    #[error("send a credential as `Authorization: Bearer <API key or access token>`")]
    Missing,
    /// The header is not visible ASCII.
    #[error("the authorization header is not valid text")]
    NotText,
    /// Another scheme than `Bearer`.
    #[error("use the `Bearer` authorization scheme")]
    WrongScheme,
    /// Neither an API key nor a JWT.
    #[error("the credential is neither a Tessera API key nor an access token")]
    Unrecognised,
    /// An API key whose format or checksum is wrong (checked before any store read).
    #[error("invalid API key: {0}")]
    MalformedKey(String),
    /// An API key that is unknown, expired or revoked, or whose agency is not active.
    #[error("the API key is invalid, expired or revoked")]
    InvalidKey,
    /// An access token that did not verify, expired, was revoked, or lost its client.
    #[error("the access token is not valid: {0}")]
    InvalidToken(String),
    /// The token verifier refused the credential, saying why.
    #[error("{0}")]
    Refused(String),
    /// The credential's agency, its account or its app's owner is suspended: 403
    /// `agency_suspended` / `account_suspended` (nothing was revoked; reinstating restores it).
    #[error("{}", .0.message())]
    Suspended(crate::suspension::Suspended),
    /// The store failed (an outage answers 503, anything else 500).
    #[error(transparent)]
    Store(#[from] tessera_store::StoreError),
    /// The store or a dependency is unavailable: retry later.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected state; the detail goes to the log.
    #[error("{0}")]
    Internal(String),
}

impl AuthnError {
    /// Whether a credential was presented and refused (RFC 6750 §3.1 `invalid_token`), rather
    /// than absent or unreadable, or the check failed on our side.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Unrecognised
                | Self::MalformedKey(_)
                | Self::InvalidKey
                | Self::InvalidToken(_)
                | Self::Refused(_)
        )
    }
}

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
) -> Result<Arc<Caller>, AuthnError> {
    authenticate_for(state, header, None).await
}

/// [`authenticate`], also accepting an access token whose `aud` is `audience` (the resource of
/// the service behind forward auth) besides the issuer. Such a token is never remembered as a
/// caller, so it cannot reach any other `/v1` route through the cache.
pub async fn authenticate_for(
    state: &Services,
    header: Presented<'_>,
    audience: Option<&str>,
) -> Result<Arc<Caller>, AuthnError> {
    let raw = match header {
        Presented::Absent => return Err(AuthnError::Missing),
        Presented::NotText => return Err(AuthnError::NotText),
        Presented::Value(v) => v,
    };
    match raw.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => {
            let t = t.trim();
            let caller = match audience {
                Some(aud) if crate::oauth::verify::looks_like_jwt(t) => {
                    authenticate_access_token(state, t, Some(aud)).await?
                }
                _ => authenticate_unchecked(state, t).await?,
            };
            refuse_suspended(state, &caller).await?;
            Ok(caller)
        }
        _ => Err(AuthnError::WrongScheme),
    }
}

/// Authenticates a bearer credential: an API key or an access token. A credential of a
/// suspended agency or account (or of an app whose owner is suspended) is refused on every
/// use, from the cache or not.
pub async fn authenticate_token(state: &Services, token: &str) -> Result<Arc<Caller>, AuthnError> {
    let caller = authenticate_unchecked(state, token).await?;
    refuse_suspended(state, &caller).await?;
    Ok(caller)
}

/// Refuses a caller whose agency, bound account or app owner is suspended.
pub async fn refuse_suspended(state: &Services, caller: &Caller) -> Result<(), AuthnError> {
    let view = state.engine.suspended().await?;
    if view.is_empty() {
        return Ok(());
    }
    let client = caller.token().map(|t| t.client_id.as_str());
    match view.credential(&caller.agency, caller.cap.account.as_ref(), client) {
        Some(why) => Err(AuthnError::Suspended(why)),
        None => Ok(()),
    }
}

async fn authenticate_unchecked(state: &Services, token: &str) -> Result<Arc<Caller>, AuthnError> {
    if crate::oauth::verify::looks_like_jwt(token) {
        return authenticate_access_token(state, token, None).await;
    }
    if !looks_like_api_key(token) {
        return Err(AuthnError::Unrecognised);
    }
    // The format and checksum are checked before any storage read.
    check_api_key_format(token).map_err(|e| AuthnError::MalformedKey(e.to_string()))?;
    let invalid = || AuthnError::InvalidKey;
    let hash = state.pepper.hash(token.as_bytes());
    let now = state.clock.now();
    if let Some(caller) = state.engine.cached_caller(hash.as_bytes(), now).await {
        if let Some(key) = caller.key() {
            state
                .key_usage
                .record(&state.admission, &caller.agency, &key.id, now);
        }
        return Ok(caller);
    }
    // A lookup before authentication: the store derives the key's scope from its row. After a
    // miss, under the other live peppers (a key hashed under an older one, or a newer one
    // another node created a moment ago).
    let ((found, scope), version, found_hash) =
        crate::peppered::find_by_hash(state, token.as_bytes(), |h| async move {
            state.store.find_key_by_secret(h.as_bytes()).await
        })
        .await?
        .ok_or_else(invalid)?;
    let current = state.pepper.current();
    if version < current.version() {
        // Rehashed under the current pepper on this use (best effort: the old hash keeps
        // working while its version is live).
        let new = current.hash(token.as_bytes());
        if let Err(e) = state
            .store
            .rehash_secret(
                &scope,
                found_hash.as_bytes(),
                new.as_bytes(),
                i64::from(current.version()),
            )
            .await
        {
            tracing::warn!(error = %e, "could not rehash an API key under the current pepper");
        }
    }
    // Read before the key: a revocation committed after this point moves the generation and
    // keeps this authentication out of the cache.
    let generation = state.engine.generation_of(&found.agency);
    if found.valid_until.is_some_and(|until| until <= now) {
        return Err(invalid());
    }
    // The agency's row, the key's row and the agency's index (built here on a first request
    // in an agency this node does not hold: the cold path) are read at once, so such a
    // request waits for the slowest of the three reads, not their sum. The index is only a
    // cache fill: nothing below depends on it, and a refused key leaves it for the next caller.
    let prefetch = async {
        if let Ok(platform) = crate::oauth::tenant::is_platform(state, &found.agency).await {
            let _ = state.engine.entry(&found.agency, platform, None).await;
        }
    };
    let (agency, key, ()) = tokio::join!(
        state.store.get_agency(&found.agency),
        state.store.get_api_key(&scope, &found.key),
        prefetch
    );
    let agency = match agency {
        Ok(a) if a.status == Status::Active => a,
        // Suspended before this node applied the feed: refused the same way.
        Ok(a) if a.status == Status::Suspended => {
            return Err(AuthnError::Suspended(crate::suspension::Suspended::Agency))
        }
        Ok(_) | Err(tessera_store::StoreError::NotFound) => return Err(invalid()),
        Err(e) => return Err(e.into()),
    };
    let key = key.map_err(|e| match e {
        tessera_store::StoreError::NotFound => invalid(),
        e => e.into(),
    })?;
    if key.revoked_at.is_some() || key.expires_at.is_some_and(|at| at <= now) {
        return Err(invalid());
    }
    let (own, cap) = key_grant(state, &key).ok_or_else(invalid)?;
    state
        .key_usage
        .record(&state.admission, &agency.id, &key.id, now);
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
        credential: crate::caller::Credential::ApiKey(key),
    });
    state
        .engine
        .remember_caller(*hash.as_bytes(), caller.clone(), valid_until, generation)
        .await;
    Ok(caller)
}

/// Authenticates an access token (RFC 9068 JWT): verified, checked against the agency's
/// revocations, and cached with the agency's callers until it expires or the agency changes.
async fn authenticate_access_token(
    state: &Services,
    token: &str,
    also_for: Option<&str>,
) -> Result<Arc<Caller>, AuthnError> {
    let hash = state.pepper.hash(token.as_bytes());
    let now = state.clock.now();
    if let Some(caller) = state.engine.cached_caller(hash.as_bytes(), now).await {
        // The caller is cached with its tenant agency; its client (a marketplace app lives in
        // another agency) is checked against that agency's state too.
        let client_ok = match caller.token().map(|t| t.client_id.as_str()) {
            Some(id) if !id.starts_with("key_") => {
                crate::oauth::client::find(state, id).await?.is_some()
            }
            _ => true,
        };
        if client_ok {
            return Ok(caller);
        }
        return Err(AuthnError::InvalidToken("its client was deleted".into()));
    }
    let issuer = state.oauth.issuer().to_owned();
    // With a second acceptable audience the signature is checked once for any audience, and
    // the audience here (RFC 9068 §4: the token must be meant for this resource).
    let audience = if also_for.is_some() {
        None
    } else {
        Some(issuer.as_str())
    };
    let claims = match crate::oauth::verify::check_access_token(state, token, audience).await {
        Ok(Ok(c)) => c,
        Ok(Err(crate::oauth::verify::Inactive::Suspended(why, _))) => {
            return Err(AuthnError::Suspended(why))
        }
        Ok(Err(why)) => return Err(AuthnError::InvalidToken(why.to_string())),
        Err(e) => return Err(e.into()),
    };
    let agency: AgencyId = claims
        .tenant
        .agency
        .parse()
        .map_err(|_| AuthnError::InvalidToken("it has a malformed tenant".into()))?;
    let for_issuer = claims.aud.contains(&issuer);
    if !for_issuer && !also_for.is_some_and(|x| claims.aud.iter().any(|a| a == x)) {
        return Err(AuthnError::InvalidToken(
            "it is not meant for this service (aud)".into(),
        ));
    }
    let generation = state.engine.generation_of(&agency);
    let caller = Arc::new(crate::oauth::verify::caller_from_claims(state, &claims).await?);
    if !for_issuer {
        // A token for another resource: good for this request only, never a cached caller.
        return Ok(caller);
    }
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

impl From<crate::oauth::verify::VerifyError> for AuthnError {
    fn from(e: crate::oauth::verify::VerifyError) -> Self {
        use crate::oauth::verify::VerifyError as V;
        match e {
            V::Store(s) => Self::Store(s),
            V::NoKeys | V::Behind { .. } => Self::Unavailable(e.to_string()),
            V::Invalid(why) => Self::Refused(why.to_owned()),
        }
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
