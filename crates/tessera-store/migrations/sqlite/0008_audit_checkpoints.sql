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
    generation     INTEGER NOT NULL UNIQUE,
    state          TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    activates_at   INTEGER NOT NULL,
    retires_at     INTEGER,
    public_key     BLOB NOT NULL,
    sealed_private BLOB NOT NULL
);

-- One row per (agency, seq): the primary key makes a duplicate checkpoint impossible, however
-- many nodes sign at once (they insert with ON CONFLICT DO NOTHING).
CREATE TABLE audit_checkpoints (
    agency_id TEXT NOT NULL REFERENCES agencies (id),
    seq       INTEGER NOT NULL,
    hash      BLOB NOT NULL,
    at        INTEGER NOT NULL,
    kid       TEXT NOT NULL,
    signature BLOB NOT NULL,
    PRIMARY KEY (agency_id, seq)
);

-- The newest checkpoint of each agency, kept by the checkpointer beside the checkpoints, so
-- finding the agencies due for one reads one row per agency.
CREATE TABLE audit_checkpoint_heads (
    agency_id TEXT NOT NULL PRIMARY KEY REFERENCES agencies (id),
    seq       INTEGER NOT NULL,
    at        INTEGER NOT NULL
);

-- A platform-set retention override (days); absent: the server's default.
CREATE TABLE audit_retention (
    agency_id  TEXT NOT NULL PRIMARY KEY REFERENCES agencies (id),
    days       INTEGER NOT NULL,
    set_by     TEXT NOT NULL,
    set_at     INTEGER NOT NULL
);

