//! The dispatcher: per agency with webhooks, enqueue what each webhook's cursor has not seen,
//! then claim due deliveries and attempt them.
//!
//! INVARIANT: enqueueing never skips an event: the cursor moves (compare-and-set) only past
//! events read in order from the chain, whose sequence numbers commit in order (each append
//! holds the head's lock until it commits); a message's id is derived from its webhook and
//! event, so a second enqueue of the same event (another node, a retry) inserts nothing.

use std::collections::HashMap;
use std::sync::Arc;

use rand::RngCore as _;
use sha2::{Digest, Sha256};
use tessera_core::{MessageId, WebhookId};
use tessera_store::{
    AttemptResult, AuditEvent, Delivery, DeliveryState, NewDelivery, PageRequest, TenantScope,
    Webhook,
};

use super::{client, filter, secret, sign};
use crate::error::ApiError;
use crate::services::Services;

/// Audit events read per round of enqueueing.
const EVENTS_PER_ROUND: u32 = 500;
/// Rounds per webhook per pass (so one busy agency cannot hold a pass forever).
const MAX_ROUNDS: usize = 20;
/// Delivered messages are kept this long, then pruned.
pub const DELIVERED_RETENTION_MS: i64 = 7 * 86_400_000;

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Deliveries enqueued.
    pub enqueued: u64,
    /// Attempts made.
    pub attempted: u64,
    /// Attempts answered 2xx.
    pub delivered: u64,
    /// Attempts that failed and will be retried.
    pub retrying: u64,
    /// Attempts that failed for the last time.
    pub dead: u64,
}

impl Pass {
    /// Whether the pass did anything (then the next one starts at once).
    pub fn busy(&self) -> bool {
        self.enqueued > 0 || self.attempted > 0
    }
}

/// Runs passes until the task is aborted: at once after a busy pass, else after the poll
/// interval.
pub async fn run(s: Arc<Services>) {
    let mut n: u64 = 0;
    loop {
        n = n.wrapping_add(1);
        let busy = match pass(&s).await {
            Ok(p) => p.busy(),
            Err(e) => {
                tracing::warn!(error = %e.detail, "webhook dispatch pass failed");
                false
            }
        };
        if n.is_multiple_of(600) {
            prune(&s).await;
        }
        if !busy {
            tokio::time::sleep(s.webhooks.settings.poll_interval).await;
        }
    }
}

/// One pass over every agency with webhooks.
pub async fn pass(s: &Arc<Services>) -> Result<Pass, ApiError> {
    let mut total = Pass::default();
    for scope in s.store.webhook_agencies().await? {
        if let Err(e) = agency(s, &scope, &mut total).await {
            tracing::warn!(agency = %scope.agency(), error = %e.detail, "webhook dispatch failed for an agency");
        }
    }
    Ok(total)
}

async fn prune(s: &Services) {
    let Ok(scopes) = s.store.webhook_agencies().await else {
        return;
    };
    let before = s.clock.now() - DELIVERED_RETENTION_MS;
    for scope in scopes {
        if let Err(e) = s.store.prune_deliveries(&scope, before).await {
            tracing::warn!(agency = %scope.agency(), error = %e, "could not prune delivered webhook messages");
        }
    }
}

async fn agency(s: &Arc<Services>, scope: &TenantScope, pass: &mut Pass) -> Result<(), ApiError> {
    let hooks = s
        .store
        .list_webhooks(
            scope,
            &PageRequest {
                limit: 200,
                cursor: None,
            },
        )
        .await?
        .items;
    for w in &hooks {
        pass.enqueued += enqueue(s, scope, w).await?;
    }
    let now = s.clock.now();
    let lease_ms = i64::try_from(s.webhooks.lease().as_millis()).unwrap_or(i64::MAX);
    let mut token = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut token);
    let claim: String = token.iter().map(|b| format!("{b:02x}")).collect();
    let batch = s
        .store
        .claim_deliveries(
            scope,
            now,
            now.saturating_add(lease_ms),
            &claim,
            s.webhooks.settings.batch,
        )
        .await?;
    if batch.is_empty() {
        return Ok(());
    }
    let hooks: Arc<HashMap<WebhookId, Webhook>> =
        Arc::new(hooks.into_iter().map(|w| (w.id.clone(), w)).collect());
    let mut set = tokio::task::JoinSet::new();
    for d in batch {
        let (s, hooks, scope) = (s.clone(), hooks.clone(), scope.clone());
        set.spawn(async move {
            let r = attempt(&s, &scope, hooks.get(&d.webhook_id), &d).await;
            (d.id, r)
        });
    }
    let mut results = Vec::new();
    while let Some(done) = set.join_next().await {
        pass.attempted += 1;
        match done {
            Ok((id, Ok(r))) => {
                let outcome = match r.state {
                    DeliveryState::Delivered => {
                        pass.delivered += 1;
                        "delivered"
                    }
                    DeliveryState::Pending => {
                        pass.retrying += 1;
                        "retrying"
                    }
                    DeliveryState::Dead => {
                        pass.dead += 1;
                        "dead"
                    }
                };
                crate::metrics::webhook_attempt(outcome);
                results.push((id, r));
            }
            Ok((_, Err(e))) => {
                tracing::warn!(error = %e.detail, "a webhook attempt could not be made")
            }
            Err(e) => tracing::warn!(error = %e, "a webhook attempt task failed"),
        }
    }
    // One transaction for the batch's results; a result whose claim lapsed meanwhile (another
    // node owns the message now) is not written.
    let written = s.store.finish_deliveries(scope, &claim, &results).await?;
    if written < results.len() as u64 {
        tracing::info!(
            lapsed = results.len() as u64 - written,
            "webhook attempts outlived their lease: other attempts own those messages now"
        );
    }
    Ok(())
}

/// The message id of `event` for `webhook`: the event's time, then 80 bits of a hash of both
/// ids (the same on every node and every retry).
pub fn message_id(webhook: &WebhookId, event: &AuditEvent) -> MessageId {
    let digest =
        Sha256::digest(format!("tessera/webhook-message\n{webhook}\n{}", event.id).as_bytes());
    let mut low: u128 = 0;
    for b in &digest[..10] {
        low = (low << 8) | u128::from(*b);
    }
    let millis = u128::from(u64::try_from(event.at).unwrap_or(0) & 0xFFFF_FFFF_FFFF);
    MessageId::from_bits((millis << 80) | low)
}

/// The body of a delivery: `{"type", "timestamp", "data"}`, `data` the event as the API shows
/// it.
pub fn payload(event: &AuditEvent) -> Result<String, ApiError> {
    serde_json::to_string(&serde_json::json!({
        "type": event.action,
        "timestamp": tessera_core::time::format_rfc3339(event.at),
        "data": event,
    }))
    .map_err(ApiError::internal)
}

/// Enqueues the events past the webhook's cursor that pass its filter; returns how many.
async fn enqueue(s: &Services, scope: &TenantScope, w: &Webhook) -> Result<u64, ApiError> {
    let mut cursor = w.cursor;
    let mut enqueued = 0;
    for _ in 0..MAX_ROUNDS {
        let events = s.store.audit_chain(scope, cursor, EVENTS_PER_ROUND).await?;
        let Some(last) = events.last() else { break };
        let to = last.seq;
        let mut news = Vec::new();
        for e in events
            .iter()
            .filter(|e| filter::matches(&w.events, &e.action))
        {
            news.push(NewDelivery {
                id: message_id(&w.id, e),
                event_seq: e.seq,
                event_type: e.action.clone(),
                payload: payload(e)?,
            });
        }
        if !s
            .store
            .enqueue_deliveries(scope, &w.id, cursor, to, &news, s.clock.now())
            .await?
        {
            // Another node moved the cursor: it enqueues these.
            break;
        }
        enqueued += news.len() as u64;
        cursor = to;
        if events.len() < EVENTS_PER_ROUND as usize {
            break;
        }
    }
    Ok(enqueued)
}

/// The headers of one attempt of `d` to `w` at `now` (ms): id, timestamp (s) and a signature
/// per active secret.
pub async fn signed_headers(
    s: &Services,
    scope: &TenantScope,
    w: &Webhook,
    d: &Delivery,
    now: i64,
) -> Result<Vec<(&'static str, String)>, String> {
    let open = |sealed: Vec<u8>| async move {
        secret::open(&s.data_keys, scope, &w.id, &sealed, now)
            .await
            .map_err(|e| format!("cannot open the webhook's secret: {e}"))
    };
    let mut keys = vec![open(w.secret.clone()).await?];
    if let (Some(prev), Some(until)) = (&w.prev_secret, w.prev_expires_at) {
        if until > now {
            keys.push(open(prev.clone()).await?);
        }
    }
    let ts = now.div_euclid(1000);
    let sig = sign::header(&keys, d.id.as_str(), ts, &d.payload);
    Ok(vec![
        ("webhook-id", d.id.to_string()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", sig),
    ])
}

/// One attempt of `d`, and its result (written back by the caller, under the claim).
async fn attempt(
    s: &Services,
    scope: &TenantScope,
    w: Option<&Webhook>,
    d: &Delivery,
) -> Result<AttemptResult, ApiError> {
    let outcome = match w {
        None => Err("the webhook was deleted".to_owned()),
        Some(w) => {
            // A secret that cannot be opened (the agency's data key destroyed) fails the
            // attempt like an unreachable endpoint: the backoff runs out and it is dead.
            match signed_headers(s, scope, w, d, s.clock.now()).await {
                Err(e) => Err(e),
                Ok(headers) => match url::Url::parse(&w.url) {
                    Ok(url) => {
                        client::post(&s.webhooks.transport, &url, &headers, d.payload.clone()).await
                    }
                    Err(e) => Err(format!("invalid URL: {e}")),
                },
            }
        }
    };
    let at = s.clock.now();
    Ok(match outcome {
        Ok(status) if (200..300).contains(&status) => AttemptResult {
            state: DeliveryState::Delivered,
            next_attempt_at: at,
            status: Some(i64::from(status)),
            error: None,
            at,
        },
        other => {
            let (status, error) = match other {
                Ok(st) => (
                    Some(i64::from(st)),
                    format!("the endpoint answered HTTP {st}"),
                ),
                Err(e) => (None, e),
            };
            let next = s.webhooks.backoff(d.attempts, &mut rand::thread_rng());
            tracing::info!(webhook = %d.webhook_id, message = %d.id, attempts = d.attempts, status, error = %error, dead = next.is_none(), "webhook attempt failed");
            match next {
                Some(delay) => AttemptResult {
                    state: DeliveryState::Pending,
                    next_attempt_at: at
                        .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
                    status,
                    error: Some(error),
                    at,
                },
                None => AttemptResult {
                    state: DeliveryState::Dead,
                    next_attempt_at: at,
                    status,
                    error: Some(error),
                    at,
                },
            }
        }
    })
}
