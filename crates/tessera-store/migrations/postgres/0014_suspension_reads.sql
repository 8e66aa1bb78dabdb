-- Suspended agencies are few, and read often (issue 13, measured at 100k agencies): every
-- node lists them on each suspension change (`suspensions`), and the apps `suspension_feed`
-- policy asks for them. Suspended accounts have had their index since 0005; agencies were
-- scanned whole.
CREATE INDEX agencies_suspended ON agencies (id) WHERE status = 'suspended';

-- Permissive policies are OR-ed, and PostgreSQL evaluated this one's sub-select for every
-- client lookup by id (`find_client`, the token endpoint's first read), although the change
-- feed setting it tests first was off: 5-9 ms a token request at 100k agencies. A CASE is
-- evaluated in order, so the sub-select now runs only for the change-feed reader. Same rows.
DROP POLICY suspension_feed ON apps;
CREATE POLICY suspension_feed ON apps FOR SELECT
    USING (CASE WHEN current_setting('tessera.change_feed', true) = 'on'
                THEN agency_id IN (SELECT id FROM agencies WHERE status = 'suspended')
                ELSE false END);
