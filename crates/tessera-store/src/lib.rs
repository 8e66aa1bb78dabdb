//! Tessera's persistence: the `Store` traits (one per role, in `store`), their SQLite and
//! PostgreSQL implementations, and the records they keep.
//!
//! INVARIANT (I1): every tenant operation takes a `TenantScope` and filters on its agency; on
//! PostgreSQL row-level security enforces the same filter a second time. Every write that can
//! change an authorization decision bumps the revision in the change log, and every change
//! appends its audit event in the same transaction (I5, I7: never a half-applied write).

pub mod audit;
pub mod audit_checkpoint;
pub mod bulk;
mod connection;
mod error;
mod listen;
mod migrate;
mod page;
mod postgres;
pub mod prelude;
mod records;
mod scope;
mod sql;
mod sqlite;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod written;

pub use audit::{AuditEvent, AuditHead, AuditRecord, ChainHash, Outcome};
pub use audit_checkpoint::{
    AuditCheckpoint, AuditCheckpointBasis, AuditCheckpointDue, AuditKeyRow, AuditPrune,
};
pub use connection::{connect, connect_replica, grant_runtime_role, Connected};
pub use error::StoreError;
pub use page::{Page, PageRequest};
pub use postgres::PgStore;
pub use records::*;
pub use scope::{ScopeMint, TenantScope};
pub use sqlite::SqliteStore;
pub use store::{
    AuditCheckpoints, AuditLog, ChangeEvent, ChangeFeed, ChangeSignal, ChangeSignals, Cluster,
    DataKeyRow, Evidence, KeyRing, Lease, Lookups, MasterKeyRow, PlatformAdmin, RootSecretRow,
    SecretStore, Store, TenantData, WebhookStore, MAX_ACTORS,
};
