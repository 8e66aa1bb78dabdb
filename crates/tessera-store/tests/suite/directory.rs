//! Accounts and users of an agency: CRUD, e-mail uniqueness (case-insensitive), and what
//! deleting an account or a user takes with it.

use super::*;

cases! {
    case_accounts => sqlite_accounts, postgres_accounts;
    case_users => sqlite_users, postgres_users;
    case_user_email_unique_case_insensitively => sqlite_user_email_unique_case_insensitively, postgres_user_email_unique_case_insensitively;
    case_delete_account_cascades => sqlite_delete_account_cascades, postgres_delete_account_cascades;
    case_delete_user_removes_bindings => sqlite_delete_user_removes_bindings, postgres_delete_user_removes_bindings;
}

async fn case_accounts(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    assert!(store
        .list_accounts(&t, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    let a = account(&store, &t, "Main").await;
    let b = account(&store, &t, "Side").await;
    assert_eq!(store.get_account(&t, &a.id).await.unwrap(), a);
    let mut want = vec![a.clone(), b.clone()];
    want.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(store.list_accounts(&t, &all()).await.unwrap().items, want);
    let p1 = store.list_accounts(&t, &page(1, None)).await.unwrap();
    let p2 = store
        .list_accounts(&t, &page(1, p1.next_cursor.clone()))
        .await
        .unwrap();
    assert_eq!(
        (p1.items.len(), p2.items.len(), p2.next_cursor),
        (1, 1, None)
    );
    assert_ne!(p1.items[0].id, p2.items[0].id);

    let later = a.updated_at + 5;
    let renamed = store
        .update_account(&t, &a.id, "Primary", later, &record("account.update"))
        .await
        .unwrap();
    assert_eq!(
        (
            renamed.name.as_str(),
            renamed.updated_at,
            renamed.created_at
        ),
        ("Primary", later, a.created_at)
    );
    assert_eq!(store.get_account(&t, &a.id).await.unwrap(), renamed);
    assert!(is_not_found(
        store
            .update_account(
                &t,
                &AccountId::generate(),
                "x",
                later,
                &record("account.update")
            )
            .await
    ));

    store
        .delete_account(&t, &a.id, later, &record("account.delete"))
        .await
        .unwrap();
    assert!(is_not_found(store.get_account(&t, &a.id).await));
    assert!(is_not_found(
        store
            .delete_account(&t, &a.id, later, &record("account.delete"))
            .await
    ));
    assert_eq!(
        store.list_accounts(&t, &all()).await.unwrap().items,
        vec![b]
    );
}

async fn case_users(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let ann = user(
        &store,
        &t,
        "  ann@example.com ",
        Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
    )
    .await;
    assert_eq!(ann.email, "ann@example.com", "stored trimmed");
    assert!(ann.has_password);
    assert_eq!((ann.status, &ann.agency_id), (Status::Active, t.agency()));
    let bob = user(&store, &t, "bob@example.com", None).await;
    assert!(!bob.has_password);
    assert_eq!(store.get_user(&t, &ann.id).await.unwrap(), ann);
    assert!(is_not_found(store.get_user(&t, &UserId::generate()).await));
    let mut want = vec![ann.clone(), bob.clone()];
    want.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(store.list_users(&t, &all()).await.unwrap().items, want);

    // Setting a password.
    let later = bob.updated_at + 10;
    let patch = UserPatch {
        password_hash: Some("$argon2id$v=19$new".into()),
        ..UserPatch::default()
    };
    let bob2 = store
        .update_user(&t, &bob.id, &patch, later, &record("user.update"))
        .await
        .unwrap();
    assert!(bob2.has_password);
    assert_eq!(
        (bob2.updated_at, bob2.email.as_str(), bob2.name.as_str()),
        (later, bob.email.as_str(), bob.name.as_str())
    );
    // Name, email, status; other fields stay.
    let patch = UserPatch {
        email: Some(" Robert@Example.com".into()),
        name: Some("Robert".into()),
        status: Some(Status::Disabled),
        password_hash: None,
    };
    let bob3 = store
        .update_user(&t, &bob.id, &patch, later + 1, &record("user.update"))
        .await
        .unwrap();
    assert_eq!(
        (
            bob3.email.as_str(),
            bob3.name.as_str(),
            bob3.status,
            bob3.has_password
        ),
        ("Robert@Example.com", "Robert", Status::Disabled, true)
    );
    assert_eq!(store.get_user(&t, &bob.id).await.unwrap(), bob3);
    // The old address is free again, the new one (in any case) taken.
    user(&store, &t, "BOB@example.com", None).await;
    assert_conflict(
        store
            .create_user(
                &t,
                &NewUser {
                    id: UserId::generate(),
                    email: "robert@EXAMPLE.com".into(),
                    name: "R".into(),
                    password_hash: None,
                    now: now(),
                },
                &record("user.create"),
            )
            .await,
        "email",
    );
    assert!(is_not_found(
        store
            .update_user(
                &t,
                &UserId::generate(),
                &UserPatch::default(),
                later,
                &record("user.update")
            )
            .await
    ));

    store
        .delete_user(&t, &ann.id, later, &record("user.delete"))
        .await
        .unwrap();
    assert!(is_not_found(store.get_user(&t, &ann.id).await));
    assert!(is_not_found(
        store
            .delete_user(&t, &ann.id, later, &record("user.delete"))
            .await
    ));
    assert!(!store
        .list_users(&t, &all())
        .await
        .unwrap()
        .items
        .iter()
        .any(|u| u.id == ann.id));
}

async fn case_user_email_unique_case_insensitively(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
    let ann = user(&store, &t, "Ann.Smith@Example.com", None).await;
    let events = chain(&store, &t).await.len();
    let dup = NewUser {
        id: UserId::generate(),
        email: "ann.smith@example.COM".into(),
        name: "Dup".into(),
        password_hash: None,
        now: now(),
    };
    assert_conflict(
        store.create_user(&t, &dup, &record("user.create")).await,
        "email",
    );
    assert_conflict(
        store
            .create_user(
                &t,
                &NewUser {
                    email: " ANN.SMITH@EXAMPLE.COM ".into(),
                    ..dup.clone()
                },
                &record("user.create"),
            )
            .await,
        "email",
    );
    assert!(is_not_found(store.get_user(&t, &dup.id).await));
    assert_eq!(
        chain(&store, &t).await.len(),
        events,
        "a refused write leaves no audit event"
    );
    // Unique per agency only.
    store
        .create_user(&other, &dup, &record("user.create"))
        .await
        .unwrap();
    // Renaming another user onto the address conflicts too.
    let bea = user(&store, &t, "bea@example.com", None).await;
    let patch = UserPatch {
        email: Some("ANN.smith@example.com".into()),
        ..UserPatch::default()
    };
    assert_conflict(
        store
            .update_user(&t, &bea.id, &patch, now(), &record("user.update"))
            .await,
        "email",
    );
    assert_eq!(
        store.get_user(&t, &bea.id).await.unwrap().email,
        "bea@example.com"
    );
    assert_eq!(store.get_user(&t, &ann.id).await.unwrap(), ann);
}

async fn case_delete_account_cascades(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let gone = account(&store, &t, "Gone").await;
    let kept = account(&store, &t, "Kept").await;
    let ann = user_principal(&user(&store, &t, "ann@example.com", None).await);
    let wide = bind(&store, &t, &ann, "agency_viewer", None).await;
    let on_gone = bind(&store, &t, &ann, "account_admin", Some(&gone.id)).await;
    let on_kept = bind(&store, &t, &ann, "account_admin", Some(&kept.id)).await;
    // A key bound to the account (its bindings on it), and an agency-wide key.
    let (acc_key, acc_secret, _) = key(
        &store,
        &t,
        Some(&gone.id),
        &["account_admin", "account_viewer"],
    )
    .await;
    let (wide_key, wide_secret, wide_key_bindings) =
        key(&store, &t, None, &["agency_viewer"]).await;
    let wide_key_on_gone = bind(
        &store,
        &t,
        &PrincipalId::Key(wide_key.id.clone()),
        "account_admin",
        Some(&gone.id),
    )
    .await;
    let (kept_key, kept_secret, _) = key(&store, &t, Some(&kept.id), &["account_admin"]).await;
    let events = chain(&store, &t).await.len();
    let rev = store.revision().await.unwrap();

    store
        .delete_account(&t, &gone.id, now(), &record("account.delete"))
        .await
        .unwrap();

    assert!(is_not_found(store.get_account(&t, &gone.id).await));
    assert!(is_not_found(store.get_binding(&t, &on_gone.id).await));
    assert!(is_not_found(
        store.get_binding(&t, &wide_key_on_gone.id).await
    ));
    let mut left = vec![wide.clone(), on_kept.clone()];
    left.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(store.principal_bindings(&t, &ann).await.unwrap(), left);
    // The account's key no longer works (gone or revoked), nor do its bindings.
    match store.get_api_key(&t, &acc_key.id).await {
        Err(StoreError::NotFound) => {}
        Ok(k) => assert!(
            k.revoked_at.is_some(),
            "an account-bound key must not survive its account: {k:?}"
        ),
        Err(e) => panic!("{e}"),
    }
    assert_eq!(key_by_secret(&store, &acc_secret.hash).await.unwrap(), None);
    assert!(store
        .principal_bindings(&t, &PrincipalId::Key(acc_key.id.clone()))
        .await
        .unwrap()
        .is_empty());
    // Other keys and their other bindings stay.
    assert!(key_by_secret(&store, &wide_secret.hash)
        .await
        .unwrap()
        .is_some());
    assert!(key_by_secret(&store, &kept_secret.hash)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .principal_bindings(&t, &PrincipalId::Key(wide_key.id.clone()))
            .await
            .unwrap(),
        wide_key_bindings
    );
    assert_eq!(store.get_api_key(&t, &kept_key.id).await.unwrap(), kept_key);
    let evs = chain(&store, &t).await;
    assert_eq!(evs.len(), events + 1);
    assert_eq!(evs.last().unwrap().action, "account.delete");
    assert!(store.revision().await.unwrap() > rev);
}

async fn case_delete_user_removes_bindings(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let acc = account(&store, &t, "Main").await;
    let ann = user(&store, &t, "ann@example.com", None).await;
    let bob = user(&store, &t, "bob@example.com", None).await;
    bind(&store, &t, &user_principal(&ann), "agency_viewer", None).await;
    let ann_acc = bind(
        &store,
        &t,
        &user_principal(&ann),
        "account_admin",
        Some(&acc.id),
    )
    .await;
    let bob_b = bind(&store, &t, &user_principal(&bob), "agency_viewer", None).await;
    let rev = store.revision().await.unwrap();

    store
        .delete_user(&t, &ann.id, now(), &record("user.delete"))
        .await
        .unwrap();
    assert!(store
        .principal_bindings(&t, &user_principal(&ann))
        .await
        .unwrap()
        .is_empty());
    assert!(is_not_found(store.get_binding(&t, &ann_acc.id).await));
    assert_eq!(
        store.list_bindings(&t, None, &all()).await.unwrap().items,
        vec![bob_b]
    );
    assert!(store.revision().await.unwrap() > rev);
    // A user made later with the same address starts with nothing.
    let again = user(&store, &t, "ann@example.com", None).await;
    assert!(store
        .principal_bindings(&t, &user_principal(&again))
        .await
        .unwrap()
        .is_empty());
}
