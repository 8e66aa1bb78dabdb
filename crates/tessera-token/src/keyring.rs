//! An issuer's signing keys: their stored records (lifecycle state, public JWK, sealed private
//! key) and the in-memory [`KeyRing`] that signs with the current key and publishes the JWKS.
//! Lifecycle: `pending → active → retiring → retired` (DESIGN.md §5). INVARIANT: the ring
//! publishes every pending, active and retiring key, so a key is in the JWKS before it signs
//! and until every token it signed has expired; only pending and active keys are decrypted.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::jwk::{Algorithm, JwkSet, VerificationKey};
use crate::secret::SecretBytes;
use crate::signing_key::{SigningKey, SigningKeyError};

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Published in the JWKS, not signing yet (so verifiers' caches learn it first).
    Pending,
    /// Signs new tokens; published.
    Active,
    /// No longer signs; still published until the tokens it signed have expired.
    Retiring,
    /// Neither signs nor is published; its private key has been destroyed. May be dropped.
    Retired,
}

/// A signing key as stored. Times are Unix epoch seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Key id (RFC 7638 thumbprint of `public_jwk`, truncated; see [`crate::jwk`]).
    pub kid: String,
    /// The one algorithm the key signs with.
    pub alg: Algorithm,
    /// Lifecycle state.
    pub state: KeyState,
    /// When the key was generated, and so first published.
    pub created_at: i64,
    /// When the key starts (or started) to sign.
    pub activates_at: i64,
    /// When the key stopped signing (set when it starts retiring).
    pub retires_at: Option<i64>,
    /// When the last token it may have signed expires (set when it starts retiring); the key
    /// leaves the JWKS then.
    pub expires_at: Option<i64>,
    /// The public JWK, as published.
    pub public_jwk: Value,
    /// The private key, sealed with [`crate::envelope`] under the `signing-keys` key and bound
    /// to `alg` and `kid`. Empty once retired.
    #[serde(with = "sealed_hex")]
    pub sealed_private: Vec<u8>,
}

/// `sealed_private` is hex in JSON, so a record serializes to compact, copyable text.
mod sealed_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::hex::encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        crate::hex::decode_vec(text.as_bytes())
            .ok_or_else(|| serde::de::Error::custom("sealed key is not lowercase hex"))
    }
}

impl KeyRecord {
    /// Generates a key for `alg` and its record in `state`, created at `now`.
    pub fn generate(
        alg: Algorithm,
        state: KeyState,
        now: i64,
        activates_at: i64,
        envelope_key: &SecretBytes<32>,
        rng: &mut (impl rand::RngCore + rand::CryptoRng),
    ) -> (KeyRecord, SigningKey) {
        let key = SigningKey::generate(alg, rng);
        let record = KeyRecord {
            kid: key.kid().to_owned(),
            alg,
            state,
            created_at: now,
            activates_at,
            retires_at: None,
            expires_at: None,
            public_jwk: key.verification_key().to_jwk(),
            sealed_private: key.seal(envelope_key, rng),
        };
        (record, key)
    }

    /// Whether the key is published in the JWKS (and accepted by [`KeyRing`] verification).
    pub fn is_published(&self) -> bool {
        matches!(
            self.state,
            KeyState::Pending | KeyState::Active | KeyState::Retiring
        )
    }
}

/// Why a key ring could not be built from records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    /// A published record's public JWK is unusable.
    #[error("public key of signing key `{kid}` is invalid: {source}")]
    PublicKey {
        kid: String,
        #[source]
        source: crate::jwk::JwkError,
    },
    /// A record's JWK names another kid or algorithm than the record.
    #[error("signing key record `{kid}` does not match its public key")]
    RecordMismatch { kid: String },
    /// A private key could not be restored.
    #[error(transparent)]
    SigningKey(#[from] SigningKeyError),
}

/// One published key of the ring.
#[derive(Debug)]
struct RingKey {
    record: KeyRecord,
    public: VerificationKey,
    /// Present for pending and active keys only.
    signing: Option<SigningKey>,
}

/// The keys of one issuer, decrypted and ready: signs with the current key, verifies with any
/// published key, answers the JWKS. Pure: time comes in as `now`.
#[derive(Debug, Default)]
pub struct KeyRing {
    /// Published keys, newest activation first.
    keys: Vec<RingKey>,
}

impl KeyRing {
    /// Builds the ring from stored records: publishes pending, active and retiring keys, and
    /// unseals the private keys of the pending and active ones with `envelope_key`. Retired
    /// records are ignored.
    pub fn new(
        records: &[KeyRecord],
        envelope_key: &SecretBytes<32>,
    ) -> Result<Self, KeyRingError> {
        let mut keys = Vec::new();
        for record in records.iter().filter(|r| r.is_published()) {
            let public = VerificationKey::from_jwk(&record.public_jwk).map_err(|source| {
                KeyRingError::PublicKey {
                    kid: record.kid.clone(),
                    source,
                }
            })?;
            if public.kid() != record.kid || public.alg() != record.alg {
                return Err(KeyRingError::RecordMismatch {
                    kid: record.kid.clone(),
                });
            }
            let signing = match record.state {
                KeyState::Pending | KeyState::Active => Some(SigningKey::unseal(
                    record.alg,
                    &record.kid,
                    Some(&record.public_jwk),
                    &record.sealed_private,
                    envelope_key,
                )?),
                KeyState::Retiring | KeyState::Retired => None,
            };
            keys.push(RingKey {
                record: record.clone(),
                public,
                signing,
            });
        }
        keys.sort_by(|a, b| signing_order(&b.record).cmp(&signing_order(&a.record)));
        Ok(Self { keys })
    }

    /// The key to sign with at `now`: of the active keys and the pending keys whose
    /// `activates_at` has come, the one that activated last. So every node switches to a new
    /// key at its `activates_at`, whether or not the planner has promoted it yet. `None` before
    /// bootstrap.
    pub fn signing_key(&self, now: i64) -> Option<&SigningKey> {
        // `keys` is sorted by signing order, newest first.
        self.keys
            .iter()
            .find(|k| match k.record.state {
                KeyState::Active => true,
                KeyState::Pending => k.record.activates_at <= now,
                KeyState::Retiring | KeyState::Retired => false,
            })
            .and_then(|k| k.signing.as_ref())
    }

    /// The key to sign with at `now` among the keys of algorithm `alg` (the ring may hold one
    /// lineage per algorithm: Ed25519 by default, ES256 and RS256 for clients without EdDSA).
    pub fn signing_key_for(&self, alg: Algorithm, now: i64) -> Option<&SigningKey> {
        self.keys
            .iter()
            .filter(|k| k.record.alg == alg)
            .find(|k| match k.record.state {
                KeyState::Active => true,
                KeyState::Pending => k.record.activates_at <= now,
                KeyState::Retiring | KeyState::Retired => false,
            })
            .and_then(|k| k.signing.as_ref())
    }

    /// Every key a token may be verified with: pending, active and retiring.
    pub fn verification_keys(&self) -> impl Iterator<Item = &VerificationKey> {
        self.keys.iter().map(|k| &k.public)
    }

    /// The published key with id `kid`.
    pub fn verification_key(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys
            .iter()
            .find(|k| k.public.kid() == kid)
            .map(|k| &k.public)
    }

    /// The records the ring was built from (published ones), newest activation first.
    pub fn records(&self) -> impl Iterator<Item = &KeyRecord> {
        self.keys.iter().map(|k| &k.record)
    }

    /// The JWK set (RFC 7517 §5) to serve at `jwks_uri`: every published key, except retiring
    /// keys whose `expires_at` has passed (no unexpired token can name them).
    pub fn jwks(&self, now: i64) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .filter(|k| {
                k.record.state != KeyState::Retiring || k.record.expires_at.is_none_or(|e| now < e)
            })
            .map(|k| k.public.to_jwk())
            .collect();
        json!({ "keys": keys })
    }

    /// The published keys as a [`JwkSet`], e.g. to verify tokens the way a resource server does.
    pub fn jwk_set(&self) -> JwkSet {
        JwkSet::new(self.verification_keys().cloned().collect())
    }
}

/// Orders keys by when they (are to) sign: later activation wins, then later creation, then kid,
/// so every node picks the same key.
pub(crate) fn signing_order(record: &KeyRecord) -> (i64, i64, &str) {
    (record.activates_at, record.created_at, &record.kid)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn ek() -> SecretBytes<32> {
        crate::MasterKey::from_bytes([2u8; 32]).derive_key(crate::signing_key::SIGNING_KEYS_PURPOSE)
    }

    fn record(
        rng: &mut StdRng,
        alg: Algorithm,
        state: KeyState,
        created: i64,
        activates: i64,
    ) -> KeyRecord {
        KeyRecord::generate(alg, state, created, activates, &ek(), rng).0
    }

    #[test]
    fn signing_key_is_the_newest_active_or_due_pending() {
        let mut rng = StdRng::seed_from_u64(1);
        let old = record(&mut rng, Algorithm::EdDsa, KeyState::Active, 0, 0);
        let pending = record(&mut rng, Algorithm::Es256, KeyState::Pending, 100, 200);
        let mut retiring = record(&mut rng, Algorithm::EdDsa, KeyState::Retiring, 0, 0);
        retiring.retires_at = Some(50);
        retiring.expires_at = Some(150);
        let mut retired = record(&mut rng, Algorithm::EdDsa, KeyState::Retired, 0, 0);
        retired.sealed_private.clear();
        let ring = KeyRing::new(
            &[
                old.clone(),
                pending.clone(),
                retiring.clone(),
                retired.clone(),
            ],
            &ek(),
        )
        .unwrap();

        assert_eq!(ring.signing_key(150).unwrap().kid(), old.kid);
        assert_eq!(ring.signing_key(200).unwrap().kid(), pending.kid);
        assert_eq!(ring.signing_key(200).unwrap().alg(), Algorithm::Es256);

        let kids: Vec<&str> = ring.verification_keys().map(VerificationKey::kid).collect();
        assert_eq!(kids.len(), 3);
        for r in [&old, &pending, &retiring] {
            assert!(kids.contains(&r.kid.as_str()));
            assert!(ring.verification_key(&r.kid).is_some());
        }
        assert!(ring.verification_key(&retired.kid).is_none());
        assert_eq!(ring.jwk_set().keys().len(), 3);
        assert_eq!(ring.records().count(), 3);

        // The JWKS drops the retiring key once the last token it signed has expired.
        assert_eq!(ring.jwks(149)["keys"].as_array().unwrap().len(), 3);
        assert_eq!(ring.jwks(150)["keys"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn empty_ring_has_no_signing_key() {
        let ring = KeyRing::new(&[], &ek()).unwrap();
        assert!(ring.signing_key(0).is_none());
        assert_eq!(ring.jwks(0), json!({"keys": []}));
    }

    #[test]
    fn jwks_shape() {
        let mut rng = StdRng::seed_from_u64(2);
        let ed = record(&mut rng, Algorithm::EdDsa, KeyState::Active, 0, 0);
        let es = record(&mut rng, Algorithm::Es256, KeyState::Pending, 10, 20);
        let ring = KeyRing::new(&[ed.clone(), es.clone()], &ek()).unwrap();
        let jwks = ring.jwks(0);
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(jwks.as_object().unwrap().len(), 1);
        // Newest activation first.
        let (es_jwk, ed_jwk) = (&keys[0], &keys[1]);
        let mut members: Vec<&str> = ed_jwk
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        members.sort_unstable();
        assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x"]);
        assert_eq!(ed_jwk["kty"], "OKP");
        assert_eq!(ed_jwk["crv"], "Ed25519");
        assert_eq!(ed_jwk["alg"], "EdDSA");
        assert_eq!(ed_jwk["use"], "sig");
        assert_eq!(ed_jwk["kid"], ed.kid.as_str());
        assert_eq!(ed_jwk["x"].as_str().unwrap().len(), 43);
        let mut members: Vec<&str> = es_jwk
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        members.sort_unstable();
        assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
        assert_eq!(es_jwk["kty"], "EC");
        assert_eq!(es_jwk["crv"], "P-256");
        assert_eq!(es_jwk["alg"], "ES256");
        assert_eq!(es_jwk["kid"], es.kid.as_str());
        // No private member ever appears.
        let text = jwks.to_string();
        assert!(!text.contains("\"d\""), "{text}");
        // Verifiers parse it back to the same keys.
        assert_eq!(JwkSet::from_json(&jwks).unwrap(), ring.jwk_set());
    }

    #[test]
    fn an_rs256_lineage_beside_the_others() {
        let mut rng = StdRng::seed_from_u64(5);
        let ed = record(&mut rng, Algorithm::EdDsa, KeyState::Active, 0, 0);
        let key = crate::signing_key::test_rsa_key();
        let rs = KeyRecord {
            kid: key.kid().to_owned(),
            alg: Algorithm::Rs256,
            state: KeyState::Active,
            created_at: 0,
            activates_at: 0,
            retires_at: None,
            expires_at: None,
            public_jwk: key.verification_key().to_jwk(),
            sealed_private: key.seal(&ek(), &mut rng),
        };
        // The record survives its JSON form (the sealed PKCS#1 key as hex).
        let rs: KeyRecord = serde_json::from_str(&serde_json::to_string(&rs).unwrap()).unwrap();
        let ring = KeyRing::new(&[ed.clone(), rs.clone()], &ek()).unwrap();
        assert_eq!(
            ring.signing_key_for(Algorithm::Rs256, 0).unwrap().kid(),
            rs.kid
        );
        assert_eq!(
            ring.signing_key_for(Algorithm::EdDsa, 0).unwrap().kid(),
            ed.kid
        );
        assert!(ring.signing_key_for(Algorithm::Es256, 0).is_none());
        let jwks = ring.jwks(0);
        let rsa: Vec<&Value> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["kty"] == "RSA")
            .collect();
        assert_eq!(rsa.len(), 1);
        assert_eq!(rsa[0]["alg"], "RS256");
        assert!(rsa[0].get("d").is_none() && rsa[0].get("p").is_none());
        assert_eq!(JwkSet::from_json(&jwks).unwrap(), ring.jwk_set());
        // A record that claims another algorithm for the RSA key is refused.
        let mut lying = rs.clone();
        lying.alg = Algorithm::Es256;
        assert_eq!(
            KeyRing::new(&[lying], &ek()).unwrap_err(),
            KeyRingError::RecordMismatch {
                kid: rs.kid.clone()
            }
        );
    }

    #[test]
    fn records_serialize_and_round_trip() {
        let mut rng = StdRng::seed_from_u64(3);
        let r = record(&mut rng, Algorithm::EdDsa, KeyState::Active, 5, 5);
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(r#""state":"active""#), "{text}");
        assert!(text.contains(r#""alg":"EdDSA""#), "{text}");
        let back: KeyRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        let ring = KeyRing::new(&[back], &ek()).unwrap();
        assert_eq!(ring.signing_key(5).unwrap().kid(), r.kid);
        let bad = text.replace(r#""sealed_private":""#, r#""sealed_private":"zz"#);
        assert!(serde_json::from_str::<KeyRecord>(&bad).is_err());
    }

    #[test]
    fn tampered_records_are_refused() {
        let mut rng = StdRng::seed_from_u64(4);
        let a = record(&mut rng, Algorithm::EdDsa, KeyState::Active, 0, 0);
        let b = record(&mut rng, Algorithm::EdDsa, KeyState::Active, 0, 0);

        // Another key's JWK under this kid.
        let mut swapped = a.clone();
        swapped.public_jwk = b.public_jwk.clone();
        assert_eq!(
            KeyRing::new(&[swapped], &ek()).unwrap_err(),
            KeyRingError::RecordMismatch { kid: a.kid.clone() }
        );
        // Another key's sealed private key.
        let mut swapped = a.clone();
        swapped.sealed_private = b.sealed_private.clone();
        assert!(matches!(
            KeyRing::new(&[swapped], &ek()),
            Err(KeyRingError::SigningKey(SigningKeyError::Sealed { .. }))
        ));
        // The wrong master key.
        let other = SecretBytes::new([0u8; 32]);
        assert!(matches!(
            KeyRing::new(std::slice::from_ref(&a), &other),
            Err(KeyRingError::SigningKey(SigningKeyError::Sealed { .. }))
        ));
        // An unusable JWK.
        let mut broken = a.clone();
        broken.public_jwk = json!({"kty": "RSA"});
        assert!(matches!(
            KeyRing::new(&[broken], &ek()),
            Err(KeyRingError::PublicKey { .. })
        ));
        // Retiring keys are not decrypted, so a wiped private key is fine there.
        let mut retiring = a.clone();
        retiring.state = KeyState::Retiring;
        retiring.sealed_private.clear();
        assert!(KeyRing::new(&[retiring], &ek())
            .unwrap()
            .signing_key(0)
            .is_none());
    }

    #[test]
    fn errors_are_lowercase() {
        for e in [
            KeyRingError::RecordMismatch { kid: "k".into() },
            KeyRingError::PublicKey {
                kid: "k".into(),
                source: crate::jwk::JwkError::NotAnObject,
            },
            KeyRingError::SigningKey(SigningKeyError::PublicKeyMismatch { kid: "k".into() }),
        ] {
            let msg = e.to_string();
            assert!(msg.starts_with(|c: char| c.is_ascii_lowercase()), "{msg}");
        }
    }
}
