//! The store's interface: one trait per role, and `Store`, every one of them at once, so an
//! `Arc<dyn Store>` serves every caller. Each trait's doc names who may call it; callers bring
//! them into scope with `use tessera_store::prelude::*;`.
//!
//! INVARIANT (I1): only `PlatformAdmin`, `KeyRing`, `SecretStore`'s global secrets and the
//! global feed act without a
//! `TenantScope`; `Lookups` cross tenants only to return the scope of the row they found.

mod audit_checkpoints;
mod audit_log;
mod change_feed;
mod cluster;
mod evidence;
mod key_ring;
mod lookups;
mod platform;
pub(crate) mod secrets;
mod tenant;
mod webhooks;

pub use audit_checkpoints::AuditCheckpoints;
pub use audit_log::AuditLog;
pub use change_feed::ChangeFeed;
pub use cluster::{ChangeEvent, ChangeSignal, ChangeSignals, Cluster, Lease};
pub use evidence::{Evidence, MAX_ACTORS};
pub use key_ring::KeyRing;
pub use lookups::Lookups;
pub use platform::PlatformAdmin;
pub use secrets::{DataKeyRow, MasterKeyRow, RootSecretRow, SecretStore};
pub use tenant::TenantData;
pub use webhooks::WebhookStore;

/// The whole persistence interface: every role's trait. Both backends pass the same test
/// suite. Implemented for every type that implements all the parts.
pub trait Store:
    PlatformAdmin
    + KeyRing
    + SecretStore
    + ChangeFeed
    + TenantData
    + Lookups
    + AuditLog
    + AuditCheckpoints
    + Evidence
    + WebhookStore
    + Cluster
    + ChangeSignals
    + std::fmt::Debug
{
}

impl<T> Store for T where
    T: PlatformAdmin
        + KeyRing
        + SecretStore
        + ChangeFeed
        + TenantData
        + Lookups
        + AuditLog
        + Evidence
        + AuditCheckpoints
        + WebhookStore
        + Cluster
        + ChangeSignals
        + std::fmt::Debug
{
}
