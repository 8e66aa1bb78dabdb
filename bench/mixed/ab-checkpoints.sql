-- Between the runs of an A/B of builds before and after migration 0015 (docs/BENCHMARKS.md,
-- "Fourth pass"): syncs the old checkpoint heads and the new chain-head columns, so both builds
-- start from the same due agencies. Run as a superuser: psql … -f bench/mixed/ab-checkpoints.sql
INSERT INTO audit_checkpoint_heads (agency_id, seq, at) SELECT c.agency_id, max(c.seq), max(c.at) FROM audit_checkpoints c GROUP BY c.agency_id ON CONFLICT (agency_id) DO UPDATE SET seq = excluded.seq, at = excluded.at;
UPDATE audit_heads h SET checkpoint_seq = c.seq FROM audit_checkpoint_heads c WHERE c.agency_id = h.agency_id AND h.checkpoint_seq <> c.seq;
UPDATE audit_heads SET pending_since = 0 WHERE seq > checkpoint_seq AND pending_since IS NULL;
UPDATE audit_heads SET pending_since = NULL WHERE seq <= checkpoint_seq AND pending_since IS NOT NULL;
