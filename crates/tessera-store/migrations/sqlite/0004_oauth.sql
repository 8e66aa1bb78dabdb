-- OAuth: apps (clients) and their secrets, installations, authorization codes, grants
-- (refresh families), refresh tokens and revoked access tokens. Times are epoch
-- milliseconds; secrets, codes and tokens are stored as keyed hashes only (I4). See the
-- PostgreSQL migration for row-level security.

CREATE TABLE apps (
    agency_id     TEXT NOT NULL REFERENCES agencies (id),
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    token_signing_alg TEXT NOT NULL DEFAULT 'EdDSA',
    confidential  INTEGER NOT NULL,
    redirect_uris TEXT NOT NULL, -- JSON array
    scopes        TEXT NOT NULL, -- JSON array
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    deleted_at    INTEGER,
    PRIMARY KEY (agency_id, id),
    CONSTRAINT apps_id_unique UNIQUE (id)
);

CREATE TABLE app_secrets (
    agency_id      TEXT NOT NULL,
    app_id         TEXT NOT NULL,
    secret_hash    BLOB NOT NULL,
    pepper_version INTEGER NOT NULL,
    valid_until    INTEGER,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (agency_id, app_id, secret_hash),
    CONSTRAINT app_secrets_secret_unique UNIQUE (secret_hash),
    FOREIGN KEY (agency_id, app_id) REFERENCES apps (agency_id, id)
);
CREATE INDEX app_secrets_by_app ON app_secrets (app_id);

-- An installation lives in the installing agency; its app may be another agency's.
-- account_key is '' for an agency-wide installation, so that one active installation per
-- (agency, account or none, app) can be a unique index.
CREATE TABLE installations (
    agency_id     TEXT NOT NULL REFERENCES agencies (id),
    id            TEXT NOT NULL,
    app_id        TEXT NOT NULL,
    app_agency_id TEXT NOT NULL,
    account_id    TEXT,
    account_key   TEXT NOT NULL,
    scopes        TEXT NOT NULL, -- JSON array
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    PRIMARY KEY (agency_id, id),
    FOREIGN KEY (app_agency_id, app_id) REFERENCES apps (agency_id, id)
);
CREATE UNIQUE INDEX installations_installation_active
    ON installations (agency_id, app_id, account_key) WHERE revoked_at IS NULL;
CREATE INDEX installations_by_app ON installations (app_id) WHERE revoked_at IS NULL;

CREATE TABLE oauth_codes (
    agency_id       TEXT NOT NULL REFERENCES agencies (id),
    code_hash       BLOB NOT NULL,
    client_id       TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    installation_id TEXT,
    account_id      TEXT,
    redirect_uri    TEXT NOT NULL,
    scope           TEXT NOT NULL,
    code_challenge  TEXT NOT NULL,
    nonce           TEXT,
    auth_time       INTEGER NOT NULL,
    grant_id        TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    consumed_at     INTEGER,
    PRIMARY KEY (agency_id, code_hash),
    CONSTRAINT oauth_codes_code_unique UNIQUE (code_hash)
);

CREATE TABLE oauth_grants (
    agency_id       TEXT NOT NULL REFERENCES agencies (id),
    id              TEXT NOT NULL,
    kind            TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    installation_id TEXT,
    account_id      TEXT,
    scope           TEXT NOT NULL,
    auth_time       INTEGER,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    PRIMARY KEY (agency_id, id),
    FOREIGN KEY (agency_id, installation_id) REFERENCES installations (agency_id, id)
);
CREATE INDEX oauth_grants_by_installation ON oauth_grants (agency_id, installation_id);
CREATE INDEX oauth_grants_revoked ON oauth_grants (agency_id, expires_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE refresh_tokens (
    agency_id       TEXT NOT NULL REFERENCES agencies (id),
    token_hash      BLOB NOT NULL,
    pepper_version  INTEGER NOT NULL,
    grant_id        TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    idle_expires_at INTEGER NOT NULL,
    rotated_at      INTEGER,
    PRIMARY KEY (agency_id, token_hash),
    CONSTRAINT refresh_tokens_token_unique UNIQUE (token_hash),
    FOREIGN KEY (agency_id, grant_id) REFERENCES oauth_grants (agency_id, id)
);
CREATE INDEX refresh_tokens_by_grant ON refresh_tokens (agency_id, grant_id);

CREATE TABLE revoked_access_tokens (
    agency_id  TEXT NOT NULL REFERENCES agencies (id),
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL,
    PRIMARY KEY (agency_id, jti)
);
CREATE INDEX revoked_access_tokens_by_expiry ON revoked_access_tokens (agency_id, expires_at);

CREATE INDEX users_by_email_key ON users (email_key);

