//! Issue 12's storage: audit keys (compare-and-set, unique generation), checkpoints (one per
//! (agency, seq), tenant-isolated), the due scan across agencies, retention and pruning.

use super::*;
use tessera_store::{AuditCheckpoint, AuditKeyRow};

cases! {
    case_audit_keys_compare_and_set => sqlite_audit_keys_compare_and_set, postgres_audit_keys_compare_and_set;
    case_checkpoints_once_per_seq_and_isolated => sqlite_checkpoints_once_per_seq_and_isolated, postgres_checkpoints_once_per_seq_and_isolated;
    case_prune_up_to_a_checkpoint => sqlite_prune_up_to_a_checkpoint, postgres_prune_up_to_a_checkpoint;
    case_checkpoint_basis => sqlite_checkpoint_basis, postgres_checkpoint_basis;
    case_checkpoints_in_one_transaction => sqlite_checkpoints_in_one_transaction, postgres_checkpoints_in_one_transaction;
    case_due_marks => sqlite_due_marks, postgres_due_marks;
}

fn due_of(due: &[tessera_store::AuditCheckpointDue], t: &TenantScope) -> Option<(i64, i64)> {
    due.iter()
        .find(|d| &d.agency_id == t.agency())
        .map(|d| (d.head_seq, d.checkpoint_seq))
}

/// The due list the append path keeps: an agency is due from its first event after its last
/// checkpoint (by time: that event's time, not the checkpoint's), stops being due when a
/// checkpoint of its head is stored, and stays due when events followed the checkpointed one
/// (from the checkpoint's time). Pages by agency over the marked heads only.
async fn case_due_marks(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    let created = store.audit_chain(&a, 0, 1).await.unwrap()[0].at;
    let due = |before: i64| {
        let store = store.clone();
        async move {
            store
                .audit_checkpoints_due(1000, before, false, None, 100)
                .await
                .unwrap()
        }
    };
    // The creation event marks the head from its own time.
    assert_eq!(
        due_of(&due(created - 1).await, &a),
        None,
        "not yet: the event is at {created}"
    );
    assert_eq!(due_of(&due(created).await, &a), Some((1, 0)));
    // A checkpoint of the head clears the mark: not due however late.
    store
        .insert_audit_checkpoint(&a, &cp(&a, 1, created + 10))
        .await
        .unwrap();
    assert_eq!(due_of(&due(i64::MAX).await, &a), None);
    // The next event marks it again, from that event's time, not the checkpoint's.
    store
        .append_audit(
            &a,
            &AuditRecord {
                at: 1_000,
                ..record("account.create")
            },
        )
        .await
        .unwrap();
    store
        .append_audit(
            &a,
            &AuditRecord {
                at: 2_000,
                ..record("account.update")
            },
        )
        .await
        .unwrap();
    assert_eq!(due_of(&due(999).await, &a), None);
    assert_eq!(due_of(&due(1_000).await, &a), Some((3, 1)));
    let marked = store
        .audit_checkpoints_due(1000, 1_000, false, None, 100)
        .await
        .unwrap();
    let a_due = marked
        .iter()
        .find(|d| &d.agency_id == a.agency())
        .map(|d| d.pending_since);
    assert_eq!(
        a_due,
        Some(Some(1_000)),
        "marked at the first event after the checkpoint"
    );
    let swept = store
        .audit_checkpoints_due(1000, 1_000, true, None, 100)
        .await
        .unwrap();
    assert_eq!(
        due_of(&swept, &a),
        Some((3, 1)),
        "a sweep finds the marked heads too"
    );
    // By count: 2 events since the checkpoint.
    let by_count = store
        .audit_checkpoints_due(2, 0, false, None, 100)
        .await
        .unwrap();
    assert_eq!(due_of(&by_count, &a), Some((3, 1)));
    assert_eq!(
        due_of(
            &store
                .audit_checkpoints_due(3, 0, false, None, 100)
                .await
                .unwrap(),
            &a
        ),
        None
    );
    // A checkpoint of an earlier seq (events came after it was read): still due, from its time.
    store
        .insert_audit_checkpoint(&a, &cp(&a, 2, 5_000))
        .await
        .unwrap();
    assert_eq!(due_of(&due(4_999).await, &a), None);
    assert_eq!(due_of(&due(5_000).await, &a), Some((3, 2)));
    // Paging over the marked heads: B (never checkpointed) and A, in agency order.
    let mut seen = Vec::new();
    let mut after: Option<AgencyId> = None;
    loop {
        let page = store
            .audit_checkpoints_due(1000, i64::MAX, false, after.as_ref(), 1)
            .await
            .unwrap();
        let Some(d) = page.last() else { break };
        seen.push(d.agency_id.clone());
        after = Some(d.agency_id.clone());
    }
    for t in [&a, &b] {
        assert_eq!(
            seen.iter().filter(|x| *x == t.agency()).count(),
            1,
            "each due agency on one page"
        );
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in agency order");
    // Once checkpointed at the head, the last mark goes: stored with a checkpoint (A), or
    // recorded for a checkpoint found already stored (B).
    store
        .insert_audit_checkpoints(&[(a.clone(), cp(&a, 3, 6_000))])
        .await
        .unwrap();
    assert_eq!(due_of(&due(i64::MAX).await, &b), Some((1, 0)));
    store
        .audit_checkpointed(&[(b.clone(), 1, 6_000)])
        .await
        .unwrap();
    let due = due(i64::MAX).await;
    assert_eq!((due_of(&due, &a), due_of(&due, &b)), (None, None));
}

/// Several agencies' checkpoints in one call: each lands under its own agency (and moves its
/// chain head's `checkpoint_seq`), a repeat is not new, and a checkpoint under another agency's scope
/// refuses the whole batch.
async fn case_checkpoints_in_one_transaction(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    let c = agency(&store, &mint, "C").await;
    let batch = vec![
        (a.clone(), cp(&a, 1, 5)),
        (b.clone(), cp(&b, 1, 6)),
        (c.clone(), cp(&c, 1, 7)),
    ];
    assert_eq!(store.insert_audit_checkpoints(&batch).await.unwrap(), 3);
    assert_eq!(
        store.insert_audit_checkpoints(&batch).await.unwrap(),
        0,
        "once per (agency, seq)"
    );
    assert_eq!(store.insert_audit_checkpoints(&[]).await.unwrap(), 0);
    for (t, want) in [(&a, cp(&a, 1, 5)), (&b, cp(&b, 1, 6)), (&c, cp(&c, 1, 7))] {
        assert_eq!(store.audit_checkpoints(t, 0, 10).await.unwrap(), [want]);
    }
    // None of them is due any more (each head is at its checkpoint).
    let due = store
        .audit_checkpoints_due(1, 1_000, false, None, 100)
        .await
        .unwrap();
    assert!(!due
        .iter()
        .any(|d| [a.agency(), b.agency(), c.agency()].contains(&&d.agency_id)));
    // A's checkpoint under B's scope: refused, and nothing of the batch is stored.
    store
        .append_audit(&a, &record("account.update"))
        .await
        .unwrap();
    store
        .append_audit(&c, &record("account.update"))
        .await
        .unwrap();
    let bad = vec![(c.clone(), cp(&c, 2, 8)), (b.clone(), cp(&a, 2, 8))];
    assert!(store.insert_audit_checkpoints(&bad).await.is_err());
    assert_eq!(store.audit_checkpoints(&c, 1, 10).await.unwrap(), []);
    assert_eq!(store.audit_checkpoints(&a, 1, 10).await.unwrap(), []);
}

/// The checkpointer's one read: head, newest checkpoint at or before it, the events after it
/// (at most the limit), each only of the scope's agency.
async fn case_checkpoint_basis(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    for _ in 0..4 {
        store
            .append_audit(&a, &record("account.update"))
            .await
            .unwrap();
    }
    let chain_a = chain(&store, &a).await;
    let basis = store
        .audit_checkpoint_basis(&a, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(basis.head, store.audit_head(&a).await.unwrap().unwrap());
    assert_eq!(basis.checkpoint, None);
    assert_eq!(basis.events, chain_a);
    assert_eq!(basis.events.last().map(|e| e.hash), Some(basis.head.hash));
    // After a checkpoint at 2: the events from 3 on, at most the limit.
    assert!(store
        .insert_audit_checkpoint(&a, &cp(&a, 2, 5))
        .await
        .unwrap());
    let basis = store.audit_checkpoint_basis(&a, 2).await.unwrap().unwrap();
    assert_eq!(basis.checkpoint, Some(cp(&a, 2, 5)));
    assert_eq!(
        basis.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [3, 4]
    );
    // At the head: no events to read.
    let head = basis.head.seq;
    assert!(store
        .insert_audit_checkpoint(&a, &cp(&a, head, 6))
        .await
        .unwrap());
    let basis = store
        .audit_checkpoint_basis(&a, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(basis.checkpoint.map(|c| c.seq), Some(head));
    assert!(basis.events.is_empty());
    // A checkpoint past the head (no such event: a row written by hand) is not the basis.
    assert!(store
        .insert_audit_checkpoint(&a, &cp(&a, head + 10, 7))
        .await
        .unwrap());
    let basis = store
        .audit_checkpoint_basis(&a, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(basis.checkpoint, Some(cp(&a, head, 6)));
    // B's basis holds B's chain only.
    let basis_b = store
        .audit_checkpoint_basis(&b, 100)
        .await
        .unwrap()
        .unwrap();
    assert!(basis_b.events.iter().all(|e| &e.agency_id == b.agency()));
    assert_eq!(basis_b.events, chain(&store, &b).await);
}

fn key_row(kid: &str, generation: i64) -> AuditKeyRow {
    AuditKeyRow {
        kid: kid.into(),
        generation,
        state: "pending".into(),
        created_at: 1,
        activates_at: 2,
        retires_at: None,
        public_key: vec![7; 32],
        sealed_private: vec![1, 2, 3],
    }
}

async fn case_audit_keys_compare_and_set(store: Arc<dyn Store>, _mint: ScopeMint) {
    store.insert_audit_key(&key_row("a1", 1)).await.unwrap();
    // Two nodes creating the same generation: one wins.
    assert_conflict(
        store.insert_audit_key(&key_row("a1-other", 1)).await,
        "generation",
    );
    assert!(store
        .update_audit_key("a1", "pending", "active", None, None)
        .await
        .unwrap());
    assert!(!store
        .update_audit_key("a1", "pending", "active", None, None)
        .await
        .unwrap());
    assert!(store
        .update_audit_key("a1", "active", "retired", Some(9), Some(&[]))
        .await
        .unwrap());
    let keys = store.audit_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (
            keys[0].state.as_str(),
            keys[0].retires_at,
            keys[0].sealed_private.as_slice()
        ),
        ("retired", Some(9), &[][..])
    );
    assert!(!format!("{:?}", keys[0]).contains("[1, 2, 3]"));
}

fn cp(t: &TenantScope, seq: i64, at: i64) -> AuditCheckpoint {
    AuditCheckpoint {
        agency_id: t.agency().clone(),
        seq,
        hash: ChainHash([seq as u8; 32]),
        at,
        kid: "k".into(),
        signature: vec![seq as u8; 64],
    }
}

async fn case_checkpoints_once_per_seq_and_isolated(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    // Both due: they have events and no checkpoint.
    let due = store
        .audit_checkpoints_due(1000, i64::MAX, false, None, 100)
        .await
        .unwrap();
    assert!(due
        .iter()
        .any(|d| &d.agency_id == a.agency() && d.head_seq == 1 && d.checkpoint_seq == 0));
    assert!(store
        .insert_audit_checkpoint(&a, &cp(&a, 1, 5))
        .await
        .unwrap());
    let mut again = cp(&a, 1, 6);
    again.signature = vec![0; 64];
    assert!(
        !store.insert_audit_checkpoint(&a, &again).await.unwrap(),
        "one per (agency, seq)"
    );
    assert_eq!(
        store.audit_checkpoints(&a, 0, 10).await.unwrap(),
        [cp(&a, 1, 5)]
    );
    // B sees none of A's; a scope cannot write another agency's checkpoint.
    assert_eq!(store.audit_checkpoints(&b, 0, 10).await.unwrap(), []);
    assert!(store
        .insert_audit_checkpoint(&b, &cp(&a, 2, 5))
        .await
        .is_err());
    // A is no longer due (head 1 = checkpoint 1); B still is; time makes A due only with new events.
    let due = store
        .audit_checkpoints_due(1000, i64::MAX, false, None, 100)
        .await
        .unwrap();
    assert!(!due.iter().any(|d| &d.agency_id == a.agency()));
    assert!(due.iter().any(|d| &d.agency_id == b.agency()));
    store
        .append_audit(
            &a,
            &AuditRecord {
                at: 5,
                ..record("account.create")
            },
        )
        .await
        .unwrap();
    let due = store
        .audit_checkpoints_due(1000, 4, false, None, 100)
        .await
        .unwrap();
    assert!(
        !due.iter().any(|d| &d.agency_id == a.agency()),
        "neither 1000 events nor an event at or before 4"
    );
    let due = store
        .audit_checkpoints_due(1, 4, false, None, 100)
        .await
        .unwrap();
    assert!(due
        .iter()
        .any(|d| &d.agency_id == a.agency() && d.head_seq == 2 && d.checkpoint_seq == 1));
    let due = store
        .audit_checkpoints_due(1000, 5, false, None, 100)
        .await
        .unwrap();
    assert!(
        due.iter().any(|d| &d.agency_id == a.agency()),
        "the event at 5 is old enough"
    );
    assert_eq!(store.audit_head(&a).await.unwrap().unwrap().seq, 2);
    assert_eq!(
        store
            .audit_checkpoint_at_or_before(&a, 1)
            .await
            .unwrap()
            .map(|c| c.seq),
        Some(1)
    );
    assert_eq!(
        store.audit_checkpoint_at_or_before(&a, 0).await.unwrap(),
        None
    );
}

async fn case_prune_up_to_a_checkpoint(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    for _ in 0..4 {
        store
            .append_audit(&a, &record("account.create"))
            .await
            .unwrap();
    }
    // Nothing to prune without a checkpoint older than the cutoff.
    assert_eq!(
        store
            .prune_audit(&a, 100, &record("audit.prune"))
            .await
            .unwrap(),
        None
    );
    let events = chain(&store, &a).await;
    let mut c3 = cp(&a, 3, 50);
    c3.hash = events[2].hash;
    store
        .insert_audit_checkpoint(&a, &cp(&a, 2, 40))
        .await
        .unwrap();
    store.insert_audit_checkpoint(&a, &c3).await.unwrap();
    store
        .insert_audit_checkpoint(&a, &cp(&a, 5, 500))
        .await
        .unwrap();
    let p = store
        .prune_audit(&a, 100, &record("audit.prune"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((p.through_seq, p.events), (3, 3));
    let left = chain(&store, &a).await;
    assert_eq!(left.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5, 6]);
    assert_eq!(
        left[0].prev_hash, c3.hash,
        "the kept checkpoint anchors the rest"
    );
    assert_eq!(left[2].action, "audit.prune");
    assert_eq!(left[2].detail["through_seq"], 3);
    assert_eq!(left[2].detail["checkpoint_hash"], c3.hash.to_hex());
    assert_eq!(verify_chain(c3.hash, 3, &left), Ok(left[2].hash));
    let cps: Vec<i64> = store
        .audit_checkpoints(&a, 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(cps, [3, 5]);
    assert_eq!(
        store
            .prune_audit(&a, 100, &record("audit.prune"))
            .await
            .unwrap(),
        None
    );
    // Retention override and its scan.
    store
        .set_audit_retention(&a, Some(120), "usr_x", 1, &record("audit.retention_set"))
        .await
        .unwrap();
    assert_eq!(store.audit_retention(&a).await.unwrap(), Some(120));
    let all = store.audit_retention_all(None, 1000).await.unwrap();
    assert!(all.contains(&(a.agency().clone(), Some(120))));
    store
        .set_audit_retention(&a, None, "usr_x", 2, &record("audit.retention_set"))
        .await
        .unwrap();
    assert_eq!(store.audit_retention(&a).await.unwrap(), None);
}
