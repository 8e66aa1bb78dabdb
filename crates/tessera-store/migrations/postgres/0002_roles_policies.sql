-- Custom roles and Cedar policies, per agency. Times are epoch milliseconds.
-- Bindings name a custom role by its id (`rol_…`) in `bindings.role`; the index below serves
-- "which bindings use this role" (delete_role, count_role_bindings).

CREATE TABLE roles (
    agency_id   TEXT NOT NULL REFERENCES agencies (id),
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    permissions TEXT NOT NULL, -- JSON array of permission names
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (agency_id, id),
    CONSTRAINT roles_name_unique UNIQUE (agency_id, name)
);

CREATE TABLE policies (
    agency_id   TEXT NOT NULL REFERENCES agencies (id),
    id          TEXT NOT NULL,
    description TEXT NOT NULL,
    cedar       TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (agency_id, id)
);

CREATE INDEX bindings_by_role ON bindings (agency_id, role);

-- Row-level security (I1), as in 0001: forced, failing closed without a tenant.
ALTER TABLE roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE roles FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON roles
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
ALTER TABLE policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE policies FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON policies
    USING (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''))
    WITH CHECK (agency_id = NULLIF(current_setting('tessera.agency_id', true), ''));
