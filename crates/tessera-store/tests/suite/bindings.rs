//! Role bindings: create, read, list by principal, delete, uniqueness.

use super::*;

cases! {
    case_bindings => sqlite_bindings, postgres_bindings;
}

async fn case_bindings(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let acc = account(&store, &t, "Main").await;
    let acc2 = account(&store, &t, "Second").await;
    let ann = user_principal(&user(&store, &t, "ann@example.com", None).await);
    let bob = user_principal(&user(&store, &t, "bob@example.com", None).await);

    let wide = bind(&store, &t, &ann, "agency_viewer", None).await;
    let on_acc = bind(&store, &t, &ann, "account_admin", Some(&acc.id)).await;
    assert_eq!(store.get_binding(&t, &wide.id).await.unwrap(), wide);
    assert_eq!(store.get_binding(&t, &on_acc.id).await.unwrap(), on_acc);

    // Same principal, role and scope: a conflict, for agency-wide and account bindings alike.
    let events = chain(&store, &t).await.len();
    let rev = store.revision().await.unwrap();
    assert_conflict(
        store
            .create_binding(
                &t,
                &binding_value(&t, &ann, "account_admin", Some(&acc.id)),
                &record("binding.create"),
            )
            .await,
        "binding",
    );
    assert_conflict(
        store
            .create_binding(
                &t,
                &binding_value(&t, &ann, "agency_viewer", None),
                &record("binding.create"),
            )
            .await,
        "binding",
    );
    assert_eq!(
        (
            chain(&store, &t).await.len(),
            store.revision().await.unwrap()
        ),
        (events, rev)
    );
    // Any one of the three differing is fine.
    let on_acc2 = bind(&store, &t, &ann, "account_admin", Some(&acc2.id)).await;
    let wide_admin = bind(&store, &t, &ann, "account_admin", None).await;
    let bob_acc = bind(&store, &t, &bob, "account_admin", Some(&acc.id)).await;

    let mut want = vec![
        wide.clone(),
        on_acc.clone(),
        on_acc2.clone(),
        wide_admin.clone(),
    ];
    want.sort_by(|x, y| x.id.cmp(&y.id));
    let got = store.principal_bindings(&t, &ann).await.unwrap();
    assert_eq!(
        got, want,
        "agency-wide and account bindings are both returned"
    );
    assert_eq!(
        store
            .list_bindings(&t, Some(&ann), &all())
            .await
            .unwrap()
            .items,
        want
    );
    assert_eq!(
        store
            .list_bindings(&t, Some(&bob), &all())
            .await
            .unwrap()
            .items,
        vec![bob_acc.clone()]
    );
    assert_eq!(
        store
            .list_bindings(&t, None, &all())
            .await
            .unwrap()
            .items
            .len(),
        5
    );
    // Paging through all five, two at a time.
    let (mut ids, mut cursor) = (Vec::new(), None);
    loop {
        let p = store
            .list_bindings(&t, None, &page(2, cursor))
            .await
            .unwrap();
        ids.extend(p.items.into_iter().map(|b| b.id));
        cursor = p.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let unique: BTreeSet<_> = ids.iter().cloned().collect();
    assert_eq!((ids.len(), unique.len()), (5, 5));
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    store
        .delete_binding(&t, &on_acc.id, now(), &record("binding.delete"))
        .await
        .unwrap();
    assert!(is_not_found(store.get_binding(&t, &on_acc.id).await));
    assert!(is_not_found(
        store
            .delete_binding(&t, &on_acc.id, now(), &record("binding.delete"))
            .await
    ));
    assert_eq!(store.principal_bindings(&t, &ann).await.unwrap().len(), 3);
    // Once deleted, the same binding can be made again.
    bind(&store, &t, &ann, "account_admin", Some(&acc.id)).await;
}
