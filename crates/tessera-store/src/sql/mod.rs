//! The queries both backends share, written once and instantiated per backend with its
//! concrete sqlx types (`impl_store!`), one macro per aggregate, each in its own file. Each
//! backend supplies `begin_tenant` (which on PostgreSQL sets the row-level-security tenant for
//! the transaction), `begin_snapshot` (the
//! same, as one consistent snapshot), `begin_feed` (the cross-tenant change-log reader),
//! `read_pool`, `write_pool` (for the global signing-key table, outside any tenant),
//! `migrate_impl`, `find_key_impl`, `begin_client`, `begin_credential`, `begin_login`,
//! `begin_resource`,
//! `switch_tenant`, the `KEY_SHARE` and `FOR_UPDATE` row-lock clauses and `CHECKSUM_COLUMN`;
//! no query branches on the backend.
//!
//! Why macros and not functions generic over `sqlx::Database`: tried (a `Backend: Database`
//! trait bundling the bounds) and it does not compile. A trait's `where` clauses are not
//! implied at its use sites (rust-lang/rust#20671), so `fn f<DB: Backend>` fails with E0277
//! on every bundled bound (`for<'c> &'c mut DB::Connection: Executor<'c>`,
//! `for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>`, `&str: Encode<'_, DB>`,
//! `String: Decode<'_, DB> + Type<DB>`, …): each of some forty functions would have to restate
//! a dozen higher-ranked bounds, one per Rust type it binds or reads. Macros per aggregate keep
//! each file small instead; the bodies are ordinary Rust inside them.
//!
//! INVARIANT: every tenant query filters on `agency_id = $1` from the `TenantScope`, and
//! every write commits its audit event (and its change-log entry) in the same transaction.
//! (The global signing-key writes are the exception: one compare-and-set statement each, no
//! tenant, no audit event or change-log entry here.)
//! Revisions come from one counter row updated inside each writing transaction, so writers
//! are serialised on it from their bump to their commit: commit order is revision order.

pub(crate) mod accounts;
pub(crate) mod agencies;
pub(crate) mod api_keys;
pub(crate) mod apps;
pub(crate) mod audit;
pub(crate) mod audit_checkpoints;
pub(crate) mod bindings;
pub(crate) mod change_feed;
pub(crate) mod cluster;
pub(crate) mod common;
pub(crate) mod evidence;
pub(crate) mod grants;
pub(crate) mod installations;
pub(crate) mod limits;
pub(crate) mod literal;
pub(crate) mod lookups;
pub(crate) mod migrations;
pub(crate) mod policies;
pub(crate) mod resource_servers;
pub(crate) mod roles;
pub(crate) mod secrets;
pub(crate) mod signing_keys;
pub(crate) mod tenant_data;
pub(crate) mod users;
pub(crate) mod webhooks;

/// Page sizes are clamped here, whatever the caller asked.
pub(crate) const MAX_PAGE: u32 = 200;

pub(crate) fn page_limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, MAX_PAGE))
}

/// At most this many changes per `changes_since` call.
pub(crate) const MAX_FEED: u32 = 10_000;

/// Lowercased email, the uniqueness key.
pub(crate) fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// `$first, $first+1, …`: `n` numbered placeholders, for a bound list in `IN (…)`. Both
/// backends accept `$N`.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

macro_rules! impl_store {
    ($store:ty, $db:ty, $backend:literal) => {
        use async_trait::async_trait;
        use sqlx::Row;
        use tessera_core::{
            AccountId, AgencyId, AppId, BindingId, InstallationId, KeyId, PolicyId, PrincipalId,
            ResourceServerId, RoleId, UserId,
        };

        use $crate::audit::{chain_hash, AuditEvent, AuditHead, AuditRecord, ChainHash, Outcome};
        use $crate::audit_checkpoint::{
            AuditCheckpoint, AuditCheckpointBasis, AuditCheckpointDue, AuditKeyRow, AuditPrune,
        };
        use $crate::error::StoreError;
        use $crate::page::{Page, PageRequest};
        use $crate::records::{
            Account, Agency, AgencyLimitsRecord, ApiKey, App, AppKind, AppReview, AppUpdate,
            AuditFilter, AuthCode, AuthzSnapshot, Binding, Bootstrap, Change, ClientRecord,
            ClientSecret, CodeRedemption, Grant, Installation, KeyRateLimit, KeySecretMatch,
            NewRefreshToken, NewUser, Policy, RefreshToken, RefreshUse, ResourceServer,
            RevocationChange, Revocations, Role, RolePatch, SecretHashRecord, SigningKeyRow,
            Status, Suspensions, User, UserCredential, UserPatch,
        };
        use $crate::scope::TenantScope;
        use $crate::sql::{email_key, page_limit, placeholders, MAX_FEED};
        use $crate::store::secrets::{DataKeyRow, MasterKeyRow, RootSecretRow, SecretStore};
        use $crate::store::{
            AuditCheckpoints, AuditLog, ChangeFeed, KeyRing, Lookups, PlatformAdmin, TenantData,
        };

        type Tx = sqlx::Transaction<'static, $db>;
        type DbRow = <$db as sqlx::Database>::Row;

        $crate::sql::common::common!($store);
        $crate::sql::migrations::migrations!($store, $backend);
        $crate::sql::agencies::agencies!($store, $backend);
        $crate::sql::signing_keys::signing_keys!($store);
        $crate::sql::secrets::secrets!($store);
        $crate::sql::change_feed::change_feed!($store);
        $crate::sql::cluster::cluster!($store);
        $crate::sql::audit::audit!($store);
        $crate::sql::evidence::evidence!($store);
        $crate::sql::audit_checkpoints::audit_checkpoints!($store);
        $crate::sql::accounts::accounts!($store);
        $crate::sql::users::users!($store);
        $crate::sql::bindings::bindings!($store);
        $crate::sql::roles::roles!($store);
        $crate::sql::policies::policies!($store);
        $crate::sql::api_keys::api_keys!($store);
        $crate::sql::limits::limits!($store);
        $crate::sql::apps::apps!($store);
        $crate::sql::installations::installations!($store);
        $crate::sql::grants::grants!($store);
        $crate::sql::resource_servers::resource_servers!($store);
        $crate::sql::tenant_data::tenant_data!($store);
        $crate::sql::lookups::lookups!($store);
        $crate::sql::webhooks::webhooks!($store);
    };
}

pub(crate) use impl_store;
