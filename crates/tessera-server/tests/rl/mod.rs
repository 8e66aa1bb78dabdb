//! Support for `redis_limits.rs`: a `redis-server` of the test's own, `tessera serve`
//! processes, and a small HTTP/1.1 client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A port nothing listens on (now).
/// One test of the file at a time: each starts servers and drives load, and the noisy
/// neighbour measures latency, which a concurrent test's load would distort.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` on a free port, killed on drop.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one; `None` (and a notice) when `redis-server` is missing, unless
    /// `TESSERA_TEST_REDIS_REQUIRED=1`.
    pub fn start() -> Option<Self> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok();
        if !found {
            if std::env::var("TESSERA_TEST_REDIS_REQUIRED").as_deref() == Ok("1") {
                panic!("redis-server is not on PATH and TESSERA_TEST_REDIS_REQUIRED=1");
            }
            eprintln!("SKIPPED: redis-server is not on PATH (set TESSERA_TEST_REDIS_REQUIRED=1 to fail instead)");
            return None;
        }
        let mut r = Self {
            port: free_port(),
            child: None,
        };
        r.restart();
        Some(r)
    }

    /// `redis://127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: u8) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// Stops the server (its data goes with it: nothing is saved).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `tessera serve` process, killed on drop.
pub struct Tessera {
    pub addr: SocketAddr,
    dir: PathBuf,
    child: Child,
}

impl Tessera {
    /// Starts `tessera serve` on a free port with `dir` as its data directory.
    pub async fn start(dir: &Path, redis: Option<&str>, flags: &[&str]) -> Self {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
        for (k, _) in std::env::vars() {
            if k.starts_with("TESSERA_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(["serve", "--listen", &addr.to_string(), "--data-dir"])
            .arg(dir)
            .args(flags)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(url) = redis {
            cmd.args(["--redis-url", url]);
        }
        let child = cmd.spawn().unwrap();
        let t = Instant::now();
        loop {
            if let Ok(mut c) = TcpStream::connect(addr).await {
                if send(&mut c, "GET", "/healthz", "", &[], "").await.0 == 200 {
                    break;
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "tessera did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            addr,
            dir: dir.to_owned(),
            child,
        }
    }

    /// The platform admin key the first start wrote.
    pub fn admin_key(&self) -> String {
        std::fs::read_to_string(self.dir.join("bootstrap-admin.key"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Creates an agency and an API key of it that reads accounts: (agency id, secret).
    pub async fn agency_with_key(&self, admin: &str, name: &str) -> (String, String) {
        agency_with_key(self.addr, admin, name).await
    }
}

/// Creates an agency on `node` and an API key of it that reads accounts: (agency id, secret).
pub async fn agency_with_key(node: SocketAddr, admin: &str, name: &str) -> (String, String) {
    let json = [("content-type", "application/json")];
    let (s, _, body) = http(
        node,
        "POST",
        "/v1/agencies",
        admin,
        &json,
        &format!("{{\"name\":\"{name}\"}}"),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let agy = v["id"].as_str().unwrap().to_owned();
    let (s, _, body) = http(
        node,
        "POST",
        &format!("/v1/agencies/{agy}/api-keys"),
        admin,
        &json,
        r#"{"name":"reader","scopes":["accounts.readonly"]}"#,
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    (agy, v["secret"].as_str().unwrap().to_owned())
}

impl Drop for Tessera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A kept-alive connection.
pub struct Conn(TcpStream);

impl Conn {
    pub async fn open(addr: SocketAddr) -> Self {
        Self(TcpStream::connect(addr).await.unwrap())
    }

    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        bearer: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String, String) {
        send(&mut self.0, method, path, bearer, headers, body).await
    }
}

/// One request on a new connection: (status, head in lowercase, body).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut c = TcpStream::connect(addr).await.unwrap();
    send(&mut c, method, path, bearer, headers, body).await
}

async fn send(
    conn: &mut TcpStream,
    method: &str,
    path: &str,
    bearer: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !bearer.is_empty() {
        req.push_str(&format!("authorization: Bearer {bearer}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
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

/// The 99th percentile.
pub fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}
