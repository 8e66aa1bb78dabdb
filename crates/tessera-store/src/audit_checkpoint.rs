//! Signed checkpoints of the per-agency audit chains, the keys that sign them and the
//! retention settings, as stored. Signing and verifying live in the server; this module only
//! holds the rows.
//!
//! INVARIANT: one checkpoint per (agency, seq) (primary key; inserts never overwrite), and an
//! audit key's `sealed_private` is always a sealed value (the private key while it can sign, an
//! empty plaintext once retired): no private key is ever stored in the clear.

use crate::audit::ChainHash;
use tessera_core::AgencyId;

/// A signed checkpoint: the agency's chain had `hash` at `seq` when it was signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditCheckpoint {
    /// The agency.
    pub agency_id: AgencyId,
    /// The sequence number of the last event it covers.
    pub seq: i64,
    /// That event's hash.
    pub hash: ChainHash,
    /// When it was signed (epoch ms).
    pub at: i64,
    /// The audit key that signed it.
    pub kid: String,
    /// The Ed25519 signature (64 bytes) over the canonical checkpoint bytes.
    pub signature: Vec<u8>,
}

/// An audit signing key as stored (times in epoch seconds).
///
/// `Debug` never prints the sealed private key, only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKeyRow {
    /// Key id (unique).
    pub kid: String,
    /// 1, 2, …: unique, so racing nodes cannot both create the next key.
    pub generation: i64,
    /// `pending`, `active` or `retired`.
    pub state: String,
    /// When it was generated.
    pub created_at: i64,
    /// When it starts (or started) to sign.
    pub activates_at: i64,
    /// When it stopped signing.
    pub retires_at: Option<i64>,
    /// The raw 32-byte Ed25519 public key.
    pub public_key: Vec<u8>,
    /// The seed sealed under the master key; once retired, an empty plaintext sealed the same
    /// way (the public key's attestation).
    pub sealed_private: Vec<u8>,
}

impl std::fmt::Debug for AuditKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKeyRow")
            .field("kid", &self.kid)
            .field("generation", &self.generation)
            .field("state", &self.state)
            .field("activates_at", &self.activates_at)
            .field("retires_at", &self.retires_at)
            .field("sealed_private_len", &self.sealed_private.len())
            .finish_non_exhaustive()
    }
}

/// An agency whose chain has moved past its newest checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditCheckpointDue {
    /// The agency.
    pub agency_id: AgencyId,
    /// Its chain head's sequence number.
    pub head_seq: i64,
    /// Its newest checkpoint's sequence number (0: none).
    pub checkpoint_seq: i64,
    /// When its first event after that checkpoint came (epoch ms), as the append path marked
    /// it; `None` for a head found only by a sweep (events appended by a node of a release
    /// that did not mark heads).
    pub pending_since: Option<i64>,
}

/// What a checkpoint is signed from, read in one transaction: the agency's head, its newest
/// checkpoint at or before the head, and the events after that checkpoint (at most the limit
/// asked for; the rest is read page by page).
#[derive(Clone, Debug, PartialEq)]
pub struct AuditCheckpointBasis {
    /// The chain head.
    pub head: crate::audit::AuditHead,
    /// The newest checkpoint with `seq <= head.seq`, if any.
    pub checkpoint: Option<AuditCheckpoint>,
    /// The events after that checkpoint (after seq 0 without one), in order.
    pub events: Vec<crate::audit::AuditEvent>,
}

/// What a prune removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditPrune {
    /// Events up to and including this sequence number are gone; the checkpoint at it stays.
    pub through_seq: i64,
    /// How many events were deleted.
    pub events: u64,
}
