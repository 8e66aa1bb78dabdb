//! The per-node caches of the authorization server: OAuth client records (with their
//! installations) and access tokens that passed every check.
//!
//! INVARIANT: an entry is used only while the generation of every agency it depends on is the
//! one recorded with it (the change feed moves a generation on every change); both maps are
//! bounded and cleared when full. Data only: the lookups live in `client` and `verify`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tessera_core::AgencyId;
use tessera_store::{ClientRecord, Installation};
use tessera_token::AccessClaims;

/// A client record and the generation of its owner agency when it was read.
#[derive(Debug)]
pub(super) struct CachedClient {
    pub(super) record: Arc<ClientRecord>,
    pub(super) generation: u64,
}

/// A client's installations and when they were read (ms).
#[derive(Debug)]
pub(super) struct CachedInstallations {
    pub(super) list: Arc<Vec<Installation>>,
    pub(super) read_at: i64,
}

/// Recently used clients and their installations.
#[derive(Debug, Default)]
pub struct ClientCache {
    pub(super) clients: RwLock<HashMap<String, CachedClient>>,
    pub(super) installations: RwLock<HashMap<String, CachedInstallations>>,
}

/// An access token that passed every check, and the generations it was checked under.
#[derive(Debug)]
pub(super) struct Verified {
    pub(super) claims: Arc<AccessClaims>,
    pub(super) agency: AgencyId,
    pub(super) tenant_generation: u64,
    pub(super) client_generation: Option<(AgencyId, u64)>,
}

/// Access tokens that passed every check, by keyed hash.
#[derive(Debug, Default)]
pub struct VerifiedCache {
    pub(super) map: RwLock<tessera_core::fastmap::FastMap<[u8; 32], Verified>>,
}
