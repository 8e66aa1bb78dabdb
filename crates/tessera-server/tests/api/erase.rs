//! Erasing one person (issue 12, crypto-shredding): events about user A and user B; erasing A
//! destroys A's key only, so A's personal fields read `[erased]` (through the API and for an
//! operator holding the master key and the database), B's stay readable, the chain still
//! verifies, no key is ever made for A again (later events about A are stored erased), another
//! agency gets a 404 and a caller without `users.erase` a 403.

use axum::http::StatusCode;
use serde_json::{json, Value};
use tessera_core::AgencyId;
use tessera_server::secrets::{DataKeyError, DataKeys, MasterRing};
use tessera_token::MasterKeySource;

use crate::harness::{missing, TestApp};

fn operator(app: &TestApp, store: std::sync::Arc<dyn tessera_store::Store>) -> DataKeys {
    let (ring, _) =
        MasterRing::from_source(MasterKeySource::File(app.dir().join("master.key"))).unwrap();
    DataKeys::new(store, std::sync::Arc::new(ring))
}

/// Creates a user with a distinctive email and user agent; returns its id.
async fn user(app: &TestApp, agy: &str, who: &str) -> String {
    let req = axum::http::Request::builder()
        .method(axum::http::Method::POST)
        .uri(format!("/v1/agencies/{agy}/users"))
        .header("authorization", format!("Bearer {}", app.admin))
        .header("content-type", "application/json")
        .header("user-agent", format!("{who}Browser/1.0"))
        .body(axum::body::Body::from(
            json!({ "email": format!("{who}.erase@example.test"), "name": format!("{who} Person") })
                .to_string(),
        ))
        .unwrap();
    let r = app.raw(req).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// The agency's events with `action` about `target`, through the API.
async fn events(app: &TestApp, agy: &str, action: &str, target: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/v1/agencies/{agy}/audit?action={action}&limit=200"),
            &app.admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == target)
        .cloned()
        .collect()
}

fn assert_erased(ev: &Value) {
    assert_eq!(ev["user_agent"], "[erased]", "{ev}");
    assert_eq!(ev["detail"]["personal_data"], "erased", "{ev}");
    assert!(ev["detail"].get("email").is_none(), "{ev}");
    assert!(ev["detail"].get("name").is_none(), "{ev}");
}

async fn erasing_one_person(pg: bool) {
    let Some(app) = TestApp::with_master_file(pg).await else {
        return;
    };
    let ag = app.agency("Erase").await;
    let agy = ag.id.clone();
    let a = user(&app, &agy, "alice").await;
    let b = user(&app, &agy, "bob").await;
    // A second event about each (a name change: personal, sealed under the person's key).
    for (u, name) in [(&a, "Alice Renamed"), (&b, "Bob Renamed")] {
        let r = app
            .patch(
                &format!("/v1/agencies/{agy}/users/{u}"),
                &app.admin,
                json!({ "name": name }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }

    // Readable before; stored sealed under each person's key, named in the sealed text.
    let ev = &events(&app, &agy, "user.create", &a).await[0];
    assert_eq!(ev["detail"]["email"], "alice.erase@example.test", "{ev}");
    assert_eq!(ev["user_agent"], "aliceBrowser/1.0", "{ev}");
    let agency: AgencyId = agy.parse().unwrap();
    let scope = app.state.admission.admit(agency.clone());
    let chain = app.state.store.audit_chain(&scope, 0, 1000).await.unwrap();
    let raw = serde_json::to_string(&chain).unwrap();
    assert!(!raw.contains("alice.erase") && !raw.contains("aliceBrowser"));
    for u in [&a, &b] {
        let prefix = format!("{agy}:{u}.");
        let about: Vec<_> = chain
            .iter()
            .filter(|e| e.target.as_deref() == Some(u.as_str()))
            .collect();
        assert_eq!(about.len(), 2, "create and update about {u}");
        for e in about {
            let sealed = e.detail["sealed"].as_str().unwrap_or_default();
            assert!(sealed.starts_with(&prefix), "{u}: {:?}", e.detail);
        }
    }

    // A caller without `users.erase` (the agency's admin key: users.write, audit.readonly…).
    let r = app
        .post(
            &format!("/v1/agencies/{agy}/users/{a}/erase"),
            &ag.key,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // Another agency cannot erase A: A is not its user (404, as for a missing id), and its own
    // key cannot reach A's agency.
    let other = app.agency("Other").await;
    let r = app
        .post(
            &format!("/v1/agencies/{}/users/{a}/erase", other.id),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = app
        .post(
            &format!("/v1/agencies/{agy}/users/{a}/erase"),
            &other.key,
            json!({}),
        )
        .await;
    assert!(
        matches!(r.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
        "{} {}",
        r.status,
        r.body
    );
    let r = app
        .post(
            &format!("/v1/agencies/{agy}/users/{}/erase", missing("usr")),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = app
        .post(
            &format!("/v1/agencies/{agy}/users/nope/erase"),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // None of that touched A.
    let ev = &events(&app, &agy, "user.create", &a).await[0];
    assert_eq!(ev["detail"]["email"], "alice.erase@example.test", "{ev}");

    // Erase A; again (idempotent).
    let r = app
        .post(
            &format!("/v1/agencies/{agy}/users/{a}/erase"),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["erased"], true);
    assert_eq!(r.body["key_destroyed"], true);
    let r = app
        .post(
            &format!("/v1/agencies/{agy}/users/{a}/erase"),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["key_destroyed"], false);

    // Through the API: A's fields `[erased]`, B's readable.
    for action in ["user.create", "user.update"] {
        for ev in events(&app, &agy, action, &a).await {
            assert_erased(&ev);
        }
    }
    let ev = &events(&app, &agy, "user.create", &b).await[0];
    assert_eq!(ev["detail"]["email"], "bob.erase@example.test", "{ev}");
    assert_eq!(ev["user_agent"], "bobBrowser/1.0", "{ev}");
    let ev = &events(&app, &agy, "user.update", &b).await[0];
    assert_eq!(ev["detail"]["name"], "Bob Renamed", "{ev}");
    // The erasure is audited, with no personal data.
    let erased = events(&app, &agy, "user.erase", &a).await;
    assert_eq!(erased.len(), 2, "both calls are recorded");
    assert!(!serde_json::to_string(&erased).unwrap().contains("alice"));

    // The chain still verifies.
    let v = app
        .get(&format!("/v1/agencies/{agy}/audit/verify"), &app.admin)
        .await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.body);
    assert_eq!(v.body["ok"], true, "{}", v.body);
    let after = app.state.store.audit_chain(&scope, 0, 1000).await.unwrap();
    assert!(
        tessera_store::audit::verify_chain(tessera_store::ChainHash::GENESIS, 0, &after).is_ok()
    );

    // An operator with the master key and the database: A's key is gone, B's opens.
    let connected = app.connect_store().await;
    let op = operator(&app, connected.store.clone());
    assert!(matches!(
        op.person_key(&scope, &a, false, 0).await,
        Err(DataKeyError::Shredded)
    ));
    assert!(op.person_key(&scope, &b, false, 0).await.is_ok());
    let mut revealed = after.clone();
    let mint = connected.mint;
    tessera_server::secrets::personal::reveal(&op, &scope, |x| mint.admit(x), &mut revealed, 0)
        .await;
    let text = serde_json::to_string(&revealed).unwrap();
    assert!(!text.contains("alice.erase") && !text.contains("aliceBrowser"));
    assert!(text.contains("bob.erase@example.test"));

    // Erased means erased: no key is made again, even by a fresh node asked to create one, and
    // a later event about A (a name change) is stored erased.
    assert!(matches!(
        op.person_key(&scope, &a, true, 0).await,
        Err(DataKeyError::Shredded)
    ));
    let r = app
        .patch(
            &format!("/v1/agencies/{agy}/users/{a}"),
            &app.admin,
            json!({ "name": "Alice Later" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let chain = app.state.store.audit_chain(&scope, 0, 1000).await.unwrap();
    let later = chain
        .iter()
        .rev()
        .find(|e| e.action == "user.update" && e.target.as_deref() == Some(a.as_str()))
        .unwrap();
    assert_eq!(
        later.detail["personal_data"], "erased",
        "{:?}",
        later.detail
    );
    assert!(later.detail.get("sealed").is_none());
    assert!(!serde_json::to_string(&chain)
        .unwrap()
        .contains("Alice Later"));
    assert!(matches!(
        app.state.store.person_key(&scope, &a).await,
        Ok(Some(None))
    ));

    // A deleted user can still be erased (their key is the agency's); B is untouched by all.
    let c = user(&app, &agy, "carol").await;
    let r = app
        .delete(&format!("/v1/agencies/{agy}/users/{c}"), &app.admin)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let ev = &events(&app, &agy, "user.create", &c).await[0];
    assert_eq!(ev["detail"]["email"], "carol.erase@example.test", "{ev}");
    let r = app
        .post(
            &format!("/v1/agencies/{agy}/users/{c}/erase"),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["key_destroyed"], true);
    assert_erased(&events(&app, &agy, "user.create", &c).await[0]);
    let ev = &events(&app, &agy, "user.create", &b).await[0];
    assert_eq!(ev["detail"]["email"], "bob.erase@example.test", "{ev}");
}

#[tokio::test]
async fn erasing_one_person_sqlite() {
    erasing_one_person(false).await;
}

#[tokio::test]
async fn erasing_one_person_postgres() {
    erasing_one_person(true).await;
}

/// Two creators racing for a person's first key end with one key both use.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn person_key_creation_is_race_free() {
    let app = TestApp::with_master_file(false).await.unwrap();
    let ag = app.agency("PersonRace").await;
    let id: AgencyId = ag.id.parse().unwrap();
    let subject = ag.user.clone();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let keys = operator(&app, app.state.store.clone());
        let scope = app.state.admission.admit(id.clone());
        let subject = subject.clone();
        tasks.push(tokio::spawn(async move {
            keys.person_key(&scope, &subject, true, 0).await.unwrap()
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.unwrap());
    }
    assert!(all.windows(2).all(|w| w[0].expose() == w[1].expose()));
}
