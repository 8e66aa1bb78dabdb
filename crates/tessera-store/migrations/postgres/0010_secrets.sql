-- Stored secrets (issue 12). The master key no longer DERIVES the installation's secrets: they
-- are stored here, each wrapped (sealed) under a master key whose non-secret id
-- (`master_key_id`, a fingerprint) is recorded with it, so rotating the master key rewraps
-- these rows and changes nothing else. Times are epoch milliseconds.

-- The master keys this database has seen: exactly one `active` (it wraps new secrets; nodes
-- that hold another one reload their key source before wrapping), `previous` ones still
-- wrapping rows until `tessera keys rotate-master` finishes, `retired` ones no row uses.
CREATE TABLE master_keys (
    key_id     TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

-- Installation-wide secrets: `pepper` (versions 1, 2, …; the credential-hash HMAC keys),
-- `signing-keys` (the key that seals token and audit signing keys), `cookies` (the sign-in
-- cookie key). Version 1 of each is what the master key used to derive, so an installation
-- that predates this table keeps every hash and sealed value. A retired version has its
-- material destroyed (`sealed` emptied) and `retired_at` set.
CREATE TABLE root_secrets (
    purpose       TEXT NOT NULL,
    version       BIGINT NOT NULL,
    master_key_id TEXT NOT NULL,
    sealed        BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    retired_at    BIGINT,
    PRIMARY KEY (purpose, version)
);

-- Each agency's data key, wrapped under the master key. Deleting the agency deletes this row
-- in the same transaction (crypto-shredding: what it sealed can no longer be opened).
CREATE TABLE agency_data_keys (
    agency_id     TEXT NOT NULL PRIMARY KEY REFERENCES agencies (id),
    master_key_id TEXT NOT NULL,
    sealed        BYTEA NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Row-level security (I1), as in 0001: forced, failing closed without a tenant. The two global
-- tables above hold no tenant data (like `signing_keys`).
ALTER TABLE agency_data_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE agency_data_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON agency_data_keys
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
