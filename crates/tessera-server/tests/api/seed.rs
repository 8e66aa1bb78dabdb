//! `tessera dev seed` writes what the server reads: a small dataset seeded into a running
//! app's database (SQLite; PostgreSQL through COPY as the owner when configured), then the
//! emitted credentials used over HTTP: `/v1/check` answers as the emitted tuples say, the
//! client secret obtains a client-credentials token that acts through its installation, an
//! admin list shows the seeded rows, a cheap admin write works, the audit chain verifies,
//! and a key of one seeded agency learns nothing of another.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{json, Value};
use tessera_server::seed::{DevCommand, SeedArgs};

use crate::harness::TestApp;
use crate::oauth::basic;

fn args(app: &TestApp, emit: &std::path::Path, append: bool) -> SeedArgs {
    SeedArgs {
        store: tessera_server::config::StoreArgs {
            data_dir: Some(app.dir().to_path_buf()),
            database_url: Some(app.db_url()),
            master_key_file: Some(app.dir().join("master.key")),
            ..Default::default()
        },
        agencies: Some(6),
        accounts: Some(24),
        users: Some(18),
        bindings: Some(60),
        api_keys: Some(12),
        apps: Some(4),
        installations: Some(12),
        preset: None,
        seed: Some(42),
        append,
        emit: Some(emit.to_path_buf()),
        emit_sample: None,
        batch_rows: 7,
    }
}

/// The conversion an operator runs to hash-partition the largest tenant tables.
const PARTITIONING: &str = include_str!("../../../tessera-store/partitioning/postgres-hash.sql");

async fn owner_pool(app: &TestApp) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&app.db_url())
        .await
        .expect("owner connection")
}

/// One statement's rows as text, in a transaction acting for `agency` (or for none).
async fn rows_as(pool: &sqlx::PgPool, agency: Option<&str>, sql: &str) -> Vec<String> {
    use sqlx::Row as _;
    let mut tx = pool.begin().await.expect("begin");
    if let Some(a) = agency {
        sqlx::query("SELECT set_config('tessera.agency_id', $1, true)")
            .bind(a)
            .execute(&mut *tx)
            .await
            .expect("tenant");
    }
    let rows = sqlx::query(sql).fetch_all(&mut *tx).await.expect(sql);
    rows.iter()
        .map(|r| {
            r.try_get::<String, _>(0)
                .or_else(|_| r.try_get::<i64, _>(0).map(|n| n.to_string()))
                .expect("text or number")
        })
        .collect()
}

/// After the seed on a partitioned database: row-level security still isolates (parent and
/// partitions), and one agency's bindings lookup is planned on one partition.
async fn partitions_isolate_and_prune(app: &TestApp, a: &str, b: &str, user: &str) {
    let pool = owner_pool(app).await;
    let kind = rows_as(
        &pool,
        None,
        "SELECT relkind::text FROM pg_class WHERE relname = 'bindings'",
    )
    .await;
    assert_eq!(kind, ["p"], "bindings is partitioned");
    assert_eq!(
        rows_as(&pool, None, "SELECT count(*) FROM bindings").await,
        ["0"]
    );
    for k in 0..8 {
        let sql = format!("SELECT count(*) FROM bindings_p{k}");
        assert_eq!(
            rows_as(&pool, None, &sql).await,
            ["0"],
            "{sql} without a tenant"
        );
    }
    let seen = rows_as(&pool, Some(a), "SELECT DISTINCT agency_id FROM bindings").await;
    assert_eq!(seen, [a.to_owned()]);
    let n = rows_as(&pool, Some(a), "SELECT count(*) FROM bindings").await;
    assert_eq!(n, ["10"], "agency {a} holds 60 / 6 bindings");
    let sql = format!("SELECT count(*) FROM bindings WHERE agency_id = '{b}'");
    assert_eq!(
        rows_as(&pool, Some(a), &sql).await,
        ["0"],
        "another agency's rows"
    );
    let plan = rows_as(
        &pool,
        Some(a),
        &format!("EXPLAIN SELECT * FROM bindings WHERE agency_id = '{a}' AND principal = '{user}'"),
    )
    .await
    .join("\n");
    let parts: BTreeSet<&str> = plan
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        // The partitions themselves (`bindings_p4`), not their indexes (`bindings_p4_…_idx`).
        .filter(|w| {
            w.strip_prefix("bindings_p")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    assert_eq!(parts.len(), 1, "one partition scanned: {plan}");
    pool.close().await;
}

async fn seeded_data_serves_every_path(pg: bool, partitioned: bool) {
    let Some(app) = TestApp::with_master_file(pg).await else {
        tessera_store::testing::notice_pg_skipped();
        return;
    };
    if partitioned {
        let pool = owner_pool(&app).await;
        sqlx::raw_sql(PARTITIONING)
            .execute(&pool)
            .await
            .expect("partitioning");
        pool.close().await;
    }
    let emit = app.dir().join("creds.jsonl");
    tessera_server::seed::run(DevCommand::Seed(Box::new(args(&app, &emit, false))), true)
        .await
        .expect("seed");
    let text = std::fs::read_to_string(&emit).expect("emitted file");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&emit).expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0, "the credentials file is private");
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 6);
    let (mut allowed, mut denied) = (0, 0);
    for line in &lines {
        let agy = line["agency"].as_str().expect("agency");
        let key = line["api_key"].as_str().expect("api key");
        // /v1/check: every emitted tuple answers as emitted.
        let checks = line["checks"].as_array().expect("checks");
        assert_eq!(checks.len(), 4, "{line}");
        for c in checks {
            let mut body = c.clone();
            let want = body["allowed"].clone();
            body.as_object_mut().expect("object").remove("allowed");
            let r = app.post("/v1/check", key, body).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert_eq!(r.body["allowed"], want, "{c} → {}", r.body);
            if want == true {
                allowed += 1;
            } else {
                denied += 1;
            }
        }
        // Admin reads: the agency's users and accounts, as seeded (3 users, 4 accounts each).
        let r = app.get(&format!("/v1/agencies/{agy}/users"), key).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            r.body["items"].as_array().map(Vec::len),
            Some(3),
            "{}",
            r.body
        );
        let r = app.get(&format!("/v1/agencies/{agy}/accounts"), key).await;
        assert_eq!(
            r.body["items"].as_array().map(Vec::len),
            Some(4),
            "{}",
            r.body
        );
        // A cheap admin write.
        let acc = line["account"].as_str().expect("account");
        let r = app
            .patch(
                &format!("/v1/agencies/{agy}/accounts/{acc}"),
                key,
                json!({ "name": "Renamed by the seed test" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        // The audit chain (the rename is its first event) verifies.
        let r = app
            .get(&format!("/v1/agencies/{agy}/audit/verify"), key)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["ok"], true, "{}", r.body);
        // Client credentials with the emitted client secret, through its installation.
        let (Some(client), Some(secret), Some(ins)) = (
            line["client_id"].as_str(),
            line["client_secret"].as_str(),
            line["installation"].as_str(),
        ) else {
            panic!("every seeded agency here has an installation: {line}");
        };
        let r = app
            .form(
                "/oauth/token",
                Some(&basic(client, secret)),
                &[("grant_type", "client_credentials"), ("installation", ins)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let at = r.body["access_token"].as_str().expect("token").to_owned();
        let r = app
            .post(
                "/v1/check",
                &at,
                json!({ "permission": "contacts.read", "resource": { "type": "contact", "agency": agy, "account": acc } }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = app
            .form(
                "/oauth/token",
                Some(&basic(client, "tcs_wrong")),
                &[("grant_type", "client_credentials"), ("installation", ins)],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    assert!(
        allowed > 0 && denied > 0,
        "{allowed} allowed, {denied} denied"
    );
    if partitioned {
        let (a, b) = (lines[0]["agency"].as_str(), lines[1]["agency"].as_str());
        let user = lines[0]["checks"][0]["principal"].as_str().expect("user");
        partitions_isolate_and_prune(&app, a.expect("a"), b.expect("b"), user).await;
    }
    // Isolation: agency 0's key learns nothing of agency 1.
    let (a, b) = (&lines[0], &lines[1]);
    let r = app
        .get(
            &format!(
                "/v1/agencies/{}/users",
                b["agency"].as_str().expect("agency")
            ),
            a["api_key"].as_str().expect("key"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    // A second seed is refused without --append, and adds six more agencies with it.
    let again =
        tessera_server::seed::run(DevCommand::Seed(Box::new(args(&app, &emit, false))), true).await;
    let msg = again.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("--append"), "{msg}");
    tessera_server::seed::run(DevCommand::Seed(Box::new(args(&app, &emit, true))), true)
        .await
        .expect("append");
    let second: Value = serde_json::from_str(
        std::fs::read_to_string(&emit)
            .expect("file")
            .lines()
            .next()
            .expect("a line"),
    )
    .expect("json");
    assert_ne!(second["agency"], lines[0]["agency"]);
    let r = app
        .post("/v1/check", second["api_key"].as_str().expect("key"), {
            let mut c = second["checks"][0].clone();
            c.as_object_mut().expect("object").remove("allowed");
            c
        })
        .await;
    assert_eq!(
        r.body["allowed"], second["checks"][0]["allowed"],
        "{}",
        r.body
    );
}

#[tokio::test]
async fn seeded_sqlite_data_serves_every_path() {
    seeded_data_serves_every_path(false, false).await;
}

#[tokio::test]
async fn seeded_postgres_data_serves_every_path() {
    seeded_data_serves_every_path(true, false).await;
}

/// The same on PostgreSQL after `partitioning/postgres-hash.sql` (docs/SCALING.md).
#[tokio::test]
async fn seeded_partitioned_postgres_data_serves_every_path() {
    seeded_data_serves_every_path(true, true).await;
}
