//! Findings of the outside security and interop test (issue 8), one regression test each:
//! a failed code redemption's retry, `account=` without an installation, token exchange by
//! another client, impersonation scopes, `max_age` and `prompt`, RFC 6750 challenges,
//! `response_mode`, revocation by a public client, and `no-store` on every secret.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{
    auth_query, basic, claims, code_flow, collect_cookies, hidden, param, Fixture, PASSWORD,
    REDIRECT, VERIFIER,
};
use crate::harness::{TestApp, T0};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Redeems `code` with `auth` (Basic) and `verifier`.
async fn redeem(app: &TestApp, auth: &str, code: &str, verifier: &str) -> crate::harness::Resp {
    app.form(
        "/oauth/token",
        Some(auth),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// Finding 1: a wrong verifier consumes the code; the retry is `invalid_grant`, not a 500.
async fn a_failed_redemption_retried_is_invalid_grant(app: &TestApp) {
    let f = app
        .fixture("Retry", "private", &["contacts.readonly"])
        .await;
    let auth = basic(&f.client_id, &f.secret);
    let loc = app
        .authorize(&f, &auth_query(&f, "contacts.readonly", REDIRECT), PASSWORD)
        .await;
    let code = param(&loc, "code").expect("code");
    let r = redeem(app, &auth, &code, &"x".repeat(50)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["error"], "invalid_grant");
    // The retry with the right verifier meets a consumed code whose grant was never created.
    let r = redeem(app, &auth, &code, VERIFIER).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["error"], "invalid_grant");
    // The replay is still recorded.
    let audit = app
        .get(
            &format!("/v1/agencies/{}/audit?action=oauth.code_replayed", f.ag.id),
            &app.admin,
        )
        .await;
    assert_eq!(
        audit.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        audit.body
    );
}

/// Installs `client_id` on the whole agency of `f` (no API creates one), with `scopes`.
async fn install_agency_wide(app: &TestApp, f: &Fixture, scopes: &[&str]) -> String {
    use tessera_server::audit::record::audit_event;
    use tessera_server::caller::RequestMeta;
    let agency: tessera_core::AgencyId = f.ag.id.parse().unwrap();
    let app_id: tessera_core::AppId = f.client_id.parse().unwrap();
    let ins = tessera_store::Installation {
        id: tessera_core::InstallationId::generate_at(
            u64::try_from(app.clock_now()).unwrap(),
            &mut rand::thread_rng(),
        ),
        agency_id: agency.clone(),
        app_id,
        app_agency_id: agency.clone(),
        account: None,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        created_by: "test".into(),
        created_at: app.clock_now(),
        revoked_at: None,
    };
    let audit = audit_event(
        &app.state,
        &RequestMeta::default(),
        "test",
        None,
        tessera_server::audit::action::AuditAction::InstallationCreate,
        Some(ins.id.as_str()),
        tessera_store::Outcome::Success,
        json!({}),
    );
    app.state
        .store
        .create_installation(&app.state.admission.admit(agency.clone()), &ins, &audit)
        .await
        .unwrap();
    app.state.engine.invalidate(&agency);
    ins.id.to_string()
}

impl TestApp {
    fn clock_now(&self) -> i64 {
        use tessera_server::clock::Clock as _;
        self.clock.now()
    }
}

/// Finding 2: `account=` must go through an installation covering the account, capped by its
/// consented scopes; without one, the request is refused.
async fn account_grants_go_through_an_installation(app: &TestApp) {
    // The app may hold two scopes; its installation on the first account consented one.
    let f = app
        .fixture(
            "Acct",
            "private",
            &["contacts.readonly", "calendars.readonly"],
        )
        .await;
    // The fixture's installation consented both: replace it by a narrower one.
    let r = app
        .delete(
            &format!(
                "/v1/agencies/{}/accounts/{}/installations/{}",
                f.ag.id, f.ag.acc, f.ins
            ),
            &app.admin,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let ins = app
        .post(
            &format!(
                "/v1/agencies/{}/accounts/{}/installations",
                f.ag.id, f.ag.acc
            ),
            &app.admin,
            json!({ "app": f.client_id, "scopes": ["contacts.readonly"] }),
        )
        .await;
    assert_eq!(ins.status, StatusCode::CREATED, "{}", ins.body);
    let ins = ins.id();
    let other = app
        .post(
            &format!("/v1/agencies/{}/accounts", f.ag.id),
            &app.admin,
            json!({ "name": "Not installed" }),
        )
        .await
        .id();
    let with_account = |acc: &str| {
        format!(
            "{}&account={acc}",
            auth_query(&f, "contacts.readonly calendars.readonly", REDIRECT)
        )
    };
    // An account without an installation: refused, back to the client.
    let loc = app.authorize(&f, &with_account(&other), PASSWORD).await;
    assert!(loc.starts_with(REDIRECT), "{loc}");
    assert_eq!(
        param(&loc, "error").as_deref(),
        Some("access_denied"),
        "{loc}"
    );
    assert!(param(&loc, "code").is_none());
    // The installed account: through its installation, capped by its consented scopes.
    let loc = app.authorize(&f, &with_account(&f.ag.acc), PASSWORD).await;
    let code = param(&loc, "code").unwrap_or_else(|| panic!("{loc}"));
    let r = redeem(app, &basic(&f.client_id, &f.secret), &code, VERIFIER).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let c = claims(r.body["access_token"].as_str().unwrap());
    assert_eq!(c["ins"], ins);
    assert_eq!(c["tenant"]["account"], f.ag.acc);
    assert_eq!(c["scope"], "contacts.readonly", "{c}");
    // An agency-wide installation covers every account of the agency, with its own scopes.
    let wide = install_agency_wide(app, &f, &["calendars.readonly"]).await;
    let loc = app.authorize(&f, &with_account(&other), PASSWORD).await;
    let code = param(&loc, "code").unwrap_or_else(|| panic!("{loc}"));
    let r = redeem(app, &basic(&f.client_id, &f.secret), &code, VERIFIER).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let c = claims(r.body["access_token"].as_str().unwrap());
    assert_eq!(c["ins"], wide);
    assert_eq!(c["tenant"]["account"], other);
    assert_eq!(c["scope"], "calendars.readonly", "{c}");
    // A malformed account id is a clear error.
    let loc = app.authorize(&f, &with_account("nope"), PASSWORD).await;
    assert_eq!(param(&loc, "error").as_deref(), Some("invalid_request"));
}

fn exchange_params<'a>(subject: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS),
    ];
    p.extend_from_slice(extra);
    p
}

/// Finding 3: only the subject token's own client may exchange it.
async fn exchange_is_bound_to_the_subject_tokens_client(app: &TestApp) {
    let f = app
        .fixture(
            "Xchg",
            "first_party",
            &["contacts.readonly", "users.impersonate"],
        )
        .await;
    let target = app
        .user_with_password(&f.ag, "target@xchg.test", "account_user", true)
        .await;
    let t = code_flow(app, &f, "contacts.readonly users.impersonate").await;
    let at = t["access_token"].as_str().unwrap();
    // Another agency's marketplace client.
    let m = app.agency("Thief").await;
    let r = app.post(&format!("/v1/agencies/{}/apps", m.id), &app.admin, json!({ "name": "Thief", "redirect_uris": [REDIRECT], "scopes": ["contacts.readonly"], "confidential": true, "kind": "marketplace" })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let thief = basic(
        r.body["client_id"].as_str().unwrap(),
        r.body["client_secret"].as_str().unwrap(),
    );
    let r = app
        .form("/oauth/token", Some(&thief), &exchange_params(at, &[]))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["error"], "invalid_grant");
    assert!(r.body.get("access_token").is_none());
    // Impersonation through another client: the same rule.
    let r = app
        .form(
            "/oauth/token",
            Some(&thief),
            &exchange_params(
                at,
                &[("requested_subject", &target), ("reason", "ticket 1")],
            ),
        )
        .await;
    assert_eq!(r.body["error"], "invalid_grant", "{}", r.body);
    // Both refusals are audited in the subject's agency.
    let audit = app
        .get(
            &format!("/v1/agencies/{}/audit?action=token.exchange", f.ag.id),
            &app.admin,
        )
        .await;
    let denied: Vec<&Value> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "denied")
        .collect();
    assert_eq!(denied.len(), 2, "{}", audit.body);
    assert_eq!(denied[0]["detail"]["why"], "client_mismatch");
    // The token's own client, and no client at all, may exchange it; the result is its.
    let own = basic(&f.client_id, &f.secret);
    for auth in [Some(own.as_str()), None] {
        let r = app
            .form(
                "/oauth/token",
                auth,
                &exchange_params(at, &[("scope", "contacts.readonly")]),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            claims(r.body["access_token"].as_str().unwrap())["client_id"],
            f.client_id
        );
    }
}

/// Finding 4: an impersonation token lists only the scopes the policy leaves whole.
async fn impersonation_lists_only_effective_scopes(app: &TestApp) {
    let f = app
        .fixture(
            "Effective",
            "first_party",
            &["contacts.write", "users.write", "users.impersonate"],
        )
        .await;
    let support = Fixture {
        ag: f.ag.clone(),
        client_id: f.client_id.clone(),
        secret: f.secret.clone(),
        ins: f.ins.clone(),
        email: "support@effective.test".into(),
    };
    app.user_with_password(&f.ag, &support.email, "agency_admin", false)
        .await;
    // The target holds what the impersonator holds, users.* included.
    let target = app
        .user_with_password(&f.ag, "peer@effective.test", "agency_admin", false)
        .await;
    let t = code_flow(
        app,
        &support,
        "contacts.write users.write users.impersonate",
    )
    .await;
    let at = t["access_token"].as_str().unwrap();
    for extra in [
        vec![],
        vec![("scope", "contacts.write users.write users.impersonate")],
    ] {
        let mut p = vec![
            ("requested_subject", target.as_str()),
            ("reason", "ticket 7"),
        ];
        p.extend(extra);
        let r = app
            .form("/oauth/token", None, &exchange_params(at, &p))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["scope"], "contacts.write", "{}", r.body);
        let c = claims(r.body["access_token"].as_str().unwrap());
        assert_eq!(c["scope"], "contacts.write", "{c}");
        assert!(c["act"]["sub"].is_string(), "{c}");
    }
    // Only scopes the policy removes: nothing is left, a clear error.
    let r = app
        .form(
            "/oauth/token",
            None,
            &exchange_params(
                at,
                &[
                    ("requested_subject", &target),
                    ("reason", "ticket 8"),
                    ("scope", "users.write"),
                ],
            ),
        )
        .await;
    assert_eq!(r.body["error"], "invalid_scope", "{}", r.body);
}

/// A browser session: the cookies after signing in, and the consent page.
async fn signed_in(app: &TestApp, f: &Fixture) -> String {
    let uri = format!(
        "/oauth/authorize?{}",
        auth_query(f, "openid contacts.readonly", REDIRECT)
    );
    let (status, headers, page) = app.browser(Method::GET, &uri, "", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let cookies = collect_cookies(&headers, String::new());
    let form = serde_urlencoded::to_string([
        ("email", f.email.as_str()),
        ("password", PASSWORD),
        ("csrf_token", &hidden(&page, "csrf_token")),
    ])
    .unwrap();
    let (status, headers, page) = app.browser(Method::POST, &uri, &cookies, Some(form)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("decision"), "{page}");
    collect_cookies(&headers, cookies)
}

fn is_sign_in(page: &str) -> bool {
    page.contains("name=\"password\"") && !page.contains("decision")
}

/// Finding 5: `max_age` and `prompt=login` force a new sign-in; `auth_time` is returned.
async fn max_age_and_prompt_login_force_a_new_sign_in(app: &TestApp) {
    let f = app
        .fixture("MaxAge", "private", &["contacts.readonly"])
        .await;
    let cookies = signed_in(app, &f).await;
    let base = auth_query(&f, "openid contacts.readonly", REDIRECT);
    let get = |extra: &str| {
        let uri = format!("/oauth/authorize?{base}{extra}");
        let cookies = cookies.clone();
        async move { app.browser(Method::GET, &uri, &cookies, None).await }
    };
    // The session is reused without max_age, and within it.
    let (status, _, page) = get("").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("decision"), "consent expected: {page}");
    app.clock.advance(120_000);
    let (_, _, page) = get("&max_age=3600").await;
    assert!(page.contains("decision"), "consent expected: {page}");
    // Older than max_age, max_age=0 and prompt=login: the sign-in page again.
    for extra in ["&max_age=60", "&max_age=0", "&prompt=login"] {
        let (status, _, page) = get(extra).await;
        assert_eq!(status, StatusCode::OK, "{extra}: {page}");
        assert!(is_sign_in(&page), "{extra}: sign-in expected: {page}");
    }
    // prompt=none cannot sign in: login_required, without and with a too old session.
    let uri = format!("/oauth/authorize?{base}&prompt=none");
    let (status, headers, _) = app.browser(Method::GET, &uri, "", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let loc = headers["location"].to_str().unwrap();
    assert_eq!(param(loc, "error").as_deref(), Some("login_required"));
    let (_, headers, _) = get("&prompt=none&max_age=0").await;
    let loc = headers["location"].to_str().unwrap();
    assert_eq!(param(loc, "error").as_deref(), Some("login_required"));
    // A malformed max_age is refused.
    let (status, headers, _) = get("&max_age=-1").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let loc = headers["location"].to_str().unwrap();
    assert_eq!(param(loc, "error").as_deref(), Some("invalid_request"));
    // Signing in again under max_age=0 completes, and the id token says when.
    app.clock.advance(5_000);
    let signed_at = (T0 + 125_000) / 1000;
    let query = format!("{base}&max_age=0");
    let loc = app.authorize(&f, &query, PASSWORD).await;
    let code = param(&loc, "code").unwrap_or_else(|| panic!("{loc}"));
    let r = redeem(app, &basic(&f.client_id, &f.secret), &code, VERIFIER).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = claims(r.body["id_token"].as_str().unwrap());
    assert_eq!(id["auth_time"], json!(signed_at), "{id}");
}

/// Finding 5, continued: a decision posted long after a forced sign-in signs in again.
#[tokio::test]
async fn a_stale_consent_under_max_age_signs_in_again() {
    let app = TestApp::sqlite().await;
    let f = app
        .fixture("Stale", "private", &["contacts.readonly"])
        .await;
    let uri = format!(
        "/oauth/authorize?{}&max_age=0",
        auth_query(&f, "openid contacts.readonly", REDIRECT)
    );
    let (_, headers, page) = app.browser(Method::GET, &uri, "", None).await;
    let cookies = collect_cookies(&headers, String::new());
    let form = serde_urlencoded::to_string([
        ("email", f.email.as_str()),
        ("password", PASSWORD),
        ("csrf_token", &hidden(&page, "csrf_token")),
    ])
    .unwrap();
    let (_, headers, page) = app.browser(Method::POST, &uri, &cookies, Some(form)).await;
    let cookies = collect_cookies(&headers, cookies);
    assert!(page.contains("decision"), "{page}");
    let csrf = hidden(&page, "csrf_token");
    app.clock.advance(20 * 60 * 1000);
    let form = serde_urlencoded::to_string([("decision", "allow"), ("csrf_token", &csrf)]).unwrap();
    let (_, _, page) = app.browser(Method::POST, &uri, &cookies, Some(form)).await;
    assert!(is_sign_in(&page), "sign-in expected: {page}");
}

/// Finding 6: userinfo's 403 and 401 carry their RFC 6750 challenges.
#[tokio::test]
async fn userinfo_errors_carry_their_challenge() {
    let app = TestApp::sqlite().await;
    let f = app.fixture("Info", "private", &["contacts.readonly"]).await;
    let cc = app
        .form(
            "/oauth/token",
            Some(&basic(&f.client_id, &f.secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let at = cc.body["access_token"].as_str().unwrap();
    let r = app.get("/oauth/userinfo", at).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.body["error"], "insufficient_scope");
    let www = r.headers["www-authenticate"].to_str().unwrap();
    assert!(www.starts_with("Bearer "), "{www}");
    assert!(www.contains("error=\"insufficient_scope\""), "{www}");
    assert!(www.contains("scope=\"openid\""), "{www}");
    // A presented token that is not valid: invalid_token.
    let r = app.get("/oauth/userinfo", "a.b.c").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let www = r.headers["www-authenticate"].to_str().unwrap();
    assert!(www.contains("error=\"invalid_token\""), "{www}");
    // No token at all: a bare challenge.
    let r = app.call(Method::GET, "/oauth/userinfo", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let www = r.headers["www-authenticate"].to_str().unwrap();
    assert!(!www.contains("invalid_token"), "{www}");
}

/// Finding 7: the `/v1` challenge names `invalid_token` only when a credential was refused.
#[tokio::test]
async fn v1_challenge_says_invalid_token_only_for_a_presented_credential() {
    let app = TestApp::sqlite().await;
    let r = app.call(Method::GET, "/v1/catalog", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"tessera\"");
    for bad in [
        "a.b.c",
        "tsk_0000000000000000000000000000000000000000",
        "garbage",
    ] {
        for path in ["/v1/catalog", "/v1/agencies"] {
            let r = app.get(path, bad).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}");
            assert_eq!(r.code(), "unauthenticated");
            assert_eq!(
                r.headers["www-authenticate"], "Bearer realm=\"tessera\", error=\"invalid_token\"",
                "{bad} on {path}"
            );
        }
    }
}

/// Finding 8: only `response_mode=query` is served; discovery says so.
#[tokio::test]
async fn unsupported_response_modes_are_refused() {
    let app = TestApp::sqlite().await;
    let f = app.fixture("Mode", "private", &["contacts.readonly"]).await;
    let base = auth_query(&f, "contacts.readonly", REDIRECT);
    for mode in ["form_post", "fragment", "query.jwt", "nonsense"] {
        let uri = format!("/oauth/authorize?{base}&response_mode={mode}");
        let (status, headers, page) = app.browser(Method::GET, &uri, "", None).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{mode}: {page}");
        let loc = headers["location"].to_str().unwrap();
        assert!(loc.starts_with(&format!("{REDIRECT}?")), "{loc}");
        assert_eq!(param(loc, "error").as_deref(), Some("invalid_request"));
        assert_eq!(param(loc, "state").as_deref(), Some("xyz"));
    }
    let (status, _, page) = app
        .browser(
            Method::GET,
            &format!("/oauth/authorize?{base}&response_mode=query"),
            "",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // An untrusted redirect URI is never followed, whatever the mode.
    let bad = auth_query(&f, "contacts.readonly", "https://evil.example/cb");
    let (status, headers, _) = app
        .browser(
            Method::GET,
            &format!("/oauth/authorize?{bad}&response_mode=form_post"),
            "",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(headers.get("location").is_none());
    let r = app
        .call(Method::GET, "/.well-known/openid-configuration", None, None)
        .await;
    assert_eq!(r.body["response_modes_supported"], json!(["query"]));
    // Revocation accepts public clients (`none`); no endpoint lists a non-standard method.
    assert!(!r.body.to_string().contains("\"bearer\""), "{}", r.body);
    assert!(r.body["revocation_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("none")));
}

/// Finding 9: a public client revokes its own refresh token with its `client_id`.
async fn a_public_client_revokes_its_own_refresh_token(app: &TestApp) {
    let f = app
        .fixture("Public", "private", &["contacts.readonly"])
        .await;
    let mk_public = |name: &str| {
        let body = json!({ "name": name, "redirect_uris": [REDIRECT], "scopes": ["contacts.readonly"], "confidential": false });
        let path = format!("/v1/agencies/{}/apps", f.ag.id);
        async move { app.post(&path, &app.admin, body).await }
    };
    let mut publics = Vec::new();
    for name in ["Spa", "Other spa"] {
        let r = mk_public(name).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let id = r.body["client_id"].as_str().unwrap().to_owned();
        let i = app
            .post(
                &format!(
                    "/v1/agencies/{}/accounts/{}/installations",
                    f.ag.id, f.ag.acc
                ),
                &app.admin,
                json!({ "app": id, "scopes": ["contacts.readonly"] }),
            )
            .await;
        assert_eq!(i.status, StatusCode::CREATED, "{}", i.body);
        publics.push(id);
    }
    let (ag, email) = (&f.ag, &f.email);
    let refresh_of = move |client: String| async move {
        let pf = Fixture {
            ag: ag.clone(),
            client_id: client.clone(),
            secret: String::new(),
            ins: String::new(),
            email: email.clone(),
        };
        let loc = app
            .authorize(
                &pf,
                &auth_query(&pf, "contacts.readonly", REDIRECT),
                PASSWORD,
            )
            .await;
        let code = param(&loc, "code").unwrap_or_else(|| panic!("{loc}"));
        let r = app
            .form(
                "/oauth/token",
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", &client),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", VERIFIER),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["refresh_token"].as_str().unwrap().to_owned()
    };
    let mine = refresh_of(publics[0].clone()).await;
    let theirs = refresh_of(publics[1].clone()).await;
    let refresh = |client: &str, rt: &str| {
        let (client, rt) = (client.to_owned(), rt.to_owned());
        async move {
            app.form(
                "/oauth/token",
                None,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &client),
                    ("refresh_token", &rt),
                ],
            )
            .await
        }
    };
    // Another client's token: 200 (RFC 7009 §2.2), and it is left alone.
    let r = app
        .form(
            "/oauth/revoke",
            None,
            &[("client_id", &publics[0]), ("token", &theirs)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = refresh(&publics[1], &theirs).await;
    assert_eq!(r.status, StatusCode::OK, "still valid: {}", r.body);
    // Its own: revoked, the refresh fails.
    let r = app
        .form(
            "/oauth/revoke",
            None,
            &[("client_id", &publics[0]), ("token", &mine)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let r = refresh(&publics[0], &mine).await;
    assert_eq!(r.body["error"], "invalid_grant", "{}", r.body);
    // A confidential client must still authenticate; introspection needs authentication.
    let r = app
        .form(
            "/oauth/revoke",
            None,
            &[("client_id", &f.client_id), ("token", &mine)],
        )
        .await;
    assert_eq!(r.body["error"], "invalid_client", "{}", r.body);
    let r = app
        .form(
            "/oauth/introspect",
            None,
            &[("client_id", &publics[0]), ("token", &mine)],
        )
        .await;
    assert_eq!(r.body["error"], "invalid_client", "{}", r.body);
}

fn assert_no_store(r: &crate::harness::Resp, what: &str) {
    assert_eq!(r.headers["cache-control"], "no-store", "{what}: {}", r.body);
    assert_eq!(r.headers["pragma"], "no-cache", "{what}");
}

/// Finding 10: every response that carries a secret forbids caching.
#[tokio::test]
async fn responses_carrying_a_secret_are_not_stored() {
    let app = TestApp::sqlite().await;
    let ag = app.agency("NoStore").await;
    let key = app
        .post(
            &format!("/v1/agencies/{}/api-keys", ag.id),
            &app.admin,
            json!({ "name": "k", "scopes": ["contacts.readonly"] }),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    assert_no_store(&key, "api key creation");
    let r = app
        .post(
            &format!("/v1/agencies/{}/api-keys/{}/rotate", ag.id, key.id()),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_no_store(&r, "api key rotation");
    let a = app.post(&format!("/v1/agencies/{}/apps", ag.id), &app.admin, json!({ "name": "S", "redirect_uris": [REDIRECT], "scopes": ["contacts.readonly"], "confidential": true })).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_no_store(&a, "app creation");
    let r = app
        .post(
            &format!(
                "/v1/agencies/{}/apps/{}/rotate-secret",
                ag.id,
                a.body["client_id"].as_str().unwrap()
            ),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_no_store(&r, "secret rotation");
    // The token endpoint, on success and on error.
    let f = app.fixture("Tok", "private", &["contacts.readonly"]).await;
    let auth = basic(&f.client_id, &f.secret);
    let r = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_no_store(&r, "token");
    let r = app
        .form("/oauth/token", Some(&auth), &[("grant_type", "password")])
        .await;
    assert_no_store(&r, "token error");
    // A list carries no secret and is left to the usual rules.
    let r = app
        .get(&format!("/v1/agencies/{}/api-keys", ag.id), &app.admin)
        .await;
    assert!(r.headers.get("pragma").is_none());
}

on_both_backends!(
    a_failed_redemption_retried_is_invalid_grant,
    account_grants_go_through_an_installation,
    exchange_is_bound_to_the_subject_tokens_client,
    impersonation_lists_only_effective_scopes,
    max_age_and_prompt_login_force_a_new_sign_in,
    a_public_client_revokes_its_own_refresh_token,
);

/// Red-team review of issue 8: a token narrowed to `users.write` must not reset its own user's
/// password (it would then sign in as the whole user, billing and all): "oneself" is exempt
/// from the privilege comparison only with a credential that is not narrowed.
#[tokio::test]
async fn a_narrowed_token_cannot_take_over_its_own_user() {
    let app = TestApp::sqlite().await;
    let ag = app.agency("SelfEdit").await;
    let created = app
        .post(
            &format!("/v1/agencies/{}/apps", ag.id),
            &app.admin,
            json!({ "name": "Team sync", "redirect_uris": [REDIRECT], "scopes": ["users.write"], "confidential": true, "kind": "marketplace" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let client_id = created.body["client_id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/v1/agencies/{}/installations", ag.id),
            &app.admin,
            json!({ "app": client_id, "scopes": ["users.write"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let owner = Fixture {
        ag: ag.clone(),
        client_id,
        secret: created.body["client_secret"].as_str().unwrap().to_owned(),
        ins: r.id(),
        email: "boss@selfedit.test".into(),
    };
    let f = &owner;
    let id = app
        .user_with_password(&f.ag, &owner.email, "agency_owner", false)
        .await;
    let t = code_flow(&app, &owner, "users.write").await;
    let token = t["access_token"].as_str().unwrap().to_owned();
    let path = format!("/v1/agencies/{}/users/{id}", f.ag.id);
    // The token may read users (its scope) …
    let r = app.get(&path, &token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // … but not change the user it speaks for: it lacks most of what the user holds.
    for patch in [
        json!({ "password": "a takeover passphrase" }),
        json!({ "email": "attacker@evil.test" }),
    ] {
        let r = app.patch(&path, &token, patch.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{patch}: {}", r.body);
    }
}
