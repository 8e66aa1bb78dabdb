-- Cluster coordination (issue 13): one lease per cluster job (see the PostgreSQL migration).
-- SQLite serves one process, so the leases are always free to it, but the same code runs on
-- both backends. Times are Unix milliseconds. (No change notification here: SQLite nodes
-- poll the change log.)
CREATE TABLE cluster_leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
