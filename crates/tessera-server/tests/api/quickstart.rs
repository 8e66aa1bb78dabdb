use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::harness::TestApp;

#[tokio::test]
async fn the_readme_quick_start_works() {
    let t = TestApp::sqlite().await;
    assert!(t.admin.starts_with("tsk_") && t.admin.len() == 42);
    let agy = t
        .post("/v1/agencies", &t.admin, json!({ "name": "Acme" }))
        .await;
    assert_eq!(agy.status, StatusCode::CREATED);
    let a = agy.id();
    assert!(a.starts_with("agy_"));
    let acc = t
        .post(
            &format!("/v1/agencies/{a}/accounts"),
            &t.admin,
            json!({ "name": "Joe's Pizza" }),
        )
        .await;
    assert_eq!(acc.status, StatusCode::CREATED);
    let usr = t.post(&format!("/v1/agencies/{a}/users"), &t.admin, json!({ "email": "Ann@Acme.test", "name": "Ann", "password": "a long enough password" })).await;
    assert_eq!(usr.status, StatusCode::CREATED, "{}", usr.body);
    assert_eq!(usr.body["has_password"], true);
    assert!(usr.body.get("password").is_none() && usr.body.get("password_hash").is_none());
    let key = t
        .post(
            &format!("/v1/agencies/{a}/api-keys"),
            &t.admin,
            json!({ "name": "ci", "scopes": ["accounts.readonly"] }),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    let secret = key.body["secret"].as_str().unwrap().to_owned();
    let list = t.get(&format!("/v1/agencies/{a}/accounts"), &secret).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["items"][0]["id"], acc.body["id"]);
    assert!(list.body["next_cursor"].is_null());
    // The key's scope is read-only.
    let w = t
        .post(
            &format!("/v1/agencies/{a}/accounts"),
            &secret,
            json!({ "name": "x" }),
        )
        .await;
    assert_eq!(w.status, StatusCode::FORBIDDEN);
    assert_eq!(w.code(), "forbidden");
    assert_eq!(w.body["missing_permissions"], json!(["accounts.create"]));
    assert_eq!(w.headers["content-type"], "application/problem+json");
    // Lists never show secrets.
    let keys = t.get(&format!("/v1/agencies/{a}/api-keys"), &t.admin).await;
    assert!(!keys.body.to_string().contains("tsk_"));
    assert!(keys.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k.get("secret").is_none()));
}

#[tokio::test]
async fn crud_of_accounts_and_users() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Crud").await;
    let base = format!("/v1/agencies/{}", a.id);
    let r = t
        .patch(
            &format!("{base}/accounts/{}", a.acc),
            &a.key,
            json!({ "name": "Renamed" }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["name"].as_str()),
        (StatusCode::OK, Some("Renamed"))
    );
    assert_eq!(
        t.get(&format!("{base}/accounts/{}", a.acc), &a.key)
            .await
            .body["name"],
        "Renamed"
    );
    let r = t
        .patch(
            &format!("{base}/users/{}", a.user),
            &a.key,
            json!({ "status": "disabled", "name": "Olga" }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].as_str(), r.body["name"].as_str()),
        (StatusCode::OK, Some("disabled"), Some("Olga"))
    );
    assert_eq!(
        t.delete(&format!("{base}/users/{}", a.user), &a.key)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.get(&format!("{base}/users/{}", a.user), &a.key)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.delete(&format!("{base}/accounts/{}", a.acc), &a.key)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.get(&format!("{base}/accounts/{}", a.acc), &a.key)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.delete(&format!("{base}/accounts/{}", a.acc), &a.key)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Agency admins read and rename their own agency; only the platform deletes it.
    assert_eq!(t.get(&base, &a.key).await.body["id"], a.id.as_str());
    assert_eq!(t.delete(&base, &a.key).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        t.delete(&base, &t.admin).await.status,
        StatusCode::NO_CONTENT
    );
    // A deleted agency's keys stop working at once.
    assert_eq!(
        t.get(&format!("{base}/accounts"), &a.key).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(t.get(&base, &t.admin).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pagination_walks_every_item_once() {
    let t = TestApp::sqlite().await;
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(
            t.post(
                "/v1/agencies",
                &t.admin,
                json!({ "name": format!("Agency {i}") }),
            )
            .await
            .id(),
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/agencies?limit=3&cursor={c}"),
            None => "/v1/agencies?limit=3".to_owned(),
        };
        let page = t.get(&path, &t.admin).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|a| a["id"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    // Ids are time-ordered; these share one (manual) millisecond, so compare in id order.
    made.sort();
    assert_eq!(
        seen, made,
        "the platform tenant is not listed, every agency once, in id order"
    );
    let r = t
        .call(Method::GET, "/v1/agencies?limit=0", Some(&t.admin), None)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let r = t.get("/v1/agencies?cursor=zzz", &t.admin).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
}

#[tokio::test]
async fn the_same_flow_holds_on_postgres() {
    let Some(t) = TestApp::postgres().await else {
        return;
    };
    let a = t.agency("Pg Agency").await;
    let b = t.agency("Pg Other").await;
    let r = t
        .get(&format!("/v1/agencies/{}/accounts/{}", a.id, a.acc), &a.key)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = t
        .get(&format!("/v1/agencies/{}/accounts/{}", a.id, a.acc), &b.key)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
    let dup = t
        .post(
            &format!("/v1/agencies/{}/users", a.id),
            &a.key,
            json!({ "email": "OWNER@pg-agency.test", "name": "x" }),
        )
        .await;
    assert_eq!((dup.status, dup.code()), (StatusCode::CONFLICT, "conflict"));
    let v = t
        .get(&format!("/v1/agencies/{}/audit/verify", a.id), &a.key)
        .await;
    assert_eq!(v.body["ok"], true, "{}", v.body);
}
