-- Suspension of agencies and accounts, and marketplace review of apps. A suspended object
-- keeps its data; its credentials are refused until it is reinstated. Times are epoch ms.

ALTER TABLE agencies ADD COLUMN suspended_reason TEXT;
ALTER TABLE agencies ADD COLUMN suspended_at BIGINT;

ALTER TABLE accounts ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE accounts ADD COLUMN suspended_reason TEXT;
ALTER TABLE accounts ADD COLUMN suspended_at BIGINT;
CREATE INDEX accounts_suspended ON accounts (agency_id, id) WHERE status = 'suspended';

-- review: pending | approved | rejected. approved_scopes: the scopes installable in other
-- agencies (JSON array); existing apps were never reviewed, so all their scopes stay usable.
ALTER TABLE apps ADD COLUMN review TEXT NOT NULL DEFAULT 'approved';
ALTER TABLE apps ADD COLUMN approved_scopes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE apps ADD COLUMN review_reason TEXT;
UPDATE apps SET approved_scopes = scopes;

-- Every node keeps the set of suspended accounts, and of apps whose owner is suspended, in
-- memory: the change-feed reader sees exactly those rows, read-only.
CREATE POLICY suspension_feed ON accounts FOR SELECT
    USING (current_setting('tessera.change_feed', true) = 'on' AND status = 'suspended');
CREATE POLICY suspension_feed ON apps FOR SELECT
    USING (current_setting('tessera.change_feed', true) = 'on'
           AND agency_id IN (SELECT id FROM agencies WHERE status = 'suspended'));
