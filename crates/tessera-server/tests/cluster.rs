//! Three real `tessera serve` processes sharing one PostgreSQL database (issue 13, part 1):
//!
//! - propagation across processes: each kind of change a node caches, made on node 1 (an API
//!   key revoked, a binding deleted, a `forbid` policy added, an agency suspended, an agency
//!   deleted), is seen by nodes 2 and 3, which had the state before it cached, within 1 s at
//!   p99 over 60 rounds (LISTEN/NOTIFY; the polling fallback alone would be 250 ms); a signing
//!   key added by `tessera keys rotate` is in every node's JWKS within a second;
//! - cluster jobs run once per cluster: over a window, for each job, exactly one node holds
//!   the lease and only that node's run counter moves, at no more than one run per tick;
//!   after `kill -9` of the leader another node takes each of its leases within the lease
//!   time (plus a renewal period) and runs the jobs.
//!
//! PostgreSQL only: skipped with a printed reason without `TESSERA_TEST_DATABASE_URL`, and
//! failing instead when `TESSERA_TEST_CLUSTER_REQUIRED=1` (CI). Costs about 20 s.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
mod rl;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rl::{http, Conn, Tessera};
use tessera_store::testing::PgTestDb;

/// The job lease of the nodes under test, and their job tick.
const LEASE_MS: u64 = 3000;
const TICK_MS: u64 = 200;

/// A login role the servers run as (owns nothing), dropped on drop (after the database).
struct RuntimeRole {
    admin_url: String,
    name: String,
}

impl Drop for RuntimeRole {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::Connection as _;
                if let Ok(mut c) = sqlx::PgConnection::connect(&url).await {
                    let _ = sqlx::query(&format!("DROP ROLE IF EXISTS \"{name}\""))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "tessera-cluster-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Each job's (runs, leader) on one node, from its `/metrics`.
async fn jobs(addr: SocketAddr) -> BTreeMap<String, (u64, bool)> {
    let (s, _, body) = http(addr, "GET", "/metrics", "", &[], "").await;
    assert_eq!(s, 200, "{body}");
    let mut out: BTreeMap<String, (u64, bool)> = BTreeMap::new();
    for line in body.lines() {
        let (metric, value) = match line.split_once(' ') {
            Some(p) if !line.starts_with('#') => p,
            _ => continue,
        };
        let Some(job) = metric
            .split_once("{job=\"")
            .and_then(|(_, rest)| rest.strip_suffix("\"}"))
        else {
            continue;
        };
        let e = out.entry(job.to_owned()).or_default();
        if metric.starts_with("tessera_cluster_job_runs_total{") {
            e.0 = value.parse().unwrap();
        } else if metric.starts_with("tessera_cluster_job_leader{") {
            e.1 = value == "1";
        }
    }
    out
}

const JOBS: [&str; 4] = [
    "signing_keys",
    "audit_keys",
    "audit_checkpoints",
    "audit_prune",
];

/// A key of `agy` reading accounts, made on `node`, with its binding of `agency_admin`:
/// (key id, secret, binding id).
async fn new_key(node: SocketAddr, admin: &str, agy: &str) -> (String, String, String) {
    let (s, _, body) = http(
        node,
        "POST",
        &format!("/v1/agencies/{agy}/api-keys"),
        admin,
        &[("content-type", "application/json")],
        r#"{"name":"reader","scopes":["accounts.readonly"]}"#,
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (key, secret) = (
        v["id"].as_str().unwrap().to_owned(),
        v["secret"].as_str().unwrap().to_owned(),
    );
    let binding = bind_admin(node, admin, agy, &key).await;
    (key, secret, binding)
}

/// Rounds of the propagation measurement (spread over [`Kind::ALL`]).
const ROUNDS: usize = 60;

/// The kinds of change a node caches and must drop when another node makes them.
#[derive(Clone, Copy)]
enum Kind {
    /// An API key revoked: its reads are refused.
    KeyRevoked,
    /// A user's only binding deleted: checks about the user turn to denied.
    BindingDeleted,
    /// A Cedar `forbid` added for a user: checks about the user turn to denied.
    PolicyAdded,
    /// An agency suspended: its key's reads are refused.
    AgencySuspended,
    /// An agency deleted: its key's reads are refused.
    AgencyDeleted,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::KeyRevoked,
        Kind::BindingDeleted,
        Kind::PolicyAdded,
        Kind::AgencySuspended,
        Kind::AgencyDeleted,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::KeyRevoked => "api key revoked",
            Kind::BindingDeleted => "binding deleted",
            Kind::PolicyAdded => "policy added",
            Kind::AgencySuspended => "agency suspended",
            Kind::AgencyDeleted => "agency deleted",
        }
    }

    /// Makes what the round changes, on `node`.
    async fn prepare(self, node: SocketAddr, admin: &str, agy: &str, checked: &Checked) -> Change {
        match self {
            Kind::KeyRevoked => {
                let (key, secret, _) = new_key(node, admin, agy).await;
                Change::Read {
                    agy: agy.to_owned(),
                    secret,
                    apply: (
                        "DELETE",
                        format!("/v1/agencies/{agy}/api-keys/{key}"),
                        String::new(),
                    ),
                }
            }
            Kind::BindingDeleted => {
                let user = new_user(node, admin, agy).await;
                let binding = bind_admin(node, admin, agy, &user).await;
                Change::Check {
                    question: checked.question(&user),
                    apply: (
                        "DELETE",
                        format!("/v1/agencies/{agy}/bindings/{binding}"),
                        String::new(),
                    ),
                    undo: None,
                }
            }
            Kind::PolicyAdded => Change::Check {
                question: checked.question(&checked.user),
                apply: (
                    "POST",
                    format!("/v1/agencies/{agy}/policies"),
                    format!(
                        r#"{{"cedar":"forbid(principal == Tessera::User::\"{}\", action == Tessera::Action::\"contacts.read\", resource);"}}"#,
                        checked.user
                    ),
                ),
                undo: Some(format!("/v1/agencies/{agy}/policies/")),
            },
            Kind::AgencySuspended | Kind::AgencyDeleted => {
                let (agy, secret) = rl::agency_with_key(node, admin, "Propagated").await;
                let apply = match self {
                    Kind::AgencySuspended => (
                        "POST",
                        format!("/v1/agencies/{agy}/suspend"),
                        r#"{"reason":"propagation test"}"#.to_owned(),
                    ),
                    _ => ("DELETE", format!("/v1/agencies/{agy}"), String::new()),
                };
                Change::Read { agy, secret, apply }
            }
        }
    }
}

/// One change under measurement: what nodes 2 and 3 answer before and after it.
enum Change {
    /// A key's read of its agency's accounts: 200 before, refused after.
    Read {
        agy: String,
        secret: String,
        apply: (&'static str, String, String),
    },
    /// A `/v1/check` question (asked by the platform admin): allowed before, denied after;
    /// `undo` is the collection of what `apply` created, deleted after the round.
    Check {
        question: String,
        apply: (&'static str, String, String),
        undo: Option<String>,
    },
}

impl Change {
    async fn before(&self, conn: &mut Conn, admin: &str) -> bool {
        match self {
            Change::Read { agy, secret, .. } => read_status(conn, agy, secret).await == 200,
            Change::Check { question, .. } => allowed(conn, admin, question).await,
        }
    }

    async fn after(&self, conn: &mut Conn, admin: &str) -> bool {
        match self {
            Change::Read { agy, secret, .. } => {
                let s = read_status(conn, agy, secret).await;
                assert!(s == 200 || s == 401 || s == 403, "{s}");
                s != 200
            }
            Change::Check { question, .. } => !allowed(conn, admin, question).await,
        }
    }

    /// Makes the change on `node`: the answer's `id`, if it created something.
    async fn apply(&self, node: SocketAddr, admin: &str) -> Option<String> {
        let (method, path, body) = match self {
            Change::Read { apply, .. } | Change::Check { apply, .. } => apply,
        };
        let headers: &[(&str, &str)] = if body.is_empty() {
            &[]
        } else {
            &[("content-type", "application/json")]
        };
        let (s, _, answer) = http(node, method, path, admin, headers, body).await;
        assert!((200..300).contains(&s), "{method} {path}: {s} {answer}");
        serde_json::from_str::<serde_json::Value>(&answer)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned))
    }

    /// Removes what `apply` created (a policy), so that the next round starts allowed.
    async fn undo(&self, node: SocketAddr, admin: &str, created: Option<String>) {
        if let (
            Change::Check {
                undo: Some(collection),
                ..
            },
            Some(id),
        ) = (self, created)
        {
            let (s, _, body) =
                http(node, "DELETE", &format!("{collection}{id}"), admin, &[], "").await;
            assert!(s == 204 || s == 200, "{s} {body}");
        }
    }
}

/// The checks' fixture: an account, and a user bound as `agency_admin` (the policy rounds'
/// subject).
struct Checked {
    agy: String,
    account: String,
    user: String,
}

impl Checked {
    async fn new(node: SocketAddr, admin: &str, agy: &str) -> Self {
        let json = [("content-type", "application/json")];
        let (s, _, body) = http(
            node,
            "POST",
            &format!("/v1/agencies/{agy}/accounts"),
            admin,
            &json,
            r#"{"name":"Checked"}"#,
        )
        .await;
        assert_eq!(s, 201, "{body}");
        let account = id_of(&body);
        let user = new_user(node, admin, agy).await;
        bind_admin(node, admin, agy, &user).await;
        Self {
            agy: agy.to_owned(),
            account,
            user,
        }
    }

    /// May `user` read a contact of the account?
    fn question(&self, user: &str) -> String {
        format!(
            r#"{{"principal":"{user}","permission":"contacts.read","resource":{{"type":"contact","agency":"{}","account":"{}"}}}}"#,
            self.agy, self.account
        )
    }
}

/// A new user of `agy`.
async fn new_user(node: SocketAddr, admin: &str, agy: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (s, _, body) = http(
        node,
        "POST",
        &format!("/v1/agencies/{agy}/users"),
        admin,
        &[("content-type", "application/json")],
        &format!(r#"{{"email":"user{n}@propagation.example","name":"User {n}"}}"#),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    id_of(&body)
}

/// Binds `principal` as `agency_admin` of `agy`: the binding's id.
async fn bind_admin(node: SocketAddr, admin: &str, agy: &str, principal: &str) -> String {
    let (s, _, body) = http(
        node,
        "POST",
        &format!("/v1/agencies/{agy}/bindings"),
        admin,
        &[("content-type", "application/json")],
        &format!(r#"{{"principal":"{principal}","role":"agency_admin"}}"#),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    id_of(&body)
}

/// The `id` of a created resource's JSON.
fn id_of(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {body}"))
        .to_owned()
}

/// A node's answer to a check question, asked by the platform admin.
async fn allowed(conn: &mut Conn, admin: &str, question: &str) -> bool {
    let (s, _, body) = conn
        .send(
            "POST",
            "/v1/check",
            admin,
            &[("content-type", "application/json")],
            question,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["allowed"].as_bool().unwrap()
}

/// The status a node answers the key's read with.
async fn read_status(conn: &mut Conn, agy: &str, secret: &str) -> u16 {
    conn.send(
        "GET",
        &format!("/v1/agencies/{agy}/accounts"),
        secret,
        &[],
        "",
    )
    .await
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_propagate_revocations_and_run_jobs_once() {
    let Some(db) = PgTestDb::create().await else {
        if std::env::var("TESSERA_TEST_CLUSTER_REQUIRED").as_deref() == Ok("1") {
            panic!("TESSERA_TEST_DATABASE_URL is not set and TESSERA_TEST_CLUSTER_REQUIRED=1");
        }
        eprintln!("SKIPPED: the cluster test needs PostgreSQL: set TESSERA_TEST_DATABASE_URL (and TESSERA_TEST_CLUSTER_REQUIRED=1 to fail instead)");
        return;
    };
    // The runtime role: row access only, granted by `tessera migrate --grant-to`.
    let rt = format!("{}_rt", db.name());
    let _role = RuntimeRole {
        admin_url: db.admin_url(),
        name: rt.clone(),
    };
    {
        use sqlx::Connection as _;
        let mut admin = sqlx::PgConnection::connect(&db.admin_url()).await.unwrap();
        sqlx::query(&format!(
            "CREATE ROLE \"{rt}\" LOGIN NOSUPERUSER NOBYPASSRLS"
        ))
        .execute(&mut admin)
        .await
        .unwrap();
    }
    let owner_url = db.url();
    let rt_url = owner_url.replacen(&format!("//{}@", db.name()), &format!("//{rt}@"), 1);
    assert_ne!(rt_url, owner_url);
    let dir = tempdir("pg");
    let migrated = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "migrate",
            "--database-url",
            &owner_url,
            "--grant-to",
            &rt,
            "--data-dir",
        ])
        .arg(&dir)
        .env_remove("TESSERA_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        migrated.status.success(),
        "tessera migrate: {}",
        String::from_utf8_lossy(&migrated.stderr)
    );

    let (lease, tick) = (LEASE_MS.to_string(), TICK_MS.to_string());
    let flags = [
        "--database-url",
        &rt_url,
        "--rate-limits",
        "off",
        "--metrics-public",
        "--cluster-lease-ms",
        &lease,
        "--cluster-job-tick-ms",
        &tick,
    ];
    // One after the other: the first start makes the master key and bootstraps.
    let mut nodes = vec![Tessera::start(&dir, None, &flags).await];
    nodes.push(Tessera::start(&dir, None, &flags).await);
    nodes.push(Tessera::start(&dir, None, &flags).await);
    let admin = nodes[0].admin_key();
    let (agy, _) = nodes[0].agency_with_key(&admin, "Propagation").await;

    // a. Propagation latency across processes, for every kind of change a node caches.
    let mut conns = [
        Conn::open(nodes[1].addr).await,
        Conn::open(nodes[2].addr).await,
    ];
    let checked = Checked::new(nodes[0].addr, &admin, &agy).await;
    let mut latencies: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for round in 0..ROUNDS {
        let kind = Kind::ALL[round % Kind::ALL.len()];
        let change = kind.prepare(nodes[0].addr, &admin, &agy, &checked).await;
        // Nodes 2 and 3 see the state before the change first: it is then in their caches.
        for c in conns.iter_mut() {
            let t = Instant::now();
            while !change.before(c, &admin).await {
                assert!(
                    t.elapsed() < Duration::from_secs(5),
                    "round {round} ({}): the state before the change never showed",
                    kind.name()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let created = change.apply(nodes[0].addr, &admin).await;
        let t0 = Instant::now();
        let mut seen = [false, false];
        while seen != [true, true] {
            for (i, c) in conns.iter_mut().enumerate() {
                if !seen[i] {
                    seen[i] = change.after(c, &admin).await;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "round {round}: {} not seen everywhere after 10 s",
                kind.name()
            );
        }
        latencies.entry(kind.name()).or_default().push(t0.elapsed());
        change.undo(nodes[0].addr, &admin, created).await;
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut all = Vec::new();
    for (kind, mut l) in latencies {
        l.sort();
        println!(
            "propagation of {kind} across processes ({} rounds, nodes 2 and 3 both): p50 {:.1} ms, max {:.1} ms",
            l.len(),
            ms(l[l.len() / 2]),
            ms(l[l.len() - 1])
        );
        assert!(
            l[l.len() - 1] <= Duration::from_secs(1),
            "{kind}: {:?} over 1 s",
            l[l.len() - 1]
        );
        all.extend(l);
    }
    all.sort();
    let pct = |p: usize| all[(all.len() * p / 100).min(all.len() - 1)];
    let (p50, p99, max) = (pct(50), pct(99), all[all.len() - 1]);
    println!(
        "propagation across processes ({} rounds of {} kinds): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        all.len(),
        Kind::ALL.len(),
        ms(p50),
        ms(p99),
        ms(max)
    );
    assert!(p99 <= Duration::from_secs(1), "p99 {p99:?} over 1 s");

    // A signing key added by `tessera keys rotate` (another process) is in every node's JWKS
    // within a second, not at their next minute.
    let kids = |body: String| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut k: Vec<String> = v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        k.sort();
        k
    };
    let before = kids(
        http(nodes[1].addr, "GET", "/.well-known/jwks.json", "", &[], "")
            .await
            .2,
    );
    let rotated = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["keys", "rotate", "--database-url", &rt_url, "--data-dir"])
        .arg(&dir)
        .env_remove("TESSERA_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        rotated.status.success(),
        "tessera keys rotate: {}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let t0 = Instant::now();
    for node in &nodes {
        loop {
            let now = kids(
                http(node.addr, "GET", "/.well-known/jwks.json", "", &[], "")
                    .await
                    .2,
            );
            if now.len() > before.len() && before.iter().all(|k| now.contains(k)) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(1),
                "the rotated key is not in {}'s JWKS after 1 s: {now:?} (before {before:?})",
                node.addr
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    println!(
        "a key from `tessera keys rotate` in every node's JWKS after {:?}",
        t0.elapsed()
    );

    // b. Jobs run once per cluster.
    let before: Vec<_> = futures_join(&nodes).await;
    let window = Instant::now();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let after: Vec<_> = futures_join(&nodes).await;
    let elapsed = window.elapsed();
    let mut leader_of = BTreeMap::new();
    for job in JOBS {
        let leaders: Vec<usize> = (0..3)
            .filter(|&n| after[n].get(job).is_some_and(|j| j.1))
            .collect();
        assert_eq!(leaders.len(), 1, "{job}: leaders {leaders:?}");
        let leader = leaders[0];
        assert!(
            before[leader].get(job).is_some_and(|j| j.1),
            "{job}: the lease moved"
        );
        for n in 0..3 {
            let runs = |m: &BTreeMap<String, (u64, bool)>| m.get(job).map_or(0, |j| j.0);
            let ran = runs(&after[n]) - runs(&before[n]);
            if n == leader {
                let most = elapsed.as_millis() as u64 / TICK_MS + 2;
                assert!(
                    ran >= 1 && ran <= most,
                    "{job}: the leader ran {ran} times in {elapsed:?} (at most {most})"
                );
            } else {
                assert_eq!(ran, 0, "{job}: node {n} ran it without the lease");
            }
        }
        leader_of.insert(job, leader);
    }
    // The database agrees: one live lease per job.
    {
        use sqlx::Connection as _;
        let mut c = sqlx::PgConnection::connect(&owner_url).await.unwrap();
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT name, holder FROM cluster_leases ORDER BY name")
                .fetch_all(&mut c)
                .await
                .unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "audit_checkpoints",
                "audit_keys",
                "audit_prune",
                "signing_keys"
            ]
        );
    }

    // kill -9 of the signing-key leader: another node takes its leases within the lease.
    let victim = leader_of["signing_keys"];
    let orphaned: Vec<&str> = JOBS
        .iter()
        .copied()
        .filter(|j| leader_of[j] == victim)
        .collect();
    let dead = nodes.remove(victim);
    drop(dead); // SIGKILL (Child::kill), then wait
    let killed = Instant::now();
    let bound = Duration::from_millis(LEASE_MS + LEASE_MS / 3 + 1500);
    let mut taken = BTreeMap::new();
    while taken.len() < orphaned.len() {
        assert!(
            killed.elapsed() < bound,
            "leases {orphaned:?} not all taken over within {bound:?}: {taken:?}"
        );
        let now = futures_join(&nodes).await;
        for job in &orphaned {
            if taken.contains_key(job) {
                continue;
            }
            let leaders: Vec<usize> = (0..2)
                .filter(|&n| now[n].get(*job).is_some_and(|j| j.1))
                .collect();
            assert!(leaders.len() <= 1, "{job}: two leaders {leaders:?}");
            if let Some(&l) = leaders.first() {
                taken.insert(*job, (l, killed.elapsed(), now[l][*job].0));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("after kill -9 of the leader, its leases were taken over: {taken:?}");
    // And the new leaders run the jobs.
    tokio::time::sleep(Duration::from_millis(TICK_MS * 3)).await;
    let now = futures_join(&nodes).await;
    for (job, (l, _, runs)) in &taken {
        assert!(
            now[*l][*job].0 > *runs,
            "{job}: the new leader does not run it"
        );
    }
}

async fn futures_join(nodes: &[Tessera]) -> Vec<BTreeMap<String, (u64, bool)>> {
    let mut out = Vec::new();
    for n in nodes {
        out.push(jobs(n.addr).await);
    }
    out
}
