//! Compact JWS tokens (RFC 7515/7519): access tokens per RFC 9068 (`typ: at+jwt`) and OIDC id
//! tokens (`typ: JWT`), signed with `EdDSA`, `ES256` or `RS256`, and their verification per the
//! JWT best current practice (RFC 8725).
//! INVARIANT: a token verifies only if its `alg` is exactly the algorithm of the issuer key its
//! `kid` names (so never `none`, never HMAC keyed with a public key), its header neither points
//! at keys elsewhere (`jku`, `x5u`, `jwk`, `x5c`) nor demands extensions (`crit`), its `typ` is
//! the expected one, and the signature holds (ES256 only in its low-s form); only then is the
//! payload decoded and its issuer, audience and times checked.

mod claims;
mod error;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};

pub use claims::{AccessClaims, Actor, IdClaims, Tenant};
pub use error::JwtError;

pub use crate::jose::TokenType;

use crate::jwk::{Algorithm, JwkSet, PublicKey, VerificationKey};
use crate::keyring::KeyRing;
use crate::signing_key::SigningKey;
use claims::Claims;

/// Tokens longer than this are refused before any decoding (16 KiB).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Clock leeway that [`Validation::access_token`] and [`Validation::id_token`] allow.
pub const DEFAULT_LEEWAY_SECS: i64 = 30;

/// What a verified token must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validation<'a> {
    /// The exact `iss`.
    pub issuer: &'a str,
    /// An audience `aud` must include. `None` accepts any audience: only for the issuer itself
    /// (introspection, revocation), never for a resource server (RFC 8725 §3.9).
    pub audience: Option<&'a str>,
    /// The expected `typ`.
    pub typ: TokenType,
    /// The current time, Unix seconds.
    pub now: i64,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway_secs: i64,
}

impl<'a> Validation<'a> {
    /// Access-token validation for a resource server `audience`, with the default leeway.
    pub fn access_token(issuer: &'a str, audience: Option<&'a str>, now: i64) -> Self {
        Self {
            issuer,
            audience,
            typ: TokenType::AccessToken,
            now,
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }

    /// Id-token validation for the relying party `client_id`, with the default leeway.
    pub fn id_token(issuer: &'a str, client_id: &'a str, now: i64) -> Self {
        Self {
            issuer,
            audience: Some(client_id),
            typ: TokenType::IdToken,
            now,
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }
}

/// Where verification finds the key a token's `kid` names.
pub trait KeySource {
    /// The verification key with id `kid`, if it is currently trusted.
    fn find_key(&self, kid: &str) -> Option<&VerificationKey>;
}

impl KeySource for KeyRing {
    fn find_key(&self, kid: &str) -> Option<&VerificationKey> {
        self.verification_key(kid)
    }
}

impl KeySource for JwkSet {
    fn find_key(&self, kid: &str) -> Option<&VerificationKey> {
        self.get(kid)
    }
}

impl KeySource for [VerificationKey] {
    fn find_key(&self, kid: &str) -> Option<&VerificationKey> {
        self.iter().find(|k| k.kid() == kid)
    }
}

impl KeySource for VerificationKey {
    fn find_key(&self, kid: &str) -> Option<&VerificationKey> {
        (self.kid() == kid).then_some(self)
    }
}

/// Signs `claims` as an access token (`typ: at+jwt`) with `key`.
pub fn encode_access_token(claims: &AccessClaims, key: &SigningKey) -> String {
    encode(claims, key, TokenType::AccessToken)
}

/// Signs `claims` as an OpenID Connect id token (`typ: JWT`) with `key`.
pub fn encode_id_token(claims: &IdClaims, key: &SigningKey) -> String {
    encode(claims, key, TokenType::IdToken)
}

fn encode(claims: &impl Serialize, key: &SigningKey, typ: TokenType) -> String {
    // Claims hold strings, integers and JSON values only, which always serialize. `extra` must
    // not repeat a named claim: verification would refuse the duplicate.
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let header = key.header_b64(typ);
    let capacity = header.len() + (payload.len() + key.signature_len()) * 4 / 3 + 8;
    let mut token = String::with_capacity(capacity);
    token.push_str(header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let signature = key.sign(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    token
}

/// Verifies an access token: signature by a key of `keys`, then the claims against `expected`
/// (whose `typ` should be [`TokenType::AccessToken`]).
pub fn verify(
    token: &str,
    keys: &(impl KeySource + ?Sized),
    expected: &Validation<'_>,
) -> Result<AccessClaims, JwtError> {
    verify_as(token, keys, expected)
}

/// Verifies an id token (`expected.typ` should be [`TokenType::IdToken`]).
pub fn verify_id_token(
    token: &str,
    keys: &(impl KeySource + ?Sized),
    expected: &Validation<'_>,
) -> Result<IdClaims, JwtError> {
    verify_as(token, keys, expected)
}

/// The three parts of a compact JWS.
struct Parts<'t> {
    header: &'t str,
    payload: &'t str,
    signature: &'t str,
    /// `header.payload`, the bytes the signature covers.
    signing_input: &'t str,
}

fn split(token: &str) -> Result<Parts<'_>, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed("longer than 16 kib"));
    }
    let not_three = JwtError::Malformed("not three dot-separated parts");
    let (signing_input, signature) = token.rsplit_once('.').ok_or(not_three.clone())?;
    let (header, payload) = signing_input.split_once('.').ok_or(not_three.clone())?;
    if payload.contains('.') {
        return Err(not_three);
    }
    Ok(Parts {
        header,
        payload,
        signature,
        signing_input,
    })
}

/// The JOSE header members Tessera reads. Others (`cty`, `x5t`, …) are ignored.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow, default)]
    alg: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    typ: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    jku: bool,
    #[serde(default, deserialize_with = "present")]
    x5u: bool,
    #[serde(default, deserialize_with = "present")]
    jwk: bool,
    #[serde(default, deserialize_with = "present")]
    x5c: bool,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// `true` for a member that is present, whatever its value (even `null`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d)?;
    Ok(true)
}

/// Checks the header and signature of `parts` and returns the key that signed it.
fn check_header_and_signature<'k, K: KeySource + ?Sized>(
    parts: &Parts<'_>,
    keys: &'k K,
    typ: TokenType,
) -> Result<&'k VerificationKey, JwtError> {
    let header_json = URL_SAFE_NO_PAD
        .decode(parts.header)
        .map_err(|_| JwtError::Malformed("header is not base64url"))?;
    let header: Header<'_> = serde_json::from_slice(&header_json)
        .map_err(|_| JwtError::Malformed("header is not a json object"))?;
    let alg = header
        .alg
        .ok_or(JwtError::Malformed("header has no `alg`"))?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(JwtError::AlgNone);
    }
    for (name, is_present) in [
        ("jku", header.jku),
        ("x5u", header.x5u),
        ("jwk", header.jwk),
        ("x5c", header.x5c),
    ] {
        if is_present {
            return Err(JwtError::ForbiddenHeader(name));
        }
    }
    if header.crit {
        return Err(JwtError::CriticalHeader);
    }
    if !header.typ.is_some_and(|t| typ.matches(&t)) {
        return Err(JwtError::WrongType {
            expected: typ.header_value(),
        });
    }
    let key = header
        .kid
        .and_then(|kid| keys.find_key(&kid))
        .ok_or(JwtError::UnknownKey)?;
    if Algorithm::from_name(&alg) != Some(key.alg()) {
        return Err(JwtError::AlgorithmMismatch {
            expected: key.alg(),
        });
    }
    check_signature(key.public_key(), parts)?;
    Ok(key)
}

/// Verifies the signature of `parts` with `key` (whose algorithm the caller has matched).
fn check_signature(key: &PublicKey, parts: &Parts<'_>) -> Result<(), JwtError> {
    let message = parts.signing_input.as_bytes();
    let valid = match key {
        PublicKey::Ed25519(key) => {
            let signature = decode_fixed_signature(parts.signature)?;
            // RFC 8032 §5.1.7 verification, which rejects a non-canonical `S` (so signatures
            // are not malleable). `verify_strict` would also refuse small-order `R` and keys,
            // for ~10% more time; small-order keys are refused when a JWK is parsed, and with
            // a sound key a small-order `R` forges nothing.
            use ed25519_dalek::Verifier as _;
            let signature = ed25519_dalek::Signature::from_bytes(&signature);
            key.verify(message, &signature).is_ok()
        }
        PublicKey::P256(key) => {
            let signature = decode_fixed_signature(parts.signature)?;
            // ECDSA signatures are malleable: if `(r, s)` verifies, so does `(r, n − s)`. Only
            // the low-s form (`s ≤ n/2`, which `normalize_s` leaves alone) is accepted, the
            // form Tessera signs, so a token has exactly one valid signature.
            use p256::ecdsa::signature::Verifier as _;
            p256::ecdsa::Signature::from_slice(&signature).is_ok_and(|signature| {
                signature.normalize_s().is_none() && key.verify(message, &signature).is_ok()
            })
        }
        PublicKey::Rsa(key) => {
            // RFC 7518 §3.3 / RFC 8017 §8.2.2: the signature is exactly as long as the modulus.
            use rsa::traits::PublicKeyParts as _;
            let size = key.size();
            if parts.signature.len() != (size * 4).div_ceil(3) {
                return Err(JwtError::BadSignature);
            }
            let signature = URL_SAFE_NO_PAD
                .decode(parts.signature)
                .map_err(|_| JwtError::Malformed("signature is not base64url"))?;
            let digest = <sha2::Sha256 as sha2::Digest>::digest(message);
            key.verify(
                rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                &digest,
                &signature,
            )
            .is_ok()
        }
    };
    if valid {
        Ok(())
    } else {
        Err(JwtError::BadSignature)
    }
}

/// Decodes a 64-byte (EdDSA or ES256) signature from its 86 base64url characters.
fn decode_fixed_signature(text: &str) -> Result<[u8; 64], JwtError> {
    // 64 bytes are 86 base64url characters; anything else cannot be a signature of ours.
    if text.len() != 86 {
        return Err(JwtError::BadSignature);
    }
    // `decode_slice` wants room for its estimate (66 bytes) even though 86 characters without
    // padding are exactly 64 bytes.
    let mut buffer = [0u8; 66];
    match URL_SAFE_NO_PAD.decode_slice(text, &mut buffer) {
        Ok(64) => {
            let mut signature = [0u8; 64];
            signature.copy_from_slice(&buffer[..64]);
            Ok(signature)
        }
        _ => Err(JwtError::Malformed("signature is not base64url")),
    }
}

fn verify_as<C: Claims>(
    token: &str,
    keys: &(impl KeySource + ?Sized),
    expected: &Validation<'_>,
) -> Result<C, JwtError> {
    let parts = split(token)?;
    check_header_and_signature(&parts, keys, expected.typ)?;

    // Authentic from here on.
    let payload = URL_SAFE_NO_PAD
        .decode(parts.payload)
        .map_err(|_| JwtError::Malformed("payload is not base64url"))?;
    let raw: C::Raw = serde_json::from_slice(&payload)
        .map_err(|_| JwtError::Malformed("claims are not a json object of the expected types"))?;
    let claims = C::from_raw(raw)?;
    let reg = claims.registered();
    if reg.iss != expected.issuer {
        return Err(JwtError::WrongIssuer);
    }
    if let Some(audience) = expected.audience {
        if !reg.aud.iter().any(|a| a == audience) {
            return Err(JwtError::WrongAudience);
        }
    }
    let leeway = expected.leeway_secs.max(0);
    let now = expected.now;
    // RFC 7519 §4.1.4: the token is valid only strictly before `exp`.
    if now >= reg.exp.saturating_add(leeway) {
        return Err(JwtError::Expired);
    }
    let latest = now.saturating_add(leeway);
    if reg.nbf.is_some_and(|nbf| nbf > latest) || reg.iat > latest {
        return Err(JwtError::NotYetValid);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests;
