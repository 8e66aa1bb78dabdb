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
    secret          BYTEA NOT NULL,
    prev_secret     BYTEA,
    prev_expires_at BIGINT,
    state           TEXT NOT NULL,
    audit_cursor    BIGINT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (agency_id, id)
);

CREATE TABLE webhook_deliveries (
    agency_id       TEXT NOT NULL,
    id              TEXT NOT NULL,
    webhook_id      TEXT NOT NULL,
    event_seq       BIGINT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claim           TEXT,
    last_status     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    PRIMARY KEY (agency_id, id),
    FOREIGN KEY (agency_id, webhook_id) REFERENCES webhooks (agency_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (agency_id, state, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (agency_id, webhook_id, state, id);

-- Row-level security (I1), as in 0001: forced, failing closed without a tenant.
ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhooks
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_deliveries
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));

-- The dispatcher finds which agencies have webhooks before it acts in any of them: this
-- read-only policy shows the webhook rows (it reads only their agency ids) when
-- `tessera.webhook_dispatch` is on, and nothing of any other table.
CREATE POLICY webhook_dispatch ON webhooks FOR SELECT
    USING (current_setting('tessera.webhook_dispatch', true) = 'on');
