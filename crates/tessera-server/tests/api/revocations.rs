//! The revocation feed (`GET /v1/revocations`): every revocation kind with its id and state,
//! tenant isolation and the permission, cursor paging, the long-poll woken by a revoke, SSE
//! framing and resumption with `Last-Event-ID`, the retention window (410 `cursor_expired`),
//! and an SSE client on a real socket that sees a revocation within a second.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

use crate::harness::{Resp, TestApp};
use crate::oauth::{basic, claims, code_flow};

/// An API key of `agency` holding `revocations.readonly` (a resource server's guard).
async fn feed_key(app: &TestApp, agency: &str) -> String {
    let r = app
        .post(
            &format!("/v1/agencies/{agency}/api-keys"),
            &app.admin,
            json!({ "name": "guard", "scopes": ["revocations.readonly"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["secret"].as_str().unwrap().to_owned()
}

/// `n` API keys of `agency`, each created and revoked at once (one feed entry each), in order.
async fn revoked_keys(app: &TestApp, agency: &str, n: usize) -> Vec<String> {
    let mut keys = Vec::new();
    for i in 0..n {
        let k = app
            .post(
                &format!("/v1/agencies/{agency}/api-keys"),
                &app.admin,
                json!({ "name": format!("k{i}"), "scopes": [] }),
            )
            .await
            .id();
        app.delete(&format!("/v1/agencies/{agency}/api-keys/{k}"), &app.admin)
            .await;
        keys.push(k);
    }
    keys
}

async fn feed(app: &TestApp, key: &str, query: &str) -> Resp {
    app.get(&format!("/v1/revocations{query}"), key).await
}

fn items(r: &Resp) -> Vec<Value> {
    r.body["items"].as_array().cloned().unwrap_or_default()
}

fn find<'a>(items: &'a [Value], kind: &str, id: &str) -> Vec<&'a Value> {
    items
        .iter()
        .filter(|i| i["kind"] == kind && i["id"] == id)
        .collect()
}

fn assert_has(items: &[Value], kind: &str, id: &str, state: &str) {
    assert!(
        find(items, kind, id).iter().any(|i| i["state"] == state),
        "no {kind} {id} {state} in {items:#?}"
    );
}

async fn reason(app: &TestApp, path: &str) {
    let r = app
        .post(path, &app.admin, json!({ "reason": "test" }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
}

async fn every_kind_appears_with_its_id_and_state(app: &TestApp) {
    let f = app.fixture("Feed", "private", &["contacts.readonly"]).await;
    let reader = feed_key(app, &f.ag.id).await;
    let start = feed(app, &reader, "").await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    assert_eq!(start.body["retention_seconds"], 3660);
    let since = start.body["next"].as_str().unwrap().to_owned();
    let agy = &f.ag.id;
    let auth = basic(&f.client_id, &f.secret);

    // An access token (its jti) and a refresh family (the grant, the JWT's `sid`).
    let cc = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let at = cc.body["access_token"].as_str().unwrap().to_owned();
    let r = app
        .form("/oauth/revoke", Some(&auth), &[("token", &at)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let t = code_flow(app, &f, "contacts.readonly").await;
    let sid = claims(t["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let rt = t["refresh_token"].as_str().unwrap();
    let r = app
        .form("/oauth/revoke", Some(&auth), &[("token", rt)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // API keys: rotated, then revoked.
    let k = app
        .post(
            &format!("/v1/agencies/{agy}/api-keys"),
            &app.admin,
            json!({ "name": "k", "scopes": ["contacts.readonly"] }),
        )
        .await
        .id();
    let r = app
        .post(
            &format!("/v1/agencies/{agy}/api-keys/{k}/rotate"),
            &app.admin,
            json!({}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = app
        .delete(&format!("/v1/agencies/{agy}/api-keys/{k}"), &app.admin)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // The account: suspended, reinstated.
    reason(
        app,
        &format!("/v1/agencies/{agy}/accounts/{}/suspend", f.ag.acc),
    )
    .await;
    reason(
        app,
        &format!("/v1/agencies/{agy}/accounts/{}/reinstate", f.ag.acc),
    )
    .await;
    // Users: one disabled; one disabled then enabled; one deleted.
    let user = |n: &str| json!({ "email": format!("{n}@feed.test"), "name": n });
    let u1 = f.ag.user.clone();
    let u2 = app
        .post(&format!("/v1/agencies/{agy}/users"), &app.admin, user("u2"))
        .await
        .id();
    let u3 = app
        .post(&format!("/v1/agencies/{agy}/users"), &app.admin, user("u3"))
        .await
        .id();
    for (u, st) in [(&u1, "disabled"), (&u2, "disabled"), (&u2, "active")] {
        let r = app
            .patch(
                &format!("/v1/agencies/{agy}/users/{u}"),
                &app.admin,
                json!({ "status": st }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = app
        .delete(&format!("/v1/agencies/{agy}/users/{u3}"), &app.admin)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // The installation, then the app.
    let r = app
        .delete(
            &format!(
                "/v1/agencies/{agy}/accounts/{}/installations/{}",
                f.ag.acc, f.ins
            ),
            &app.admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = app
        .delete(
            &format!("/v1/agencies/{agy}/apps/{}", f.client_id),
            &app.admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    let r = feed(app, &reader, &format!("?since={since}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = items(&r);
    assert_has(
        &got,
        "token",
        claims(&at)["jti"].as_str().unwrap(),
        "revoked",
    );
    assert_has(&got, "token_family", &sid, "revoked");
    assert_has(&got, "api_key", &k, "rotated");
    assert_has(&got, "api_key", &k, "revoked");
    assert_has(&got, "account", &f.ag.acc, "suspended");
    assert_has(&got, "account", &f.ag.acc, "active");
    assert_has(&got, "user", &u1, "disabled");
    assert_has(&got, "user", &u3, "deleted");
    assert_eq!(find(&got, "user", &u2).last().unwrap()["state"], "active");
    assert_has(&got, "installation", &f.ins, "revoked");
    assert_has(&got, "app", &f.client_id, "deleted");
    // Every entry is the agency's, in cursor order, with its expiry.
    let mut last = since.parse::<i64>().unwrap();
    for i in &got {
        assert_eq!(i["agency"], f.ag.id.as_str());
        let c = i["cursor"].as_str().unwrap().parse::<i64>().unwrap();
        assert!(c > last);
        last = c;
        assert_eq!(
            i["expires_at"].as_i64().unwrap() - i["at"].as_i64().unwrap(),
            3660
        );
    }
    assert_eq!(r.body["next"], got.last().unwrap()["cursor"]);

    // Agencies: suspended, reinstated, deleted (the platform's reader sees every agency).
    let other = app.agency("Gone").await;
    reason(app, &format!("/v1/agencies/{}/suspend", other.id)).await;
    reason(app, &format!("/v1/agencies/{}/reinstate", other.id)).await;
    let r = app
        .delete(&format!("/v1/agencies/{}", other.id), &app.admin)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let all = feed(app, &app.admin, &format!("?since={since}&limit=1000")).await;
    let all = items(&all);
    for st in ["suspended", "active", "deleted"] {
        assert_has(&all, "agency", &other.id, st);
    }
    assert_has(&all, "installation", &f.ins, "revoked");
    // … and the agency's own reader none of them.
    let mine = items(&feed(app, &reader, &format!("?since={since}&limit=1000")).await);
    assert!(find(&mine, "agency", &other.id).is_empty());
}

async fn a_refresh_token_reused_revokes_its_family(app: &TestApp) {
    let f = app
        .fixture("Reuse", "private", &["contacts.readonly"])
        .await;
    let reader = feed_key(app, &f.ag.id).await;
    let since = feed(app, &reader, "").await.body["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = code_flow(app, &f, "contacts.readonly").await;
    let sid = claims(t["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let rt = t["refresh_token"].as_str().unwrap();
    let auth = basic(&f.client_id, &f.secret);
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    assert_eq!(
        app.form("/oauth/token", Some(&auth), &refresh).await.status,
        StatusCode::OK
    );
    // Past the reuse grace, the old token again: the whole family is revoked.
    app.clock.advance(10_000);
    let r = app.form("/oauth/token", Some(&auth), &refresh).await;
    assert_eq!(r.body["error"], "invalid_grant", "{}", r.body);
    let got = items(&feed(app, &reader, &format!("?since={since}")).await);
    assert_has(&got, "token_family", &sid, "revoked");
}

async fn tenants_see_only_their_own_entries(app: &TestApp) {
    let a = app.agency("Alpha").await;
    let b = app.agency("Beta").await;
    let ra = feed_key(app, &a.id).await;
    let rb = feed_key(app, &b.id).await;
    let k = app
        .post(
            &format!("/v1/agencies/{}/api-keys", a.id),
            &app.admin,
            json!({ "name": "x", "scopes": [] }),
        )
        .await
        .id();
    let r = app
        .delete(&format!("/v1/agencies/{}/api-keys/{k}", a.id), &app.admin)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_has(&items(&feed(app, &ra, "").await), "api_key", &k, "revoked");
    let seen_by_b = feed(app, &rb, "?limit=1000").await;
    assert_eq!(seen_by_b.status, StatusCode::OK);
    assert!(
        items(&seen_by_b)
            .iter()
            .all(|i| i["agency"] == b.id.as_str()),
        "{}",
        seen_by_b.body
    );
    assert!(find(&items(&seen_by_b), "api_key", &k).is_empty());
    assert_has(
        &items(&feed(app, &app.admin, "?limit=1000").await),
        "api_key",
        &k,
        "revoked",
    );
    // Without the permission: 403 (the agency's admin key holds no `revocations.read`).
    let r = feed(app, &a.key, "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // Without a credential: 401.
    let r = app
        .call(axum::http::Method::GET, "/v1/revocations", None, None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A malformed cursor, a wait out of range: 400.
    assert_eq!(
        feed(app, &ra, "?since=abc").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        feed(app, &ra, "?since=-1").await.status,
        StatusCode::BAD_REQUEST
    );
    for bad in ["?limit=1001", "?limit=0", "?limit=x"] {
        assert_eq!(
            feed(app, &ra, bad).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    assert_eq!(
        feed(app, &ra, "?wait=61").await.status,
        StatusCode::BAD_REQUEST
    );
    // A cursor from the future (another database): resynchronise.
    let r = feed(app, &ra, "?since=999999999").await;
    assert_eq!(r.status, StatusCode::GONE);
    assert_eq!(r.code(), "cursor_expired");
}

async fn cursors_page_through_the_feed(app: &TestApp) {
    let a = app.agency("Pages").await;
    let reader = feed_key(app, &a.id).await;
    let keys = revoked_keys(app, &a.id, 5).await;
    let mut seen = Vec::new();
    let mut q = "?limit=2".to_owned();
    for _ in 0..10 {
        let r = feed(app, &reader, &q).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let page = items(&r);
        assert!(page.len() <= 2);
        let next = r.body["next"].as_str().unwrap().to_owned();
        if page.is_empty() {
            // Nothing new: `next` is the cursor passed.
            assert!(q.ends_with(&format!("since={next}")), "{q} {next}");
            break;
        }
        seen.extend(page.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        q = format!("?limit=2&since={next}");
    }
    assert_eq!(seen, keys);
}

async fn a_long_poll_wakes_on_a_revoke(app: &TestApp) {
    let a = app.agency("Poll").await;
    let reader = feed_key(app, &a.id).await;
    let next = feed(app, &reader, "").await.body["next"]
        .as_str()
        .unwrap()
        .to_owned();
    // Nothing new: an empty answer after the wait.
    let t = Instant::now();
    let r = feed(app, &reader, &format!("?since={next}&wait=1")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(items(&r).is_empty());
    assert!(t.elapsed() >= Duration::from_millis(900));
    let k = app
        .post(
            &format!("/v1/agencies/{}/api-keys", a.id),
            &app.admin,
            json!({ "name": "k", "scopes": [] }),
        )
        .await
        .id();
    let router = app.router.clone();
    let req = Request::get(format!("/v1/revocations?since={next}&wait=30"))
        .header("authorization", format!("Bearer {reader}"))
        .body(Body::empty())
        .unwrap();
    let waiting = tokio::spawn(async move {
        let resp = router.oneshot(req).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (
            Instant::now(),
            serde_json::from_slice::<Value>(&body).unwrap(),
        )
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let revoked_at = Instant::now();
    let r = app
        .delete(&format!("/v1/agencies/{}/api-keys/{k}", a.id), &app.admin)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let (answered, body) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(
        answered.duration_since(revoked_at) < Duration::from_millis(500),
        "{:?}",
        answered.duration_since(revoked_at)
    );
    let got = body["items"].as_array().unwrap();
    assert_has(got, "api_key", &k, "revoked");
}

/// Reads SSE frames until `n` events arrived (keep-alive comments are skipped).
async fn sse_events(body: &mut Body, n: usize) -> Vec<(String, Value)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    while out.len() < n {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("an event in time")
            .expect("the stream is open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            buf.push_str(std::str::from_utf8(&data).unwrap());
        }
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if event.starts_with(':') {
                continue;
            }
            let lines: Vec<&str> = event.trim_end().lines().collect();
            assert_eq!(lines.len(), 3, "{event:?}");
            let id = lines[0].strip_prefix("id: ").unwrap().to_owned();
            assert_eq!(lines[1], "event: revocation");
            let data: Value =
                serde_json::from_str(lines[2].strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["cursor"], id.as_str());
            out.push((id, data));
        }
    }
    out
}

async fn sse_frames_events_and_resumes_after_last_event_id(app: &TestApp) {
    let a = app.agency("Stream").await;
    let reader = feed_key(app, &a.id).await;
    let keys = revoked_keys(app, &a.id, 2).await;
    let open = |last: Option<&str>| {
        let mut b = Request::get("/v1/revocations")
            .header("authorization", format!("Bearer {reader}"))
            .header("accept", "text/event-stream");
        if let Some(l) = last {
            b = b.header("last-event-id", l);
        }
        app.router.clone().oneshot(b.body(Body::empty()).unwrap())
    };
    let resp = open(None).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let first = sse_events(&mut body, 2).await;
    assert_eq!(
        first
            .iter()
            .map(|(_, d)| d["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        keys
    );
    // A revocation while the stream is open arrives on it.
    let k = app
        .post(
            &format!("/v1/agencies/{}/api-keys", a.id),
            &app.admin,
            json!({ "name": "k2", "scopes": [] }),
        )
        .await
        .id();
    app.delete(&format!("/v1/agencies/{}/api-keys/{k}", a.id), &app.admin)
        .await;
    let live = sse_events(&mut body, 1).await;
    assert_eq!(live[0].1["id"], k.as_str());
    drop(body);
    // Resuming after the first event: the second and the third, nothing before.
    let resp = open(Some(&first[0].0)).await.unwrap();
    let mut body = resp.into_body();
    let resumed = sse_events(&mut body, 2).await;
    assert_eq!(resumed[0].0, first[1].0);
    assert_eq!(resumed[1].0, live[0].0);
    // A malformed Last-Event-ID is refused before the stream starts.
    let resp = open(Some("x")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

async fn an_expired_cursor_is_gone(app: &TestApp) {
    let a = app.agency("Expire").await;
    let reader = feed_key(app, &a.id).await;
    let old = feed(app, &reader, "").await.body["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let k = app
        .post(
            &format!("/v1/agencies/{}/api-keys", a.id),
            &app.admin,
            json!({ "name": "k", "scopes": [] }),
        )
        .await
        .id();
    app.delete(&format!("/v1/agencies/{}/api-keys/{k}", a.id), &app.admin)
        .await;
    let r = feed(app, &reader, &format!("?since={old}")).await;
    assert_has(&items(&r), "api_key", &k, "revoked");
    let current = r.body["next"].as_str().unwrap().to_owned();
    // Past the retention window the entry is gone; a reader that had not seen it must start over.
    app.clock.advance(3661 * 1000);
    let r = feed(app, &reader, &format!("?since={old}")).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.body);
    assert_eq!(r.code(), "cursor_expired");
    assert_eq!(r.headers["content-type"], "application/problem+json");
    // A reader that had seen it goes on; one starting over gets what is retained (nothing).
    let r = feed(app, &reader, &format!("?since={current}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = feed(app, &reader, "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(items(&r).is_empty(), "{}", r.body);
}

on_both_backends!(
    every_kind_appears_with_its_id_and_state,
    a_refresh_token_reused_revokes_its_family,
    tenants_see_only_their_own_entries,
    cursors_page_through_the_feed,
    a_long_poll_wakes_on_a_revoke,
    sse_frames_events_and_resumes_after_last_event_id,
    an_expired_cursor_is_gone,
);

/// A guard's SSE client on a real socket, in its own task, sees a revocation within a second.
#[tokio::test]
async fn an_sse_client_on_a_socket_sees_a_revocation_within_a_second() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Socket").await;
    let reader = feed_key(&t, &a.id).await;
    let k = t
        .post(
            &format!("/v1/agencies/{}/api-keys", a.id),
            &t.admin,
            json!({ "name": "k", "scopes": [] }),
        )
        .await
        .id();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tessera_server::run(listener, t.state.clone(), async {
        let _ = stopped.await;
    }));
    let (tx, rx) = tokio::sync::oneshot::channel::<(Instant, String)>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let wanted = k.clone();
    let client = tokio::spawn(async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET /v1/revocations HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {reader}\r\naccept: text/event-stream\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        let mut ready = Some(ready_tx);
        loop {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "the stream ended: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            if let Some(r) = ready.take() {
                assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
                let _ = r.send(());
            }
            if seen.contains(&format!("\"id\":\"{wanted}\"")) {
                let _ = tx.send((Instant::now(), seen));
                return;
            }
        }
    });
    ready_rx.await.unwrap();
    let revoked = Instant::now();
    let r = t
        .delete(&format!("/v1/agencies/{}/api-keys/{k}", a.id), &t.admin)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let (at, seen) = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .unwrap()
        .unwrap();
    let lag = at.duration_since(revoked);
    assert!(lag < Duration::from_secs(1), "{lag:?}");
    assert!(seen.contains("event: revocation"), "{seen}");
    client.abort();
    // Shutdown ends open streams: the server stops promptly.
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// Each agency may hold 16 waiting readers (long-polls and streams) per node: the 17th is 429
/// at once, another agency's reader is unaffected, and the slots free when the readers end.
#[tokio::test]
async fn waiting_readers_are_capped_per_agency() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Cap").await;
    let b = t.agency("Other").await;
    let reader = feed_key(&t, &a.id).await;
    let other = feed_key(&t, &b.id).await;
    let next = |r: Resp| r.body["next"].as_str().unwrap().to_owned();
    let q = format!("?since={}&wait=3", next(feed(&t, &reader, "").await));
    let qb = format!("?since={}&wait=1", next(feed(&t, &other, "").await));
    let waiting = futures_util::future::join_all((0..16).map(|_| feed(&t, &reader, &q)));
    let probe = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let start = Instant::now();
        let over = feed(&t, &reader, &q).await;
        let refused_in = start.elapsed();
        (over, refused_in, feed(&t, &other, &qb).await)
    };
    let (done, (over, refused_in, elsewhere)) = tokio::join!(waiting, probe);
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS, "{}", over.body);
    assert!(refused_in < Duration::from_secs(1), "{refused_in:?}");
    assert_eq!(elsewhere.status, StatusCode::OK, "{}", elsewhere.body);
    for r in done {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    // Every slot is free again.
    let again = feed(&t, &reader, &q.replace("wait=3", "wait=1")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
}
