-- Compliance evidence (issue 12): the events acted on behalf of a user (the acts of an
-- impersonation session, a user's own impersonation history) are found through this index,
-- never by scanning the agency's chain.
CREATE INDEX audit_events_on_behalf ON audit_events (agency_id, on_behalf_of, seq)
    WHERE on_behalf_of IS NOT NULL;
