//! Compliance reads (`Evidence`): last activity per actor, client-secret facts, impersonation
//! sessions and their acts — each confined to its tenant and bounded.

use super::*;

cases! {
    case_last_activity => sqlite_last_activity, postgres_last_activity;
    case_app_secret_facts => sqlite_app_secret_facts, postgres_app_secret_facts;
    case_impersonations => sqlite_impersonations, postgres_impersonations;
}

fn at(mut r: AuditRecord, ms: i64) -> AuditRecord {
    r.at = ms;
    r
}

/// The newest event of each actor, from its own agency only; unknown actors are left out.
async fn case_last_activity(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
    for (actor, ms) in [("usr_a", 1_000), ("usr_b", 2_000), ("usr_a", 3_000)] {
        store
            .append_audit(&t, &at(record_by(actor, "user.update"), ms))
            .await
            .unwrap();
    }
    store
        .append_audit(&other, &at(record_by("usr_c", "user.update"), 9_000))
        .await
        .unwrap();
    let got = sorted(
        store
            .last_activity(
                &t,
                &[
                    "usr_a".into(),
                    "usr_b".into(),
                    "usr_c".into(),
                    "usr_z".into(),
                ],
            )
            .await
            .unwrap(),
        |x| x.0.clone(),
    );
    assert_eq!(
        got,
        vec![("usr_a".to_owned(), 3_000), ("usr_b".to_owned(), 2_000)]
    );
    assert!(store.last_activity(&t, &[]).await.unwrap().is_empty());
    // More actors than the bound is refused, not served by a long query.
    let many: Vec<String> = (0..=tessera_store::MAX_ACTORS)
        .map(|i| format!("usr_{i}"))
        .collect();
    assert!(store.last_activity(&t, &many).await.is_err());
}

/// A rotated app has two secrets (the old one with its end); another tenant sees none.
async fn case_app_secret_facts(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
    let (a, _) = app(&store, &t, AppKind::Private).await;
    let (b, _) = app(&store, &t, AppKind::Private).await;
    let until = now() + 60_000;
    store
        .rotate_app_secret(
            &t,
            &a.id,
            &secret(),
            until,
            now(),
            &record("app.rotate_secret"),
        )
        .await
        .unwrap();
    let ids = vec![a.id.to_string(), b.id.to_string()];
    let facts = store.app_secret_facts(&t, &ids).await.unwrap();
    let of_a: Vec<_> = facts.iter().filter(|f| f.app_id == a.id).collect();
    assert_eq!(of_a.len(), 2);
    assert_eq!(
        of_a.iter().filter(|f| f.valid_until == Some(until)).count(),
        1
    );
    assert_eq!(of_a.iter().filter(|f| f.valid_until.is_none()).count(), 1);
    assert!(of_a.iter().all(|f| f.pepper_version == 1));
    assert_eq!(facts.iter().filter(|f| f.app_id == b.id).count(), 1);
    assert!(store
        .app_secret_facts(&other, &ids)
        .await
        .unwrap()
        .is_empty());
    assert!(store.app_secret_facts(&t, &[]).await.unwrap().is_empty());
}

/// Sessions are the `impersonation.start` events (of one user, or all), paged by sequence;
/// acts are the impersonator's events on behalf of that user, after the start and until
/// the expiry, at most `limit`.
async fn case_impersonations(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
    let start = |imp: &str, user: &str, ms: i64| {
        let mut r = at(record_by(imp, "impersonation.start"), ms);
        r.on_behalf_of = Some(user.to_owned());
        r.target = Some(user.to_owned());
        r
    };
    let under = |imp: &str, user: &str, action: &str, ms: i64| {
        let mut r = at(record_by(imp, action), ms);
        r.on_behalf_of = Some(user.to_owned());
        r
    };
    let s1 = store
        .append_audit(&t, &start("usr_sup", "usr_pat", 1_000))
        .await
        .unwrap();
    for (i, ms) in [1_100, 1_200, 1_300].iter().enumerate() {
        let action = if i == 1 {
            "contact.update"
        } else {
            "impersonation.request"
        };
        store
            .append_audit(&t, &under("usr_sup", "usr_pat", action, *ms))
            .await
            .unwrap();
    }
    // Not acts of the session: another actor for the same user, the same actor alone,
    // and after the expiry.
    store
        .append_audit(&t, &under("app_client", "usr_pat", "token.issue", 1_150))
        .await
        .unwrap();
    store
        .append_audit(&t, &at(record_by("usr_sup", "user.update"), 1_160))
        .await
        .unwrap();
    store
        .append_audit(
            &t,
            &under("usr_sup", "usr_pat", "impersonation.request", 9_000),
        )
        .await
        .unwrap();
    let s2 = store
        .append_audit(&t, &start("usr_sup", "usr_kim", 2_000))
        .await
        .unwrap();
    store
        .append_audit(&other, &start("usr_x", "usr_pat", 1_000))
        .await
        .unwrap();

    let every = store.impersonation_starts(&t, None, &all()).await.unwrap();
    assert_eq!(
        every.items.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![s1.seq, s2.seq]
    );
    let pat = store
        .impersonation_starts(&t, Some("usr_pat"), &all())
        .await
        .unwrap();
    assert_eq!(pat.items.len(), 1);
    assert_eq!(pat.items[0].id, s1.id);
    assert!(store
        .impersonation_starts(&t, Some("usr_nobody"), &all())
        .await
        .unwrap()
        .items
        .is_empty());
    // Pages of one, by sequence.
    let p1 = store
        .impersonation_starts(&t, None, &page(1, None))
        .await
        .unwrap();
    assert_eq!(p1.items[0].seq, s1.seq);
    let p2 = store
        .impersonation_starts(&t, None, &page(1, p1.next_cursor.clone()))
        .await
        .unwrap();
    assert_eq!(p2.items[0].seq, s2.seq);
    assert!(p2.next_cursor.is_none());

    let acts = store
        .impersonation_acts(&t, "usr_sup", "usr_pat", s1.seq, 5_000, 100)
        .await
        .unwrap();
    assert_eq!(
        acts.iter()
            .map(|e| (e.action.as_str(), e.at))
            .collect::<Vec<_>>(),
        vec![
            ("impersonation.request", 1_100),
            ("contact.update", 1_200),
            ("impersonation.request", 1_300)
        ]
    );
    let two = store
        .impersonation_acts(&t, "usr_sup", "usr_pat", s1.seq, 5_000, 2)
        .await
        .unwrap();
    assert_eq!(two.len(), 2);
    assert!(store
        .impersonation_acts(&other, "usr_sup", "usr_pat", 0, 5_000, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .impersonation_acts(&t, "usr_sup", "usr_kim", s2.seq, 5_000, 100)
        .await
        .unwrap()
        .is_empty());
}
