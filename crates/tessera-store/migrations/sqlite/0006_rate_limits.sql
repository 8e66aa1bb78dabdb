-- Rate limits (issue 10): an API key's own limit (both columns, or neither), and each agency's
-- limit overrides: a plan name and explicit per-class quotas (a JSON object
-- {"<class>": {"limit": N, "period_seconds": S}}). Times are epoch milliseconds.

ALTER TABLE api_keys ADD COLUMN rate_limit INTEGER;
ALTER TABLE api_keys ADD COLUMN rate_period_seconds INTEGER;

CREATE TABLE agency_limits (
    agency_id  TEXT NOT NULL REFERENCES agencies (id),
    plan       TEXT,
    overrides  TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (agency_id)
);
