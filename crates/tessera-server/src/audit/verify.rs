//! Verification of an agency's audit chain with its signed checkpoints: one state machine,
//! fed events and checkpoints in chain order, used online (`GET …/audit/verify`, from the
//! store) and offline (`tessera audit verify`, from an export file and a JWKS file).
//!
//! INVARIANT: the first failure is reported, with a stable reason code and the sequence (or
//! export line) where it is; nothing after it is trusted. A chain must start at seq 1 from the
//! zero hash, or at a signed checkpoint (a pruned chain or a resumed export); an empty chain
//! is a failure (`missing_events`): every agency has at least its `agency.create` event.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::BufRead;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tessera_store::audit::{hash_fields, EventFields};
use tessera_store::ChainHash;

/// Why verification stopped (stable codes; docs/AUDIT.md lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// An event's stored hash is not the hash of its content (a field was edited).
    HashMismatch,
    /// An event's `prev_hash` is not the previous event's hash (a row replaced or moved).
    BrokenLink,
    /// A sequence number is skipped (a row deleted).
    SequenceGap,
    /// A sequence number goes backwards or repeats (rows reordered or duplicated).
    OutOfOrder,
    /// A checkpoint's signature does not verify under its key (forged or altered).
    CheckpointSignature,
    /// A validly signed checkpoint names a hash the chain does not have at its sequence (the
    /// chain was rewritten after it was signed).
    CheckpointMismatch,
    /// Events are missing: the chain is empty, starts after 1 without an anchoring checkpoint
    /// (or, online, without the `audit.prune` event that explains it), or ends before a
    /// checkpoint or its head.
    MissingEvents,
    /// A checkpoint names a key that is not in the key set.
    UnknownKey,
    /// The chain head stored with the chain disagrees with its last event.
    HeadMismatch,
    /// A line or row belongs to another agency.
    WrongAgency,
    /// A line of the export is not a valid event or checkpoint.
    Malformed,
}

impl Reason {
    /// The stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HashMismatch => "hash_mismatch",
            Self::BrokenLink => "broken_link",
            Self::SequenceGap => "sequence_gap",
            Self::OutOfOrder => "out_of_order",
            Self::CheckpointSignature => "checkpoint_signature",
            Self::CheckpointMismatch => "checkpoint_mismatch",
            Self::MissingEvents => "missing_events",
            Self::UnknownKey => "unknown_key",
            Self::HeadMismatch => "head_mismatch",
            Self::WrongAgency => "wrong_agency",
            Self::Malformed => "malformed",
        }
    }
}

/// The first failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Why.
    pub reason: Reason,
    /// The first sequence number that is bad (or missing).
    pub seq: Option<i64>,
    /// Words for people.
    pub detail: String,
}

fn fail(reason: Reason, seq: Option<i64>, detail: impl Into<String>) -> Failure {
    Failure {
        reason,
        seq,
        detail: detail.into(),
    }
}

/// The canonical bytes a checkpoint's Ed25519 signature covers (domain-separated, one field a
/// line, no trailing data):
/// `tessera-audit-checkpoint-v1\nagency=<agy_…>\nseq=<decimal>\nhash=<64 lowercase hex>\nat=<epoch ms decimal>\nkid=<kid>\n`.
pub fn checkpoint_message(agency: &str, seq: i64, hash: &ChainHash, at: i64, kid: &str) -> Vec<u8> {
    format!(
        "tessera-audit-checkpoint-v1\nagency={agency}\nseq={seq}\nhash={}\nat={at}\nkid={kid}\n",
        hash.to_hex()
    )
    .into_bytes()
}

/// A checkpoint to check (borrowed from a row or an export line).
#[derive(Clone, Copy, Debug)]
pub struct CheckpointView<'a> {
    /// The agency.
    pub agency: &'a str,
    /// The last event it covers.
    pub seq: i64,
    /// That event's hash.
    pub hash: ChainHash,
    /// When it was signed (ms).
    pub at: i64,
    /// The signing key.
    pub kid: &'a str,
    /// The signature bytes.
    pub signature: &'a [u8],
}

/// An event to check: its hashed fields and its stored links.
#[derive(Clone, Copy, Debug)]
pub struct EventView<'a> {
    /// The fields the hash covers.
    pub fields: EventFields<'a>,
    /// Its stored `prev_hash`.
    pub prev_hash: ChainHash,
    /// Its stored `hash`.
    pub hash: ChainHash,
}

/// What a verification covered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Coverage {
    /// Events checked.
    pub events: u64,
    /// Checkpoints whose signature verified and whose hash matched the chain.
    pub checkpoints: u64,
    /// Where the verified chain starts: 0 from the zero hash (seq 1), else the sequence of the
    /// signed checkpoint it starts from (a pruned chain or a resumed export).
    pub start_seq: i64,
    /// The last sequence number verified.
    pub last_seq: i64,
    /// The newest checkpoint that matched the chain: events up to it cannot be changed without
    /// the signing key; events after it are protected only by the hash chain until the next
    /// checkpoint.
    pub anchored_seq: Option<i64>,
    /// The hash of the checkpoint the chain starts from (hex), when `start_seq > 0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_hash: Option<String>,
}

/// The verification state machine.
#[derive(Debug)]
pub struct ChainVerifier<'k> {
    keys: &'k HashMap<String, VerifyingKey>,
    agency: Option<String>,
    last: Option<(i64, ChainHash)>,
    cov: Coverage,
    buf: Vec<u8>,
}

impl<'k> ChainVerifier<'k> {
    /// A verifier trusting `keys` (kid → public key), for `agency` when known.
    pub fn new(keys: &'k HashMap<String, VerifyingKey>, agency: Option<&str>) -> Self {
        Self {
            keys,
            agency: agency.map(str::to_owned),
            last: None,
            cov: Coverage::default(),
            buf: Vec::with_capacity(512),
        }
    }

    fn check_agency(&mut self, agency: &str, seq: i64) -> Result<(), Failure> {
        match &self.agency {
            Some(a) if a != agency => Err(fail(
                Reason::WrongAgency,
                Some(seq),
                format!("`{agency}` is not the agency verified (`{a}`)"),
            )),
            Some(_) => Ok(()),
            None => {
                self.agency = Some(agency.to_owned());
                Ok(())
            }
        }
    }

    /// The last sequence number verified (0 before any).
    pub fn last_seq(&self) -> i64 {
        self.last.map_or(0, |(s, _)| s)
    }

    /// The last hash verified.
    pub fn last_hash(&self) -> Option<ChainHash> {
        self.last.map(|(_, h)| h)
    }

    /// Checks the next event.
    pub fn event(&mut self, e: &EventView<'_>) -> Result<(), Failure> {
        let seq = e.fields.seq;
        self.check_agency(e.fields.agency, seq)?;
        match self.last {
            None => {
                if seq != 1 {
                    return Err(fail(
                        Reason::MissingEvents,
                        Some(1),
                        format!("the chain starts at {seq} without a checkpoint anchoring it"),
                    ));
                }
                if e.prev_hash != ChainHash::GENESIS {
                    return Err(fail(
                        Reason::BrokenLink,
                        Some(seq),
                        "the first event does not start from the zero hash",
                    ));
                }
            }
            Some((ls, lh)) => {
                if seq > ls + 1 {
                    return Err(fail(
                        Reason::SequenceGap,
                        Some(ls + 1),
                        format!("events {} to {} are missing", ls + 1, seq - 1),
                    ));
                }
                if seq <= ls {
                    return Err(fail(
                        Reason::OutOfOrder,
                        Some(seq),
                        format!("event {seq} comes after event {ls}"),
                    ));
                }
                if e.prev_hash != lh {
                    return Err(fail(
                        Reason::BrokenLink,
                        Some(seq),
                        "its prev_hash is not the previous event's hash",
                    ));
                }
            }
        }
        if hash_fields(&e.fields, &e.prev_hash, &mut self.buf) != e.hash {
            return Err(fail(
                Reason::HashMismatch,
                Some(seq),
                "its content does not hash to its stored hash",
            ));
        }
        self.last = Some((seq, e.hash));
        self.cov.events += 1;
        self.cov.last_seq = seq;
        Ok(())
    }

    /// Checks the next checkpoint (in chain order: right after the event it covers, or first,
    /// as the anchor of a chain that does not start at 1).
    pub fn checkpoint(&mut self, c: &CheckpointView<'_>) -> Result<(), Failure> {
        self.check_agency(c.agency, c.seq)?;
        let Some(key) = self.keys.get(c.kid) else {
            return Err(fail(
                Reason::UnknownKey,
                Some(c.seq),
                format!("checkpoint {} names unknown key `{}`", c.seq, c.kid),
            ));
        };
        let sig = Signature::from_slice(c.signature).map_err(|_| {
            fail(
                Reason::CheckpointSignature,
                Some(c.seq),
                "the signature is not 64 bytes",
            )
        })?;
        let msg = checkpoint_message(c.agency, c.seq, &c.hash, c.at, c.kid);
        if key.verify_strict(&msg, &sig).is_err() {
            return Err(fail(
                Reason::CheckpointSignature,
                Some(c.seq),
                format!("checkpoint {} does not verify under key `{}`", c.seq, c.kid),
            ));
        }
        match self.last {
            None => {
                self.last = Some((c.seq, c.hash));
                self.cov.start_seq = c.seq;
                self.cov.start_hash = Some(c.hash.to_hex());
                self.cov.last_seq = c.seq;
            }
            Some((ls, lh)) => {
                if c.seq > ls {
                    return Err(fail(
                        Reason::MissingEvents,
                        Some(ls + 1),
                        format!(
                            "checkpoint {} covers events after {ls} that are missing",
                            c.seq
                        ),
                    ));
                }
                if c.seq < ls {
                    return Err(fail(
                        Reason::OutOfOrder,
                        Some(c.seq),
                        format!("checkpoint {} comes after event {ls}", c.seq),
                    ));
                }
                if c.hash != lh {
                    return Err(fail(
                        Reason::CheckpointMismatch,
                        Some(c.seq),
                        format!("the signed hash at {} is not the chain's", c.seq),
                    ));
                }
            }
        }
        self.cov.checkpoints += 1;
        self.cov.anchored_seq = Some(c.seq);
        Ok(())
    }

    /// Ends the run: an empty chain is a failure.
    pub fn finish(self) -> Result<Coverage, Failure> {
        if self.last.is_none() {
            return Err(fail(Reason::MissingEvents, Some(1), "no events at all"));
        }
        Ok(self.cov)
    }
}

/// The keys of a JWKS document (`/.well-known/audit-keys.json`): OKP Ed25519 keys only.
pub fn keys_from_jwks(jwks: &serde_json::Value) -> Result<HashMap<String, VerifyingKey>, String> {
    let mut out = HashMap::new();
    let keys = jwks["keys"]
        .as_array()
        .ok_or("the key file is not a JWKS (no `keys` array)")?;
    for k in keys {
        if k["kty"] != "OKP" || k["crv"] != "Ed25519" {
            continue;
        }
        let kid = k["kid"].as_str().ok_or("a key has no `kid`")?;
        let x = k["x"].as_str().ok_or("a key has no `x`")?;
        let bytes = URL_SAFE_NO_PAD
            .decode(x)
            .map_err(|_| format!("key `{kid}`: `x` is not base64url"))?;
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| format!("key `{kid}`: not 32 bytes"))?;
        let vk = VerifyingKey::from_bytes(&arr).map_err(|_| format!("key `{kid}`: invalid"))?;
        out.insert(kid.to_owned(), vk);
    }
    Ok(out)
}

/// One export line, borrowed where its text has no escapes.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    seq: Option<i64>,
    #[serde(default, borrow)]
    agency_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    at: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    hash: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    actor: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    on_behalf_of: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    action: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    target: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    outcome: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    request_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    ip: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    detail: Option<&'a serde_json::value::RawValue>,
    #[serde(default, borrow)]
    prev_hash: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    signature: Option<Cow<'a, str>>,
}

fn hex32(s: &str) -> Option<ChainHash> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(ChainHash(out))
}

/// The result of verifying an export file offline.
#[derive(Debug)]
pub enum FileVerdict {
    /// Intact.
    Intact(Coverage),
    /// Broken at `line` (1-based).
    Broken {
        /// The first bad line (for a missing tail: the line after the last).
        line: u64,
        /// Why.
        failure: Failure,
    },
}

/// Verifies an export (JSON Lines) against `keys`, with no server and no database.
pub fn verify_export(
    input: impl BufRead,
    keys: &HashMap<String, VerifyingKey>,
) -> std::io::Result<FileVerdict> {
    let mut v = ChainVerifier::new(keys, None);
    let mut n = 0u64;
    let mut input = input;
    let mut text = String::with_capacity(1024);
    loop {
        text.clear();
        if input.read_line(&mut text)? == 0 {
            break;
        }
        n += 1;
        let line = text.trim_end_matches(['\n', '\r']);
        if line.is_empty() {
            continue;
        }
        if let Err(failure) = verify_line(&mut v, line) {
            return Ok(FileVerdict::Broken { line: n, failure });
        }
    }
    Ok(match v.finish() {
        Ok(c) => FileVerdict::Intact(c),
        Err(failure) => FileVerdict::Broken {
            line: n + 1,
            failure,
        },
    })
}

fn verify_line(v: &mut ChainVerifier<'_>, line: &str) -> Result<(), Failure> {
    let malformed = |what: &str| fail(Reason::Malformed, None, what.to_owned());
    let l: Line<'_> =
        serde_json::from_str(line).map_err(|e| malformed(&format!("not an export line: {e}")))?;
    if l.kind == "end" {
        // The trailer: informational (the last cursor), nothing to verify.
        return Ok(());
    }
    let seq = l.seq.ok_or_else(|| malformed("`seq` is missing"))?;
    let agency = l
        .agency_id
        .as_deref()
        .ok_or_else(|| malformed("`agency_id` is missing"))?;
    let at =
        l.at.as_deref()
            .and_then(tessera_core::time::parse_rfc3339)
            .ok_or_else(|| malformed("`at` is not an RFC 3339 time"))?;
    let hash = l
        .hash
        .as_deref()
        .and_then(hex32)
        .ok_or_else(|| malformed("`hash` is not 64 hex digits"))?;
    match &*l.kind {
        "event" => {
            let req = |f: &Option<Cow<'_, str>>, name: &str| -> Result<(), Failure> {
                if f.is_none() {
                    return Err(fail(
                        Reason::Malformed,
                        Some(seq),
                        format!("`{name}` is missing"),
                    ));
                }
                Ok(())
            };
            req(&l.id, "id")?;
            req(&l.actor, "actor")?;
            req(&l.action, "action")?;
            req(&l.outcome, "outcome")?;
            req(&l.request_id, "request_id")?;
            let prev = l
                .prev_hash
                .as_deref()
                .and_then(hex32)
                .ok_or_else(|| malformed("`prev_hash` is not 64 hex digits"))?;
            let detail = l
                .detail
                .map(|d| d.get())
                .ok_or_else(|| malformed("`detail` is missing"))?;
            let fields = EventFields {
                seq,
                agency,
                id: l.id.as_deref().unwrap_or_default(),
                at,
                actor: l.actor.as_deref().unwrap_or_default(),
                on_behalf_of: l.on_behalf_of.as_deref(),
                action: l.action.as_deref().unwrap_or_default(),
                target: l.target.as_deref(),
                outcome: l.outcome.as_deref().unwrap_or_default(),
                request_id: l.request_id.as_deref().unwrap_or_default(),
                ip: l.ip.as_deref(),
                user_agent: l.user_agent.as_deref(),
                detail,
            };
            v.event(&EventView {
                fields,
                prev_hash: prev,
                hash,
            })
        }
        "checkpoint" => {
            let kid = l
                .kid
                .as_deref()
                .ok_or_else(|| malformed("`kid` is missing"))?;
            let sig = l
                .signature
                .as_deref()
                .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
                .ok_or_else(|| malformed("`signature` is not base64url"))?;
            v.checkpoint(&CheckpointView {
                agency,
                seq,
                hash,
                at,
                kid,
                signature: &sig,
            })
        }
        other => Err(malformed(&format!("unknown line type `{other}`"))),
    }
}
