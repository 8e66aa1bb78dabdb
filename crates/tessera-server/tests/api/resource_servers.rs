//! Resource servers and audience-bound tokens (RFC 8707): registration (platform-wide by
//! platform principals only, per agency by its admins; identifier rules; no escalation; tenant
//! isolation), `resource` at every grant (the token's `aud` is the resource, its scopes
//! narrowed to what it serves), `invalid_target`, and a resource-bound token refused as a
//! credential by Tessera's own API but still introspectable.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::harness::{Agency, TestApp};
use crate::oauth::{auth_query, basic, claims, param, Fixture, PASSWORD, REDIRECT, VERIFIER};

const CONTACTS: &str = "https://contacts.example.com";

/// A key of the agency with no scopes of its own, bound to `role` (a service account).
async fn key_with_role(app: &TestApp, ag: &Agency, role: &str) -> String {
    let k = app
        .post(
            &format!("/v1/agencies/{}/api-keys", ag.id),
            &app.admin,
            json!({ "name": format!("{role} key"), "scopes": [] }),
        )
        .await;
    assert_eq!(k.status, StatusCode::CREATED, "{}", k.body);
    let b = app
        .post(
            &format!("/v1/agencies/{}/bindings", ag.id),
            &app.admin,
            json!({ "principal": k.id(), "role": role }),
        )
        .await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
    k.body["secret"].as_str().unwrap().to_owned()
}

async fn register(app: &TestApp, path: &str, key: &str, identifier: &str, scopes: &[&str]) -> Value {
    let r = app
        .post(path, key, json!({ "identifier": identifier, "scopes": scopes }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

fn agency_path(ag: &Agency) -> String {
    format!("/v1/agencies/{}/resource-servers", ag.id)
}

async fn registration_rules(app: &TestApp) {
    let a = app.agency("Alpha").await;
    let b = app.agency("Beta").await;
    let a_admin = key_with_role(app, &a, "agency_admin").await;
    let b_admin = key_with_role(app, &b, "agency_admin").await;

    // Platform-wide: platform principals only.
    let p = register(app, "/v1/resource-servers", &app.admin, CONTACTS, &["contacts.readonly"]).await;
    assert!(p["id"].as_str().unwrap().starts_with("rsv_"), "{p}");
    assert_eq!(p["agency"], Value::Null);
    assert_eq!(p["identifier"], CONTACTS);
    assert_eq!(p["name"], CONTACTS);
    assert!(p["created_at"].is_string());
    let pid = p["id"].as_str().unwrap().to_owned();
    let r = app.get("/v1/resource-servers", &app.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["items"][0]["id"], pid.as_str());
    assert!(r.body["next_cursor"].is_null());
    let r = app.get(&format!("/v1/resource-servers/{pid}"), &app.admin).await;
    assert_eq!(r.body["identifier"], CONTACTS);
    for key in [&a_admin, &a.key] {
        let r = app
            .post("/v1/resource-servers", key, json!({ "identifier": "https://x.example", "scopes": ["contacts.readonly"] }))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        let r = app.get("/v1/resource-servers", key).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        let r = app.delete(&format!("/v1/resource-servers/{pid}"), key).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    }
    // A key with only its admin scopes lacks the permission.
    let r = app
        .post(&agency_path(&a), &a.key, json!({ "identifier": "https://a.example", "scopes": ["contacts.readonly"] }))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

    // An agency's, by its admin.
    let own = app
        .post(
            &agency_path(&a),
            &a_admin,
            json!({ "identifier": "https://crm.alpha.example/api", "scopes": ["contacts.readonly", "contacts.write", "contacts.readonly"], "name": "Alpha CRM" }),
        )
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.body);
    assert_eq!(own.body["agency"], a.id.as_str());
    assert_eq!(own.body["name"], "Alpha CRM");
    assert_eq!(own.body["scopes"], json!(["contacts.readonly", "contacts.write"]));
    let own_id = own.id();
    // Loopback http is fine (development).
    register(app, &agency_path(&a), &a_admin, "http://127.0.0.1:9000", &["contacts.readonly"]).await;

    // Identifier rules.
    let issuer = app.state.oauth.issuer().to_owned();
    let long = format!("https://a.example/{}", "x".repeat(600));
    for bad in [
        "not a uri",
        "contacts.example.com",
        "http://a.example",
        "ftp://a.example",
        "https://a.example/#frag",
        "https://a.example/?q=1",
        "https://user@a.example",
        "https://*.a.example",
        "https://",
        issuer.as_str(),
        &format!("{issuer}/"),
        long.as_str(),
    ] {
        let r = app
            .post(&agency_path(&a), &a_admin, json!({ "identifier": bad, "scopes": ["contacts.readonly"] }))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    // Unique across the platform and every agency.
    for (path, key) in [(agency_path(&a), &a_admin), (agency_path(&b), &b_admin)] {
        let r = app
            .post(&path, key, json!({ "identifier": CONTACTS, "scopes": ["contacts.readonly"] }))
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    }
    // Scopes: known, non-empty, not internal for an agency, and held by the creator (I2).
    for (scopes, status) in [
        (json!([]), StatusCode::BAD_REQUEST),
        (json!(["no.such.scope"]), StatusCode::BAD_REQUEST),
        (json!(["openid"]), StatusCode::BAD_REQUEST),
        (json!(["agencies.readonly"]), StatusCode::FORBIDDEN),
    ] {
        let r = app
            .post(&agency_path(&a), &a_admin, json!({ "identifier": "https://new.alpha.example", "scopes": scopes }))
            .await;
        assert_eq!(r.status, status, "{scopes}: {}", r.body);
    }
    let role = app
        .post(
            &format!("/v1/agencies/{}/roles", a.id),
            &app.admin,
            json!({ "name": "rs-manager", "permissions": ["resource_servers.write", "resource_servers.read", "contacts.read"] }),
        )
        .await;
    assert_eq!(role.status, StatusCode::CREATED, "{}", role.body);
    let limited = key_with_role(app, &a, role.body["id"].as_str().unwrap()).await;
    let r = app
        .post(&agency_path(&a), &limited, json!({ "identifier": "https://new.alpha.example", "scopes": ["contacts.write"] }))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.to_string().contains("contacts.write"), "{}", r.body);
    register(app, &agency_path(&a), &limited, "https://new.alpha.example", &["contacts.readonly"]).await;
    // Unknown fields are refused.
    let r = app
        .post(&agency_path(&a), &a_admin, json!({ "identifier": "https://z.alpha.example", "scopes": ["contacts.readonly"], "agency": b.id }))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    // Tenant isolation: B sees nothing of A's, whichever path it takes.
    let r = app.get(&agency_path(&b), &b_admin).await;
    assert_eq!(r.body["items"], json!([]), "{}", r.body);
    for path in [
        format!("{}/{own_id}", agency_path(&b)),
        format!("{}/{own_id}", agency_path(&a)),
    ] {
        assert_eq!(app.get(&path, &b_admin).await.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(app.delete(&path, &b_admin).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(app.get(&agency_path(&a), &b_admin).await.status, StatusCode::NOT_FOUND);
    // The platform-wide one is not an agency's.
    assert_eq!(
        app.get(&format!("{}/{pid}", agency_path(&a)), &a_admin).await.status,
        StatusCode::NOT_FOUND
    );
    // A reads and deletes its own; both are audited.
    let r = app.get(&format!("{}/{own_id}", agency_path(&a)), &a_admin).await;
    assert_eq!(r.body["identifier"], "https://crm.alpha.example/api");
    let r = app.delete(&format!("{}/{own_id}", agency_path(&a)), &a_admin).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        app.get(&format!("{}/{own_id}", agency_path(&a)), &a_admin).await.status,
        StatusCode::NOT_FOUND
    );
    let audit = app
        .get(&format!("/v1/agencies/{}/audit?limit=200", a.id), &app.admin)
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"resource_server.create"), "{actions:?}");
    assert!(actions.contains(&"resource_server.delete"), "{actions:?}");
    // A malformed id is a 400, another type's id a 400 too.
    let r = app.get(&format!("{}/pol_01ARZ3NDEKTSV4RRFFQ69G5FAV", agency_path(&a)), &a_admin).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}

async fn cc(app: &TestApp, f: &Fixture, extra: &[(&str, &str)]) -> crate::harness::Resp {
    let mut pairs = vec![("grant_type", "client_credentials")];
    pairs.extend_from_slice(extra);
    app.form("/oauth/token", Some(&basic(&f.client_id, &f.secret)), &pairs)
        .await
}

async fn client_credentials_and_exchange(app: &TestApp) {
    let f = app
        .fixture("Machine", "private", &["contacts.readonly", "contacts.write"])
        .await;
    let other = app.fixture("Elsewhere", "private", &["contacts.readonly"]).await;
    let other_admin = key_with_role(app, &other.ag, "agency_admin").await;
    register(app, "/v1/resource-servers", &app.admin, CONTACTS, &["contacts.readonly", "calendars.readonly"]).await;
    let foreign = "https://crm.elsewhere.example";
    register(app, &agency_path(&other.ag), &other_admin, foreign, &["contacts.readonly"]).await;

    // Bound to the resource: `aud` is exactly its identifier, scopes narrowed to what it serves.
    let r = cc(app, &f, &[("resource", CONTACTS)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["scope"], "contacts.readonly");
    let bound = r.body["access_token"].as_str().unwrap().to_owned();
    let c = claims(&bound);
    assert_eq!(c["aud"], CONTACTS, "a single audience, as a string");
    assert_eq!(c["scope"], "contacts.readonly");
    assert_eq!(c["tenant"]["agency"], f.ag.id.as_str());
    // The same resource repeated is one resource.
    let r = cc(app, &f, &[("resource", CONTACTS), ("resource", CONTACTS)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Nothing served among the asked scopes.
    let r = cc(app, &f, &[("resource", CONTACTS), ("scope", "contacts.write")]).await;
    assert_eq!(r.body["error"], "invalid_scope", "{}", r.body);
    // Unknown, malformed, another agency's, several different: invalid_target.
    for extra in [
        vec![("resource", "https://unknown.example")],
        vec![("resource", "https://contacts.example.com/")],
        vec![("resource", "https://contacts.example.com#x")],
        vec![("resource", foreign)],
        vec![("resource", CONTACTS), ("resource", foreign)],
    ] {
        let r = cc(app, &f, &extra).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{extra:?}: {}", r.body);
        assert_eq!(r.body["error"], "invalid_target", "{extra:?}: {}", r.body);
    }
    // The issuer itself is Tessera's own API: the default audience.
    let issuer = app.state.oauth.issuer().to_owned();
    let r = cc(app, &f, &[("resource", &issuer)]).await;
    assert_eq!(claims(r.body["access_token"].as_str().unwrap())["aud"], issuer.as_str());
    let plain = cc(app, &f, &[]).await.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&plain)["aud"], issuer.as_str());

    // Tessera's own API refuses a token minted for another service as a credential.
    let check = json!({ "permission": "contacts.read", "resource": { "type": "contact", "agency": f.ag.id, "account": f.ag.acc } });
    assert_eq!(app.post("/v1/check", &plain, check.clone()).await.status, StatusCode::OK);
    let r = app.post("/v1/check", &bound, check.clone()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let r = app.get(&format!("/v1/agencies/{}/accounts", f.ag.id), &bound).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let r = app.get("/oauth/userinfo", &bound).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    // … nor as the introspecting party's credential.
    let r = app
        .form("/oauth/introspect", Some(&format!("Bearer {bound}")), &[("token", &plain)])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    // Introspection still answers for it, showing its `aud`: to the client and the agency.
    for who in [basic(&f.client_id, &f.secret), format!("Bearer {}", f.ag.key)] {
        let r = app.form("/oauth/introspect", Some(&who), &[("token", &bound)]).await;
        assert_eq!(r.body["active"], true, "{}", r.body);
        assert_eq!(r.body["aud"], CONTACTS);
        assert_eq!(r.body["scope"], "contacts.readonly");
    }
    let r = app
        .form("/oauth/introspect", Some(&format!("Bearer {}", other.ag.key)), &[("token", &bound)])
        .await;
    assert_eq!(r.body, json!({ "active": false }));

    // Token exchange: an issuer token narrowed to the resource …
    let auth = basic(&f.client_id, &f.secret);
    let exchange = |subject: String, extra: Vec<(&'static str, String)>| {
        let auth = auth.clone();
        async move {
            let mut pairs: Vec<(&str, String)> = vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange".into()),
                ("subject_token", subject),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token".into()),
            ];
            pairs.extend(extra);
            let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.form("/oauth/token", Some(&auth), &refs).await
        }
    };
    let r = exchange(plain.clone(), vec![("resource", CONTACTS.into())]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ex = claims(r.body["access_token"].as_str().unwrap());
    assert_eq!(ex["aud"], CONTACTS);
    assert_eq!(ex["scope"], "contacts.readonly");
    let r = exchange(plain.clone(), vec![("audience", CONTACTS.into())]).await;
    assert_eq!(claims(r.body["access_token"].as_str().unwrap())["aud"], CONTACTS, "{}", r.body);
    let r = exchange(plain.clone(), vec![("resource", foreign.into())]).await;
    assert_eq!(r.body["error"], "invalid_target", "{}", r.body);
    let r = exchange(plain.clone(), vec![("resource", CONTACTS.into()), ("audience", issuer.clone())]).await;
    assert_eq!(r.body["error"], "invalid_target", "{}", r.body);
    // … and a bound token keeps its `aud`: it may repeat it, never drop or change it.
    let r = exchange(bound.clone(), vec![]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(claims(r.body["access_token"].as_str().unwrap())["aud"], CONTACTS);
    let r = exchange(bound.clone(), vec![("resource", CONTACTS.into())]).await;
    assert_eq!(claims(r.body["access_token"].as_str().unwrap())["aud"], CONTACTS, "{}", r.body);
    for target in [issuer.clone(), foreign.to_owned()] {
        let r = exchange(bound.clone(), vec![("resource", target.clone())]).await;
        assert_eq!(r.body["error"], "invalid_target", "{target}: {}", r.body);
    }
    let r = exchange(bound.clone(), vec![("audience", issuer.clone())]).await;
    assert_eq!(r.body["error"], "invalid_target", "{}", r.body);

    // Deleted: the resource is refused from then on.
    let list = app.get("/v1/resource-servers", &app.admin).await;
    let id = list.body["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.delete(&format!("/v1/resource-servers/{id}"), &app.admin).await.status, StatusCode::NO_CONTENT);
    let r = cc(app, &f, &[("resource", CONTACTS)]).await;
    assert_eq!(r.body["error"], "invalid_target", "{}", r.body);
}

async fn redeem(app: &TestApp, f: &Fixture, code: &str, resource: Option<&str>) -> crate::harness::Resp {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    if let Some(r) = resource {
        pairs.push(("resource", r));
    }
    app.form("/oauth/token", Some(&basic(&f.client_id, &f.secret)), &pairs)
        .await
}

async fn code_for(app: &TestApp, f: &Fixture, scope: &str, resource: Option<&str>) -> String {
    let mut q = auth_query(f, scope, REDIRECT);
    if let Some(r) = resource {
        q.push('&');
        q.push_str(&serde_urlencoded::to_string([("resource", r)]).unwrap());
    }
    let loc = app.authorize(f, &q, PASSWORD).await;
    assert!(loc.starts_with(REDIRECT), "{loc}");
    param(&loc, "code").unwrap_or_else(|| panic!("no code: {loc}"))
}

async fn code_flow_and_refresh_keep_the_aud(app: &TestApp) {
    let f = app
        .fixture("Coder", "private", &["contacts.readonly", "contacts.write"])
        .await;
    let other = app.fixture("Stranger", "private", &["contacts.readonly"]).await;
    let admin = key_with_role(app, &f.ag, "agency_admin").await;
    let other_admin = key_with_role(app, &other.ag, "agency_admin").await;
    let crm = "https://crm.coder.example";
    let billing = "https://billing.coder.example";
    register(app, &agency_path(&f.ag), &admin, crm, &["contacts.readonly"]).await;
    register(app, &agency_path(&f.ag), &admin, billing, &["contacts.write"]).await;
    let foreign = "https://crm.stranger.example";
    register(app, &agency_path(&other.ag), &other_admin, foreign, &["contacts.readonly"]).await;
    let auth = basic(&f.client_id, &f.secret);

    // `resource` at the authorization request, inherited by the code exchange.
    let code = code_for(app, &f, "openid contacts.readonly contacts.write", Some(crm)).await;
    let t = redeem(app, &f, &code, None).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    assert_eq!(t.body["scope"], "contacts.readonly");
    let c = claims(t.body["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], crm);
    assert_eq!(c["scope"], "contacts.readonly");
    assert!(c["sid"].is_string());
    assert!(t.body["id_token"].is_string(), "openid was granted: {}", t.body);
    let rt = t.body["refresh_token"].as_str().unwrap().to_owned();
    // The refresh keeps it (another resource is refused, before any rotation).
    let r = app
        .form("/oauth/token", Some(&auth), &[("grant_type", "refresh_token"), ("refresh_token", &rt), ("resource", billing)])
        .await;
    assert_eq!(r.body["error"], "invalid_target", "{}", r.body);
    let r = app
        .form("/oauth/token", Some(&auth), &[("grant_type", "refresh_token"), ("refresh_token", &rt)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(claims(r.body["access_token"].as_str().unwrap())["aud"], crm);
    assert_eq!(r.body["scope"], "contacts.readonly");
    let rt2 = r.body["refresh_token"].as_str().unwrap().to_owned();
    let r = app
        .form("/oauth/token", Some(&auth), &[("grant_type", "refresh_token"), ("refresh_token", &rt2), ("resource", crm)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(claims(r.body["access_token"].as_str().unwrap())["aud"], crm);

    // The code exchange may repeat the resource; a different one is refused.
    let code = code_for(app, &f, "contacts.readonly", Some(crm)).await;
    assert_eq!(redeem(app, &f, &code, Some(crm)).await.status, StatusCode::OK);
    let code = code_for(app, &f, "contacts.readonly", Some(crm)).await;
    let r = redeem(app, &f, &code, Some(billing)).await;
    assert_eq!(r.body["error"], "invalid_target", "{}", r.body);

    // A code without a resource may be bound at the token endpoint (narrowing).
    let code = code_for(app, &f, "contacts.readonly contacts.write", None).await;
    let r = redeem(app, &f, &code, Some(billing)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(claims(r.body["access_token"].as_str().unwrap())["aud"], billing);
    assert_eq!(r.body["scope"], "contacts.write");
    // Nothing served among the granted scopes.
    let code = code_for(app, &f, "contacts.readonly", None).await;
    let r = redeem(app, &f, &code, Some(billing)).await;
    assert_eq!(r.body["error"], "invalid_scope", "{}", r.body);

    // Another agency's resource, or an unknown one, goes back to the client as invalid_target.
    for bad in [foreign, "https://unknown.example"] {
        let mut q = auth_query(&f, "contacts.readonly", REDIRECT);
        q.push('&');
        q.push_str(&serde_urlencoded::to_string([("resource", bad)]).unwrap());
        let loc = app.authorize(&f, &q, PASSWORD).await;
        assert!(loc.starts_with(REDIRECT), "{loc}");
        assert_eq!(param(&loc, "error").as_deref(), Some("invalid_target"), "{loc}");
        assert!(param(&loc, "code").is_none());
    }
    // Several different resources, or a malformed one, are refused at once.
    for extra in [
        vec![("resource", crm), ("resource", billing)],
        vec![("resource", "https://crm.coder.example#x")],
        vec![("resource", "relative/path")],
    ] {
        let mut q = auth_query(&f, "contacts.readonly", REDIRECT);
        q.push('&');
        q.push_str(&serde_urlencoded::to_string(&extra).unwrap());
        let (status, headers, page) = app
            .browser(axum::http::Method::GET, &format!("/oauth/authorize?{q}"), "", None)
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{extra:?}: {page}");
        let loc = headers.get("location").unwrap().to_str().unwrap();
        assert_eq!(param(loc, "error").as_deref(), Some("invalid_target"), "{loc}");
    }
}

on_both_backends!(
    registration_rules,
    client_credentials_and_exchange,
    code_flow_and_refresh_keep_the_aud,
);

#[tokio::test]
async fn discovery_says_resource_indicators_are_supported() {
    let app = TestApp::sqlite().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let r = app
            .raw(
                axum::http::Request::builder()
                    .uri(path)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.body["resource_indicators_supported"], true, "{path}");
    }
    let r = app
        .raw(
            axum::http::Request::builder()
                .uri("/openapi.json")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    let paths = &r.body["paths"];
    for p in [
        "/v1/resource-servers",
        "/v1/resource-servers/{rsv}",
        "/v1/agencies/{agy}/resource-servers",
        "/v1/agencies/{agy}/resource-servers/{rsv}",
    ] {
        assert!(paths.get(p).is_some(), "{p} missing from the OpenAPI document");
    }
}
