//! Issue 8, finding 5: an agency cannot lock platform staff out with its own policies, and a
//! policy that would forbid its author `policies.write` needs an explicit `allow_self_lockout`.
//! Finding 1: a hostile policy is refused with a diagnostic, and the server keeps serving.

use axum::http::StatusCode;
use serde_json::json;

use tessera_server::clock::Clock as _;

use crate::harness::TestApp;

async fn platform_is_never_locked_out(t: TestApp) {
    let a = t.agency("Lockout").await;
    let agy = a.id.as_str();
    let policies = format!("/v1/agencies/{agy}/policies");
    // The agency forbids everyone from elsewhere (and, here, itself too: it says so).
    for cedar in [
        format!("forbid(principal, action, resource) when {{ principal.agency != \"{agy}\" }};"),
        "forbid(principal, action, resource);".to_owned(),
    ] {
        let r = t.post(&policies, &a.key, json!({ "cedar": cedar })).await;
        if r.status == StatusCode::CONFLICT {
            assert_eq!(r.body["self_lockout"], true, "{}", r.body);
            let r = t
                .post(
                    &policies,
                    &a.key,
                    json!({ "cedar": cedar, "allow_self_lockout": true }),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        } else {
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        }
    }
    // The agency's own key is now forbidden everything, as it asked.
    let r = t.get(&format!("/v1/agencies/{agy}"), &a.key).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // The platform still reads the agency, lists and deletes its policies: break-glass.
    let r = t.get(&format!("/v1/agencies/{agy}"), &t.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let list = t.get(&policies, &t.admin).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let ids: Vec<String> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2);
    for id in &ids {
        let r = t.delete(&format!("{policies}/{id}"), &t.admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    }
    // With the policies gone, the agency works again.
    let r = t.get(&format!("/v1/agencies/{agy}"), &a.key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Every override is in the agency's trail as break-glass.
    let trail = t
        .get(
            &format!("/v1/agencies/{agy}/audit?action=platform.break_glass"),
            &t.admin,
        )
        .await;
    let items = trail.body["items"].as_array().unwrap();
    assert!(items.len() >= 4, "{}", trail.body);
    assert!(
        items
            .iter()
            .all(|e| e["detail"]["overridden"] == "denied_by_policy"),
        "{}",
        trail.body
    );
    // Break-glass does not reach the agency's data: a forbid there still binds the platform.
    let r = t
        .post(
            &policies,
            &a.key,
            json!({ "cedar": "forbid(principal, action == Tessera::Action::\"users.read\", resource);" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = t.get(&format!("/v1/agencies/{agy}/users"), &t.admin).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // And the platform can delete the agency even while it forbids everything.
    let r = t
        .post(
            &policies,
            &a.key,
            json!({ "cedar": "forbid(principal, action, resource);", "allow_self_lockout": true }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = t.delete(&format!("/v1/agencies/{agy}"), &t.admin).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
}

#[tokio::test]
async fn an_agency_cannot_lock_the_platform_out() {
    platform_is_never_locked_out(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn an_agency_cannot_lock_the_platform_out_on_postgres() {
    if let Some(t) = TestApp::postgres().await {
        platform_is_never_locked_out(t).await;
    }
}

#[tokio::test]
async fn a_policy_locking_out_its_author_needs_consent() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Self").await;
    let policies = format!("/v1/agencies/{}/policies", a.id);
    let cedar = "forbid(principal, action == Tessera::Action::\"policies.write\", resource);";
    let r = t.post(&policies, &a.key, json!({ "cedar": cedar })).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "conflict"),
        "{}",
        r.body
    );
    assert_eq!(r.body["self_lockout"], true);
    // Nothing was written.
    let list = t.get(&policies, &a.key).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 0);
    // A policy that spares the author is fine.
    let spare = "forbid(principal, action == Tessera::Action::\"policies.write\", resource) unless { context.mfa };";
    let r = t.post(&policies, &a.key, json!({ "cedar": spare })).await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "mfa is false for this key: {}",
        r.body
    );
    let fine = "forbid(principal, action == Tessera::Action::\"contacts.delete\", resource) unless { context.mfa };";
    let r = t.post(&policies, &a.key, json!({ "cedar": fine })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // With consent, the lock-out is written, and the author is then refused.
    let r = t
        .post(
            &policies,
            &a.key,
            json!({ "cedar": cedar, "allow_self_lockout": true }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = t.post(&policies, &a.key, json!({ "cedar": fine })).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
}

/// A time bomb: a policy that forbids its author `policies.write` only later (or only from
/// another address) is a lock-out too, and needs the same consent.
#[tokio::test]
async fn a_lockout_that_starts_later_or_elsewhere_needs_consent() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Bomb").await;
    let policies = format!("/v1/agencies/{}/policies", a.id);
    let now = t.clock.now() / 1000;
    let cases = [
        format!("forbid(principal, action == Tessera::Action::\"policies.write\", resource) when {{ context.time > {} }};", now + 600),
        format!("forbid(principal, action == Tessera::Action::\"policies.write\", resource) when {{ context.time > {} }};", now + 200 * 86_400),
        "forbid(principal, action == Tessera::Action::\"policies.write\", resource) unless { context has ip && context.ip.isInRange(ip(\"10.0.0.0/8\")) };".to_owned(),
    ];
    for cedar in &cases {
        let r = t.post(&policies, &a.key, json!({ "cedar": cedar })).await;
        assert_eq!(
            (r.status, r.body["self_lockout"].clone()),
            (StatusCode::CONFLICT, json!(true)),
            "{cedar}: {}",
            r.body
        );
    }
    // A condition on the time of other permissions is fine.
    let fine = format!("forbid(principal, action == Tessera::Action::\"contacts.delete\", resource) when {{ context.time > {} }};", now + 600);
    let r = t.post(&policies, &a.key, json!({ "cedar": fine })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

/// Finding 1: a 400-byte policy nested 150 deep aborted the process (all tenants).
#[tokio::test]
async fn hostile_policies_get_a_400_and_the_server_keeps_serving() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Deep").await;
    let policies = format!("/v1/agencies/{}/policies", a.id);
    let cases = [
        format!(
            "forbid(principal, action, resource) when {{ {}true{} }};",
            "(".repeat(150),
            ")".repeat(150)
        ),
        format!(
            "forbid(principal, action, resource) when {{ {}1{} == 1 }};",
            "[".repeat(150),
            "]".repeat(150)
        ),
        format!(
            "forbid(principal, action, resource) when {{ 1{} == 2 }};",
            " + 1".repeat(1500)
        ),
        format!(
            "forbid(principal, action, resource) when {{ {}true }};",
            "!".repeat(4000)
        ),
    ];
    for cedar in cases {
        let r = t.post(&policies, &a.key, json!({ "cedar": cedar })).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{}",
            r.body
        );
        assert!(
            r.body["diagnostics"]
                .as_array()
                .is_some_and(|d| !d.is_empty()),
            "{}",
            r.body
        );
    }
    let r = t.get(&format!("/v1/agencies/{}", a.id), &a.key).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// Break-glass overrides the agency's policies only: a platform-wide policy still binds platform
/// staff, even when the agency's own policy errors or forbids in the same evaluation.
#[tokio::test]
async fn platform_policies_still_bind_platform_staff() {
    let settings = tessera_server::services::EngineSettings {
        platform_policies: vec![(
            "platform:mfa-for-deletes".into(),
            "forbid(principal, action == Tessera::Action::\"agencies.delete\", resource) unless { context.mfa };".into(),
        )],
        ..Default::default()
    };
    let t = TestApp::sqlite_with(settings).await;
    let a = t.agency("Bound").await;
    let policies = format!("/v1/agencies/{}/policies", a.id);
    for cedar in [
        "forbid(principal, action, resource);",
        // An evaluation error (overflow) in the agency's own set.
        "forbid(principal, action, resource) when { context.time * 9223372036854775807 > 0 };",
    ] {
        // Written by the platform (break-glass lets it, whatever the agency's policies say).
        let r = t.post(&policies, &t.admin, json!({ "cedar": cedar })).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    // The agency's policies are overridden for reading it …
    let r = t.get(&format!("/v1/agencies/{}", a.id), &t.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // … but the platform's own rule (deletes need MFA) still holds.
    let r = t.delete(&format!("/v1/agencies/{}", a.id), &t.admin).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
}
