-- Tessera schema, PostgreSQL. Times are epoch milliseconds; ids carry their type prefix.
-- Every tenant table leads with agency_id and is under forced row-level security (below).

CREATE TABLE agencies (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    is_platform BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX agencies_one_platform ON agencies (is_platform) WHERE is_platform;

CREATE TABLE revision (
    id    BIGINT PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 0);

CREATE TABLE change_log (
    agency_id TEXT NOT NULL,
    revision  BIGINT NOT NULL PRIMARY KEY,
    kind      TEXT NOT NULL,
    entity    TEXT NOT NULL,
    at        BIGINT NOT NULL
);

CREATE TABLE accounts (
    agency_id  TEXT NOT NULL REFERENCES agencies (id),
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (agency_id, id)
);

CREATE TABLE users (
    agency_id     TEXT NOT NULL REFERENCES agencies (id),
    id            TEXT NOT NULL,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL,
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (agency_id, id),
    CONSTRAINT users_email_unique UNIQUE (agency_id, email_key)
);

CREATE TABLE api_keys (
    agency_id    TEXT NOT NULL REFERENCES agencies (id),
    id           TEXT NOT NULL,
    name         TEXT NOT NULL,
    account_id   TEXT,
    scopes       TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT,
    rotated_at   BIGINT,
    PRIMARY KEY (agency_id, id),
    FOREIGN KEY (agency_id, account_id) REFERENCES accounts (agency_id, id)
);

CREATE TABLE api_key_secrets (
    agency_id      TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    secret_hash    BYTEA NOT NULL,
    pepper_version BIGINT NOT NULL,
    valid_until    BIGINT,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (agency_id, key_id, secret_hash),
    CONSTRAINT api_key_secrets_secret_unique UNIQUE (secret_hash),
    FOREIGN KEY (agency_id, key_id) REFERENCES api_keys (agency_id, id)
);

CREATE TABLE bindings (
    agency_id   TEXT NOT NULL REFERENCES agencies (id),
    id          TEXT NOT NULL,
    principal   TEXT NOT NULL,
    role        TEXT NOT NULL,
    account_id  TEXT,
    account_key TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (agency_id, id),
    CONSTRAINT bindings_binding_unique UNIQUE (agency_id, principal, role, account_key),
    FOREIGN KEY (agency_id, account_id) REFERENCES accounts (agency_id, id)
);
CREATE INDEX bindings_by_principal ON bindings (agency_id, principal);

CREATE TABLE audit_heads (
    agency_id TEXT NOT NULL PRIMARY KEY REFERENCES agencies (id),
    seq       BIGINT NOT NULL,
    hash      BYTEA NOT NULL
);

CREATE TABLE audit_events (
    agency_id    TEXT NOT NULL REFERENCES agencies (id),
    seq          BIGINT NOT NULL,
    id           TEXT NOT NULL,
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    on_behalf_of TEXT,
    action       TEXT NOT NULL,
    target       TEXT,
    outcome      TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    ip           TEXT,
    user_agent   TEXT,
    detail       TEXT NOT NULL,
    prev_hash    BYTEA NOT NULL,
    hash         BYTEA NOT NULL,
    PRIMARY KEY (agency_id, seq)
);
CREATE INDEX audit_events_by_actor ON audit_events (agency_id, actor, seq);
CREATE INDEX audit_events_by_action ON audit_events (agency_id, action, seq);

-- Row-level security (I1). FORCE makes it bind the owning role too. The policy fails closed:
-- with `tessera.agency_id` unset (NULL) or empty, no row matches. The server sets it per
-- transaction with set_config(..., true), so a pooled connection never carries it on.
ALTER TABLE change_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE change_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON change_log
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON accounts
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
ALTER TABLE api_key_secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_key_secrets FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_key_secrets
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
ALTER TABLE bindings ENABLE ROW LEVEL SECURITY;
ALTER TABLE bindings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON bindings
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
ALTER TABLE audit_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_heads
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_events
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));

-- Authentication finds a key by the keyed hash of the presented secret before it knows the
-- tenant. This read-only policy shows exactly the rows whose hash the caller already holds.
CREATE POLICY credential_lookup ON api_key_secrets FOR SELECT
    USING (secret_hash = decode(NULLIF(current_setting('tessera.credential_hash', true), ''), 'hex'));

-- Nodes tail the change log of every tenant to invalidate their caches: read-only.
CREATE POLICY change_feed ON change_log FOR SELECT
    USING (current_setting('tessera.change_feed', true) = 'on');
