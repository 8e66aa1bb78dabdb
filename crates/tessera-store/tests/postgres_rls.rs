//! PostgreSQL only: the server's role check and row-level security, the second wall of
//! tenant isolation (I1). Skipped, with a notice, when `TESSERA_TEST_DATABASE_URL` is unset.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;
use tessera_core::{
    AccountId, AgencyId, AppId, BindingId, EventId, InstallationId, KeyId, PolicyId, PrincipalId,
    RoleId, UserId,
};
use tessera_store::prelude::*;
use tessera_store::testing::{notice_pg_skipped, PgTestDb, PG_URL_ENV};
use tessera_store::{
    Account, Agency, ApiKey, App, AppKind, AppReview, AuditRecord, AuthCode, Binding, Connected,
    Grant, Installation, NewRefreshToken, NewUser, Outcome, PgStore, Policy, Role, ScopeMint,
    SecretHashRecord, Status, Store, StoreError, TenantScope,
};

/// Tables without `agency_id`, on purpose: global, not under row-level security.
/// `signing_keys` is the platform's token-signing key ring: no tenant data, and its private
/// keys are sealed under the master key; `audit_keys` likewise signs audit checkpoints.
/// `master_keys` and `root_secrets` (issue 12) hold the master keys' ids and the
/// installation-wide secrets wrapped under them: no tenant data either. `cluster_leases`
/// (issue 13) names which node runs each cluster job: no tenant data.
const GLOBAL_TABLES: [&str; 8] = [
    "agencies",
    "cluster_leases",
    "revision",
    "tessera_migrations",
    "signing_keys",
    "audit_keys",
    "master_keys",
    "root_secrets",
];

/// The tenant tables the migration is known to create (so the catalog check is not vacuous).
const TENANT_TABLES: [&str; 24] = [
    "person_keys",
    "change_log",
    "accounts",
    "users",
    "api_keys",
    "api_key_secrets",
    "bindings",
    "audit_heads",
    "audit_events",
    "roles",
    "policies",
    "apps",
    "app_secrets",
    "installations",
    "oauth_codes",
    "oauth_grants",
    "refresh_tokens",
    "revoked_access_tokens",
    "resource_servers",
    "audit_checkpoints",
    "audit_checkpoint_heads",
    "audit_retention",
    "webhooks",
    "webhook_deliveries",
];

/// The OAuth tenant tables (0004).
const OAUTH_TABLES: [&str; 7] = [
    "apps",
    "app_secrets",
    "installations",
    "oauth_codes",
    "oauth_grants",
    "refresh_tokens",
    "revoked_access_tokens",
];

fn now() -> i64 {
    i64::try_from(tessera_core::ids::now_millis()).unwrap()
}

fn record(action: &str) -> AuditRecord {
    AuditRecord {
        id: EventId::generate(),
        at: now(),
        actor: "system".into(),
        on_behalf_of: None,
        action: action.into(),
        target: None,
        outcome: Outcome::Success,
        request_id: "req-rls".into(),
        ip: None,
        user_agent: None,
        detail: serde_json::json!({}),
    }
}

async fn pg_db() -> Option<PgTestDb> {
    let db = PgTestDb::create().await;
    if db.is_none() {
        notice_pg_skipped();
    }
    db
}

/// An agency with one account, one user, one key, one custom role bound to the user and one
/// policy, made through the Store.
async fn populated_agency(
    store: &std::sync::Arc<dyn Store>,
    mint: &ScopeMint,
    name: &str,
) -> (TenantScope, Account, Vec<u8>) {
    let at = now();
    let agency = Agency {
        id: AgencyId::generate(),
        name: name.into(),
        status: Status::Active,
        suspended_reason: None,
        suspended_at: None,
        is_platform: false,
        created_at: at,
        updated_at: at,
    };
    store
        .create_agency(&agency, &record("agency.create"))
        .await
        .unwrap();
    let t = mint.admit(agency.id.clone());
    let account = Account {
        id: AccountId::generate(),
        agency_id: agency.id.clone(),
        name: format!("{name} main"),
        status: Status::Active,
        suspended_reason: None,
        suspended_at: None,
        created_at: at,
        updated_at: at,
    };
    store
        .create_account(&t, &account, &record("account.create"))
        .await
        .unwrap();
    let user = NewUser {
        id: UserId::generate(),
        email: format!("ann@{name}.example"),
        name: "Ann".into(),
        password_hash: None,
        now: at,
    };
    store
        .create_user(&t, &user, &record("user.create"))
        .await
        .unwrap();
    let role = Role {
        id: RoleId::generate(),
        agency_id: agency.id.clone(),
        name: "Support".into(),
        description: String::new(),
        permissions: vec!["contacts.read".into()],
        created_by: "system".into(),
        created_at: at,
        updated_at: at,
    };
    store
        .create_role(&t, &role, &record("role.create"))
        .await
        .unwrap();
    let binding = Binding {
        id: BindingId::generate(),
        agency_id: agency.id.clone(),
        principal: PrincipalId::User(user.id.clone()),
        role: role.id.as_str().to_owned(),
        account: None,
        created_by: "system".into(),
        created_at: at,
    };
    store
        .create_binding(&t, &binding, &record("binding.create"))
        .await
        .unwrap();
    let policy = Policy {
        id: PolicyId::generate(),
        agency_id: agency.id.clone(),
        description: "No deletes".into(),
        cedar: "forbid (principal, action, resource);".into(),
        created_by: "system".into(),
        created_at: at,
    };
    store
        .create_policy(&t, &policy, &record("policy.create"))
        .await
        .unwrap();
    let key = ApiKey {
        rate_limit: None,
        id: KeyId::generate(),
        agency_id: agency.id.clone(),
        name: "ci".into(),
        account: None,
        scopes: vec![],
        created_by: "system".into(),
        created_at: at,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        rotated_at: None,
    };
    let hash = rand::random::<[u8; 32]>().to_vec();
    store
        .create_api_key(
            &t,
            &key,
            &SecretHashRecord {
                hash: hash.clone(),
                pepper_version: 1,
            },
            &[],
            &record("api_key.create"),
        )
        .await
        .unwrap();
    (t, account, hash)
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(pool)
        .await
        .unwrap()
        .get::<i64, _>(0)
}

#[tokio::test]
async fn superuser_is_refused() {
    let Ok(admin_url) = std::env::var(PG_URL_ENV) else {
        notice_pg_skipped();
        return;
    };
    match PgStore::connect(&admin_url).await {
        Err(StoreError::Config(msg)) => {
            assert!(msg.contains("superuser"), "{msg}");
            assert!(
                msg.contains("CREATE ROLE"),
                "the message says how to fix it: {msg}"
            );
        }
        other => {
            panic!("connecting as a superuser must fail with a configuration error, got {other:?}")
        }
    }
}

#[tokio::test]
async fn bypassrls_role_is_refused() {
    let Some(db) = pg_db().await else { return };
    let admin = PgPool::connect(&db.admin_url()).await.unwrap();
    sqlx::query(&format!("ALTER ROLE \"{}\" BYPASSRLS", db.name()))
        .execute(&admin)
        .await
        .unwrap();
    let refused = PgStore::connect(&db.url()).await;
    sqlx::query(&format!("ALTER ROLE \"{}\" NOBYPASSRLS", db.name()))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    match refused {
        Err(StoreError::Config(msg)) => assert!(
            msg.contains("BYPASSRLS") && msg.contains("CREATE ROLE"),
            "{msg}"
        ),
        other => panic!("a BYPASSRLS role must be refused, got {other:?}"),
    }
    // The same role without the attribute is accepted.
    PgStore::connect(&db.url()).await.unwrap();
}

#[tokio::test]
async fn every_tenant_table_is_under_forced_rls() {
    let Some(db) = pg_db().await else { return };
    let Connected { store, .. } = db.store().await;
    store.ping().await.unwrap();
    let pool = PgPool::connect(&db.url()).await.unwrap();
    let rows = sqlx::query(
        "SELECT c.relname::text AS name, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced, \
                EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'agency_id' \
                        AND a.attnum > 0 AND NOT a.attisdropped) AS tenant, \
                (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;

    let mut tenant = BTreeSet::new();
    let mut problems = Vec::new();
    for row in &rows {
        let name: String = row.get("name");
        let (rls, forced, has_agency, policies): (bool, bool, bool, i64) = (
            row.get("rls"),
            row.get("forced"),
            row.get("tenant"),
            row.get("policies"),
        );
        if has_agency {
            tenant.insert(name.clone());
            if !rls || !forced || policies == 0 {
                problems.push(format!(
                    "{name}: row security {rls}, forced {forced}, {policies} policies"
                ));
            }
        } else if !GLOBAL_TABLES.contains(&name.as_str()) {
            problems.push(format!(
                "{name}: no agency_id column, and not a known global table"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "tables not isolated by row-level security:\n{}",
        problems.join("\n")
    );
    for t in TENANT_TABLES {
        assert!(
            tenant.contains(t),
            "expected tenant table `{t}` in {tenant:?}"
        );
    }
    let names: BTreeSet<String> = rows.iter().map(|r| r.get::<String, _>("name")).collect();
    for g in GLOBAL_TABLES {
        assert!(
            names.contains(g),
            "expected global table `{g}` in {names:?}"
        );
    }
}

#[tokio::test]
async fn rls_isolates_the_app_role() {
    let Some(db) = pg_db().await else { return };
    let Connected { store, mint } = db.store().await;
    let (a, a_account, a_hash) = populated_agency(&store, &mint, "alpha").await;
    let (b, _, _) = populated_agency(&store, &mint, "beta").await;
    let (a_id, b_id) = (
        a.agency().as_str().to_owned(),
        b.agency().as_str().to_owned(),
    );

    // One connection, so every statement below runs on the same session.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url())
        .await
        .unwrap();
    let backend_pid = count(&pool, "SELECT pg_backend_pid()::bigint").await;

    // No tenant set: the policies fail closed, for the owning role too.
    for table in [
        "accounts",
        "users",
        "api_keys",
        "api_key_secrets",
        "bindings",
        "audit_heads",
        "audit_events",
        "change_log",
        "roles",
        "policies",
    ] {
        assert_eq!(
            count(&pool, &format!("SELECT count(*) FROM {table}")).await,
            0,
            "{table} visible without a tenant"
        );
    }
    assert_eq!(
        sqlx::query("UPDATE accounts SET name = 'x'")
            .execute(&pool)
            .await
            .unwrap()
            .rows_affected(),
        0
    );
    assert_eq!(
        sqlx::query("DELETE FROM audit_events")
            .execute(&pool)
            .await
            .unwrap()
            .rows_affected(),
        0
    );
    // The global tables are readable.
    assert_eq!(count(&pool, "SELECT count(*) FROM agencies").await, 2);

    // Tenant B: only B's rows, whatever the query asks for.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('tessera.agency_id', $1, true)")
        .bind(&b_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    let q = |sql: &'static str| sqlx::query(sql).bind(a_id.clone());
    assert_eq!(
        q("SELECT count(*) FROM accounts WHERE agency_id = $1")
            .fetch_one(&mut *tx)
            .await
            .unwrap()
            .get::<i64, _>(0),
        0
    );
    assert_eq!(
        q("SELECT count(*) FROM audit_events WHERE agency_id = $1")
            .fetch_one(&mut *tx)
            .await
            .unwrap()
            .get::<i64, _>(0),
        0
    );
    assert_eq!(
        sqlx::query("SELECT count(*) FROM accounts")
            .fetch_one(&mut *tx)
            .await
            .unwrap()
            .get::<i64, _>(0),
        1
    );
    for table in ["roles", "policies", "bindings"] {
        assert_eq!(
            sqlx::query(&format!(
                "SELECT count(*) FROM {table} WHERE agency_id = $1"
            ))
            .bind(&a_id)
            .fetch_one(&mut *tx)
            .await
            .unwrap()
            .get::<i64, _>(0),
            0,
            "{table}: A's rows visible to B"
        );
        assert_eq!(
            sqlx::query(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&mut *tx)
                .await
                .unwrap()
                .get::<i64, _>(0),
            1,
            "{table}: B's own row"
        );
    }
    assert_eq!(
        q("UPDATE roles SET permissions = '[\"*\"]' WHERE agency_id = $1")
            .execute(&mut *tx)
            .await
            .unwrap()
            .rows_affected(),
        0
    );
    assert_eq!(
        q("DELETE FROM policies WHERE agency_id = $1")
            .execute(&mut *tx)
            .await
            .unwrap()
            .rows_affected(),
        0
    );
    assert_eq!(
        sqlx::query("SELECT count(DISTINCT agency_id) FROM audit_events")
            .fetch_one(&mut *tx)
            .await
            .unwrap()
            .get::<i64, _>(0),
        1
    );
    assert_eq!(
        q("UPDATE accounts SET name = 'hijacked' WHERE agency_id = $1")
            .execute(&mut *tx)
            .await
            .unwrap()
            .rows_affected(),
        0
    );
    assert_eq!(
        q("DELETE FROM users WHERE agency_id = $1")
            .execute(&mut *tx)
            .await
            .unwrap()
            .rows_affected(),
        0
    );
    // Moving one of B's rows into A is refused too (WITH CHECK).
    let moved = q("UPDATE accounts SET agency_id = $1")
        .execute(&mut *tx)
        .await;
    assert!(moved.is_err(), "moving a row to another tenant must fail");
    tx.rollback().await.unwrap();

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('tessera.agency_id', $1, true)")
        .bind(&b_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    let insert = sqlx::query("INSERT INTO accounts (agency_id, id, name, created_at, updated_at) VALUES ($1, $2, 'planted', 0, 0)")
        .bind(&a_id)
        .bind(AccountId::generate().as_str())
        .execute(&mut *tx)
        .await;
    let err = insert.expect_err("inserting a row of agency A as tenant B must fail");
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();

    // A committed tenant transaction does not leak its setting either.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('tessera.agency_id', $1, true)")
        .bind(&b_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        sqlx::query("SELECT count(*) FROM users")
            .fetch_one(&mut *tx)
            .await
            .unwrap()
            .get::<i64, _>(0),
        1
    );
    tx.commit().await.unwrap();

    // Same connection, after the transactions: the setting is gone and nothing is visible.
    assert_eq!(
        count(&pool, "SELECT pg_backend_pid()::bigint").await,
        backend_pid,
        "not the same connection"
    );
    let setting: Option<String> = sqlx::query("SELECT current_setting('tessera.agency_id', true)")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert!(
        setting.as_deref().unwrap_or("").is_empty(),
        "tenant setting survived its transaction: {setting:?}"
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM accounts").await, 0);
    assert_eq!(count(&pool, "SELECT count(*) FROM users").await, 0);

    // A's data is intact and visible to A.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('tessera.agency_id', $1, true)")
        .bind(&a_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    let names: Vec<String> = sqlx::query("SELECT name FROM accounts")
        .fetch_all(&mut *tx)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, vec![a_account.name.clone()]);
    tx.commit().await.unwrap();

    // The credential lookup shows exactly the row whose hash the caller holds, read-only.
    let hex: String = a_hash.iter().map(|x| format!("{x:02x}")).collect();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('tessera.credential_hash', $1, true)")
        .bind(&hex)
        .execute(&mut *tx)
        .await
        .unwrap();
    let rows = sqlx::query("SELECT agency_id FROM api_key_secrets")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r.get::<String, _>(0))
            .collect::<Vec<_>>(),
        vec![a_id.clone()]
    );
    let deleted = sqlx::query("DELETE FROM api_key_secrets")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(deleted, 0, "the credential lookup policy is SELECT only");
    tx.rollback().await.unwrap();

    // The change feed shows every agency's change log, read-only, and nothing else.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('tessera.change_feed', 'on', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let agencies: Vec<String> = sqlx::query("SELECT DISTINCT agency_id FROM change_log ORDER BY 1")
        .fetch_all(&mut *tx)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut want = vec![a_id.clone(), b_id.clone()];
    want.sort();
    assert_eq!(agencies, want);
    for table in ["roles", "policies", "bindings", "accounts", "audit_events"] {
        assert_eq!(
            sqlx::query(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&mut *tx)
                .await
                .unwrap()
                .get::<i64, _>(0),
            0,
            "{table} visible to the change feed"
        );
    }
    let deleted = sqlx::query("DELETE FROM change_log")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(deleted, 0, "the change feed policy is SELECT only");
    tx.rollback().await.unwrap();
    pool.close().await;

    // And through the Store, B still sees none of A.
    assert!(matches!(
        store.get_account(&b, &a_account.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.get_account(&a, &a_account.id).await.unwrap(),
        a_account
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|x| format!("{x:02x}")).collect()
}

fn oauth_app(agency: &AgencyId) -> App {
    let at = now();
    App {
        id: AppId::generate(),
        agency_id: agency.clone(),
        name: "Client".into(),
        kind: AppKind::Marketplace,
        confidential: true,
        token_signing_alg: "EdDSA".into(),
        redirect_uris: vec!["https://app.example/cb".into()],
        scopes: vec!["contacts.readonly".into()],
        review: AppReview::Approved,
        approved_scopes: vec!["contacts.readonly".into()],
        pending_scopes: vec![],
        review_reason: None,
        created_by: "system".into(),
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

/// The agencies of the rows of `table` visible in a transaction where `setting` is `value`.
/// For the lookup settings (all but the tenant's) it also checks that the same transaction
/// can neither change nor delete any of them.
async fn visible_with(pool: &PgPool, setting: &str, value: &str, table: &str) -> Vec<String> {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config($1, $2, true)")
        .bind(setting)
        .bind(value)
        .execute(&mut *tx)
        .await
        .unwrap();
    let rows: Vec<String> =
        sqlx::query(&format!("SELECT agency_id FROM {table} ORDER BY agency_id"))
            .fetch_all(&mut *tx)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    if setting == "tessera.agency_id" {
        tx.rollback().await.unwrap();
        return rows;
    }
    let deleted = sqlx::query(&format!("DELETE FROM {table}"))
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(deleted, 0, "{table} writable through `{setting}`");
    let moved = sqlx::query(&format!("UPDATE {table} SET agency_id = agency_id"))
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(moved, 0, "{table} updatable through `{setting}`");
    tx.rollback().await.unwrap();
    rows
}

#[tokio::test]
async fn rls_oauth_lookups_are_narrow_and_read_only() {
    let Some(db) = pg_db().await else { return };
    let Connected { store, mint } = db.store().await;
    let (a, a_account, _) = populated_agency(&store, &mint, "alpha").await;
    let (b, _, _) = populated_agency(&store, &mint, "beta").await;
    let (a_id, b_id) = (
        a.agency().as_str().to_owned(),
        b.agency().as_str().to_owned(),
    );
    let at = now();

    // A owns two apps; B installs the first; A holds a code, a grant and a refresh token.
    let app = oauth_app(a.agency());
    let app_secret = rand::random::<[u8; 32]>().to_vec();
    store
        .create_app(
            &a,
            &app,
            Some(&SecretHashRecord {
                hash: app_secret.clone(),
                pepper_version: 1,
            }),
            &record("app.create"),
        )
        .await
        .unwrap();
    let app2 = oauth_app(a.agency());
    store
        .create_app(
            &a,
            &app2,
            Some(&SecretHashRecord {
                hash: rand::random::<[u8; 32]>().to_vec(),
                pepper_version: 1,
            }),
            &record("app.create"),
        )
        .await
        .unwrap();
    let ins = Installation {
        id: InstallationId::generate(),
        agency_id: b.agency().clone(),
        app_id: app.id.clone(),
        app_agency_id: a.agency().clone(),
        account: None,
        scopes: vec!["contacts.readonly".into()],
        created_by: "system".into(),
        created_at: at,
        revoked_at: None,
    };
    store
        .create_installation(&b, &ins, &record("installation.create"))
        .await
        .unwrap();
    let own_ins = Installation {
        id: InstallationId::generate(),
        agency_id: a.agency().clone(),
        app_id: app2.id.clone(),
        app_agency_id: a.agency().clone(),
        account: Some(a_account.id.clone()),
        ..ins.clone()
    };
    store
        .create_installation(&a, &own_ins, &record("installation.create"))
        .await
        .unwrap();
    let code = AuthCode {
        hash: rand::random::<[u8; 32]>().to_vec(),
        agency_id: a.agency().clone(),
        client_id: app.id.clone(),
        user_id: UserId::generate(),
        installation: None,
        account: None,
        redirect_uri: "https://app.example/cb".into(),
        scope: "contacts.readonly".into(),
        code_challenge: "challenge".into(),
        nonce: None,
        auth_time: at,
        grant_id: "grt_1".into(),
        created_at: at,
        expires_at: at + 60_000,
        consumed_at: None,
        resource: None,
    };
    store.create_code(&a, &code).await.unwrap();
    let grant = Grant {
        id: "grt_rls".into(),
        agency_id: a.agency().clone(),
        kind: "authorization_code".into(),
        client_id: app.id.clone(),
        subject: UserId::generate().to_string(),
        installation: None,
        account: None,
        scope: "contacts.readonly".into(),
        auth_time: Some(at),
        created_at: at,
        expires_at: at + 86_400_000,
        revoked_at: None,
        resource: None,
    };
    let refresh = NewRefreshToken {
        hash: rand::random::<[u8; 32]>().to_vec(),
        pepper_version: 1,
        grant_id: grant.id.clone(),
        created_at: at,
        idle_expires_at: at + 86_400_000,
    };
    store
        .create_grant(&a, &grant, Some(&refresh), &record("token.issue"))
        .await
        .unwrap();
    store
        .revoke_access_token(&a, "jti-rls", at + 60_000, &record("token.revoke"))
        .await
        .unwrap();

    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url())
        .await
        .unwrap();

    // Without any setting, nothing; with an empty one, nothing.
    for table in OAUTH_TABLES {
        assert_eq!(
            count(&pool, &format!("SELECT count(*) FROM {table}")).await,
            0,
            "{table} visible without a tenant"
        );
        for setting in [
            "tessera.agency_id",
            "tessera.client_id",
            "tessera.credential_hash",
            "tessera.login_email",
        ] {
            assert!(
                visible_with(&pool, setting, "", table).await.is_empty(),
                "{table} visible with an empty `{setting}`"
            );
        }
    }

    // Tenant B: its installation only; none of A's apps, codes, grants or tokens.
    let as_b = |table: &'static str| visible_with(&pool, "tessera.agency_id", &b_id, table);
    assert_eq!(as_b("installations").await, vec![b_id.clone()]);
    for table in [
        "apps",
        "app_secrets",
        "oauth_codes",
        "oauth_grants",
        "refresh_tokens",
        "revoked_access_tokens",
    ] {
        assert!(
            as_b(table).await.is_empty(),
            "{table}: A's rows visible to B"
        );
    }
    // Tenant A: its own rows, not B's installation of its app.
    let as_a = |table: &'static str| visible_with(&pool, "tessera.agency_id", &a_id, table);
    assert_eq!(as_a("apps").await.len(), 2);
    assert_eq!(as_a("installations").await, vec![a_id.clone()]);
    assert_eq!(as_a("oauth_grants").await, vec![a_id.clone()]);
    assert_eq!(as_a("revoked_access_tokens").await, vec![a_id.clone()]);

    let pool_ref = &pool;
    // The client lookup: exactly the named app's rows, in every agency, and nothing else.
    let client = move |table: &'static str, id: String| async move {
        visible_with(pool_ref, "tessera.client_id", &id, table).await
    };
    assert_eq!(client("apps", app.id.to_string()).await, vec![a_id.clone()]);
    assert_eq!(
        client("app_secrets", app.id.to_string()).await,
        vec![a_id.clone()]
    );
    assert_eq!(
        client("installations", app.id.to_string()).await,
        vec![b_id.clone()]
    );
    assert_eq!(
        client("installations", app2.id.to_string()).await,
        vec![a_id.clone()]
    );
    for table in [
        "oauth_codes",
        "oauth_grants",
        "refresh_tokens",
        "revoked_access_tokens",
        "users",
        "accounts",
        "api_key_secrets",
    ] {
        assert!(
            client(table, app.id.to_string()).await.is_empty(),
            "{table} visible to the client lookup"
        );
    }
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('tessera.client_id', $1, true)")
        .bind(app.id.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
    let ids: Vec<String> = sqlx::query("SELECT id FROM apps")
        .fetch_all(&mut *tx)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, vec![app.id.to_string()], "only the named app");
    let hashes: Vec<Vec<u8>> = sqlx::query("SELECT secret_hash FROM app_secrets")
        .fetch_all(&mut *tx)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(hashes, vec![app_secret.clone()]);
    tx.rollback().await.unwrap();
    assert!(client("apps", AppId::generate().to_string())
        .await
        .is_empty());

    // The credential lookup: exactly the code or token whose hash is set.
    let cred = move |table: &'static str, h: String| async move {
        visible_with(pool_ref, "tessera.credential_hash", &h, table).await
    };
    assert_eq!(
        cred("oauth_codes", hex(&code.hash)).await,
        vec![a_id.clone()]
    );
    assert!(cred("refresh_tokens", hex(&code.hash)).await.is_empty());
    assert_eq!(
        cred("refresh_tokens", hex(&refresh.hash)).await,
        vec![a_id.clone()]
    );
    assert!(cred("oauth_codes", hex(&refresh.hash)).await.is_empty());
    for table in ["oauth_grants", "apps", "installations", "users"] {
        assert!(
            cred(table, hex(&refresh.hash)).await.is_empty(),
            "{table} visible to the credential lookup"
        );
    }
    assert!(cred("oauth_codes", hex(&[7; 32])).await.is_empty());

    // The login lookup: the users with that email key in every agency, nothing else.
    let login = move |table: &'static str, key: &'static str| async move {
        visible_with(pool_ref, "tessera.login_email", key, table).await
    };
    assert_eq!(
        login("users", "ann@alpha.example").await,
        vec![a_id.clone()]
    );
    assert!(
        login("users", "ANN@alpha.example").await.is_empty(),
        "keys are lowercase"
    );
    assert!(login("users", "ann@gamma.example").await.is_empty());
    for table in ["apps", "accounts", "oauth_codes"] {
        assert!(login(table, "ann@alpha.example").await.is_empty());
    }
    pool.close().await;

    // Through the Store: the cross-tenant reads work, the tenant reads stay isolated.
    let (found, scope) = store.find_client(&app.id).await.unwrap().unwrap();
    assert_eq!(found.app, app);
    assert_eq!(found.secrets.len(), 1);
    assert_eq!(scope.agency(), &app.agency_id, "the owner's scope");
    assert_eq!(
        store.client_installations(&app.id).await.unwrap(),
        vec![(ins.clone(), mint.admit(ins.agency_id.clone()))]
    );
    assert!(store
        .find_refresh_token(&refresh.hash)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .redeem_code(&code.hash, now())
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .find_users_by_email("ANN@alpha.example")
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        store.get_app(&b, &app.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.get_installation(&a, &ins.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.get_grant(&b, &grant.id).await,
        Err(StoreError::NotFound)
    ));
}

/// Issue 8: the server's role should own nothing, so it cannot turn `FORCE ROW LEVEL
/// SECURITY` off. Migrations run as the owner and grant a runtime role row access only; the
/// runtime role starts (no DDL when up to date), reads and writes through RLS, and cannot
/// alter a table.
#[tokio::test]
async fn the_runtime_role_owns_nothing_and_cannot_disable_rls() {
    let Some(db) = pg_db().await else { return };
    let runtime = format!("{}_rt", db.name());
    let admin = PgPool::connect(&db.admin_url()).await.unwrap();
    sqlx::query(&format!(
        "CREATE ROLE \"{runtime}\" LOGIN NOSUPERUSER NOBYPASSRLS"
    ))
    .execute(&admin)
    .await
    .unwrap();
    let (owner, _) = PgStore::connect(&db.url()).await.unwrap();
    owner.migrate().await.unwrap();
    assert!(owner.owns_protected_tables().await.unwrap());
    assert!(matches!(
        owner
            .grant_runtime_role("Robert'); DROP TABLE users;--")
            .await,
        Err(StoreError::Config(_))
    ));
    tessera_store::grant_runtime_role(&db.url(), &runtime)
        .await
        .unwrap();
    let rt_url = db
        .url()
        .replacen(&format!("//{}@", db.name()), &format!("//{runtime}@"), 1);
    let (rt, mint) = PgStore::connect(&rt_url).await.unwrap();
    assert!(!rt.owns_protected_tables().await.unwrap());
    assert_eq!(rt.migrate().await.unwrap(), 0, "up to date: no DDL needed");
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(rt);
    let (scope, account, _) = populated_agency(&store, &mint, "Runtime").await;
    assert_eq!(
        store.get_account(&scope, &account.id).await.unwrap().id,
        account.id
    );
    let pool = PgPool::connect(&rt_url).await.unwrap();
    for stmt in [
        "ALTER TABLE accounts NO FORCE ROW LEVEL SECURITY",
        "ALTER TABLE accounts DISABLE ROW LEVEL SECURITY",
        "DROP POLICY IF EXISTS tenant_isolation ON accounts",
        "CREATE TABLE sneaky (id int)",
    ] {
        let err = sqlx::query(stmt)
            .execute(&pool)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("must be owner") || err.contains("permission denied"),
            "{stmt}: {err}"
        );
    }
    pool.close().await;
    store.ping().await.unwrap();
    drop(store);
    // The grants live in the test database: revoke them there before the role goes.
    let in_db = db
        .admin_url()
        .rsplit_once('/')
        .map(|(base, _)| format!("{base}/{}", db.name()))
        .unwrap();
    let cleanup = PgPool::connect(&in_db).await.unwrap();
    sqlx::query(&format!("DROP OWNED BY \"{runtime}\""))
        .execute(&cleanup)
        .await
        .unwrap();
    cleanup.close().await;
    sqlx::query(&format!("DROP ROLE \"{runtime}\""))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
}

/// The suspension view's policies: with the change feed on, exactly the suspended accounts and
/// the apps of suspended agencies are visible, read-only; nothing while nothing is suspended.
#[tokio::test]
async fn rls_suspension_feed_is_narrow_and_read_only() {
    let Some(db) = pg_db().await else { return };
    let Connected { store, mint } = db.store().await;
    let (a, _, _) = populated_agency(&store, &mint, "alpha").await;
    let (b, b_account, _) = populated_agency(&store, &mint, "beta").await;
    let app = oauth_app(a.agency());
    store
        .create_app(&a, &app, None, &record("app.create"))
        .await
        .unwrap();
    let b_app = oauth_app(b.agency());
    store
        .create_app(&b, &b_app, None, &record("app.create"))
        .await
        .unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url())
        .await
        .unwrap();
    let feed = |table: &'static str| visible_with(&pool, "tessera.change_feed", "on", table);
    assert!(feed("accounts").await.is_empty());
    assert!(feed("apps").await.is_empty());

    store
        .set_account_suspended(
            &b,
            &b_account.id,
            Some("x"),
            now(),
            &record("account.suspend"),
        )
        .await
        .unwrap();
    store
        .set_agency_suspended(a.agency(), Some("x"), now(), &record("agency.suspend"))
        .await
        .unwrap();
    // B's suspended account only (not A's active one); A's app only (not B's).
    assert_eq!(feed("accounts").await, vec![b.agency().as_str().to_owned()]);
    assert_eq!(feed("apps").await, vec![a.agency().as_str().to_owned()]);
    for table in [
        "users",
        "api_keys",
        "bindings",
        "app_secrets",
        "installations",
    ] {
        assert!(feed(table).await.is_empty(), "{table} visible to the feed");
    }
    let s = store.suspensions().await.unwrap();
    assert_eq!(s.accounts, vec![(b.agency().clone(), b_account.id.clone())]);
    assert_eq!(s.apps, vec![(app.id.clone(), a.agency().clone())]);
    pool.close().await;
}
