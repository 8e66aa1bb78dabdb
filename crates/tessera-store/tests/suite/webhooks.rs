//! Webhooks and their delivery queue: a webhook's cursor starts at its agency's audit head,
//! moves only by compare-and-set with the deliveries it passes (deterministic ids: a second
//! enqueue inserts nothing), claims never overlap and lapse with their lease, an attempt's
//! result is written only under its claim, redelivery and deletion, and tenant isolation.

use tessera_core::{MessageId, WebhookId};
use tessera_store::{AttemptResult, DeliveryState, NewDelivery, Redeliver, Webhook};

use super::*;

cases! {
    case_webhooks => sqlite_webhooks, postgres_webhooks;
    case_concurrent_claims => sqlite_concurrent_claims, postgres_concurrent_claims;
}

fn hook(t: &TenantScope) -> Webhook {
    Webhook {
        id: WebhookId::generate(),
        agency_id: t.agency().clone(),
        url: "https://siem.example.com/in".into(),
        events: vec!["*".into()],
        secret: vec![1, 2, 3],
        prev_secret: None,
        prev_expires_at: None,
        state: "active".into(),
        cursor: -1,
        created_by: "usr_x".into(),
        created_at: now(),
        updated_at: now(),
    }
}

fn news(n: usize, first_seq: i64) -> Vec<NewDelivery> {
    (0..n)
        .map(|i| NewDelivery {
            id: MessageId::generate(),
            event_seq: first_seq + i as i64,
            event_type: "api_key.create".into(),
            payload: format!("{{\"n\":{i}}}"),
        })
        .collect()
}

fn ok(at: i64) -> AttemptResult {
    AttemptResult {
        state: DeliveryState::Delivered,
        next_attempt_at: at,
        status: Some(204),
        error: None,
        at,
    }
}

async fn case_webhooks(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "Acme").await;
    let b = agency(&store, &mint, "Other").await;
    let head = store
        .audit_chain(&a, 0, 10_000)
        .await
        .unwrap()
        .last()
        .map_or(0, |e| e.seq);
    let w = hook(&a);
    let stored = store
        .create_webhook(&a, &w, &record("webhook.create"))
        .await
        .unwrap();
    assert_eq!(stored.cursor, head, "the cursor starts at the audit head");
    assert_eq!(store.get_webhook(&a, &w.id).await.unwrap(), stored);
    assert_eq!(store.count_webhooks(&a).await.unwrap(), 1);
    // Its creation is audited after the head it starts from.
    let after = store.audit_chain(&a, head, 10).await.unwrap();
    assert_eq!(
        after.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["webhook.create"]
    );
    // Tenant isolation.
    assert!(matches!(
        store.get_webhook(&b, &w.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.count_webhooks(&b).await.unwrap(), 0);
    assert!(store
        .list_webhooks(&b, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(matches!(
        store
            .delete_webhook(&b, &w.id, &record("webhook.delete"))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .rotate_webhook_secret(&b, &w.id, &[9], 1, 1, &record("webhook.rotate_secret"))
            .await,
        Err(StoreError::NotFound)
    ));
    let agencies: Vec<AgencyId> = store
        .webhook_agencies()
        .await
        .unwrap()
        .iter()
        .map(|t| t.agency().clone())
        .collect();
    assert_eq!(agencies, vec![a.agency().clone()]);

    // Enqueue: compare-and-set on the cursor; the same ids again insert nothing.
    let batch = news(3, head + 1);
    let t0 = now();
    assert!(store
        .enqueue_deliveries(&a, &w.id, head, head + 3, &batch, t0)
        .await
        .unwrap());
    assert!(!store
        .enqueue_deliveries(&a, &w.id, head, head + 3, &batch, t0)
        .await
        .unwrap());
    assert!(store
        .enqueue_deliveries(&a, &w.id, head + 3, head + 4, &batch, t0)
        .await
        .unwrap());
    assert_eq!(store.get_webhook(&a, &w.id).await.unwrap().cursor, head + 4);
    let pending = store
        .list_deliveries(&a, &w.id, Some(DeliveryState::Pending), &all())
        .await
        .unwrap();
    assert_eq!(pending.items.len(), 3);
    assert!(store
        .list_deliveries(&b, &w.id, None, &all())
        .await
        .is_err());
    assert!(store
        .claim_deliveries(&b, t0, t0 + 1000, "x", 10)
        .await
        .unwrap()
        .is_empty());

    // Claims: attempts go up, the lease hides them until it lapses.
    let claimed = store
        .claim_deliveries(&a, t0, t0 + 1000, "c1", 2)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed
        .iter()
        .all(|d| d.attempts == 1 && d.next_attempt_at == t0 + 1000));
    let rest = store
        .claim_deliveries(&a, t0, t0 + 1000, "c2", 10)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert!(store
        .claim_deliveries(&a, t0 + 999, t0 + 2000, "c3", 10)
        .await
        .unwrap()
        .is_empty());
    // A result under another claim is not written.
    assert!(!store
        .finish_delivery(&a, &claimed[0].id, "c2", &ok(t0))
        .await
        .unwrap());
    assert!(store
        .finish_delivery(&a, &claimed[0].id, "c1", &ok(t0))
        .await
        .unwrap());
    let d = store.get_delivery(&a, &w.id, &claimed[0].id).await.unwrap();
    assert_eq!(
        (d.state, d.last_status, d.delivered_at),
        (DeliveryState::Delivered, Some(204), Some(t0))
    );
    // The lease lapses: the lost attempts are claimed again (at least once).
    let again = store
        .claim_deliveries(&a, t0 + 1000, t0 + 3000, "c4", 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|d| d.attempts == 2));
    let dead = AttemptResult {
        state: DeliveryState::Dead,
        next_attempt_at: t0,
        status: Some(500),
        error: Some("HTTP 500".into()),
        at: t0 + 1000,
    };
    for d in &again {
        assert!(store.finish_delivery(&a, &d.id, "c4", &dead).await.unwrap());
    }
    let dl = store
        .list_deliveries(&a, &w.id, Some(DeliveryState::Dead), &all())
        .await
        .unwrap();
    assert_eq!(dl.items.len(), 2);
    // Paging.
    let p1 = store
        .list_deliveries(&a, &w.id, None, &page(2, None))
        .await
        .unwrap();
    assert_eq!(p1.items.len(), 2);
    let p2 = store
        .list_deliveries(&a, &w.id, None, &page(2, p1.next_cursor.clone()))
        .await
        .unwrap();
    assert_eq!(p2.items.len(), 1);
    assert!(p2.next_cursor.is_none());

    // Redelivery: all dead since a time, or one message whatever its state.
    let n = store
        .redeliver(
            &a,
            &w.id,
            &Redeliver::DeadSince(Some(t0 + 1)),
            t0 + 5000,
            &record("webhook.redeliver"),
        )
        .await
        .unwrap();
    assert_eq!(n, 0);
    let n = store
        .redeliver(
            &a,
            &w.id,
            &Redeliver::DeadSince(None),
            t0 + 5000,
            &record("webhook.redeliver"),
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    let last = store
        .audit_chain(&a, 0, 10_000)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (last.action.as_str(), &last.detail["count"]),
        ("webhook.redeliver", &serde_json::json!(2))
    );
    let n = store
        .redeliver(
            &a,
            &w.id,
            &Redeliver::One(claimed[0].id.clone()),
            t0 + 5000,
            &record("webhook.redeliver"),
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(matches!(
        store
            .redeliver(
                &a,
                &w.id,
                &Redeliver::One(MessageId::generate()),
                t0,
                &record("webhook.redeliver")
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .redeliver(
                &b,
                &w.id,
                &Redeliver::DeadSince(None),
                t0,
                &record("webhook.redeliver")
            )
            .await,
        Err(StoreError::NotFound)
    ));
    let due = store
        .claim_deliveries(&a, t0 + 5000, t0 + 6000, "c5", 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 3);
    assert!(due.iter().all(|d| d.attempts == 1));
    for d in &due {
        assert!(store
            .finish_delivery(&a, &d.id, "c5", &ok(t0 + 5000))
            .await
            .unwrap());
    }
    assert_eq!(store.prune_deliveries(&a, t0 + 5001).await.unwrap(), 3);

    // Rotation keeps the old secret as the previous one.
    let r = store
        .rotate_webhook_secret(
            &a,
            &w.id,
            &[7, 7],
            t0 + 86_400_000,
            t0 + 1,
            &record("webhook.rotate_secret"),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.secret.clone(), r.prev_secret.clone(), r.prev_expires_at),
        (vec![7, 7], Some(vec![1, 2, 3]), Some(t0 + 86_400_000))
    );

    // Deletion takes the queue with it.
    store
        .enqueue_deliveries(&a, &w.id, head + 4, head + 5, &news(1, head + 5), t0)
        .await
        .unwrap();
    store
        .delete_webhook(&a, &w.id, &record("webhook.delete"))
        .await
        .unwrap();
    assert!(matches!(
        store.get_webhook(&a, &w.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(store
        .claim_deliveries(&a, t0 + 10_000_000, t0 + 10_000_001, "c6", 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.webhook_agencies().await.unwrap().is_empty());
}

/// Concurrent claimers (nodes) never take the same delivery.
async fn case_concurrent_claims(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "Acme").await;
    let w = hook(&a);
    let stored = store
        .create_webhook(&a, &w, &record("webhook.create"))
        .await
        .unwrap();
    let t0 = now();
    let batch = news(200, stored.cursor + 1);
    assert!(store
        .enqueue_deliveries(&a, &w.id, stored.cursor, stored.cursor + 200, &batch, t0)
        .await
        .unwrap());
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (store, a) = (store.clone(), a.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store
                    .claim_deliveries(&a, t0, t0 + 60_000, &format!("node{i}"), 7)
                    .await
                    .unwrap();
                if got.is_empty() {
                    break;
                }
                mine.extend(got.into_iter().map(|d| d.id));
            }
            mine
        }));
    }
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for t in tasks {
        for id in t.await.unwrap() {
            total += 1;
            assert!(seen.insert(id.to_string()), "claimed twice: {id}");
        }
    }
    assert_eq!(total, 200);
}
