//! The store's traits, for `use tessera_store::prelude::*;`: calling a method through an
//! `Arc<dyn Store>` needs the trait that declares it in scope.

pub use crate::store::{
    AuditCheckpoints, AuditLog, ChangeFeed, ChangeSignals, Cluster, Evidence, KeyRing, Lookups,
    PlatformAdmin, SecretStore, Store, TenantData, WebhookStore,
};
