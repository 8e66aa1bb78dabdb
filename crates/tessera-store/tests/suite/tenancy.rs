//! Tenant isolation (I1): a scope sees only its agency's rows, whatever agency a record names,
//! and a write cannot reach into another agency.

use super::*;

cases! {
    case_tenant_isolation => sqlite_tenant_isolation, postgres_tenant_isolation;
    case_scope_wins_over_record_agency => sqlite_scope_wins_over_record_agency, postgres_scope_wins_over_record_agency;
    case_binding_on_foreign_account_refused => sqlite_binding_on_foreign_account_refused, postgres_binding_on_foreign_account_refused;
}

async fn case_tenant_isolation(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    let acc = account(&store, &a, "A main").await;
    let usr = user(&store, &a, "ann@a.example", None).await;
    let bnd = bind(
        &store,
        &a,
        &user_principal(&usr),
        "account_admin",
        Some(&acc.id),
    )
    .await;
    let (k, s, _) = key(&store, &a, None, &["agency_viewer"]).await;
    let a_events = chain(&store, &a).await;
    // B has data of its own too, so "empty" below is not vacuous.
    let b_acc = account(&store, &b, "B main").await;
    let b_events = chain(&store, &b).await;
    let rev = store.revision().await.unwrap();
    let at = now();

    assert!(is_not_found(store.get_account(&b, &acc.id).await));
    assert!(is_not_found(
        store
            .update_account(&b, &acc.id, "hijacked", at, &record("account.update"))
            .await
    ));
    assert!(is_not_found(
        store
            .delete_account(&b, &acc.id, at, &record("account.delete"))
            .await
    ));
    assert_eq!(
        store.list_accounts(&b, &all()).await.unwrap().items,
        vec![b_acc]
    );

    assert!(is_not_found(store.get_user(&b, &usr.id).await));
    let patch = UserPatch {
        name: Some("hijacked".into()),
        status: Some(Status::Disabled),
        ..UserPatch::default()
    };
    assert!(is_not_found(
        store
            .update_user(&b, &usr.id, &patch, at, &record("user.update"))
            .await
    ));
    assert!(is_not_found(
        store
            .delete_user(&b, &usr.id, at, &record("user.delete"))
            .await
    ));
    assert!(store.list_users(&b, &all()).await.unwrap().items.is_empty());

    assert!(is_not_found(store.get_binding(&b, &bnd.id).await));
    assert!(is_not_found(
        store
            .delete_binding(&b, &bnd.id, at, &record("binding.delete"))
            .await
    ));
    assert!(store
        .list_bindings(&b, None, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .list_bindings(&b, Some(&user_principal(&usr)), &all())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .principal_bindings(&b, &user_principal(&usr))
        .await
        .unwrap()
        .is_empty());

    assert!(is_not_found(store.get_api_key(&b, &k.id).await));
    assert!(is_not_found(
        store
            .revoke_api_key(&b, &k.id, at, &record("api_key.revoke"))
            .await
    ));
    assert!(is_not_found(
        store
            .rotate_api_key(
                &b,
                &k.id,
                &secret(),
                at + 1000,
                at,
                &record("api_key.rotate")
            )
            .await
    ));
    assert!(store
        .list_api_keys(&b, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    // touch with the wrong agency does nothing.
    store
        .touch_api_keys(&[(b.clone(), k.id.clone(), at)])
        .await
        .unwrap();

    let b_audit = store
        .list_audit(&b, &AuditFilter::default(), &all())
        .await
        .unwrap()
        .items;
    assert_eq!(b_audit, b_events);
    assert!(b_audit.iter().all(|e| &e.agency_id == b.agency()));

    // Nothing of A changed, nothing was audited in A, no revision was spent.
    assert_eq!(store.get_account(&a, &acc.id).await.unwrap(), acc);
    assert_eq!(store.get_user(&a, &usr.id).await.unwrap(), usr);
    assert_eq!(store.get_binding(&a, &bnd.id).await.unwrap(), bnd);
    assert_eq!(store.get_api_key(&a, &k.id).await.unwrap(), k);
    assert!(key_by_secret(&store, &s.hash).await.unwrap().is_some());
    assert_eq!(chain(&store, &a).await, a_events);
    assert_eq!(chain(&store, &b).await, b_events);
    assert_eq!(store.revision().await.unwrap(), rev);
}

/// A record naming another agency does not let a scope write there: the scope decides.
async fn case_scope_wins_over_record_agency(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    let usr = user(&store, &a, "ann@a.example", None).await;
    let mut bnd = binding_value(&a, &user_principal(&usr), "agency_admin", None);
    bnd.agency_id = b.agency().clone();
    let mut k = key_value(&a, None);
    k.agency_id = b.agency().clone();
    let s = secret();
    let mut kb = binding_value(&a, &PrincipalId::Key(k.id.clone()), "agency_admin", None);
    kb.agency_id = b.agency().clone();
    let b_events = chain(&store, &b).await;

    let created_binding = store
        .create_binding(&a, &bnd, &record("binding.create"))
        .await;
    let created_key = store
        .create_api_key(&a, &k, &s, &[kb.clone()], &record("api_key.create"))
        .await;

    // Whatever the outcome, agency B gained nothing.
    assert!(store
        .list_bindings(&b, None, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .list_api_keys(&b, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(is_not_found(store.get_binding(&b, &bnd.id).await));
    assert!(is_not_found(store.get_api_key(&b, &k.id).await));
    assert_eq!(chain(&store, &b).await, b_events);
    // And the writes landed in the scope's agency, as create_account does with its record.
    created_binding.unwrap();
    created_key.unwrap();
    assert_eq!(
        store.get_binding(&a, &bnd.id).await.unwrap().agency_id,
        *a.agency()
    );
    assert_eq!(
        store.get_api_key(&a, &k.id).await.unwrap().agency_id,
        *a.agency()
    );
    assert_eq!(
        store
            .principal_bindings(&a, &PrincipalId::Key(k.id.clone()))
            .await
            .unwrap()
            .len(),
        1
    );
    let found = key_by_secret(&store, &s.hash).await.unwrap().unwrap();
    assert_eq!(&found.agency, a.agency());
}

async fn case_binding_on_foreign_account_refused(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    let ann = user_principal(&user(&store, &a, "ann@a.example", None).await);
    let b_acc = account(&store, &b, "B main").await;
    let (a_events, b_events) = (chain(&store, &a).await, chain(&store, &b).await);
    let rev = store.revision().await.unwrap();

    let foreign = binding_value(&a, &ann, "account_admin", Some(&b_acc.id));
    let r = store
        .create_binding(&a, &foreign, &record("binding.create"))
        .await;
    assert!(
        r.is_err(),
        "a binding on another agency's account must be refused, got {r:?}"
    );
    // Also for an id that names no account at all.
    let r = store
        .create_binding(
            &a,
            &binding_value(&a, &ann, "account_admin", Some(&AccountId::generate())),
            &record("binding.create"),
        )
        .await;
    assert!(
        r.is_err(),
        "a binding on a missing account must be refused, got {r:?}"
    );
    // And through a key's bindings: nothing of the key is written either.
    let k = key_value(&a, None);
    let s = secret();
    let kb = binding_value(
        &a,
        &PrincipalId::Key(k.id.clone()),
        "account_admin",
        Some(&b_acc.id),
    );
    assert!(store
        .create_api_key(&a, &k, &s, &[kb], &record("api_key.create"))
        .await
        .is_err());
    // A key bound to another agency's account is refused as well.
    let k2 = key_value(&a, Some(&b_acc.id));
    assert!(store
        .create_api_key(&a, &k2, &secret(), &[], &record("api_key.create"))
        .await
        .is_err());

    assert!(is_not_found(store.get_binding(&a, &foreign.id).await));
    assert!(store.principal_bindings(&a, &ann).await.unwrap().is_empty());
    assert!(store
        .list_bindings(&b, None, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(is_not_found(store.get_api_key(&a, &k.id).await));
    assert!(is_not_found(store.get_api_key(&a, &k2.id).await));
    assert_eq!(key_by_secret(&store, &s.hash).await.unwrap(), None);
    assert_eq!(chain(&store, &a).await, a_events);
    assert_eq!(chain(&store, &b).await, b_events);
    assert_eq!(store.revision().await.unwrap(), rev);
}
