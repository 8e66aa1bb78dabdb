//! Per-person keys (`SecretStore::person_key` and friends): insert-if-absent (the first row
//! wins, racing inserts keep one), erasure leaves a tombstone no insert replaces, erasing is
//! idempotent and also tombstones a subject that had no key, rows are the agency's alone, and a
//! deleted agency's rows go with it and never come back.

use super::*;

cases! {
    case_person_keys => sqlite_person_keys, postgres_person_keys;
    case_person_key_race => sqlite_person_key_race, postgres_person_key_race;
}

async fn case_person_keys(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "Acme").await;
    let b = agency(&store, &mint, "Other").await;
    assert_eq!(store.person_key(&a, "usr_alice").await.unwrap(), None);

    // Insert-if-absent: the first row stays.
    assert!(store.person_key(&a, "usr_alice").await.unwrap().is_none());
    assert!(store
        .insert_person_key(&a, "usr_alice", b"first", now())
        .await
        .unwrap());
    assert!(!store
        .insert_person_key(&a, "usr_alice", b"second", now())
        .await
        .unwrap());
    assert_eq!(
        store.person_key(&a, "usr_alice").await.unwrap(),
        Some(Some(b"first".to_vec()))
    );
    assert!(store
        .insert_person_key(&a, "usr_bob", b"bob", now())
        .await
        .unwrap());

    // Another agency sees nothing of A's rows, and erasing there does not touch them.
    assert_eq!(store.person_key(&b, "usr_alice").await.unwrap(), None);
    assert!(!store
        .erase_person_key(&b, "usr_alice", now())
        .await
        .unwrap());
    assert_eq!(
        store.person_key(&a, "usr_alice").await.unwrap(),
        Some(Some(b"first".to_vec()))
    );

    // Erasure: the key goes, a tombstone stays, no insert replaces it; idempotent.
    assert!(store
        .erase_person_key(&a, "usr_alice", now())
        .await
        .unwrap());
    assert_eq!(store.person_key(&a, "usr_alice").await.unwrap(), Some(None));
    assert!(!store
        .erase_person_key(&a, "usr_alice", now())
        .await
        .unwrap());
    assert!(!store
        .insert_person_key(&a, "usr_alice", b"again", now())
        .await
        .unwrap());
    assert_eq!(store.person_key(&a, "usr_alice").await.unwrap(), Some(None));
    // B's person is untouched.
    assert_eq!(
        store.person_key(&a, "usr_bob").await.unwrap(),
        Some(Some(b"bob".to_vec()))
    );

    // Erasing a subject that never had a key tombstones it too.
    assert!(!store
        .erase_person_key(&a, "usr_never", now())
        .await
        .unwrap());
    assert_eq!(store.person_key(&a, "usr_never").await.unwrap(), Some(None));
    assert!(!store
        .insert_person_key(&a, "usr_never", b"k", now())
        .await
        .unwrap());

    // A deleted agency's rows are gone and never come back.
    store
        .delete_agency(a.agency(), now(), &record("agency.delete"))
        .await
        .unwrap();
    assert_eq!(store.person_key(&a, "usr_bob").await.unwrap(), None);
    assert!(!store
        .insert_person_key(&a, "usr_carol", b"k", now())
        .await
        .unwrap());
    assert_eq!(store.person_key(&a, "usr_carol").await.unwrap(), None);
}

async fn case_person_key_race(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "Race").await;
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let store = store.clone();
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            store
                .insert_person_key(&a, "usr_same", &[i; 4], now())
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one insert wins");
    let kept = store
        .person_key(&a, "usr_same")
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(kept.len(), 4);
}
