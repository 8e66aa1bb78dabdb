//! API keys: create with secrets and bindings, revoke, rotate with a grace window, the
//! secret lookup, and batched last-use updates.

use super::*;

cases! {
    case_api_keys => sqlite_api_keys, postgres_api_keys;
    case_touch_api_keys => sqlite_touch_api_keys, postgres_touch_api_keys;
    case_touch_many_agencies => sqlite_touch_many_agencies, postgres_touch_many_agencies;
}

async fn case_api_keys(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let (k, s1, bindings) = key(&store, &t, None, &["agency_admin", "agency_viewer"]).await;
    let principal = PrincipalId::Key(k.id.clone());
    assert_eq!(store.get_api_key(&t, &k.id).await.unwrap(), k);
    assert_eq!(
        store.list_api_keys(&t, &all()).await.unwrap().items,
        vec![k.clone()]
    );
    let m = key_by_secret(&store, &s1.hash).await.unwrap().unwrap();
    assert_eq!(
        (&m.agency, &m.key, m.valid_until),
        (t.agency(), &k.id, None)
    );
    assert_eq!(key_by_secret(&store, &secret().hash).await.unwrap(), None);
    let mut want = bindings.clone();
    want.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(
        store.principal_bindings(&t, &principal).await.unwrap(),
        want
    );
    // One secret hash belongs to one key, across agencies.
    let other = agency(&store, &mint, "Other").await;
    let dup = key_value(&other, None);
    assert_conflict(
        store
            .create_api_key(&other, &dup, &s1, &[], &record("api_key.create"))
            .await,
        "secret",
    );
    assert!(is_not_found(store.get_api_key(&other, &dup.id).await));

    // Rotation: both secrets work, the old one until the grace time.
    let t0 = now();
    let grace = t0 + 60_000;
    let s2 = secret();
    let rotated = store
        .rotate_api_key(&t, &k.id, &s2, grace, t0, &record("api_key.rotate"))
        .await
        .unwrap();
    assert_eq!((rotated.rotated_at, rotated.revoked_at), (Some(t0), None));
    let old = key_by_secret(&store, &s1.hash).await.unwrap().unwrap();
    assert_eq!((&old.key, old.valid_until), (&k.id, Some(grace)));
    let new = key_by_secret(&store, &s2.hash).await.unwrap().unwrap();
    assert_eq!((&new.key, new.valid_until), (&k.id, None));
    // Rotating again after the grace drops the expired secret and caps the current one.
    let t1 = grace + 1;
    let s3 = secret();
    store
        .rotate_api_key(&t, &k.id, &s3, t1 + 60_000, t1, &record("api_key.rotate"))
        .await
        .unwrap();
    assert_eq!(key_by_secret(&store, &s1.hash).await.unwrap(), None);
    assert_eq!(
        key_by_secret(&store, &s2.hash)
            .await
            .unwrap()
            .unwrap()
            .valid_until,
        Some(t1 + 60_000)
    );
    assert_eq!(
        key_by_secret(&store, &s3.hash)
            .await
            .unwrap()
            .unwrap()
            .valid_until,
        None
    );
    // A later grace never extends an earlier one.
    let s4 = secret();
    store
        .rotate_api_key(
            &t,
            &k.id,
            &s4,
            t1 + 120_000,
            t1 + 1,
            &record("api_key.rotate"),
        )
        .await
        .unwrap();
    assert_eq!(
        key_by_secret(&store, &s2.hash)
            .await
            .unwrap()
            .unwrap()
            .valid_until,
        Some(t1 + 60_000)
    );
    assert_eq!(
        key_by_secret(&store, &s3.hash)
            .await
            .unwrap()
            .unwrap()
            .valid_until,
        Some(t1 + 120_000)
    );
    assert!(is_not_found(
        store
            .rotate_api_key(
                &t,
                &KeyId::generate(),
                &secret(),
                grace,
                t1,
                &record("api_key.rotate")
            )
            .await
    ));

    // Revocation: every secret stops at once, the bindings go, the key stays visible.
    let events = chain(&store, &t).await.len();
    let at = t1 + 2;
    let revoked = store
        .revoke_api_key(&t, &k.id, at, &record("api_key.revoke"))
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(at));
    for s in [&s1, &s2, &s3, &s4] {
        assert_eq!(key_by_secret(&store, &s.hash).await.unwrap(), None);
    }
    assert!(store
        .principal_bindings(&t, &principal)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.get_api_key(&t, &k.id).await.unwrap(), revoked);
    assert_eq!(
        store.list_api_keys(&t, &all()).await.unwrap().items,
        vec![revoked.clone()]
    );
    assert_eq!(chain(&store, &t).await.len(), events + 1);
    // Revoking again changes nothing (and audits nothing); a revoked key cannot be rotated.
    let again = store
        .revoke_api_key(&t, &k.id, at + 5, &record("api_key.revoke"))
        .await
        .unwrap();
    assert_eq!(again.revoked_at, Some(at));
    assert_eq!(chain(&store, &t).await.len(), events + 1);
    let s5 = secret();
    assert!(is_not_found(
        store
            .rotate_api_key(&t, &k.id, &s5, at + 10, at + 6, &record("api_key.rotate"))
            .await
    ));
    assert_eq!(key_by_secret(&store, &s5.hash).await.unwrap(), None);
    assert!(is_not_found(
        store
            .revoke_api_key(&t, &KeyId::generate(), at, &record("api_key.revoke"))
            .await
    ));
}

async fn case_touch_api_keys(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
    let (k1, _, _) = key(&store, &t, None, &[]).await;
    let (k2, _, _) = key(&store, &t, None, &[]).await;
    let (k3, _, _) = key(&store, &other, None, &[]).await;
    let rev = store.revision().await.unwrap();
    let events = (
        chain(&store, &t).await.len(),
        chain(&store, &other).await.len(),
    );
    let t0 = now();

    store.touch_api_keys(&[]).await.unwrap();
    store
        .touch_api_keys(&[
            (t.clone(), k1.id.clone(), t0),
            (other.clone(), k3.id.clone(), t0 + 7),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.get_api_key(&t, &k1.id).await.unwrap().last_used_at,
        Some(t0)
    );
    assert_eq!(
        store.get_api_key(&t, &k2.id).await.unwrap().last_used_at,
        None
    );
    assert_eq!(
        store
            .get_api_key(&other, &k3.id)
            .await
            .unwrap()
            .last_used_at,
        Some(t0 + 7)
    );
    // Never backwards, also within one batch.
    store
        .touch_api_keys(&[(t.clone(), k1.id.clone(), t0 - 1000)])
        .await
        .unwrap();
    assert_eq!(
        store.get_api_key(&t, &k1.id).await.unwrap().last_used_at,
        Some(t0)
    );
    store
        .touch_api_keys(&[
            (t.clone(), k1.id.clone(), t0 + 50),
            (t.clone(), k1.id.clone(), t0 + 20),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.get_api_key(&t, &k1.id).await.unwrap().last_used_at,
        Some(t0 + 50)
    );
    // A key under the wrong agency is not touched, and an unknown key is no error.
    store
        .touch_api_keys(&[
            (t.clone(), k3.id.clone(), t0 + 100),
            (t.clone(), KeyId::generate(), t0),
        ])
        .await
        .unwrap();
    assert_eq!(
        store
            .get_api_key(&other, &k3.id)
            .await
            .unwrap()
            .last_used_at,
        Some(t0 + 7)
    );
    // Bookkeeping only: no revision, no audit event.
    assert_eq!(store.revision().await.unwrap(), rev);
    assert_eq!(
        (
            chain(&store, &t).await.len(),
            chain(&store, &other).await.len()
        ),
        events
    );
}

/// A flush spanning more agencies than one transaction carries (256): every key is written,
/// each under its own agency, across the transaction boundaries.
async fn case_touch_many_agencies(store: Arc<dyn Store>, mint: ScopeMint) {
    let mut keys = Vec::new();
    for i in 0..300 {
        let t = agency(&store, &mint, &format!("Busy {i}")).await;
        let (k, _, _) = key(&store, &t, None, &[]).await;
        keys.push((t, k));
    }
    let t0 = now();
    let uses: Vec<(TenantScope, KeyId, i64)> = keys
        .iter()
        .enumerate()
        .map(|(i, (t, k))| (t.clone(), k.id.clone(), t0 + i64::try_from(i).unwrap()))
        .collect();
    store.touch_api_keys(&uses).await.unwrap();
    for (i, (t, k)) in keys.iter().enumerate() {
        assert_eq!(
            store.get_api_key(t, &k.id).await.unwrap().last_used_at,
            Some(t0 + i64::try_from(i).unwrap()),
            "key {i}"
        );
    }
}
