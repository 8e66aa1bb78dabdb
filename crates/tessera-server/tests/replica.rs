//! Read replicas against a REAL streaming replica (`.ci/replica.sh` makes a private primary and a
//! `pg_basebackup` standby on loopback): reads go to the replica when it is current, a lagging
//! replica (replay paused) never gives a stale answer, an outage (the standby stopped) fails no
//! request and the replica serves again once back, row-level security holds on it, and JWT
//! introspection reads it while a revocation made on the primary shows at once.
//!
//! Needs `TESSERA_TEST_PRIMARY_URL` and `TESSERA_TEST_REPLICA_URL` (superuser urls of the
//! two servers), and `TESSERA_TEST_STANDBY_PGCTL` / `TESSERA_TEST_STANDBY_DATA` to stop and
//! start the standby. Without them every test prints why and passes; with
//! `TESSERA_TEST_REPLICA_REQUIRED=1` (the script sets it) they fail instead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "api/harness.rs"]
mod harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use harness::{Agency, Resp, TestApp};
use serde_json::json;
use sqlx::Connection;
use tessera_core::Catalog;
use tessera_server::http::state::AppState;
use tessera_server::services::EngineSettings;
use tessera_store::testing::PgTestDb;

/// The standby is shared by every test here: pausing or stopping it must not surprise another.
static STANDBY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Env {
    primary: String,
    replica: String,
    pg_ctl: Option<String>,
    data: Option<String>,
}

fn env() -> Option<Env> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    match (
        get("TESSERA_TEST_PRIMARY_URL"),
        get("TESSERA_TEST_REPLICA_URL"),
    ) {
        (Some(primary), Some(replica)) => Some(Env {
            primary,
            replica,
            pg_ctl: get("TESSERA_TEST_STANDBY_PGCTL"),
            data: get("TESSERA_TEST_STANDBY_DATA"),
        }),
        _ => {
            assert!(
                std::env::var("TESSERA_TEST_REPLICA_REQUIRED").as_deref() != Ok("1"),
                "TESSERA_TEST_REPLICA_REQUIRED=1 but TESSERA_TEST_PRIMARY_URL / TESSERA_TEST_REPLICA_URL are not set"
            );
            eprintln!("notice: TESSERA_TEST_PRIMARY_URL / TESSERA_TEST_REPLICA_URL not set; replica tests skipped (run `bash .ci/replica.sh`)");
            None
        }
    }
}

/// `postgres://user@host:port/db` → `host:port`.
fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

/// A superuser connection to the standby.
async fn standby(env: &Env) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(&env.replica)
        .await
        .expect("superuser connection to the standby")
}

/// One node on a fresh test database of the primary, reading the standby; with the database
/// and the replica url of its runtime role.
struct Cluster {
    app: TestApp,
    replica_url: String,
    db_name: String,
}

async fn cluster(env: &Env) -> Cluster {
    // The test database is made on the primary (the standby receives it by replication).
    std::env::set_var(tessera_store::testing::PG_URL_ENV, &env.primary);
    let db = PgTestDb::create().await.expect("test database");
    let store = db.store().await;
    let replica_url = db
        .url()
        .replace(host_port(&env.primary), host_port(&env.replica));
    let replica = wait_for_replica(&db.url(), &replica_url).await;
    let db_name = db.name().to_owned();
    let app = TestApp::postgres_on(
        db,
        store,
        EngineSettings {
            replica: Some(replica),
            // Reads in a loop here are about routing, not quotas.
            rate_limits: tessera_server::ratelimit::RateLimitSettings::off(),
            ..Default::default()
        },
    )
    .await;
    Cluster {
        app,
        replica_url,
        db_name,
    }
}

/// The replica store once the standby has replayed the database and its migrations.
async fn wait_for_replica(primary: &str, replica: &str) -> Arc<dyn tessera_store::Store> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match tessera_store::connect_replica(primary, replica).await {
            Ok(store) if store.revision().await.is_ok() => return store,
            Ok(_) | Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(_) => panic!("the replica has no migrated database after 30 s"),
            Err(e) => panic!("the replica did not come up: {e}"),
        }
    }
}

/// Another node on the same primary and replica: its own engine, caches and read router.
async fn second_node(c: &Cluster, env: &Env) -> (AppState, axum::Router) {
    let url = c.app.db_url();
    let connected = tessera_store::connect(&url)
        .await
        .expect("second connection");
    let replica = tessera_store::connect_replica(&url, &c.replica_url)
        .await
        .expect("second replica connection");
    let _ = env;
    let node = AppState::with_engine(
        connected,
        Catalog::default_catalog().expect("catalog"),
        &tessera_token::MasterKey::from_bytes([7; 32]),
        c.app.clock.clone(),
        EngineSettings {
            replica: Some(replica),
            // Reads in a loop here are about routing, not quotas.
            rate_limits: tessera_server::ratelimit::RateLimitSettings::off(),
            ..Default::default()
        },
    )
    .expect("state");
    node.engine
        .start_at(c.app.state.store.revision().await.expect("revision"));
    node.keys.reload().await.expect("signing keys");
    let router = tessera_server::app(node.clone()).expect("app");
    (node, router)
}

async fn call(
    router: &axum::Router,
    method: Method,
    path: &str,
    key: &str,
    body: Option<serde_json::Value>,
) -> Resp {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"));
    let body = match body {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let resp = router
        .clone()
        .oneshot(b.body(body).unwrap())
        .await
        .expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
    });
    assert!(status.as_u16() < 500, "server error {status}: {body}");
    Resp {
        status,
        body,
        headers,
    }
}

/// Reads the replica answered, in total.
fn replica_reads(s: &AppState) -> u64 {
    s.reads
        .counts()
        .iter()
        .filter(|((t, _), _)| *t == "replica")
        .map(|(_, n)| n)
        .sum()
}

fn primary_reads(s: &AppState, reason: &str) -> u64 {
    s.reads
        .counts()
        .get(&("primary", reason_static(reason)))
        .copied()
        .unwrap_or(0)
}

fn reason_static(r: &str) -> &'static str {
    match r {
        "lag" => "lag",
        "error" => "error",
        "down" => "down",
        "fresh_write" => "fresh_write",
        _ => "other",
    }
}

/// Waits until the replica has replayed the primary's current revision.
async fn caught_up(s: &AppState) {
    let want = s.store.revision().await.expect("revision");
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.reads.probe().await.unwrap_or(-1) < want {
        assert!(
            Instant::now() < deadline,
            "the replica did not reach revision {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Transactions committed on the standby in this database (its own statistics).
async fn standby_commits(env: &Env, db: &str) -> i64 {
    let mut c = standby(env).await;
    sqlx::query_scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = $1")
        .bind(db)
        .fetch_one(&mut c)
        .await
        .expect("pg_stat_database")
}

/// Lets the node's feed and its local-write window settle, so reads may use the replica.
async fn settle(s: &AppState) {
    s.engine.poll().await.expect("feed");
    tokio::time::sleep(tessera_server::cluster::replica::FRESH_FOR + Duration::from_millis(200))
        .await;
    s.engine.poll().await.expect("feed");
    caught_up(s).await;
}

fn check_body(ag: &Agency, permission: &str, at_least: Option<i64>) -> serde_json::Value {
    let mut b = json!({
        "principal": ag.user,
        "permission": permission,
        "resource": { "type": "contact", "agency": ag.id, "account": ag.acc },
    });
    if let Some(r) = at_least {
        b["at_least_revision"] = json!(r);
    }
    b
}

#[tokio::test]
async fn reads_go_to_the_replica_when_it_is_current() {
    let Some(env) = env() else { return };
    let _one = STANDBY.lock().await;
    let c = cluster(&env).await;
    let app = &c.app;
    let ag = app.agency("Current").await;
    settle(&app.state).await;
    let before = replica_reads(&app.state);
    let commits = standby_commits(&env, &c.db_name).await;
    for _ in 0..20 {
        let r = app
            .get(&format!("/v1/agencies/{}/accounts", ag.id), &ag.key)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));
    }
    let r = app
        .get(&format!("/v1/agencies/{}/audit", ag.id), &ag.key)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .get(&format!("/v1/agencies/{}/audit/verify", ag.id), &ag.key)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["ok"], true, "{}", r.body);
    // A new agency's index is built from the replica too.
    let other = app.agency("Index").await;
    settle(&app.state).await;
    let r = app
        .post(
            "/v1/check",
            &other.key,
            check_body(&other, "contacts.read", None),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let served = replica_reads(&app.state) - before;
    assert!(
        served >= 20,
        "the replica served {served} reads: {:?}",
        app.state.reads.counts()
    );
    // The metric says so; the standby's own statistics (flushed lazily, within ~10 s) show
    // transactions in this database there too (a corroboration: probes count as well).
    let m = app.get("/metrics", &app.admin).await;
    let text = m.body.as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains("tessera_replica_reads_total{target=\"replica\",reason=\"current\"}"),
        "{text}"
    );
    assert!(text.contains("tessera_replica_up 1"), "{text}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = standby_commits(&env, &c.db_name).await;
        if now > commits {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "standby commits went from {commits} to {now} only"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ready = app.get("/readyz", &app.admin).await;
    assert_eq!(ready.body["replica"], "up", "{}", ready.body);
}

/// Pauses replay on the standby until dropped (resumed even when the test fails).
struct Paused(String);

impl Paused {
    async fn new(env: &Env) -> Self {
        let mut c = standby(env).await;
        sqlx::query("SELECT pg_wal_replay_pause()")
            .execute(&mut c)
            .await
            .expect("pause replay");
        Self(env.replica.clone())
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let url = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&url).await {
                    let _ = sqlx::query("SELECT pg_wal_replay_resume()")
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}

#[tokio::test]
async fn a_lagging_replica_never_gives_a_stale_answer() {
    let Some(env) = env() else { return };
    let _one = STANDBY.lock().await;
    let c = cluster(&env).await;
    let app = &c.app;
    let ag = app.agency("Lag").await;
    let bystander = app.agency("Bystander").await;
    let (node2, router2) = second_node(&c, &env).await;
    settle(&app.state).await;
    settle(&node2).await;
    // Denied before any binding, on both nodes (both indexes built from the replica).
    let r = app
        .post("/v1/check", &ag.key, check_body(&ag, "contacts.read", None))
        .await;
    assert_eq!(r.body["allowed"], false, "{}", r.body);
    let paused = Paused::new(&env).await;
    // Node 1 grants; the replica does not see it.
    let b = app
        .post(
            &format!("/v1/agencies/{}/bindings", ag.id),
            &app.admin,
            json!({ "principal": ag.user, "role": "account_user", "account": ag.acc }),
        )
        .await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
    let binding = b.id();
    // Node 1 reads its own write (its write keeps the agency on the primary).
    let r = app
        .post("/v1/check", &ag.key, check_body(&ag, "contacts.read", None))
        .await;
    assert_eq!(
        r.body["allowed"], true,
        "node 1 must see its own grant: {}",
        r.body
    );
    let revision = r.body["revision"].as_i64().expect("revision");
    assert!(
        primary_reads(&app.state, "fresh_write") >= 1,
        "{:?}",
        app.state.reads.counts()
    );
    // Node 2, asked for that revision, reads the primary (the replica is behind it).
    let t = Instant::now();
    let r = call(
        &router2,
        Method::POST,
        "/v1/check",
        &ag.key,
        Some(check_body(&ag, "contacts.read", Some(revision))),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["allowed"], true,
        "node 2 must reflect revision {revision}: {}",
        r.body
    );
    assert!(r.body["revision"].as_i64().unwrap_or(0) >= revision);
    assert!(
        primary_reads(&node2, "lag") >= 1,
        "{:?}",
        node2.reads.counts()
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    // A revocation (the binding deleted on node 1), then a check on node 2 at its revision.
    let d = app
        .delete(
            &format!("/v1/agencies/{}/bindings/{binding}", ag.id),
            &app.admin,
        )
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT, "{}", d.body);
    let r = app
        .post("/v1/check", &ag.key, check_body(&ag, "contacts.read", None))
        .await;
    assert_eq!(
        r.body["allowed"], false,
        "node 1 must see its own revocation: {}",
        r.body
    );
    let revoked_at = r.body["revision"].as_i64().expect("revision");
    let r = call(
        &router2,
        Method::POST,
        "/v1/check",
        &ag.key,
        Some(check_body(&ag, "contacts.read", Some(revoked_at))),
    )
    .await;
    assert_eq!(
        r.body["allowed"], false,
        "node 2 must reflect the revocation: {}",
        r.body
    );
    // An API key revoked on node 1 is refused there at once (authentication reads the primary).
    let k = app
        .post(
            &format!("/v1/agencies/{}/api-keys", ag.id),
            &ag.key,
            json!({ "name": "short", "scopes": ["accounts.write"] }),
        )
        .await;
    let (kid, secret) = (k.id(), k.body["secret"].as_str().unwrap().to_owned());
    let ok = app
        .get(&format!("/v1/agencies/{}/accounts", ag.id), &secret)
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let rv = app
        .delete(&format!("/v1/agencies/{}/api-keys/{kid}", ag.id), &ag.key)
        .await;
    assert_eq!(rv.status, StatusCode::NO_CONTENT, "{}", rv.body);
    let refused = app
        .get(&format!("/v1/agencies/{}/accounts", ag.id), &secret)
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    // Node 1's list of its own new rows reads the primary: the key is there.
    let keys = app
        .get(&format!("/v1/agencies/{}/api-keys", ag.id), &ag.key)
        .await;
    assert!(
        keys.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == kid.as_str()),
        "{}",
        keys.body
    );
    // Unrelated reads go on, within the bounded wait.
    let t = Instant::now();
    let r = call(
        &router2,
        Method::GET,
        &format!("/v1/agencies/{}/accounts", bystander.id),
        &bystander.key,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
    drop(paused);
    // Replay resumed: once caught up (and the write window passed), the replica serves again.
    settle(&node2).await;
    let before = replica_reads(&node2);
    let r = call(
        &router2,
        Method::GET,
        &format!("/v1/agencies/{}/accounts", bystander.id),
        &bystander.key,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(replica_reads(&node2) > before, "{:?}", node2.reads.counts());
}

fn pg_ctl(env: &Env, action: &str) {
    let (Some(pg_ctl), Some(data)) = (&env.pg_ctl, &env.data) else {
        panic!(
            "TESSERA_TEST_STANDBY_PGCTL / TESSERA_TEST_STANDBY_DATA are needed to stop the standby"
        );
    };
    let mut cmd = std::process::Command::new(pg_ctl);
    cmd.args(["-D", data, "-w", "-t", "60"]);
    match action {
        "stop" => cmd.args(["-m", "fast", "stop"]),
        _ => cmd.args(["-l", &format!("{data}/../standby.log"), "start"]),
    };
    let out = cmd.output().expect("pg_ctl");
    assert!(
        out.status.success(),
        "pg_ctl {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts the standby again when dropped (even when the test fails).
struct Stopped<'a>(&'a Env, bool);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        if !self.1 {
            pg_ctl(self.0, "start");
        }
    }
}

#[tokio::test]
async fn a_replica_outage_fails_no_request() {
    let Some(env) = env() else { return };
    if env.pg_ctl.is_none() && std::env::var("TESSERA_TEST_REPLICA_REQUIRED").as_deref() != Ok("1")
    {
        eprintln!("notice: TESSERA_TEST_STANDBY_PGCTL not set; outage test skipped");
        return;
    }
    let _one = STANDBY.lock().await;
    let c = cluster(&env).await;
    let app = &c.app;
    let ag = app.agency("Outage").await;
    let fresh = app.agency("Fresh").await;
    settle(&app.state).await;
    pg_ctl(&env, "stop");
    let mut guard = Stopped(&env, false);
    // Every read still answers: lists, audit, a new agency's index.
    let t = Instant::now();
    for _ in 0..5 {
        let r = app
            .get(&format!("/v1/agencies/{}/accounts", ag.id), &ag.key)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = app
            .get(&format!("/v1/agencies/{}/audit", ag.id), &ag.key)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = app
        .post(
            "/v1/check",
            &fresh.key,
            check_body(&fresh, "contacts.read", None),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the outage cost {:?}",
        t.elapsed()
    );
    let counts = app.state.reads.counts();
    assert!(primary_reads(&app.state, "error") >= 1, "{counts:?}");
    assert!(primary_reads(&app.state, "down") >= 5, "{counts:?}");
    // Still ready; the body says the replica is unreachable.
    let ready = app.get("/readyz", &app.admin).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body["replica"], "unreachable", "{}", ready.body);
    let m = app.get("/metrics", &app.admin).await;
    assert!(m
        .body
        .as_str()
        .unwrap_or_default()
        .contains("tessera_replica_up 0"));
    // Back: reads return to the replica by themselves.
    pg_ctl(&env, "start");
    guard.1 = true;
    let before = replica_reads(&app.state);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = app
            .get(&format!("/v1/agencies/{}/accounts", ag.id), &ag.key)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if replica_reads(&app.state) > before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reads never returned to the replica: {:?}",
            app.state.reads.counts()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = app.get("/readyz", &app.admin).await;
    assert_eq!(ready.body["replica"], "up", "{}", ready.body);
}

#[tokio::test]
async fn tenant_isolation_holds_on_the_replica() {
    let Some(env) = env() else { return };
    let _one = STANDBY.lock().await;
    let c = cluster(&env).await;
    let app = &c.app;
    let a = app.agency("Alpha").await;
    let b = app.agency("Beta").await;
    settle(&app.state).await;
    // Through the API (served by the replica): each agency sees its own rows only, and
    // another agency's account is the same 404 as a missing one.
    let before = replica_reads(&app.state);
    let r = app
        .get(&format!("/v1/agencies/{}/accounts", a.id), &a.key)
        .await;
    let ids: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, vec![a.acc.as_str()], "{}", r.body);
    let r = app
        .get(&format!("/v1/agencies/{}/accounts", b.id), &a.key)
        .await;
    assert!(
        matches!(r.status.as_u16(), 403 | 404),
        "{} {}",
        r.status,
        r.body
    );
    assert!(
        replica_reads(&app.state) > before,
        "{:?}",
        app.state.reads.counts()
    );
    // On the standby itself, as the server's role: row-level security filters every row.
    let mut conn = sqlx::PgConnection::connect(&c.replica_url)
        .await
        .expect("replica as the runtime role");
    let mut tx = conn.begin().await.expect("begin");
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(&mut *tx)
        .await
        .expect("count");
    assert_eq!(none, 0, "no tenant set: no row");
    sqlx::query("SELECT set_config('tessera.agency_id', $1, true)")
        .bind(&a.id)
        .execute(&mut *tx)
        .await
        .expect("a hot standby accepts set_config in a read-only transaction");
    let agencies: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT agency_id FROM accounts UNION SELECT DISTINCT agency_id FROM users",
    )
    .fetch_all(&mut *tx)
    .await
    .expect("rows");
    assert_eq!(agencies, vec![a.id.clone()], "only Alpha's rows");
    let theirs: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts WHERE id = $1")
        .bind(&b.acc)
        .fetch_one(&mut *tx)
        .await
        .expect("count");
    assert_eq!(theirs, 0, "Beta's account is invisible");
    tx.rollback().await.expect("rollback");
    // The replica's role is held to the same rule as the primary's: a superuser is refused.
    let err = tessera_store::connect_replica(&env.primary, &env.replica)
        .await
        .expect_err("a superuser must be refused");
    assert!(err.to_string().contains("row-level security"), "{err}");
    // And a SQLite primary cannot have a replica.
    let err = tessera_store::connect_replica("sqlite://x.db", &c.replica_url)
        .await
        .expect_err("sqlite primary");
    assert!(err.to_string().contains("PostgreSQL primary"), "{err}");
}

/// `POST /oauth/introspect` of a JWT, by its client, on a node whose replica is current: the
/// store reads behind the answer (the client, the agency's revocation state) come from the
/// replica, and the answer is `active: true`; once the installation is revoked (on the
/// primary), the same node answers `active: false` at once, not the replica's older state.
#[tokio::test]
async fn jwt_introspection_reads_the_replica_and_sees_revocations() {
    use base64::Engine as _;
    let Some(env) = env() else { return };
    let _one = STANDBY.lock().await;
    let c = cluster(&env).await;
    let app = &c.app;
    let ag = app.agency("Introspected").await;
    let (client_id, secret, ins_id) =
        harness::installed_app(app, &ag, "http://127.0.0.1:9/cb", &["contacts.readonly"]).await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"))
    );
    let form = |path: &'static str, pairs: Vec<(&'static str, String)>| {
        let basic = basic.clone();
        async move {
            let body = serde_urlencoded::to_string(&pairs).unwrap();
            app.raw(
                Request::builder()
                    .method(Method::POST)
                    .uri(path)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("authorization", basic)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
        }
    };
    let issued = form(
        "/oauth/token",
        vec![
            ("grant_type", "client_credentials".to_owned()),
            ("installation", ins_id.clone()),
        ],
    )
    .await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
    let token = issued.body["access_token"].as_str().unwrap().to_owned();
    settle(&app.state).await;
    let before = replica_reads(&app.state);
    for _ in 0..5 {
        let r = form("/oauth/introspect", vec![("token", token.clone())]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["active"], true, "{}", r.body);
    }
    let served = replica_reads(&app.state) - before;
    assert!(
        served >= 1,
        "introspection read nothing from the replica: {:?}",
        app.state.reads.counts()
    );
    // Revoked on the primary: this node's next introspection says inactive, whatever the
    // replica has replayed.
    let revoked = app
        .delete(
            &format!(
                "/v1/agencies/{}/accounts/{}/installations/{ins_id}",
                ag.id, ag.acc
            ),
            &app.admin,
        )
        .await;
    assert!(revoked.status.is_success(), "{}", revoked.body);
    let r = form("/oauth/introspect", vec![("token", token.clone())]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active"], false, "{}", r.body);
}
