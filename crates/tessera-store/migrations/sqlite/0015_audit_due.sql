-- The audit checkpointer's due list (issue 13): the chain head says when its first event after
-- a checkpoint arrived (`pending_since`, epoch ms, set by the append path and cleared by the
-- transaction that stores a checkpoint) and which checkpoint is its newest (`checkpoint_seq`).
-- A partial index holds only the marked heads, so a pass reads those instead of every
-- agency's head joined with `audit_checkpoint_heads` (no longer written; dropped later).
ALTER TABLE audit_heads ADD COLUMN pending_since INTEGER;
ALTER TABLE audit_heads ADD COLUMN checkpoint_seq INTEGER NOT NULL DEFAULT 0;

-- Heads with events after their last checkpoint are due at once.
UPDATE audit_heads SET checkpoint_seq = COALESCE((SELECT c.seq FROM audit_checkpoint_heads c WHERE c.agency_id = audit_heads.agency_id), 0);
UPDATE audit_heads SET pending_since = 0 WHERE seq > checkpoint_seq;

CREATE INDEX audit_heads_pending ON audit_heads (agency_id) WHERE pending_since IS NOT NULL;
