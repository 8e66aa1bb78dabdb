//! I1: agency B's credentials on every agency A route get the same 404 as a missing id.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{missing, TestApp};

/// Every agency-scoped route, with ids filled in from `agy`'s objects.
#[allow(clippy::too_many_arguments)]
fn routes(
    agy: &str,
    acc: &str,
    usr: &str,
    key: &str,
    bnd: &str,
    rol: &str,
    pol: &str,
    oauth: [&str; 6],
) -> Vec<(Method, String, Option<Value>)> {
    let [app, ins, acc_ins, rsv, whk, msg] = oauth;
    let b = format!("/v1/agencies/{agy}");
    vec![
        (Method::GET, b.clone(), None),
        (Method::PATCH, b.clone(), Some(json!({ "name": "pwned" }))),
        (Method::DELETE, b.clone(), None),
        (Method::GET, format!("{b}/limits"), None),
        (
            Method::PUT,
            format!("{b}/limits"),
            Some(json!({ "plan": "enterprise" })),
        ),
        (
            Method::POST,
            format!("{b}/suspend"),
            Some(json!({ "reason": "pwned" })),
        ),
        (
            Method::POST,
            format!("{b}/reinstate"),
            Some(json!({ "reason": "pwned" })),
        ),
        (
            Method::POST,
            format!("{b}/accounts"),
            Some(json!({ "name": "pwned" })),
        ),
        (Method::GET, format!("{b}/accounts"), None),
        (Method::GET, format!("{b}/accounts/{acc}"), None),
        (
            Method::PATCH,
            format!("{b}/accounts/{acc}"),
            Some(json!({ "name": "pwned" })),
        ),
        (Method::DELETE, format!("{b}/accounts/{acc}"), None),
        (
            Method::POST,
            format!("{b}/accounts/{acc}/suspend"),
            Some(json!({ "reason": "pwned" })),
        ),
        (
            Method::POST,
            format!("{b}/accounts/{acc}/reinstate"),
            Some(json!({ "reason": "pwned" })),
        ),
        (
            Method::POST,
            format!("{b}/users"),
            Some(json!({ "email": "x@pwned.test", "name": "x" })),
        ),
        (Method::GET, format!("{b}/users"), None),
        (Method::GET, format!("{b}/users/{usr}"), None),
        (
            Method::PATCH,
            format!("{b}/users/{usr}"),
            Some(json!({ "name": "pwned" })),
        ),
        (Method::DELETE, format!("{b}/users/{usr}"), None),
        (Method::POST, format!("{b}/users/{usr}/erase"), None),
        (
            Method::POST,
            format!("{b}/bindings"),
            Some(json!({ "principal": usr, "role": "agency_user" })),
        ),
        (Method::GET, format!("{b}/bindings"), None),
        (Method::GET, format!("{b}/bindings/{bnd}"), None),
        (Method::DELETE, format!("{b}/bindings/{bnd}"), None),
        (
            Method::POST,
            format!("{b}/api-keys"),
            Some(json!({ "name": "x", "scopes": ["contacts.readonly"] })),
        ),
        (Method::GET, format!("{b}/api-keys"), None),
        (Method::GET, format!("{b}/api-keys/{key}"), None),
        (Method::DELETE, format!("{b}/api-keys/{key}"), None),
        (
            Method::POST,
            format!("{b}/api-keys/{key}/rotate"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("{b}/roles"),
            Some(json!({ "name": "x", "permissions": ["contacts.read"] })),
        ),
        (Method::GET, format!("{b}/roles"), None),
        (Method::GET, format!("{b}/roles/{rol}"), None),
        (
            Method::PATCH,
            format!("{b}/roles/{rol}"),
            Some(json!({ "name": "pwned" })),
        ),
        (Method::DELETE, format!("{b}/roles/{rol}"), None),
        (
            Method::POST,
            format!("{b}/policies"),
            Some(json!({ "cedar": "forbid(principal, action, resource);" })),
        ),
        (Method::GET, format!("{b}/policies"), None),
        (Method::GET, format!("{b}/policies/{pol}"), None),
        (Method::DELETE, format!("{b}/policies/{pol}"), None),
        (
            Method::GET,
            format!("{b}/principals/{usr}/permissions"),
            None,
        ),
        (
            Method::GET,
            format!("{b}/accounts/{acc}/principals?permission=contacts.read"),
            None,
        ),
        (Method::GET, format!("{b}/audit"), None),
        (Method::GET, format!("{b}/audit/export"), None),
        (Method::GET, format!("{b}/audit/verify"), None),
        (Method::GET, format!("{b}/audit/retention"), None),
        (
            Method::PUT,
            format!("{b}/audit/retention"),
            Some(json!({ "days": 120 })),
        ),
        (
            Method::POST,
            format!("{b}/apps"),
            Some(
                json!({ "name": "x", "redirect_uris": ["https://x.test/cb"], "scopes": [], "confidential": true }),
            ),
        ),
        (Method::GET, format!("{b}/apps"), None),
        (Method::GET, format!("{b}/apps/{app}"), None),
        (Method::DELETE, format!("{b}/apps/{app}"), None),
        (
            Method::PATCH,
            format!("{b}/apps/{app}"),
            Some(json!({ "name": "pwned" })),
        ),
        (
            Method::POST,
            format!("{b}/apps/{app}/review"),
            Some(json!({ "decision": "approve" })),
        ),
        (
            Method::POST,
            format!("{b}/apps/{app}/rotate-secret"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("{b}/installations"),
            Some(json!({ "app": app, "scopes": ["contacts.readonly"] })),
        ),
        (Method::GET, format!("{b}/installations"), None),
        (Method::GET, format!("{b}/installations/{ins}"), None),
        (Method::DELETE, format!("{b}/installations/{ins}"), None),
        (
            Method::POST,
            format!("{b}/accounts/{acc}/installations"),
            Some(json!({ "app": app, "scopes": ["contacts.readonly"] })),
        ),
        (
            Method::GET,
            format!("{b}/accounts/{acc}/installations"),
            None,
        ),
        (
            Method::GET,
            format!("{b}/accounts/{acc}/installations/{acc_ins}"),
            None,
        ),
        (
            Method::DELETE,
            format!("{b}/accounts/{acc}/installations/{acc_ins}"),
            None,
        ),
        (
            Method::POST,
            format!("{b}/resource-servers"),
            Some(json!({ "identifier": "https://pwned.example", "scopes": ["contacts.readonly"] })),
        ),
        (Method::GET, format!("{b}/resource-servers"), None),
        (Method::GET, format!("{b}/resource-servers/{rsv}"), None),
        (Method::DELETE, format!("{b}/resource-servers/{rsv}"), None),
        (Method::GET, format!("{b}/reports/access-review"), None),
        (Method::GET, format!("{b}/reports/credentials"), None),
        (Method::GET, format!("{b}/reports/impersonations"), None),
        (Method::GET, format!("{b}/users/{usr}/impersonations"), None),
        (
            Method::POST,
            format!("{b}/webhooks"),
            Some(json!({ "url": "https://pwned.example/in", "events": ["*"] })),
        ),
        (Method::GET, format!("{b}/webhooks"), None),
        (Method::GET, format!("{b}/webhooks/{whk}"), None),
        (Method::DELETE, format!("{b}/webhooks/{whk}"), None),
        (
            Method::POST,
            format!("{b}/webhooks/{whk}/rotate-secret"),
            None,
        ),
        (Method::GET, format!("{b}/webhooks/{whk}/deliveries"), None),
        (
            Method::GET,
            format!("{b}/webhooks/{whk}/deliveries/{msg}"),
            None,
        ),
        (
            Method::POST,
            format!("{b}/webhooks/{whk}/deliveries/{msg}/redeliver"),
            None,
        ),
        (Method::POST, format!("{b}/webhooks/{whk}/redeliver"), None),
    ]
}

async fn check(t: &TestApp) {
    let a = t.agency("Alpha").await;
    let b = t.agency("Bravo").await;
    let bnd = t
        .post(
            &format!("/v1/agencies/{}/bindings", a.id),
            &t.admin,
            json!({ "principal": a.user, "role": "account_user", "account": a.acc }),
        )
        .await;
    assert_eq!(bnd.status, StatusCode::CREATED, "{}", bnd.body);
    let bnd = bnd.id();
    let rol = t
        .post(
            &format!("/v1/agencies/{}/roles", a.id),
            &t.admin,
            json!({ "name": "reader", "permissions": ["contacts.read"] }),
        )
        .await;
    assert_eq!(rol.status, StatusCode::CREATED, "{}", rol.body);
    let rol = rol.id();
    let pol = t.post(&format!("/v1/agencies/{}/policies", a.id), &t.admin, json!({ "cedar": "forbid(principal, action == Tessera::Action::\"contacts.delete\", resource) unless { context has mfa && context.mfa };" })).await;
    assert_eq!(pol.status, StatusCode::CREATED, "{}", pol.body);
    let pol = pol.id();
    let app = t.post(&format!("/v1/agencies/{}/apps", a.id), &t.admin, json!({ "name": "Alpha app", "redirect_uris": ["https://alpha.test/cb"], "scopes": ["contacts.readonly"], "confidential": true })).await;
    assert_eq!(app.status, StatusCode::CREATED, "{}", app.body);
    let app = app.id();
    let ins = t
        .post(
            &format!("/v1/agencies/{}/installations", a.id),
            &t.admin,
            json!({ "app": app, "scopes": ["contacts.readonly"] }),
        )
        .await;
    assert_eq!(ins.status, StatusCode::CREATED, "{}", ins.body);
    let ins = ins.id();
    let acc_ins = t
        .post(
            &format!("/v1/agencies/{}/accounts/{}/installations", a.id, a.acc),
            &t.admin,
            json!({ "app": app, "scopes": ["contacts.readonly"] }),
        )
        .await;
    assert_eq!(acc_ins.status, StatusCode::CREATED, "{}", acc_ins.body);
    let acc_ins = acc_ins.id();
    let rsv = t
        .post(
            &format!("/v1/agencies/{}/resource-servers", a.id),
            &t.admin,
            json!({ "identifier": "https://crm.alpha.test", "scopes": ["contacts.readonly"] }),
        )
        .await;
    assert_eq!(rsv.status, StatusCode::CREATED, "{}", rsv.body);
    let rsv = rsv.id();
    let whk = t
        .post(
            &format!("/v1/agencies/{}/webhooks", a.id),
            &t.admin,
            json!({ "url": "https://siem.alpha.test/in", "events": ["*"] }),
        )
        .await;
    assert_eq!(whk.status, StatusCode::CREATED, "{}", whk.body);
    let whk = whk.id();
    // A message in A's queue, enqueued as the dispatcher would.
    let msg = {
        let scope = t.state.admission.admit(a.id.parse().unwrap());
        let id: tessera_core::WebhookId = whk.parse().unwrap();
        let w = t.state.store.get_webhook(&scope, &id).await.unwrap();
        let m = tessera_core::MessageId::generate();
        let nd = tessera_store::NewDelivery {
            id: m.clone(),
            event_seq: w.cursor + 1,
            event_type: "webhook.create".into(),
            payload: "{}".into(),
        };
        assert!(t
            .state
            .store
            .enqueue_deliveries(&scope, &id, w.cursor, w.cursor + 1, &[nd], 0)
            .await
            .unwrap());
        m.to_string()
    };
    let before = t
        .get(&format!("/v1/agencies/{}/audit", a.id), &a.key)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .len();

    let attacks = routes(
        &a.id,
        &a.acc,
        &a.user,
        &a.key_id,
        &bnd,
        &rol,
        &pol,
        [&app, &ins, &acc_ins, &rsv, &whk, &msg],
    );
    let ghosts = routes(
        &missing("agy"),
        &missing("acc"),
        &missing("usr"),
        &missing("key"),
        &missing("bnd"),
        &missing("rol"),
        &missing("pol"),
        [
            &missing("app"),
            &missing("ins"),
            &missing("ins"),
            &missing("rsv"),
            &missing("whk"),
            &missing("msg"),
        ],
    );
    assert_eq!(
        attacks.len(),
        tessera_server::http::routes::table()
            .iter()
            .filter(|r| r.path.starts_with("/v1/agencies/{agy}"))
            .count(),
        "every agency route is attacked"
    );
    for ((m, path, body), (_, ghost_path, ghost_body)) in attacks.into_iter().zip(ghosts) {
        let r = t.call(m.clone(), &path, Some(&b.key), body).await;
        let g = t
            .call(m.clone(), &ghost_path, Some(&b.key), ghost_body)
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{m} {path}: {}",
            r.body
        );
        assert_eq!(
            r.body, g.body,
            "{m} {path}: B must not tell A's objects from missing ones"
        );
    }
    // Nothing of A changed, and A's trail holds no event by B.
    assert_eq!(
        t.get(&format!("/v1/agencies/{}", a.id), &a.key).await.body["name"],
        "Alpha"
    );
    assert_eq!(
        t.get(&format!("/v1/agencies/{}/accounts/{}", a.id, a.acc), &a.key)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        t.get(&format!("/v1/agencies/{}/users/{}", a.id, a.user), &a.key)
            .await
            .body["name"],
        "Owner"
    );
    assert_eq!(
        t.get(
            &format!("/v1/agencies/{}/api-keys/{}", a.id, a.key_id),
            &a.key
        )
        .await
        .body["revoked_at"],
        Value::Null
    );
    let events = t
        .get(&format!("/v1/agencies/{}/audit", a.id), &a.key)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(events.len(), before);
    // B's own trail records the denied attempts.
    let denied = t
        .get(
            &format!("/v1/agencies/{}/audit?action=authz.denied", b.id),
            &b.key,
        )
        .await;
    assert!(
        denied.body["items"].as_array().unwrap().len() >= 20,
        "{}",
        denied.body
    );
}

#[tokio::test]
async fn another_agency_gets_the_same_404_as_a_missing_id_sqlite() {
    check(&TestApp::sqlite().await).await;
}

#[tokio::test]
async fn another_agency_gets_the_same_404_as_a_missing_id_postgres() {
    if let Some(t) = TestApp::postgres().await {
        check(&t).await;
    }
}

#[tokio::test]
async fn an_agency_key_cannot_reach_platform_routes() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Alpha").await;
    let r = t.get("/v1/agencies", &a.key).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .post("/v1/agencies", &a.key, json!({ "name": "mine" }))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Nor bind a platform role in its own agency.
    let r = t
        .post(
            &format!("/v1/agencies/{}/bindings", a.id),
            &a.key,
            json!({ "principal": a.user, "role": "platform_admin" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}
