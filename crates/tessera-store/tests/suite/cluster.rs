//! Cluster leases (`Cluster::acquire_lease` and friends): one holder at a time, renewals keep
//! the holder and its `acquired_at`, an expired lease goes to the next asker, racing askers
//! of a free lease produce exactly one winner, only the holder releases; platform changes
//! reach the change feed; and on PostgreSQL every change-log append is notified at commit.

use super::*;

use tessera_store::ChangeEvent;

cases! {
    case_lease_lifecycle => sqlite_lease_lifecycle, postgres_lease_lifecycle;
    case_lease_race => sqlite_lease_race, postgres_lease_race;
    case_platform_change => sqlite_platform_change, postgres_platform_change;
    case_change_signal => sqlite_change_signal, postgres_change_signal;
}

async fn case_lease_lifecycle(store: Arc<dyn Store>, _mint: ScopeMint) {
    let t0 = 1_000_000;
    assert_eq!(store.lease("jobs").await.unwrap(), None);
    assert!(store.acquire_lease("jobs", "a", t0, 1000).await.unwrap());
    // Another node cannot take a live lease, up to its last millisecond.
    assert!(!store
        .acquire_lease("jobs", "b", t0 + 999, 1000)
        .await
        .unwrap());
    let held = store.lease("jobs").await.unwrap().unwrap();
    assert_eq!(
        (held.holder.as_str(), held.acquired_at, held.expires_at),
        ("a", t0, t0 + 1000)
    );
    // A renewal extends it and keeps when it was taken.
    assert!(store
        .acquire_lease("jobs", "a", t0 + 500, 1000)
        .await
        .unwrap());
    let held = store.lease("jobs").await.unwrap().unwrap();
    assert_eq!(
        (held.holder.as_str(), held.acquired_at, held.expires_at),
        ("a", t0, t0 + 1500)
    );
    assert!(!store
        .acquire_lease("jobs", "b", t0 + 1499, 1000)
        .await
        .unwrap());
    // Leases are per name.
    assert!(store
        .acquire_lease("other", "b", t0 + 1499, 1000)
        .await
        .unwrap());
    // Expired: the next asker takes it, with its own `acquired_at`.
    assert!(store
        .acquire_lease("jobs", "b", t0 + 1500, 1000)
        .await
        .unwrap());
    let held = store.lease("jobs").await.unwrap().unwrap();
    assert_eq!(
        (held.holder.as_str(), held.acquired_at, held.expires_at),
        ("b", t0 + 1500, t0 + 2500)
    );
    assert!(!store
        .acquire_lease("jobs", "a", t0 + 1600, 1000)
        .await
        .unwrap());
    // Only the holder releases; then anyone takes it at once.
    assert!(!store.release_lease("jobs", "a").await.unwrap());
    assert!(store.release_lease("jobs", "b").await.unwrap());
    assert_eq!(store.lease("jobs").await.unwrap(), None);
    assert!(!store.release_lease("jobs", "b").await.unwrap());
    assert!(store
        .acquire_lease("jobs", "a", t0 + 1700, 1000)
        .await
        .unwrap());
    // The ttl is clamped: a zero or negative one still expires after at least 1 ms, a huge one
    // after at most an hour.
    assert!(store.acquire_lease("clamp", "a", t0, -5).await.unwrap());
    assert_eq!(
        store.lease("clamp").await.unwrap().unwrap().expires_at,
        t0 + 1
    );
    assert!(store
        .acquire_lease("clamp", "a", t0, i64::MAX)
        .await
        .unwrap());
    assert_eq!(
        store.lease("clamp").await.unwrap().unwrap().expires_at,
        t0 + 3_600_000
    );
}

async fn case_lease_race(store: Arc<dyn Store>, _mint: ScopeMint) {
    for round in 0..5 {
        let name = format!("race{round}");
        let mut tasks = Vec::new();
        for n in 0..8 {
            let (store, name) = (store.clone(), name.clone());
            tasks.push(tokio::spawn(async move {
                store
                    .acquire_lease(&name, &format!("node{n}"), 1_000, 10_000)
                    .await
                    .unwrap()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.unwrap());
        }
        assert_eq!(winners, 1, "round {round}");
        // The same once expired: every asker sees the same expired row, one wins.
        let mut tasks = Vec::new();
        for n in 0..8 {
            let (store, name) = (store.clone(), name.clone());
            tasks.push(tokio::spawn(async move {
                store
                    .acquire_lease(&name, &format!("late{n}"), 20_000, 10_000)
                    .await
                    .unwrap()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.unwrap());
        }
        assert_eq!(winners, 1, "round {round}, after expiry");
        assert!(store
            .lease(&name)
            .await
            .unwrap()
            .unwrap()
            .holder
            .starts_with("late"));
    }
}

async fn case_platform_change(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Platform-ish").await;
    let before = store.revision().await.unwrap();
    let rev = store
        .record_platform_change(&t, "signing_key", "kid_1", now())
        .await
        .unwrap();
    assert_eq!(rev, before + 1);
    let changes = store.changes_since(before, 10).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (
            changes[0].revision,
            changes[0].kind.as_str(),
            changes[0].entity.as_str()
        ),
        (rev, "signing_key", "kid_1")
    );
    assert_eq!(&changes[0].agency, t.agency());
    // Not a revocation: the revocation feed does not serve it.
    assert!(store
        .revocations_since(None, before, 0, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn case_change_signal(store: Arc<dyn Store>, mint: ScopeMint) {
    let Some(mut signal) = store.change_signal() else {
        assert_eq!(
            store.backend(),
            "sqlite",
            "only SQLite has no change signal"
        );
        return;
    };
    let wait = std::time::Duration::from_secs(5);
    assert_eq!(
        tokio::time::timeout(wait, signal.recv()).await.unwrap(),
        Some(ChangeEvent::Connected)
    );
    // Nothing written, nothing notified.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), signal.recv())
            .await
            .is_err()
    );
    // A write that appends to the change log notifies once it commits.
    let t = agency(&store, &mint, "Acme").await;
    assert_eq!(
        tokio::time::timeout(wait, signal.recv()).await.unwrap(),
        Some(ChangeEvent::Notified)
    );
    while signal.try_recv().is_some() {}
    store
        .record_platform_change(&t, "signing_key", "kid_2", now())
        .await
        .unwrap();
    assert_eq!(
        tokio::time::timeout(wait, signal.recv()).await.unwrap(),
        Some(ChangeEvent::Notified)
    );
    // A write that does not touch the change log (a lease) notifies nothing.
    while signal.try_recv().is_some() {}
    assert!(store.acquire_lease("quiet", "a", 1, 1000).await.unwrap());
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), signal.recv())
            .await
            .is_err()
    );
}
