//! Operations: health, readiness, metrics, the OpenAPI document, the route table, a real server
//! on port 0 with graceful shutdown, and the binary's first start.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use axum::http::StatusCode;
use tessera_server::http::routes::{table, Access};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::TestApp;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let t = TestApp::sqlite().await;
    let r = t
        .call(axum::http::Method::GET, "/healthz", None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = t.call(axum::http::Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (r.status, r.body["store"].as_str()),
        (StatusCode::OK, Some("sqlite"))
    );
    t.get("/v1/agencies", &t.admin).await;
    // Metrics need a platform credential holding `platform.config`.
    let anonymous = t
        .call(axum::http::Method::GET, "/metrics", None, None)
        .await;
    assert_eq!(
        (anonymous.status, anonymous.code()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    assert!(anonymous.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert_eq!(
        anonymous.headers["content-type"],
        "application/problem+json"
    );
    let agency = t.agency("Metrics Agency").await;
    let r = t.get("/metrics", &agency.key).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let m = t.get("/metrics", &t.admin).await;
    assert_eq!(m.status, StatusCode::OK);
    let text = m.body.as_str().unwrap();
    assert!(
        text.contains(
            r#"tessera_http_requests_total{method="GET",route="/v1/agencies",status="200"}"#
        ),
        "{text}"
    );
    assert!(text.contains("tessera_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/agencies\",le=\"+Inf\"}"));
    assert!(text.contains("tessera_store_errors_total"));
    assert!(
        text.lines()
            .any(|l| l.starts_with("tessera_authz_cache_entries ")
                && l != "tessera_authz_cache_entries 0"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_can_be_made_public() {
    let t = TestApp::sqlite_with(tessera_server::services::EngineSettings {
        http: tessera_server::net::HttpSettings {
            metrics_public: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let m = t
        .call(axum::http::Method::GET, "/metrics", None, None)
        .await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(m
        .body
        .as_str()
        .unwrap()
        .contains("tessera_connections_open"));
}

#[tokio::test]
async fn hsts_with_an_https_issuer_only() {
    const HSTS: &str = "max-age=31536000; includeSubDomains";
    let https = TestApp::sqlite_with_issuer("https://id.example.com").await;
    for path in [
        "/healthz",
        "/no-such-route",
        "/.well-known/openid-configuration",
    ] {
        let r = https.call(axum::http::Method::GET, path, None, None).await;
        assert_eq!(
            r.headers
                .get("strict-transport-security")
                .map(|v| v.to_str().unwrap()),
            Some(HSTS),
            "{path}"
        );
    }
    let r = https.get("/v1/agencies", "tsk_wrong").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.contains_key("strict-transport-security"));
    let http = TestApp::sqlite_with_issuer("http://127.0.0.1:8080").await;
    let r = http
        .call(axum::http::Method::GET, "/healthz", None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.headers.contains_key("strict-transport-security"));
}

#[tokio::test]
async fn every_route_declares_a_catalog_permission_and_is_documented() {
    let t = TestApp::sqlite().await;
    let catalog = tessera_core::Catalog::default_catalog().unwrap();
    let doc = t
        .call(axum::http::Method::GET, "/openapi.json", None, None)
        .await
        .body;
    assert_eq!(doc["openapi"], "3.1.0");
    let mut authenticated_only = BTreeSet::new();
    for r in table() {
        match r.access {
            Access::Permission(p, _) | Access::Platform(p) => assert!(
                catalog.permission(p).is_some(),
                "{} {} needs unknown `{p}`",
                r.method,
                r.path
            ),
            Access::Authenticated => {
                authenticated_only.insert(r.path);
            }
        }
        let op = &doc["paths"][r.path][r.method.as_str().to_lowercase()];
        assert!(
            op.is_object(),
            "{} {} missing from openapi.json",
            r.method,
            r.path
        );
        assert!(op["responses"][r.status.to_string()].is_object());
        if r.request.is_some() {
            assert!(op["requestBody"]["content"]["application/json"]["schema"].is_object());
        }
    }
    // Public metadata, the check API (which authorizes inside: a caller may always ask about
    // itself, and about others only with `bindings.read` where it asks), and forward auth (whose
    // permission comes from the configured route table, deny by default).
    assert_eq!(
        authenticated_only,
        BTreeSet::from([
            "/v1/catalog",
            "/v1/catalog/cedar-schema",
            "/v1/check",
            "/v1/check/batch",
            "/v1/forward-auth"
        ])
    );
    // Every reference resolves.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
    let cat = t.get("/v1/catalog", &t.admin).await;
    assert!(cat.body["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["audience"] == "partner"));
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn a_real_server_serves_and_shuts_down_gracefully() {
    let t = TestApp::sqlite().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tessera_server::run(listener, t.state.clone(), async {
        let _ = stopped.await;
    }));
    let resp = http_get(addr, "/healthz").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.to_lowercase().contains("x-request-id: req_"));
    // The audit trail records the client's address from the socket.
    let body = r#"{"name":"Over TCP"}"#;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("POST /v1/agencies HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", t.admin, body.len()).as_bytes())
        .await
        .unwrap();
    let mut created = String::new();
    s.read_to_string(&mut created).await.unwrap();
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let platform = t.state.store.platform_agency().await.unwrap().unwrap().id;
    let id = created
        .split("\"id\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let mut ips = Vec::new();
    for agency in [id, platform.to_string()] {
        let r = t
            .get(
                &format!("/v1/agencies/{agency}/audit?action=agency.create"),
                &t.admin,
            )
            .await;
        for e in r.body["items"].as_array().into_iter().flatten() {
            ips.push(e["ip"].clone());
        }
    }
    assert_eq!(ips, [serde_json::json!("127.0.0.1")]);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// What the first start writes (the data dir, the master key, the database and its WAL files,
/// the bootstrap key), opened as `serve` opens it: nothing is readable by others.
#[tokio::test]
async fn first_start_writes_only_private_files() {
    let dir = tessera_store::testing::TempDirGuard::new("tessera-modes").unwrap();
    let data = dir.path().join("data");
    let mut args = tessera_server::config::ServeArgs::default();
    args.store.data_dir = Some(data.clone());
    let config = tessera_server::config::Config::resolve(&args).unwrap();
    let (ring, created, store) = tessera_server::cli::open_data(&config).await.unwrap();
    let master = ring.current();
    assert!(created);
    store.store.migrate().await.unwrap();

    let state = tessera_server::http::state::AppState::new(
        store,
        tessera_core::Catalog::default_catalog().unwrap(),
        &master,
        std::sync::Arc::new(tessera_server::clock::SystemClock),
    )
    .unwrap();
    tessera_server::bootstrap::ensure(&state, &data)
        .await
        .unwrap()
        .unwrap();
    state.keys.maintain(state.clock.now() / 1000).await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data dir");
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(&data).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
        names.insert(p.file_name().unwrap().to_string_lossy().into_owned());
    }
    for name in [
        "master.key",
        "bootstrap-admin.key",
        "tessera.db",
        "tessera.db-wal",
        "tessera.db-shm",
    ] {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
}

fn tessera() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
}

#[test]
fn the_binary_bootstraps_once_and_documents_its_options() {
    let help = tessera().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for opt in [
        "--listen",
        "--data-dir",
        "--database-url",
        "--issuer",
        "--config",
        "--log-format",
        "TESSERA_LISTEN",
        "TESSERA_DATA_DIR",
        "TESSERA_DATABASE_URL",
        "TESSERA_ISSUER",
        "--header-timeout-secs",
        "--body-timeout-secs",
        "--idle-timeout-secs",
        "--max-connections",
        "--max-connections-per-ip",
        "--metrics-public",
        "TESSERA_HEADER_TIMEOUT_SECS",
        "TESSERA_MAX_CONNECTIONS_PER_IP",
    ] {
        assert!(help.contains(opt), "serve --help lacks {opt}:\n{help}");
    }
    let dir = tessera_store::testing::TempDirGuard::new("tessera-bin").unwrap();
    let data = dir.path().join("data");
    let out = tessera()
        .args(["migrate", "--output", "json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"].as_bool(), Some(true));
    assert!(v["applied"].as_u64().is_some_and(|n| n >= 2), "{v}");
    let again = tessera()
        .args(["migrate", "--output", "json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["applied"], 0, "migrations are idempotent");

    let start = || {
        let mut child = tessera()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--data-dir",
            ])
            .arg(&data)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut log = String::new();
        let mut stderr = child.stderr.take().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 4096];
        use std::io::Read;
        while !log.contains("tessera listening") && std::time::Instant::now() < deadline {
            let n = stderr.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            log.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        // SIGTERM: a graceful stop that exits 0.
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        log.push_str(&rest);
        assert!(child.wait().unwrap().success(), "{log}");
        log
    };
    let log1 = start();
    let key_file = data.join("bootstrap-admin.key");
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(data.join("master.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(key.starts_with("tsk_") && key.ends_with('\n') && key.lines().count() == 1);
    assert!(
        !log1.contains(key.trim()),
        "the secret never appears in a log"
    );
    assert!(
        log1.lines()
            .filter(|l| l.starts_with('{'))
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "json logs: {log1}"
    );
    let log2 = start();
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        key,
        "later starts leave the key alone"
    );
    assert!(!log2.contains("bootstrap"), "{log2}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[resources]]\nname = \"x\"\n[[permissions]]\nname = \"xs.read\"\nresource = \"nope\"\nlevels = [\"agency\"]\n").unwrap();
    let out = tessera()
        .args(["catalog", "validate", "--output", "json"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["problems"][0]["entry"], "permission `xs.read`");
    let good = tessera()
        .args(["catalog", "validate"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../catalog/default.toml"
        ))
        .output()
        .unwrap();
    assert!(good.status.success());
}

/// Issue 8, finding 5: a policy that locks everyone out is listed and removed offline, from
/// the database, with the deletion audited in the agency's chain.
#[tokio::test]
async fn policies_are_listed_and_deleted_offline() {
    use tessera_core::{AgencyId, EventId, PolicyId};
    use tessera_store::{Agency, AuditRecord, Outcome, Policy, Status};
    let dir = tessera_store::testing::TempDirGuard::new("tessera-cli-policies").unwrap();
    let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
    let tessera_store::Connected { store, mint } = tessera_store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let now = 1_800_000_000_000;
    let record = |action: &str| AuditRecord {
        id: EventId::generate(),
        at: now,
        actor: "test".into(),
        on_behalf_of: None,
        action: action.into(),
        target: None,
        outcome: Outcome::Success,
        request_id: String::new(),
        ip: None,
        user_agent: None,
        detail: serde_json::json!({}),
    };
    let agency = Agency {
        id: AgencyId::generate(),
        name: "Locked".into(),
        status: Status::Active,
        suspended_reason: None,
        suspended_at: None,
        is_platform: false,
        created_at: now,
        updated_at: now,
    };
    store
        .create_agency(&agency, &record("agency.create"))
        .await
        .unwrap();
    let scope = mint.admit(agency.id.clone());
    let policy = Policy {
        id: PolicyId::generate(),
        agency_id: agency.id.clone(),
        description: "locks everyone out".into(),
        cedar: "forbid(principal, action, resource);".into(),
        created_by: "key_x".into(),
        created_at: now,
    };
    store
        .create_policy(&scope, &policy, &record("policy.create"))
        .await
        .unwrap();
    drop(store);
    let run = |args: &[&str]| {
        let out = tessera()
            .args(args)
            .args(["--database-url", &url, "--output", "json"])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&["policies", "list", "--agency", agency.id.as_str()]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["items"][0]["id"], policy.id.as_str(), "{v}");
    let (ok, _, err) = run(&[
        "policies",
        "delete",
        "--agency",
        agency.id.as_str(),
        policy.id.as_str(),
        "--reason",
        "owner locked out",
    ]);
    assert!(ok, "{err}");
    let (ok, out2, err) = run(&[
        "policies",
        "delete",
        "--agency",
        agency.id.as_str(),
        policy.id.as_str(),
    ]);
    assert!(
        !ok && format!("{out2}{err}").contains("no policy"),
        "{out2}{err}"
    );
    let (ok, out3, err) = run(&[
        "policies",
        "list",
        "--agency",
        "agy_01ARZ3NDEKTSV4RRFFQ69G5FAV",
    ]);
    assert!(
        !ok && format!("{out3}{err}").contains("no agency"),
        "{out3}{err}"
    );
    let store = tessera_store::connect(&url).await.unwrap().store;
    let events = store
        .list_audit(
            &scope,
            &Default::default(),
            &tessera_store::PageRequest {
                limit: 50,
                cursor: None,
            },
        )
        .await;
    let text = format!("{events:?}");
    assert!(
        text.contains("policy.delete") && text.contains("owner locked out"),
        "{text}"
    );
}

/// The index cache's lookup counters in `/metrics`: (hits, misses).
async fn cache_lookups(t: &TestApp) -> (u64, u64) {
    let m = t.get("/metrics", &t.admin).await;
    let text = m.body.as_str().unwrap().to_owned();
    let read = |outcome: &str| -> u64 {
        let name = format!("tessera_authz_cache_lookups_total{{outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(name.as_str()))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .parse()
            .unwrap()
    };
    (read("hit"), read("miss"))
}

/// The index cache's lookups in `/metrics`: the first check in an agency misses (the index is
/// built from the store), the next one hits; bench/mixed.sh reads the hit rate from these.
#[tokio::test]
async fn metrics_count_index_cache_hits_and_misses() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Cache Counters").await;
    let check = serde_json::json!({ "principal": a.user, "permission": "contacts.read",
        "resource": { "type": "contact", "id": "c1", "agency": a.id, "account": a.acc } });
    cache_lookups(&t).await; // the platform's own index, for the admin reading the metrics
    let (h0, m0) = cache_lookups(&t).await;
    let agency: tessera_core::AgencyId = a.id.parse().unwrap();
    t.state.engine.invalidate(&agency);
    let first = t.post("/v1/check", &a.key, check.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let (h1, m1) = cache_lookups(&t).await;
    assert!(
        m1 > m0,
        "a first check after an invalidation builds the index: {m0} -> {m1}"
    );
    let second = t.post("/v1/check", &a.key, check).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    let (h2, m2) = cache_lookups(&t).await;
    assert_eq!(m2, m1, "a second check finds the index held");
    assert!(h2 > h1 && h1 >= h0, "hits move on: {h0} {h1} {h2}");
}

/// `tessera_authz_cache_builds_total` in `/metrics`.
async fn cache_builds(t: &TestApp) -> u64 {
    let m = t.get("/metrics", &t.admin).await;
    let text = m.body.as_str().unwrap().to_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("tessera_authz_cache_builds_total "))
        .unwrap_or_else(|| panic!("no tessera_authz_cache_builds_total in {text}"))
        .parse()
        .unwrap()
}

/// A hot tenant on a fresh node: many first checks in one agency at once are many misses but
/// one index build (one store snapshot), not one each; every one of them is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_checks_in_one_agency_share_one_build() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Hot Tenant").await;
    let check = serde_json::json!({ "principal": a.user, "permission": "contacts.read",
        "resource": { "type": "contact", "id": "c1", "agency": a.id, "account": a.acc } });
    // Warm: the key's caller, the subject, and the platform's own index for /metrics.
    let warm = t.post("/v1/check", &a.key, check.clone()).await;
    assert_eq!(warm.status, StatusCode::OK, "{}", warm.body);
    cache_builds(&t).await;
    let (_, m0) = cache_lookups(&t).await;
    let b0 = cache_builds(&t).await;
    let agency: tessera_core::AgencyId = a.id.parse().unwrap();
    t.state.engine.invalidate(&agency);
    let answers =
        futures_util::future::join_all((0..24).map(|_| t.post("/v1/check", &a.key, check.clone())))
            .await;
    for r in &answers {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["allowed"], warm.body["allowed"], "{}", r.body);
    }
    let (_, m1) = cache_lookups(&t).await;
    let b1 = cache_builds(&t).await;
    assert!(m1 > m0, "the invalidation made misses: {m0} -> {m1}");
    assert_eq!(
        b1 - b0,
        1,
        "24 concurrent first checks built the index {} times",
        b1 - b0
    );
}
