-- OAuth: apps (clients) and their secrets, installations, authorization codes, grants
-- (refresh families), refresh tokens and revoked access tokens. Times are epoch
-- milliseconds; secrets, codes and tokens are stored as keyed hashes only (I4).

CREATE TABLE apps (
    agency_id     TEXT NOT NULL REFERENCES agencies (id),
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    token_signing_alg TEXT NOT NULL DEFAULT 'EdDSA',
    confidential  BOOLEAN NOT NULL,
    redirect_uris TEXT NOT NULL, -- JSON array
    scopes        TEXT NOT NULL, -- JSON array
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    deleted_at    BIGINT,
    PRIMARY KEY (agency_id, id),
    CONSTRAINT apps_id_unique UNIQUE (id)
);

CREATE TABLE app_secrets (
    agency_id      TEXT NOT NULL,
    app_id         TEXT NOT NULL,
    secret_hash    BYTEA NOT NULL,
    pepper_version BIGINT NOT NULL,
    valid_until    BIGINT,
    created_at     BIGINT NOT NULL,
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
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    PRIMARY KEY (agency_id, id),
    FOREIGN KEY (app_agency_id, app_id) REFERENCES apps (agency_id, id)
);
CREATE UNIQUE INDEX installations_installation_active
    ON installations (agency_id, app_id, account_key) WHERE revoked_at IS NULL;
CREATE INDEX installations_by_app ON installations (app_id) WHERE revoked_at IS NULL;

CREATE TABLE oauth_codes (
    agency_id       TEXT NOT NULL REFERENCES agencies (id),
    code_hash       BYTEA NOT NULL,
    client_id       TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    installation_id TEXT,
    account_id      TEXT,
    redirect_uri    TEXT NOT NULL,
    scope           TEXT NOT NULL,
    code_challenge  TEXT NOT NULL,
    nonce           TEXT,
    auth_time       BIGINT NOT NULL,
    grant_id        TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    consumed_at     BIGINT,
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
    auth_time       BIGINT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    PRIMARY KEY (agency_id, id),
    FOREIGN KEY (agency_id, installation_id) REFERENCES installations (agency_id, id)
);
CREATE INDEX oauth_grants_by_installation ON oauth_grants (agency_id, installation_id);
CREATE INDEX oauth_grants_revoked ON oauth_grants (agency_id, expires_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE refresh_tokens (
    agency_id       TEXT NOT NULL REFERENCES agencies (id),
    token_hash      BYTEA NOT NULL,
    pepper_version  BIGINT NOT NULL,
    grant_id        TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    rotated_at      BIGINT,
    PRIMARY KEY (agency_id, token_hash),
    CONSTRAINT refresh_tokens_token_unique UNIQUE (token_hash),
    FOREIGN KEY (agency_id, grant_id) REFERENCES oauth_grants (agency_id, id)
);
CREATE INDEX refresh_tokens_by_grant ON refresh_tokens (agency_id, grant_id);

CREATE TABLE revoked_access_tokens (
    agency_id  TEXT NOT NULL REFERENCES agencies (id),
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL,
    PRIMARY KEY (agency_id, jti)
);
CREATE INDEX revoked_access_tokens_by_expiry ON revoked_access_tokens (agency_id, expires_at);

CREATE INDEX users_by_email_key ON users (email_key);

-- Row-level security (I1), as in 0001: forced, failing closed without a tenant.
ALTER TABLE apps ENABLE ROW LEVEL SECURITY;
ALTER TABLE apps FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON apps
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
ALTER TABLE app_secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE app_secrets FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON app_secrets
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
ALTER TABLE installations ENABLE ROW LEVEL SECURITY;
ALTER TABLE installations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON installations
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
ALTER TABLE oauth_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON oauth_codes
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
ALTER TABLE oauth_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_grants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON oauth_grants
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE refresh_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON refresh_tokens
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
ALTER TABLE revoked_access_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE revoked_access_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON revoked_access_tokens
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));

-- Client authentication reads an app by its id before it knows the tenant: these read-only
-- policies show exactly the rows of the client id set for the transaction.
CREATE POLICY client_lookup ON apps FOR SELECT
    USING (id = NULLIF(current_setting('tessera.client_id', true), ''));
CREATE POLICY client_lookup ON app_secrets FOR SELECT
    USING (app_id = NULLIF(current_setting('tessera.client_id', true), ''));
CREATE POLICY client_lookup ON installations FOR SELECT
    USING (app_id = NULLIF(current_setting('tessera.client_id', true), ''));

-- Redeeming a code or a refresh token finds its row by the keyed hash the caller holds
-- (then reads and writes the rest as that row's tenant): read-only.
CREATE POLICY credential_lookup ON oauth_codes FOR SELECT
    USING (code_hash = decode(NULLIF(current_setting('tessera.credential_hash', true), ''), 'hex'));
CREATE POLICY credential_lookup ON refresh_tokens FOR SELECT
    USING (token_hash = decode(NULLIF(current_setting('tessera.credential_hash', true), ''), 'hex'));

-- Sign-in finds the users with the email typed (its lowercased key) in every agency: read-only.
CREATE POLICY login_lookup ON users FOR SELECT
    USING (email_key = NULLIF(current_setting('tessera.login_email', true), ''));
