//! Revisions and atomicity (I7): decision-changing writes bump the revision, a failed write
//! leaves nothing behind, concurrent writes all land.

use super::*;

cases! {
    case_revision => sqlite_revision, postgres_revision;
    case_atomic_writes => sqlite_atomic_writes, postgres_atomic_writes;
    case_concurrent_writes => sqlite_concurrent_writes, postgres_concurrent_writes;
}

async fn case_revision(store: Arc<dyn Store>, mint: ScopeMint) {
    let r0 = store.revision().await.unwrap();
    let t = agency(&store, &mint, "Acme").await;
    let r1 = store.revision().await.unwrap();
    assert!(r1 > r0, "agency.create changes decisions");
    let acc = account(&store, &t, "Main").await;
    let ann = user(&store, &t, "ann@example.com", None).await;
    let r2 = store.revision().await.unwrap();

    let b = bind(
        &store,
        &t,
        &user_principal(&ann),
        "account_admin",
        Some(&acc.id),
    )
    .await;
    let r3 = store.revision().await.unwrap();
    assert!(r3 > r2, "binding create: {r2} -> {r3}");
    let (k, _, _) = key(&store, &t, None, &["agency_viewer"]).await;
    let r4 = store.revision().await.unwrap();
    assert!(r4 > r3, "key create: {r3} -> {r4}");

    // Reads change nothing.
    store.get_binding(&t, &b.id).await.unwrap();
    store.list_bindings(&t, None, &all()).await.unwrap();
    store
        .principal_bindings(&t, &user_principal(&ann))
        .await
        .unwrap();
    store.get_api_key(&t, &k.id).await.unwrap();
    store.list_api_keys(&t, &all()).await.unwrap();
    store.get_account(&t, &acc.id).await.unwrap();
    store.list_accounts(&t, &all()).await.unwrap();
    store.get_user(&t, &ann.id).await.unwrap();
    store.list_users(&t, &all()).await.unwrap();
    store.get_agency(t.agency()).await.unwrap();
    store.list_agencies(&all()).await.unwrap();
    key_by_secret(&store, &secret().hash).await.unwrap();
    store
        .list_audit(&t, &AuditFilter::default(), &all())
        .await
        .unwrap();
    store.audit_chain(&t, 0, 10).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), r4);
    // So does a refused write.
    assert!(store
        .create_binding(&t, &b, &record("binding.create"))
        .await
        .is_err());
    assert_eq!(store.revision().await.unwrap(), r4);

    store
        .delete_binding(&t, &b.id, now(), &record("binding.delete"))
        .await
        .unwrap();
    let r5 = store.revision().await.unwrap();
    assert!(r5 > r4, "binding delete: {r4} -> {r5}");
    store
        .revoke_api_key(&t, &k.id, now(), &record("api_key.revoke"))
        .await
        .unwrap();
    let r6 = store.revision().await.unwrap();
    assert!(r6 > r5, "key revoke: {r5} -> {r6}");
    let patch = UserPatch {
        status: Some(Status::Disabled),
        ..UserPatch::default()
    };
    store
        .update_user(&t, &ann.id, &patch, now(), &record("user.update"))
        .await
        .unwrap();
    let r7 = store.revision().await.unwrap();
    assert!(r7 > r6, "user disable: {r6} -> {r7}");
    store
        .delete_agency(t.agency(), now(), &record("agency.delete"))
        .await
        .unwrap();
    assert!(store.revision().await.unwrap() > r7, "agency delete");
}

/// A write that fails leaves nothing behind: no row, no audit event, no revision.
async fn case_atomic_writes(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let acc = account(&store, &t, "Main").await;
    let ann = user(&store, &t, "ann@example.com", None).await;
    let events = chain(&store, &t).await;
    let rev = store.revision().await.unwrap();
    let unchanged = |store: Arc<dyn Store>, t: TenantScope, events: Vec<AuditEvent>| async move {
        assert_eq!(
            chain(&store, &t).await,
            events,
            "no audit event from a failed write"
        );
        assert_eq!(
            store.revision().await.unwrap(),
            rev,
            "no revision from a failed write"
        );
    };

    // Duplicate account id, under another name.
    let dup = Account {
        name: "Impostor".into(),
        ..acc.clone()
    };
    assert!(matches!(
        store
            .create_account(&t, &dup, &record("account.create"))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.get_account(&t, &acc.id).await.unwrap(), acc);
    assert_eq!(
        store.list_accounts(&t, &all()).await.unwrap().items,
        vec![acc.clone()]
    );
    unchanged(store.clone(), t.clone(), events.clone()).await;

    // A key whose second binding conflicts with its first: neither key, secret nor binding.
    let k = key_value(&t, None);
    let s = secret();
    let b1 = binding_value(&t, &PrincipalId::Key(k.id.clone()), "agency_viewer", None);
    let b2 = Binding {
        id: BindingId::generate(),
        ..b1.clone()
    };
    assert_conflict(
        store
            .create_api_key(&t, &k, &s, &[b1.clone(), b2], &record("api_key.create"))
            .await,
        "binding",
    );
    assert!(is_not_found(store.get_api_key(&t, &k.id).await));
    assert_eq!(key_by_secret(&store, &s.hash).await.unwrap(), None);
    assert!(is_not_found(store.get_binding(&t, &b1.id).await));
    unchanged(store.clone(), t.clone(), events.clone()).await;

    // A duplicate binding: no row, no event, no revision.
    let bound = bind(&store, &t, &user_principal(&ann), "agency_viewer", None).await;
    let events = chain(&store, &t).await;
    let rev = store.revision().await.unwrap();
    let again = binding_value(&t, &user_principal(&ann), "agency_viewer", None);
    assert_conflict(
        store
            .create_binding(&t, &again, &record("binding.create"))
            .await,
        "binding",
    );
    assert!(is_not_found(store.get_binding(&t, &again.id).await));
    assert_eq!(
        store
            .principal_bindings(&t, &user_principal(&ann))
            .await
            .unwrap(),
        vec![bound]
    );
    assert_eq!(chain(&store, &t).await, events);
    assert_eq!(store.revision().await.unwrap(), rev);
    // The failed writes did not poison the store.
    store
        .create_account(&t, &account_value(&t, "Fresh"), &record("account.create"))
        .await
        .unwrap();
    let after = chain(&store, &t).await;
    assert_eq!(after.len(), events.len() + 1);
    assert_chain_ok(&after);
}

/// Concurrent writes of every kind in one agency keep one unbroken chain.
async fn case_concurrent_writes(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let ann = user(&store, &t, "ann@example.com", None).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (store, t, ann) = (store.clone(), t.clone(), ann.clone());
        tasks.push(tokio::spawn(async move {
            let acc = account(&store, &t, &format!("Account {i}")).await;
            bind(
                &store,
                &t,
                &user_principal(&ann),
                "account_admin",
                Some(&acc.id),
            )
            .await;
            key(&store, &t, Some(&acc.id), &["account_viewer"]).await;
            store
                .append_audit(&t, &record("auth.denied"))
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let events = chain(&store, &t).await;
    assert_eq!(events.len(), 2 + 8 * 4);
    assert_chain_ok(&events);
    assert_eq!(
        store.list_accounts(&t, &all()).await.unwrap().items.len(),
        8
    );
    assert_eq!(
        store
            .principal_bindings(&t, &user_principal(&ann))
            .await
            .unwrap()
            .len(),
        8
    );
    assert_eq!(
        store.list_api_keys(&t, &all()).await.unwrap().items.len(),
        8
    );
}
