//! OAuth clients: apps and their secrets, installations (and what uninstalling or deleting an
//! account revokes), the client lookups, tenant isolation of OAuth rows.

use super::*;

cases! {
    case_apps => sqlite_apps, postgres_apps;
    case_installations => sqlite_installations, postgres_installations;
    case_client_installations => sqlite_client_installations, postgres_client_installations;
    case_revoke_installation_revokes_grants => sqlite_revoke_installation_revokes_grants, postgres_revoke_installation_revokes_grants;
    case_delete_account_revokes_installations => sqlite_delete_account_revokes_installations, postgres_delete_account_revokes_installations;
    case_oauth_tenant_isolation => sqlite_oauth_tenant_isolation, postgres_oauth_tenant_isolation;
}

async fn installations_of(
    store: &Arc<dyn Store>,
    app: &AppId,
) -> Result<Vec<Installation>, StoreError> {
    let found = store.client_installations(app).await?;
    Ok(found
        .into_iter()
        .map(|(i, scope)| {
            assert_eq!(scope.agency(), &i.agency_id);
            i
        })
        .collect())
}

async fn case_apps(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let (a, s1) = app(&store, &t, AppKind::Private).await;
    assert_eq!(store.get_app(&t, &a.id).await.unwrap(), a);
    let public = app_value(&t, AppKind::Marketplace, false);
    store
        .create_app(&t, &public, None, &record("app.create"))
        .await
        .unwrap();
    assert_eq!(
        store.list_apps(&t, &all()).await.unwrap().items,
        sorted(vec![a.clone(), public.clone()], |x| x.id.clone())
    );
    // Pages.
    let first = store.list_apps(&t, &page(1, None)).await.unwrap();
    assert_eq!(first.items.len(), 1);
    let second = store
        .list_apps(&t, &page(1, first.next_cursor.clone()))
        .await
        .unwrap();
    assert_eq!(second.items.len(), 1);
    assert!(second.next_cursor.is_none());
    assert_ne!(first.items, second.items);
    // A duplicate id is a conflict.
    assert!(matches!(
        store.create_app(&t, &a, None, &record("app.create")).await,
        Err(StoreError::Conflict { .. })
    ));
    // A reused secret hash too.
    let mut dup = app_value(&t, AppKind::Private, true);
    dup.name = "dup".into();
    assert_conflict(
        store
            .create_app(&t, &dup, Some(&s1), &record("app.create"))
            .await,
        "secret",
    );
    assert!(
        is_not_found(store.get_app(&t, &dup.id).await),
        "nothing half-written"
    );

    // find_client: the app and its secrets, across tenants.
    let found = client(&store, &a.id).await.unwrap().unwrap();
    assert_eq!(found.app, a);
    assert_eq!(found.secrets.len(), 1);
    assert_eq!(found.secrets[0].hash, s1.hash);
    assert_eq!(found.secrets[0].pepper_version, 1);
    assert_eq!(found.secrets[0].valid_until, None);
    let pf = client(&store, &public.id).await.unwrap().unwrap();
    assert!(pf.secrets.is_empty());
    assert!(!pf.app.confidential);
    assert!(client(&store, &AppId::generate()).await.unwrap().is_none());

    // Rotation: newest first, the old one valid until the grace ends.
    let s2 = secret();
    let t1 = now() + 1;
    let rotated = store
        .rotate_app_secret(
            &t,
            &a.id,
            &s2,
            t1 + 60_000,
            t1,
            &record("app.rotate_secret"),
        )
        .await
        .unwrap();
    assert_eq!(rotated.updated_at, t1);
    let found = client(&store, &a.id).await.unwrap().unwrap();
    assert_eq!(
        found
            .secrets
            .iter()
            .map(|s| (s.hash.clone(), s.valid_until))
            .collect::<Vec<_>>(),
        vec![
            (s2.hash.clone(), None),
            (s1.hash.clone(), Some(t1 + 60_000))
        ]
    );
    // A second rotation in the same millisecond still lists the current secret first.
    let s3 = secret();
    store
        .rotate_app_secret(
            &t,
            &a.id,
            &s3,
            t1 + 30_000,
            t1,
            &record("app.rotate_secret"),
        )
        .await
        .unwrap();
    let found = client(&store, &a.id).await.unwrap().unwrap();
    assert_eq!(found.secrets[0].hash, s3.hash);
    assert_eq!(found.secrets[0].valid_until, None);
    assert!(found.secrets[1..]
        .iter()
        .all(|s| s.valid_until.is_some_and(|v| v <= t1 + 60_000)));
    // Rotating an unknown app is NotFound.
    assert!(is_not_found(
        store
            .rotate_app_secret(
                &t,
                &AppId::generate(),
                &secret(),
                t1,
                t1,
                &record("app.rotate_secret")
            )
            .await
    ));

    // Deletion: marked, its secrets end now, still found (the caller checks), not listed.
    let t2 = now() + 2;
    let deleted = store
        .delete_app(&t, &a.id, t2, &record("app.delete"))
        .await
        .unwrap();
    assert_eq!(deleted.deleted_at, Some(t2));
    assert_eq!(store.get_app(&t, &a.id).await.unwrap(), deleted);
    assert_eq!(
        store.list_apps(&t, &all()).await.unwrap().items,
        vec![public]
    );
    let found = client(&store, &a.id).await.unwrap().unwrap();
    assert_eq!(found.app.deleted_at, Some(t2));
    assert!(found
        .secrets
        .iter()
        .all(|s| s.valid_until.is_some_and(|v| v <= t2)));
    // Deleting again returns it as it is; rotating a deleted app is NotFound.
    assert_eq!(
        store
            .delete_app(&t, &a.id, t2 + 10, &record("app.delete"))
            .await
            .unwrap(),
        deleted
    );
    assert!(is_not_found(
        store
            .rotate_app_secret(&t, &a.id, &secret(), t2, t2, &record("app.rotate_secret"))
            .await
    ));
    assert!(is_not_found(
        store
            .delete_app(&t, &AppId::generate(), t2, &record("app.delete"))
            .await
    ));
    let acts = actions(&chain(&store, &t).await);
    for want in ["app.create", "app.rotate_secret", "app.delete"] {
        assert!(acts.iter().any(|a| a == want), "{want} audited: {acts:?}");
    }
    assert_chain_ok(&chain(&store, &t).await);
}

async fn case_installations(store: Arc<dyn Store>, mint: ScopeMint) {
    let partner = agency(&store, &mint, "Partner").await;
    let (market, _) = app(&store, &partner, AppKind::Marketplace).await;
    let t = agency(&store, &mint, "Acme").await;
    let acc = account(&store, &t, "Main").await;
    let acc2 = account(&store, &t, "Second").await;
    let wide = install(&store, &t, &market, None).await;
    let on_acc = install(&store, &t, &market, Some(&acc.id)).await;
    assert_eq!(store.get_installation(&t, &wide.id).await.unwrap(), wide);
    assert_eq!(
        store.get_installation(&t, &on_acc.id).await.unwrap(),
        on_acc
    );

    // One active installation per (agency, account or none, app).
    assert_conflict(
        store
            .create_installation(
                &t,
                &installation_value(&t, &market, None),
                &record("installation.create"),
            )
            .await,
        "installation",
    );
    assert_conflict(
        store
            .create_installation(
                &t,
                &installation_value(&t, &market, Some(&acc.id)),
                &record("installation.create"),
            )
            .await,
        "installation",
    );
    let on_acc2 = install(&store, &t, &market, Some(&acc2.id)).await;

    // Lists: active ones, optionally of one account.
    assert_eq!(
        store
            .list_installations(&t, None, &all())
            .await
            .unwrap()
            .items,
        sorted(vec![wide.clone(), on_acc.clone(), on_acc2.clone()], |i| i
            .id
            .clone())
    );
    assert_eq!(
        store
            .list_installations(&t, Some(&acc.id), &all())
            .await
            .unwrap()
            .items,
        vec![on_acc.clone()]
    );
    let p1 = store
        .list_installations(&t, None, &page(2, None))
        .await
        .unwrap();
    assert_eq!(p1.items.len(), 2);
    let p2 = store
        .list_installations(&t, None, &page(2, p1.next_cursor.clone()))
        .await
        .unwrap();
    assert_eq!(p2.items.len(), 1);
    assert!(p2.next_cursor.is_none());

    // References: another agency's account, or an unknown app.
    let other = agency(&store, &mint, "Other").await;
    let their_acc = account(&store, &other, "Theirs").await;
    assert!(matches!(
        store
            .create_installation(
                &t,
                &installation_value(&t, &market, Some(&their_acc.id)),
                &record("installation.create"),
            )
            .await,
        Err(StoreError::Reference)
    ));
    let ghost = app_value(&partner, AppKind::Marketplace, true);
    assert!(matches!(
        store
            .create_installation(
                &t,
                &installation_value(&t, &ghost, None),
                &record("installation.create")
            )
            .await,
        Err(StoreError::Reference)
    ));

    // Uninstall, then install again: allowed.
    let at = now() + 5;
    let revoked = store
        .revoke_installation(&t, &wide.id, at, &record("installation.revoke"))
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(at));
    assert_eq!(store.get_installation(&t, &wide.id).await.unwrap(), revoked);
    assert_eq!(
        store
            .revoke_installation(&t, &wide.id, at + 100, &record("installation.revoke"))
            .await
            .unwrap(),
        revoked,
        "revoking again changes nothing"
    );
    assert!(!store
        .list_installations(&t, None, &all())
        .await
        .unwrap()
        .items
        .iter()
        .any(|i| i.id == wide.id));
    let again = install(&store, &t, &market, None).await;
    assert_ne!(again.id, wide.id);
    assert!(is_not_found(
        store
            .revoke_installation(
                &t,
                &InstallationId::generate(),
                at,
                &record("installation.revoke")
            )
            .await
    ));
    assert!(is_not_found(
        store
            .get_installation(&t, &InstallationId::generate())
            .await
    ));
    assert_chain_ok(&chain(&store, &t).await);
}

async fn case_client_installations(store: Arc<dyn Store>, mint: ScopeMint) {
    let partner = agency(&store, &mint, "Partner").await;
    let (market, _) = app(&store, &partner, AppKind::Marketplace).await;
    let (other_app, _) = app(&store, &partner, AppKind::Marketplace).await;
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    let gone = agency(&store, &mint, "Gone").await;
    let b_acc = account(&store, &b, "Main").await;
    let ia = install(&store, &a, &market, None).await;
    let ib = install(&store, &b, &market, Some(&b_acc.id)).await;
    let ib_revoked = install(&store, &b, &market, None).await;
    store
        .revoke_installation(&b, &ib_revoked.id, now(), &record("installation.revoke"))
        .await
        .unwrap();
    install(&store, &gone, &market, None).await;
    store
        .delete_agency(gone.agency(), now(), &record("agency.delete"))
        .await
        .unwrap();
    let unrelated = install(&store, &a, &other_app, None).await;

    let mut want = vec![ia, ib];
    want.sort_by(|x, y| {
        (x.agency_id.as_str(), x.id.as_str()).cmp(&(y.agency_id.as_str(), y.id.as_str()))
    });
    assert_eq!(installations_of(&store, &market.id).await.unwrap(), want);
    assert_eq!(
        installations_of(&store, &other_app.id).await.unwrap(),
        vec![unrelated]
    );
    assert!(installations_of(&store, &AppId::generate())
        .await
        .unwrap()
        .is_empty());
}

async fn case_revoke_installation_revokes_grants(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let (a, _) = app(&store, &t, AppKind::Private).await;
    let ins = install(&store, &t, &a, None).await;
    let acc = account(&store, &t, "Main").await;
    let keep_ins = install(&store, &t, &a, Some(&acc.id)).await;
    let (g1, r1) = grant(&store, &t, &a, Some(&ins.id)).await;
    let (g2, _) = grant(&store, &t, &a, Some(&ins.id)).await;
    let (kept, _) = grant(&store, &t, &a, Some(&keep_ins.id)).await;
    let (direct, _) = grant(&store, &t, &a, None).await;
    let at = now() + 4;
    store
        .revoke_grant(&t, &g2.id, at - 2, &record("grant.revoke"))
        .await
        .unwrap();
    store
        .revoke_installation(&t, &ins.id, at, &record("installation.revoke"))
        .await
        .unwrap();
    assert_eq!(
        store.get_grant(&t, &g1.id).await.unwrap().revoked_at,
        Some(at)
    );
    assert_eq!(
        store.get_grant(&t, &g2.id).await.unwrap().revoked_at,
        Some(at - 2),
        "an already revoked grant keeps its time"
    );
    assert_eq!(
        store.get_grant(&t, &kept.id).await.unwrap().revoked_at,
        None
    );
    assert_eq!(
        store.get_grant(&t, &direct.id).await.unwrap().revoked_at,
        None
    );
    assert_eq!(
        store
            .rotate_refresh_token(
                &t,
                &r1.hash,
                &refresh_value(&g1),
                at + 1,
                0,
                &record("token.reuse")
            )
            .await
            .unwrap(),
        RefreshUse::Revoked
    );
}

async fn case_delete_account_revokes_installations(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let (a, _) = app(&store, &t, AppKind::Private).await;
    let acc = account(&store, &t, "Main").await;
    let on_acc = install(&store, &t, &a, Some(&acc.id)).await;
    let wide = install(&store, &t, &a, None).await;
    let (through, _) = grant(&store, &t, &a, Some(&on_acc.id)).await;
    let mut acting = grant_value(&t, &a, Some(&wide.id));
    acting.account = Some(acc.id.clone());
    store
        .create_grant(&t, &acting, None, &record("token.issue"))
        .await
        .unwrap();
    let (other, _) = grant(&store, &t, &a, Some(&wide.id)).await;
    let at = now() + 1;
    store
        .delete_account(&t, &acc.id, at, &record("account.delete"))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_installation(&t, &on_acc.id)
            .await
            .unwrap()
            .revoked_at,
        Some(at)
    );
    assert_eq!(
        store
            .get_installation(&t, &wide.id)
            .await
            .unwrap()
            .revoked_at,
        None
    );
    assert_eq!(
        store.get_grant(&t, &through.id).await.unwrap().revoked_at,
        Some(at)
    );
    assert_eq!(
        store.get_grant(&t, &acting.id).await.unwrap().revoked_at,
        Some(at)
    );
    assert_eq!(
        store.get_grant(&t, &other.id).await.unwrap().revoked_at,
        None
    );
}

async fn case_oauth_tenant_isolation(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    let (app_a, _) = app(&store, &a, AppKind::Private).await;
    let ins_a = install(&store, &a, &app_a, None).await;
    let (g_a, r_a) = grant(&store, &a, &app_a, Some(&ins_a.id)).await;

    // B gets the same NotFound as for ids that do not exist, and changes nothing.
    assert!(is_not_found(store.get_app(&b, &app_a.id).await));
    assert!(is_not_found(store.get_installation(&b, &ins_a.id).await));
    assert!(is_not_found(store.get_grant(&b, &g_a.id).await));
    assert!(is_not_found(
        store
            .delete_app(&b, &app_a.id, now(), &record("app.delete"))
            .await
    ));
    assert!(is_not_found(
        store
            .rotate_app_secret(
                &b,
                &app_a.id,
                &secret(),
                now(),
                now(),
                &record("app.rotate_secret")
            )
            .await
    ));
    assert!(is_not_found(
        store
            .revoke_installation(&b, &ins_a.id, now(), &record("installation.revoke"))
            .await
    ));
    assert!(is_not_found(
        store
            .revoke_grant(&b, &g_a.id, now(), &record("grant.revoke"))
            .await
    ));
    assert_eq!(
        store
            .rotate_refresh_token(
                &b,
                &r_a.hash,
                &refresh_value(&g_a),
                now(),
                0,
                &record("token.reuse")
            )
            .await
            .unwrap(),
        RefreshUse::Revoked
    );
    assert!(store.list_apps(&b, &all()).await.unwrap().items.is_empty());
    assert!(store
        .list_installations(&b, None, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    let snap = store.authz_snapshot(&b, now()).await.unwrap();
    assert!(snap.revocations.installations.is_empty());

    // A's objects are intact.
    assert_eq!(store.get_app(&a, &app_a.id).await.unwrap(), app_a);
    assert_eq!(store.get_installation(&a, &ins_a.id).await.unwrap(), ins_a);
    assert_eq!(store.get_grant(&a, &g_a.id).await.unwrap(), g_a);
    assert_eq!(
        refresh_token(&store, &r_a.hash)
            .await
            .unwrap()
            .unwrap()
            .0
            .rotated_at,
        None
    );
    // B's writes to A's things left no audit in B's chain about them either.
    assert!(chain(&store, &b)
        .await
        .iter()
        .all(|e| e.action == "agency.create"));

    // A scope's records go to the scope's agency, whatever they say.
    let mut planted = app_value(&a, AppKind::Private, false);
    planted.agency_id = a.agency().clone();
    store
        .create_app(&b, &planted, None, &record("app.create"))
        .await
        .unwrap();
    assert_eq!(
        store.get_app(&b, &planted.id).await.unwrap().agency_id,
        *b.agency()
    );
    assert!(is_not_found(store.get_app(&a, &planted.id).await));
}
