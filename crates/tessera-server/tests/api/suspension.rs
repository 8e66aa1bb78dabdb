//! Suspension and reinstatement (issue 10, part 4): every credential of a suspended agency is
//! refused (API keys, access tokens, refresh, client credentials, sign-in), its marketplace
//! apps stop in every agency, a suspended account refuses what is bound to it, reinstating
//! restores everything, both are audited with a reason, and a second node refuses within a
//! second. On SQLite and PostgreSQL.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{Resp, TestApp};
use crate::oauth::{auth_query, basic, code_flow, Fixture, PASSWORD, REDIRECT};

on_both_backends!(
    a_suspended_agency_refuses_every_credential_until_reinstated,
    a_suspended_agency_user_learns_it_only_with_the_right_password,
    a_suspended_partner_stops_its_marketplace_app_everywhere,
);

/// Accounts, who may suspend, and the second node.
mod accounts;

fn assert_refused(r: &Resp, code: &str) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.code(), code, "{}", r.body);
    assert_eq!(
        r.headers.get("content-type").unwrap(),
        "application/problem+json",
        "{}",
        r.body
    );
}

/// A token-endpoint refusal for a suspension: problem+json with the RFC 6749 members.
fn assert_oauth_refused(r: &Resp, code: &str) {
    assert_refused(r, code);
    assert_eq!(r.body["error"], code, "{}", r.body);
    assert_eq!(r.body["status"], 403, "{}", r.body);
    assert!(r.body["error_description"]
        .as_str()
        .unwrap()
        .contains("suspended"));
    assert!(
        r.body["title"].is_string() && r.body["type"].is_string() && r.body["detail"].is_string()
    );
}

fn reason(text: &str) -> Value {
    json!({ "reason": text })
}

async fn introspect(app: &TestApp, token: &str) -> Value {
    app.form(
        "/oauth/introspect",
        Some(&format!("Bearer {}", app.admin)),
        &[("token", token)],
    )
    .await
    .body
}

fn contact_check(agency: &str, account: &str) -> Value {
    json!({ "permission": "contacts.read", "resource": { "type": "contact", "agency": agency, "account": account } })
}

/// The sign-in page answer for `f`'s user with `password` (the status and the page).
async fn sign_in(app: &TestApp, f: &Fixture, password: &str) -> (StatusCode, String) {
    let uri = format!(
        "/oauth/authorize?{}",
        auth_query(f, "openid contacts.readonly", REDIRECT)
    );
    let (status, headers, page) = app.browser(Method::GET, &uri, "", None).await;
    if status != StatusCode::OK {
        return (status, page);
    }
    let cookies = crate::oauth::collect_cookies(&headers, String::new());
    let csrf = crate::oauth::hidden(&page, "csrf_token");
    let form = serde_urlencoded::to_string([
        ("email", f.email.as_str()),
        ("password", password),
        ("csrf_token", &csrf),
    ])
    .unwrap();
    let (status, _, page) = app.browser(Method::POST, &uri, &cookies, Some(form)).await;
    (status, page)
}

async fn audit_actions(app: &TestApp, agency: &str, action: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/v1/agencies/{agency}/audit?action={action}"),
            &app.admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

async fn a_suspended_agency_refuses_every_credential_until_reinstated(app: &TestApp) {
    let f = app
        .fixture("Suspended", "private", &["contacts.readonly"])
        .await;
    let ag = f.ag.clone();
    let auth = basic(&f.client_id, &f.secret);
    // Credentials of every kind, working.
    let t = code_flow(app, &f, "openid contacts.readonly").await;
    let at = t["access_token"].as_str().unwrap().to_owned();
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let cc = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(cc.status, StatusCode::OK, "{}", cc.body);
    let cc = cc.body["access_token"].as_str().unwrap().to_owned();
    let leaked = app
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
    // A code issued before the suspension, redeemed after it.
    let loc = app
        .authorize(
            &f,
            &auth_query(&f, "openid contacts.readonly", REDIRECT),
            PASSWORD,
        )
        .await;
    let code = crate::oauth::param(&loc, "code").expect("code");
    let agency_path = format!("/v1/agencies/{}", ag.id);
    assert_eq!(app.get(&agency_path, &ag.key).await.status, StatusCode::OK);
    let check = contact_check(&ag.id, &ag.acc);
    for token in [&at, &cc] {
        let r = app.post("/v1/check", token, check.clone()).await;
        assert_eq!(r.body["allowed"], true, "{}", r.body);
    }

    let r = app
        .post(
            &format!("{agency_path}/suspend"),
            &app.admin,
            reason("unpaid invoices"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "suspended");
    assert_eq!(r.body["suspended_reason"], "unpaid invoices");
    assert!(r.body["suspended_at"].is_string(), "{}", r.body);

    // API key, access tokens (user and client credentials): 403 agency_suspended.
    assert_refused(&app.get(&agency_path, &ag.key).await, "agency_suspended");
    let r = app.get(&agency_path, &ag.key).await;
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("contact the platform"));
    for token in [&at, &cc] {
        assert_refused(
            &app.post("/v1/check", token, check.clone()).await,
            "agency_suspended",
        );
    }
    // Introspection: inactive, for every kind.
    for token in [&at, &cc, &rt, &ag.key] {
        assert_eq!(
            introspect(app, token).await,
            json!({ "active": false }),
            "{token}"
        );
    }
    // The token endpoint: refresh and client credentials refused, as problem+json that
    // RFC 6749 clients read too.
    let r = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await;
    assert_oauth_refused(&r, "agency_suspended");
    let r = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_oauth_refused(&r, "agency_suspended");
    let r = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", crate::oauth::VERIFIER),
            ],
        )
        .await;
    assert_oauth_refused(&r, "agency_suspended");
    let r = app
        .form(
            "/oauth/token",
            None,
            &[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", &at),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
                ("scope", "contacts.readonly"),
            ],
        )
        .await;
    assert_oauth_refused(&r, "agency_suspended");
    // A token revoked during the suspension stays revoked after it.
    let r = app
        .form("/oauth/revoke", Some(&auth), &[("token", &leaked)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The app's own flow cannot start (its owner is the suspended agency).
    let (status, page) = sign_in(app, &f, PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("suspended"), "{page}");
    // Platform staff still read it; suspending again changes nothing.
    let r = app.get(&agency_path, &app.admin).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "suspended");
    let r = app
        .post(
            &format!("{agency_path}/suspend"),
            &app.admin,
            reason("again"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["suspended_reason"], "unpaid invoices");
    // The data is kept.
    let r = app
        .get(&format!("{agency_path}/accounts/{}", ag.acc), &app.admin)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Reinstate: the same credentials work again (nothing was revoked).
    let r = app
        .post(
            &format!("{agency_path}/reinstate"),
            &app.admin,
            reason("paid"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "active");
    assert!(r.body.get("suspended_reason").is_none(), "{}", r.body);
    assert_eq!(app.get(&agency_path, &ag.key).await.status, StatusCode::OK);
    for token in [&at, &cc] {
        let r = app.post("/v1/check", token, check.clone()).await;
        assert_eq!(r.body["allowed"], true, "{}", r.body);
    }
    for token in [&at, &cc, &rt, &ag.key] {
        assert_eq!(introspect(app, token).await["active"], true, "{token}");
    }
    let r = app
        .form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the refresh family survived: {}",
        r.body
    );
    let (status, page) = sign_in(app, &f, PASSWORD).await;
    assert_ne!(status, StatusCode::FORBIDDEN, "{page}");
    assert_eq!(introspect(app, &leaked).await, json!({ "active": false }));
    assert_eq!(
        app.post("/v1/check", &leaked, check.clone()).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Both audited with the reason and the previous status, in the agency's chain.
    let s = audit_actions(app, &ag.id, "agency.suspend").await;
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0]["detail"]["reason"], "unpaid invoices");
    assert_eq!(s[0]["detail"]["previous_status"], "active");
    assert_eq!(s[0]["target"], ag.id);
    let r = audit_actions(app, &ag.id, "agency.reinstate").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["detail"]["reason"], "paid");
    assert_eq!(r[0]["detail"]["previous_status"], "suspended");
}

async fn a_suspended_agency_user_learns_it_only_with_the_right_password(app: &TestApp) {
    // A partner's marketplace app (the partner stays active), used by a customer's user.
    let partner = app.agency("Maker").await;
    let m = app.post(&format!("/v1/agencies/{}/apps", partner.id), &app.admin, json!({ "name": "Helper", "redirect_uris": [REDIRECT], "scopes": ["contacts.readonly"], "confidential": true, "kind": "marketplace" })).await;
    assert_eq!(m.status, StatusCode::CREATED, "{}", m.body);
    let customer = app.agency("Client").await;
    let email = "pat@client.test";
    app.user_with_password(&customer, email, "account_admin", true)
        .await;
    let ins = app
        .post(
            &format!(
                "/v1/agencies/{}/accounts/{}/installations",
                customer.id, customer.acc
            ),
            &app.admin,
            json!({ "app": m.id(), "scopes": ["contacts.readonly"] }),
        )
        .await;
    assert_eq!(ins.status, StatusCode::CREATED, "{}", ins.body);
    let f = Fixture {
        ag: customer.clone(),
        client_id: m.id(),
        secret: m.body["client_secret"].as_str().unwrap().to_owned(),
        ins: ins.id(),
        email: email.to_owned(),
    };
    let (status, page) = sign_in(app, &f, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("decision"), "consent expected: {page}");

    app.post(
        &format!("/v1/agencies/{}/suspend", customer.id),
        &app.admin,
        reason("audit"),
    )
    .await;
    // A wrong password learns nothing; the right one is told, and the refusal is audited.
    let (status, page) = sign_in(app, &f, "wrong password").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the usual failure: {page}"
    );
    assert!(
        page.contains("The email or password is incorrect."),
        "{page}"
    );
    assert!(!page.contains("suspended"), "{page}");
    let (status, page) = sign_in(app, &f, PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("Your agency is suspended"), "{page}");
    let signins = audit_actions(app, &customer.id, "auth.sign_in").await;
    let denied: Vec<_> = signins
        .iter()
        .filter(|e| e["outcome"] == "denied")
        .collect();
    assert_eq!(denied.len(), 1, "{signins:?}");
    assert_eq!(denied[0]["detail"]["reason"], "agency_suspended");

    app.post(
        &format!("/v1/agencies/{}/reinstate", customer.id),
        &app.admin,
        reason("ok"),
    )
    .await;
    let (status, page) = sign_in(app, &f, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("decision"), "{page}");
}

async fn a_suspended_partner_stops_its_marketplace_app_everywhere(app: &TestApp) {
    let partner = app.agency("Vendor").await;
    let m = app.post(&format!("/v1/agencies/{}/apps", partner.id), &app.admin, json!({ "name": "Market", "redirect_uris": [REDIRECT], "scopes": ["contacts.readonly"], "confidential": true, "kind": "marketplace" })).await;
    assert_eq!(m.status, StatusCode::CREATED, "{}", m.body);
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
    let token = || async {
        app.form(
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "client_credentials")],
        )
        .await
    };
    let at = token().await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let check = contact_check(&customer.id, &customer.acc);
    assert_eq!(
        app.post("/v1/check", &at, check.clone()).await.body["allowed"],
        true
    );

    let r = app
        .post(
            &format!("/v1/agencies/{}/suspend", partner.id),
            &app.admin,
            reason("fraud"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The customer is not suspended, yet the app's token is refused there: its owner is.
    assert_refused(
        &app.post("/v1/check", &at, check.clone()).await,
        "agency_suspended",
    );
    assert_eq!(introspect(app, &at).await, json!({ "active": false }));
    assert_oauth_refused(&token().await, "agency_suspended");
    // The customer's own credentials are untouched.
    assert_eq!(
        app.get(&format!("/v1/agencies/{}", customer.id), &customer.key)
            .await
            .status,
        StatusCode::OK
    );

    app.post(
        &format!("/v1/agencies/{}/reinstate", partner.id),
        &app.admin,
        reason("cleared"),
    )
    .await;
    assert_eq!(
        app.post("/v1/check", &at, check.clone()).await.body["allowed"],
        true
    );
    assert_eq!(token().await.status, StatusCode::OK);
}
