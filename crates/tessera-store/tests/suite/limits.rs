//! Rate limits: an API key's own limit (stored, read back, kept across rotation), and an
//! agency's limit overrides (absent, set, replaced; per tenant; each write on the change log).

use std::collections::BTreeMap;

use tessera_store::{AgencyLimitsRecord, KeyRateLimit};

use super::*;

cases! {
    case_agency_limits => sqlite_agency_limits, postgres_agency_limits;
}

async fn case_agency_limits(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
    // A key's own limit survives a rotation.
    let mut k = key_value(&t, None);
    k.rate_limit = Some(KeyRateLimit {
        limit: 5,
        period_seconds: 60,
    });
    store
        .create_api_key(&t, &k, &secret(), &[], &record("api_key.create"))
        .await
        .unwrap();
    assert_eq!(store.get_api_key(&t, &k.id).await.unwrap(), k);
    let rotated = store
        .rotate_api_key(
            &t,
            &k.id,
            &secret(),
            now(),
            now(),
            &record("api_key.rotate"),
        )
        .await
        .unwrap();
    assert_eq!(rotated.rate_limit, k.rate_limit);

    assert_eq!(store.get_agency_limits(&t).await.unwrap(), None);
    let before = store.revision().await.unwrap();
    let mut overrides = BTreeMap::new();
    overrides.insert(
        "check".to_owned(),
        KeyRateLimit {
            limit: 100,
            period_seconds: 1,
        },
    );
    let l = AgencyLimitsRecord {
        plan: Some("standard".into()),
        overrides,
        updated_by: "usr_x".into(),
        updated_at: now(),
    };
    store
        .put_agency_limits(&t, &l, &record("agency.limits_update"))
        .await
        .unwrap();
    assert_eq!(store.get_agency_limits(&t).await.unwrap(), Some(l.clone()));
    // Another tenant sees none of it.
    assert_eq!(store.get_agency_limits(&other).await.unwrap(), None);
    // The write is on the change log (every node refreshes its cache).
    let changes = store.changes_since(before, 100).await.unwrap();
    assert!(changes.iter().any(|c| &c.agency == t.agency()));
    // Replaced whole.
    let l2 = AgencyLimitsRecord {
        plan: None,
        overrides: BTreeMap::new(),
        updated_by: "usr_y".into(),
        updated_at: now(),
    };
    store
        .put_agency_limits(&t, &l2, &record("agency.limits_update"))
        .await
        .unwrap();
    assert_eq!(store.get_agency_limits(&t).await.unwrap(), Some(l2));
}
