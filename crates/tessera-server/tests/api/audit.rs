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

/// Token issues in many agencies at once go through the audit writer's lanes: every issued
/// token's `jti` is in its own agency's chain (merged events count them all), no other
/// agency's chain holds it, and every chain verifies.
async fn concurrent_issues_keep_every_chain(t: &TestApp) {
    use base64::Engine as _;
    let mut agencies = Vec::new();
    for i in 0..6 {
        let ag = t.agency(&format!("Lanes {i}")).await;
        let (client, secret, ins) = crate::harness::installed_app(
            t,
            &ag,
            "https://app.example.com/cb",
            &["contacts.readonly"],
        )
        .await;
        agencies.push((ag, crate::oauth::basic(&client, &secret), ins));
    }
    let calls = agencies.iter().flat_map(|(ag, auth, ins)| {
        (0..8).map(move |_| async move {
            let r = t
                .form(
                    "/oauth/token",
                    Some(auth),
                    &[("grant_type", "client_credentials"), ("installation", ins)],
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let jwt = r.body["access_token"].as_str().unwrap().to_owned();
            let payload = jwt.split('.').nth(1).unwrap().to_owned();
            let claims: serde_json::Value = serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(payload)
                    .unwrap(),
            )
            .unwrap();
            (ag.id.clone(), claims["jti"].as_str().unwrap().to_owned())
        })
    });
    let issued = futures_util::future::join_all(calls).await;
    for (ag, _, _) in &agencies {
        let base = format!("/v1/agencies/{}", ag.id);
        let events = t
            .get(
                &format!("{base}/audit?action=token.issue&limit=100"),
                &ag.key,
            )
            .await;
        assert_eq!(events.status, StatusCode::OK, "{}", events.body);
        let mut listed: Vec<String> = Vec::new();
        for e in events.body["items"].as_array().unwrap() {
            let tokens = e["detail"]["tokens"].as_array().unwrap();
            assert_eq!(e["detail"]["count"].as_u64().unwrap(), tokens.len() as u64);
            listed.extend(tokens.iter().map(|x| x["jti"].as_str().unwrap().to_owned()));
        }
        listed.sort();
        let mut mine: Vec<String> = issued
            .iter()
            .filter(|(a, _)| a == &ag.id)
            .map(|(_, j)| j.clone())
            .collect();
        mine.sort();
        assert_eq!(listed, mine, "agency {}", ag.id);
        let v = t.get(&format!("{base}/audit/verify"), &ag.key).await;
        assert_eq!(v.body["ok"], true, "{}", v.body);
    }
}

#[tokio::test]
async fn concurrent_issues_keep_every_chain_sqlite() {
    concurrent_issues_keep_every_chain(&TestApp::sqlite().await).await;
}

#[tokio::test]
async fn concurrent_issues_keep_every_chain_postgres() {
    if let Some(t) = TestApp::postgres().await {
        concurrent_issues_keep_every_chain(&t).await;
    }
}
