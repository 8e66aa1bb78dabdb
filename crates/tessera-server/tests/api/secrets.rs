//! Stored secrets (issue 12): master-key rotation while the server takes load (no failed
//! request, no row left under the old key, a restart with the new key alone), pepper rotation
//! across two nodes (a key hashed under a version one node has not seen yet, rehash on use,
//! retirement), and crypto-shredding (a deleted agency's data key is gone, so its sealed rows
//! no longer open, even for an operator holding the master key and the database).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use tessera_core::AgencyId;
use tessera_server::authn::Presented;
use tessera_server::clock::Clock as _;
use tessera_server::secrets::{rotate, DataKeyError, DataKeys, MasterRing, Material};
use tessera_token::{MasterKey, MasterKeySource};

use crate::harness::{write_master_file, TestApp};
use crate::oauth::{basic, Fixture};

const OLD: [u8; 32] = [7; 32];
const NEW: [u8; 32] = [42; 32];

fn old_id() -> String {
    MasterKey::from_bytes(OLD).key_id()
}

fn new_id() -> String {
    MasterKey::from_bytes(NEW).key_id()
}

fn ring_from(app: &TestApp) -> Arc<MasterRing> {
    let (ring, _) =
        MasterRing::from_source(MasterKeySource::File(app.dir().join("master.key"))).unwrap();
    Arc::new(ring)
}

async fn client_token(app: &TestApp, f: &Fixture) -> Result<(), String> {
    let r = app
        .form(
            "/oauth/token",
            Some(&basic(&f.client_id, &f.secret)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "contacts.write"),
            ],
        )
        .await;
    (r.status == StatusCode::OK)
        .then_some(())
        .ok_or_else(|| format!("token issue: {} {}", r.status, r.body))
}

async fn key_check(app: &TestApp, f: &Fixture) -> Result<(), String> {
    let r = app
        .get(&format!("/v1/agencies/{}", f.ag.id), &f.ag.key)
        .await;
    (r.status == StatusCode::OK)
        .then_some(())
        .ok_or_else(|| format!("api key: {} {}", r.status, r.body))
}

/// A cold read of sealed data: a fresh data-key cache, so the key is read and unwrapped from
/// its row (under whichever master key wraps it at that moment).
async fn sealed_read(app: &TestApp, agency: &AgencyId, sealed: &[u8]) -> Result<(), String> {
    let keys = DataKeys::new(app.state.store.clone(), app.state.ring.clone());
    let scope = app.state.admission.admit(agency.clone());
    match keys.open(&scope, b"test", sealed, app.clock.now()).await {
        Ok(pt) if pt.as_slice() == b"alice@example.test" => Ok(()),
        Ok(_) => Err("sealed read: wrong plaintext".into()),
        Err(e) => Err(format!("sealed read: {e}")),
    }
}

async fn rotate_master_under_load(pg: bool) {
    let Some(app) = TestApp::with_master_file(pg).await else {
        return;
    };
    let app = Arc::new(app);
    let f = Arc::new(app.fixture("Rot", "first_party", &["contacts.write"]).await);
    let agency: AgencyId = f.ag.id.parse().unwrap();
    let scope = app.state.admission.admit(agency.clone());
    let sealed = app
        .state
        .data_keys
        .seal(&scope, b"test", b"alice@example.test", app.clock.now())
        .await
        .unwrap();
    assert_eq!(
        app.state
            .store
            .data_key(&scope)
            .await
            .unwrap()
            .unwrap()
            .master_key_id,
        old_id()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for w in 0..3 {
        let (app, f, stop, ok, failures, agency, sealed) = (
            app.clone(),
            f.clone(),
            stop.clone(),
            ok.clone(),
            failures.clone(),
            agency.clone(),
            sealed.clone(),
        );
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = match w {
                    0 => client_token(&app, &f).await,
                    1 => key_check(&app, &f).await,
                    _ => sealed_read(&app, &agency, &sealed).await,
                };
                match r {
                    Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        failures.lock().unwrap().push(e);
                        0
                    }
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;

    // The operator: the new key first, the old one after; then the command.
    let file = app.dir().join("master.key");
    write_master_file(&file, &[NEW, OLD]);
    let cli_store = app.connect_store().await;
    let admission = tessera_server::gate::admission::Admission::new(cli_store.mint);
    let report = rotate::rotate_master(
        cli_store.store.as_ref(),
        &ring_from(&app),
        &admission,
        app.clock.now(),
        Duration::from_millis(30),
    )
    .await
    .unwrap();
    assert_eq!(report.active, new_id());
    assert!(report.secrets_rewrapped >= 3, "{report:?}");
    assert!(report.data_keys_rewrapped >= 1, "{report:?}");
    assert_eq!(report.retired, vec![old_id()]);

    tokio::time::sleep(Duration::from_millis(150)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(ok.load(Ordering::Relaxed) > 30, "too little load");

    // No row is wrapped under the old key.
    let store = cli_store.store.as_ref();
    for row in store.root_secrets().await.unwrap() {
        assert_eq!(row.master_key_id, new_id(), "{row:?}");
    }
    for id in store.all_agency_ids().await.unwrap() {
        if let Some(row) = store.data_key(&admission.admit(id)).await.unwrap() {
            assert_eq!(row.master_key_id, new_id());
        }
    }
    let states: Vec<(String, String)> = store
        .master_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.key_id, k.state))
        .collect();
    assert!(states.contains(&(old_id(), "retired".into())), "{states:?}");
    assert!(states.contains(&(new_id(), "active".into())), "{states:?}");

    // Restart with the new key alone: everything still opens and verifies.
    write_master_file(&file, &[NEW]);
    let restarted = app.connect_store().await;
    let ring = ring_from(&app);
    assert_eq!(ring.current().key_id(), new_id());
    assert!(ring.snapshot().by_id(&old_id()).is_none());
    let material = Material::load(restarted.store.as_ref(), ring, app.clock.now())
        .await
        .unwrap();
    let node = tessera_server::http::state::AppState::with_material(
        restarted,
        tessera_core::Catalog::default_catalog().unwrap(),
        &material,
        app.clock.clone(),
        tessera_server::services::EngineSettings::default(),
    )
    .unwrap();
    node.keys.reload().await.unwrap();
    let scope = node.admission.admit(agency.clone());
    let opened = node
        .data_keys
        .open(&scope, b"test", &sealed, app.clock.now())
        .await
        .unwrap();
    assert_eq!(opened.as_slice(), b"alice@example.test");
    // The API key (hashed under the stored pepper) still authenticates on the restarted node.
    let caller = tessera_server::authn::authenticate(
        &node,
        Presented::Value(&format!("Bearer {}", f.ag.key)),
    )
    .await;
    assert!(caller.is_ok(), "{:?}", caller.err());
    // A key the old master wrapped cannot be named any more.
    assert!(matches!(
        node.ring.key(&old_id()).await,
        Err(tessera_server::secrets::SecretsError::UnknownMasterKey(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotate_master_under_load_sqlite() {
    rotate_master_under_load(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotate_master_under_load_postgres() {
    rotate_master_under_load(true).await;
}

async fn pepper_rotation(pg: bool) {
    let Some(app) = TestApp::with_master_file(pg).await else {
        return;
    };
    let f = app.fixture("Pep", "first_party", &["contacts.write"]).await;
    let agency: AgencyId = f.ag.id.parse().unwrap();
    let scope = app.state.admission.admit(agency.clone());
    assert_eq!(app.state.pepper.version(), 1);
    // A key nobody uses until the end: it keeps version 1 alive.
    let dormant = app
        .post(
            &format!("/v1/agencies/{}/api-keys", f.ag.id),
            &app.admin,
            serde_json::json!({ "name": "dormant", "scopes": ["agencies.readonly"] }),
        )
        .await;
    assert_eq!(dormant.status, StatusCode::CREATED, "{}", dormant.body);
    let dormant = dormant.body["secret"].as_str().unwrap().to_owned();
    // Node B: another node on the same store that will not reload on its own.
    let other = app.connect_store().await;
    let ring_b = ring_from(&app);
    let material = Material::load(other.store.as_ref(), ring_b, app.clock.now())
        .await
        .unwrap();
    let node_b = tessera_server::http::state::AppState::with_material(
        other,
        tessera_core::Catalog::default_catalog().unwrap(),
        &material,
        app.clock.clone(),
        tessera_server::services::EngineSettings::default(),
    )
    .unwrap();

    let cli = app.connect_store().await;
    let admission = tessera_server::gate::admission::Admission::new(cli.mint);
    let r = rotate::rotate_pepper(
        cli.store.as_ref(),
        &ring_from(&app),
        &admission,
        app.clock.now(),
        Duration::ZERO,
        false,
    )
    .await
    .unwrap();
    assert_eq!(r.created, Some(2));
    assert!(r.kept.contains(&1), "v1 is still in use: {r:?}");

    // Node A learns version 2 and creates a key under it; node B, still on version 1, is
    // asked about it at once: the miss reloads its peppers and finds it.
    assert!(app
        .state
        .pepper
        .reload(app.state.store.as_ref(), &app.state.ring)
        .await
        .unwrap());
    assert_eq!(app.state.pepper.version(), 2);
    let k2 = app
        .post(
            &format!("/v1/agencies/{}/api-keys", f.ag.id),
            &app.admin,
            serde_json::json!({ "name": "new", "scopes": ["agencies.readonly"] }),
        )
        .await;
    assert_eq!(k2.status, StatusCode::CREATED, "{}", k2.body);
    let k2 = k2.body["secret"].as_str().unwrap().to_owned();
    assert_eq!(node_b.pepper.version(), 1);
    assert!(tessera_server::authn::authenticate(
        &node_b,
        Presented::Value(&format!("Bearer {k2}"))
    )
    .await
    .is_ok());
    assert_eq!(node_b.pepper.version(), 2);

    // Old credentials verify under version 1 and are rehashed to version 2 on that use.
    assert!(app
        .state
        .store
        .pepper_versions_in_use(&scope)
        .await
        .unwrap()
        .contains(&1));
    let r = app
        .get(&format!("/v1/agencies/{}", f.ag.id), &f.ag.key)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    client_token(&app, &f).await.unwrap();
    assert_eq!(
        app.state
            .store
            .pepper_versions_in_use(&scope)
            .await
            .unwrap(),
        vec![1, 2],
        "only the dormant key is left under version 1"
    );
    // Not retired while a stored hash (the dormant key's) still uses version 1.
    let r = rotate::rotate_pepper(
        cli.store.as_ref(),
        &ring_from(&app),
        &admission,
        app.clock.now(),
        Duration::ZERO,
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        (r.created, r.retired.clone(), r.kept.clone()),
        (None, vec![], vec![1])
    );
    let r = app
        .get(&format!("/v1/agencies/{}", f.ag.id), &dormant)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        app.state
            .store
            .pepper_versions_in_use(&scope)
            .await
            .unwrap(),
        vec![2]
    );
    // Version 1 is used by no hash now: retired, its material destroyed.
    let r = rotate::rotate_pepper(
        cli.store.as_ref(),
        &ring_from(&app),
        &admission,
        app.clock.now(),
        Duration::ZERO,
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.retired, vec![1], "{r:?}");
    let v1 = cli
        .store
        .root_secrets()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.purpose == "pepper" && r.version == 1)
        .unwrap();
    assert!(v1.sealed.is_empty() && v1.retired_at.is_some());
    // Every credential still works after the nodes drop version 1.
    app.state
        .pepper
        .reload(app.state.store.as_ref(), &app.state.ring)
        .await
        .unwrap();
    assert!(app.state.pepper.hash_with(1, b"x").is_none());
    for key in [&f.ag.key, &k2, &app.admin, &dormant] {
        assert!(tessera_server::authn::authenticate(
            &node_b,
            Presented::Value(&format!("Bearer {key}"))
        )
        .await
        .is_ok());
    }
    client_token(&app, &f).await.unwrap();
}

#[tokio::test]
async fn pepper_rotation_sqlite() {
    pepper_rotation(false).await;
}

#[tokio::test]
async fn pepper_rotation_postgres() {
    pepper_rotation(true).await;
}

async fn deleting_an_agency_shreds_its_data(pg: bool) {
    let Some(app) = TestApp::with_master_file(pg).await else {
        return;
    };
    let gone = app.agency("Gone").await;
    let kept = app.agency("Kept").await;
    let now = app.clock.now();
    let mut sealed = Vec::new();
    for ag in [&gone, &kept] {
        let id: AgencyId = ag.id.parse().unwrap();
        let scope = app.state.admission.admit(id.clone());
        let s = app
            .state
            .data_keys
            .seal(&scope, b"test", b"alice@example.test", now)
            .await
            .unwrap();
        // Bound to its agency: another agency's key does not open it.
        sealed.push((id, s));
    }
    let other = app.state.admission.admit(sealed[1].0.clone());
    assert!(matches!(
        app.state
            .data_keys
            .open(&other, b"test", &sealed[0].1, now)
            .await,
        Err(DataKeyError::Unauthentic)
    ));

    let r = app
        .delete(&format!("/v1/agencies/{}", gone.id), &app.admin)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    // The operator with the master key (the key file) and the database: a fresh node.
    let operator = DataKeys::new(app.connect_store().await.store, ring_from(&app));
    let (gone_id, gone_sealed) = &sealed[0];
    let scope = app.state.admission.admit(gone_id.clone());
    assert!(app.state.store.data_key(&scope).await.unwrap().is_none());
    assert!(matches!(
        operator.open(&scope, b"test", gone_sealed, now).await,
        Err(DataKeyError::Shredded)
    ));
    // The deleting node dropped its copy too, and the key is never recreated.
    assert!(matches!(
        app.state
            .data_keys
            .open(&scope, b"test", gone_sealed, now)
            .await,
        Err(DataKeyError::Shredded)
    ));
    assert!(matches!(
        app.state.data_keys.seal(&scope, b"test", b"x", now).await,
        Err(DataKeyError::Shredded)
    ));
    // The other agency's data is untouched.
    let (kept_id, kept_sealed) = &sealed[1];
    let scope = app.state.admission.admit(kept_id.clone());
    let opened = operator
        .open(&scope, b"test", kept_sealed, now)
        .await
        .unwrap();
    assert_eq!(opened.as_slice(), b"alice@example.test");
}

#[tokio::test]
async fn deleting_an_agency_shreds_its_data_sqlite() {
    deleting_an_agency_shreds_its_data(false).await;
}

#[tokio::test]
async fn deleting_an_agency_shreds_its_data_postgres() {
    deleting_an_agency_shreds_its_data(true).await;
}

/// Two creators racing for an agency's first data key end with one key both use.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn data_key_creation_is_race_free() {
    let app = TestApp::with_master_file(false).await.unwrap();
    let ag = app.agency("Race").await;
    let id: AgencyId = ag.id.parse().unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let keys = DataKeys::new(app.state.store.clone(), app.state.ring.clone());
        let scope = app.state.admission.admit(id.clone());
        let now = app.clock.now();
        tasks.push(tokio::spawn(async move {
            let s = keys.seal(&scope, b"r", b"same", now).await.unwrap();
            (keys, scope, s)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.unwrap());
    }
    // Every sealed value opens under every creator's key: there is one key.
    for (keys, scope, _) in &all {
        for (_, _, s) in &all {
            assert!(keys.open(scope, b"r", s, 0).await.is_ok());
        }
    }
}

/// Personal data in audit events is stored sealed (the hash covers the ciphertext): the list
/// shows it while the agency's key exists, `[erased]` once the agency is deleted, and the
/// chain verifies before and after.
async fn personal_data_in_audit_events(pg: bool) {
    let Some(app) = TestApp::with_master_file(pg).await else {
        return;
    };
    let ag = app.agency("Pii").await;
    let req = axum::http::Request::builder()
        .method(axum::http::Method::POST)
        .uri(format!("/v1/agencies/{}/users", ag.id))
        .header("authorization", format!("Bearer {}", app.admin))
        .header("content-type", "application/json")
        .header("user-agent", "CarolsBrowser/7.1")
        .body(axum::body::Body::from(
            serde_json::json!({ "email": "carol.personal@example.test", "name": "Carol" })
                .to_string(),
        ))
        .unwrap();
    let r = app.raw(req).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Through the API: in clear.
    let list = app
        .get(
            &format!("/v1/agencies/{}/audit?action=user.create", ag.id),
            &app.admin,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let items = list.body["items"].as_array().unwrap();
    let ev = items
        .iter()
        .find(|e| e["detail"]["email"] == "carol.personal@example.test")
        .unwrap_or_else(|| panic!("no user.create with the email: {}", list.body));
    assert_eq!(ev["user_agent"], "CarolsBrowser/7.1");
    assert!(ev["detail"].get("sealed").is_none(), "{ev}");

    // In the database: sealed, nowhere in clear.
    let agency: AgencyId = ag.id.parse().unwrap();
    let scope = app.state.admission.admit(agency.clone());
    let chain = app.state.store.audit_chain(&scope, 0, 1000).await.unwrap();
    let raw = serde_json::to_string(&chain).unwrap();
    assert!(!raw.contains("carol.personal"), "email stored in clear");
    assert!(!raw.contains("CarolsBrowser"), "user agent stored in clear");
    let stored = chain.iter().find(|e| e.action == "user.create").unwrap();
    assert!(stored.detail["sealed"].is_string(), "{:?}", stored.detail);
    assert!(stored.user_agent.is_none());
    let verify = |chain: &[tessera_store::AuditEvent]| {
        tessera_store::audit::verify_chain(tessera_store::ChainHash::GENESIS, 0, chain)
    };
    assert!(verify(&chain).is_ok());
    let v = app
        .get(&format!("/v1/agencies/{}/audit/verify", ag.id), &app.admin)
        .await;
    assert_eq!(v.body["ok"], true, "{}", v.body);

    // The agency is deleted: its key is destroyed with it.
    let r = app
        .delete(&format!("/v1/agencies/{}", ag.id), &app.admin)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let after = app.state.store.audit_chain(&scope, 0, 1000).await.unwrap();
    assert!(after.len() > chain.len(), "the deletion is audited too");
    assert!(verify(&after).is_ok(), "the chain still verifies");
    // An operator with the master key and the database reads `[erased]`.
    let operator = DataKeys::new(app.connect_store().await.store, ring_from(&app));
    let mut events = after.clone();
    let mint = app.connect_store().await.mint;
    let admit = |a| mint.admit(a);
    tessera_server::secrets::personal::reveal(&operator, &scope, admit, &mut events, 0).await;
    let ev = events.iter().find(|e| e.action == "user.create").unwrap();
    assert_eq!(ev.user_agent.as_deref(), Some("[erased]"));
    assert_eq!(ev.detail["personal_data"], "erased");
    assert!(ev.detail.get("email").is_none());
    assert!(!serde_json::to_string(&events)
        .unwrap()
        .contains("carol.personal"));
}

#[tokio::test]
async fn personal_data_in_audit_events_sqlite() {
    personal_data_in_audit_events(false).await;
}

#[tokio::test]
async fn personal_data_in_audit_events_postgres() {
    personal_data_in_audit_events(true).await;
}

/// Every log line at TRACE level, into memory.
#[derive(Clone, Default)]
struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A broad run of every secret-issuing flow (API keys and their rotation, client secrets,
/// client-credentials, authorization-code and refresh flows with id tokens, introspection and
/// revocation, passwords and a failed sign-in, master-key and pepper rotation) with every log
/// line captured at TRACE level: none contains any secret issued, the master keys or the
/// stored secrets (in hex or base64).
#[tokio::test]
async fn no_secret_in_any_log_line() {
    use base64::Engine as _;
    // The process-wide subscriber (a scoped one misses events whose call sites other tests'
    // threads registered first): it captures every test's lines from here on, which is more
    // to search, never less.
    static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    let capture = CAPTURE
        .get_or_init(|| {
            let capture = Capture::default();
            let writer = capture.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
            capture
        })
        .clone();

    let app = TestApp::with_master_file(false).await.unwrap();
    let mut secrets: Vec<String> = vec![app.admin.clone(), crate::oauth::PASSWORD.to_owned()];
    let f = app
        .fixture(
            "Logs",
            "first_party",
            &["contacts.write", "contacts.readonly"],
        )
        .await;
    secrets.extend([f.secret.clone(), f.ag.key.clone()]);
    // Client credentials, then the code flow with its refresh token and id token.
    let cc = app
        .form(
            "/oauth/token",
            Some(&basic(&f.client_id, &f.secret)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "contacts.write"),
            ],
        )
        .await;
    assert_eq!(cc.status, StatusCode::OK, "{}", cc.body);
    secrets.push(cc.body["access_token"].as_str().unwrap().to_owned());
    let flow = crate::oauth::code_flow(&app, &f, "openid contacts.readonly offline_access").await;
    for k in ["access_token", "refresh_token", "id_token", "code"] {
        if let Some(v) = flow[k].as_str() {
            secrets.push(v.to_owned());
        }
    }
    let refresh = flow["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let r = app
        .form(
            "/oauth/token",
            Some(&basic(&f.client_id, &f.secret)),
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for k in ["access_token", "refresh_token"] {
        secrets.push(r.body[k].as_str().unwrap().to_owned());
    }
    // The old refresh token again (reuse detection logs), introspection and revocation.
    let _ = app
        .form(
            "/oauth/token",
            Some(&basic(&f.client_id, &f.secret)),
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    let at = r.body["access_token"].as_str().unwrap().to_owned();
    let _ = app
        .form(
            "/oauth/introspect",
            Some(&basic(&f.client_id, &f.secret)),
            &[("token", &at)],
        )
        .await;
    let _ = app
        .form(
            "/oauth/revoke",
            Some(&basic(&f.client_id, &f.secret)),
            &[("token", &at)],
        )
        .await;
    // A wrong client secret, a wrong password at sign-in.
    let wrong_secret = "tsk_thisIsAWrongClientSecretThatMustNotBeLogged";
    let _ = app
        .form(
            "/oauth/token",
            Some(&basic(&f.client_id, wrong_secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let wrong_password = "my very secret wrong password 4711";
    let _ = app
        .authorize(
            &f,
            &crate::oauth::auth_query(&f, "openid", crate::oauth::REDIRECT),
            wrong_password,
        )
        .await;
    secrets.extend([wrong_secret.to_owned(), wrong_password.to_owned()]);
    // API keys: a new one, its rotation, an invalid one.
    let k = app
        .post(
            &format!("/v1/agencies/{}/api-keys", f.ag.id),
            &app.admin,
            serde_json::json!({ "name": "logs", "scopes": ["agencies.readonly"] }),
        )
        .await;
    assert_eq!(k.status, StatusCode::CREATED, "{}", k.body);
    secrets.push(k.body["secret"].as_str().unwrap().to_owned());
    let rotated = app
        .post(
            &format!("/v1/agencies/{}/api-keys/{}/rotate", f.ag.id, k.id()),
            &app.admin,
            serde_json::json!({}),
        )
        .await;
    if let Some(s) = rotated.body["secret"].as_str() {
        secrets.push(s.to_owned());
    }
    let _ = app
        .get(
            "/v1/agencies",
            "tsk_notARealKeyButLooksLikeOneXXXXXXXXXXXXXXXXXXXXXXX",
        )
        .await;
    // Master and pepper rotation.
    let file = app.dir().join("master.key");
    write_master_file(&file, &[NEW, OLD]);
    let cli = app.connect_store().await;
    let admission = tessera_server::gate::admission::Admission::new(cli.mint);
    rotate::rotate_master(
        cli.store.as_ref(),
        &ring_from(&app),
        &admission,
        app.clock.now(),
        Duration::from_millis(1),
    )
    .await
    .unwrap();
    rotate::rotate_pepper(
        cli.store.as_ref(),
        &ring_from(&app),
        &admission,
        app.clock.now(),
        Duration::ZERO,
        false,
    )
    .await
    .unwrap();
    app.state
        .pepper
        .reload(app.state.store.as_ref(), &app.state.ring)
        .await
        .unwrap();
    assert!(key_check(&app, &f).await.is_ok());

    // Key material: the master keys and the stored secrets, in hex and base64.
    let old = MasterKey::from_bytes(OLD);
    let mut material: Vec<Vec<u8>> = vec![OLD.to_vec(), NEW.to_vec()];
    material.push(old.derive_pepper_key(1).expose().to_vec());
    material.push(
        old.derive_key(tessera_token::SIGNING_KEYS_PURPOSE)
            .expose()
            .to_vec(),
    );
    material.push(old.derive_key("cookies/v1").expose().to_vec());
    for m in &material {
        secrets.push(hex(m));
        secrets.push(base64::engine::general_purpose::STANDARD_NO_PAD.encode(m));
        secrets.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(m));
    }

    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert!(
        logs.lines().count() > 20,
        "too few log lines captured:\n{logs}"
    );
    // Lines this run must have written: the capture works.
    for expected in ["master keys reloaded", "peppers reloaded"] {
        assert!(logs.contains(expected), "no `{expected}` line captured");
    }
    for s in &secrets {
        assert!(!s.is_empty());
        // A JWT is searched by its signature too (a log of its payload alone is fine).
        let probe = s.rsplit('.').next().unwrap_or(s);
        assert!(
            !logs.contains(s.as_str()) && !logs.contains(probe),
            "a secret appears in the logs: {}…",
            &s[..s.len().min(12)]
        );
    }
}
