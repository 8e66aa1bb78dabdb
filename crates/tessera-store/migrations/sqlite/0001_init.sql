-- Tessera schema, SQLite. Times are epoch milliseconds; ids carry their type prefix.
-- Every tenant table leads with agency_id (see the PostgreSQL migration for row-level security).

CREATE TABLE agencies (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    is_platform INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX agencies_one_platform ON agencies (is_platform) WHERE is_platform = 1;

CREATE TABLE revision (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 0);

CREATE TABLE change_log (
    agency_id TEXT NOT NULL,
    revision  INTEGER NOT NULL PRIMARY KEY,
    kind      TEXT NOT NULL,
    entity    TEXT NOT NULL,
    at        INTEGER NOT NULL
);

CREATE TABLE accounts (
    agency_id  TEXT NOT NULL REFERENCES agencies (id),
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
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
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
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
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER,
    rotated_at   INTEGER,
    PRIMARY KEY (agency_id, id),
    FOREIGN KEY (agency_id, account_id) REFERENCES accounts (agency_id, id)
);

CREATE TABLE api_key_secrets (
    agency_id      TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    secret_hash    BLOB NOT NULL,
    pepper_version INTEGER NOT NULL,
    valid_until    INTEGER,
    created_at     INTEGER NOT NULL,
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
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (agency_id, id),
    CONSTRAINT bindings_binding_unique UNIQUE (agency_id, principal, role, account_key),
    FOREIGN KEY (agency_id, account_id) REFERENCES accounts (agency_id, id)
);
CREATE INDEX bindings_by_principal ON bindings (agency_id, principal);

CREATE TABLE audit_heads (
    agency_id TEXT NOT NULL PRIMARY KEY REFERENCES agencies (id),
    seq       INTEGER NOT NULL,
    hash      BLOB NOT NULL
);

CREATE TABLE audit_events (
    agency_id    TEXT NOT NULL REFERENCES agencies (id),
    seq          INTEGER NOT NULL,
    id           TEXT NOT NULL,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    on_behalf_of TEXT,
    action       TEXT NOT NULL,
    target       TEXT,
    outcome      TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    ip           TEXT,
    user_agent   TEXT,
    detail       TEXT NOT NULL,
    prev_hash    BLOB NOT NULL,
    hash         BLOB NOT NULL,
    PRIMARY KEY (agency_id, seq)
);
CREATE INDEX audit_events_by_actor ON audit_events (agency_id, actor, seq);
CREATE INDEX audit_events_by_action ON audit_events (agency_id, action, seq);
