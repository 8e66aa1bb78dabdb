//! The issuer's token-signing key ring: records in the store (private keys sealed under the
//! stored `signing-keys` secret, itself wrapped under the master key: `secrets::root`), the ring in memory, the JWKS, and rotation — on a schedule
//! that every node plans (the store's compare-and-set lets exactly one node apply each step)
//! and by hand (`tessera keys rotate`).
//!
//! INVARIANT (I6): a new key is published in the JWKS for `publish_ahead` before it signs, and a
//! retired key stays published until every token it signed has expired; a private key is never
//! in the store in the clear and is destroyed when its key retires.

use crate::audit::action::AuditAction;
use std::sync::{Arc, RwLock};

use serde_json::Value;
use tessera_store::{SigningKeyRow, Store, StoreError};
use tessera_token::{
    plan_manual_rotation, plan_rotation, Algorithm, KeyRecord, KeyRing, KeyState, RotationPolicy,
    SecretBytes, Transition,
};

/// Why the key ring cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record cannot be read (corruption, or a master key that is not the one that
    /// sealed it).
    #[error("signing key `{kid}`: {problem}")]
    Record {
        /// The key.
        kid: String,
        /// What is wrong.
        problem: String,
    },
}

fn state_name(s: KeyState) -> &'static str {
    match s {
        KeyState::Pending => "pending",
        KeyState::Active => "active",
        KeyState::Retiring => "retiring",
        KeyState::Retired => "retired",
    }
}

fn parse_state(s: &str) -> Option<KeyState> {
    match s {
        "pending" => Some(KeyState::Pending),
        "active" => Some(KeyState::Active),
        "retiring" => Some(KeyState::Retiring),
        "retired" => Some(KeyState::Retired),
        _ => None,
    }
}

fn to_record(row: &SigningKeyRow) -> Result<KeyRecord, KeysError> {
    let bad = |problem: &str| KeysError::Record {
        kid: row.kid.clone(),
        problem: problem.to_owned(),
    };
    Ok(KeyRecord {
        kid: row.kid.clone(),
        alg: Algorithm::from_name(&row.alg).ok_or_else(|| bad("unknown algorithm"))?,
        state: parse_state(&row.state).ok_or_else(|| bad("unknown state"))?,
        created_at: row.created_at,
        activates_at: row.activates_at,
        retires_at: row.retires_at,
        expires_at: row.expires_at,
        public_jwk: serde_json::from_str(&row.public_jwk)
            .map_err(|_| bad("public JWK is not JSON"))?,
        sealed_private: row.sealed_private.clone(),
    })
}

fn to_row(r: &KeyRecord) -> SigningKeyRow {
    SigningKeyRow {
        kid: r.kid.clone(),
        alg: r.alg.as_str().to_owned(),
        state: state_name(r.state).to_owned(),
        created_at: r.created_at,
        activates_at: r.activates_at,
        retires_at: r.retires_at,
        expires_at: r.expires_at,
        public_jwk: r.public_jwk.to_string(),
        sealed_private: r.sealed_private.clone(),
    }
}

/// The key ring of this node.
pub struct Keys {
    /// Scopes for the platform's audit chain.
    admission: Arc<crate::gate::admission::Admission>,
    store: Arc<dyn Store>,
    envelope: SecretBytes<32>,
    policy: RotationPolicy,
    ring: RwLock<Option<Arc<KeyRing>>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// An empty ring; `maintain` loads it (and creates the first key on a new store).
    pub fn new(
        store: Arc<dyn Store>,
        envelope: SecretBytes<32>,
        policy: RotationPolicy,
        admission: Arc<crate::gate::admission::Admission>,
    ) -> Self {
        Self {
            store,
            admission,
            envelope,
            policy,
            ring: RwLock::new(None),
        }
    }

    /// The ring as last loaded (`None` before the first `maintain`).
    pub fn ring(&self) -> Option<Arc<KeyRing>> {
        self.ring.read().ok().and_then(|r| r.clone())
    }

    /// The JWKS to publish at `now` (epoch seconds).
    pub fn jwks(&self, now: i64) -> Value {
        self.ring()
            .map_or_else(|| serde_json::json!({ "keys": [] }), |r| r.jwks(now))
    }

    async fn records(&self) -> Result<Vec<KeyRecord>, KeysError> {
        self.store
            .signing_keys()
            .await?
            .iter()
            .map(to_record)
            .collect()
    }

    /// Reloads the ring from the store.
    pub async fn reload(&self) -> Result<(), KeysError> {
        let records = self.records().await?;
        let ring = KeyRing::new(&records, &self.envelope).map_err(|e| KeysError::Record {
            kid: "*".into(),
            problem: e.to_string(),
        })?;
        if let Ok(mut r) = self.ring.write() {
            *r = Some(Arc::new(ring));
        }
        Ok(())
    }

    /// Applies a plan through the store's compare-and-set; stops at the first step another
    /// node already took (the next round re-plans). Returns the steps applied.
    async fn apply(&self, plan: &[Transition], now: i64) -> Result<usize, KeysError> {
        let mut records = self.records().await?;
        let mut applied = 0;
        for t in plan {
            let expected: Vec<&str> = t.expected_states().iter().map(|s| state_name(*s)).collect();
            let before: Vec<String> = records.iter().map(|r| r.kid.clone()).collect();
            if t.apply(&mut records, now, &self.envelope, &mut rand::rngs::OsRng)
                .is_err()
            {
                break;
            }
            let won = match t {
                Transition::Create { .. } => {
                    match records.iter().find(|r| !before.contains(&r.kid)) {
                        Some(new) => match self.store.insert_signing_key(&to_row(new)).await {
                            Ok(()) => true,
                            Err(StoreError::Conflict { .. }) => false,
                            Err(e) => return Err(e.into()),
                        },
                        None => false,
                    }
                }
                Transition::Drop { kid } => self.store.delete_signing_key(kid, &expected).await?,
                Transition::Activate { kid }
                | Transition::BeginRetiring { kid, .. }
                | Transition::Retire { kid } => {
                    let Some(r) = records.iter().find(|r| &r.kid == kid) else {
                        break;
                    };
                    let sealed = matches!(t, Transition::Retire { .. })
                        .then_some(r.sealed_private.as_slice());
                    self.store
                        .update_signing_key(
                            kid,
                            &expected,
                            state_name(r.state),
                            r.retires_at,
                            r.expires_at,
                            sealed,
                        )
                        .await?
                }
            };
            if !won {
                break;
            }
            tracing::info!(step = ?step_name(t), "signing key rotation step applied");
            self.audit(t, &records, now).await;
            applied += 1;
        }
        Ok(applied)
    }

    /// Records a rotation step in the platform tenant's audit chain (I5). Before bootstrap there
    /// is no platform tenant yet: the first key's creation is then only logged.
    async fn audit(&self, t: &Transition, records: &[KeyRecord], now: i64) {
        let Ok(Some(platform)) = self.store.platform_agency().await else {
            return;
        };
        let kid = match t {
            Transition::Create { .. } => records.last().map(|r| r.kid.clone()),
            Transition::Activate { kid }
            | Transition::BeginRetiring { kid, .. }
            | Transition::Retire { kid }
            | Transition::Drop { kid } => Some(kid.clone()),
        };
        let entity = kid.clone().unwrap_or_default();
        let record = tessera_store::AuditRecord {
            id: tessera_core::EventId::generate_at(
                u64::try_from(now.saturating_mul(1000)).unwrap_or(0),
                &mut rand::thread_rng(),
            ),
            at: now.saturating_mul(1000),
            actor: "system".into(),
            on_behalf_of: None,
            action: step_action(t).into(),
            target: kid,
            outcome: tessera_store::Outcome::Success,
            request_id: "key-rotation".into(),
            ip: None,
            user_agent: None,
            detail: serde_json::json!({}),
        };
        if let Err(e) = self
            .store
            .append_audit(
                // The platform's own chain: the key ring is the platform's.
                &self.admission.admit(platform.id.clone()),
                &record,
            )
            .await
        {
            tracing::warn!(error = %e, "could not audit a signing key rotation step");
        }
        self.announce(&platform.id, &entity, now).await;
    }

    /// Appends a signing-key change to the change log (platform tenant), so every node's feed
    /// reloads its ring at once rather than at its next minute. A failure only delays the
    /// others (they reload every minute anyway).
    async fn announce(&self, platform: &tessera_core::AgencyId, kid: &str, now: i64) {
        if let Err(e) = self
            .store
            .record_platform_change(
                &self.admission.admit(platform.clone()),
                crate::engine::SIGNING_KEY_CHANGE,
                kid,
                now.saturating_mul(1000),
            )
            .await
        {
            tracing::warn!(error = %e, "could not announce a signing key change");
        }
    }

    /// The algorithms the ring keeps a key lineage for: the policy's (Ed25519 by default)
    /// first, then ES256 for clients without EdDSA, then RS256, which OpenID Connect Core §15.1
    /// requires every provider to support ("OPs MUST support signing ID Tokens with the RSA
    /// SHA-256 algorithm"). Each lineage rotates on the same schedule.
    pub fn algorithms(&self) -> Vec<Algorithm> {
        let mut algs = vec![self.policy.alg];
        for a in [Algorithm::EdDsa, Algorithm::Es256, Algorithm::Rs256] {
            if !algs.contains(&a) {
                algs.push(a);
            }
        }
        algs
    }

    /// The stored records of one algorithm's lineage, and its rotation policy.
    async fn lineage(&self, alg: Algorithm) -> Result<(Vec<KeyRecord>, RotationPolicy), KeysError> {
        let records = self
            .records()
            .await?
            .into_iter()
            .filter(|r| r.alg == alg)
            .collect();
        let mut policy = self.policy;
        policy.alg = alg;
        Ok((records, policy))
    }

    /// Brings each algorithm's keys in line with the rotation policy at `now`, then reloads
    /// the ring.
    pub async fn maintain(&self, now: i64) -> Result<usize, KeysError> {
        let mut applied = 0;
        for alg in self.algorithms() {
            let (records, policy) = self.lineage(alg).await?;
            let plan = plan_rotation(&records, now, &policy);
            if !plan.is_empty() {
                applied += self.apply(&plan, now).await?;
            }
        }
        self.reload().await?;
        Ok(applied)
    }

    /// Starts a rotation by hand, of every algorithm's lineage: a new key is published now and
    /// signs after `publish_ahead`.
    pub async fn rotate(&self, now: i64) -> Result<usize, KeysError> {
        self.maintain(now).await?;
        let mut applied = 0;
        for alg in self.algorithms() {
            let (records, policy) = self.lineage(alg).await?;
            let plan = plan_manual_rotation(&records, now, &policy);
            applied += self.apply(&plan, now).await?;
        }
        self.reload().await?;
        Ok(applied)
    }

    /// Stores a key generated elsewhere, e.g. a test fixture that spares every test an RSA key
    /// generation. The record must open under this node's master key and be published; a kid
    /// already stored is a conflict. Not audited: no key changes state. Reloads the ring.
    pub async fn import(&self, record: &KeyRecord) -> Result<(), KeysError> {
        if !record.is_published() {
            return Err(KeysError::Record {
                kid: record.kid.clone(),
                problem: "only a pending, active or retiring key can be imported".into(),
            });
        }
        KeyRing::new(std::slice::from_ref(record), &self.envelope).map_err(|e| {
            KeysError::Record {
                kid: record.kid.clone(),
                problem: e.to_string(),
            }
        })?;
        self.store.insert_signing_key(&to_row(record)).await?;
        if let Ok(Some(platform)) = self.store.platform_agency().await {
            self.announce(&platform.id, &record.kid, record.created_at)
                .await;
        }
        self.reload().await
    }

    /// The stored records, without private keys, for listing.
    pub async fn list(&self) -> Result<Vec<Value>, KeysError> {
        Ok(self
            .records()
            .await?
            .iter()
            .map(|r| {
                serde_json::json!({
                    "kid": r.kid, "alg": r.alg.as_str(), "state": state_name(r.state), "created_at": r.created_at,
                    "activates_at": r.activates_at, "retires_at": r.retires_at, "expires_at": r.expires_at,
                })
            })
            .collect())
    }
}

fn step_name(t: &Transition) -> &'static str {
    let action = step_action(t).as_str();
    action.strip_prefix("signing_key.").unwrap_or(action)
}

/// The audit event of a rotation step.
fn step_action(t: &Transition) -> AuditAction {
    match t {
        Transition::Create { .. } => AuditAction::SigningKeyCreate,
        Transition::Activate { .. } => AuditAction::SigningKeyActivate,
        Transition::BeginRetiring { .. } => AuditAction::SigningKeyBeginRetiring,
        Transition::Retire { .. } => AuditAction::SigningKeyRetire,
        Transition::Drop { .. } => AuditAction::SigningKeyDrop,
    }
}
