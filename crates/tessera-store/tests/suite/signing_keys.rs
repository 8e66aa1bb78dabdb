//! The token-signing key ring: global rows, compare-and-set writes, bytewise ordering, and a
//! `Debug` that hides the sealed key.

use super::*;

cases! {
    case_signing_keys_insert_and_list => sqlite_signing_keys_insert_and_list, postgres_signing_keys_insert_and_list;
    case_signing_key_duplicate_kid => sqlite_signing_key_duplicate_kid, postgres_signing_key_duplicate_kid;
    case_signing_key_compare_and_set => sqlite_signing_key_compare_and_set, postgres_signing_key_compare_and_set;
    case_signing_key_concurrent_compare_and_set => sqlite_signing_key_concurrent_compare_and_set, postgres_signing_key_concurrent_compare_and_set;
    case_signing_key_delete => sqlite_signing_key_delete, postgres_signing_key_delete;
    case_signing_key_debug_hides_sealed_key => sqlite_signing_key_debug_hides_sealed_key, postgres_signing_key_debug_hides_sealed_key;
}

/// The stored row of `kid`.
async fn stored_key(store: &Arc<dyn Store>, kid: &str) -> Option<SigningKeyRow> {
    store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.kid == kid)
}

async fn case_signing_keys_insert_and_list(store: Arc<dyn Store>, _mint: ScopeMint) {
    assert_eq!(store.signing_keys().await.unwrap(), []);
    let t0 = 1_700_000_000;
    // Kids differing in case: the order is bytewise on both backends ("B" < "a").
    let mut retiring = signing_key_value("m", "retiring", t0 + 200);
    retiring.retires_at = Some(t0 + 250);
    retiring.expires_at = Some(t0 + 3_850);
    let mut retired = signing_key_value("0", "retired", t0 + 300);
    retired.retires_at = Some(t0 + 310);
    retired.expires_at = Some(t0 + 320);
    retired.sealed_private = Vec::new();
    let rows = [
        retiring,
        signing_key_value("z", "active", t0 + 100),
        retired,
        signing_key_value("a", "pending", t0 + 100),
        signing_key_value("B", "pending", t0 + 100),
    ];
    for r in &rows {
        store.insert_signing_key(r).await.unwrap();
    }
    let listed = store.signing_keys().await.unwrap();
    let kids: Vec<&str> = listed.iter().map(|r| r.kid.as_str()).collect();
    assert_eq!(kids, ["B", "a", "z", "m", "0"]);
    // Every field round-trips, the optional ones and an empty sealed key included.
    let want = sorted(rows.to_vec(), |r| (r.created_at, r.kid.clone()));
    assert_eq!(listed, want);
    // Global: no tenant sees or changes anything of it, and it bumps no revision.
    assert_eq!(store.revision().await.unwrap(), 0);
}

async fn case_signing_key_duplicate_kid(store: Arc<dyn Store>, _mint: ScopeMint) {
    let first = signing_key(&store, "dup", "active").await;
    let mut second = signing_key_value("dup", "pending", 1_800_000_000);
    second.alg = "ES256".into();
    assert_conflict(store.insert_signing_key(&second).await, "kid");
    // The stored key is untouched.
    assert_eq!(store.signing_keys().await.unwrap(), [first]);
}

async fn case_signing_key_compare_and_set(store: Arc<dyn Store>, _mint: ScopeMint) {
    let k = signing_key(&store, "k1", "pending").await;
    let other = signing_key(&store, "k2", "active").await;

    // From a state it is not in: false, nothing changes.
    assert!(!store
        .update_signing_key("k1", &["active"], "retiring", Some(1), Some(2), Some(&[]))
        .await
        .unwrap());
    assert!(!store
        .update_signing_key("k1", &["retiring", "retired"], "retired", None, None, None)
        .await
        .unwrap());
    // No expected state matches nothing; a missing key is not an error.
    assert!(!store
        .update_signing_key("k1", &[], "active", None, None, None)
        .await
        .unwrap());
    assert!(!store
        .update_signing_key("missing", &["pending"], "active", None, None, None)
        .await
        .unwrap());
    assert_eq!(
        store.signing_keys().await.unwrap(),
        [k.clone(), other.clone()]
    );

    // Activate: pending → active. Only the state changes.
    assert!(store
        .update_signing_key("k1", &["pending"], "active", None, None, None)
        .await
        .unwrap());
    let active = SigningKeyRow {
        state: "active".into(),
        ..k.clone()
    };
    assert_eq!(stored_key(&store, "k1").await.unwrap(), active);
    // Applying the same transition again (another node, later) loses.
    assert!(!store
        .update_signing_key("k1", &["pending"], "active", None, None, None)
        .await
        .unwrap());

    // Begin retiring, from either of two expected states: the times are set.
    assert!(store
        .update_signing_key(
            "k1",
            &["active", "pending"],
            "retiring",
            Some(1_700_000_500),
            Some(1_700_004_100),
            None
        )
        .await
        .unwrap());
    let retiring = SigningKeyRow {
        state: "retiring".into(),
        retires_at: Some(1_700_000_500),
        expires_at: Some(1_700_004_100),
        ..k.clone()
    };
    assert_eq!(stored_key(&store, "k1").await.unwrap(), retiring);

    // Retire: the sealed key is wiped; `None` times leave the stored ones.
    assert!(store
        .update_signing_key("k1", &["retiring"], "retired", None, None, Some(&[]))
        .await
        .unwrap());
    let retired = SigningKeyRow {
        state: "retired".into(),
        sealed_private: Vec::new(),
        ..retiring
    };
    assert_eq!(stored_key(&store, "k1").await.unwrap(), retired);

    // `Some` sealed key replaces it.
    assert!(store
        .update_signing_key("k2", &["active"], "active", None, None, Some(&[7, 7, 7]))
        .await
        .unwrap());
    assert_eq!(
        stored_key(&store, "k2").await.unwrap().sealed_private,
        [7, 7, 7]
    );
    // The other key changed only there, and the list still holds both.
    assert_eq!(
        store.signing_keys().await.unwrap(),
        [
            retired,
            SigningKeyRow {
                sealed_private: vec![7, 7, 7],
                ..other
            }
        ]
    );
    assert_eq!(store.revision().await.unwrap(), 0);
}

/// Ten nodes apply the same transition at once: exactly one wins, and the row holds its write.
async fn case_signing_key_concurrent_compare_and_set(store: Arc<dyn Store>, _mint: ScopeMint) {
    const N: usize = 10;
    signing_key(&store, "race", "pending").await;

    async fn race<F, Fut>(f: F) -> Vec<usize>
    where
        F: Fn(usize) -> Fut,
        Fut: std::future::Future<Output = bool> + Send + 'static,
    {
        let barrier = Arc::new(tokio::sync::Barrier::new(N));
        let tasks: Vec<_> = (0..N)
            .map(|i| {
                let (barrier, fut) = (barrier.clone(), f(i));
                tokio::spawn(async move {
                    barrier.wait().await;
                    fut.await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            if task.await.unwrap() {
                winners.push(i);
            }
        }
        winners
    }

    // Activate.
    let winners = race(|_| {
        let store = store.clone();
        async move {
            store
                .update_signing_key("race", &["pending"], "active", None, None, None)
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(stored_key(&store, "race").await.unwrap().state, "active");

    // Begin retiring, each node with its own times and sealed key: the row is the winner's.
    let winners = race(|i| {
        let store = store.clone();
        let i64_i = i64::try_from(i).unwrap();
        let sealed = vec![u8::try_from(i).unwrap(); 4];
        async move {
            store
                .update_signing_key(
                    "race",
                    &["active", "pending"],
                    "retiring",
                    Some(1_000 + i64_i),
                    Some(2_000 + i64_i),
                    Some(&sealed),
                )
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let w = winners[0];
    let row = stored_key(&store, "race").await.unwrap();
    let w64 = i64::try_from(w).unwrap();
    assert_eq!(row.state, "retiring");
    assert_eq!(
        (row.retires_at, row.expires_at),
        (Some(1_000 + w64), Some(2_000 + w64))
    );
    assert_eq!(row.sealed_private, vec![u8::try_from(w).unwrap(); 4]);

    // Drop.
    store
        .update_signing_key("race", &["retiring"], "retired", None, None, Some(&[]))
        .await
        .unwrap();
    let winners = race(|_| {
        let store = store.clone();
        async move {
            store
                .delete_signing_key("race", &["retired", "pending"])
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(store.signing_keys().await.unwrap(), []);
}

async fn case_signing_key_delete(store: Arc<dyn Store>, _mint: ScopeMint) {
    let k = signing_key(&store, "gone", "retired").await;
    let kept = signing_key(&store, "kept", "active").await;
    // From a state it is not in, with no expected state, or a missing key: false, nothing changes.
    assert!(!store
        .delete_signing_key("gone", &["pending"])
        .await
        .unwrap());
    assert!(!store.delete_signing_key("gone", &[]).await.unwrap());
    assert!(!store
        .delete_signing_key("missing", &["retired"])
        .await
        .unwrap());
    assert_eq!(
        store.signing_keys().await.unwrap(),
        [k.clone(), kept.clone()]
    );
    assert!(store
        .delete_signing_key("gone", &["retired", "pending"])
        .await
        .unwrap());
    assert_eq!(store.signing_keys().await.unwrap(), [kept]);
    // Once gone, again is false.
    assert!(!store
        .delete_signing_key("gone", &["retired", "pending"])
        .await
        .unwrap());
    // The kid is free again.
    store.insert_signing_key(&k).await.unwrap();
    assert!(stored_key(&store, "gone").await.is_some());
}

async fn case_signing_key_debug_hides_sealed_key(store: Arc<dyn Store>, _mint: ScopeMint) {
    let mut row = signing_key_value("dbg", "active", 1_700_000_000);
    row.sealed_private = vec![0xde, 0xad, 0xbe, 0xef, 0x13, 0x37];
    store.insert_signing_key(&row).await.unwrap();
    let stored = stored_key(&store, "dbg").await.unwrap();
    assert_eq!(stored.sealed_private, row.sealed_private);
    for text in [
        format!("{row:?}"),
        format!("{row:#?}"),
        format!("{stored:?}"),
        format!("{:?}", store.signing_keys().await.unwrap()),
    ] {
        assert!(text.contains("[sealed 6 bytes]"), "{text}");
        assert!(text.contains("dbg"), "{text}");
        for leak in ["222", "173", "190", "239", "0xde", "dead", "DEAD", "3q2+7"] {
            assert!(!text.contains(leak), "sealed bytes printed: {text}");
        }
    }
    let empty = SigningKeyRow {
        sealed_private: Vec::new(),
        ..row
    };
    assert!(format!("{empty:?}").contains("[sealed 0 bytes]"));
}
