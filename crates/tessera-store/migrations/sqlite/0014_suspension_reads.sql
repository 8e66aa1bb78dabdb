-- Suspended agencies are few, and every node lists them on each suspension change: a
-- partial index instead of a scan of every agency (issue 13; accounts have one since 0005).
CREATE INDEX agencies_suspended ON agencies (id) WHERE status = 'suspended';
