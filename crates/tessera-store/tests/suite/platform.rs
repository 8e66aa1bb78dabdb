//! The platform: migrations, ping and backend name, the one-time bootstrap, agencies and
//! their pagination.

use super::*;

cases! {
    case_migrations_ping_backend => sqlite_migrations_ping_backend, postgres_migrations_ping_backend;
    case_bootstrap => sqlite_bootstrap, postgres_bootstrap;
    case_agencies => sqlite_agencies, postgres_agencies;
    case_agency_pagination => sqlite_agency_pagination, postgres_agency_pagination;
}

fn bootstrap_value() -> Bootstrap {
    let at = now();
    let platform = Agency {
        id: AgencyId::generate(),
        name: "Platform".into(),
        status: Status::Active,
        suspended_reason: None,
        suspended_at: None,
        is_platform: true,
        created_at: at,
        updated_at: at,
    };
    let key = ApiKey {
        rate_limit: None,
        id: KeyId::generate(),
        agency_id: platform.id.clone(),
        name: "bootstrap".into(),
        account: None,
        scopes: vec!["*".into()],
        created_by: "system".into(),
        created_at: at,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        rotated_at: None,
    };
    let binding = Binding {
        id: BindingId::generate(),
        agency_id: platform.id.clone(),
        principal: PrincipalId::Key(key.id.clone()),
        role: "platform_admin".into(),
        account: None,
        created_by: "system".into(),
        created_at: at,
    };
    Bootstrap {
        platform,
        key,
        secret: secret(),
        binding,
        audit: record("platform.bootstrap"),
    }
}

async fn case_migrations_ping_backend(store: Arc<dyn Store>, mint: ScopeMint) {
    assert!(matches!(store.backend(), "sqlite" | "postgres"));
    store.ping().await.unwrap();
    // The fixture migrated already: again is a no-op, as often as asked.
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(store.revision().await.unwrap(), 0);
    assert_eq!(store.platform_agency().await.unwrap(), None);
    let listed = store.list_agencies(&all()).await.unwrap();
    assert!(listed.items.is_empty());
    assert_eq!(listed.next_cursor, None);
    assert_eq!(store.signing_keys().await.unwrap(), []);
    // Data survives a repeated migration.
    let t = agency(&store, &mint, "Kept").await;
    let k = signing_key(&store, "kept-key", "active").await;
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(store.get_agency(t.agency()).await.unwrap().name, "Kept");
    assert_eq!(store.signing_keys().await.unwrap(), [k]);
}

async fn case_bootstrap(store: Arc<dyn Store>, mint: ScopeMint) {
    let b = bootstrap_value();
    assert!(store.bootstrap(b.clone()).await.unwrap());
    let second = bootstrap_value();
    assert!(
        !store.bootstrap(second.clone()).await.unwrap(),
        "a second bootstrap must change nothing"
    );

    assert_eq!(
        store.platform_agency().await.unwrap().as_ref(),
        Some(&b.platform)
    );
    assert_eq!(store.get_agency(&b.platform.id).await.unwrap(), b.platform);
    assert!(is_not_found(store.get_agency(&second.platform.id).await));
    assert!(
        store.list_agencies(&all()).await.unwrap().items.is_empty(),
        "the platform tenant is not listed"
    );

    let found = key_by_secret(&store, &b.secret.hash)
        .await
        .unwrap()
        .expect("bootstrap key found by its secret");
    assert_eq!(
        (found.agency, found.key.clone(), found.valid_until),
        (b.platform.id.clone(), b.key.id.clone(), None)
    );
    assert_eq!(
        key_by_secret(&store, &second.secret.hash).await.unwrap(),
        None
    );

    let t = mint.admit(b.platform.id.clone());
    assert_eq!(store.get_api_key(&t, &b.key.id).await.unwrap(), b.key);
    assert_eq!(
        store
            .principal_bindings(&t, &PrincipalId::Key(b.key.id.clone()))
            .await
            .unwrap(),
        vec![b.binding.clone()]
    );
    let events = chain(&store, &t).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].record(), b.audit);
    assert_chain_ok(&events);
    assert_eq!(store.revision().await.unwrap(), 1);
    // The platform tenant cannot be deleted.
    assert!(is_not_found(
        store
            .delete_agency(&b.platform.id, now(), &record("agency.delete"))
            .await
    ));
    assert!(store.platform_agency().await.unwrap().is_some());
}

async fn case_agencies(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency_value(AgencyId::generate(), "Acme");
    store
        .create_agency(&a, &record("agency.create"))
        .await
        .unwrap();
    assert_eq!(store.get_agency(&a.id).await.unwrap(), a);
    assert!(is_not_found(store.get_agency(&AgencyId::generate()).await));
    // A duplicate id conflicts.
    assert!(matches!(
        store.create_agency(&a, &record("agency.create")).await,
        Err(StoreError::Conflict { .. })
    ));

    let later = a.updated_at + 1000;
    let renamed = store
        .update_agency(&a.id, "Acme Corp", later, &record("agency.update"))
        .await
        .unwrap();
    assert_eq!(
        (
            renamed.name.as_str(),
            renamed.updated_at,
            renamed.created_at
        ),
        ("Acme Corp", later, a.created_at)
    );
    assert_eq!(store.get_agency(&a.id).await.unwrap(), renamed);
    assert!(is_not_found(
        store
            .update_agency(&AgencyId::generate(), "x", later, &record("agency.update"))
            .await
    ));

    // A key of the agency authenticates until the agency is deleted.
    let t = mint.admit(a.id.clone());
    let (k, s, _) = key(&store, &t, None, &["agency_admin"]).await;
    assert!(key_by_secret(&store, &s.hash).await.unwrap().is_some());
    let other = agency(&store, &mint, "Other").await;
    let (_, other_secret, _) = key(&store, &other, None, &["agency_admin"]).await;

    store
        .delete_agency(&a.id, later + 1, &record("agency.delete"))
        .await
        .unwrap();
    assert!(is_not_found(store.get_agency(&a.id).await));
    let listed: Vec<AgencyId> = store
        .list_agencies(&all())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(listed, vec![other.agency().clone()]);
    assert_eq!(
        key_by_secret(&store, &s.hash).await.unwrap(),
        None,
        "a deleted agency's keys stop working"
    );
    assert!(store
        .get_api_key(&t, &k.id)
        .await
        .unwrap()
        .revoked_at
        .is_some());
    assert!(
        key_by_secret(&store, &other_secret.hash)
            .await
            .unwrap()
            .is_some(),
        "other agencies are untouched"
    );
    assert!(is_not_found(
        store
            .delete_agency(&a.id, later + 2, &record("agency.delete"))
            .await
    ));
    assert!(is_not_found(
        store
            .update_agency(&a.id, "Zombie", later + 2, &record("agency.update"))
            .await
    ));

    // Its audit trail stays: create, key, update, delete.
    let events = chain(&store, &t).await;
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "agency.create",
            "agency.update",
            "api_key.create",
            "agency.delete"
        ]
    );
    assert_chain_ok(&events);
}

async fn case_agency_pagination(store: Arc<dyn Store>, _mint: ScopeMint) {
    store.bootstrap(bootstrap_value()).await.unwrap();
    // Ids are ULIDs: one millisecond apart, creation order is id order (oldest first).
    let base = tessera_core::ids::now_millis();
    let mut created = Vec::new();
    for i in 0..5u64 {
        let a = agency_value(
            AgencyId::generate_at(base + i, &mut rand::thread_rng()),
            &format!("Agency {i}"),
        );
        store
            .create_agency(&a, &record("agency.create"))
            .await
            .unwrap();
        created.push(a);
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let p = store.list_agencies(&page(2, cursor.clone())).await.unwrap();
        pages += 1;
        assert!(p.items.len() <= 2);
        assert!(!p.items.is_empty(), "no empty page is handed out");
        seen.extend(p.items);
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen, created,
        "every agency once, oldest first, the platform tenant not listed"
    );
    // Exactly one page's worth: no dangling cursor.
    let p = store.list_agencies(&page(5, None)).await.unwrap();
    assert_eq!((p.items.len(), p.next_cursor), (5, None));
    // Limits are clamped (0 behaves like 1).
    assert_eq!(
        store
            .list_agencies(&page(0, None))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}
