-- Cluster coordination (issue 13). Global, like `signing_keys`: no agency_id, no tenant data,
-- so no row-level security.
--
-- `cluster_leases`: one row per cluster job (signing-key rotation, audit checkpoints, ...). A
-- node runs a job only while it holds the job's lease; it takes a free or expired lease, or
-- renews its own, with one compare-and-set statement. Times are Unix milliseconds.
CREATE TABLE cluster_leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

-- Every append to the change log notifies the channel `tessera_changes`. A statement-level
-- trigger, so no write path can forget it; PostgreSQL delivers a NOTIFY at commit (never for
-- a rolled-back write) and folds identical notifications of one transaction into one. The
-- payload is empty: listeners read the log itself (`changes_since`), which stays the truth.
CREATE FUNCTION tessera_notify_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tessera_changes', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER change_log_notify
    AFTER INSERT ON change_log
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_notify_change();
