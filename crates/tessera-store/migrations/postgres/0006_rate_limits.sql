-- Rate limits (issue 10): an API key's own limit (both columns, or neither), and each agency's
-- limit overrides: a plan name and explicit per-class quotas (a JSON object
-- {"<class>": {"limit": N, "period_seconds": S}}). Times are epoch milliseconds.

ALTER TABLE api_keys ADD COLUMN rate_limit BIGINT;
ALTER TABLE api_keys ADD COLUMN rate_period_seconds BIGINT;

CREATE TABLE agency_limits (
    agency_id  TEXT NOT NULL REFERENCES agencies (id),
    plan       TEXT,
    overrides  TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (agency_id)
);

-- Row-level security (I1), as in 0001: forced, failing closed without a tenant.
ALTER TABLE agency_limits ENABLE ROW LEVEL SECURITY;
ALTER TABLE agency_limits FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON agency_limits
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
