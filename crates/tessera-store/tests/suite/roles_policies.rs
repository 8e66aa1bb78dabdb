//! Custom roles and Cedar policies: CRUD, deleting a role with or without its bindings, and
//! a role deletion racing a new binding.

use super::*;

cases! {
    case_roles => sqlite_roles, postgres_roles;
    case_delete_role_and_its_bindings => sqlite_delete_role_and_its_bindings, postgres_delete_role_and_its_bindings;
    case_policies => sqlite_policies, postgres_policies;
    case_delete_role_races_binding => sqlite_delete_role_races_binding, postgres_delete_role_races_binding;
}

async fn case_roles(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
    assert!(store.list_roles(&t, &all()).await.unwrap().items.is_empty());

    let rev = store.revision().await.unwrap();
    let editor = role(&store, &t, "Editor", &["contacts.read", "contacts.write"]).await;
    assert!(
        store.revision().await.unwrap() > rev,
        "role create bumps the revision"
    );
    let viewer = role(&store, &t, "Viewer", &["contacts.read"]).await;
    assert_eq!(store.get_role(&t, &editor.id).await.unwrap(), editor);
    assert_eq!(store.get_role(&t, &viewer.id).await.unwrap(), viewer);
    assert!(is_not_found(store.get_role(&t, &RoleId::generate()).await));
    let want = sorted(vec![editor.clone(), viewer.clone()], |r| r.id.clone());
    assert_eq!(store.list_roles(&t, &all()).await.unwrap().items, want);
    let p1 = store.list_roles(&t, &page(1, None)).await.unwrap();
    let p2 = store
        .list_roles(&t, &page(1, p1.next_cursor.clone()))
        .await
        .unwrap();
    assert_eq!(
        (p1.items, p2.items, p2.next_cursor),
        (vec![want[0].clone()], vec![want[1].clone()], None)
    );

    // A duplicate name conflicts and leaves nothing behind: no row, no event, no revision.
    let events = chain(&store, &t).await;
    let rev = store.revision().await.unwrap();
    let dup = role_value(&t, "Editor", &["contacts.read"]);
    assert_conflict(
        store.create_role(&t, &dup, &record("role.create")).await,
        "name",
    );
    assert!(is_not_found(store.get_role(&t, &dup.id).await));
    // A duplicate id conflicts too.
    let same_id = Role {
        name: "Other name".into(),
        ..editor.clone()
    };
    assert!(matches!(
        store
            .create_role(&t, &same_id, &record("role.create"))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.get_role(&t, &editor.id).await.unwrap(), editor);
    assert_eq!(chain(&store, &t).await, events);
    assert_eq!(store.revision().await.unwrap(), rev);
    // Names are unique per agency only.
    let theirs = role(&store, &other, "Editor", &["contacts.read"]).await;
    // The scope decides the agency, not the record.
    let mut stray = role_value(&t, "Stray", &[]);
    stray.agency_id = other.agency().clone();
    store
        .create_role(&t, &stray, &record("role.create"))
        .await
        .unwrap();
    assert_eq!(
        &store.get_role(&t, &stray.id).await.unwrap().agency_id,
        t.agency()
    );
    assert!(is_not_found(store.get_role(&other, &stray.id).await));

    // Updates: one field alone leaves the others; every update bumps the revision.
    let later = editor.updated_at + 1000;
    let rev = store.revision().await.unwrap();
    let patch = RolePatch {
        permissions: Some(vec!["contacts.read".into()]),
        ..RolePatch::default()
    };
    let narrowed = store
        .update_role(&t, &editor.id, &patch, later, &record("role.update"))
        .await
        .unwrap();
    assert_eq!(
        narrowed,
        Role {
            permissions: vec!["contacts.read".into()],
            updated_at: later,
            ..editor.clone()
        }
    );
    assert_eq!(store.get_role(&t, &editor.id).await.unwrap(), narrowed);
    let rev2 = store.revision().await.unwrap();
    assert!(rev2 > rev, "role update: {rev} -> {rev2}");
    let patch = RolePatch {
        name: Some("Writer".into()),
        description: Some("Writes".into()),
        permissions: Some(vec![]),
    };
    let renamed = store
        .update_role(&t, &editor.id, &patch, later + 1, &record("role.update"))
        .await
        .unwrap();
    assert_eq!(
        renamed,
        Role {
            name: "Writer".into(),
            description: "Writes".into(),
            permissions: vec![],
            updated_at: later + 1,
            ..editor.clone()
        }
    );
    assert!(store.revision().await.unwrap() > rev2);
    // Renaming onto a taken name conflicts and changes nothing.
    let (events, rev) = (chain(&store, &t).await, store.revision().await.unwrap());
    let onto = RolePatch {
        name: Some("Writer".into()),
        ..RolePatch::default()
    };
    assert_conflict(
        store
            .update_role(&t, &viewer.id, &onto, later, &record("role.update"))
            .await,
        "name",
    );
    assert_eq!(store.get_role(&t, &viewer.id).await.unwrap(), viewer);
    assert!(is_not_found(
        store
            .update_role(
                &t,
                &RoleId::generate(),
                &RolePatch::default(),
                later,
                &record("role.update")
            )
            .await
    ));
    assert_eq!(chain(&store, &t).await, events);
    assert_eq!(store.revision().await.unwrap(), rev);

    // Another agency's scope sees nothing of these roles and changes none of them.
    assert!(is_not_found(store.get_role(&other, &editor.id).await));
    assert!(is_not_found(
        store
            .update_role(&other, &editor.id, &onto, later, &record("role.update"))
            .await
    ));
    assert!(is_not_found(
        store
            .delete_role(&other, &editor.id, true, later, &record("role.delete"))
            .await
    ));
    assert_eq!(
        store.count_role_bindings(&other, &editor.id).await.unwrap(),
        0
    );
    assert_eq!(
        store.list_roles(&other, &all()).await.unwrap().items,
        vec![theirs]
    );
    assert_eq!(store.get_role(&t, &editor.id).await.unwrap(), renamed);
    assert_eq!(chain(&store, &t).await, events);
    assert_eq!(store.revision().await.unwrap(), rev);

    // Deleting an unused role: gone, revision bumped, the name free again.
    assert_eq!(
        store
            .delete_role(&t, &viewer.id, false, now(), &record("role.delete"))
            .await
            .unwrap(),
        0
    );
    assert!(store.revision().await.unwrap() > rev, "role delete");
    assert!(is_not_found(store.get_role(&t, &viewer.id).await));
    assert!(is_not_found(
        store
            .delete_role(&t, &viewer.id, true, now(), &record("role.delete"))
            .await
    ));
    role(&store, &t, "Viewer", &[]).await;
}

async fn case_delete_role_and_its_bindings(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
    let acc = account(&store, &t, "Main").await;
    let ann = user_principal(&user(&store, &t, "ann@example.com", None).await);
    let bob = user_principal(&user(&store, &t, "bob@example.com", None).await);
    let support = role(&store, &t, "Support", &["contacts.read"]).await;
    let kept = role(&store, &t, "Kept", &["contacts.read"]).await;
    let b_ann = bind(&store, &t, &ann, support.id.as_str(), None).await;
    let b_bob = bind(&store, &t, &bob, support.id.as_str(), Some(&acc.id)).await;
    let (k, _, kb) = key(&store, &t, None, &[support.id.as_str()]).await;
    let b_kept = bind(&store, &t, &ann, kept.id.as_str(), None).await;
    let b_builtin = bind(&store, &t, &ann, "agency_viewer", None).await;
    assert_eq!(store.count_role_bindings(&t, &support.id).await.unwrap(), 3);
    assert_eq!(store.count_role_bindings(&t, &kept.id).await.unwrap(), 1);
    assert_eq!(
        store
            .count_role_bindings(&t, &RoleId::generate())
            .await
            .unwrap(),
        0
    );

    // A binding may only name a custom role of its own agency that exists.
    let theirs = role(&store, &other, "Theirs", &[]).await;
    let events = chain(&store, &t).await;
    let rev = store.revision().await.unwrap();
    for missing in [RoleId::generate(), theirs.id.clone()] {
        let b = binding_value(&t, &ann, missing.as_str(), None);
        assert!(matches!(
            store
                .create_binding(&t, &b, &record("binding.create"))
                .await,
            Err(StoreError::Reference)
        ));
        assert!(is_not_found(store.get_binding(&t, &b.id).await));
    }
    let k2 = key_value(&t, None);
    let kb2 = binding_value(
        &t,
        &PrincipalId::Key(k2.id.clone()),
        theirs.id.as_str(),
        None,
    );
    assert!(matches!(
        store
            .create_api_key(&t, &k2, &secret(), &[kb2], &record("api_key.create"))
            .await,
        Err(StoreError::Reference)
    ));
    assert!(is_not_found(store.get_api_key(&t, &k2.id).await));
    assert_eq!(chain(&store, &t).await, events);
    assert_eq!(store.revision().await.unwrap(), rev);

    // In use, and bindings not to be removed: a conflict, and nothing at all changes.
    let before = store.authz_snapshot(&t, now()).await.unwrap();
    assert_conflict(
        store
            .delete_role(&t, &support.id, false, now(), &record("role.delete"))
            .await,
        "role_in_use",
    );
    assert_eq!(store.get_role(&t, &support.id).await.unwrap(), support);
    assert_eq!(store.authz_snapshot(&t, now()).await.unwrap(), before);
    assert_eq!(chain(&store, &t).await, events);
    assert_eq!(store.revision().await.unwrap(), rev);

    // With remove_bindings: the role and exactly its bindings go, in one audited write.
    let removed = store
        .delete_role(&t, &support.id, true, now(), &record("role.delete"))
        .await
        .unwrap();
    assert_eq!(removed, 3);
    assert!(store.revision().await.unwrap() > rev);
    assert!(is_not_found(store.get_role(&t, &support.id).await));
    for b in [&b_ann, &b_bob, &kb[0]] {
        assert!(is_not_found(store.get_binding(&t, &b.id).await));
    }
    assert_eq!(store.count_role_bindings(&t, &support.id).await.unwrap(), 0);
    assert_eq!(
        store.list_bindings(&t, None, &all()).await.unwrap().items,
        sorted(vec![b_kept.clone(), b_builtin.clone()], |b| b.id.clone())
    );
    let after = chain(&store, &t).await;
    assert_eq!(after.len(), events.len() + 1);
    assert_eq!(after.last().unwrap().action, "role.delete");
    assert_chain_ok(&after);
    // The key stays; it only lost its binding.
    assert_eq!(store.get_api_key(&t, &k.id).await.unwrap(), k);
    // The deleted role cannot be bound again.
    assert!(matches!(
        store
            .create_binding(
                &t,
                &binding_value(&t, &bob, support.id.as_str(), None),
                &record("binding.create")
            )
            .await,
        Err(StoreError::Reference)
    ));

    // Once its last binding is gone, a role is deleted without removing anything.
    store
        .delete_binding(&t, &b_kept.id, now(), &record("binding.delete"))
        .await
        .unwrap();
    assert_eq!(
        store
            .delete_role(&t, &kept.id, false, now(), &record("role.delete"))
            .await
            .unwrap(),
        0
    );
    assert!(store.list_roles(&t, &all()).await.unwrap().items.is_empty());
    assert_eq!(
        store.list_bindings(&t, None, &all()).await.unwrap().items,
        vec![b_builtin]
    );
    // The other agency's role is untouched.
    assert_eq!(store.get_role(&other, &theirs.id).await.unwrap(), theirs);
}

async fn case_policies(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
    assert!(store
        .list_policies(&t, &all())
        .await
        .unwrap()
        .items
        .is_empty());

    let rev = store.revision().await.unwrap();
    let no_deletes = policy(&store, &t, "No deletes").await;
    assert!(
        store.revision().await.unwrap() > rev,
        "policy create bumps the revision"
    );
    let hours = policy(&store, &t, "Business hours").await;
    assert_eq!(
        store.get_policy(&t, &no_deletes.id).await.unwrap(),
        no_deletes
    );
    assert!(is_not_found(
        store.get_policy(&t, &PolicyId::generate()).await
    ));
    let want = sorted(vec![no_deletes.clone(), hours.clone()], |p| p.id.clone());
    assert_eq!(store.list_policies(&t, &all()).await.unwrap().items, want);
    let p1 = store.list_policies(&t, &page(1, None)).await.unwrap();
    let p2 = store
        .list_policies(&t, &page(1, p1.next_cursor.clone()))
        .await
        .unwrap();
    assert_eq!(
        (p1.items, p2.items, p2.next_cursor),
        (vec![want[0].clone()], vec![want[1].clone()], None)
    );

    // A duplicate id conflicts and leaves nothing behind.
    let (events, rev) = (chain(&store, &t).await, store.revision().await.unwrap());
    let dup = Policy {
        description: "Impostor".into(),
        ..hours.clone()
    };
    assert!(matches!(
        store
            .create_policy(&t, &dup, &record("policy.create"))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.get_policy(&t, &hours.id).await.unwrap(), hours);
    assert_eq!(chain(&store, &t).await, events);
    assert_eq!(store.revision().await.unwrap(), rev);

    // Isolation: another agency sees none of them and deletes none of them.
    let theirs = policy(&store, &other, "Theirs").await;
    let rev = store.revision().await.unwrap();
    assert!(is_not_found(store.get_policy(&other, &hours.id).await));
    assert!(is_not_found(
        store
            .delete_policy(&other, &hours.id, now(), &record("policy.delete"))
            .await
    ));
    assert_eq!(
        store.list_policies(&other, &all()).await.unwrap().items,
        vec![theirs.clone()]
    );
    assert_eq!(store.revision().await.unwrap(), rev);
    // The scope decides the agency, not the record.
    let mut stray = policy_value(&t, "Stray");
    stray.agency_id = other.agency().clone();
    store
        .create_policy(&t, &stray, &record("policy.create"))
        .await
        .unwrap();
    assert_eq!(
        &store.get_policy(&t, &stray.id).await.unwrap().agency_id,
        t.agency()
    );
    assert!(is_not_found(store.get_policy(&other, &stray.id).await));

    // Delete: gone, revision bumped, a second delete is NotFound.
    let rev = store.revision().await.unwrap();
    store
        .delete_policy(&t, &no_deletes.id, now(), &record("policy.delete"))
        .await
        .unwrap();
    assert!(store.revision().await.unwrap() > rev, "policy delete");
    assert!(is_not_found(store.get_policy(&t, &no_deletes.id).await));
    assert!(is_not_found(
        store
            .delete_policy(&t, &no_deletes.id, now(), &record("policy.delete"))
            .await
    ));
    assert_eq!(
        store.list_policies(&t, &all()).await.unwrap().items,
        sorted(
            vec![
                hours,
                Policy {
                    agency_id: t.agency().clone(),
                    ..stray
                }
            ],
            |p| p.id.clone()
        )
    );
    assert_eq!(store.get_policy(&other, &theirs.id).await.unwrap(), theirs);
}

/// A binding to a custom role raced against the role's deletion (without removing bindings):
/// one of the two wins, and a binding never outlives its role.
async fn case_delete_role_races_binding(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let (mut bound, mut deleted) = (0, 0);
    for round in 0..40 {
        let r = role(&store, &t, &format!("Role {round}"), &["contacts.read"]).await;
        let b = binding_value(
            &t,
            &PrincipalId::User(UserId::generate()),
            r.id.as_str(),
            None,
        );
        let binder = {
            let (store, t, b) = (store.clone(), t.clone(), b.clone());
            tokio::spawn(async move {
                store
                    .create_binding(&t, &b, &record("binding.create"))
                    .await
            })
        };
        let deleter = {
            let (store, t, id) = (store.clone(), t.clone(), r.id.clone());
            tokio::spawn(async move {
                store
                    .delete_role(&t, &id, false, now(), &record("role.delete"))
                    .await
            })
        };
        let (created, removed) = (binder.await.unwrap(), deleter.await.unwrap());
        let role_left = store.get_role(&t, &r.id).await;
        let binding_left = store.get_binding(&t, &b.id).await;
        match (&created, &removed) {
            (Ok(()), Err(StoreError::Conflict { constraint })) if constraint == "role_in_use" => {
                assert_eq!(role_left.unwrap(), r);
                assert_eq!(binding_left.unwrap(), b);
                bound += 1;
            }
            (Err(StoreError::Reference), Ok(0)) => {
                assert!(is_not_found(role_left));
                assert!(is_not_found(binding_left));
                deleted += 1;
            }
            other => panic!("round {round}: both or neither won: {other:?}"),
        }
        assert_eq!(
            store.count_role_bindings(&t, &r.id).await.unwrap(),
            u64::from(created.is_ok())
        );
    }
    assert_eq!(bound + deleted, 40);
}
