-- Pending events the sequencer cannot seal (too large for an entry, or not an event at all:
-- written by an earlier server version or by hand). Each is kept here as it was stored, and a
-- `system.error` entry naming it takes its place in the chain, so that one bad row never holds
-- up every later event of the agency.
CREATE TABLE audit_quarantine (
    agency_id      uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id             uuid PRIMARY KEY,
    recorded_at    timestamptz NOT NULL,
    event          jsonb NOT NULL,
    reason         text NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
GRANT SELECT, INSERT ON audit_quarantine TO {{agency_role}};
