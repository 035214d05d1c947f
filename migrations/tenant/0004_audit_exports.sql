-- Audit export jobs (POST /v1/audit/exports). A request inserts a queued job in its transaction;
-- an export worker in any replica claims it (FOR UPDATE SKIP LOCKED) under a lease it keeps
-- renewing, writes the signed bundle and records where it is, its size and its SHA-256. A job
-- whose worker died (lease expired) is claimed again, a few times at most.
CREATE TABLE audit_exports (
    agency_id       uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id              uuid PRIMARY KEY,
    status          text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
    from_seq        bigint CHECK (from_seq > 0),
    to_seq          bigint CHECK (to_seq > 0),
    requested_by    uuid REFERENCES users (id),
    requested_at    timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    claim           uuid,           -- the current worker's claim; a stale worker's writes miss it
    lease_until     timestamptz,
    first_seq       bigint,
    last_seq        bigint,
    entry_count     bigint,
    checkpoint_size bigint,
    file_path       text,
    size_bytes      bigint,
    sha256          text,
    error           text,
    CHECK (from_seq IS NULL OR to_seq IS NULL OR from_seq <= to_seq)
);
CREATE INDEX audit_exports_open ON audit_exports (requested_at) WHERE status IN ('queued', 'running');
GRANT SELECT, INSERT, UPDATE ON audit_exports TO {{agency_role}};

-- Wake the export workers when a job is queued (delivered at commit).
CREATE FUNCTION audit_exports_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('writ_audit_export', current_setting('writ.agency_id'));
    RETURN NULL;
END
$$;
CREATE TRIGGER audit_exports_queued AFTER INSERT ON audit_exports
    FOR EACH STATEMENT EXECUTE FUNCTION audit_exports_notify();
