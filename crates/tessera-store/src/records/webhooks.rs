//! Webhook records: an agency's endpoints (with their sealed signing secrets and audit cursor)
//! and the deliveries queued for them.
//!
//! INVARIANT: a webhook's secrets are only ever held sealed here (the server seals and opens
//! them); the `Debug` of a webhook never prints them.

use tessera_core::{AgencyId, MessageId, WebhookId};

/// A webhook endpoint of an agency.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Its id.
    pub id: WebhookId,
    /// The agency it belongs to.
    pub agency_id: AgencyId,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The action names and patterns it receives.
    pub events: Vec<String>,
    /// The signing secret, sealed.
    pub secret: Vec<u8>,
    /// The previous signing secret, sealed, while it still signs (rotation overlap).
    pub prev_secret: Option<Vec<u8>>,
    /// When the previous secret stops signing.
    pub prev_expires_at: Option<i64>,
    /// `active` (the only state today; kept for pausing).
    pub state: String,
    /// The last audit sequence of the agency's chain enqueued for it.
    pub cursor: i64,
    /// The principal that created it.
    pub created_by: String,
    /// Creation time.
    pub created_at: i64,
    /// Last change (rotation).
    pub updated_at: i64,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("agency_id", &self.agency_id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &"<sealed>")
            .field(
                "prev_secret",
                &self.prev_secret.as_ref().map(|_| "<sealed>"),
            )
            .field("prev_expires_at", &self.prev_expires_at)
            .field("state", &self.state)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its (next) attempt, or in flight.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt of the schedule failed: on the dead-letter list until redelivered.
    Dead,
}

impl DeliveryState {
    /// Stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
    /// Parses stored (or query) text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "dead" => Some(Self::Dead),
            _ => None,
        }
    }
}

/// One message for one webhook: an audit event, its body frozen at enqueue time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The `webhook-id` (the same on every attempt).
    pub id: MessageId,
    /// The agency.
    pub agency_id: AgencyId,
    /// The webhook.
    pub webhook_id: WebhookId,
    /// The audit event's sequence in the agency's chain.
    pub event_seq: i64,
    /// The event type (the audit action).
    pub event_type: String,
    /// The JSON body POSTed, exactly as signed.
    pub payload: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: i64,
    /// When the next attempt is due (while pending; while claimed, when the claim lapses).
    pub next_attempt_at: i64,
    /// The last HTTP status received, if any.
    pub last_status: Option<i64>,
    /// The last failure, in words (never a secret).
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// When it was delivered.
    pub delivered_at: Option<i64>,
}

/// A delivery about to be enqueued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery {
    /// Its deterministic id.
    pub id: MessageId,
    /// The audit event's sequence.
    pub event_seq: i64,
    /// The event type.
    pub event_type: String,
    /// The JSON body.
    pub payload: String,
}

/// The result of one attempt, written back if the claim still holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptResult {
    /// The new state.
    pub state: DeliveryState,
    /// When to try again (pending only).
    pub next_attempt_at: i64,
    /// The HTTP status, if the endpoint answered.
    pub status: Option<i64>,
    /// The failure, if any.
    pub error: Option<String>,
    /// When the attempt ended.
    pub at: i64,
}

/// Which deliveries to put back in the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redeliver {
    /// This one message, whatever its state.
    One(MessageId),
    /// Every dead message of the webhook enqueued at or after this time (all with `None`).
    DeadSince(Option<i64>),
}
