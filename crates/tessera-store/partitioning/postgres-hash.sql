-- Hash partitioning of Tessera's largest tenant tables by agency_id (stock PostgreSQL 13+).
-- Not a migration: an operator's tool for when one table outgrows what one heap and its
-- indexes serve well (see docs/SCALING.md). Tested by
-- crates/tessera-server/tests/api/seed.rs (`seeded_partitioned_postgres_data_serves_every_path`),
-- which runs this file on a migrated database, seeds it, and serves every path against it.
--
-- Run it as the tables' OWNER (the role `tessera migrate` uses), during a maintenance window:
--     psql "$OWNER_URL" -v ON_ERROR_STOP=1 -f postgres-hash.sql
-- (8 partitions per table: change the number in the calls at the end.)
-- It is one transaction: it either converts every table or none. Each table is locked
-- (ACCESS EXCLUSIVE) while it is copied, so the servers wait meanwhile.
--
-- What it does, per table: keeps the table's definition (constraints with their names, which
-- the store reads to report conflicts; indexes; foreign keys from and to it; row-level
-- security policies), renames it away, creates `PARTITION BY HASH (agency_id)` with the same
-- columns and `parts` partitions named `<table>_p<k>`, copies the rows, drops the old table,
-- and puts the definition back on the new one, with ENABLE + FORCE ROW LEVEL SECURITY and the
-- policies on the table and on every partition (so the partitions are tenant tables too). The
-- runtime role's privileges come from the owner's default privileges
-- (`tessera migrate --grant-to`), which apply to the new tables too.
--
-- Limits (PostgreSQL's, not Tessera's):
-- * every PRIMARY KEY and UNIQUE constraint of a partitioned table must include agency_id.
--   The converted tables qualify: their keys lead with agency_id. A table with a global
--   unique lookup (api_key_secrets.secret_hash, app_secrets.secret_hash, apps.id,
--   resource_servers.identifier) is not converted here; it would need a global lookup table
--   (hash -> agency) first.
-- * a lookup by another column (users.email_key at sign-in) scans the index of every
--   partition: `parts` index probes instead of one.
-- * global tables (agencies, revision, signing_keys, audit_keys, master_keys, root_secrets,
--   tessera_migrations) stay unpartitioned; change_log stays too (the feed reads it in
--   revision order across agencies).

BEGIN;

CREATE FUNCTION pg_temp.partition_by_agency(tbl text, parts int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    later text[] := '{}';
    k int;
    old text := tbl || '_unpartitioned';
    stmt text;
BEGIN
    -- The table's own constraints (primary key, unique, check, foreign keys), by name; not the
    -- per-partition clones PostgreSQL makes of a key that references a partitioned table.
    FOR r IN SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
             WHERE conrelid = tbl::regclass AND contype IN ('p', 'u', 'c', 'f') AND conparentid = 0
             ORDER BY contype <> 'p', conname LOOP
        later := later || format('ALTER TABLE %I ADD CONSTRAINT %I %s', tbl, r.conname, r.def);
    END LOOP;
    -- Indexes that are not a constraint's (plain, partial, unique indexes).
    FOR r IN SELECT pg_get_indexdef(i.indexrelid) AS def FROM pg_index i
             WHERE i.indrelid = tbl::regclass
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid) LOOP
        later := later || r.def;
    END LOOP;
    -- Foreign keys of other tables that reference this one.
    FOR r IN SELECT conname, conrelid::regclass::text AS rel, pg_get_constraintdef(oid) AS def FROM pg_constraint
             WHERE confrelid = tbl::regclass AND conrelid <> tbl::regclass AND contype = 'f'
               AND conparentid = 0 LOOP
        later := later || format('ALTER TABLE %s ADD CONSTRAINT %I %s', r.rel, r.conname, r.def);
    END LOOP;
    -- Row-level security policies: on the table, and on each partition too (a query that
    -- names a partition directly does not go through the parent's policies).
    FOR r IN SELECT * FROM pg_policies WHERE schemaname = current_schema() AND tablename = tbl LOOP
        FOR k IN -1 .. parts - 1 LOOP
            later := later || format('CREATE POLICY %I ON %I AS %s FOR %s TO %s%s%s', r.policyname,
                CASE WHEN k < 0 THEN tbl ELSE tbl || '_p' || k END,
                r.permissive, r.cmd, array_to_string(r.roles, ', '),
                CASE WHEN r.qual IS NULL THEN '' ELSE ' USING (' || r.qual || ')' END,
                CASE WHEN r.with_check IS NULL THEN '' ELSE ' WITH CHECK (' || r.with_check || ')' END);
        END LOOP;
    END LOOP;

    EXECUTE format('ALTER TABLE %I RENAME TO %I', tbl, old);
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING STORAGE) PARTITION BY HASH (agency_id)', tbl, old);
    FOR k IN 0 .. parts - 1 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
            tbl || '_p' || k, tbl, parts, k);
    END LOOP;
    EXECUTE format('INSERT INTO %I SELECT * FROM %I', tbl, old);
    EXECUTE format('DROP TABLE %I CASCADE', old);
    FOREACH stmt IN ARRAY later LOOP
        EXECUTE stmt;
    END LOOP;
    -- FORCE comes back at the end, for every table under row-level security.
    FOR k IN -1 .. parts - 1 LOOP
        stmt := CASE WHEN k < 0 THEN tbl ELSE tbl || '_p' || k END;
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', stmt);
    END LOOP;
END;
$$;

-- The owner reads every row (the copy, the foreign-key checks) only with FORCE off: off for
-- every table during this transaction (under exclusive locks: nobody else sees it), back on
-- for every table under row-level security before the commit.
DO $$
DECLARE t text;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relforcerowsecurity AND c.relkind IN ('r', 'p') LOOP
        EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', t);
    END LOOP;
END;
$$;

-- Referenced tables first, so the foreign keys put back point at partitioned tables.
SELECT pg_temp.partition_by_agency('accounts', 8);
SELECT pg_temp.partition_by_agency('users', 8);
SELECT pg_temp.partition_by_agency('api_keys', 8);
SELECT pg_temp.partition_by_agency('bindings', 8);
SELECT pg_temp.partition_by_agency('audit_events', 8);

DO $$
DECLARE t text;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relrowsecurity AND c.relkind IN ('r', 'p') LOOP
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    END LOOP;
END;
$$;

COMMIT;
