//! Webhooks of an agency and their delivery queue (issue 12): endpoints with sealed secrets,
//! the audit cursor each one has enqueued up to, and deliveries claimed under a lease.
//!
//! INVARIANT: a cursor moves only by compare-and-set, in the transaction that enqueues the
//! deliveries it passes (whose ids are deterministic, so enqueueing twice is a no-op); a
//! delivery is claimed by one node at a time (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the
//! single writer on SQLite) until its lease lapses, and an attempt's result is written only
//! while its claim still holds.

use async_trait::async_trait;
use tessera_core::{MessageId, WebhookId};

use crate::audit::AuditRecord;
use crate::error::StoreError;
use crate::page::{Page, PageRequest};
use crate::records::{AttemptResult, Delivery, DeliveryState, NewDelivery, Redeliver, Webhook};
use crate::scope::TenantScope;

/// Webhooks and deliveries. Callers: the webhook use cases (with the tenant's scope) and the
/// dispatcher (with the scopes `webhook_agencies` derives).
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Creates a webhook whose cursor starts at the agency's current audit head (it receives
    /// what happens from now on, its own creation included); returns it as stored.
    async fn create_webhook(
        &self,
        t: &TenantScope,
        w: &Webhook,
        audit: &AuditRecord,
    ) -> Result<Webhook, StoreError>;
    /// A webhook of the tenant.
    async fn get_webhook(&self, t: &TenantScope, id: &WebhookId) -> Result<Webhook, StoreError>;
    /// The tenant's webhooks, in id order.
    async fn list_webhooks(
        &self,
        t: &TenantScope,
        page: &PageRequest,
    ) -> Result<Page<Webhook>, StoreError>;
    /// How many webhooks the tenant has.
    async fn count_webhooks(&self, t: &TenantScope) -> Result<i64, StoreError>;
    /// Deletes a webhook and its queue.
    async fn delete_webhook(
        &self,
        t: &TenantScope,
        id: &WebhookId,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// Replaces the signing secret: the current one becomes the previous one, signing until
    /// `prev_expires_at`. Returns the webhook after.
    async fn rotate_webhook_secret(
        &self,
        t: &TenantScope,
        id: &WebhookId,
        sealed: &[u8],
        prev_expires_at: i64,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<Webhook, StoreError>;
    /// Every agency with at least one webhook (a read-only cross-tenant lookup that returns
    /// scopes derived from the rows found).
    async fn webhook_agencies(&self) -> Result<Vec<TenantScope>, StoreError>;
    /// Moves a webhook's cursor from `from` to `to` and enqueues `deliveries`, in one
    /// transaction; `false` (nothing written) when the cursor was no longer `from`.
    async fn enqueue_deliveries(
        &self,
        t: &TenantScope,
        webhook: &WebhookId,
        from: i64,
        to: i64,
        deliveries: &[NewDelivery],
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Claims up to `limit` due pending deliveries of the tenant for `claim`: each one's
    /// attempts go up by one and its next attempt moves to `lease_until`.
    async fn claim_deliveries(
        &self,
        t: &TenantScope,
        now: i64,
        lease_until: i64,
        claim: &str,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Writes an attempt's result if `claim` still holds the delivery; `false` otherwise.
    async fn finish_delivery(
        &self,
        t: &TenantScope,
        id: &MessageId,
        claim: &str,
        result: &AttemptResult,
    ) -> Result<bool, StoreError>;
    /// Writes the results of a batch of attempts, in one transaction, each if `claim` still
    /// holds its delivery; returns how many were written.
    async fn finish_deliveries(
        &self,
        t: &TenantScope,
        claim: &str,
        results: &[(MessageId, AttemptResult)],
    ) -> Result<u64, StoreError>;
    /// One delivery of a webhook.
    async fn get_delivery(
        &self,
        t: &TenantScope,
        webhook: &WebhookId,
        id: &MessageId,
    ) -> Result<Delivery, StoreError>;
    /// A webhook's deliveries in id order, optionally in one state.
    async fn list_deliveries(
        &self,
        t: &TenantScope,
        webhook: &WebhookId,
        state: Option<DeliveryState>,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError>;
    /// Puts deliveries back in the queue, due now, with a fresh attempt count; returns how
    /// many (also written as `count` into the audit event's `detail`, in the same
    /// transaction). `NotFound` for an unknown webhook (or message).
    async fn redeliver(
        &self,
        t: &TenantScope,
        webhook: &WebhookId,
        which: &Redeliver,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<u64, StoreError>;
    /// Removes delivered messages last changed before `before`; returns how many.
    async fn prune_deliveries(&self, t: &TenantScope, before: i64) -> Result<u64, StoreError>;
}
