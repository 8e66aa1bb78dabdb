//! Credential lookups by peppered hash across the live pepper versions (see
//! `secrets::peppers`): the current version first, the others only after a miss.
//! INVARIANT: a lookup under the current pepper costs one HMAC and one store read, as before
//! peppers were versioned; older versions are tried only when that misses.

use tessera_token::CredentialHash;

use crate::services::Services;

/// Looks a stored credential up by its peppered hash: under the current pepper first (one
/// HMAC, one lookup: the common case), then, after a miss, under every other live version
/// (the stored peppers reloaded first). Returns what `lookup` found with the version and hash
/// that found it.
pub async fn find_by_hash<T, E, F, Fut>(
    services: &Services,
    secret: &[u8],
    mut lookup: F,
) -> Result<Option<(T, u32, CredentialHash)>, E>
where
    F: FnMut(CredentialHash) -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, E>>,
{
    let current = services.pepper.current();
    let hash = current.hash(secret);
    if let Some(found) = lookup(hash).await? {
        return Ok(Some((found, current.version(), hash)));
    }
    for (version, hash) in services
        .pepper
        .fallbacks(
            services.store.as_ref(),
            &services.ring,
            secret,
            current.version(),
        )
        .await
    {
        if let Some(found) = lookup(hash).await? {
            return Ok(Some((found, version, hash)));
        }
    }
    Ok(None)
}
