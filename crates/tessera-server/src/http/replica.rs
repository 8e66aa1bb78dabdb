//! The admin API's reads that a read replica may answer (lists; the audit export and
//! verification route themselves in `usecase::audit`): the floor they must reflect, and a store
//! failure recognised in an `ApiError`.
//!
//! INVARIANT: such a read reflects at least this node's applied revision and every write this
//! node made to the agency acted in or the caller's own agency (those stay on the primary
//! until the feed has seen them and `FRESH_FOR` has passed); see `cluster::replica`.

use std::sync::Arc;

use tessera_store::Store;

use crate::cluster::replica::{Floor, ReadFuture, ReplicaFailure};
use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
use crate::http::state::AppState;

impl ReplicaFailure for ApiError {
    fn replica_failed(&self) -> bool {
        self.code == ErrorCode::Unavailable
    }
}

/// What a list or audit read by `auth` must reflect.
pub fn floor<'a>(s: &AppState, auth: &'a Authorized) -> Floor<'a> {
    auth.read_floor(s.engine.applied())
}

/// Runs a list or audit read on the replica when it may answer it, else on the primary.
pub async fn read<'f, T>(
    s: &AppState,
    auth: &'f Authorized,
    read: impl Fn(Arc<dyn Store>) -> ReadFuture<'f, T, ApiError>,
) -> Result<T, ApiError> {
    s.reads.run(floor(s, auth), read).await
}
