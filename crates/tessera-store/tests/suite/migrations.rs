//! Migrations: upgrading a database made by earlier versions (the later ones apply once,
//! data stays), and the checksums that refuse an edited migration.

use super::*;

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS tessera_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

const MARKS: [&str; 2] = [
    "INSERT INTO tessera_migrations (version, name, applied_at) VALUES (1, 'init', 0)",
    "INSERT INTO tessera_migrations (version, name, applied_at) VALUES (2, 'roles_policies', 0)",
];

const SQLITE_MIGRATIONS: [&str; 2] = [
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_roles_policies.sql"),
];

const POSTGRES_MIGRATIONS: [&str; 2] = [
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_roles_policies.sql"),
];

/// A chain head written before 0015 (three events, never checkpointed).
const RAW_HEAD: &str = "INSERT INTO audit_heads (agency_id, seq, hash) VALUES ($1, 3, $2)";

const VERSIONS: &str = "SELECT version FROM tessera_migrations ORDER BY version";

/// Opens the store on a database at version 1 holding one raw agency, and upgrades it.
async fn upgraded_from_v1(store: Arc<dyn Store>, mint: ScopeMint, agency: AgencyId) {
    assert_eq!(
        store.migrate().await.unwrap(),
        MIGRATION_VERSIONS.len() - 1,
        "every migration after 0001 runs"
    );
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(store.get_agency(&agency).await.unwrap().name, "Raw");
    // 0015: a chain with events and no checkpoint is marked due at once.
    let due = store
        .audit_checkpoints_due(1000, 0, false, None, 100)
        .await
        .unwrap();
    assert!(
        due.iter()
            .any(|d| d.agency_id == agency && d.head_seq == 3 && d.checkpoint_seq == 0),
        "{due:?}"
    );
    let t = mint.admit(agency);
    let r = role(&store, &t, "Support", &["contacts.read"]).await;
    let b = bind(
        &store,
        &t,
        &PrincipalId::User(UserId::generate()),
        r.id.as_str(),
        None,
    )
    .await;
    let p = policy(&store, &t, "No deletes").await;
    let snap = store.authz_snapshot(&t, now()).await.unwrap();
    assert_eq!(
        (snap.roles, snap.bindings, snap.policies),
        (vec![r], vec![b], vec![p])
    );
    let k = signing_key(&store, "upgraded", "active").await;
    assert_eq!(store.signing_keys().await.unwrap(), [k]);
}

/// Opens the store on a database at version 2 holding one raw agency, and upgrades it.
async fn upgraded_from_v2(store: Arc<dyn Store>, agency: AgencyId) {
    assert_eq!(
        store.migrate().await.unwrap(),
        MIGRATION_VERSIONS.len() - 2,
        "every migration after 0002 runs"
    );
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(store.get_agency(&agency).await.unwrap().name, "Raw");
    assert_eq!(store.signing_keys().await.unwrap(), []);
    let k = signing_key(&store, "upgraded", "pending").await;
    assert!(store
        .update_signing_key("upgraded", &["pending"], "active", None, None, None)
        .await
        .unwrap());
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(
        store.signing_keys().await.unwrap(),
        [SigningKeyRow {
            state: "active".into(),
            ..k
        }]
    );
}

/// A SQLite database at `version`, holding one raw agency.
async fn sqlite_at(version: usize) -> (tessera_store::testing::TempDirGuard, String, AgencyId) {
    let dir = tessera_store::testing::TempDirGuard::new("tessera-upgrade").unwrap();
    let url = format!("sqlite://{}", dir.path().join(SQLITE_DB_FILE).display());
    let opts = url
        .parse::<sqlx::sqlite::SqliteConnectOptions>()
        .unwrap()
        .create_if_missing(true);
    let raw = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    for sql in &SQLITE_MIGRATIONS[..version] {
        sqlx::raw_sql(sql).execute(&raw).await.unwrap();
    }
    let id = AgencyId::generate();
    for sql in std::iter::once(MIGRATIONS_TABLE).chain(MARKS[..version].iter().copied()) {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
    sqlx::query(RAW_AGENCY)
        .bind(id.as_str())
        .bind(false)
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query(RAW_HEAD)
        .bind(id.as_str())
        .bind(vec![7u8; 32])
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    (dir, url, id)
}

/// Each migration is recorded once.
async fn sqlite_versions(url: &str) -> Vec<i64> {
    let raw = sqlx::SqlitePool::connect(url).await.unwrap();
    let versions = sqlx::query_scalar(VERSIONS).fetch_all(&raw).await.unwrap();
    raw.close().await;
    versions
}

/// The PostgreSQL test database at `version`, holding one raw agency.
async fn postgres_at(db: &PgTestDb, version: usize) -> AgencyId {
    let raw = sqlx::PgPool::connect(&db.url()).await.unwrap();
    for sql in &POSTGRES_MIGRATIONS[..version] {
        sqlx::raw_sql(sql).execute(&raw).await.unwrap();
    }
    let id = AgencyId::generate();
    for sql in std::iter::once(MIGRATIONS_TABLE).chain(MARKS[..version].iter().copied()) {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
    sqlx::query(RAW_AGENCY)
        .bind(id.as_str())
        .bind(false)
        .execute(&raw)
        .await
        .unwrap();
    // Under the head's row-level security: as its agency.
    let mut tx = raw.begin().await.unwrap();
    sqlx::query("SELECT set_config('tessera.agency_id', $1, true)")
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(RAW_HEAD)
        .bind(id.as_str())
        .bind(vec![7u8; 32])
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    raw.close().await;
    id
}

async fn postgres_versions(db: &PgTestDb) -> Vec<i64> {
    let raw = sqlx::PgPool::connect(&db.url()).await.unwrap();
    let versions = sqlx::query_scalar(VERSIONS).fetch_all(&raw).await.unwrap();
    raw.close().await;
    versions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrade_from_0001() {
    let (_dir, url, id) = sqlite_at(1).await;
    let Connected { store, mint } = tessera_store::connect(&url).await.unwrap();
    upgraded_from_v1(store, mint, id).await;
    assert_eq!(sqlite_versions(&url).await, MIGRATION_VERSIONS);
    assert_eq!(
        sqlite_checksums(&url).await,
        expected_checksums(&SQLITE_ALL)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrade_from_0002() {
    let (_dir, url, id) = sqlite_at(2).await;
    let Connected { store, .. } = tessera_store::connect(&url).await.unwrap();
    upgraded_from_v2(store, id).await;
    assert_eq!(sqlite_versions(&url).await, MIGRATION_VERSIONS);
    assert_eq!(
        sqlite_checksums(&url).await,
        expected_checksums(&SQLITE_ALL)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upgrade_from_0001() {
    let Some(db) = PgTestDb::create().await else {
        notice_pg_skipped();
        return;
    };
    let id = postgres_at(&db, 1).await;
    let Connected { store, mint } = tessera_store::connect(&db.url()).await.unwrap();
    upgraded_from_v1(store, mint, id).await;
    assert_eq!(postgres_versions(&db).await, MIGRATION_VERSIONS);
    assert_eq!(
        postgres_checksums(&db).await,
        expected_checksums(&POSTGRES_ALL)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upgrade_from_0002() {
    let Some(db) = PgTestDb::create().await else {
        notice_pg_skipped();
        return;
    };
    let id = postgres_at(&db, 2).await;
    let Connected { store, .. } = tessera_store::connect(&db.url()).await.unwrap();
    upgraded_from_v2(store, id).await;
    assert_eq!(postgres_versions(&db).await, MIGRATION_VERSIONS);
    assert_eq!(
        postgres_checksums(&db).await,
        expected_checksums(&POSTGRES_ALL)
    );
}

const SQLITE_ALL: [&str; 16] = [
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_roles_policies.sql"),
    include_str!("../../migrations/sqlite/0003_signing_keys.sql"),
    include_str!("../../migrations/sqlite/0004_oauth.sql"),
    include_str!("../../migrations/sqlite/0005_suspension_review.sql"),
    include_str!("../../migrations/sqlite/0006_rate_limits.sql"),
    include_str!("../../migrations/sqlite/0007_resource_servers.sql"),
    include_str!("../../migrations/sqlite/0008_audit_checkpoints.sql"),
    include_str!("../../migrations/sqlite/0009_webhooks.sql"),
    include_str!("../../migrations/sqlite/0010_secrets.sql"),
    include_str!("../../migrations/sqlite/0011_evidence.sql"),
    include_str!("../../migrations/sqlite/0012_person_keys.sql"),
    include_str!("../../migrations/sqlite/0013_cluster.sql"),
    include_str!("../../migrations/sqlite/0014_suspension_reads.sql"),
    include_str!("../../migrations/sqlite/0015_audit_due.sql"),
    include_str!("../../migrations/sqlite/0016_inactive_users.sql"),
];

const POSTGRES_ALL: [&str; 16] = [
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_roles_policies.sql"),
    include_str!("../../migrations/postgres/0003_signing_keys.sql"),
    include_str!("../../migrations/postgres/0004_oauth.sql"),
    include_str!("../../migrations/postgres/0005_suspension_review.sql"),
    include_str!("../../migrations/postgres/0006_rate_limits.sql"),
    include_str!("../../migrations/postgres/0007_resource_servers.sql"),
    include_str!("../../migrations/postgres/0008_audit_checkpoints.sql"),
    include_str!("../../migrations/postgres/0009_webhooks.sql"),
    include_str!("../../migrations/postgres/0010_secrets.sql"),
    include_str!("../../migrations/postgres/0011_evidence.sql"),
    include_str!("../../migrations/postgres/0012_person_keys.sql"),
    include_str!("../../migrations/postgres/0013_cluster.sql"),
    include_str!("../../migrations/postgres/0014_suspension_reads.sql"),
    include_str!("../../migrations/postgres/0015_audit_due.sql"),
    include_str!("../../migrations/postgres/0016_inactive_users.sql"),
];

const CHECKSUMS: &str = "SELECT version, checksum FROM tessera_migrations ORDER BY version";

const EDIT_CHECKSUM: &str = "UPDATE tessera_migrations SET checksum = $1 WHERE version = 2";

const DROP_CHECKSUMS: &str = "ALTER TABLE tessera_migrations DROP COLUMN checksum";

/// The migrations' versions.
const MIGRATION_VERSIONS: [i64; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];

/// Each version with the SHA-256 (hex) of its SQL file: what the runner records.
fn expected_checksums(files: &[&str]) -> Vec<(i64, Option<String>)> {
    use sha2::Digest as _;
    MIGRATION_VERSIONS
        .into_iter()
        .zip(files)
        .map(|(v, sql)| {
            let hex = sha2::Sha256::digest(sql.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            (v, Some(hex))
        })
        .collect()
}

async fn sqlite_checksums(url: &str) -> Vec<(i64, Option<String>)> {
    let raw = sqlx::SqlitePool::connect(url).await.unwrap();
    let rows = sqlx::query_as(CHECKSUMS).fetch_all(&raw).await.unwrap();
    raw.close().await;
    rows
}

async fn postgres_checksums(db: &PgTestDb) -> Vec<(i64, Option<String>)> {
    let raw = sqlx::PgPool::connect(&db.url()).await.unwrap();
    let rows = sqlx::query_as(CHECKSUMS).fetch_all(&raw).await.unwrap();
    raw.close().await;
    rows
}

/// `migrate` refused the start: migration 2 of `backend` was edited.
fn assert_edited(r: Result<usize, StoreError>, backend: &str) {
    let file = format!("migrations/{backend}/0002_roles_policies.sql");
    match r {
        Err(e @ StoreError::MigrationEdited { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("migration 2") && msg.contains(&file), "{msg}");
            assert!(matches!(e, StoreError::MigrationEdited { version: 2, file: f } if f == file));
        }
        other => panic!("an edited migration must refuse the start, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migration_checksums_recorded_and_checked() {
    let (Connected { store, .. }, dir) = sqlite_store().await;
    let url = format!("sqlite://{}", dir.path().join(SQLITE_DB_FILE).display());
    assert_eq!(
        sqlite_checksums(&url).await,
        expected_checksums(&SQLITE_ALL)
    );
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(EDIT_CHECKSUM)
        .bind("0".repeat(64))
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    assert_edited(store.migrate().await, "sqlite");
    // Refused again on the next start: nothing was repaired or applied.
    let Connected { store: again, .. } = tessera_store::connect(&url).await.unwrap();
    assert_edited(again.migrate().await, "sqlite");
    assert_eq!(sqlite_versions(&url).await, MIGRATION_VERSIONS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migration_checksums_recorded_and_checked() {
    let Some(db) = PgTestDb::create().await else {
        notice_pg_skipped();
        return;
    };
    let Connected { store, .. } = db.store().await;
    assert_eq!(
        postgres_checksums(&db).await,
        expected_checksums(&POSTGRES_ALL)
    );
    let raw = sqlx::PgPool::connect(&db.url()).await.unwrap();
    sqlx::query(EDIT_CHECKSUM)
        .bind("0".repeat(64))
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    assert_edited(store.migrate().await, "postgres");
    let Connected { store: again, .. } = tessera_store::connect(&db.url()).await.unwrap();
    assert_edited(again.migrate().await, "postgres");
}

/// A database the old runner brought up to date has no checksum column: the next start adds
/// it and backfills every version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_checksums_backfilled_when_up_to_date() {
    let (Connected { store, .. }, dir) = sqlite_store().await;
    let url = format!("sqlite://{}", dir.path().join(SQLITE_DB_FILE).display());
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(DROP_CHECKSUMS).execute(&raw).await.unwrap();
    raw.close().await;
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(
        sqlite_checksums(&url).await,
        expected_checksums(&SQLITE_ALL)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_checksums_backfilled_when_up_to_date() {
    let Some(db) = PgTestDb::create().await else {
        notice_pg_skipped();
        return;
    };
    let Connected { store, .. } = db.store().await;
    let raw = sqlx::PgPool::connect(&db.url()).await.unwrap();
    sqlx::query(DROP_CHECKSUMS).execute(&raw).await.unwrap();
    raw.close().await;
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(
        postgres_checksums(&db).await,
        expected_checksums(&POSTGRES_ALL)
    );
}
