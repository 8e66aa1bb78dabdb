-- The agency's authorization snapshot lists its users who are not active (disabled or
-- suspended), so that a check about a user needs no read of its row (issue 13, the cold path:
-- the first check in an agency not held read the subject's row after the snapshot, one
-- more transaction on the critical path). Such users are few; this index holds only them,
-- so the snapshot's read touches no user row of an agency whose users are all active.
CREATE INDEX users_inactive ON users (agency_id, id) WHERE status <> 'active';
