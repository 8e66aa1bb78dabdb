//! A test app: a fresh store (SQLite, or PostgreSQL when asked), the default catalog, a fixed
//! master key, a manual clock, and the bootstrap platform-admin key. Requests go through
//! `app().oneshot()`, no socket.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tessera_core::Catalog;
use tessera_server::clock::{Clock as _, ManualClock};
use tessera_server::http::state::AppState;
use tessera_server::services::EngineSettings;
use tessera_store::testing::{PgTestDb, TempDirGuard};
use tower::ServiceExt;

pub const T0: i64 = 1_800_000_000_000;

pub struct TestApp {
    pub state: AppState,
    pub router: axum::Router,
    pub clock: Arc<ManualClock>,
    pub admin: String,
    _dir: TempDirGuard,
    _pg: Option<PgTestDb>,
}

pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
    pub headers: axum::http::HeaderMap,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {}", self.body))
            .to_owned()
    }
}

/// One active RS256 key record, sealed under the test master key, shared by every test app.
/// Writes a master key file (mode 0600): the keys in order, the current first.
pub fn write_master_file(path: &std::path::Path, keys: &[[u8; 32]]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .expect("key file");
    for k in keys {
        let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(f, "{hex}").expect("write");
    }
    f.sync_all().expect("sync");
    // Atomic: a node reloading the file never reads half of it.
    std::fs::rename(&tmp, path).expect("rename");
}

fn rs256_fixture(master: &tessera_token::MasterKey) -> &'static tessera_token::KeyRecord {
    static RECORD: std::sync::OnceLock<tessera_token::KeyRecord> = std::sync::OnceLock::new();
    RECORD.get_or_init(|| {
        let envelope = master.derive_key(tessera_token::SIGNING_KEYS_PURPOSE);
        tessera_token::KeyRecord::generate(
            tessera_token::Algorithm::Rs256,
            tessera_token::KeyState::Active,
            0,
            0,
            &envelope,
            &mut rand::rngs::OsRng,
        )
        .0
    })
}

impl TestApp {
    /// A second connection to this app's SQLite database (another node's), with its own mint.
    pub async fn connect_again(&self) -> tessera_store::Connected {
        let url = format!(
            "sqlite://{}",
            self._dir
                .path()
                .join(tessera_store::testing::SQLITE_DB_FILE)
                .display()
        );
        tessera_store::connect(&url)
            .await
            .expect("second connection")
    }

    /// The URL of this app's database (the SQLite file, or the PostgreSQL test database), for
    /// tests that change rows behind the server's back.
    pub fn db_url(&self) -> String {
        match &self._pg {
            Some(db) => db.url(),
            None => format!(
                "sqlite://{}",
                self._dir
                    .path()
                    .join(tessera_store::testing::SQLITE_DB_FILE)
                    .display()
            ),
        }
    }

    /// Another node on this app's store (SQLite or PostgreSQL): its own engine, caches and
    /// mint, at the store's current revision, with its router.
    pub async fn second_node(&self) -> (AppState, axum::Router) {
        let connected = match &self._pg {
            Some(db) => tessera_store::connect(&db.url())
                .await
                .expect("second connection"),
            None => self.connect_again().await,
        };
        let node = AppState::with_engine(
            connected,
            Catalog::default_catalog().expect("catalog"),
            &tessera_token::MasterKey::from_bytes([7; 32]),
            self.clock.clone(),
            EngineSettings {
                webhooks: self.state.webhooks.settings.clone(),
                ..Default::default()
            },
        )
        .expect("state");
        node.engine
            .start_at(self.state.store.revision().await.expect("revision"));
        node.keys.reload().await.expect("signing keys");
        let router = tessera_server::app(node.clone()).expect("app");
        (node, router)
    }

    pub async fn sqlite() -> Self {
        let (store, dir) = tessera_store::testing::sqlite_store().await;
        Self::with_store(store, dir, None).await
    }

    /// A PostgreSQL-backed app, or None (with a notice) when no test database is configured.
    pub async fn postgres() -> Option<Self> {
        let Some(db) = PgTestDb::create().await else {
            tessera_store::testing::notice_pg_skipped();
            return None;
        };
        let store = db.store().await;
        let dir = TempDirGuard::new("tessera-http-pg").expect("temp dir");
        Some(Self::with_store(store, dir, Some(db)).await)
    }

    /// A PostgreSQL-backed app with these settings, or None when no test database is
    /// configured.
    pub async fn postgres_with(settings: EngineSettings) -> Option<Self> {
        let Some(db) = PgTestDb::create().await else {
            tessera_store::testing::notice_pg_skipped();
            return None;
        };
        let store = db.store().await;
        let dir = TempDirGuard::new("tessera-http-pg").expect("temp dir");
        Some(Self::build(store, dir, Some(db), T0, settings).await)
    }

    /// An app on this PostgreSQL test database, its store already connected (and migrated),
    /// with these settings (a read replica, for `tests/replica.rs`).
    #[allow(
        dead_code,
        reason = "used by the replica test binary, which shares this harness"
    )]
    pub async fn postgres_on(
        db: PgTestDb,
        store: tessera_store::Connected,
        settings: EngineSettings,
    ) -> Self {
        let dir = TempDirGuard::new("tessera-http-pg").expect("temp dir");
        Self::build(store, dir, Some(db), T0, settings).await
    }

    /// A SQLite-backed app whose tokens name `issuer`, for a real server on a socket. Its clock
    /// stands at the real current time (not `T0`), so that outside libraries, which check `exp`
    /// against the system clock, accept its tokens.
    pub async fn sqlite_with_issuer(issuer: &str) -> Self {
        let (store, dir) = tessera_store::testing::sqlite_store().await;
        let now = tessera_server::clock::SystemClock.now();
        let settings = EngineSettings {
            oauth: tessera_server::oauth::settings::OAuthSettings {
                issuer: issuer.to_owned(),
                ..Default::default()
            },
            // These real-server tests drive load on purpose (sign-in bursts, slow clients):
            // rate limits would answer first. `limits.rs` and `tests/redis_limits.rs` test them.
            rate_limits: tessera_server::ratelimit::RateLimitSettings::off(),
            ..Default::default()
        };
        Self::build(store, dir, None, now, settings).await
    }

    /// A SQLite-backed app with these settings (network limits, `/metrics` access, issuer).
    pub async fn sqlite_with(settings: EngineSettings) -> Self {
        let (store, dir) = tessera_store::testing::sqlite_store().await;
        Self::build(store, dir, None, T0, settings).await
    }

    async fn with_store(
        store: tessera_store::Connected,
        dir: TempDirGuard,
        pg: Option<PgTestDb>,
    ) -> Self {
        Self::build(store, dir, pg, T0, EngineSettings::default()).await
    }

    /// An app whose master keys come from a key file in its own directory (holding the
    /// harness's fixed key, so every fixture opens), its secrets stored in the database as
    /// `serve` stores them; on PostgreSQL when `pg` and a test database is configured.
    pub async fn with_master_file(pg: bool) -> Option<Self> {
        let (store, dir, db) = if pg {
            let db = PgTestDb::create().await?;
            let store = db.store().await;
            (
                store,
                TempDirGuard::new("tessera-http-pg").expect("temp dir"),
                Some(db),
            )
        } else {
            let (store, dir) = tessera_store::testing::sqlite_store().await;
            (store, dir, None)
        };
        let file = dir.path().join("master.key");
        write_master_file(&file, &[[7; 32]]);
        let (ring, _) = tessera_server::secrets::MasterRing::from_source(
            tessera_token::MasterKeySource::File(file),
        )
        .expect("master key file");
        let settings = EngineSettings {
            rate_limits: tessera_server::ratelimit::RateLimitSettings::off(),
            ..Default::default()
        };
        Some(Self::build_with(store, dir, db, T0, settings, Some(Arc::new(ring))).await)
    }

    /// This app's directory (the master key file of `with_master_file` lives there).
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// A new connection to this app's store (SQLite or PostgreSQL), with its own mint.
    pub async fn connect_store(&self) -> tessera_store::Connected {
        match &self._pg {
            Some(db) => tessera_store::connect(&db.url()).await.expect("connection"),
            None => self.connect_again().await,
        }
    }

    async fn build(
        store: tessera_store::Connected,
        dir: TempDirGuard,
        pg: Option<PgTestDb>,
        now_ms: i64,
        settings: EngineSettings,
    ) -> Self {
        Self::build_with(store, dir, pg, now_ms, settings, None).await
    }

    async fn build_with(
        store: tessera_store::Connected,
        dir: TempDirGuard,
        pg: Option<PgTestDb>,
        now_ms: i64,
        settings: EngineSettings,
        ring: Option<Arc<tessera_server::secrets::MasterRing>>,
    ) -> Self {
        let clock = Arc::new(ManualClock::new(now_ms));
        let master = tessera_token::MasterKey::from_bytes([7; 32]);
        let catalog = Catalog::default_catalog().expect("catalog");
        let state = match ring {
            None => AppState::with_engine(store, catalog, &master, clock.clone(), settings),
            Some(ring) => {
                let material =
                    tessera_server::secrets::Material::load(store.store.as_ref(), ring, now_ms)
                        .await
                        .expect("stored secrets");
                AppState::with_material(store, catalog, &material, clock.clone(), settings)
            }
        }
        .expect("state");
        let path = tessera_server::bootstrap::ensure(&state, dir.path())
            .await
            .expect("bootstrap")
            .expect("bootstrapped");
        let admin = std::fs::read_to_string(&path)
            .expect("key file")
            .trim()
            .to_owned();
        // The RS256 lineage starts from one shared pre-generated key (RSA key generation is
        // too slow to repeat for every test app); maintenance makes the other lineages' keys.
        let mut rsa = rs256_fixture(&master).clone();
        rsa.created_at = now_ms / 1000;
        rsa.activates_at = now_ms / 1000;
        state.keys.import(&rsa).await.expect("rs256 key");
        state
            .keys
            .maintain(now_ms / 1000)
            .await
            .expect("signing keys");
        let router = tessera_server::app(state.clone()).expect("app");
        Self {
            state,
            router,
            clock,
            admin,
            _dir: dir,
            _pg: pg,
        }
    }

    /// Moves the app's clock forward.
    pub fn advance(&self, ms: i64) {
        self.clock.advance(ms);
    }

    pub async fn raw(&self, req: Request<Body>) -> Resp {
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        assert!(
            status.as_u16() < 500 || body["code"] == "revision_not_reached",
            "server error {status} for a request: {body}"
        );
        Resp {
            status,
            body,
            headers,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        };
        self.raw(req.expect("request")).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Resp {
        self.call(Method::GET, path, Some(key), None).await
    }
    pub async fn post(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }
    pub async fn patch(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(key), Some(body)).await
    }
    pub async fn delete(&self, path: &str, key: &str) -> Resp {
        self.call(Method::DELETE, path, Some(key), None).await
    }

    /// A new agency with an account, a user, and an admin key holding these agency scopes.
    pub async fn agency(&self, name: &str) -> Agency {
        let r = self
            .post("/v1/agencies", &self.admin, json!({ "name": name }))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let id = r.id();
        let acc = self
            .post(
                &format!("/v1/agencies/{id}/accounts"),
                &self.admin,
                json!({ "name": format!("{name} client") }),
            )
            .await
            .id();
        let user = self
            .post(&format!("/v1/agencies/{id}/users"), &self.admin, json!({ "email": format!("owner@{}.test", name.to_lowercase().replace(' ', "-")), "name": "Owner" }))
            .await
            .id();
        let key = self
            .post(
                &format!("/v1/agencies/{id}/api-keys"),
                &self.admin,
                json!({ "name": "admin", "scopes": ADMIN_SCOPES }),
            )
            .await;
        assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
        Agency {
            id,
            acc,
            user,
            key_id: key.id(),
            key: key.body["secret"].as_str().expect("secret").to_owned(),
        }
    }
}

/// A confidential private app of `ag` with `scopes`, redirecting to `redirect`, installed on
/// the agency's account: (client id, client secret, installation id).
pub async fn installed_app(
    app: &TestApp,
    ag: &Agency,
    redirect: &str,
    scopes: &[&str],
) -> (String, String, String) {
    let created = app
        .post(
            &format!("/v1/agencies/{}/apps", ag.id),
            &app.admin,
            json!({ "name": format!("{} app", ag.id), "redirect_uris": [redirect], "scopes": scopes,
                    "confidential": true, "kind": "private" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let client_id = created.body["client_id"]
        .as_str()
        .expect("client_id")
        .to_owned();
    let secret = created.body["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let ins = app
        .post(
            &format!("/v1/agencies/{}/accounts/{}/installations", ag.id, ag.acc),
            &app.admin,
            json!({ "app": client_id, "scopes": scopes }),
        )
        .await;
    assert_eq!(ins.status, StatusCode::CREATED, "{}", ins.body);
    (client_id, secret, ins.id())
}

/// Scopes that let an agency key administer its agency.
pub const ADMIN_SCOPES: &[&str] = &[
    "agencies.readonly",
    "accounts.write",
    "users.write",
    "api_keys.write",
    "roles.write",
    "policies.write",
    "audit.readonly",
    "contacts.write",
];

#[derive(Clone, Debug)]
pub struct Agency {
    pub id: String,
    pub acc: String,
    pub user: String,
    pub key_id: String,
    pub key: String,
}

/// A syntactically valid id of the given type that names nothing.
/// `POST /v1/check` with `body` on another node's router (`TestApp::second_node`), with `key`
/// as the credential: the status and the JSON body.
pub async fn check_on(router: &axum::Router, key: &str, body: &Value) -> (StatusCode, Value) {
    let req = Request::post("/v1/check")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = router.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

pub fn missing(prefix: &str) -> String {
    format!("{prefix}_01ARZ3NDEKTSV4RRFFQ69G5FAV")
}
