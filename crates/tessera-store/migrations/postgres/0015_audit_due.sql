-- The audit checkpointer's due list (issue 13, measured at 100k agencies). Each pass used to
-- join every agency's chain head with its last checkpoint (`audit_checkpoint_heads`: a
-- parallel sequential scan of 100k rows every 15 s) to find the agencies with events since.
-- Now the chain head itself says both:
-- - `pending_since` (epoch ms): set by the append path (the head's update it makes anyway,
--   under the same lock) when the first event after a checkpoint arrives; cleared by the
--   transaction that stores a checkpoint of the head;
-- - `checkpoint_seq`: the newest checkpoint's sequence number, set by that transaction.
-- A partial index holds only the marked heads. `audit_checkpoint_heads` is no longer written
-- (kept for nodes of the previous release during a roll; dropped in a later release).
ALTER TABLE audit_heads ADD COLUMN pending_since BIGINT;
ALTER TABLE audit_heads ADD COLUMN checkpoint_seq BIGINT NOT NULL DEFAULT 0;

-- Backfill, with row-level security lifted for this transaction only (the migration's owner
-- updates every agency's head): heads with events after their last checkpoint are due at once
-- (0: their events' times are not known here).
ALTER TABLE audit_heads NO FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoint_heads NO FORCE ROW LEVEL SECURITY;
UPDATE audit_heads h SET checkpoint_seq = c.seq FROM audit_checkpoint_heads c WHERE c.agency_id = h.agency_id;
UPDATE audit_heads SET pending_since = 0 WHERE seq > checkpoint_seq;
ALTER TABLE audit_heads FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoint_heads FORCE ROW LEVEL SECURITY;

-- Leads with agency_id (a pass pages by it), and holds only the marked heads.
CREATE INDEX audit_heads_pending ON audit_heads (agency_id) WHERE pending_since IS NOT NULL;
