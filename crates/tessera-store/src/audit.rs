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

/// An agency's chain head: the last event's sequence number and hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditHead {
    /// The last sequence number given out.
    pub seq: i64,
    /// The last event's hash.
    pub hash: ChainHash,
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

/// An event's hashed fields, borrowed: `detail` is its canonical JSON text (what
/// `serde_json::to_string` of the stored `Value` writes: compact, keys sorted).
#[derive(Clone, Copy, Debug)]
pub struct EventFields<'a> {
    /// Position in the chain.
    pub seq: i64,
    /// The agency.
    pub agency: &'a str,
    /// The event id.
    pub id: &'a str,
    /// Epoch ms.
    pub at: i64,
    /// Who acted.
    pub actor: &'a str,
    /// On whose behalf.
    pub on_behalf_of: Option<&'a str>,
    /// The action.
    pub action: &'a str,
    /// The target.
    pub target: Option<&'a str>,
    /// The outcome's stored text.
    pub outcome: &'a str,
    /// The request id.
    pub request_id: &'a str,
    /// The client address, as stored.
    pub ip: Option<&'a str>,
    /// The user agent, as stored.
    pub user_agent: Option<&'a str>,
    /// The detail's canonical JSON text.
    pub detail: &'a str,
}

fn push_str(buf: &mut Vec<u8>, s: &str) {
    // serde_json's own string escaping, so the bytes are exactly what `json!(..).to_string()`
    // writes; writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, s);
}

fn push_opt(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => push_str(buf, s),
        None => buf.extend_from_slice(b"null"),
    }
}

fn push_int(buf: &mut Vec<u8>, n: i64) {
    buf.extend_from_slice(n.to_string().as_bytes());
}

/// The hash of an event from its fields and the previous hash:
/// `SHA-256("tessera-audit-v1\n" ‖ prev ‖ body)` where `body` is the compact JSON array
/// `[seq, agency, id, at, actor, on_behalf_of, action, target, outcome, request_id, ip,
/// user_agent, detail]`. `buf` is scratch space, reused across calls.
pub fn hash_fields(f: &EventFields<'_>, prev: &ChainHash, buf: &mut Vec<u8>) -> ChainHash {
    buf.clear();
    buf.push(b'[');
    push_int(buf, f.seq);
    buf.push(b',');
    push_str(buf, f.agency);
    buf.push(b',');
    push_str(buf, f.id);
    buf.push(b',');
    push_int(buf, f.at);
    buf.push(b',');
    push_str(buf, f.actor);
    buf.push(b',');
    push_opt(buf, f.on_behalf_of);
    buf.push(b',');
    push_str(buf, f.action);
    buf.push(b',');
    push_opt(buf, f.target);
    buf.push(b',');
    push_str(buf, f.outcome);
    buf.push(b',');
    push_str(buf, f.request_id);
    buf.push(b',');
    push_opt(buf, f.ip);
    buf.push(b',');
    push_opt(buf, f.user_agent);
    buf.push(b',');
    buf.extend_from_slice(f.detail.as_bytes());
    buf.push(b']');
    let mut h = Sha256::new();
    h.update(b"tessera-audit-v1\n");
    h.update(prev.0);
    h.update(&buf[..]);
    ChainHash(h.finalize().into())
}

/// The hash of `$r` at `$seq` in `$agency`'s chain after `$prev`: `$r` is an [`AuditRecord`] or
/// an [`AuditEvent`], which name the hashed fields alike (one list for both, no copy of either).
macro_rules! hash_of {
    ($seq:expr, $agency:expr, $r:expr, $prev:expr) => {{
        let r = $r;
        // The detail as stored: serialising the parsed value gives the stored text back.
        let detail = r.detail.to_string();
        let fields = EventFields {
            seq: $seq,
            agency: $agency.as_str(),
            id: r.id.as_str(),
            at: r.at,
            actor: &r.actor,
            on_behalf_of: r.on_behalf_of.as_deref(),
            action: &r.action,
            target: r.target.as_deref(),
            outcome: r.outcome.as_str(),
            request_id: &r.request_id,
            ip: r.ip.as_deref(),
            user_agent: r.user_agent.as_deref(),
            detail: &detail,
        };
        hash_fields(&fields, $prev, &mut Vec::with_capacity(256 + detail.len()))
    }};
}

/// Computes an event's hash from its content and the previous hash.
pub fn chain_hash(seq: i64, agency: &AgencyId, r: &AuditRecord, prev: &ChainHash) -> ChainHash {
    hash_of!(seq, agency, r, prev)
}

impl AuditEvent {
    /// The event `r` became at `seq` in `agency`'s chain, between `prev_hash` and `hash`.
    pub fn linked(
        seq: i64,
        agency: &AgencyId,
        r: &AuditRecord,
        prev_hash: ChainHash,
        hash: ChainHash,
    ) -> Self {
        Self {
            seq,
            agency_id: agency.clone(),
            id: r.id.clone(),
            at: r.at,
            actor: r.actor.clone(),
            on_behalf_of: r.on_behalf_of.clone(),
            action: r.action.clone(),
            target: r.target.clone(),
            outcome: r.outcome,
            request_id: r.request_id.clone(),
            ip: r.ip.clone(),
            user_agent: r.user_agent.clone(),
            detail: r.detail.clone(),
            prev_hash,
            hash,
        }
    }

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

    /// Whether this event's hash matches its content and `prev_hash` (hashed from the event's
    /// own fields: no copy of the record, whose detail may be kilobytes).
    pub fn hash_is_valid(&self) -> bool {
        hash_of!(self.seq, self.agency_id, self, &self.prev_hash) == self.hash
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash as it was first written (a `json!` array, `to_string`): stored chains hold it.
    fn original(seq: i64, agency: &AgencyId, r: &AuditRecord, prev: &ChainHash) -> ChainHash {
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

    #[test]
    fn the_streamed_hash_is_the_original_one() {
        let agency: AgencyId = "agy_01hzzzzzzzzzzzzzzzzzzzzzzz"
            .parse()
            .unwrap_or_else(|_| AgencyId::generate());
        for (obo, ip, detail) in [
            (None, None, serde_json::json!({})),
            (
                Some("usr_x\"q\\"),
                Some("10.0.0.1"),
                serde_json::json!({"b": [1, 2.5, -3e300], "a": "é\u{1}\n\t<>", "z": null}),
            ),
            (
                Some("ü"),
                None,
                serde_json::json!({"nested": {"y": true, "x": u64::MAX}}),
            ),
        ] {
            let r = AuditRecord {
                id: EventId::generate(),
                at: 1_800_000_000_123,
                actor: "key_\u{7f}\u{2028}".into(),
                on_behalf_of: obo.map(Into::into),
                action: "account.update".into(),
                target: Some("acc_1".into()),
                outcome: Outcome::Denied,
                request_id: "r-1".into(),
                ip: ip.map(Into::into),
                user_agent: Some("ua/1 \"x\"".into()),
                detail,
            };
            let prev = ChainHash([9; 32]);
            let hash = chain_hash(7, &agency, &r, &prev);
            assert_eq!(hash, original(7, &agency, &r, &prev));
            // An event checks its own hash from its fields as the chain computed it.
            let mut event = AuditEvent::linked(7, &agency, &r, prev, hash);
            assert!(event.hash_is_valid());
            event.detail = serde_json::json!({"tampered": true});
            assert!(!event.hash_is_valid());
        }
    }
}
