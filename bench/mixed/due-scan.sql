-- The audit checkpointer's due scan before and after migration 0015 (docs/BENCHMARKS.md, "Fourth
-- pass"): the join of every head with its last checkpoint, then the marked heads. Run as a
-- superuser against a seeded database that has served the mix: psql … -f bench/mixed/due-scan.sql
\timing on
\o /dev/null
-- old: every head joined with its last checkpoint
SELECT h.agency_id, h.seq AS head_seq, COALESCE(c.seq, 0) AS cp_seq, COALESCE(c.at, 0) AS cp_at FROM audit_heads h LEFT JOIN audit_checkpoint_heads c ON c.agency_id = h.agency_id WHERE h.agency_id > '' AND h.seq > COALESCE(c.seq, 0) AND (h.seq - COALESCE(c.seq, 0) >= 1000 OR COALESCE(c.at, 0) <= (extract(epoch from now())*1000)::bigint - 60000) ORDER BY h.agency_id LIMIT 20000;
-- new: the marked heads
SELECT h.agency_id, h.seq, h.checkpoint_seq, h.pending_since FROM audit_heads h WHERE h.agency_id > '' AND h.seq > h.checkpoint_seq AND h.pending_since IS NOT NULL AND (h.seq - h.checkpoint_seq >= 1000 OR h.pending_since <= (extract(epoch from now())*1000)::bigint - 60000) ORDER BY h.agency_id LIMIT 20000;
