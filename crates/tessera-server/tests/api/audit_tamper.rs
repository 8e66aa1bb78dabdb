//! Issue 12: signed audit checkpoints. Rows are tampered with directly in the database (SQLite
//! and PostgreSQL) and every case is detected and located both online (`GET …/audit/verify`)
//! and offline (the library function `tessera audit verify` runs, on an export taken after the
//! tampering, against the JWKS from `/.well-known/audit-keys.json`). Also: pruned chains verify,
//! duplicate checkpoints are impossible, retention is platform-only, the JWKS is public.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::{json, Value};
use tessera_server::audit::verify::{keys_from_jwks, verify_export, FileVerdict};
use tessera_store::audit::chain_hash;

use crate::harness::{Agency, TestApp};

/// Raw access to the database, as someone holding its credentials (on PostgreSQL the session
/// names the agency, so row-level security lets the rows through, as it would for them).
enum Raw {
    Lite(sqlx::SqliteConnection),
    Pg(sqlx::PgConnection),
}

impl Raw {
    async fn open(t: &TestApp, agency: &str) -> Self {
        use sqlx::Connection;
        let url = t.db_url();
        if url.starts_with("sqlite:") {
            Raw::Lite(sqlx::SqliteConnection::connect(&url).await.unwrap())
        } else {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query("SELECT set_config('tessera.agency_id', $1, false)")
                .bind(agency)
                .execute(&mut c)
                .await
                .unwrap();
            Raw::Pg(c)
        }
    }

    async fn exec(&mut self, sql: &str) {
        match self {
            Raw::Lite(c) => {
                sqlx::raw_sql(sql).execute(&mut *c).await.unwrap();
            }
            Raw::Pg(c) => {
                sqlx::raw_sql(sql).execute(&mut *c).await.unwrap();
            }
        }
    }

    /// Sets an event's actor, prev_hash and hash.
    async fn rewrite(&mut self, agency: &str, seq: i64, actor: &str, prev: &[u8], hash: &[u8]) {
        let sql = "UPDATE audit_events SET actor = $1, prev_hash = $2, hash = $3 WHERE agency_id = $4 AND seq = $5";
        match self {
            Raw::Lite(c) => {
                sqlx::query(sql)
                    .bind(actor)
                    .bind(prev)
                    .bind(hash)
                    .bind(agency)
                    .bind(seq)
                    .execute(&mut *c)
                    .await
                    .unwrap();
            }
            Raw::Pg(c) => {
                sqlx::query(sql)
                    .bind(actor)
                    .bind(prev)
                    .bind(hash)
                    .bind(agency)
                    .bind(seq)
                    .execute(&mut *c)
                    .await
                    .unwrap();
            }
        }
    }

    async fn set_head(&mut self, agency: &str, seq: i64, hash: &[u8]) {
        let sql = "UPDATE audit_heads SET seq = $1, hash = $2 WHERE agency_id = $3";
        match self {
            Raw::Lite(c) => {
                sqlx::query(sql)
                    .bind(seq)
                    .bind(hash)
                    .bind(agency)
                    .execute(&mut *c)
                    .await
                    .unwrap();
            }
            Raw::Pg(c) => {
                sqlx::query(sql)
                    .bind(seq)
                    .bind(hash)
                    .bind(agency)
                    .execute(&mut *c)
                    .await
                    .unwrap();
            }
        }
    }
}

/// An agency with a chain of about 12 events, a checkpoint at its head (`cp`), then 3 more
/// events after it.
async fn setup(t: &TestApp) -> (Agency, i64) {
    let a = t.agency("Evidence").await;
    let base = format!("/v1/agencies/{}", a.id);
    for i in 0..6 {
        let r = t
            .post(
                &format!("{base}/accounts"),
                &a.key,
                json!({ "name": format!("acc {i}") }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    t.state.audit_keys.maintain(t.clock.now_s()).await.unwrap();
    let agency: tessera_core::AgencyId = a.id.parse().unwrap();
    assert!(t.state.checkpointer.checkpoint(&agency).await.unwrap());
    let cp = t
        .state
        .store
        .audit_head(&t.state.admission.admit(agency.clone()))
        .await
        .unwrap()
        .unwrap()
        .seq;
    for i in 0..3 {
        t.post(
            &format!("{base}/accounts"),
            &a.key,
            json!({ "name": format!("late {i}") }),
        )
        .await;
    }
    (a, cp)
}

trait NowS {
    fn now_s(&self) -> i64;
}
impl NowS for std::sync::Arc<tessera_server::clock::ManualClock> {
    fn now_s(&self) -> i64 {
        use tessera_server::clock::Clock;
        self.now() / 1000
    }
}

async fn online(t: &TestApp, a: &Agency) -> Value {
    let r = t
        .get(&format!("/v1/agencies/{}/audit/verify", a.id), &a.key)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn keys(t: &TestApp) -> HashMap<String, ed25519_dalek::VerifyingKey> {
    let r = t
        .call(
            axum::http::Method::GET,
            "/.well-known/audit-keys.json",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    keys_from_jwks(&r.body).unwrap()
}

async fn export_text(t: &TestApp, a: &Agency, query: &str) -> String {
    let req = axum::http::Request::builder()
        .uri(format!("/v1/agencies/{}/audit/export{query}", a.id))
        .header("authorization", format!("Bearer {}", a.key))
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(t.router.clone(), req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/jsonl");
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Offline: (first bad line, reason, the seq that line holds) or None when intact.
async fn offline(t: &TestApp, a: &Agency) -> Option<(u64, String, Option<i64>)> {
    let text = export_text(t, a, "").await;
    let keys = keys(t).await;
    match verify_export(std::io::Cursor::new(text.as_bytes()), &keys).unwrap() {
        FileVerdict::Intact(_) => None,
        FileVerdict::Broken { line, failure } => {
            let held = text
                .lines()
                .nth(usize::try_from(line).unwrap() - 1)
                .and_then(|l| serde_json::from_str::<Value>(l).ok())
                .and_then(|v| v["seq"].as_i64());
            Some((line, failure.reason.as_str().to_owned(), held))
        }
    }
}

async fn assert_detected(t: &TestApp, a: &Agency, reasons: &[&str], first_bad: i64, case: &str) {
    let v = online(t, a).await;
    assert_eq!(v["ok"], false, "{case}: online missed it: {v}");
    assert!(
        reasons.contains(&v["reason"].as_str().unwrap()),
        "{case}: online reason {v}"
    );
    assert_eq!(v["first_bad"], first_bad, "{case}: online location {v}");
    let off = offline(t, a).await;
    let (line, reason, _) = off
        .clone()
        .unwrap_or_else(|| panic!("{case}: offline missed it"));
    assert!(
        reasons.contains(&reason.as_str()),
        "{case}: offline reason {off:?}"
    );
    assert!(line >= 1, "{case}");
}

async fn intact(t: &TestApp, a: &Agency) {
    let v = online(t, a).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(offline(t, a).await, None);
}

async fn edit_a_field(t: &TestApp) {
    let (a, _) = setup(t).await;
    intact(t, &a).await;
    let v = online(t, &a).await;
    assert!(v["checkpoints"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["anchored_seq"].as_i64().is_some(), "{v}");
    let mut db = Raw::open(t, &a.id).await;
    db.exec(&format!(
        "UPDATE audit_events SET actor = 'mallory' WHERE agency_id = '{}' AND seq = 3",
        a.id
    ))
    .await;
    assert_detected(t, &a, &["hash_mismatch"], 3, "edit a field").await;
    // Offline names the line of seq 3 (the first three lines are events 1 to 3).
    assert_eq!(
        offline(t, &a).await,
        Some((3, "hash_mismatch".into(), Some(3)))
    );
}

async fn edit_and_rehash_everything_after(t: &TestApp) {
    // The attack the unkeyed chain could not see: edit an event, recompute every later hash
    // and the head. Only the signed checkpoint notices.
    let (a, cp) = setup(t).await;
    let agency: tessera_core::AgencyId = a.id.parse().unwrap();
    let scope = t.state.admission.admit(agency.clone());
    let events = t.state.store.audit_chain(&scope, 0, 1000).await.unwrap();
    let mut db = Raw::open(t, &a.id).await;
    let mut prev = tessera_store::ChainHash::GENESIS;
    for e in &events {
        let mut r = e.record();
        if e.seq == 4 {
            r.actor = "mallory".into();
        }
        let h = chain_hash(e.seq, &agency, &r, &prev);
        db.rewrite(&a.id, e.seq, &r.actor, &prev.0, &h.0).await;
        prev = h;
    }
    db.set_head(&a.id, events.last().unwrap().seq, &prev.0)
        .await;
    assert_detected(t, &a, &["checkpoint_mismatch"], cp, "edit and rehash").await;
}

async fn delete_a_row(t: &TestApp) {
    let (a, _) = setup(t).await;
    let mut db = Raw::open(t, &a.id).await;
    db.exec(&format!(
        "DELETE FROM audit_events WHERE agency_id = '{}' AND seq = 5",
        a.id
    ))
    .await;
    assert_detected(t, &a, &["sequence_gap"], 5, "delete a row").await;
}

async fn insert_a_row(t: &TestApp) {
    let (a, _) = setup(t).await;
    let mut db = Raw::open(t, &a.id).await;
    let id = &a.id;
    // Make room at seq 3 and insert a forged event there (a copy of event 2 by `mallory`).
    db.exec(&format!(
        "UPDATE audit_events SET seq = -seq WHERE agency_id = '{id}' AND seq >= 3"
    ))
    .await;
    db.exec(&format!(
        "UPDATE audit_events SET seq = 1 - seq WHERE agency_id = '{id}' AND seq < 0"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO audit_events (agency_id, seq, id, at, actor, on_behalf_of, action, target, outcome, request_id, ip, user_agent, detail, prev_hash, hash) \
         SELECT agency_id, 3, id, at, 'mallory', on_behalf_of, action, target, outcome, request_id, ip, user_agent, detail, hash, hash \
         FROM audit_events WHERE agency_id = '{id}' AND seq = 2"
    ))
    .await;
    db.exec(&format!(
        "UPDATE audit_heads SET seq = seq + 1 WHERE agency_id = '{id}'"
    ))
    .await;
    assert_detected(t, &a, &["hash_mismatch", "broken_link"], 3, "insert a row").await;
}

async fn reorder_two_rows(t: &TestApp) {
    let (a, _) = setup(t).await;
    let mut db = Raw::open(t, &a.id).await;
    let id = &a.id;
    db.exec(&format!(
        "UPDATE audit_events SET seq = -1 WHERE agency_id = '{id}' AND seq = 4"
    ))
    .await;
    db.exec(&format!(
        "UPDATE audit_events SET seq = 4 WHERE agency_id = '{id}' AND seq = 5"
    ))
    .await;
    db.exec(&format!(
        "UPDATE audit_events SET seq = 5 WHERE agency_id = '{id}' AND seq = -1"
    ))
    .await;
    assert_detected(
        t,
        &a,
        &["hash_mismatch", "broken_link"],
        4,
        "reorder two rows",
    )
    .await;
}

async fn truncate_the_tail_after_a_checkpoint(t: &TestApp) {
    let (a, cp) = setup(t).await;
    let agency: tessera_core::AgencyId = a.id.parse().unwrap();
    let scope = t.state.admission.admit(agency);
    let keep = cp - 2;
    let kept = t
        .state
        .store
        .audit_chain(&scope, keep - 1, 1)
        .await
        .unwrap();
    let mut db = Raw::open(t, &a.id).await;
    db.exec(&format!(
        "DELETE FROM audit_events WHERE agency_id = '{}' AND seq > {keep}",
        a.id
    ))
    .await;
    // The careful attacker also winds the head back.
    db.set_head(&a.id, keep, &kept[0].hash.0).await;
    assert_detected(t, &a, &["missing_events"], keep + 1, "truncate the tail").await;
}

async fn replace_a_checkpoint(t: &TestApp) {
    let (a, cp) = setup(t).await;
    let mut db = Raw::open(t, &a.id).await;
    let id = &a.id;
    // Its hash swapped for another event's: the signature no longer covers it.
    db.exec(&format!(
        "UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_events WHERE agency_id = '{id}' AND seq = 2) WHERE agency_id = '{id}' AND seq = {cp}"
    ))
    .await;
    assert_detected(t, &a, &["checkpoint_signature"], cp, "replace a checkpoint").await;
    // Signed "by" a key nobody published.
    db.exec(&format!("UPDATE audit_checkpoints SET kid = 'audit-9-forged' WHERE agency_id = '{id}' AND seq = {cp}")).await;
    assert_detected(t, &a, &["unknown_key"], cp, "forge a checkpoint's key").await;
}

async fn delete_everything(t: &TestApp) {
    let (a, _) = setup(t).await;
    let mut db = Raw::open(t, &a.id).await;
    for table in [
        "audit_events",
        "audit_checkpoints",
        "audit_checkpoint_heads",
        "audit_heads",
    ] {
        db.exec(&format!("DELETE FROM {table} WHERE agency_id = '{}'", a.id))
            .await;
    }
    assert_detected(t, &a, &["missing_events"], 1, "delete everything").await;
}

async fn cut_off_the_head(t: &TestApp) {
    // Deleting the oldest events and the checkpoints before them looks like pruning, but
    // without the `audit.prune` event that pruning writes, online verification refuses it.
    let (a, cp) = setup(t).await;
    let mut db = Raw::open(t, &a.id).await;
    db.exec(&format!(
        "DELETE FROM audit_events WHERE agency_id = '{}' AND seq <= {cp}",
        a.id
    ))
    .await;
    let v = online(t, &a).await;
    assert_eq!(
        (v["ok"].clone(), v["reason"].clone(), v["first_bad"].clone()),
        (json!(false), json!("missing_events"), json!(1)),
        "{v}"
    );
    // Deleting the first events with no checkpoint to anchor the rest: offline too.
    let (b, _) = setup(t).await;
    let mut db = Raw::open(t, &b.id).await;
    db.exec(&format!(
        "DELETE FROM audit_events WHERE agency_id = '{}' AND seq <= 2",
        b.id
    ))
    .await;
    assert_detected(t, &b, &["missing_events"], 1, "headless chain").await;
}

async fn a_pruned_chain_still_verifies(t: &TestApp) {
    let (a, cp) = setup(t).await;
    // 401 days later (default retention 400), more events, and the pruner runs.
    t.clock.advance(401 * 86_400_000);
    t.post(
        &format!("/v1/agencies/{}/accounts", a.id),
        &a.key,
        json!({ "name": "after a year" }),
    )
    .await;
    let deleted = t.state.checkpointer.prune_once().await.unwrap();
    assert!(deleted >= u64::try_from(cp).unwrap(), "pruned {deleted}");
    let v = online(t, &a).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["start_seq"], cp, "{v}");
    let events = t
        .get(
            &format!("/v1/agencies/{}/audit?action=audit.prune", a.id),
            &a.key,
        )
        .await;
    assert_eq!(events.body["items"][0]["detail"]["through_seq"], cp);
    // The export starts with the anchoring checkpoint and verifies offline.
    let text = export_text(t, &a, "").await;
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["type"].as_str(), first["seq"].as_i64()),
        (Some("checkpoint"), Some(cp))
    );
    assert_eq!(offline(t, &a).await, None);
    // A second checkpoint and pruning pass changes nothing that verifies.
    let agency: tessera_core::AgencyId = a.id.parse().unwrap();
    assert!(t.state.checkpointer.checkpoint(&agency).await.unwrap());
    assert_eq!(t.state.checkpointer.prune_once().await.unwrap(), 0);
    intact(t, &a).await;
}

async fn export_resumes_from_its_anchor(t: &TestApp) {
    let (a, cp) = setup(t).await;
    let full = export_text(t, &a, "").await;
    let lines: Vec<Value> = full
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.last().unwrap()["type"], "end");
    assert!(lines
        .iter()
        .any(|l| l["type"] == "checkpoint" && l["seq"] == cp));
    // Every event line keeps the fields of the list, plus `type` and `cursor`.
    let e = &lines[0];
    for f in [
        "seq",
        "agency_id",
        "id",
        "at",
        "actor",
        "on_behalf_of",
        "action",
        "target",
        "outcome",
        "request_id",
        "ip",
        "user_agent",
        "detail",
        "prev_hash",
        "hash",
        "cursor",
    ] {
        assert!(e.get(f).is_some(), "event line lacks `{f}`: {e}");
    }
    // Resume after the event past the checkpoint: the export restarts at the checkpoint.
    let resumed = export_text(t, &a, &format!("?cursor={}", cp + 1)).await;
    let first: Value = serde_json::from_str(resumed.lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["type"].as_str(), first["seq"].as_i64()),
        (Some("checkpoint"), Some(cp))
    );
    let keys = keys(t).await;
    assert!(
        matches!(verify_export(std::io::Cursor::new(resumed.as_bytes()), &keys).unwrap(), FileVerdict::Intact(c) if c.start_seq == cp)
    );
    // `to` before everything: only the end line; bad parameters are 400s.
    let r = t
        .get(
            &format!("/v1/agencies/{}/audit/export?cursor=abc", a.id),
            &a.key,
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "{}",
        r.body
    );
    let r = t
        .get(
            &format!("/v1/agencies/{}/audit/export?from=yesterday", a.id),
            &a.key,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t
        .get(
            &format!("/v1/agencies/{}/audit/export?evil=1", a.id),
            &a.key,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

async fn nodes_racing_make_one_checkpoint(t: &TestApp) {
    let a = t.agency("Race").await;
    t.state.audit_keys.maintain(t.clock.now_s()).await.unwrap();
    let (node, _) = t.second_node().await;
    node.audit_keys.reload().await.unwrap();
    // Nothing is due before 60 s (the default) after an agency's first unsigned event.
    assert_eq!(t.state.checkpointer.run_once().await.unwrap(), 0);
    t.clock.advance(61_000);
    let (x, y) = tokio::join!(
        t.state.checkpointer.run_once(),
        node.checkpointer.run_once()
    );
    let made = x.unwrap() + y.unwrap();
    let agency: tessera_core::AgencyId = a.id.parse().unwrap();
    let scope = t.state.admission.admit(agency);
    let cps = t
        .state
        .store
        .audit_checkpoints(&scope, 0, 100)
        .await
        .unwrap();
    assert_eq!(cps.len(), 1, "{cps:?}");
    assert!(
        made >= 2,
        "each agency (platform and this one) got its checkpoint: {made}"
    );
    // Nothing new: nothing due.
    assert_eq!(t.state.checkpointer.run_once().await.unwrap(), 0);
    intact(t, &a).await;
}

/// A pass reads only the heads the append path marked due; events appended without a mark
/// (by a node of the previous release, during a rolling upgrade) are signed by the sweep a
/// node makes on its first pass and every hour.
async fn unmarked_heads_are_swept(t: &TestApp) {
    let a = t.agency("Old node").await;
    t.state.audit_keys.maintain(t.clock.now_s()).await.unwrap();
    t.clock.advance(61_000);
    assert!(
        t.state.checkpointer.run_once().await.unwrap() >= 1,
        "the first pass sweeps"
    );
    let base = format!("/v1/agencies/{}", a.id);
    let r = t
        .post(
            &format!("{base}/accounts"),
            &a.key,
            json!({ "name": "late" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let mut db = Raw::open(t, &a.id).await;
    db.exec(&format!(
        "UPDATE audit_heads SET pending_since = NULL WHERE agency_id = '{}'",
        a.id
    ))
    .await;
    t.clock.advance(61_000);
    assert_eq!(
        t.state.checkpointer.run_once().await.unwrap(),
        0,
        "marked heads only"
    );
    t.clock.advance(3_600_000);
    assert_eq!(
        t.state.checkpointer.run_once().await.unwrap(),
        1,
        "the hourly sweep"
    );
    assert_eq!(t.state.checkpointer.run_once().await.unwrap(), 0);
    intact(t, &a).await;
}

async fn a_tampered_chain_is_never_signed(t: &TestApp) {
    let (a, cp) = setup(t).await;
    let mut db = Raw::open(t, &a.id).await;
    db.exec(&format!(
        "UPDATE audit_events SET actor = 'mallory' WHERE agency_id = '{}' AND seq = {}",
        a.id,
        cp + 1
    ))
    .await;
    let agency: tessera_core::AgencyId = a.id.parse().unwrap();
    let err = t.state.checkpointer.checkpoint(&agency).await.unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
    let scope = t.state.admission.admit(agency);
    assert_eq!(
        t.state
            .store
            .audit_checkpoints(&scope, cp, 10)
            .await
            .unwrap(),
        []
    );
}

on_both_backends!(
    edit_a_field,
    edit_and_rehash_everything_after,
    delete_a_row,
    insert_a_row,
    reorder_two_rows,
    truncate_the_tail_after_a_checkpoint,
    replace_a_checkpoint,
    delete_everything,
    cut_off_the_head,
    a_pruned_chain_still_verifies,
    export_resumes_from_its_anchor,
    nodes_racing_make_one_checkpoint,
    unmarked_heads_are_swept,
    a_tampered_chain_is_never_signed,
);

#[tokio::test]
async fn the_audit_keys_are_a_public_cacheable_jwks_of_ed25519_keys() {
    let t = TestApp::sqlite().await;
    t.state.audit_keys.maintain(t.clock.now_s()).await.unwrap();
    let r = t
        .call(
            axum::http::Method::GET,
            "/.well-known/audit-keys.json",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["cache-control"], "public, max-age=300");
    let k = &r.body["keys"][0];
    assert_eq!(
        (
            k["kty"].as_str(),
            k["crv"].as_str(),
            k["alg"].as_str(),
            k["use"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"), Some("sig"))
    );
    assert!(k.get("d").is_none(), "no private part");
    // Not the token keys.
    let tokens = t
        .call(
            axum::http::Method::GET,
            "/.well-known/jwks.json",
            None,
            None,
        )
        .await;
    assert!(!tokens.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["kid"] == k["kid"]));
    // Rotation: a pending key is published before it signs; after it activates, the old key
    // retires and stays published.
    let first = k["kid"].as_str().unwrap().to_owned();
    let now = t.clock.now_s();
    t.state.audit_keys.rotate(now).await.unwrap();
    let r = t
        .call(
            axum::http::Method::GET,
            "/.well-known/audit-keys.json",
            None,
            None,
        )
        .await;
    assert_eq!(r.body["keys"].as_array().unwrap().len(), 2);
    assert_eq!(
        t.state.audit_keys.signer(now).unwrap().0,
        first,
        "the new key does not sign yet"
    );
    let later = now + tessera_server::audit::keys::DEFAULT_PUBLISH_AHEAD_SECS + 1;
    t.state.audit_keys.maintain(later).await.unwrap();
    assert_ne!(t.state.audit_keys.signer(later).unwrap().0, first);
    let r = t
        .call(
            axum::http::Method::GET,
            "/.well-known/audit-keys.json",
            None,
            None,
        )
        .await;
    assert!(
        r.body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == first.as_str()),
        "a retired key stays published"
    );
    let rows = t.state.store.audit_keys().await.unwrap();
    let old = rows.iter().find(|r| r.kid == first).unwrap();
    assert_eq!(old.state, "retired");
    // Audit keys are sealed under the stored signing-key KEK, whose first version is the
    // legacy derivation from the master key.
    let opened = tessera_server::audit::keys::open_audit_key(
        &tessera_token::MasterKey::from_bytes([7; 32])
            .derive_key(tessera_token::SIGNING_KEYS_PURPOSE),
        &old.kid,
        &old.public_key,
        &old.sealed_private,
    )
    .unwrap();
    assert!(
        opened.is_empty(),
        "the retired key's private key is destroyed"
    );
    // The openapi document has the route.
    let doc = t
        .call(axum::http::Method::GET, "/openapi.json", None, None)
        .await;
    assert!(doc.body["paths"]["/.well-known/audit-keys.json"]["get"].is_object());
    assert!(doc.body["paths"]["/v1/agencies/{agy}/audit/retention"]["put"].is_object());
}

#[tokio::test]
async fn a_key_slipped_into_the_table_is_not_trusted() {
    // Someone with database access adds an audit key of their own: it does not open under the
    // master key, so it is neither published nor accepted.
    let t = TestApp::sqlite().await;
    let forged = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    t.state
        .store
        .insert_audit_key(&tessera_store::AuditKeyRow {
            kid: "audit-99-forged".into(),
            generation: 99,
            state: "active".into(),
            created_at: 0,
            activates_at: 0,
            retires_at: None,
            public_key: forged.verifying_key().to_bytes().to_vec(),
            sealed_private: vec![1; 80],
        })
        .await
        .unwrap();
    t.state.audit_keys.reload().await.unwrap();
    let r = t
        .call(
            axum::http::Method::GET,
            "/.well-known/audit-keys.json",
            None,
            None,
        )
        .await;
    assert!(!r.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["kid"] == "audit-99-forged"));
}

#[tokio::test]
async fn only_platform_principals_set_retention_and_never_below_the_minimum() {
    let t = TestApp::sqlite().await;
    let a = t.agency("Keeper").await;
    let path = format!("/v1/agencies/{}/audit/retention", a.id);
    let r = t.get(&path, &a.key).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        (r.body["days"].as_i64(), r.body["minimum_days"].as_i64()),
        (Some(400), Some(90))
    );
    // The agency's own admin cannot shorten its evidence.
    let r = t
        .call(
            axum::http::Method::PUT,
            &path,
            Some(&a.key),
            Some(json!({ "days": 90 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // Platform: within bounds only.
    for bad in [
        json!({ "days": 1 }),
        json!({ "days": 89 }),
        json!({ "days": 100000 }),
        json!({ "days": "x" }),
        json!({ "days": 120, "x": 1 }),
    ] {
        let r = t
            .call(
                axum::http::Method::PUT,
                &path,
                Some(&t.admin),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    let r = t
        .call(
            axum::http::Method::PUT,
            &path,
            Some(&t.admin),
            Some(json!({ "days": 120 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["days"], 120);
    let ev = t
        .get(
            &format!("/v1/agencies/{}/audit?action=audit.retention_set", a.id),
            &a.key,
        )
        .await;
    assert_eq!(ev.body["items"][0]["detail"]["days"], 120);
    let r = t
        .call(
            axum::http::Method::PUT,
            &path,
            Some(&t.admin),
            Some(json!({ "days": null })),
        )
        .await;
    assert_eq!(r.body["days"], 400);
}
