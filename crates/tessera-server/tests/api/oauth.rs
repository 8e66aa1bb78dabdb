//! OAuth 2.x and OIDC through the app: apps and installations, the code flow with its pages,
//! client credentials, refresh rotation, token exchange and impersonation, introspection,
//! revocation, discovery — and the attacks of RFC 8725 and RFC 9700 against each.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::harness::{Agency, Resp, TestApp, T0};

pub(crate) const REDIRECT: &str = "https://app.example.com/callback";
pub(crate) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-extra-entropy";
pub(crate) const PASSWORD: &str = "correct horse battery staple";

fn challenge(v: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()))
}

pub(crate) fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// A confidential app with an installation on the agency's account.
pub(crate) struct Fixture {
    pub(crate) ag: Agency,
    pub(crate) client_id: String,
    pub(crate) secret: String,
    pub(crate) ins: String,
    pub(crate) email: String,
}

impl TestApp {
    pub async fn form(&self, path: &str, auth: Option<&str>, pairs: &[(&str, &str)]) -> Resp {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        let body = serde_urlencoded::to_string(pairs).unwrap();
        self.raw(b.body(Body::from(body)).unwrap()).await
    }

    pub(crate) async fn user_with_password(
        &self,
        ag: &Agency,
        email: &str,
        role: &str,
        account: bool,
    ) -> String {
        let r = self
            .post(
                &format!("/v1/agencies/{}/users", ag.id),
                &self.admin,
                json!({ "email": email, "name": "Pat", "password": PASSWORD }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let id = r.id();
        let b = self
            .post(
                &format!("/v1/agencies/{}/bindings", ag.id),
                &self.admin,
                if account {
                    json!({ "principal": id, "role": role, "account": ag.acc })
                } else {
                    json!({ "principal": id, "role": role })
                },
            )
            .await;
        assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
        id
    }

    pub(crate) async fn fixture(&self, name: &str, kind: &str, scopes: &[&str]) -> Fixture {
        self.fixture_signed(name, kind, scopes, "EdDSA").await
    }

    /// A fixture whose app's tokens are signed with `alg`.
    async fn fixture_signed(&self, name: &str, kind: &str, scopes: &[&str], alg: &str) -> Fixture {
        let ag = self.agency(name).await;
        let email = format!("pat@{}.test", name.to_lowercase());
        self.user_with_password(&ag, &email, "account_admin", true)
            .await;
        let app = self
            .post(
                &format!("/v1/agencies/{}/apps", ag.id),
                &self.admin,
                json!({ "name": format!("{name} app"), "redirect_uris": [REDIRECT, "http://127.0.0.1:9999/cb"], "scopes": scopes, "confidential": true, "kind": kind, "token_signing_alg": alg }),
            )
            .await;
        assert_eq!(app.status, StatusCode::CREATED, "{}", app.body);
        let client_id = app.body["client_id"].as_str().unwrap().to_owned();
        let secret = app.body["client_secret"].as_str().unwrap().to_owned();
        let ins = self
            .post(
                &format!("/v1/agencies/{}/accounts/{}/installations", ag.id, ag.acc),
                &self.admin,
                json!({ "app": client_id, "scopes": scopes }),
            )
            .await;
        assert_eq!(ins.status, StatusCode::CREATED, "{}", ins.body);
        Fixture {
            ag,
            client_id,
            secret,
            ins: ins.id(),
            email,
        }
    }

    pub(crate) async fn browser(
        &self,
        method: Method,
        uri: &str,
        cookies: &str,
        body: Option<String>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut b = Request::builder().method(method).uri(uri);
        if !cookies.is_empty() {
            b = b.header("cookie", cookies);
        }
        let req = match body {
            Some(f) => b
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(f)),
            None => b.body(Body::empty()),
        };
        let r = self.raw(req.unwrap()).await;
        let text = match r.body {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        };
        (r.status, r.headers, text)
    }

    /// Drives the authorize pages: sign-in, consent, allow. Returns the redirect `Location`.
    pub(crate) async fn authorize(&self, f: &Fixture, query: &str, password: &str) -> String {
        let uri = format!("/oauth/authorize?{query}");
        let (status, headers, page) = self.browser(Method::GET, &uri, "", None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let mut cookies = collect_cookies(&headers, String::new());
        let csrf = hidden(&page, "csrf_token");
        let form = serde_urlencoded::to_string([
            ("email", f.email.as_str()),
            ("password", password),
            ("csrf_token", &csrf),
        ])
        .unwrap();
        let (status, headers, page) = self.browser(Method::POST, &uri, &cookies, Some(form)).await;
        if status != StatusCode::OK {
            return headers
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned())
                .unwrap_or(page);
        }
        cookies = collect_cookies(&headers, cookies);
        assert!(page.contains("decision"), "consent page expected: {page}");
        let csrf = hidden(&page, "csrf_token");
        let form =
            serde_urlencoded::to_string([("decision", "allow"), ("csrf_token", &csrf)]).unwrap();
        let (status, headers, page) = self.browser(Method::POST, &uri, &cookies, Some(form)).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
        headers
            .get("location")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }
}

pub(crate) fn collect_cookies(headers: &axum::http::HeaderMap, mut jar: String) -> String {
    for v in headers.get_all("set-cookie") {
        let pair = v.to_str().unwrap().split(';').next().unwrap().to_owned();
        let name = pair.split('=').next().unwrap().to_owned();
        let kept: Vec<&str> = jar
            .split("; ")
            .filter(|c| !c.is_empty() && !c.starts_with(&format!("{name}=")))
            .collect();
        jar = kept.join("; ");
        if !jar.is_empty() {
            jar.push_str("; ");
        }
        jar.push_str(&pair);
    }
    jar
}

pub(crate) fn hidden(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no {name} in {page}"));
    let rest = &page[at..];
    let v = rest.find("value=\"").unwrap() + 7;
    let end = rest[v..].find('"').unwrap();
    rest[v..v + end].replace("&amp;", "&")
}

fn query_of(location: &str) -> Vec<(String, String)> {
    let q = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    serde_urlencoded::from_str(q).unwrap()
}

pub(crate) fn param(location: &str, name: &str) -> Option<String> {
    query_of(location)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

pub(crate) fn auth_query(f: &Fixture, scope: &str, redirect: &str) -> String {
    serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", f.client_id.as_str()),
        ("redirect_uri", redirect),
        ("scope", scope),
        ("state", "xyz"),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", &challenge(VERIFIER)),
        ("code_challenge_method", "S256"),
    ])
    .unwrap()
}

pub(crate) async fn code_flow(app: &TestApp, f: &Fixture, scope: &str) -> Value {
    let loc = app
        .authorize(f, &auth_query(f, scope, REDIRECT), PASSWORD)
        .await;
    assert!(loc.starts_with(REDIRECT), "{loc}");
    assert_eq!(param(&loc, "state").as_deref(), Some("xyz"));
    assert_eq!(
        param(&loc, "iss").as_deref(),
        Some(app.state.oauth.issuer())
    );
    let code = param(&loc, "code").expect("code");
    let r = app
        .form(
            "/oauth/token",
            Some(&basic(&f.client_id, &f.secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut v = r.body.clone();
    v["code"] = Value::String(code);
    v
}

pub(crate) fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn discovery_lists_every_endpoint() {
    let app = TestApp::sqlite().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let r = app.call(Method::GET, path, None, None).await;
        assert_eq!(r.status, StatusCode::OK);
        let iss = app.state.oauth.issuer();
        assert_eq!(r.body["issuer"], iss);
        for (k, p) in [
            ("authorization_endpoint", "/oauth/authorize"),
            ("token_endpoint", "/oauth/token"),
            ("introspection_endpoint", "/oauth/introspect"),
            ("revocation_endpoint", "/oauth/revoke"),
            ("userinfo_endpoint", "/oauth/userinfo"),
            ("jwks_uri", "/.well-known/jwks.json"),
        ] {
            assert_eq!(r.body[k], format!("{iss}{p}"));
        }
        assert_eq!(r.body["code_challenge_methods_supported"], json!(["S256"]));
        assert!(r.body["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("urn:ietf:params:oauth:grant-type:token-exchange")));
    }
}

async fn code_flow_issues_tokens_that_work_and_rotate(app: &TestApp) {
    let f = app
        .fixture(
            "Acme",
            "private",
            &["contacts.readonly", "calendars.readonly"],
        )
        .await;
    let t = code_flow(app, &f, "openid email profile contacts.readonly").await;
    let at = t["access_token"].as_str().unwrap();
    let c = claims(at);
    assert_eq!(c["client_id"], f.client_id);
    assert_eq!(c["tenant"]["agency"], f.ag.id);
    assert_eq!(c["tenant"]["account"], f.ag.acc);
    assert_eq!(c["ins"], f.ins);
    let id = claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], f.client_id);
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(id["email"], f.email);
    // The token works on /v1, capped by its scopes and the user's bindings.
    let check = |perm: &str| json!({ "permission": perm, "resource": { "type": "contact", "agency": f.ag.id, "account": f.ag.acc } });
    let r = app.post("/v1/check", at, check("contacts.read")).await;
    assert_eq!(r.body["allowed"], true, "{}", r.body);
    let r = app.post("/v1/check", at, check("contacts.write")).await;
    assert_eq!(r.body["allowed"], false, "{}", r.body);
    // userinfo
    let r = app.get("/oauth/userinfo", at).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["email"], f.email);
    // Refresh rotates; the old token is refused; after the grace window its reuse revokes all.
    let rt1 = t["refresh_token"].as_str().unwrap();
    let auth = basic(&f.client_id, &f.secret);
    let r = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "refresh_token"), ("refresh_token", rt1)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rt2 = r.body["refresh_token"].as_str().unwrap().to_owned();
    let at2 = r.body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    let r = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "refresh_token"), ("refresh_token", rt1)],
        )
        .await;
    assert_eq!(r.body["error"], "invalid_grant");
    // Within the grace window nothing else happened: rt2 still works … after the window, a
    // reuse of rt1 revokes the whole family, rt2 and the access tokens included.
    app.clock.advance(10_000);
    let r = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "refresh_token"), ("refresh_token", rt1)],
        )
        .await;
    assert_eq!(r.body["error"], "invalid_grant");
    let r = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "refresh_token"), ("refresh_token", &rt2)],
        )
        .await;
    assert_eq!(r.body["error"], "invalid_grant", "the family is revoked");
    let r = app
        .form("/oauth/introspect", Some(&auth), &[("token", &at2)])
        .await;
    assert_eq!(r.body, json!({ "active": false }));
    let r = app.post("/v1/check", &at2, check("contacts.read")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

async fn code_replay_revokes_what_it_issued(app: &TestApp) {
    let f = app
        .fixture("Replay", "private", &["contacts.readonly"])
        .await;
    let t = code_flow(app, &f, "contacts.readonly").await;
    let auth = basic(&f.client_id, &f.secret);
    let code = t["code"].as_str().unwrap();
    let r = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "invalid_grant");
    let r = app
        .form(
            "/oauth/introspect",
            Some(&auth),
            &[("token", t["access_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(r.body["active"], false);
    let r = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(r.body["error"], "invalid_grant");
}

#[tokio::test]
async fn pkce_is_required_and_checked() {
    let app = TestApp::sqlite().await;
    let f = app.fixture("Pkce", "private", &["contacts.readonly"]).await;
    // Missing and plain challenges are refused at the authorization endpoint.
    let mut q: Vec<(String, String)> =
        serde_urlencoded::from_str(&auth_query(&f, "contacts.readonly", REDIRECT)).unwrap();
    q.retain(|(k, _)| k != "code_challenge" && k != "code_challenge_method");
    let (status, headers, _) = app
        .browser(
            Method::GET,
            &format!(
                "/oauth/authorize?{}",
                serde_urlencoded::to_string(&q).unwrap()
            ),
            "",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        param(headers["location"].to_str().unwrap(), "error").as_deref(),
        Some("invalid_request")
    );
    let plain = auth_query(&f, "contacts.readonly", REDIRECT).replace("S256", "plain");
    let (status, headers, _) = app
        .browser(Method::GET, &format!("/oauth/authorize?{plain}"), "", None)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        param(headers["location"].to_str().unwrap(), "error").as_deref(),
        Some("invalid_request")
    );
    // A wrong verifier and a missing one are refused at the token endpoint.
    let auth = basic(&f.client_id, &f.secret);
    let loc = app
        .authorize(&f, &auth_query(&f, "contacts.readonly", REDIRECT), PASSWORD)
        .await;
    let code = param(&loc, "code").unwrap();
    let r = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(r.body["error"], "invalid_request");
    let wrong = "x".repeat(50);
    let r = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &wrong),
            ],
        )
        .await;
    assert_eq!(r.body["error"], "invalid_grant");
}

#[tokio::test]
async fn redirect_uris_match_exactly_and_are_never_followed_when_wrong() {
    let app = TestApp::sqlite().await;
    let f = app
        .fixture("Redir", "private", &["contacts.readonly"])
        .await;
    for bad in [
        "https://app.example.com/callback/extra",
        "https://app.example.com/callbac",
        "https://app.example.com/callback?x=1",
        "https://APP.example.com/callback",
        "https://app.example.com/Callback",
        "https://app.example.com.evil.com/callback",
        "http://app.example.com/callback",
    ] {
        let (status, headers, page) = app
            .browser(
                Method::GET,
                &format!(
                    "/oauth/authorize?{}",
                    auth_query(&f, "contacts.readonly", bad)
                ),
                "",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(headers.get("location").is_none(), "{bad}");
        assert!(page.contains("redirect_uri"), "{page}");
    }
    // The token request must repeat the exact URI too.
    let loc = app
        .authorize(&f, &auth_query(&f, "contacts.readonly", REDIRECT), PASSWORD)
        .await;
    let code = param(&loc, "code").unwrap();
    let r = app
        .form(
            "/oauth/token",
            Some(&basic(&f.client_id, &f.secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://app.example.com/callback/"),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(r.body["error"], "invalid_grant");
}

#[tokio::test]
async fn wrong_email_and_wrong_password_look_the_same() {
    let app = TestApp::sqlite().await;
    let f = app
        .fixture("Signin", "private", &["contacts.readonly"])
        .await;
    let q = auth_query(&f, "contacts.readonly", REDIRECT);
    let uri = format!("/oauth/authorize?{q}");
    let (_, headers, page) = app.browser(Method::GET, &uri, "", None).await;
    let cookies = collect_cookies(&headers, String::new());
    let csrf = hidden(&page, "csrf_token");
    let mut pages = Vec::new();
    for (email, pw) in [
        ("nobody@signin.test", PASSWORD),
        (f.email.as_str(), "wrong password!!"),
    ] {
        let form = serde_urlencoded::to_string([
            ("email", email),
            ("password", pw),
            ("csrf_token", &csrf),
        ])
        .unwrap();
        let (status, _, page) = app.browser(Method::POST, &uri, &cookies, Some(form)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        pages.push(page.replace(email, "EMAIL"));
    }
    assert_eq!(pages[0], pages[1]);
    // Without the CSRF token, or with another browser's, the form is refused.
    let form =
        serde_urlencoded::to_string([("email", f.email.as_str()), ("password", PASSWORD)]).unwrap();
    let (status, _, _) = app.browser(Method::POST, &uri, &cookies, Some(form)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let form = serde_urlencoded::to_string([
        ("email", f.email.as_str()),
        ("password", PASSWORD),
        ("csrf_token", &csrf),
    ])
    .unwrap();
    let (status, _, _) = app.browser(Method::POST, &uri, "", Some(form)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Cookies: HttpOnly, SameSite, and not Secure only because the test issuer is loopback.
    for v in headers.get_all("set-cookie") {
        let v = v.to_str().unwrap();
        assert!(v.contains("HttpOnly") && v.contains("SameSite"), "{v}");
    }
}

async fn client_credentials_act_through_the_installation(app: &TestApp) {
    let f = app
        .fixture(
            "Machine",
            "private",
            &["contacts.readonly", "contacts.write"],
        )
        .await;
    let auth = basic(&f.client_id, &f.secret);
    let r = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "contacts.readonly"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get("refresh_token").is_none());
    let at = r.body["access_token"].as_str().unwrap().to_owned();
    let c = claims(&at);
    assert_eq!(c["sub"], f.client_id);
    assert_eq!(c["tenant"]["account"], f.ag.acc);
    let check = |perm: &str, acc: &str| json!({ "permission": perm, "resource": { "type": "contact", "agency": f.ag.id, "account": acc } });
    assert_eq!(
        app.post("/v1/check", &at, check("contacts.read", &f.ag.acc))
            .await
            .body["allowed"],
        true
    );
    assert_eq!(
        app.post("/v1/check", &at, check("contacts.write", &f.ag.acc))
            .await
            .body["allowed"],
        false
    );
    // A scope the installation did not consent is refused.
    let r = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "calendars.readonly"),
            ],
        )
        .await;
    assert_eq!(r.body["error"], "invalid_scope");
    // Wrong secret.
    let r = app
        .form(
            "/oauth/token",
            Some(&basic(&f.client_id, "tcs_wrong")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "invalid_client");
    // Introspection, then uninstall: the token goes inactive at once.
    let r = app
        .form("/oauth/introspect", Some(&auth), &[("token", &at)])
        .await;
    assert_eq!(r.body["active"], true, "{}", r.body);
    let r = app
        .delete(
            &format!(
                "/v1/agencies/{}/accounts/{}/installations/{}",
                f.ag.id, f.ag.acc, f.ins
            ),
            &app.admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = app
        .form("/oauth/introspect", Some(&auth), &[("token", &at)])
        .await;
    assert_eq!(r.body, json!({ "active": false }));
    assert_eq!(
        app.post("/v1/check", &at, check("contacts.read", &f.ag.acc))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.body["error"], "unauthorized_client");
}

async fn revocation_and_introspection_visibility(app: &TestApp) {
    let f = app
        .fixture("Revoke", "private", &["contacts.readonly"])
        .await;
    let g = app
        .fixture("Other", "private", &["contacts.readonly"])
        .await;
    let auth = basic(&f.client_id, &f.secret);
    let other = basic(&g.client_id, &g.secret);
    let at = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "client_credentials")],
        )
        .await
        .body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another client, and another agency's key, see nothing.
    assert_eq!(
        app.form("/oauth/introspect", Some(&other), &[("token", &at)])
            .await
            .body,
        json!({ "active": false })
    );
    let r = app
        .form(
            "/oauth/introspect",
            Some(&format!("Bearer {}", g.ag.key)),
            &[("token", &at)],
        )
        .await;
    assert_eq!(r.body, json!({ "active": false }));
    // The agency's own key does; so does the platform.
    let r = app
        .form(
            "/oauth/introspect",
            Some(&format!("Bearer {}", f.ag.key)),
            &[("token", &at)],
        )
        .await;
    assert_eq!(r.body["active"], true);
    // API keys introspect too.
    let r = app
        .form(
            "/oauth/introspect",
            Some(&format!("Bearer {}", app.admin)),
            &[("token", &f.ag.key)],
        )
        .await;
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["token_type"], "api_key");
    // Garbage is inactive; unauthenticated callers are refused.
    assert_eq!(
        app.form("/oauth/introspect", Some(&auth), &[("token", "garbage")])
            .await
            .body,
        json!({ "active": false })
    );
    assert_eq!(
        app.form("/oauth/introspect", None, &[("token", &at)])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // Another client cannot revoke it (200, nothing happens); its own client can.
    assert_eq!(
        app.form("/oauth/revoke", Some(&other), &[("token", &at)])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.form("/oauth/introspect", Some(&auth), &[("token", &at)])
            .await
            .body["active"],
        true
    );
    assert_eq!(
        app.form(
            "/oauth/revoke",
            Some(&auth),
            &[("token", &at), ("token_type_hint", "access_token")]
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.form("/oauth/introspect", Some(&auth), &[("token", &at)])
            .await
            .body,
        json!({ "active": false })
    );
}

#[tokio::test]
async fn jwt_attacks_are_refused() {
    let app = TestApp::sqlite().await;
    let f = app.fixture("Jwt", "private", &["contacts.readonly"]).await;
    let auth = basic(&f.client_id, &f.secret);
    let t = code_flow(&app, &f, "openid contacts.readonly").await;
    let at = t["access_token"].as_str().unwrap();
    let parts: Vec<&str> = at.split('.').collect();
    let payload = parts[1];
    let header = |h: Value| URL_SAFE_NO_PAD.encode(h.to_string());
    let kid = claims(&format!("x.{}.x", parts[0]))["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwks = app
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await
        .body;
    // The signing key's own JWK (the JWKS holds one key per algorithm, in kid order).
    let signer = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap();
    let public = signer["x"].as_str().unwrap().to_owned();
    let hs256 = {
        use hmac::{Hmac, Mac};
        let h = header(json!({ "alg": "HS256", "typ": "at+jwt", "kid": kid }));
        let mut mac = Hmac::<Sha256>::new_from_slice(public.as_bytes()).unwrap();
        mac.update(format!("{h}.{payload}").as_bytes());
        format!(
            "{h}.{payload}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    };
    let forged = [
        format!(
            "{}.{payload}.",
            header(json!({ "alg": "none", "typ": "at+jwt" }))
        ),
        format!(
            "{}.{payload}.{}",
            header(json!({ "alg": "none", "typ": "at+jwt", "kid": kid })),
            parts[2]
        ),
        hs256,
        format!(
            "{}.{payload}.{}",
            header(json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "unknown" })),
            parts[2]
        ),
        format!(
            "{}.{payload}.{}",
            header(json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "../../../../dev/null" })),
            parts[2]
        ),
        format!(
            "{}.{payload}.{}",
            header(
                json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": kid, "jku": "https://evil.example/jwks" })
            ),
            parts[2]
        ),
        format!(
            "{}.{payload}.{}",
            header(
                json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": kid, "x5u": "https://evil.example/x" })
            ),
            parts[2]
        ),
        format!(
            "{}.{payload}.{}",
            header(json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": kid, "jwk": jwks["keys"][0] })),
            parts[2]
        ),
        // An id token is not an access token.
        t["id_token"].as_str().unwrap().to_owned(),
    ];
    for token in &forged {
        let r = app
            .get(&format!("/v1/agencies/{}/accounts", f.ag.id), token)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token}: {}", r.body);
        let r = app
            .form("/oauth/introspect", Some(&auth), &[("token", token)])
            .await;
        assert_eq!(r.body, json!({ "active": false }), "{token}");
    }
    // Validly signed tokens with a wrong iss or aud, expired or not yet valid.
    let ring = app.state.keys.ring().unwrap();
    let key = ring.signing_key(T0 / 1000).unwrap();
    let base: tessera_token::AccessClaims = {
        let c = claims(at);
        tessera_token::AccessClaims {
            iss: c["iss"].as_str().unwrap().into(),
            sub: c["sub"].as_str().unwrap().into(),
            aud: vec![c["aud"].as_str().unwrap().into()],
            exp: c["exp"].as_i64().unwrap(),
            iat: c["iat"].as_i64().unwrap(),
            nbf: c["nbf"].as_i64().unwrap(),
            jti: "forged".into(),
            client_id: f.client_id.clone(),
            scope: "contacts.readonly".into(),
            tenant: tessera_token::Tenant {
                agency: f.ag.id.clone(),
                account: Some(f.ag.acc.clone()),
            },
            act: None,
            extra: serde_json::Map::new(),
        }
    };
    let valid = tessera_token::encode_access_token(&base, key);
    assert_eq!(
        app.form("/oauth/introspect", Some(&auth), &[("token", &valid)])
            .await
            .body["active"],
        true
    );
    let variants = [
        tessera_token::AccessClaims {
            iss: "https://evil.example".into(),
            ..base.clone()
        },
        tessera_token::AccessClaims {
            aud: vec!["https://other.example".into()],
            ..base.clone()
        },
        tessera_token::AccessClaims {
            exp: T0 / 1000 - 600,
            iat: T0 / 1000 - 1200,
            nbf: T0 / 1000 - 1200,
            ..base.clone()
        },
        tessera_token::AccessClaims {
            nbf: T0 / 1000 + 3600,
            ..base.clone()
        },
    ];
    for (i, c) in variants.iter().enumerate() {
        let token = tessera_token::encode_access_token(c, key);
        let r = app
            .get(&format!("/v1/agencies/{}/accounts", f.ag.id), &token)
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "variant {i}: {}",
            r.body
        );
    }
}

#[tokio::test]
async fn scope_escalation_is_refused() {
    let app = TestApp::sqlite().await;
    let f = app
        .fixture(
            "Scopes",
            "private",
            &["contacts.readonly", "calendars.readonly"],
        )
        .await;
    let auth = basic(&f.client_id, &f.secret);
    let t = code_flow(&app, &f, "contacts.readonly").await;
    let r = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
                ("scope", "contacts.readonly calendars.readonly"),
            ],
        )
        .await;
    assert_eq!(r.body["error"], "invalid_scope");
    let at = t["access_token"].as_str().unwrap();
    let r = app
        .form(
            "/oauth/token",
            None,
            &[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", at),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
                ("scope", "contacts.write"),
            ],
        )
        .await;
    assert_eq!(r.body["error"], "invalid_scope", "{}", r.body);
    // Downscoping works: fewer scopes, never longer-lived.
    let r = app
        .form(
            "/oauth/token",
            None,
            &[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", at),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
                ("scope", "contacts.readonly"),
                ("expires_in", "60"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["expires_in"], 60);
    assert_eq!(
        r.body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
}

#[tokio::test]
async fn marketplace_apps_never_get_internal_scopes() {
    let app = TestApp::sqlite().await;
    let ag = app.agency("Partner").await;
    let r = app.post(&format!("/v1/agencies/{}/apps", ag.id), &app.admin, json!({ "name": "Market", "redirect_uris": [REDIRECT], "scopes": ["contacts.readonly", "api_keys.readonly"], "confidential": true, "kind": "marketplace" })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // Only platform admins register first-party apps.
    let r = app.post(&format!("/v1/agencies/{}/apps", ag.id), &ag.key, json!({ "name": "Mine", "redirect_uris": [REDIRECT], "scopes": ["contacts.readonly"], "confidential": true, "kind": "first_party" })).await;
    assert!(r.status == StatusCode::FORBIDDEN, "{}", r.body);
    // Asking for an internal scope at the authorization endpoint is invalid_scope.
    let f = app
        .fixture("Market", "marketplace", &["contacts.readonly"])
        .await;
    let (status, headers, _) = app
        .browser(
            Method::GET,
            &format!(
                "/oauth/authorize?{}",
                auth_query(&f, "contacts.readonly api_keys.readonly", REDIRECT)
            ),
            "",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        param(headers["location"].to_str().unwrap(), "error").as_deref(),
        Some("invalid_scope")
    );
    let r = app
        .form(
            "/oauth/token",
            Some(&basic(&f.client_id, &f.secret)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "api_keys.readonly"),
            ],
        )
        .await;
    assert_eq!(r.body["error"], "invalid_scope");
}

async fn impersonation_is_bounded_audited_and_not_chained(app: &TestApp) {
    // Support staff use the platform's first-party app, which may hold internal scopes.
    let f = app
        .fixture(
            "Imp",
            "first_party",
            &["contacts.write", "users.impersonate"],
        )
        .await;
    let support = app
        .user_with_password(&f.ag, "support@imp.test", "agency_admin", false)
        .await;
    let target = app
        .user_with_password(&f.ag, "target@imp.test", "account_user", true)
        .await;
    let as_user = |email: &str| Fixture {
        ag: f.ag.clone(),
        client_id: f.client_id.clone(),
        secret: f.secret.clone(),
        ins: f.ins.clone(),
        email: email.to_owned(),
    };
    let t = code_flow(
        app,
        &as_user("support@imp.test"),
        "contacts.write users.impersonate",
    )
    .await;
    let at = t["access_token"].as_str().unwrap();
    let exchange = |subject: &str, target: &str, reason: Option<&str>| {
        let mut p = vec![
            (
                "grant_type".to_owned(),
                "urn:ietf:params:oauth:grant-type:token-exchange".to_owned(),
            ),
            ("subject_token".to_owned(), subject.to_owned()),
            (
                "subject_token_type".to_owned(),
                "urn:ietf:params:oauth:token-type:access_token".to_owned(),
            ),
            ("requested_subject".to_owned(), target.to_owned()),
        ];
        if let Some(r) = reason {
            p.push(("reason".to_owned(), r.to_owned()));
        }
        p
    };
    let app_ref = app;
    let send = |p: Vec<(String, String)>| async move {
        let pairs: Vec<(&str, &str)> = p.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        app_ref.form("/oauth/token", None, &pairs).await
    };
    // A reason is required.
    assert_eq!(
        send(exchange(at, &target, None)).await.body["error"],
        "invalid_request"
    );
    let r = send(exchange(at, &target, Some("ticket 42"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get("refresh_token").is_none());
    assert!(r.body["expires_in"].as_i64().unwrap() <= 3600);
    assert_eq!(
        r.body["scope"], "contacts.write",
        "the impersonation policy drops users.impersonate"
    );
    let it = r.body["access_token"].as_str().unwrap().to_owned();
    let c = claims(&it);
    assert_eq!(c["sub"], target);
    assert_eq!(c["act"]["sub"], support);
    // Acting under it is audited, with the impersonator as the actor.
    let check = json!({ "permission": "contacts.read", "resource": { "type": "contact", "agency": f.ag.id, "account": f.ag.acc } });
    let r = app.post("/v1/check", &it, check).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let audit = app
        .get(
            &format!("/v1/agencies/{}/audit?action=impersonation.start", f.ag.id),
            &app.admin,
        )
        .await;
    assert_eq!(audit.body["items"][0]["actor"], support, "{}", audit.body);
    assert_eq!(audit.body["items"][0]["on_behalf_of"], target);
    let uses = app
        .get(
            &format!(
                "/v1/agencies/{}/audit?action=impersonation.request",
                f.ag.id
            ),
            &app.admin,
        )
        .await;
    assert_eq!(uses.body["items"][0]["actor"], support, "{}", uses.body);
    assert_eq!(uses.body["items"][0]["detail"]["path"], "/v1/check");
    // No impersonation from an impersonation token.
    assert_eq!(
        send(exchange(&it, &support, Some("again"))).await.body["error"],
        "invalid_grant"
    );
    // Disabling the impersonator ends the sessions they opened.
    let it2 = send(exchange(at, &target, Some("ticket 43"))).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let users = format!("/v1/agencies/{}/users/{}", f.ag.id, support);
    let r = app
        .patch(&users, &app.admin, json!({ "status": "disabled" }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let check = json!({ "permission": "contacts.read", "resource": { "type": "contact", "agency": f.ag.id, "account": f.ag.acc } });
    let r = app.post("/v1/check", &it2, check).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let r = app
        .patch(&users, &app.admin, json!({ "status": "active" }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Not a user of another agency (the same answer as a missing one).
    let other = app.agency("Elsewhere").await;
    assert_eq!(
        send(exchange(at, &other.user, Some("x"))).await.body["error"],
        "invalid_target"
    );
    // Without users.impersonate: refused.
    let tt = code_flow(
        app,
        &as_user("target@imp.test"),
        "contacts.write users.impersonate",
    )
    .await;
    let r = send(exchange(
        tt["access_token"].as_str().unwrap(),
        &support,
        Some("x"),
    ))
    .await;
    assert_eq!(
        r.body["error"], "invalid_grant",
        "lacks users.impersonate: {}",
        r.body
    );
    // Not a more privileged user: a helpdesk role may impersonate but holds less than an admin.
    let role = app
        .post(
            &format!("/v1/agencies/{}/roles", f.ag.id),
            &app.admin,
            json!({ "name": "helpdesk", "permissions": ["users.impersonate", "contacts.read"] }),
        )
        .await;
    assert_eq!(role.status, StatusCode::CREATED, "{}", role.body);
    app.user_with_password(&f.ag, "helpdesk@imp.test", &role.id(), false)
        .await;
    let ht = code_flow(
        app,
        &as_user("helpdesk@imp.test"),
        "contacts.write users.impersonate",
    )
    .await;
    let r = send(exchange(
        ht["access_token"].as_str().unwrap(),
        &support,
        Some("x"),
    ))
    .await;
    assert_eq!(
        r.body["error"], "invalid_target",
        "more privileged: {}",
        r.body
    );
}

async fn apps_and_installations_respect_tenants(app: &TestApp) {
    let a = app.fixture("Aa", "private", &["contacts.readonly"]).await;
    let b = app.agency("Bb").await;
    // B cannot install A's private app, nor see it.
    let r = app
        .post(
            &format!("/v1/agencies/{}/accounts/{}/installations", b.id, b.acc),
            &app.admin,
            json!({ "app": a.client_id, "scopes": ["contacts.readonly"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = app
        .get(
            &format!("/v1/agencies/{}/apps/{}", b.id, a.client_id),
            &app.admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A marketplace app of A can be installed by B; installing consents only held scopes.
    let m = app.post(&format!("/v1/agencies/{}/apps", a.ag.id), &app.admin, json!({ "name": "Market", "redirect_uris": [REDIRECT], "scopes": ["contacts.readonly"], "confidential": true, "kind": "marketplace" })).await;
    let mid = m.body["client_id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/v1/agencies/{}/accounts/{}/installations", b.id, b.acc),
            &b.key,
            json!({ "app": mid, "scopes": ["contacts.readonly"] }),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "B's key lacks installations.write: {}",
        r.body
    );
    let r = app
        .post(
            &format!("/v1/agencies/{}/accounts/{}/installations", b.id, b.acc),
            &app.admin,
            json!({ "app": mid, "scopes": ["contacts.readonly"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post(
            &format!("/v1/agencies/{}/accounts/{}/installations", b.id, b.acc),
            &app.admin,
            json!({ "app": mid, "scopes": ["contacts.readonly"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Secrets are shown once and never listed.
    let r = app
        .get(&format!("/v1/agencies/{}/apps", a.ag.id), &app.admin)
        .await;
    assert!(!r.body.to_string().contains("tcs_"), "{}", r.body);
    // Redirect URIs: https or loopback only.
    let r = app.post(&format!("/v1/agencies/{}/apps", a.ag.id), &app.admin, json!({ "name": "Bad", "redirect_uris": ["http://example.com/cb"], "scopes": [], "confidential": false })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

on_both_backends!(
    code_flow_issues_tokens_that_work_and_rotate,
    code_replay_revokes_what_it_issued,
    client_credentials_act_through_the_installation,
    revocation_and_introspection_visibility,
    impersonation_is_bounded_audited_and_not_chained,
    apps_and_installations_respect_tenants,
);

#[tokio::test]
async fn an_es256_app_gets_es256_tokens() {
    let app = TestApp::sqlite().await;
    let ag = app.agency("Legacy").await;
    let r = app.post(&format!("/v1/agencies/{}/apps", ag.id), &app.admin, json!({ "name": "Old client", "redirect_uris": [REDIRECT], "scopes": ["contacts.readonly"], "confidential": true, "token_signing_alg": "ES256" })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["token_signing_alg"], "ES256");
    let (id, secret) = (r.id(), r.body["client_secret"].as_str().unwrap().to_owned());
    let ins = app
        .post(
            &format!("/v1/agencies/{}/accounts/{}/installations", ag.id, ag.acc),
            &app.admin,
            json!({ "app": id, "scopes": ["contacts.readonly"] }),
        )
        .await;
    assert_eq!(ins.status, StatusCode::CREATED);
    let auth = basic(&id, &secret);
    let t = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let at = t.body["access_token"].as_str().unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(at.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "at+jwt");
    // Published, and it verifies with the JWKS.
    let jwks = app
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await
        .body;
    let set = tessera_token::JwkSet::from_json(&jwks).unwrap();
    let v = tessera_token::Validation::access_token(
        app.state.oauth.issuer(),
        Some(app.state.oauth.issuer()),
        T0 / 1000,
    );
    assert!(tessera_token::verify(at, &set, &v).is_ok());
    assert_eq!(
        app.form("/oauth/introspect", Some(&auth), &[("token", at)])
            .await
            .body["active"],
        true
    );
    // Anything else is refused.
    for alg in ["PS256", "HS256", "none", "rs256"] {
        let r = app.post(&format!("/v1/agencies/{}/apps", ag.id), &app.admin, json!({ "name": "x", "redirect_uris": [REDIRECT], "scopes": [], "confidential": true, "token_signing_alg": alg })).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{alg}");
    }
}

/// OpenID Connect Core §15.1: "OPs MUST support signing ID Tokens with the RSA SHA-256
/// algorithm". An RS256 app's id token and access token are both RS256, verify from the JWKS,
/// and the access token works on /v1 and userinfo.
#[tokio::test]
async fn an_rs256_app_gets_rs256_id_and_access_tokens() {
    let app = TestApp::sqlite().await;
    let f = app
        .fixture_signed("Rsa", "private", &["contacts.readonly"], "RS256")
        .await;
    let t = code_flow(&app, &f, "openid email contacts.readonly").await;
    let jwks = app
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await
        .body;
    let set = tessera_token::JwkSet::from_json(&jwks).unwrap();
    let iss = app.state.oauth.issuer();
    let alg_of =
        |jwt: &str| claims(&format!("x.{}.x", jwt.split('.').next().unwrap()))["alg"].clone();
    let id_token = t["id_token"].as_str().unwrap();
    assert_eq!(alg_of(id_token), "RS256");
    let v = tessera_token::Validation::id_token(iss, &f.client_id, T0 / 1000);
    let id = tessera_token::verify_id_token(id_token, &set, &v).unwrap();
    assert_eq!(id.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(alg_of(at), "RS256");
    let v = tessera_token::Validation::access_token(iss, Some(iss), T0 / 1000);
    assert!(tessera_token::verify(at, &set, &v).is_ok());
    let r = app.get("/oauth/userinfo", at).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["email"], f.email);
    let check = json!({ "permission": "contacts.read", "resource": { "type": "contact", "agency": f.ag.id, "account": f.ag.acc } });
    let r = app.post("/v1/check", at, check).await;
    assert_eq!(r.body["allowed"], true, "{}", r.body);
    // Refreshed tokens stay RS256.
    let r = app
        .form(
            "/oauth/token",
            Some(&basic(&f.client_id, &f.secret)),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(alg_of(r.body["access_token"].as_str().unwrap()), "RS256");
}

#[tokio::test]
async fn deleting_a_marketplace_app_stops_its_tokens_in_every_agency() {
    let app = TestApp::sqlite().await;
    let partner = app.agency("Vendor").await;
    let m = app.post(&format!("/v1/agencies/{}/apps", partner.id), &app.admin, json!({ "name": "Market", "redirect_uris": [REDIRECT], "scopes": ["contacts.readonly"], "confidential": true, "kind": "marketplace" })).await;
    let (id, secret) = (m.id(), m.body["client_secret"].as_str().unwrap().to_owned());
    let customer = app.agency("Customer").await;
    let ins = app
        .post(
            &format!(
                "/v1/agencies/{}/accounts/{}/installations",
                customer.id, customer.acc
            ),
            &app.admin,
            json!({ "app": id, "scopes": ["contacts.readonly"] }),
        )
        .await;
    assert_eq!(ins.status, StatusCode::CREATED, "{}", ins.body);
    let auth = basic(&id, &secret);
    let at = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "client_credentials")],
        )
        .await
        .body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let check = json!({ "permission": "contacts.read", "resource": { "type": "contact", "agency": customer.id, "account": customer.acc } });
    assert_eq!(
        app.post("/v1/check", &at, check.clone()).await.body["allowed"],
        true
    );
    let r = app
        .delete(
            &format!("/v1/agencies/{}/apps/{}", partner.id, id),
            &app.admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.post("/v1/check", &at, check).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.form(
            "/oauth/introspect",
            Some(&format!("Bearer {}", app.admin)),
            &[("token", &at)]
        )
        .await
        .body,
        json!({ "active": false })
    );
    assert_eq!(
        app.form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "client_credentials")]
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
}

/// The findings of the outside security and interop test (issue 8).
mod musts;
/// A store outage answers 503, never an inactive token (RFC 7662, RFC 6750).
mod outage;
mod signin_limit;
