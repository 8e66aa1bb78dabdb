-- Per-person keys (issue 12, crypto-shredding of one person): each person's 32-byte key, sealed
-- under the agency's data key. `sealed` NULL is a tombstone: the person was erased, and no key
-- is ever made again for that subject (later events about them are stored erased).
CREATE TABLE person_keys (
    agency_id  TEXT NOT NULL REFERENCES agencies (id),
    subject    TEXT NOT NULL,
    sealed     BYTEA,
    created_at BIGINT NOT NULL,
    erased_at  BIGINT,
    PRIMARY KEY (agency_id, subject)
);

-- Row-level security (I1), as in 0001 and 0010: forced, failing closed without a tenant.
ALTER TABLE person_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE person_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON person_keys
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
