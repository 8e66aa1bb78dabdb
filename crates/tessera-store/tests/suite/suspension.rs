//! Suspension of agencies and accounts (idempotent, audited, in the change feed, listed by
//! `suspensions`) and the review state of apps (`update_app`).

use super::*;

cases! {
    case_agency_suspension => sqlite_agency_suspension, postgres_agency_suspension;
    case_account_suspension => sqlite_account_suspension, postgres_account_suspension;
    case_app_review => sqlite_app_review, postgres_app_review;
}

async fn case_agency_suspension(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Suspended").await;
    let (app, _) = app(&store, &t, AppKind::Marketplace).await;
    let other = agency(&store, &mint, "Other").await;
    assert_eq!(store.suspensions().await.unwrap(), Suspensions::default());
    let before = store.revision().await.unwrap();

    let (a, changed) = store
        .set_agency_suspended(t.agency(), Some("unpaid"), now(), &record("agency.suspend"))
        .await
        .unwrap();
    assert!(changed);
    assert_eq!(a.status, Status::Suspended);
    assert_eq!(a.suspended_reason.as_deref(), Some("unpaid"));
    assert!(a.suspended_at.is_some());
    assert_eq!(store.get_agency(t.agency()).await.unwrap(), a);
    let changes = store.changes_since(before, 100).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].kind, "agency.suspend");
    assert_eq!(&changes[0].agency, t.agency());
    let s = store.suspensions().await.unwrap();
    assert_eq!(s.agencies, vec![t.agency().clone()]);
    assert_eq!(s.apps, vec![(app.id.clone(), t.agency().clone())]);
    assert!(s.accounts.is_empty());
    // The data is kept.
    assert_eq!(store.get_app(&t, &app.id).await.unwrap().id, app.id);

    // Again: unchanged, nothing written.
    let rev = store.revision().await.unwrap();
    let (again, changed) = store
        .set_agency_suspended(t.agency(), Some("twice"), now(), &record("agency.suspend"))
        .await
        .unwrap();
    assert!(!changed);
    assert_eq!(again.suspended_reason.as_deref(), Some("unpaid"));
    assert_eq!(store.revision().await.unwrap(), rev);

    // Reinstate.
    let (a, changed) = store
        .set_agency_suspended(t.agency(), None, now(), &record("agency.reinstate"))
        .await
        .unwrap();
    assert!(changed);
    assert_eq!(a.status, Status::Active);
    assert_eq!(a.suspended_reason, None);
    assert_eq!(a.suspended_at, None);
    let changes = store.changes_since(rev, 100).await.unwrap();
    assert_eq!(changes[0].kind, "agency.reinstate");
    assert_eq!(store.suspensions().await.unwrap(), Suspensions::default());
    let (_, changed) = store
        .set_agency_suspended(t.agency(), None, now(), &record("agency.reinstate"))
        .await
        .unwrap();
    assert!(!changed);

    // An unknown agency cannot be suspended.
    assert!(matches!(
        store
            .set_agency_suspended(
                &AgencyId::generate(),
                Some("x"),
                now(),
                &record("agency.suspend")
            )
            .await,
        Err(StoreError::NotFound)
    ));
    // Another agency is untouched.
    assert_eq!(
        store.get_agency(other.agency()).await.unwrap().status,
        Status::Active
    );
}

async fn case_account_suspension(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Accounts").await;
    let acc = account(&store, &t, "Main").await;
    let keep = account(&store, &t, "Other").await;
    assert_eq!(acc.status, Status::Active);
    let rev = store.revision().await.unwrap();
    let (a, changed) = store
        .set_account_suspended(
            &t,
            &acc.id,
            Some("chargeback"),
            now(),
            &record("account.suspend"),
        )
        .await
        .unwrap();
    assert!(changed);
    assert_eq!(a.status, Status::Suspended);
    assert_eq!(a.suspended_reason.as_deref(), Some("chargeback"));
    assert_eq!(store.get_account(&t, &acc.id).await.unwrap(), a);
    assert_eq!(
        store.get_account(&t, &keep.id).await.unwrap().status,
        Status::Active
    );
    let changes = store.changes_since(rev, 100).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].kind, "account.suspend");
    assert_eq!(changes[0].entity, acc.id.to_string());
    let s = store.suspensions().await.unwrap();
    assert_eq!(s.accounts, vec![(t.agency().clone(), acc.id.clone())]);
    assert!(s.agencies.is_empty());

    let (_, changed) = store
        .set_account_suspended(
            &t,
            &acc.id,
            Some("again"),
            now(),
            &record("account.suspend"),
        )
        .await
        .unwrap();
    assert!(!changed);

    // Another agency's scope does not find it.
    let other = agency(&store, &mint, "Other").await;
    assert!(matches!(
        store
            .set_account_suspended(
                &other,
                &acc.id,
                Some("x"),
                now(),
                &record("account.suspend")
            )
            .await,
        Err(StoreError::NotFound)
    ));

    let (a, changed) = store
        .set_account_suspended(&t, &acc.id, None, now(), &record("account.reinstate"))
        .await
        .unwrap();
    assert!(changed);
    assert_eq!(a.status, Status::Active);
    assert_eq!(a.suspended_reason, None);
    assert_eq!(store.suspensions().await.unwrap(), Suspensions::default());
    // The audit events were written in the agency's chain.
    let events = store
        .list_audit(&t, &AuditFilter::default(), &all())
        .await
        .unwrap();
    let actions: Vec<_> = events.items.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"account.suspend"), "{actions:?}");
    assert!(actions.contains(&"account.reinstate"), "{actions:?}");
}

async fn case_app_review(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Partner").await;
    let mut value = app_value(&t, AppKind::Marketplace, false);
    value.review = AppReview::Pending;
    value.approved_scopes = vec!["contacts.readonly".into()];
    store
        .create_app(&t, &value, None, &record("app.create"))
        .await
        .unwrap();
    let got = store.get_app(&t, &value.id).await.unwrap();
    assert_eq!(got.review, AppReview::Pending);
    assert_eq!(got.approved_scopes, vec!["contacts.readonly".to_owned()]);
    assert_eq!(got.pending_scopes, vec!["contacts.write".to_owned()]);
    let rev = store.revision().await.unwrap();
    let update = AppUpdate {
        name: got.name.clone(),
        redirect_uris: got.redirect_uris.clone(),
        scopes: got.scopes.clone(),
        review: AppReview::Rejected,
        approved_scopes: got.approved_scopes.clone(),
        review_reason: Some("too broad".into()),
    };
    let after = store
        .update_app(&t, &value.id, &update, now(), &record("app.review.reject"))
        .await
        .unwrap();
    assert_eq!(after.review, AppReview::Rejected);
    assert_eq!(after.review_reason.as_deref(), Some("too broad"));
    assert_eq!(after, store.get_app(&t, &value.id).await.unwrap());
    let changes = store.changes_since(rev, 100).await.unwrap();
    assert_eq!(changes[0].kind, "app.update");
    let approve = AppUpdate {
        review: AppReview::Approved,
        approved_scopes: got.scopes.clone(),
        review_reason: None,
        ..update.clone()
    };
    let after = store
        .update_app(
            &t,
            &value.id,
            &approve,
            now(),
            &record("app.review.approve"),
        )
        .await
        .unwrap();
    assert_eq!(after.review, AppReview::Approved);
    assert!(after.pending_scopes.is_empty());
    // Another agency's scope, a missing app: not found.
    let other = agency(&store, &mint, "Other").await;
    assert!(matches!(
        store
            .update_app(&other, &value.id, &approve, now(), &record("app.update"))
            .await,
        Err(StoreError::NotFound)
    ));
    // A deleted app cannot be changed.
    store
        .delete_app(&t, &value.id, now(), &record("app.delete"))
        .await
        .unwrap();
    assert!(matches!(
        store
            .update_app(&t, &value.id, &approve, now(), &record("app.update"))
            .await,
        Err(StoreError::NotFound)
    ));
}
