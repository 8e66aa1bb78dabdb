//! Unit tests of the guard against a fake Tessera (JWKS, catalog, feed, introspection, check)
//! served in-process: verification edge cases, the unknown-`kid` refetch throttle, every kind
//! of revocation, the resync on 410, API key caches, and the router's answers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use tessera_token::{encode_access_token, AccessClaims, Algorithm, SigningKey};
use tower::ServiceExt as _;

use crate::*;

const ISS: &str = "http://tessera.test";
const AUD: &str = "https://contacts.test";

#[derive(Default)]
struct Fake {
    keys: Vec<Value>,
    max_age: Option<u64>,
    jwks_hits: u32,
    items: Vec<Value>,
    gone_once: bool,
    feed_down: bool,
    introspect: HashMap<String, Value>,
    introspect_hits: u32,
    allowed: bool,
    revision: i64,
    check_hits: u32,
    notify: Arc<tokio::sync::Notify>,
}

type Shared = Arc<Mutex<Fake>>;

async fn jwks(State(f): State<Shared>) -> impl IntoResponse {
    let mut f = f.lock().unwrap();
    f.jwks_hits += 1;
    let cc = f
        .max_age
        .map(|a| format!("public, max-age={a}"))
        .unwrap_or_default();
    ([(header::CACHE_CONTROL, cc)], Json(json!({"keys": f.keys})))
}

async fn feed(
    State(f): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> axum::response::Response {
    let since: usize = q.get("since").and_then(|s| s.parse().ok()).unwrap_or(0);
    let wait: u64 = q.get("wait").and_then(|s| s.parse().ok()).unwrap_or(0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let notify = f.lock().unwrap().notify.clone();
    loop {
        // Registered before the state is read, so no push between the two is missed.
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut f = f.lock().unwrap();
            if f.feed_down {
                return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({}))).into_response();
            }
            if q.contains_key("since") && f.gone_once {
                f.gone_once = false;
                return (
                    StatusCode::GONE,
                    Json(json!({"code": "cursor_expired", "status": 410})),
                )
                    .into_response();
            }
            if f.items.len() > since || tokio::time::Instant::now() >= deadline {
                let items: Vec<Value> = f.items.iter().skip(since).cloned().collect();
                let next = f.items.len().max(since).to_string();
                return Json(json!({"items": items, "next": next, "retention_seconds": 960}))
                    .into_response();
            }
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}

async fn introspect(State(f): State<Shared>, body: String) -> impl IntoResponse {
    let mut f = f.lock().unwrap();
    f.introspect_hits += 1;
    let token = body.strip_prefix("token=").unwrap_or_default().to_owned();
    Json(
        f.introspect
            .get(&token)
            .cloned()
            .unwrap_or(json!({"active": false})),
    )
}

async fn check(State(f): State<Shared>, Json(_): Json<Value>) -> impl IntoResponse {
    let mut f = f.lock().unwrap();
    f.check_hits += 1;
    Json(json!({"allowed": f.allowed, "revision": f.revision, "reason": "x"}))
}

fn catalog() -> Value {
    json!({
        "permissions": [{"name": "contacts.read", "resource": "contact"},
                        {"name": "contacts.write", "resource": "contact"}],
        "scopes": [{"name": "contacts.readonly", "permissions": ["contacts.read"]},
                   {"name": "contacts.write", "permissions": ["contacts.read", "contacts.write"]}],
    })
}

struct Env {
    fake: Shared,
    key: SigningKey,
    guard: Guard,
}

fn signing_key() -> SigningKey {
    SigningKey::generate(Algorithm::EdDsa, &mut rand::rngs::OsRng)
}

async fn env_with(tweak: impl FnOnce(GuardConfig) -> GuardConfig) -> Env {
    let key = signing_key();
    let fake: Shared = Arc::new(Mutex::new(Fake {
        keys: vec![key.verification_key().to_jwk()],
        allowed: true,
        revision: 1,
        ..Fake::default()
    }));
    let app = Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/revocations", get(feed))
        .route("/oauth/introspect", post(introspect))
        .route("/v1/check", post(check))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config = GuardConfig::new(ISS, AUD)
        .with_tessera_url(url)
        .with_credential("tsk_guard")
        .with_catalog(catalog());
    config.feed_wait_secs = 1;
    let guard = Guard::start(tweak(config)).await.unwrap();
    for _ in 0..100 {
        if guard.is_synced() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Env { fake, key, guard }
}

async fn env() -> Env {
    env_with(|c| c).await
}

fn now() -> i64 {
    crate::guard::unix_now()
}

fn claims() -> AccessClaims {
    let mut extra = Map::new();
    extra.insert("sid".into(), json!("grt_1"));
    extra.insert("ins".into(), json!("ins_1"));
    AccessClaims {
        iss: ISS.into(),
        sub: "usr_ann".into(),
        aud: vec![AUD.into()],
        exp: now() + 300,
        iat: now(),
        nbf: now(),
        jti: format!("jti_{}", rand::random::<u64>()),
        client_id: "app_1".into(),
        scope: "contacts.readonly".into(),
        tenant: Tenant {
            agency: "agy_a".into(),
            account: Some("acc_1".into()),
        },
        act: Some(Actor {
            sub: "usr_support".into(),
            act: None,
        }),
        extra,
    }
}

fn token(env: &Env, edit: impl FnOnce(&mut AccessClaims)) -> String {
    let mut c = claims();
    edit(&mut c);
    encode_access_token(&c, &env.key)
}

async fn push(env: &Env, kind: &str, id: &str, state: &str) {
    {
        let mut f = env.fake.lock().unwrap();
        let n = f.items.len();
        f.items.push(
            json!({"cursor": (n + 1).to_string(), "kind": kind, "id": id,
            "agency": "agy_a", "state": state, "at": now(), "expires_at": now() + 960}),
        );
        f.notify.notify_waiters();
    }
    // The guard long-polls with wait=1; the fake answers at once, so one round is quick.
    let want = env.fake.lock().unwrap().items.len().to_string();
    for _ in 0..300 {
        if env.guard.cursor().as_deref() == Some(want.as_str()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the guard did not read the feed");
}

fn refused(r: Result<Principal, Refusal>) -> String {
    match r {
        Err(Refusal::Invalid(why)) => why,
        other => panic!("expected invalid_token, got {other:?}"),
    }
}

#[tokio::test]
async fn a_valid_token_yields_its_principal_and_is_cached() {
    let env = env().await;
    let t = token(&env, |_| {});
    let p = env.guard.authenticate(&t).await.unwrap();
    assert_eq!(p.subject(), "usr_ann");
    assert_eq!(p.agency(), "agy_a");
    assert_eq!(p.account(), Some("acc_1"));
    assert_eq!(p.installation(), Some("ins_1"));
    assert_eq!(p.session(), Some("grt_1"));
    assert_eq!(p.client_id(), Some("app_1"));
    assert_eq!(p.actors(), ["usr_support"]);
    assert_eq!(p.kind(), CredentialKind::AccessToken);
    assert!(p.has_permission("contacts.read") && !p.has_permission("contacts.write"));
    assert!(env.guard.cached(&t).is_some());
    // A token with the same signature but another payload is not a cache hit.
    let (_, sig) = t.rsplit_once('.').unwrap();
    let forged = format!(
        "{}.{sig}",
        token(&env, |c| c.sub = "usr_eve".into())
            .rsplit_once('.')
            .unwrap()
            .0
    );
    assert!(env.guard.cached(&forged).is_none());
    assert_eq!(
        refused(env.guard.authenticate(&forged).await),
        "token signature is invalid"
    );
}

#[tokio::test]
async fn claims_are_checked() {
    let env = env().await;
    let cases: Vec<(Box<dyn FnOnce(&mut AccessClaims)>, &str)> = vec![
        (Box::new(|c| c.aud = vec![ISS.into()]), "audience"),
        (
            Box::new(|c| c.aud = vec!["https://other.test".into()]),
            "audience",
        ),
        (Box::new(|c| c.iss = "http://evil.test".into()), "issuer"),
        (Box::new(|c| c.exp = now() - 31), "expired"),
        (Box::new(|c| c.nbf = now() + 120), "not valid yet"),
    ];
    for (edit, want) in cases {
        let why = refused(env.guard.authenticate(&token(&env, edit)).await);
        assert!(why.contains(want), "{why} should mention {want}");
    }
    // Within the leeway (30 s) an expired token still passes.
    assert!(env
        .guard
        .authenticate(&token(&env, |c| c.exp = now() - 5))
        .await
        .is_ok());
    // An id token (typ JWT) is not an access token.
    let id = tessera_token::encode_id_token(
        &tessera_token::IdClaims {
            iss: ISS.into(),
            sub: "usr_ann".into(),
            aud: vec![AUD.into()],
            exp: now() + 300,
            iat: now(),
            auth_time: None,
            nonce: None,
            azp: None,
            extra: Map::new(),
        },
        &env.key,
    );
    assert!(refused(env.guard.authenticate(&id).await).contains("type"));
}

#[tokio::test]
async fn only_the_keys_own_algorithm_verifies() {
    let env = env().await;
    let t = token(&env, |_| {});
    let (_, rest) = t.split_once('.').unwrap();
    for alg in ["HS256", "ES256", "RS256", "none"] {
        let header = URL_SAFE_NO_PAD
            .encode(json!({"alg": alg, "typ": "at+jwt", "kid": env.key.kid()}).to_string());
        let why = refused(env.guard.authenticate(&format!("{header}.{rest}")).await);
        assert!(
            why.contains("algorithm") || why.contains("unsigned"),
            "{alg}: {why}"
        );
    }
    assert!(refused(env.guard.authenticate("garbage").await).contains("malformed"));
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_at_most_once_per_interval() {
    let env = env_with(|c| c.with_unknown_kid_refetch(Duration::from_millis(400))).await;
    let fetches = env.guard.jwks_fetches();
    let other = signing_key();
    let t = encode_access_token(&claims(), &other);
    assert!(refused(env.guard.authenticate(&t).await).contains("key id"));
    assert_eq!(env.guard.jwks_fetches(), fetches + 1);
    // The key is published now, but within the interval there is no second refetch.
    env.fake
        .lock()
        .unwrap()
        .keys
        .push(other.verification_key().to_jwk());
    for _ in 0..5 {
        assert!(env.guard.authenticate(&t).await.is_err());
    }
    assert_eq!(env.guard.jwks_fetches(), fetches + 1);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(env.guard.authenticate(&t).await.is_ok());
    assert_eq!(env.guard.jwks_fetches(), fetches + 2);
}

#[tokio::test]
async fn cache_control_max_age_is_honoured() {
    let env = env_with(|mut c| {
        c.jwks_min_ttl = Duration::ZERO;
        c
    })
    .await;
    // The first answer had no max-age: the default (300 s) applies; no refetch soon.
    let hits = env.fake.lock().unwrap().jwks_hits;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.fake.lock().unwrap().jwks_hits, hits);

    let env = {
        let key = signing_key();
        let _ = key;
        env_with(|mut c| {
            c.jwks_min_ttl = Duration::from_millis(0);
            c
        })
        .await
    };
    env.fake.lock().unwrap().max_age = Some(1);
    env.guard.refresh_jwks().await.unwrap();
    let hits = env.fake.lock().unwrap().jwks_hits;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(
        env.fake.lock().unwrap().jwks_hits > hits,
        "max-age=1 must refetch"
    );
}

#[tokio::test]
async fn every_kind_of_revocation_refuses_matching_tokens() {
    let env = env().await;
    let cases: Vec<(&str, &str, Box<dyn Fn(&mut AccessClaims)>)> = vec![
        (
            "token",
            "jti_revoked",
            Box::new(|c| c.jti = "jti_revoked".into()),
        ),
        (
            "token_family",
            "grt_x",
            Box::new(|c| {
                c.extra.insert("sid".into(), json!("grt_x"));
            }),
        ),
        (
            "installation",
            "ins_x",
            Box::new(|c| {
                c.extra.insert("ins".into(), json!("ins_x"));
            }),
        ),
        (
            "agency",
            "agy_x",
            Box::new(|c| c.tenant.agency = "agy_x".into()),
        ),
        (
            "account",
            "acc_x",
            Box::new(|c| c.tenant.account = Some("acc_x".into())),
        ),
        ("user", "usr_x", Box::new(|c| c.sub = "usr_x".into())),
        (
            "user",
            "usr_actor",
            Box::new(|c| {
                c.act = Some(Actor {
                    sub: "usr_y".into(),
                    act: Some(Box::new(Actor {
                        sub: "usr_actor".into(),
                        act: None,
                    })),
                })
            }),
        ),
        ("app", "app_x", Box::new(|c| c.client_id = "app_x".into())),
    ];
    for (kind, id, edit) in cases {
        let t = token(&env, &*edit);
        // Verified and cached first, so the revocation must reach the cached answer.
        env.guard.authenticate(&t).await.unwrap();
        push(
            &env,
            kind,
            id,
            if kind == "user" {
                "disabled"
            } else {
                "revoked"
            },
        )
        .await;
        refused(env.guard.authenticate(&t).await);
        // A fresh token of the same kind is refused too, before it is cached.
        refused(env.guard.authenticate(&token(&env, &*edit)).await);
        // Other tokens are untouched.
        env.guard.authenticate(&token(&env, |_| {})).await.unwrap();
    }
    // Unknown kinds are ignored; `active` lifts a suspension.
    push(&env, "shiny_new_kind", "x", "revoked").await;
    let t = token(&env, |c| c.tenant.agency = "agy_x".into());
    refused(env.guard.authenticate(&t).await);
    push(&env, "agency", "agy_x", "active").await;
    env.guard.authenticate(&t).await.unwrap();
}

#[tokio::test]
async fn a_410_resynchronises_from_the_start_of_the_feed() {
    let env = env().await;
    push(&env, "user", "usr_x", "disabled").await;
    {
        let mut f = env.fake.lock().unwrap();
        // The feed lost everything (retention); the revocation of usr_x expired out of it
        // and a new one is in it.
        f.gone_once = true;
        f.items.clear();
        f.items.push(
            json!({"cursor": "1", "kind": "user", "id": "usr_z", "agency": "agy_a",
            "state": "disabled", "at": now(), "expires_at": now() + 960}),
        );
        f.items.push(
            json!({"cursor": "2", "kind": "token", "id": "j", "agency": "agy_a",
            "state": "revoked", "at": now(), "expires_at": now() + 960}),
        );
        f.notify.notify_waiters();
    }
    for _ in 0..300 {
        if env.guard.resyncs() == 1 && env.guard.cursor().as_deref() == Some("2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(env.guard.resyncs(), 1);
    refused(
        env.guard
            .authenticate(&token(&env, |c| c.sub = "usr_z".into()))
            .await,
    );
    // The state was replaced: usr_x is no longer in it.
    env.guard
        .authenticate(&token(&env, |c| c.sub = "usr_x".into()))
        .await
        .unwrap();
}

#[tokio::test]
async fn no_jwt_is_accepted_before_the_first_read_of_the_feed() {
    let key = signing_key();
    let _ = key;
    let env = env_with(|c| c).await;
    env.fake.lock().unwrap().feed_down = true;
    let cold = Guard::start(env.guard.config().clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!cold.is_synced());
    let t = token(&env, |_| {});
    assert_eq!(cold.authenticate(&t).await.unwrap_err(), Refusal::NotReady);
    assert_eq!(Refusal::NotReady.status(), StatusCode::SERVICE_UNAVAILABLE);
    {
        let mut f = env.fake.lock().unwrap();
        f.feed_down = false;
        f.notify.notify_waiters();
    }
    for _ in 0..300 {
        if cold.is_synced() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cold.authenticate(&t).await.unwrap();
}

#[tokio::test]
async fn api_keys_are_introspected_with_short_caches() {
    let env = env().await;
    let good = tessera_token::generate_api_key_os().expose().to_owned();
    let bad = tessera_token::generate_api_key_os().expose().to_owned();
    env.fake.lock().unwrap().introspect.insert(
        good.clone(),
        json!({"active": true, "token_type": "api_key", "sub": "key_1",
               "scope": "contacts.readonly", "tenant": {"agency": "agy_a", "account": null}}),
    );
    let p = env.guard.authenticate(&good).await.unwrap();
    assert_eq!(p.subject(), "key_1");
    assert_eq!(p.kind(), CredentialKind::ApiKey);
    assert!(p.has_permission("contacts.read"));
    env.guard.authenticate(&good).await.unwrap();
    assert!(env.guard.authenticate(&bad).await.is_err());
    assert!(env.guard.authenticate(&bad).await.is_err());
    assert_eq!(
        env.fake.lock().unwrap().introspect_hits,
        2,
        "both answers cached"
    );
    // A malformed key (bad checksum) never reaches Tessera.
    assert_eq!(
        env.guard.authenticate("tsk_nope").await.unwrap_err(),
        Refusal::Invalid("api key is malformed".into())
    );
    assert_eq!(env.fake.lock().unwrap().introspect_hits, 2);
    // An `api_key` item evicts the key's cached answer.
    env.fake.lock().unwrap().introspect.remove(&good);
    push(&env, "api_key", "key_1", "revoked").await;
    assert!(env.guard.authenticate(&good).await.is_err());
    assert_eq!(env.fake.lock().unwrap().introspect_hits, 3);
}

async fn contacts(p: Principal, t: Tenancy) -> String {
    format!("{} {}", p.subject(), t.account.unwrap_or_default())
}

async fn call(
    app: &GuardedApp,
    method: &str,
    uri: &str,
    bearer: Option<&str>,
) -> axum::response::Response {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(b) = bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {b}"));
    }
    app.clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_router_answers_per_rfc_6750_and_problem_json() {
    let env = env().await;
    let app = GuardedRouter::new(&env.guard)
        .get(
            "/accounts/{account}/contacts",
            Rule::permission("contacts.read").account_from("account"),
            contacts,
        )
        .post(
            "/accounts/{account}/contacts",
            Rule::permission("contacts.write").account_from("account"),
            contacts,
        )
        .get(
            "/accounts/{account}/contacts/{id}",
            Rule::permission("contacts.read")
                .account_from("account")
                .resource_from("id")
                .with_check(),
            contacts,
        )
        .public_get("/healthz", || async { "ok" })
        .build()
        .unwrap();
    assert_eq!(app.routes().len(), 4);
    let t = token(&env, |_| {});

    let r = call(&app, "GET", "/accounts/acc_1/contacts", None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()[header::WWW_AUTHENTICATE],
        "Bearer realm=\"tessera\""
    );

    let r = call(&app, "GET", "/accounts/acc_1/contacts", Some("nope")).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));

    let r = call(&app, "GET", "/accounts/acc_1/contacts", Some(&t)).await;
    assert_eq!(r.status(), 200);

    let r = call(&app, "POST", "/accounts/acc_1/contacts", Some(&t)).await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert_eq!(
        r.headers()[header::WWW_AUTHENTICATE],
        "Bearer realm=\"tessera\", error=\"insufficient_scope\", scope=\"contacts.write\""
    );

    let r = call(&app, "GET", "/accounts/acc_2/contacts", Some(&t)).await;
    assert_eq!(r.status(), 404);

    assert_eq!(call(&app, "GET", "/healthz", None).await.status(), 200);

    // ABAC: asked once, then cached at the answer's revision; a newer revision is re-asked.
    assert_eq!(
        call(&app, "GET", "/accounts/acc_1/contacts/c1", Some(&t))
            .await
            .status(),
        200
    );
    assert_eq!(
        call(&app, "GET", "/accounts/acc_1/contacts/c1", Some(&t))
            .await
            .status(),
        200
    );
    assert_eq!(env.fake.lock().unwrap().check_hits, 1);
    {
        let mut f = env.fake.lock().unwrap();
        f.allowed = false;
        f.revision = 2;
    }
    // The feed's cursor (a revision) moves past the cached answer's.
    push(&env, "shiny", "x", "x").await;
    push(&env, "shiny", "y", "x").await;
    let r = call(&app, "GET", "/accounts/acc_1/contacts/c1", Some(&t)).await;
    assert_eq!(r.status(), 403);
    assert_eq!(env.fake.lock().unwrap().check_hits, 2);
}

#[tokio::test]
async fn bad_declarations_stop_the_service() {
    let env = env().await;
    let err = GuardedRouter::new(&env.guard)
        .get("/a", Rule::permission("contacts.nope"), contacts)
        .get(
            "/b",
            Rule::permission("contacts.read").account_from("account"),
            contacts,
        )
        .get("/c", Rule::permission("contacts.read"), contacts)
        .get("/c", Rule::permission("contacts.read"), contacts)
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("`contacts.nope` is not a permission"), "{err}");
    assert!(err.contains("`{account}`"), "{err}");
    assert!(err.contains("declared twice"), "{err}");
}

#[tokio::test]
async fn a_feed_that_cannot_be_read_for_too_long_fails_closed_again() {
    let env = env_with(|mut c| {
        c.feed_max_staleness = Some(Duration::from_millis(1500));
        c
    })
    .await;
    let t = token(&env, |_| {});
    env.guard.authenticate(&t).await.unwrap();
    {
        let mut f = env.fake.lock().unwrap();
        f.feed_down = true;
        f.notify.notify_waiters();
    }
    // The long poll (wait=1) came back at most a second ago; within 1.5 s more it is stale.
    tokio::time::sleep(Duration::from_millis(2700)).await;
    assert_eq!(
        env.guard.authenticate(&t).await.unwrap_err(),
        Refusal::NotReady
    );
    {
        let mut f = env.fake.lock().unwrap();
        f.feed_down = false;
    }
    for _ in 0..300 {
        if env.guard.is_synced() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    env.guard.authenticate(&t).await.unwrap();
}
