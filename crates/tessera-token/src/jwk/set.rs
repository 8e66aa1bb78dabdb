//! A JWK set (RFC 7517 §5): the verification keys an issuer publishes at its `jwks_uri`.
//! INVARIANT: keys Tessera cannot verify with are skipped, as §5 allows, but a supported key
//! that is malformed fails the whole set rather than being silently dropped.

use serde_json::Value;

use super::error::JwkError;
use super::verification_key::VerificationKey;

/// A set of verification keys, e.g. a JWKS fetched from an issuer (RFC 7517 §5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwkSet {
    keys: Vec<VerificationKey>,
}

impl JwkSet {
    /// Builds a set from keys.
    pub fn new(keys: Vec<VerificationKey>) -> Self {
        Self { keys }
    }

    /// Parses `{"keys": [...]}`. Keys of a type Tessera does not verify with (symmetric, other
    /// curves) or meant for encryption are skipped, as RFC 7517 §5 allows; a supported
    /// key that is malformed fails the whole set.
    pub fn from_json(jwks: &Value) -> Result<Self, JwkError> {
        let list = jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwkError::NotASet)?;
        let mut keys = Vec::with_capacity(list.len());
        for jwk in list {
            match VerificationKey::from_jwk(jwk) {
                Ok(key) => keys.push(key),
                Err(JwkError::UnsupportedKeyType | JwkError::NotForSignatures) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Self { keys })
    }

    /// The keys, in the order of the set.
    pub fn keys(&self) -> &[VerificationKey] {
        &self.keys
    }

    /// The key with id `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.iter().find(|k| k.kid() == kid)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use serde_json::json;

    use super::*;
    use crate::jwk::public_key::fixtures::rfc8037_key;

    #[test]
    fn jwk_set_skips_foreign_keys() {
        let vk = VerificationKey::new(rfc8037_key().kid(), rfc8037_key());
        let set = json!({"keys": [
            {"kty": "EC", "crv": "P-384", "kid": "r", "x": "AQAB", "y": "AQAB"},
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            vk.to_jwk(),
        ]});
        let parsed = JwkSet::from_json(&set).unwrap();
        assert_eq!(parsed.keys().len(), 1);
        assert_eq!(parsed.get(vk.kid()), Some(&vk));
        assert_eq!(parsed.get("r"), None);
        assert_eq!(JwkSet::from_json(&json!({})), Err(JwkError::NotASet));
        let mut broken = vk.to_jwk();
        broken["x"] = json!("!");
        assert_eq!(
            JwkSet::from_json(&json!({"keys": [broken]})),
            Err(JwkError::BadCoordinate("x"))
        );
    }
}
