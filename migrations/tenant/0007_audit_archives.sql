-- Automated export of the audit chain to agency-controlled storage (policy `audit.archive`). One row
-- per uploaded bundle: the seq range it holds, where it was put, and the SHA-256 and size of the
-- `.tar.gz` as uploaded. The next archive starts after the highest to_seq. A row is written in the
-- same transaction as the `audit.archived` entry, only after both objects were uploaded; it is never
-- changed or deleted.
CREATE TABLE audit_archives (
    agency_id       uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id              uuid PRIMARY KEY,
    from_seq        bigint NOT NULL CHECK (from_seq > 0),
    to_seq          bigint NOT NULL,
    object_path     text NOT NULL,   -- the bundle, as a URL: s3://bucket/key or file:///path
    checkpoint_path text NOT NULL,   -- the signed checkpoint uploaded with it
    sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes           bigint NOT NULL CHECK (bytes > 0),
    created_at      timestamptz NOT NULL,
    CHECK (to_seq >= from_seq),
    -- Two archivers never record one range twice (they also take an advisory lock).
    UNIQUE (from_seq),
    UNIQUE (to_seq)
);
CREATE INDEX audit_archives_latest ON audit_archives (created_at);
GRANT SELECT, INSERT ON audit_archives TO {{agency_role}};

CREATE TRIGGER audit_archives_append_only BEFORE UPDATE OR DELETE ON audit_archives
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_archives_no_truncate BEFORE TRUNCATE ON audit_archives
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
