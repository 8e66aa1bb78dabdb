//! Compliance evidence through the app (issue 12, deliverable 7): the access review agrees
//! with the engine, the credential inventory flags stale credentials and never shows a
//! secret, the impersonation report says who, whom, why and what, a user reads their own
//! history and nobody else's, every read is audited, CSV is RFC 4180 with formulas
//! neutralised, and another agency (or an impersonator) reads nothing.

use std::collections::HashSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

use crate::harness::{Agency, Resp, TestApp};
use crate::oauth::{code_flow, Fixture};

const DAY: i64 = 86_400_000;

impl TestApp {
    async fn csv(&self, path: &str, key: &str) -> Resp {
        let req = Request::builder()
            .uri(path)
            .header("authorization", format!("Bearer {key}"))
            .header("accept", "text/csv")
            .body(Body::empty())
            .unwrap();
        self.raw(req).await
    }

    /// Every row of a report, following its cursor.
    async fn all_rows(&self, path: &str, key: &str) -> Vec<Value> {
        let mut rows = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = match &cursor {
                Some(c) => format!("{path}{sep}cursor={c}"),
                None => path.to_owned(),
            };
            let r = self.get(&url, key).await;
            assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.body);
            rows.extend(r.body["items"].as_array().unwrap().iter().cloned());
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return rows,
            }
        }
        panic!("{path}: the cursor never ended");
    }

    async fn report_reads(&self, ag: &Agency) -> Vec<Value> {
        let r = self
            .get(
                &format!(
                    "/v1/agencies/{}/audit?action=compliance.report_read&limit=200",
                    ag.id
                ),
                &self.admin,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["items"].as_array().unwrap().clone()
    }
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

fn row<'a>(rows: &'a [Value], principal: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["principal"] == principal || r["id"] == principal)
        .unwrap_or_else(|| panic!("{principal} not in the report"))
}

async fn access_review_is_what_the_engine_grants(app: &TestApp) {
    let ag = app.agency("Review").await;
    let users = format!("/v1/agencies/{}/users", ag.id);
    let mk = |email: &str| json!({ "email": email, "name": "Pat" });
    let admin = app
        .post(&users, &app.admin, mk("admin@review.test"))
        .await
        .id();
    let clerk = app
        .post(&users, &app.admin, mk("clerk@review.test"))
        .await
        .id();
    let gone = app
        .post(&users, &app.admin, mk("gone@review.test"))
        .await
        .id();
    let bind = |p: &str, role: &str, acc: Option<&str>| {
        let mut b = json!({ "principal": p, "role": role });
        if let Some(a) = acc {
            b["account"] = json!(a);
        }
        b
    };
    let bindings = format!("/v1/agencies/{}/bindings", ag.id);
    for b in [
        bind(&admin, "agency_admin", None),
        bind(&clerk, "account_user", Some(&ag.acc)),
        bind(&gone, "agency_user", None),
    ] {
        let r = app.post(&bindings, &app.admin, b).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let r = app
        .patch(
            &format!("{users}/{gone}"),
            &app.admin,
            json!({ "status": "disabled" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The agency's own key acts: its last activity is on record.
    let r = app.post(&users, &ag.key, mk("new@review.test")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let path = format!("/v1/agencies/{}/reports/access-review?limit=2", ag.id);
    let rows = app.all_rows(&path, &app.admin).await;
    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r["principal"].as_str().unwrap())
        .collect();
    let unique: HashSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a principal listed twice: {ids:?}");
    for p in [&ag.user, &admin, &clerk, &gone, &ag.key_id] {
        assert!(ids.contains(&p.as_str()), "{p} missing from {ids:?}");
    }

    // What the report says each one holds is what the engine answers.
    for (p, account) in [(&admin, None), (&clerk, Some(&ag.acc)), (&ag.key_id, None)] {
        let mut url = format!("/v1/agencies/{}/principals/{p}/permissions", ag.id);
        if let Some(a) = account {
            url.push_str(&format!("?account={a}"));
        }
        let engine = app.get(&url, &app.admin).await;
        assert_eq!(engine.status, StatusCode::OK, "{}", engine.body);
        let r = row(&rows, p);
        let reported = match account {
            None => r["permissions"].clone(),
            Some(a) => r["account_permissions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["account"] == *a)
                .unwrap_or_else(|| panic!("no account row: {r}"))["permissions"]
                .clone(),
        };
        assert_eq!(names(&reported), names(&engine.body["permissions"]), "{p}");
    }
    let a = row(&rows, &admin);
    assert_eq!(a["kind"], "user");
    assert_eq!(a["email"], "admin@review.test");
    assert_eq!(a["roles"], json!(["agency_admin"]));
    assert!(a["bindings"][0]["id"].as_str().unwrap().starts_with("bnd_"));
    assert!(a["bindings"][0]["account"].is_null());
    assert!(names(&a["permissions"]).contains(&"users.impersonate".to_owned()));
    let c = row(&rows, &clerk);
    assert_eq!(
        c["permissions"],
        json!([]),
        "account_user holds nothing agency-wide"
    );
    assert_eq!(c["bindings"][0]["account"], ag.acc);
    // A disabled user keeps its bindings but is granted nothing.
    let g = row(&rows, &gone);
    assert_eq!(g["status"], "disabled");
    assert_eq!(g["roles"], json!(["agency_user"]));
    assert_eq!(g["permissions"], json!([]));
    let k = row(&rows, &ag.key_id);
    assert_eq!(k["kind"], "api_key");
    assert!(names(&k["scopes"]).contains(&"users.write".to_owned()));
    assert!(k["last_activity_at"].is_string(), "{k}");
    assert!(rows.iter().all(|r| r["revision"].as_i64().unwrap() > 0));

    // Each page read is audited, with its report and format.
    let reads = app.report_reads(&ag).await;
    assert!(reads.len() >= 3, "{reads:?}");
    assert!(reads
        .iter()
        .all(|e| e["detail"]["report"] == "access_review" && e["target"] == ag.id.as_str()));

    // CSV: a header and one line per principal of the page.
    let r = app
        .csv(
            &format!("/v1/agencies/{}/reports/access-review?limit=200", ag.id),
            &app.admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = r.body.as_str().unwrap();
    assert!(
        text.starts_with("principal,kind,name,email,status,"),
        "{text}"
    );
    assert!(text.contains(&format!("\r\n{admin},user,")), "{text}");
    assert!(
        r.headers.contains_key("tessera-next-cursor"),
        "users come first, then keys"
    );
    assert!(r.headers["link"].to_str().unwrap().contains("rel=\"next\""));
    assert_eq!(
        app.report_reads(&ag).await.last().unwrap()["detail"]["format"],
        "csv"
    );

    // The OpenAPI document names both media types and the permission's error answers.
    let doc = app
        .raw(
            Request::builder()
                .uri("/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    for path in [
        "/v1/agencies/{agy}/reports/access-review",
        "/v1/agencies/{agy}/reports/credentials",
        "/v1/agencies/{agy}/reports/impersonations",
        "/v1/agencies/{agy}/users/{usr}/impersonations",
    ] {
        let op = &doc.body["paths"][path]["get"];
        let ok = &op["responses"]["200"];
        assert!(
            ok["content"]["application/json"]["schema"].is_object(),
            "{path}: {op}"
        );
        assert!(ok["content"]["text/csv"].is_object(), "{path}");
        assert!(ok["headers"]["Tessera-Next-Cursor"].is_object(), "{path}");
        for code in ["400", "401", "403", "404"] {
            assert!(op["responses"][code].is_object(), "{path} {code}");
        }
    }
}

async fn credential_inventory_flags_stale_credentials(app: &TestApp) {
    let ag = app.agency("Creds").await;
    let keys = format!("/v1/agencies/{}/api-keys", ag.id);
    let expiring = app
        .post(
            &keys,
            &app.admin,
            json!({ "name": "ci", "scopes": ["contacts.readonly"], "expires_at": "2027-06-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(expiring.status, StatusCode::CREATED, "{}", expiring.body);
    let forever = app
        .post(
            &keys,
            &app.admin,
            json!({ "name": "=1+2 forever", "scopes": ["contacts.readonly"] }),
        )
        .await;
    assert_eq!(forever.status, StatusCode::CREATED, "{}", forever.body);
    let revoked = app
        .post(
            &keys,
            &app.admin,
            json!({ "name": "old", "scopes": ["contacts.readonly"] }),
        )
        .await;
    let r = app
        .delete(&format!("{keys}/{}", revoked.id()), &app.admin)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let created = app
        .post(
            &format!("/v1/agencies/{}/apps", ag.id),
            &app.admin,
            json!({ "name": "Sync", "redirect_uris": ["https://sync.example.com/cb"], "scopes": ["contacts.readonly"], "confidential": true, "kind": "private" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let client = created.body["client_id"].as_str().unwrap().to_owned();
    let rotated = app
        .post(
            &format!("/v1/agencies/{}/apps/{client}/rotate-secret", ag.id),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);

    let path = format!("/v1/agencies/{}/reports/credentials", ag.id);
    let rows = app.all_rows(&path, &app.admin).await;
    let e = row(&rows, &expiring.id());
    assert_eq!(e["kind"], "api_key");
    assert_eq!(e["state"], "active");
    assert_eq!(e["flags"], json!([]), "{e}");
    assert_eq!(e["stale"], false);
    let f = row(&rows, &forever.id());
    assert_eq!(f["flags"], json!(["no_expiry"]));
    assert_eq!(f["stale"], true);
    assert!(
        !rows.iter().any(|r| r["id"] == revoked.id().as_str()),
        "revoked keys are not inventory"
    );
    let secrets: Vec<&Value> = rows.iter().filter(|r| r["id"] == client.as_str()).collect();
    assert_eq!(secrets.len(), 2, "{secrets:?}");
    let states: HashSet<&str> = secrets
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, HashSet::from(["current", "retiring"]));
    assert!(secrets.iter().all(|s| s["rotation"] == "in_grace"));
    let signing: Vec<&Value> = rows.iter().filter(|r| r["kind"] == "signing_key").collect();
    assert!(!signing.is_empty(), "the issuer's signing keys are listed");
    assert!(signing.iter().any(|s| s["state"] == "active"));

    // Nothing secret is ever in the report.
    let whole = serde_json::to_string(&rows).unwrap();
    for secret in [
        expiring.body["secret"].as_str().unwrap(),
        forever.body["secret"].as_str().unwrap(),
        created.body["client_secret"].as_str().unwrap(),
        rotated.body["client_secret"].as_str().unwrap(),
    ] {
        assert!(
            !whole.contains(secret),
            "a secret leaked into the inventory"
        );
    }
    for field in ["sealed_private", "hash", "\"d\"", "public_jwk"] {
        assert!(!whole.contains(field), "`{field}` in the inventory");
    }

    // 100 days on: unused (never used since creation); a stricter policy makes them old too.
    app.clock.advance(100 * DAY);
    let rows = app.all_rows(&path, &app.admin).await;
    assert_eq!(row(&rows, &expiring.id())["flags"], json!(["unused"]));
    let rows = app
        .all_rows(
            &format!("{path}?max_age_days=30&unused_days=200"),
            &app.admin,
        )
        .await;
    assert_eq!(
        row(&rows, &forever.id())["flags"],
        json!(["no_expiry", "older_than_policy"])
    );
    assert_eq!(row(&rows, &forever.id())["age_days"], 100);
    for bad in [
        "max_age_days=0",
        "unused_days=abc",
        "max_age_days=99999",
        "color=red",
        "cursor=nope",
        "cursor=keys:a'b",
    ] {
        let r = app.get(&format!("{path}?{bad}"), &app.admin).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert_eq!(r.code(), "invalid_request");
    }

    // CSV: RFC 4180, and the key named `=1+2 forever` reaches no spreadsheet as a formula.
    let r = app.csv(&format!("{path}?limit=200"), &app.admin).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.body.as_str().unwrap();
    assert!(text.contains(",'=1+2 forever,"), "{text}");
    assert!(!text.contains(",=1+2"), "{text}");
    assert!(text.lines().next().unwrap().starts_with("kind,id,name,"));
    assert!(text.contains("\r\n"));
    let reads = app.report_reads(&ag).await;
    assert!(reads
        .iter()
        .any(|e| e["detail"]["report"] == "credentials" && e["detail"]["format"] == "csv"));
}

async fn other_agencies_and_narrow_keys_read_nothing(app: &TestApp) {
    let a = app.agency("Alpha").await;
    let b = app.agency("Beta").await;
    // B's own compliance key: the internal scope, granted by the platform admin.
    let auditor = app
        .post(
            &format!("/v1/agencies/{}/api-keys", b.id),
            &app.admin,
            json!({ "name": "auditor", "scopes": ["compliance.readonly"] }),
        )
        .await;
    assert_eq!(auditor.status, StatusCode::CREATED, "{}", auditor.body);
    let auditor = auditor.body["secret"].as_str().unwrap().to_owned();
    for report in ["access-review", "credentials", "impersonations"] {
        let own = app
            .get(&format!("/v1/agencies/{}/reports/{report}", b.id), &auditor)
            .await;
        assert_eq!(own.status, StatusCode::OK, "{report}: {}", own.body);
        // Another agency's report: the same 404 as an agency that does not exist.
        for key in [&auditor, &b.key] {
            let r = app
                .get(&format!("/v1/agencies/{}/reports/{report}", a.id), key)
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{report}: {}", r.body);
            let r = app
                .csv(&format!("/v1/agencies/{}/reports/{report}", a.id), key)
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{report}: {:?}", r.body);
        }
        // An admin key without `compliance.readonly` may not read its own agency's.
        let r = app
            .get(&format!("/v1/agencies/{}/reports/{report}", b.id), &b.key)
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{report}: {}", r.body);
    }
    let r = app
        .get(
            &format!("/v1/agencies/{}/users/{}/impersonations", a.id, a.user),
            &auditor,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    // Nothing of these reads reached A's chain; B's own reads are in B's.
    assert!(app.report_reads(&a).await.is_empty());
    assert_eq!(app.report_reads(&b).await.len(), 3);
    // A user of no agency, or not an id: 404, 400.
    let r = app
        .get(
            &format!(
                "/v1/agencies/{}/users/{}/impersonations",
                b.id,
                crate::harness::missing("usr")
            ),
            &auditor,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = app
        .get(
            &format!("/v1/agencies/{}/users/key_nope/impersonations", b.id),
            &auditor,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}

fn exchange(subject: &str, target: &str, reason: &str) -> Vec<(String, String)> {
    [
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", subject),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("requested_subject", target),
        ("reason", reason),
        ("scope", "contacts.write"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect()
}

async fn impersonations_are_reported_and_users_see_their_own(app: &TestApp) {
    let f = app
        .fixture(
            "Imprep",
            "first_party",
            &["contacts.write", "users.impersonate", "compliance.readonly"],
        )
        .await;
    let support = app
        .user_with_password(&f.ag, "support@imprep.test", "agency_admin", false)
        .await;
    let target = app
        .user_with_password(&f.ag, "target@imprep.test", "account_user", true)
        .await;
    let bystander = app
        .user_with_password(&f.ag, "other@imprep.test", "account_user", true)
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
        &as_user("support@imprep.test"),
        "contacts.write users.impersonate",
    )
    .await;
    let support_at = t["access_token"].as_str().unwrap().to_owned();
    let reason = "=cmd|' /C calc'!A0 ticket 42";
    let pairs = exchange(&support_at, &target, reason);
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let r = app.form("/oauth/token", None, &pairs).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let it = r.body["access_token"].as_str().unwrap().to_owned();
    // Acts under it.
    let check = json!({ "permission": "contacts.read", "resource": { "type": "contact", "agency": f.ag.id, "account": f.ag.acc } });
    assert_eq!(
        app.post("/v1/check", &it, check).await.status,
        StatusCode::OK
    );
    // Beyond the token's scopes: refused, and the refusal is one of the acts.
    let r = app
        .get(
            &format!("/v1/agencies/{}/accounts/{}", f.ag.id, f.ag.acc),
            &it,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // A refused attempt is reported too (the bystander holds nothing support lacks, but
    // the platform admin's user is not of this agency).
    let pairs = exchange(&support_at, &crate::harness::missing("usr"), "probe");
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        app.form("/oauth/token", None, &pairs).await.status,
        StatusCode::BAD_REQUEST
    );

    let path = format!("/v1/agencies/{}/reports/impersonations", f.ag.id);
    let rows = app.all_rows(&path, &app.admin).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let s = &rows[0];
    assert_eq!(s["impersonator"], support);
    assert_eq!(s["user"], target);
    assert_eq!(s["outcome"], "success");
    assert_eq!(s["reason"], reason);
    assert_eq!(s["scope"], "contacts.write");
    assert!(s["expires_at"].is_string());
    assert!(s["event"].as_str().unwrap().starts_with("evt_"));
    let acts: Vec<(String, String, String)> = s["acts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_owned(),
                a["outcome"].as_str().unwrap().to_owned(),
                a["request"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(acts.len(), 2, "{s}");
    assert_eq!(
        acts[0],
        (
            "impersonation.request".into(),
            "success".into(),
            "POST /v1/check".into()
        )
    );
    assert_eq!(
        (acts[1].0.as_str(), acts[1].1.as_str()),
        ("authz.denied", "denied")
    );
    assert_eq!(s["acts_truncated"], false);

    // CSV: the reason, which looks like a formula, is neutralised and quoted.
    let r = app.csv(&path, &app.admin).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.body.as_str().unwrap();
    assert!(
        text.contains(",\"'=cmd|' /C calc'!A0 ticket 42\",")
            || text.contains(",'=cmd|' /C calc'!A0 ticket 42,"),
        "{text}"
    );
    assert!(!text.contains(",=cmd"), "{text}");

    // An impersonation token reads no report, nor the history of the user it acts as.
    for url in [
        path.clone(),
        format!("/v1/agencies/{}/reports/access-review", f.ag.id),
        format!("/v1/agencies/{}/users/{target}/impersonations", f.ag.id),
    ] {
        let r = app.get(&url, &it).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{url}: {}", r.body);
    }

    // The user reads their own history, with the reason, but not the impersonator's address.
    let own = code_flow(app, &as_user("target@imprep.test"), "compliance.readonly").await;
    let own = own["access_token"].as_str().unwrap().to_owned();
    let mine = format!("/v1/agencies/{}/users/{target}/impersonations", f.ag.id);
    let r = app.get(&mine, &own).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["report"], "user_impersonations");
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["items"][0]["reason"], reason);
    assert_eq!(r.body["items"][0]["impersonator"], support);
    assert!(r.body["items"][0]["ip"].is_null());
    // Its acts now include the impersonator's refused attempts to read the reports and
    // this very history (each an `authz.denied` on `compliance.read`).
    let acts = r.body["items"][0]["acts"].as_array().unwrap();
    assert!(acts.len() >= 5, "{acts:?}");
    assert_eq!(acts[0]["request"], "POST /v1/check");
    // (The user view's route lets the request in and refuses it in its handler, so that
    // attempt shows both its `impersonation.request` and its `authz.denied`.)
    for a in &acts[2..] {
        assert_eq!(a["permission"], "compliance.read", "{a}");
    }
    let refused = acts[2..]
        .iter()
        .filter(|a| a["action"] == "authz.denied" && a["outcome"] == "denied")
        .count();
    assert_eq!(refused, 3, "{acts:?}");
    // …and nobody else's, nor the agency's reports.
    for url in [
        format!("/v1/agencies/{}/users/{bystander}/impersonations", f.ag.id),
        format!("/v1/agencies/{}/users/{support}/impersonations", f.ag.id),
        format!(
            "/v1/agencies/{}/users/{}/impersonations",
            f.ag.id,
            crate::harness::missing("usr")
        ),
        path.clone(),
    ] {
        let r = app.get(&url, &own).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{url}: {}", r.body);
    }
    // Their own credential without `compliance.readonly` (any app's token) is not enough.
    let plain = code_flow(app, &as_user("target@imprep.test"), "contacts.write").await;
    let r = app
        .get(&mine, plain["access_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // The bystander's history is empty, for whoever may read it.
    let r = app
        .get(
            &format!("/v1/agencies/{}/users/{bystander}/impersonations", f.ag.id),
            &app.admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["items"], json!([]));

    // Every read, and every refusal, is on record.
    let reads = app.report_reads(&f.ag).await;
    let own_reads: Vec<&Value> = reads
        .iter()
        .filter(|e| e["detail"]["self"] == true)
        .collect();
    assert_eq!(own_reads.len(), 1, "{reads:?}");
    assert_eq!(own_reads[0]["actor"], target);
    assert_eq!(own_reads[0]["target"], target);
    let denied = app
        .get(
            &format!(
                "/v1/agencies/{}/audit?action=authz.denied&actor={target}",
                f.ag.id
            ),
            &app.admin,
        )
        .await;
    assert!(
        denied.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["detail"]["permission"] == "compliance.read"),
        "{}",
        denied.body
    );
}

on_both_backends!(
    access_review_is_what_the_engine_grants,
    credential_inventory_flags_stale_credentials,
    other_agencies_and_narrow_keys_read_nothing,
    impersonations_are_reported_and_users_see_their_own,
);
