//! The authorization snapshot and the change feed: one consistent read, and a gap-free feed
//! under concurrent writers.

use super::*;

cases! {
    case_authz_snapshot => sqlite_authz_snapshot, postgres_authz_snapshot;
    case_authz_snapshot_consistent_under_writes => sqlite_authz_snapshot_consistent_under_writes, postgres_authz_snapshot_consistent_under_writes;
    case_changes_since => sqlite_changes_since, postgres_changes_since;
    case_change_feed_gap_free_under_concurrency => sqlite_change_feed_gap_free_under_concurrency, postgres_change_feed_gap_free_under_concurrency;
}

async fn case_authz_snapshot(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
    let empty = store.authz_snapshot(&t, now()).await.unwrap();
    assert!(empty.roles.is_empty() && empty.bindings.is_empty() && empty.policies.is_empty());
    assert_eq!(empty.revision, store.revision().await.unwrap());

    let acc = account(&store, &t, "Main").await;
    let ann = user_principal(&user(&store, &t, "ann@example.com", None).await);
    let support = role(&store, &t, "Support", &["contacts.read"]).await;
    // Quotes, a backslash, a tab and non-ASCII text: PostgreSQL reads the snapshot as JSON.
    let sales = role(
        &store,
        &t,
        "Sales \"EMEA\" \\ \t — 東京",
        &["contacts.read", "opportunities.write"],
    )
    .await;
    let mut bindings = vec![
        bind(&store, &t, &ann, support.id.as_str(), Some(&acc.id)).await,
        bind(&store, &t, &ann, "agency_viewer", None).await,
    ];
    bindings.extend(key(&store, &t, None, &[sales.id.as_str()]).await.2);
    let policies = vec![
        policy(&store, &t, "No deletes").await,
        policy(&store, &t, "Business hours \"EU\" — 営業時間 \\").await,
    ];
    // The other agency has some of everything too.
    let their_role = role(&store, &other, "Support", &["contacts.read"]).await;
    let their_user = user(&store, &other, "ann@other.example", None).await;
    let their_binding = bind(
        &store,
        &other,
        &user_principal(&their_user),
        their_role.id.as_str(),
        None,
    )
    .await;
    let their_policy = policy(&store, &other, "Theirs").await;

    let snap = store.authz_snapshot(&t, now()).await.unwrap();
    assert_eq!(snap.roles, sorted(vec![support, sales], |r| r.id.clone()));
    assert_eq!(snap.bindings, sorted(bindings, |b| b.id.clone()));
    assert_eq!(snap.policies, sorted(policies, |p| p.id.clone()));
    assert_eq!(snap.revision, store.revision().await.unwrap());
    // It reflects every change of the agency so far, each at a revision it covers.
    let changes = feed(&store, 0, 1000).await;
    assert!(changes
        .iter()
        .filter(|c| &c.agency == t.agency())
        .all(|c| c.revision <= snap.revision));

    let theirs = store.authz_snapshot(&other, now()).await.unwrap();
    assert_eq!(
        (theirs.roles, theirs.bindings, theirs.policies),
        (vec![their_role], vec![their_binding], vec![their_policy])
    );

    // A later write is in a later snapshot, at a higher revision, and not in the earlier one.
    let late = bind(&store, &t, &ann, "account_admin", Some(&acc.id)).await;
    let next = store.authz_snapshot(&t, now()).await.unwrap();
    assert!(next.revision > snap.revision);
    assert!(next.bindings.contains(&late) && !snap.bindings.contains(&late));
    assert_eq!(next.bindings.len(), snap.bindings.len() + 1);
    // Reads do not move the revision.
    assert_eq!(store.revision().await.unwrap(), next.revision);

    // Users who are not active are listed (sorted), in their own agency only; active ones
    // and deleted ones are not.
    assert!(next.inactive_users.is_empty() && theirs.inactive_users.is_empty());
    let bob = user(&store, &t, "bob@example.com", None).await;
    let cy = user(&store, &t, "cy@example.com", None).await;
    let dee = user(&store, &t, "dee@example.com", None).await;
    for (u, status) in [
        (&bob, Status::Disabled),
        (&cy, Status::Suspended),
        (&dee, Status::Disabled),
    ] {
        let patch = UserPatch {
            status: Some(status),
            ..UserPatch::default()
        };
        store
            .update_user(&t, &u.id, &patch, now(), &record("user.update"))
            .await
            .unwrap();
    }
    store
        .delete_user(&t, &dee.id, now(), &record("user.delete"))
        .await
        .unwrap();
    let with_inactive = store.authz_snapshot(&t, now()).await.unwrap();
    assert_eq!(
        with_inactive.inactive_users,
        sorted(vec![bob.id.to_string(), cy.id.to_string()], |u| u.clone())
    );
    assert!(store
        .authz_snapshot(&other, now())
        .await
        .unwrap()
        .inactive_users
        .is_empty());
    // Made active again: gone from the list.
    let active = UserPatch {
        status: Some(Status::Active),
        ..UserPatch::default()
    };
    store
        .update_user(&t, &bob.id, &active, now(), &record("user.update"))
        .await
        .unwrap();
    let after = store.authz_snapshot(&t, now()).await.unwrap();
    assert_eq!(after.inactive_users, vec![cy.id.to_string()]);
}

/// Snapshots taken while bindings are written in two agencies are each exactly the
/// bindings whose creation has a revision at or below the snapshot's.
async fn case_authz_snapshot_consistent_under_writes(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (store, a, done) = (store.clone(), a.clone(), done.clone());
        tokio::spawn(async move {
            let mut snaps = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                snaps.push(store.authz_snapshot(&a, now()).await.unwrap());
                tokio::task::yield_now().await;
            }
            snaps
        })
    };
    let writers: Vec<_> = (0..6)
        .map(|i| {
            let (store, t) = (
                store.clone(),
                if i % 2 == 0 { a.clone() } else { b.clone() },
            );
            tokio::spawn(async move {
                for j in 0..6 {
                    let who = PrincipalId::User(UserId::generate());
                    let role = if j % 2 == 0 {
                        "agency_viewer"
                    } else {
                        "account_viewer"
                    };
                    bind(&store, &t, &who, role, None).await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut snaps = reader.await.unwrap();
    snaps.push(store.authz_snapshot(&a, now()).await.unwrap());

    let created: Vec<Change> = feed(&store, 0, 1000)
        .await
        .into_iter()
        .filter(|c| &c.agency == a.agency() && c.kind == "binding.create")
        .collect();
    assert_eq!(created.len(), 18);
    for snap in &snaps {
        let want: BTreeSet<&str> = created
            .iter()
            .filter(|c| c.revision <= snap.revision)
            .map(|c| c.entity.as_str())
            .collect();
        let got: BTreeSet<&str> = snap.bindings.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(got, want, "snapshot at revision {}", snap.revision);
    }
    assert_eq!(snaps.last().unwrap().bindings.len(), 18);
}

async fn case_changes_since(store: Arc<dyn Store>, mint: ScopeMint) {
    let r0 = store.revision().await.unwrap();
    assert!(store.changes_since(r0, 100).await.unwrap().is_empty());
    let t = agency(&store, &mint, "A").await;
    let u = agency(&store, &mint, "B").await;
    // Writes that cannot change a decision are not in the feed.
    let acc = account(&store, &t, "Main").await;
    let ann = user(&store, &t, "ann@a.example", None).await;
    store
        .append_audit(&t, &record("auth.denied"))
        .await
        .unwrap();
    let rl = role(&store, &t, "Support", &["contacts.read"]).await;
    let bnd = bind(
        &store,
        &u,
        &PrincipalId::User(UserId::generate()),
        "agency_viewer",
        None,
    )
    .await;
    let pl = policy(&store, &t, "No deletes").await;
    store
        .delete_binding(&u, &bnd.id, now(), &record("binding.delete"))
        .await
        .unwrap();

    let change = |rev: i64, t: &TenantScope, kind: &str, entity: &str| Change {
        revision: rev,
        agency: t.agency().clone(),
        kind: kind.into(),
        entity: entity.into(),
    };
    let all_changes = store.changes_since(r0, 100).await.unwrap();
    assert_eq!(
        all_changes,
        vec![
            change(r0 + 1, &t, "agency.create", t.agency().as_str()),
            change(r0 + 2, &u, "agency.create", u.agency().as_str()),
            change(r0 + 3, &t, "role.create", rl.id.as_str()),
            change(r0 + 4, &u, "binding.create", bnd.id.as_str()),
            change(r0 + 5, &t, "policy.create", pl.id.as_str()),
            change(r0 + 6, &u, "binding.delete", bnd.id.as_str()),
        ]
    );
    assert_eq!(store.revision().await.unwrap(), r0 + 6);
    // Resuming after any revision returns exactly the rest; limits page through it.
    for (i, c) in all_changes.iter().enumerate() {
        assert_eq!(
            store.changes_since(c.revision, 100).await.unwrap(),
            all_changes[i + 1..]
        );
    }
    assert_eq!(store.changes_since(r0, 2).await.unwrap(), all_changes[..2]);
    assert_eq!(
        store.changes_since(r0, 0).await.unwrap(),
        all_changes[..1],
        "a limit of 0 is clamped to 1"
    );
    assert_eq!(feed(&store, r0, 1).await, all_changes);

    // Read your writes: the feed after the revision before a write holds that write.
    let mut seen = Vec::new();
    macro_rules! wrote {
        ($kind:literal, $entity:expr, $write:expr) => {{
            let before = store.revision().await.unwrap();
            let out = $write.await.unwrap();
            let got = store.changes_since(before, 100).await.unwrap();
            assert_eq!(
                got,
                vec![change(before + 1, &t, $kind, $entity)],
                "{}",
                $kind
            );
            seen.push($kind);
            out
        }};
    }
    let patch = RolePatch {
        description: Some("Helps".into()),
        ..RolePatch::default()
    };
    wrote!(
        "role.update",
        rl.id.as_str(),
        store.update_role(&t, &rl.id, &patch, now(), &record("role.update"))
    );
    let b = binding_value(&t, &user_principal(&ann), rl.id.as_str(), Some(&acc.id));
    wrote!(
        "binding.create",
        b.id.as_str(),
        store.create_binding(&t, &b, &record("binding.create"))
    );
    wrote!(
        "role.delete",
        rl.id.as_str(),
        store.delete_role(&t, &rl.id, true, now(), &record("role.delete"))
    );
    wrote!(
        "policy.delete",
        pl.id.as_str(),
        store.delete_policy(&t, &pl.id, now(), &record("policy.delete"))
    );
    let disable = UserPatch {
        status: Some(Status::Disabled),
        ..UserPatch::default()
    };
    wrote!(
        "user.status",
        ann.id.as_str(),
        store.update_user(&t, &ann.id, &disable, now(), &record("user.update"))
    );
    let k = key_value(&t, None);
    let kb = [binding_value(
        &t,
        &PrincipalId::Key(k.id.clone()),
        "agency_viewer",
        None,
    )];
    wrote!(
        "api_key.create",
        k.id.as_str(),
        store.create_api_key(&t, &k, &secret(), &kb, &record("api_key.create"))
    );
    wrote!(
        "api_key.rotate",
        k.id.as_str(),
        store.rotate_api_key(
            &t,
            &k.id,
            &secret(),
            now() + 1000,
            now(),
            &record("api_key.rotate")
        )
    );
    wrote!(
        "api_key.revoke",
        k.id.as_str(),
        store.revoke_api_key(&t, &k.id, now(), &record("api_key.revoke"))
    );
    wrote!(
        "user.delete",
        ann.id.as_str(),
        store.delete_user(&t, &ann.id, now(), &record("user.delete"))
    );
    wrote!(
        "account.delete",
        acc.id.as_str(),
        store.delete_account(&t, &acc.id, now(), &record("account.delete"))
    );
    assert_eq!(seen.len(), 10);
}

/// Ten tasks write bindings (and a custom role each) in two agencies while a tailer follows
/// the feed: every revision from the start appears exactly once, in order, with no gap, and
/// the tailer never sees a revision before all lower ones.
async fn case_change_feed_gap_free_under_concurrency(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    let start = store.revision().await.unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tailer = {
        let (store, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            let (mut seen, mut last) = (Vec::new(), start);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                for c in store.changes_since(last, 7).await.unwrap() {
                    assert_eq!(c.revision, last + 1, "the tailer saw a gap after {last}");
                    last = c.revision;
                    seen.push(c);
                }
                tokio::task::yield_now().await;
            }
            seen
        })
    };
    let writers: Vec<_> = (0..10)
        .map(|i| {
            let (store, t) = (
                store.clone(),
                if i % 2 == 0 { a.clone() } else { b.clone() },
            );
            tokio::spawn(async move {
                let who = PrincipalId::User(UserId::generate());
                let custom = role(&store, &t, &format!("Role {i}"), &["contacts.read"]).await;
                bind(&store, &t, &who, custom.id.as_str(), None).await;
                bind(&store, &t, &who, "agency_viewer", None).await;
                let gone = bind(&store, &t, &who, "account_viewer", None).await;
                store
                    .delete_binding(&t, &gone.id, now(), &record("binding.delete"))
                    .await
                    .unwrap();
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let tailed = tailer.await.unwrap();

    let all_changes = feed(&store, start, 7).await;
    let revisions: Vec<i64> = all_changes.iter().map(|c| c.revision).collect();
    assert_eq!(revisions, (start + 1..=start + 50).collect::<Vec<_>>());
    assert_eq!(store.revision().await.unwrap(), start + 50);
    assert_eq!(
        tailed[..],
        all_changes[..tailed.len()],
        "the tailer's view is a prefix"
    );
    for t in [&a, &b] {
        let kinds = |kind: &str| {
            all_changes
                .iter()
                .filter(|c| &c.agency == t.agency() && c.kind == kind)
                .count()
        };
        assert_eq!(
            (
                kinds("role.create"),
                kinds("binding.create"),
                kinds("binding.delete")
            ),
            (5, 15, 5)
        );
    }
}
