-- Resource servers (issue 11, RFC 8707): the services tokens can be bound to. A row of the
-- platform tenant serves every agency; an agency's row serves tokens of that agency only.
-- `identifier` (an absolute URI, the tokens' `aud`) is unique across all of them, so one
-- service never answers to two owners. `scopes` is a JSON array of catalog scopes.
-- Codes and grants keep the resource they were bound to (refreshes keep the `aud`).
-- Times are epoch milliseconds.

CREATE TABLE resource_servers (
    agency_id  TEXT NOT NULL REFERENCES agencies (id),
    id         TEXT NOT NULL,
    identifier TEXT NOT NULL,
    name       TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (agency_id, id)
);
CREATE UNIQUE INDEX resource_servers_identifier ON resource_servers (identifier);

ALTER TABLE oauth_codes ADD COLUMN resource TEXT;
ALTER TABLE oauth_grants ADD COLUMN resource TEXT;

-- Row-level security (I1), as in 0001: forced, failing closed without a tenant.
ALTER TABLE resource_servers ENABLE ROW LEVEL SECURITY;
ALTER TABLE resource_servers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON resource_servers
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));

-- The token endpoint resolves a `resource` before it knows whose it is: this read-only policy
-- shows exactly the row with the identifier the caller already names.
CREATE POLICY resource_lookup ON resource_servers FOR SELECT
    USING (identifier = NULLIF(current_setting('tessera.resource_identifier', true), ''));
