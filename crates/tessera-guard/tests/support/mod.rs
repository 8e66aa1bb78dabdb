//! A real Tessera in another process for integration tests: the workspace's `tessera` binary
//! (built when missing), on a free loopback port with a fresh SQLite data dir, provisioned
//! through its HTTP API with `curl` (the tests' own latency loops never go through `curl`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A running Tessera.
pub struct Tessera {
    child: Child,
    pub url: String,
    pub admin: String,
    dir: PathBuf,
}

impl Drop for Tessera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `tessera` binary of this workspace.
fn binary() -> PathBuf {
    if let Ok(bin) = std::env::var("TESSERA_BIN") {
        return bin.into();
    }
    // target/<profile>/deps/<test> → target/<profile>/tessera
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let bin = profile_dir.join("tessera");
    // Not built here: cargo holds the build directory's lock while tests run. `cargo test
    // --workspace` builds it (tessera-server has integration tests).
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p tessera-server --bin tessera` first, or set TESSERA_BIN",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP exchange through `curl`: (status, JSON body or `Null`).
pub fn curl(
    method: &str,
    url: &str,
    headers: &[String],
    body: Option<(&str, String)>,
) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-X", method, "-w", "\n%{http_code}", url]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    if let Some((ct, b)) = body {
        cmd.args(["-H", &format!("content-type: {ct}"), "--data-binary", &b]);
    }
    let out = cmd.output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc = |s: &str| {
                s.bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect::<String>()
            };
            format!("{}={}", enc(k), enc(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// An app installed on an account: its credentials and installation.
pub struct InstalledApp {
    pub client_id: String,
    pub secret: String,
    pub installation: String,
}

impl Tessera {
    /// Starts Tessera and waits until it answers.
    pub fn start() -> Self {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let dir =
            std::env::temp_dir().join(format!("tessera-guard-it-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(binary())
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--rate-limits",
                "off",
            ])
            .arg("--data-dir")
            .arg(&dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tessera");
        let started = Instant::now();
        loop {
            let (code, _) = curl("GET", &format!("{url}/.well-known/jwks.json"), &[], None);
            if code == 200 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "tessera did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let admin = std::fs::read_to_string(dir.join("bootstrap-admin.key"))
            .expect("bootstrap key")
            .trim()
            .to_owned();
        Self {
            child,
            url,
            admin,
            dir,
        }
    }

    /// A JSON call with a bearer credential.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        bearer: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        curl(
            method,
            &format!("{}{path}", self.url),
            &[format!("Authorization: Bearer {bearer}")],
            body.map(|b| ("application/json", b.to_string())),
        )
    }

    /// A JSON call as the platform admin, which must succeed (2xx).
    pub fn admin(&self, method: &str, path: &str, body: Value) -> Value {
        let (code, v) = self.call(method, path, &self.admin, Some(body));
        assert!((200..300).contains(&code), "{method} {path}: {code} {v}");
        v
    }

    /// A form POST, optionally with client Basic credentials.
    pub fn form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        pairs: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut headers = Vec::new();
        if let Some((id, secret)) = basic {
            use base64::Engine as _;
            let b = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
            headers.push(format!("Authorization: Basic {b}"));
        }
        curl(
            "POST",
            &format!("{}{path}", self.url),
            &headers,
            Some(("application/x-www-form-urlencoded", form_encode(pairs))),
        )
    }

    /// A new agency and one account: (agency, account).
    pub fn tenant(&self, name: &str) -> (String, String) {
        let agy = self.admin("POST", "/v1/agencies", json!({"name": name}))["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let acc = self.admin(
            "POST",
            &format!("/v1/agencies/{agy}/accounts"),
            json!({"name": format!("{name} account")}),
        )["id"]
            .as_str()
            .unwrap()
            .to_owned();
        (agy, acc)
    }

    /// Registers `identifier` as a resource server of `agy` serving `scopes`.
    pub fn resource_server(&self, agy: &str, identifier: &str, scopes: &[&str]) {
        self.admin(
            "POST",
            &format!("/v1/agencies/{agy}/resource-servers"),
            json!({"identifier": identifier, "scopes": scopes, "name": "test service"}),
        );
    }

    /// Registers `identifier` platform-wide (every agency's tokens may name it).
    pub fn platform_resource_server(&self, identifier: &str, scopes: &[&str]) {
        self.admin(
            "POST",
            "/v1/resource-servers",
            json!({"identifier": identifier, "scopes": scopes, "name": "test service"}),
        );
    }

    /// A confidential app of `agy` holding `scopes`, installed on `acc` with them.
    pub fn installed_app(&self, agy: &str, acc: &str, scopes: &[&str]) -> InstalledApp {
        let app = self.app(agy, "private", scopes);
        self.install(&app, agy, acc, scopes)
    }

    /// A confidential app of `agy` of `kind` (`private`, `marketplace`) holding `scopes`.
    pub fn app(&self, agy: &str, kind: &str, scopes: &[&str]) -> (String, String) {
        let app = self.admin(
            "POST",
            &format!("/v1/agencies/{agy}/apps"),
            json!({"name": "test app", "redirect_uris": ["http://127.0.0.1:9/cb"],
                   "scopes": scopes, "confidential": true, "kind": kind}),
        );
        (
            app["client_id"].as_str().unwrap().to_owned(),
            app["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    /// Installs `app` on account `acc` of agency `agy` with `scopes`.
    pub fn install(
        &self,
        app: &(String, String),
        agy: &str,
        acc: &str,
        scopes: &[&str],
    ) -> InstalledApp {
        let ins = self.admin(
            "POST",
            &format!("/v1/agencies/{agy}/accounts/{acc}/installations"),
            json!({"app": app.0, "scopes": scopes}),
        );
        InstalledApp {
            client_id: app.0.clone(),
            secret: app.1.clone(),
            installation: ins["id"].as_str().unwrap_or_default().to_owned(),
        }
    }

    /// A client-credentials token for `resource`.
    pub fn token(&self, app: &InstalledApp, scope: &str, resource: &str) -> String {
        let (code, v) = self.form(
            "/oauth/token",
            Some((&app.client_id, &app.secret)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", scope),
                ("resource", resource),
            ],
        );
        assert_eq!(code, 200, "token: {v}");
        v["access_token"].as_str().unwrap().to_owned()
    }

    /// Revokes one access token (RFC 7009).
    pub fn revoke(&self, app: &InstalledApp, token: &str) {
        let (code, v) = self.form(
            "/oauth/revoke",
            Some((&app.client_id, &app.secret)),
            &[("token", token), ("token_type_hint", "access_token")],
        );
        assert_eq!(code, 200, "revoke: {v}");
    }
}
