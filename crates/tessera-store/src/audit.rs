//! Audit events and their per-agency hash chain.
//!
//! INVARIANT: `event.hash = SHA-256(domain ‖ prev_hash ‖ canonical JSON of the event)` and
//! each event's `prev_hash` is the hash of the event before it in the same agency (zeros for
//! the first), so an edit, deletion or reordering breaks the chain where it happened.

use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tessera_core::time::serde_rfc3339;
use tessera_core::{AgencyId, EventId};

/// How an act ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It happened.
    Success,
    /// Authorization refused it.
    Denied,
    /// It was attempted and failed.
    Failure,
}

impl Outcome {
    /// Stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Denied => "denied",
            Self::Failure => "failure",
        }
    }
    /// Parses stored text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Self::Success),
            "denied" => Some(Self::Denied),
            "failure" => Some(Self::Failure),
            _ => None,
        }
    }
}

/// An event as the server describes it, before it is chained.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRecord {
    /// Its id.
    pub id: EventId,
    /// When it happened (epoch ms).
    pub at: i64,
    /// Who acted (`usr_…`, `key_…`, `system`).
    pub actor: String,
    /// On whose behalf (impersonation, delegation).
    pub on_behalf_of: Option<String>,
    /// What was done, such as `account.create`.
    pub action: String,
    /// The object acted on.
    pub target: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The request that did it.
    pub request_id: String,
    /// The client's address.
    pub ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// Anything else worth keeping (never a secret).
    pub detail: serde_json::Value,
}

/// The 32-byte SHA-256 that links events.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The hash before the first event.
    pub const GENESIS: Self = Self([0; 32]);

    /// Lowercase hex.
    pub fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// From stored bytes.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(b).ok().map(Self)
    }
}

impl std::fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A chained, stored audit event.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct AuditEvent {
    /// Position in the agency's chain, from 1.
    pub seq: i64,
    /// The agency whose chain holds it.
    pub agency_id: AgencyId,
    /// Its id.
    pub id: EventId,
    /// When it happened.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub at: i64,
    /// Who acted.
    pub actor: String,
    /// On whose behalf.
    pub on_behalf_of: Option<String>,
    /// What was done.
    pub action: String,
    /// The object acted on.
    pub target: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The request that did it.
    pub request_id: String,
    /// The client's address.
    pub ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// Details.
    pub detail: serde_json::Value,
    /// The previous event's hash (hex).
    #[serde(serialize_with = "hex_ser")]
    #[schemars(with = "String")]
    pub prev_hash: ChainHash,
    /// This event's hash (hex).
    #[serde(serialize_with = "hex_ser")]
    #[schemars(with = "String")]
    pub hash: ChainHash,
}

fn hex_ser<S: serde::Serializer>(h: &ChainHash, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&h.to_hex())
}

/// Computes an event's hash from its content and the previous hash.
pub fn chain_hash(seq: i64, agency: &AgencyId, r: &AuditRecord, prev: &ChainHash) -> ChainHash {
    // serde_json maps are sorted, so `detail` serialises canonically.
    let body = serde_json::json!([
        seq,
        agency.as_str(),
        r.id.as_str(),
        r.at,
        r.actor,
        r.on_behalf_of,
        r.action,
        r.target,
        r.outcome.as_str(),
        r.request_id,
        r.ip,
        r.user_agent,
        r.detail,
    ]);
    let mut h = Sha256::new();
    h.update(b"tessera-audit-v1\n");
    h.update(prev.0);
    h.update(body.to_string().as_bytes());
    ChainHash(h.finalize().into())
}

impl AuditEvent {
    /// The record this event was made from.
    pub fn record(&self) -> AuditRecord {
        AuditRecord {
            id: self.id.clone(),
            at: self.at,
            actor: self.actor.clone(),
            on_behalf_of: self.on_behalf_of.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            outcome: self.outcome,
            request_id: self.request_id.clone(),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            detail: self.detail.clone(),
        }
    }

    /// Whether this event's hash matches its content and `prev_hash`.
    pub fn hash_is_valid(&self) -> bool {
        chain_hash(self.seq, &self.agency_id, &self.record(), &self.prev_hash) == self.hash
    }
}

/// Checks a run of events of one agency, in order, starting after `prev`. Returns the
/// sequence number of the first event that breaks the chain, if any.
pub fn verify_chain<'a>(
    prev: ChainHash,
    prev_seq: i64,
    events: impl IntoIterator<Item = &'a AuditEvent>,
) -> Result<ChainHash, i64> {
    let (mut prev, mut seq) = (prev, prev_seq);
    for e in events {
        if e.seq != seq + 1 || e.prev_hash != prev || !e.hash_is_valid() {
            return Err(e.seq);
        }
        prev = e.hash;
        seq = e.seq;
    }
    Ok(prev)
}
