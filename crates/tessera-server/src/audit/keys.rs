//! The audit key ring: Ed25519 keys that sign audit checkpoints, kept in their own global
//! table (`audit_keys`, not the token JWKS), published at `/.well-known/audit-keys.json`, and
//! rotated on a schedule every node plans (the store's compare-and-set and the unique
//! `generation` let exactly one node apply each step).
//!
//! Life of a key: `pending` (published, not signing) → `active` (signs) → `retired` (the private
//! key is destroyed; the PUBLIC key stays published for good, since checkpoints it signed are
//! kept). The first key of a new store is active at once.
//!
//! INVARIANT: a private key is only ever stored sealed, by [`seal_audit_key`] and opened by
//! [`open_audit_key`] (THE one pair: master-key rotation rewraps through them). The associated
//! data binds the kid and the public key, and a retired key keeps an EMPTY plaintext sealed the
//! same way, so a key is trusted only if its row opens under the master key: someone with
//! database access alone cannot slip in a key of their own to sign forged checkpoints.

use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::{json, Value};
use tessera_store::{AuditKeyRow, Store, StoreError};
use tessera_token::{EnvelopeError, SecretBytes};
use zeroize::Zeroizing;

use crate::audit::action::AuditAction;

/// Seconds a key signs before the next one takes over [default: 90 days].
pub const DEFAULT_LIFETIME_SECS: i64 = 90 * 86_400;
/// Seconds a new key is published before it signs (longer than the JWKS cache lifetime).
pub const DEFAULT_PUBLISH_AHEAD_SECS: i64 = 2 * 86_400;

fn aad(kid: &str, public: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(32 + kid.len() + public.len());
    a.extend_from_slice(b"tessera-audit-key-v1\0");
    a.extend_from_slice(kid.as_bytes());
    a.push(0);
    a.extend_from_slice(public);
    a
}

/// Seals an audit key's private seed (or, for a retired key, an empty plaintext) under the
/// audit keys' envelope key, bound to its kid and public key. THE one place audit keys are
/// sealed (master-key rotation: [`open_audit_key`] with the old envelope key, then this with
/// the new one).
pub fn seal_audit_key(
    envelope: &SecretBytes<32>,
    kid: &str,
    public: &[u8],
    seed: &[u8],
) -> Vec<u8> {
    tessera_token::envelope::seal(envelope, seed, &aad(kid, public), &mut rand::rngs::OsRng)
}

/// Opens what [`seal_audit_key`] sealed: the seed (empty for a retired key). Fails when the
/// row was not sealed under this envelope key for this kid and public key.
pub fn open_audit_key(
    envelope: &SecretBytes<32>,
    kid: &str,
    public: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    tessera_token::envelope::open(envelope, sealed, &aad(kid, public))
}

/// How audit keys rotate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditKeyPolicy {
    /// Seconds a key signs.
    pub lifetime: i64,
    /// Seconds a key is published before it signs.
    pub publish_ahead: i64,
}

impl Default for AuditKeyPolicy {
    fn default() -> Self {
        Self {
            lifetime: DEFAULT_LIFETIME_SECS,
            publish_ahead: DEFAULT_PUBLISH_AHEAD_SECS,
        }
    }
}

/// One trusted key, as loaded.
pub struct LoadedKey {
    /// Its id.
    pub kid: String,
    /// 1, 2, …
    pub generation: i64,
    /// `pending`, `active`, `retired`.
    pub state: String,
    /// When it signs from (epoch s).
    pub activates_at: i64,
    /// The public key.
    pub public: VerifyingKey,
    signing: Option<SigningKey>,
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKey")
            .field("kid", &self.kid)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl LoadedKey {
    /// The key's JWK (RFC 8037: OKP, Ed25519).
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(self.public.to_bytes()),
        })
    }
}

/// Why the audit key ring cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuditKeysError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The audit key ring of this node.
pub struct AuditKeys {
    store: Arc<dyn Store>,
    admission: Arc<crate::gate::admission::Admission>,
    envelope: SecretBytes<32>,
    policy: AuditKeyPolicy,
    ring: RwLock<Arc<Vec<LoadedKey>>>,
}

impl std::fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKeys")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl AuditKeys {
    /// An empty ring; `maintain` loads it (and creates the first key on a new store). The
    /// server's `envelope` is the stored signing-key KEK (`secrets::root`): private keys are
    /// sealed under it with their own AAD, so `tessera keys rotate-master` covers them.
    pub fn new(
        store: Arc<dyn Store>,
        envelope: tessera_token::SecretBytes<32>,
        policy: AuditKeyPolicy,
        admission: Arc<crate::gate::admission::Admission>,
    ) -> Self {
        Self {
            store,
            admission,
            envelope,
            policy,
            ring: RwLock::new(Arc::new(Vec::new())),
        }
    }

    /// The trusted keys as last loaded.
    pub fn ring(&self) -> Arc<Vec<LoadedKey>> {
        self.ring
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|_| Arc::new(Vec::new()))
    }

    /// The JWKS: every trusted key, pending, active and retired.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self.ring().iter().map(LoadedKey::jwk).collect();
        json!({ "keys": keys })
    }

    /// The key that signs at `now` (epoch s): the newest active one already activated, with its
    /// private key.
    pub fn signer(&self, now: i64) -> Option<(String, SigningKey)> {
        self.ring()
            .iter()
            .filter(|k| k.state == "active" && k.activates_at <= now)
            .max_by_key(|k| k.generation)
            .and_then(|k| k.signing.clone().map(|s| (k.kid.clone(), s)))
    }

    /// Checks a row against the master key: returns the loaded key, or why it is not trusted.
    fn load(&self, row: &AuditKeyRow) -> Result<LoadedKey, String> {
        let public: [u8; 32] = row
            .public_key
            .as_slice()
            .try_into()
            .map_err(|_| "public key is not 32 bytes".to_owned())?;
        let public_key =
            VerifyingKey::from_bytes(&public).map_err(|_| "invalid public key".to_owned())?;
        let seed = open_audit_key(&self.envelope, &row.kid, &public, &row.sealed_private)
            .map_err(|e| e.to_string())?;
        let signing = match (row.state.as_str(), seed.len()) {
            ("retired", 0) => None,
            ("pending" | "active", 32) => {
                let mut s = [0u8; 32];
                s.copy_from_slice(&seed);
                let k = SigningKey::from_bytes(&s);
                zeroize::Zeroize::zeroize(&mut s);
                if k.verifying_key() != public_key {
                    return Err("private key does not match the public key".into());
                }
                Some(k)
            }
            _ => return Err("state and sealed value disagree".into()),
        };
        Ok(LoadedKey {
            kid: row.kid.clone(),
            generation: row.generation,
            state: row.state.clone(),
            activates_at: row.activates_at,
            public: public_key,
            signing,
        })
    }

    /// Reloads the ring from the store; rows that do not open under the master key are left
    /// out (and logged): they are not ours.
    pub async fn reload(&self) -> Result<(), AuditKeysError> {
        let rows = self.store.audit_keys().await?;
        let mut ring = Vec::with_capacity(rows.len());
        for row in &rows {
            match self.load(row) {
                Ok(k) => ring.push(k),
                Err(problem) => {
                    tracing::error!(kid = %row.kid, %problem, "audit key not trusted: it does not open under the master key")
                }
            }
        }
        if let Ok(mut r) = self.ring.write() {
            *r = Arc::new(ring);
        }
        Ok(())
    }

    fn generate(&self, generation: i64, state: &str, now: i64, activates_at: i64) -> AuditKeyRow {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let public = key.verifying_key().to_bytes();
        let mut tag = [0u8; 6];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut tag);
        let kid = format!(
            "audit-{generation}-{}",
            tag.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let seed = Zeroizing::new(key.to_bytes());
        AuditKeyRow {
            sealed_private: seal_audit_key(&self.envelope, &kid, &public, seed.as_slice()),
            kid,
            generation,
            state: state.into(),
            created_at: now,
            activates_at,
            retires_at: None,
            public_key: public.to_vec(),
        }
    }

    /// Brings the keys in line with the policy at `now` (epoch s), then reloads the ring.
    /// Returns the steps this node applied.
    pub async fn maintain(&self, now: i64) -> Result<usize, AuditKeysError> {
        let mut applied = 0;
        // A few rounds: activating a pending key may make the previous one retire.
        for _ in 0..3 {
            let rows = self.store.audit_keys().await?;
            let trusted: Vec<(&AuditKeyRow, LoadedKey)> = rows
                .iter()
                .filter_map(|r| self.load(r).ok().map(|k| (r, k)))
                .collect();
            let next_gen = rows.iter().map(|r| r.generation).max().unwrap_or(0) + 1;
            let active = trusted
                .iter()
                .filter(|(_, k)| k.state == "active")
                .max_by_key(|(_, k)| k.generation);
            let pending = trusted
                .iter()
                .filter(|(_, k)| k.state == "pending")
                .max_by_key(|(_, k)| k.generation);
            let step = match (active, pending) {
                (None, None) => {
                    let row = self.generate(next_gen, "active", now, now);
                    self.create(row, now).await?
                }
                (_, Some((_, p))) if p.activates_at <= now => {
                    let won = self
                        .store
                        .update_audit_key(&p.kid, "pending", "active", None, None)
                        .await?;
                    if won {
                        self.audit(AuditAction::AuditKeyActivate, &p.kid, now).await;
                    }
                    won
                }
                (Some((_, a)), None)
                    if now >= a.activates_at + self.policy.lifetime - self.policy.publish_ahead =>
                {
                    let row =
                        self.generate(next_gen, "pending", now, now + self.policy.publish_ahead);
                    self.create(row, now).await?
                }
                _ => false,
            };
            // Older active keys than the newest activated one retire.
            let newest = trusted
                .iter()
                .filter(|(_, k)| k.state == "active" && k.activates_at <= now)
                .map(|(_, k)| k.generation)
                .max();
            let mut retired = 0;
            for (row, k) in &trusted {
                if k.state == "active" && newest.is_some_and(|g| k.generation < g) {
                    let sealed = seal_audit_key(&self.envelope, &k.kid, &row.public_key, &[]);
                    if self
                        .store
                        .update_audit_key(&k.kid, "active", "retired", Some(now), Some(&sealed))
                        .await?
                    {
                        self.audit(AuditAction::AuditKeyRetire, &k.kid, now).await;
                        retired += 1;
                    }
                }
            }
            applied += usize::from(step) + retired;
            if !step && retired == 0 {
                break;
            }
        }
        self.reload().await?;
        Ok(applied)
    }

    /// Starts a rotation by hand: a new key is published now and signs after `publish_ahead`.
    pub async fn rotate(&self, now: i64) -> Result<usize, AuditKeysError> {
        let mut applied = self.maintain(now).await?;
        let rows = self.store.audit_keys().await?;
        if !rows.iter().any(|r| r.state == "pending") {
            let next_gen = rows.iter().map(|r| r.generation).max().unwrap_or(0) + 1;
            let row = self.generate(next_gen, "pending", now, now + self.policy.publish_ahead);
            applied += usize::from(self.create(row, now).await?);
        }
        self.reload().await?;
        Ok(applied)
    }

    async fn create(&self, row: AuditKeyRow, now: i64) -> Result<bool, AuditKeysError> {
        match self.store.insert_audit_key(&row).await {
            Ok(()) => {
                tracing::info!(kid = %row.kid, state = %row.state, "audit key created");
                self.audit(AuditAction::AuditKeyCreate, &row.kid, now).await;
                Ok(true)
            }
            // Another node created this generation first.
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Records a rotation step in the platform tenant's chain (before bootstrap: only logged).
    async fn audit(&self, action: AuditAction, kid: &str, now: i64) {
        let Ok(Some(platform)) = self.store.platform_agency().await else {
            return;
        };
        let at = now.saturating_mul(1000);
        let record = tessera_store::AuditRecord {
            id: tessera_core::EventId::generate_at(
                u64::try_from(at).unwrap_or(0),
                &mut rand::thread_rng(),
            ),
            at,
            actor: "system".into(),
            on_behalf_of: None,
            action: action.into(),
            target: Some(kid.to_owned()),
            outcome: tessera_store::Outcome::Success,
            request_id: "audit-key-rotation".into(),
            ip: None,
            user_agent: None,
            detail: json!({}),
        };
        if let Err(e) = self
            .store
            .append_audit(&self.admission.admit(platform.id), &record)
            .await
        {
            tracing::warn!(error = %e, "could not audit an audit key rotation step");
        }
    }
}
