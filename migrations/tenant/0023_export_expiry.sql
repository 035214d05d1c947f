-- Finished export bundles are removed after WRIT_EXPORT_RETENTION_DAYS (default 7): an audit log
-- copy of who did what to which warrant does not linger on the server's disk. The job stays as
-- the record, `expired`. Bundles finished before this migration keep 7 days from their finish.
ALTER TABLE audit_exports
    DROP CONSTRAINT audit_exports_status_check,
    ADD CONSTRAINT audit_exports_status_check
        CHECK (status IN ('queued', 'running', 'done', 'failed', 'expired')),
    ADD COLUMN expires_at timestamptz;
UPDATE audit_exports SET expires_at = finished_at + interval '7 days' WHERE status = 'done';
