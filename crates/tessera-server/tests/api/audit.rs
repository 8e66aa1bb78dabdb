//! I5: every change appends an audit event in the same transaction; the chain verifies.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::TestApp;

#[tokio::test]
async fn every_change_is_audited_with_its_context() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Aud").await;
    let base = format!("/v1/agencies/{}", a.id);
    let req = axum::http::Request::builder()
        .method("PATCH")
        .uri(format!("{base}/accounts/{}", a.acc))
        .header("authorization", format!("Bearer {}", a.key))
        .header("content-type", "application/json")
        .header("user-agent", "audit-test/1")
        .header("x-request-id", "trace-123")
        .body(axum::body::Body::from(
            json!({ "name": "Renamed" }).to_string(),
        ))
        .unwrap();
    let r = t.raw(req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["x-request-id"], "trace-123");
    let events = t
        .get(&format!("{base}/audit?action=account.update"), &a.key)
        .await;
    let e = &events.body["items"][0];
    assert_eq!(e["actor"], a.key_id.as_str());
    assert_eq!(e["target"], a.acc.as_str());
    assert_eq!(e["outcome"], "success");
    assert_eq!(e["request_id"], "trace-123");
    assert_eq!(e["user_agent"], "audit-test/1");
    assert_eq!(e["detail"]["name"], "Renamed");
    // The setup made agency, account, user and key events; each with the previous hash.
    let all = t.get(&format!("{base}/audit"), &a.key).await.body["items"]
        .as_array()
        .unwrap()
        .clone();
    let actions: Vec<&str> = all.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "agency.create",
            "account.create",
            "user.create",
            "api_key.create",
            "account.update"
        ]
    );
    for w in all.windows(2) {
        assert_eq!(w[1]["prev_hash"], w[0]["hash"]);
    }
    let by_actor = t
        .get(
            &format!("{base}/audit?actor={}", t.admin_key_id().await),
            &a.key,
        )
        .await;
    assert_eq!(by_actor.body["items"].as_array().unwrap().len(), 4);
    let page = t.get(&format!("{base}/audit?limit=2"), &a.key).await;
    let next = page.body["next_cursor"].as_str().unwrap().to_owned();
    let page2 = t
        .get(&format!("{base}/audit?limit=2&cursor={next}"), &a.key)
        .await;
    assert_eq!(page2.body["items"][0]["seq"], 3);
    let v = t.get(&format!("{base}/audit/verify"), &a.key).await;
    assert_eq!(
        v.body,
        json!({ "ok": true, "events": 5, "checkpoints": 0, "first_bad": null, "reason": null, "detail": null, "start_seq": 0, "last_seq": 5, "anchored_seq": null })
    );
    let export = t.get(&format!("{base}/audit/export"), &a.key).await;
    let text = export
        .body
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| export.body.to_string());
    assert_eq!(export.headers["content-type"], "application/jsonl");
    // Five events, then the `end` line (no checkpoint signed yet).
    assert_eq!(text.lines().count(), 6);
    assert!(text.lines().last().unwrap().contains(r#""type":"end""#));
    let r = t
        .get(&format!("{base}/audit?after=yesterday"), &a.key)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t
        .get(&format!("{base}/audit?cursor=18446744073709551615"), &a.key)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
}

impl TestApp {
    pub async fn admin_key_id(&self) -> String {
        let p = self.state.store.platform_agency().await.unwrap().unwrap();
        let keys = self
            .get(&format!("/v1/agencies/{}/api-keys", p.id), &self.admin)
            .await;
        keys.body["items"][0]["id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn platform_reads_inside_an_agency_are_recorded_in_its_chain() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Watched").await;
    let base = format!("/v1/agencies/{}", a.id);
    assert_eq!(
        t.get(&format!("{base}/users/{}", a.user), &t.admin)
            .await
            .status,
        StatusCode::OK
    );
    let seen = t
        .get(
            &format!("{base}/audit?action=platform.cross_tenant_read"),
            &a.key,
        )
        .await;
    let items = seen.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", seen.body);
    assert_eq!(items[0]["actor"], t.admin_key_id().await.as_str());
    assert_eq!(items[0]["detail"]["permission"], "users.read");
    assert_eq!(
        items[0]["detail"]["path"],
        format!("{base}/users/{}", a.user).as_str()
    );
    // The agency's own reads are not recorded; the chain still verifies.
    t.get(&format!("{base}/users/{}", a.user), &a.key).await;
    let again = t
        .get(
            &format!("{base}/audit?action=platform.cross_tenant_read"),
            &a.key,
        )
        .await;
    assert_eq!(again.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        t.get(&format!("{base}/audit/verify"), &a.key).await.body["ok"],
        true
    );
}
