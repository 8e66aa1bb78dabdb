//! Slow and greedy clients against a real server on port 0 (issue 8): connections that trickle
//! their head or stop half-way are closed after the header timeout, connections over the
//! per-client cap are closed at once, a body that stops is answered 408, a kept-alive
//! connection waits up to the idle timeout (not the header timeout) — and `/healthz` from
//! another address answers promptly throughout.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tessera_server::net::HttpSettings;
use tessera_server::net::NetSettings;
use tessera_server::services::EngineSettings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::harness::TestApp;

struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    t: TestApp,
}

impl Server {
    async fn start(net: NetSettings) -> Self {
        let t = TestApp::sqlite_with(EngineSettings {
            http: HttpSettings {
                net,
                ..Default::default()
            },
            ..Default::default()
        })
        .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(tessera_server::run(listener, t.state.clone(), async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
            t,
        }
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("graceful shutdown in time")
            .unwrap()
            .unwrap();
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A connection from `source` (any 127/8 address reaches the loopback on Linux).
async fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Reads until the server closes the connection (EOF or reset) or `limit` passes: the bytes
/// read, and when it closed (None: still open).
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), None),
            Ok(Ok(0) | Err(_)) => {
                return (
                    String::from_utf8_lossy(&out).into_owned(),
                    Some(start.elapsed()),
                )
            }
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// One `/healthz` response on a kept-alive connection (its body ends with `}`).
async fn read_response(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.ends_with(b"}") {
        let n = tokio::time::timeout(secs(3), s.read(&mut buf))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn healthz_from(source: &str, addr: SocketAddr) -> (String, Duration) {
    let start = Instant::now();
    let mut s = connect_from(source, addr).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let (text, closed) = read_until_closed(&mut s, secs(5)).await;
    assert!(closed.is_some(), "the answer ends: {text}");
    (text, start.elapsed())
}

/// One slow client: half a head then silence, or a head trickled a byte at a time. Returns
/// when the server closed it, measured from the connection's start (None: still open at `limit`).
async fn slow_client(addr: SocketAddr, trickle: bool, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut s = connect_from("127.0.0.2", addr).await;
    if s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .is_err()
    {
        return Some(start.elapsed());
    }
    let mut buf = [0u8; 256];
    while start.elapsed() < limit {
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => return Some(start.elapsed()),
                // Nothing should come back: the head never ends.
                Ok(_) => panic!("a reply to an unfinished request"),
            },
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if trickle && s.write_all(b"x").await.is_err() {
                    return Some(start.elapsed());
                }
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_capped_and_closed_while_healthz_answers() {
    let server = Server::start(NetSettings {
        header_timeout: secs(3),
        body_timeout: secs(3),
        idle_timeout: secs(4),
        max_connections: 10_000,
        max_connections_per_ip: 100,
    })
    .await;
    let addr = server.addr;
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..300 {
        clients.spawn(slow_client(addr, i % 2 == 0, secs(8)));
    }
    // While they are held, another client is served at once.
    tokio::time::sleep(Duration::from_millis(700)).await;
    for _ in 0..3 {
        let (text, took) = healthz_from("127.0.0.1", addr).await;
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(took < secs(1), "/healthz took {took:?}");
    }
    let mut closed_after = Vec::new();
    while let Some(closed) = clients.join_next().await {
        closed_after.push(
            closed
                .unwrap()
                .expect("a slow connection still open after 8 s"),
        );
    }
    closed_after.sort();
    // Over the cap: closed as soon as accepted. Admitted: closed at the header timeout (3 s
    // from the connection's start), not before.
    let refused = closed_after.iter().filter(|t| **t < secs(2)).count();
    let timed_out = closed_after
        .iter()
        .filter(|t| **t >= Duration::from_millis(2800) && **t < secs(7))
        .count();
    assert_eq!(
        (refused, timed_out),
        (200, 100),
        "closed after: {:?} … {:?} … {:?}",
        closed_after.first(),
        closed_after.get(200),
        closed_after.last()
    );
    assert_eq!((refused, timed_out), (200, 100));
    let metrics = server
        .t
        .get("/metrics", &server.t.admin)
        .await
        .body
        .as_str()
        .unwrap()
        .to_owned();
    for line in [
        "tessera_connections_refused_total{cap=\"max_connections_per_ip\"}",
        "tessera_connections_timed_out_total{phase=\"header\"}",
    ] {
        let n: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(line))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        // Metrics are process-wide: other tests may add to them, never take away.
        assert!(n >= 100, "{line} {n}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_body_that_stops_is_answered_408_and_closed() {
    let server = Server::start(NetSettings {
        body_timeout: secs(2),
        ..NetSettings::default()
    })
    .await;
    let mut s = connect_from("127.0.0.1", server.addr).await;
    let start = Instant::now();
    let head = format!(
        "POST /v1/check HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"permissi",
        server.t.admin
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (text, closed) = read_until_closed(&mut s, secs(6)).await;
    let took = closed.expect("the server closes the connection");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(text.contains("\"code\":\"request_timeout\""), "{text}");
    assert!(
        took >= Duration::from_millis(1800) && took < secs(5),
        "answered after {took:?}"
    );
    assert!(start.elapsed() < secs(6));
    server.shutdown().await;
}

#[tokio::test]
async fn keep_alive_waits_for_the_idle_timeout_not_the_header_timeout() {
    let server = Server::start(NetSettings {
        header_timeout: secs(1),
        idle_timeout: secs(2),
        ..NetSettings::default()
    })
    .await;
    let mut s = connect_from("127.0.0.1", server.addr).await;
    let request = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";
    s.write_all(request).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    // Longer than the header timeout, shorter than the idle timeout: still served.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.write_all(request).await.unwrap();
    let again = read_response(&mut s).await;
    assert!(
        again.starts_with("HTTP/1.1 200"),
        "kept alive past the header timeout: {again}"
    );
    // Then closed once idle for the idle timeout.
    let (_, closed) = read_until_closed(&mut s, secs(4)).await;
    let took = closed.expect("an idle connection is closed");
    assert!(took >= Duration::from_millis(1800), "closed after {took:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn over_the_global_cap_connections_are_closed_at_once() {
    let server = Server::start(NetSettings {
        max_connections: 2,
        ..NetSettings::default()
    })
    .await;
    let _a = connect_from("127.0.0.1", server.addr).await;
    let _b = connect_from("127.0.0.3", server.addr).await;
    // Let the server admit both before the third arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = connect_from("127.0.0.4", server.addr).await;
    let (_, closed) = read_until_closed(&mut c, secs(2)).await;
    assert!(closed.is_some_and(|t| t < secs(1)), "{closed:?}");
    drop((_a, _b));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (text, _) = healthz_from("127.0.0.1", server.addr).await;
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "a closed connection frees its place: {text}"
    );
    server.shutdown().await;
}
