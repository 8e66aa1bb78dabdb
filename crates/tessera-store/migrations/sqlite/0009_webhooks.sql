-- Signed webhooks (issue 12): an agency's endpoints and their delivery queue.
-- `events` is a JSON array of action names or patterns (`api_key.*`, `*`). `secret` and
-- `prev_secret` are sealed (never plaintext): the previous secret keeps signing until
-- `prev_expires_at`. `audit_cursor` is the last audit sequence of the agency's chain the dispatcher
-- has enqueued for this webhook (moved in the transaction that enqueues).
-- A delivery's id is the Standard Webhooks `webhook-id`, derived from (webhook, event), so
-- enqueueing twice is a no-op. `claim` is the token of the node whose attempt is in flight;
-- `next_attempt_at` doubles as the claim's lease: a claim moves it past the attempt's timeout,
-- so an attempt lost with its node is retried (at least once). Times are epoch milliseconds.

CREATE TABLE webhooks (
    agency_id       TEXT NOT NULL REFERENCES agencies (id),
    id              TEXT NOT NULL,
    url             TEXT NOT NULL,
    events          TEXT NOT NULL,
    secret          BLOB NOT NULL,
    prev_secret     BLOB,
    prev_expires_at INTEGER,
    state           TEXT NOT NULL,
    audit_cursor    INTEGER NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (agency_id, id)
);

CREATE TABLE webhook_deliveries (
    agency_id       TEXT NOT NULL,
    id              TEXT NOT NULL,
    webhook_id      TEXT NOT NULL,
    event_seq       INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    claim           TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    PRIMARY KEY (agency_id, id),
    FOREIGN KEY (agency_id, webhook_id) REFERENCES webhooks (agency_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (agency_id, state, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (agency_id, webhook_id, state, id);
