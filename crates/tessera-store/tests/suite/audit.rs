//! The hash-chained audit log (I5): every write audited, tampering detected, concurrent and
//! batched appends keep each chain linear.

use super::*;

cases! {
    case_audit_every_write => sqlite_audit_every_write, postgres_audit_every_write;
    case_audit_tamper_and_list => sqlite_audit_tamper_and_list, postgres_audit_tamper_and_list;
    case_concurrent_audit => sqlite_concurrent_audit, postgres_concurrent_audit;
    case_append_audit_batch => sqlite_append_audit_batch, postgres_append_audit_batch;
}

/// Every write appends exactly one event, to its own agency's chain, and the chain verifies.
async fn case_audit_every_write(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
    let other_events = chain(&store, &other).await;
    let mut expected: Vec<AuditRecord> = Vec::new();
    let first = chain(&store, &t).await;
    assert_eq!(first.len(), 1);
    expected.push(first[0].record());

    // Runs one write with a fresh record and checks the one event it appended.
    macro_rules! audited {
        ($action:literal, |$r:ident| $call:expr) => {{
            let $r = record_by("usr_suite", $action);
            let out = $call.await.unwrap();
            expected.push($r.clone());
            let events = chain(&store, &t).await;
            assert_eq!(
                events.len(),
                expected.len(),
                "`{}` appended exactly one event",
                $action
            );
            let last = events.last().unwrap();
            assert_eq!(last.record(), $r);
            assert_eq!(
                (last.seq, &last.agency_id),
                (i64::try_from(expected.len()).unwrap(), t.agency())
            );
            out
        }};
    }

    let at = now();
    let acc = account_value(&t, "Main");
    audited!("account.create", |r| store.create_account(&t, &acc, &r));
    audited!("account.update", |r| store
        .update_account(&t, &acc.id, "Primary", at, &r));
    let nu = NewUser {
        id: UserId::generate(),
        email: "ann@example.com".into(),
        name: "Ann".into(),
        password_hash: None,
        now: at,
    };
    let ann = audited!("user.create", |r| store.create_user(&t, &nu, &r));
    let patch = UserPatch {
        name: Some("Annie".into()),
        ..UserPatch::default()
    };
    audited!("user.update", |r| store
        .update_user(&t, &ann.id, &patch, at, &r));
    let b = binding_value(&t, &user_principal(&ann), "account_admin", Some(&acc.id));
    audited!("binding.create", |r| store.create_binding(&t, &b, &r));
    audited!("binding.delete", |r| store
        .delete_binding(&t, &b.id, at, &r));
    let k = key_value(&t, None);
    let kb = [binding_value(
        &t,
        &PrincipalId::Key(k.id.clone()),
        "agency_viewer",
        None,
    )];
    audited!("api_key.create", |r| store.create_api_key(
        &t,
        &k,
        &secret(),
        &kb,
        &r
    ));
    audited!("api_key.rotate", |r| store.rotate_api_key(
        &t,
        &k.id,
        &secret(),
        at + 1000,
        at,
        &r
    ));
    audited!("api_key.revoke", |r| store
        .revoke_api_key(&t, &k.id, at, &r));
    audited!("auth.denied", |r| store.append_audit(&t, &r));
    let rl = role_value(&t, "Support", &["contacts.read"]);
    audited!("role.create", |r| store.create_role(&t, &rl, &r));
    let patch = RolePatch {
        name: Some("Helpdesk".into()),
        ..RolePatch::default()
    };
    audited!("role.update", |r| store
        .update_role(&t, &rl.id, &patch, at, &r));
    let rb = binding_value(&t, &user_principal(&ann), rl.id.as_str(), None);
    audited!("binding.create", |r| store.create_binding(&t, &rb, &r));
    audited!("role.delete", |r| store
        .delete_role(&t, &rl.id, true, at, &r));
    let pl = policy_value(&t, "No deletes");
    audited!("policy.create", |r| store.create_policy(&t, &pl, &r));
    audited!("policy.delete", |r| store.delete_policy(&t, &pl.id, at, &r));
    audited!("user.delete", |r| store.delete_user(&t, &ann.id, at, &r));
    audited!("account.delete", |r| store
        .delete_account(&t, &acc.id, at, &r));
    audited!("agency.update", |r| store.update_agency(
        t.agency(),
        "Acme 2",
        at,
        &r
    ));
    audited!("agency.delete", |r| store.delete_agency(t.agency(), at, &r));

    let events = chain(&store, &t).await;
    assert_chain_ok(&events);
    assert_eq!(
        events.iter().map(AuditEvent::record).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=i64::try_from(expected.len()).unwrap()).collect::<Vec<_>>()
    );
    // Nothing leaked into the other agency's chain.
    assert_eq!(chain(&store, &other).await, other_events);
}

async fn case_audit_tamper_and_list(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
    for i in 0..9 {
        let actor = if i % 3 == 0 { "usr_alice" } else { "key_ci" };
        let action = if i % 2 == 0 {
            "auth.denied"
        } else {
            "auth.login"
        };
        let mut r = record_by(actor, action);
        r.outcome = if i % 2 == 0 {
            Outcome::Denied
        } else {
            Outcome::Success
        };
        r.on_behalf_of = (i == 4).then(|| "usr_bob".to_owned());
        r.target = Some(format!("acc_{i}"));
        r.ip = None;
        r.detail = serde_json::json!({ "i": i, "unicode": "é✓", "quote": "\"" });
        let e = store.append_audit(&t, &r).await.unwrap();
        assert_eq!(e.record(), r);
        assert_eq!(e.seq, i + 2);
    }
    let events = chain(&store, &t).await;
    assert_eq!(events.len(), 10);
    assert_chain_ok(&events);

    // Chunked reading continues the chain from where it left off.
    let head = store.audit_chain(&t, 0, 4).await.unwrap();
    let tail = store.audit_chain(&t, 4, 100).await.unwrap();
    assert_eq!((head.len(), tail.len()), (4, 6));
    let mid = verify_chain(ChainHash::GENESIS, 0, &head).unwrap();
    assert_eq!(verify_chain(mid, 4, &tail), Ok(events[9].hash));
    assert_eq!(
        verify_chain(ChainHash::GENESIS, 0, &tail),
        Err(5),
        "a chunk does not verify from genesis"
    );

    // Tampering in memory is caught, at the event tampered with.
    let mut forged = events.clone();
    forged[4].action = "auth.login.forged".into();
    assert_eq!(verify_chain(ChainHash::GENESIS, 0, &forged), Err(5));
    let mut forged = events.clone();
    forged[7].detail = serde_json::json!({ "i": 999 });
    assert_eq!(verify_chain(ChainHash::GENESIS, 0, &forged), Err(8));
    let mut dropped = events.clone();
    dropped.remove(2);
    assert_eq!(verify_chain(ChainHash::GENESIS, 0, &dropped), Err(4));
    let mut swapped = events.clone();
    swapped.swap(5, 6);
    assert_eq!(verify_chain(ChainHash::GENESIS, 0, &swapped), Err(7));

    // Filters.
    let by = |actor: Option<&str>, action: Option<&str>| AuditFilter {
        after: None,
        actor: actor.map(Into::into),
        action: action.map(Into::into),
    };
    let alice = store
        .list_audit(&t, &by(Some("usr_alice"), None), &all())
        .await
        .unwrap();
    assert_eq!(
        alice.items.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [2, 5, 8]
    );
    assert_eq!(alice.next_cursor, None);
    let denied = store
        .list_audit(&t, &by(None, Some("auth.denied")), &all())
        .await
        .unwrap()
        .items;
    assert_eq!(
        denied.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [2, 4, 6, 8, 10]
    );
    let both = store
        .list_audit(&t, &by(Some("usr_alice"), Some("auth.denied")), &all())
        .await
        .unwrap()
        .items;
    assert_eq!(both.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 8]);
    let after = AuditFilter {
        after: Some(events[6].at),
        ..AuditFilter::default()
    };
    assert!(store
        .list_audit(&t, &after, &all())
        .await
        .unwrap()
        .items
        .iter()
        .all(|e| e.at >= events[6].at));
    assert!(store
        .list_audit(&t, &by(Some("nobody"), None), &all())
        .await
        .unwrap()
        .items
        .is_empty());

    // Pagination by sequence number, filtered and not.
    let mut seqs = Vec::new();
    let mut cursor = None;
    loop {
        let p = store
            .list_audit(&t, &AuditFilter::default(), &page(3, cursor))
            .await
            .unwrap();
        assert!(p.items.len() <= 3);
        seqs.extend(p.items.iter().map(|e| e.seq));
        if let (Some(c), Some(last)) = (&p.next_cursor, p.items.last()) {
            assert_eq!(c, &last.seq.to_string());
        }
        cursor = p.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    let p1 = store
        .list_audit(&t, &by(None, Some("auth.denied")), &page(2, None))
        .await
        .unwrap();
    let p2 = store
        .list_audit(
            &t,
            &by(None, Some("auth.denied")),
            &page(2, p1.next_cursor.clone()),
        )
        .await
        .unwrap();
    let p3 = store
        .list_audit(
            &t,
            &by(None, Some("auth.denied")),
            &page(2, p2.next_cursor.clone()),
        )
        .await
        .unwrap();
    let got: Vec<i64> = [p1.items, p2.items, p3.items]
        .concat()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!((got, p3.next_cursor), (vec![2, 4, 6, 8, 10], None));
    assert!(store
        .list_audit(
            &t,
            &AuditFilter::default(),
            &page(2, Some("not-a-seq".into()))
        )
        .await
        .is_err());

    // Another agency sees none of it.
    let theirs = store
        .list_audit(&other, &AuditFilter::default(), &all())
        .await
        .unwrap()
        .items;
    assert_eq!(theirs.len(), 1);
    assert!(theirs.iter().all(|e| &e.agency_id == other.agency()));
    assert!(store
        .list_audit(&other, &by(Some("usr_alice"), None), &all())
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(chain(&store, &other).await, theirs);
}

async fn concurrent_appends(store: &Arc<dyn Store>, t: &TenantScope, n: usize) -> Vec<AuditEvent> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (store, t) = (store.clone(), t.clone());
            tokio::spawn(async move {
                let mut r = record("auth.denied");
                r.detail = serde_json::json!({ "task": i });
                store.append_audit(&t, &r).await.unwrap()
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

async fn case_concurrent_audit(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
    // agency.create is event 1 of each chain: the 20 appends take 2..=21.
    let base = i64::try_from(chain(&store, &t).await.len()).unwrap();
    let (mine, theirs) = tokio::join!(
        concurrent_appends(&store, &t, 20),
        concurrent_appends(&store, &other, 5)
    );
    let seqs: BTreeSet<i64> = mine.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (base + 1..=base + 20).collect::<BTreeSet<_>>());
    assert_eq!(
        theirs.iter().map(|e| e.seq).collect::<BTreeSet<_>>(),
        (2..=6).collect::<BTreeSet<_>>()
    );
    let events = chain(&store, &t).await;
    assert_eq!(events.len(), 21);
    assert_chain_ok(&events);
    assert_chain_ok(&chain(&store, &other).await);
    // What each append returned is what was stored.
    for e in &mine {
        assert_eq!(&events[usize::try_from(e.seq - 1).unwrap()], e);
    }
}

/// A brand-new chain under contention: the first event of an agency that has none yet. The
/// Store API always writes an agency's first event with the agency, so the row is made here
/// with plain SQL; the 20 concurrent appends must then take exactly seqs 1..=20.
async fn fresh_chain_under_contention(store: Arc<dyn Store>, t: TenantScope) {
    let events = concurrent_appends(&store, &t, 20).await;
    let seqs: BTreeSet<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=20).collect::<BTreeSet<_>>());
    let chain = chain(&store, &t).await;
    assert_eq!(chain.len(), 20);
    assert_chain_ok(&chain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_audit_fresh_chain() {
    let (Connected { store, mint }, dir) = sqlite_store().await;
    let id = AgencyId::generate();
    let url = format!("sqlite://{}", dir.path().join(SQLITE_DB_FILE).display());
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(RAW_AGENCY)
        .bind(id.as_str())
        .bind(false)
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    fresh_chain_under_contention(store, mint.admit(id)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_audit_fresh_chain() {
    let Some(db) = PgTestDb::create().await else {
        notice_pg_skipped();
        return;
    };
    let Connected { store, mint } = db.store().await;
    let id = AgencyId::generate();
    let raw = sqlx::PgPool::connect(&db.url()).await.unwrap();
    sqlx::query(RAW_AGENCY)
        .bind(id.as_str())
        .bind(false)
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    fresh_chain_under_contention(store, mint.admit(id)).await;
}

async fn case_append_audit_batch(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    store.append_audit_batch(&[]).await.unwrap();
    let before_a = chain(&store, &a).await.len();
    let before_b = chain(&store, &b).await.len();
    let batch: Vec<(TenantScope, AuditRecord)> = (0..10)
        .map(|i| {
            let t = if i % 3 == 0 { &b } else { &a };
            (t.clone(), record(&format!("token.issue.{i}")))
        })
        .collect();
    store.append_audit_batch(&batch).await.unwrap();
    // A second batch continues the chains.
    let batch2 = vec![
        (b.clone(), record("token.issue.b")),
        (a.clone(), record("token.issue.a")),
    ];
    store.append_audit_batch(&batch2).await.unwrap();

    for (t, before) in [(&a, before_a), (&b, before_b)] {
        let events = chain(&store, t).await;
        assert_chain_ok(&events);
        let want: Vec<String> = batch
            .iter()
            .chain(batch2.iter())
            .filter(|(s, _)| s == t)
            .map(|(_, r)| r.action.clone())
            .collect();
        assert_eq!(actions(&events[before..]), want, "each chain in order");
        assert!(events.iter().all(|e| &e.agency_id == t.agency()));
    }
    // Concurrent batches over the same agencies, in opposite orders, all land.
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            let (x, y) = if i % 2 == 0 {
                (a.clone(), b.clone())
            } else {
                (b.clone(), a.clone())
            };
            tokio::spawn(async move {
                let batch = vec![
                    (x.clone(), record("concurrent")),
                    (y.clone(), record("concurrent")),
                    (x, record("concurrent")),
                ];
                store.append_audit_batch(&batch).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for t in [&a, &b] {
        let events = chain(&store, t).await;
        assert_chain_ok(&events);
    }
    let concurrent =
        |events: Vec<AuditEvent>| events.iter().filter(|e| e.action == "concurrent").count();
    assert_eq!(
        concurrent(chain(&store, &a).await) + concurrent(chain(&store, &b).await),
        18
    );
}
