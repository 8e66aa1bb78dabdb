//! The storage suite: every case is written once against `Arc<dyn Store>` and run on SQLite
//! (always) and on PostgreSQL (when `TESSERA_TEST_DATABASE_URL` names an admin url).
//! Fixtures are built through the Store API itself (`fixtures`); one module per area, each
//! naming its cases once in `cases!`, which makes the `sqlite_*` and `postgres_*` tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;

use tessera_core::{
    AccountId, AgencyId, AppId, BindingId, EventId, InstallationId, KeyId, PolicyId, PrincipalId,
    RoleId, UserId,
};
use tessera_store::audit::verify_chain;
use tessera_store::testing::{notice_pg_skipped, sqlite_store, PgTestDb, SQLITE_DB_FILE};
use tessera_store::{
    Account, Agency, ApiKey, App, AppKind, AppReview, AppUpdate, AuditEvent, AuditFilter,
    AuditRecord, AuthCode, Binding, Bootstrap, ChainHash, Change, ClientRecord, CodeRedemption,
    Connected, Grant, Installation, KeySecretMatch, NewRefreshToken, NewUser, Outcome, PageRequest,
    Policy, RefreshToken, RefreshUse, Role, RolePatch, ScopeMint, SecretHashRecord, SigningKeyRow,
    Status, Store, StoreError, Suspensions, TenantScope, User, UserCredential, UserPatch,
};

macro_rules! cases {
    ($($case:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let (Connected { store, mint }, _dir) = sqlite_store().await;
            assert_eq!(store.backend(), "sqlite");
            $case(store, mint).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let Some(db) = PgTestDb::create().await else {
                notice_pg_skipped();
                return;
            };
            let Connected { store, mint } = db.store().await;
            assert_eq!(store.backend(), "postgres");
            $case(store, mint).await;
        }
    )*};
}

mod api_keys;
mod audit;
mod audit_checkpoints;
mod bindings;
mod changes;
mod cluster;
mod directory;
mod evidence;
mod fixtures;
mod limits;
mod migrations;
mod oauth_clients;
mod oauth_tokens;
mod person_keys;
mod platform;
mod resource_servers;
mod roles_policies;
mod sign_in;
mod signing_keys;
mod suspension;
mod tenancy;
mod webhooks;
mod writes;

use fixtures::*;
