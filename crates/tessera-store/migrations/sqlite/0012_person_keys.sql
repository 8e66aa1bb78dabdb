-- Per-person keys (issue 12, crypto-shredding of one person): each person's 32-byte key, sealed
-- under the agency's data key. `sealed` NULL is a tombstone: the person was erased, and no key
-- is ever made again for that subject (later events about them are stored erased).
CREATE TABLE person_keys (
    agency_id  TEXT NOT NULL REFERENCES agencies (id),
    subject    TEXT NOT NULL,
    sealed     BLOB,
    created_at INTEGER NOT NULL,
    erased_at  INTEGER,
    PRIMARY KEY (agency_id, subject)
);
