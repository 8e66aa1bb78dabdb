//! Issuing Tessera's tokens: RFC 9068 access tokens (JWT, `at+jwt`), OpenID Connect id tokens
//! (OIDC Core §2), and the opaque secrets (refresh tokens, codes, client secrets) stored only
//! as keyed hashes.
//!
//! INVARIANT (I4): an opaque secret leaves here with its keyed hash, and only the hash is
//! stored; a token is signed only by a key the ring says is active for its algorithm now.

use std::sync::Arc;

use serde_json::{Map, Value};
use tessera_core::{AccountId, AgencyId, GrantId, InstallationId};
use tessera_token::{AccessClaims, Actor, Algorithm, IdClaims, SecretString, Tenant};

use super::error::OAuthError;
use crate::services::Services;

/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "trt_";
/// Prefix of authorization codes.
pub const CODE_PREFIX: &str = "tac_";
/// Prefix of client secrets.
pub const CLIENT_SECRET_PREFIX: &str = "tcs_";

/// No key can sign now (none loaded yet, or none active for the algorithm): answered
/// `temporarily_unavailable`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NoSigningKey(pub &'static str);

impl From<NoSigningKey> for OAuthError {
    fn from(e: NoSigningKey) -> Self {
        OAuthError::unavailable(e.0)
    }
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
    pub sid: Option<GrantId>,
    /// The installation it acts through.
    pub ins: Option<InstallationId>,
    /// Lifetime, seconds.
    pub ttl: i64,
    /// The signing algorithm (the client's choice).
    pub alg: Algorithm,
    /// The resource server it is bound to (RFC 8707): its `aud`. `None`: the issuer
    /// (Tessera's own API).
    pub aud: Option<String>,
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
) -> Result<Arc<tessera_token::KeyRing>, NoSigningKey> {
    let ring = state
        .keys
        .ring()
        .ok_or(NoSigningKey("no signing key is loaded yet; retry shortly"))?;
    if ring.signing_key_for(alg, now_s).is_none() {
        return Err(NoSigningKey("no signing key is active; retry shortly"));
    }
    Ok(ring)
}

/// The algorithm an app's tokens are signed with (EdDSA unless it asked for ES256 or RS256).
pub fn app_alg(app: &tessera_store::App) -> Algorithm {
    Algorithm::from_name(&app.token_signing_alg).unwrap_or(Algorithm::EdDsa)
}

/// The algorithm for tokens of `client_id` (an app's choice; EdDSA otherwise).
pub async fn client_alg(state: &Services, client_id: &str) -> Algorithm {
    match super::client::find(state, client_id).await {
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
pub fn mint_access(state: &Services, spec: AccessSpec) -> Result<Issued, NoSigningKey> {
    let now_s = state.clock.now() / 1000;
    let ring = signing_ring(state, spec.alg, now_s)?;
    let key = ring
        .signing_key_for(spec.alg, now_s)
        .ok_or(NoSigningKey("no signing key is active"))?;
    let mut extra = Map::new();
    if let Some(sid) = spec.sid {
        extra.insert("sid".into(), Value::String(sid.to_string()));
    }
    if let Some(ins) = spec.ins {
        extra.insert("ins".into(), Value::String(ins.to_string()));
    }
    let jti = new_jti();
    let exp = now_s + spec.ttl;
    let claims = AccessClaims {
        iss: state.oauth.issuer().to_owned(),
        sub: spec.sub,
        aud: vec![spec
            .aud
            .unwrap_or_else(|| state.oauth.issuer().to_owned())],
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
) -> Result<String, NoSigningKey> {
    let now_s = state.clock.now() / 1000;
    let ring = signing_ring(state, alg, now_s)?;
    let key = ring
        .signing_key_for(alg, now_s)
        .ok_or(NoSigningKey("no signing key is active"))?;
    let claims = IdClaims {
        iss: state.oauth.issuer().to_owned(),
        sub: user.id.to_string(),
        aud: vec![client_id.to_owned()],
        exp: now_s + super::settings::secs(state.oauth.settings.access_ttl),
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
