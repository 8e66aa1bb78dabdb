//! An agency's webhooks: register (the secret shown once), list, read, rotate the secret with
//! an overlap, delete; the delivery log with its dead letters, and redelivery.
//!
//! INVARIANT: a webhook receives the agency's audit log, so registering one takes, on top of
//! the route's `webhooks.write`, `audit_log.read` in the agency (I2: no one routes to
//! themselves events they may not read); its URL is checked (`webhooks::target`) and its
//! filter names known actions only; its secret is never stored, logged or shown again.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_core::time::{format_rfc3339, parse_rfc3339};
use tessera_core::{MessageId, WebhookId};
use tessera_store::{Delivery, DeliveryState, Page, PageRequest, Redeliver, Webhook};

use crate::audit::action::AuditAction;
use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
use crate::services::Services;
use crate::webhooks::{filter, secret, target, MAX_OVERLAP_SECONDS, MAX_PER_AGENCY};

/// `POST /v1/agencies/{agy}/webhooks`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where to POST events: an absolute `https://` (or `http://`) URL. Loopback, private,
    /// link-local and other internal addresses are refused (`target_refused`) unless the
    /// server runs with `--webhook-allow-private-targets`.
    #[schemars(extend("minLength" = 1, "maxLength" = 2048))]
    pub url: String,
    /// The audit actions to receive: names (`api_key.create`), groups (`api_key.*`) or `*`
    /// (every action). Unknown ones are refused (`unknown_event`).
    #[schemars(extend("minItems" = 1, "maxItems" = 100))]
    pub events: Vec<String>,
}

/// A webhook, as the API shows it (never its secret).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct WebhookView {
    /// Its id.
    pub id: WebhookId,
    /// Where events are POSTed.
    pub url: String,
    /// The actions, groups or `*` it receives.
    pub events: Vec<String>,
    /// `active`.
    pub state: String,
    /// While a rotated-out secret still signs: until when.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "tessera_core::time::serde_rfc3339::option::serialize"
    )]
    #[schemars(with = "Option<String>")]
    pub previous_secret_expires_at: Option<i64>,
    /// Who registered it.
    pub created_by: String,
    /// Creation time.
    #[serde(serialize_with = "tessera_core::time::serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub created_at: i64,
    /// Last change (rotation).
    #[serde(serialize_with = "tessera_core::time::serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub updated_at: i64,
}

/// A webhook with its signing secret: answered once, at creation and at rotation.
#[derive(Serialize, JsonSchema)]
pub struct WebhookWithSecret {
    /// The webhook.
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The Standard Webhooks signing secret (`whsec_` + base64 of 32 random bytes). Shown
    /// only now: store it in the receiver.
    pub secret: String,
}

impl std::fmt::Debug for WebhookWithSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookWithSecret")
            .field("webhook", &self.webhook)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// `POST …/webhooks/{whk}/rotate-secret` (the body may be empty).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateWebhookSecret {
    /// How long the previous secret keeps signing, beside the new one (0 to 604800 seconds,
    /// default 86400).
    #[schemars(extend("maximum" = 604800))]
    pub previous_expires_in_seconds: Option<u64>,
}

/// `POST …/webhooks/{whk}/redeliver` (the body may be empty).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeliverDead {
    /// Only dead messages enqueued at or after this time (RFC 3339); default: every dead one.
    pub since: Option<String>,
}

/// How many deliveries were put back in the queue.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Redelivered {
    /// Deliveries now pending, due at once.
    pub count: u64,
}

/// One message of a webhook's delivery log.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DeliveryView {
    /// The message id: the `webhook-id` header, the same on every attempt.
    pub id: MessageId,
    /// The webhook.
    pub webhook_id: WebhookId,
    /// The event type (audit action).
    pub event_type: String,
    /// The event's sequence in the agency's audit chain.
    pub event_seq: i64,
    /// `pending`, `delivered` or `dead`.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: i64,
    /// While pending: when the next attempt is due.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "tessera_core::time::serde_rfc3339::option::serialize"
    )]
    #[schemars(with = "Option<String>")]
    pub next_attempt_at: Option<i64>,
    /// The last HTTP status the endpoint answered.
    pub last_status: Option<i64>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was enqueued.
    #[serde(serialize_with = "tessera_core::time::serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub created_at: i64,
    /// When it was delivered.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "tessera_core::time::serde_rfc3339::option::serialize"
    )]
    #[schemars(with = "Option<String>")]
    pub delivered_at: Option<i64>,
}

fn view(w: Webhook, now: i64) -> WebhookView {
    WebhookView {
        id: w.id,
        url: w.url,
        events: w.events,
        state: w.state,
        previous_secret_expires_at: w.prev_expires_at.filter(|t| *t > now),
        created_by: w.created_by,
        created_at: w.created_at,
        updated_at: w.updated_at,
    }
}

fn delivery_view(d: Delivery) -> DeliveryView {
    DeliveryView {
        id: d.id,
        webhook_id: d.webhook_id,
        event_type: d.event_type,
        event_seq: d.event_seq,
        state: d.state,
        attempts: d.attempts,
        next_attempt_at: (d.state == DeliveryState::Pending).then_some(d.next_attempt_at),
        last_status: d.last_status,
        last_error: d.last_error,
        created_at: d.created_at,
        delivered_at: d.delivered_at,
    }
}

/// Registers a webhook. Route: `webhooks.write` in the agency; further `audit_log.read` (the
/// feed is the audit log), a valid URL and filter, at most `MAX_PER_AGENCY` per agency.
pub async fn create(
    s: &Services,
    auth: &Authorized,
    input: CreateWebhook,
) -> Result<WebhookWithSecret, ApiError> {
    let scope = auth.scope()?;
    let url = target::parse(&input.url, s.webhooks.settings.allow_private_targets)?;
    let events = filter::validate(&input.events)?;
    let read = s
        .catalog
        .permission("audit_log.read")
        .ok_or_else(|| ApiError::internal("the catalog lacks audit_log.read"))?;
    if !auth.effective(s, None).await?.contains(read) {
        return Err(auth
            .refuse_missing(
                s,
                AuditAction::WebhookCreate,
                None,
                vec!["audit_log.read".to_owned()],
                "a webhook receives the agency's audit log: registering one also takes `audit_log.read`".to_owned(),
            )
            .await
            .into());
    }
    if s.store.count_webhooks(&scope).await? >= MAX_PER_AGENCY {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("at most {MAX_PER_AGENCY} webhooks per agency"),
        ));
    }
    let now = s.clock.now();
    let id = WebhookId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng());
    let (raw, text) = secret::generate();
    let sealed = secret::seal(&s.data_keys, &scope, &id, &raw, now)
        .await
        .map_err(ApiError::internal)?;
    let w = Webhook {
        secret: sealed,
        id,
        agency_id: auth.agency.clone(),
        url: url.to_string(),
        events,
        prev_secret: None,
        prev_expires_at: None,
        state: "active".to_owned(),
        cursor: 0,
        created_by: auth.caller.principal.to_string(),
        created_at: now,
        updated_at: now,
    };
    let audit = auth.audit(
        s,
        AuditAction::WebhookCreate,
        Some(w.id.as_str()),
        json!({ "url": w.url, "events": w.events }),
    );
    let stored = s.store.create_webhook(&scope, &w, &audit).await?;
    Ok(WebhookWithSecret {
        webhook: view(stored, now),
        secret: text.to_string(),
    })
}

/// A page of the agency's webhooks. Route: `webhooks.read`.
pub async fn list(
    s: &Services,
    auth: &Authorized,
    page: &PageRequest,
) -> Result<Page<WebhookView>, ApiError> {
    let p = s.store.list_webhooks(&auth.scope()?, page).await?;
    let now = s.clock.now();
    Ok(Page {
        items: p.items.into_iter().map(|w| view(w, now)).collect(),
        next_cursor: p.next_cursor,
    })
}

/// One webhook. Route: `webhooks.read`.
pub async fn get(s: &Services, auth: &Authorized, id: &WebhookId) -> Result<WebhookView, ApiError> {
    let w = s.store.get_webhook(&auth.scope()?, id).await?;
    Ok(view(w, s.clock.now()))
}

/// Deletes a webhook and its queue. Route: `webhooks.write`.
pub async fn remove(s: &Services, auth: &Authorized, id: &WebhookId) -> Result<(), ApiError> {
    let scope = auth.scope()?;
    let w = s.store.get_webhook(&scope, id).await?;
    let audit = auth.audit(
        s,
        AuditAction::WebhookDelete,
        Some(id.as_str()),
        json!({ "url": w.url }),
    );
    s.store.delete_webhook(&scope, id, &audit).await?;
    Ok(())
}

/// A new signing secret; the previous one keeps signing until the overlap ends. Route:
/// `webhooks.write`.
pub async fn rotate(
    s: &Services,
    auth: &Authorized,
    id: &WebhookId,
    input: RotateWebhookSecret,
) -> Result<WebhookWithSecret, ApiError> {
    let scope = auth.scope()?;
    let overlap = input
        .previous_expires_in_seconds
        .unwrap_or(crate::webhooks::DEFAULT_OVERLAP_SECONDS);
    if overlap > MAX_OVERLAP_SECONDS {
        return Err(ApiError::invalid(format!(
            "`previous_expires_in_seconds` must be at most {MAX_OVERLAP_SECONDS}"
        )));
    }
    // Existence first: a rotation of another agency's (or no) webhook is a 404, not a write.
    s.store.get_webhook(&scope, id).await?;
    let now = s.clock.now();
    let until = now.saturating_add(i64::try_from(overlap).unwrap_or(0).saturating_mul(1000));
    let (raw, text) = secret::generate();
    let sealed = secret::seal(&s.data_keys, &scope, id, &raw, now)
        .await
        .map_err(ApiError::internal)?;
    let audit = auth.audit(
        s,
        AuditAction::WebhookRotateSecret,
        Some(id.as_str()),
        json!({ "previous_expires_at": format_rfc3339(until) }),
    );
    let w = s
        .store
        .rotate_webhook_secret(&scope, id, &sealed, until, now, &audit)
        .await?;
    Ok(WebhookWithSecret {
        webhook: view(w, now),
        secret: text.to_string(),
    })
}

/// A webhook's delivery log, optionally one state (`dead`: the dead-letter list). Route:
/// `webhooks.read`.
pub async fn deliveries(
    s: &Services,
    auth: &Authorized,
    id: &WebhookId,
    state: Option<&str>,
    page: &PageRequest,
) -> Result<Page<DeliveryView>, ApiError> {
    let state = match state {
        None => None,
        Some(v) => Some(DeliveryState::parse(v).ok_or_else(|| {
            ApiError::invalid("`state` must be `pending`, `delivered` or `dead`")
        })?),
    };
    let p = s
        .store
        .list_deliveries(&auth.scope()?, id, state, page)
        .await?;
    Ok(Page {
        items: p.items.into_iter().map(delivery_view).collect(),
        next_cursor: p.next_cursor,
    })
}

/// One message of a webhook. Route: `webhooks.read`.
pub async fn delivery(
    s: &Services,
    auth: &Authorized,
    id: &WebhookId,
    msg: &MessageId,
) -> Result<DeliveryView, ApiError> {
    Ok(delivery_view(
        s.store.get_delivery(&auth.scope()?, id, msg).await?,
    ))
}

/// Puts one message (whatever its state) or every dead one (since a time) back in the queue.
/// Route: `webhooks.write`.
pub async fn redeliver(
    s: &Services,
    auth: &Authorized,
    id: &WebhookId,
    which: Redeliver,
) -> Result<Redelivered, ApiError> {
    let scope = auth.scope()?;
    let detail = match &which {
        Redeliver::One(m) => json!({ "message": m.as_str() }),
        Redeliver::DeadSince(since) => json!({ "since": since.map(format_rfc3339) }),
    };
    // The store adds the count to the event's detail, in the transaction that moves them.
    let audit = auth.audit(s, AuditAction::WebhookRedeliver, Some(id.as_str()), detail);
    let n = s
        .store
        .redeliver(&scope, id, &which, s.clock.now(), &audit)
        .await?;
    Ok(Redelivered { count: n })
}

/// Parses `since` of a bulk redelivery.
pub fn since(input: &RedeliverDead) -> Result<Option<i64>, ApiError> {
    input
        .since
        .as_deref()
        .map(|v| {
            parse_rfc3339(v).ok_or_else(|| ApiError::invalid("`since` must be an RFC 3339 time"))
        })
        .transpose()
}
