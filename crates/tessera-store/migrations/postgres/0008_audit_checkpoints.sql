-- Signed audit checkpoints (issue 12): the keys that sign them, the checkpoints, and each
-- agency's audit retention override. Times: `audit_keys` in epoch SECONDS (like
-- `signing_keys`), the others in epoch milliseconds.
--
-- `audit_keys` is global (platform keys, no agency_id, no row-level security). While a key
-- can sign, `sealed_private` is its Ed25519 seed sealed under the master key (envelope
-- encryption, associated data binding the kid and the public key); once retired it holds an
-- EMPTY plaintext sealed the same way: no private key is left, yet the row still proves under
-- the master key that this public key is ours (someone with database access alone cannot add
-- a key of their own). `generation` is unique, so two nodes racing to create the next key
-- cannot both succeed.
CREATE TABLE audit_keys (
    kid            TEXT PRIMARY KEY,
    generation     BIGINT NOT NULL UNIQUE,
    state          TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    activates_at   BIGINT NOT NULL,
    retires_at     BIGINT,
    public_key     BYTEA NOT NULL,
    sealed_private BYTEA NOT NULL
);

-- One row per (agency, seq): the primary key makes a duplicate checkpoint impossible, however
-- many nodes sign at once (they insert with ON CONFLICT DO NOTHING).
CREATE TABLE audit_checkpoints (
    agency_id TEXT NOT NULL REFERENCES agencies (id),
    seq       BIGINT NOT NULL,
    hash      BYTEA NOT NULL,
    at        BIGINT NOT NULL,
    kid       TEXT NOT NULL,
    signature BYTEA NOT NULL,
    PRIMARY KEY (agency_id, seq)
);

-- The newest checkpoint of each agency, kept by the checkpointer beside the checkpoints, so
-- finding the agencies due for one reads one row per agency.
CREATE TABLE audit_checkpoint_heads (
    agency_id TEXT NOT NULL PRIMARY KEY REFERENCES agencies (id),
    seq       BIGINT NOT NULL,
    at        BIGINT NOT NULL
);

-- A platform-set retention override (days); absent: the server's default.
CREATE TABLE audit_retention (
    agency_id  TEXT NOT NULL PRIMARY KEY REFERENCES agencies (id),
    days       BIGINT NOT NULL,
    set_by     TEXT NOT NULL,
    set_at     BIGINT NOT NULL
);

-- Row-level security (I1), as in 0001: forced, failing closed without a tenant.
ALTER TABLE audit_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_checkpoints
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
ALTER TABLE audit_checkpoint_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoint_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_checkpoint_heads
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
ALTER TABLE audit_retention ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_retention FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_retention
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));

-- The checkpointer and the pruner find the agencies with work to do across tenants: read-only,
-- and only the chain heads (sequence numbers, hashes, times: no event content).
CREATE POLICY audit_scan ON audit_heads FOR SELECT
    USING (current_setting('tessera.audit_scan', true) = 'on');
CREATE POLICY audit_scan ON audit_checkpoint_heads FOR SELECT
    USING (current_setting('tessera.audit_scan', true) = 'on');
CREATE POLICY audit_scan ON audit_retention FOR SELECT
    USING (current_setting('tessera.audit_scan', true) = 'on');
