//! The sign-in lookup: users by e-mail across agencies, case-insensitively, never in a
//! deleted agency.

use super::*;

cases! {
    case_find_users_by_email => sqlite_find_users_by_email, postgres_find_users_by_email;
}

async fn users_by_email(
    store: &Arc<dyn Store>,
    email: &str,
) -> Result<Vec<UserCredential>, StoreError> {
    let found = store.find_users_by_email(email).await?;
    Ok(found
        .into_iter()
        .map(|(u, scope)| {
            assert_eq!(scope.agency(), &u.user.agency_id);
            u
        })
        .collect())
}

async fn case_find_users_by_email(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    let gone = agency(&store, &mint, "Gone").await;
    let ua = user(&store, &a, "Ann@Example.com", Some("$argon2id$v=19$a")).await;
    let ub = user(&store, &b, "ann@example.COM", None).await;
    user(
        &store,
        &gone,
        "ann@example.com",
        Some("$argon2id$v=19$gone"),
    )
    .await;
    user(&store, &a, "bob@example.com", None).await;
    store
        .delete_agency(gone.agency(), now(), &record("agency.delete"))
        .await
        .unwrap();

    let found = users_by_email(&store, "  ANN@example.com ").await.unwrap();
    let mut want = vec![
        (ua.clone(), Some("$argon2id$v=19$a".to_owned())),
        (ub.clone(), None),
    ];
    want.sort_by(|x, y| x.0.agency_id.as_str().cmp(y.0.agency_id.as_str()));
    assert_eq!(
        found
            .iter()
            .map(|c| (c.user.clone(), c.password_hash.clone()))
            .collect::<Vec<_>>(),
        want
    );
    let debug = format!("{found:?}");
    assert!(
        !debug.contains("argon2id") && debug.contains("[redacted]"),
        "{debug}"
    );
    assert!(users_by_email(&store, "nobody@example.com")
        .await
        .unwrap()
        .is_empty());
    assert!(users_by_email(&store, "").await.unwrap().is_empty());
    // A changed email is found under the new one only.
    store
        .update_user(
            &b,
            &ub.id,
            &UserPatch {
                email: Some("ANNE@b.example".into()),
                ..Default::default()
            },
            now(),
            &record("user.update"),
        )
        .await
        .unwrap();
    assert_eq!(
        users_by_email(&store, "ann@example.com")
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        users_by_email(&store, "anne@B.example").await.unwrap()[0]
            .user
            .id,
        ub.id
    );
}
