-- Retention of the audit chain (DESIGN §6; docs/AUDIT-FORMAT.md §8, "Minimum-index statements"):
-- legal holds, the signed minimum-index statements, and the one exception to append-only: entries
-- below the latest signed minimum index may be deleted while no legal hold is active. Merkle nodes
-- and checkpoints stay append-only: they are hashes only, and the proofs of the remaining entries
-- need them. The agency role still has no DELETE privilege: pruning runs as the owner.

-- While a hold is active (not released), nothing is pruned. A hold is released, never deleted.
CREATE TABLE audit_legal_holds (
    agency_id   uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id          uuid PRIMARY KEY,
    reason      text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    placed_by   uuid NOT NULL REFERENCES users (id),
    placed_at   timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz,
    released_by uuid REFERENCES users (id),
    CHECK ((released_at IS NULL) = (released_by IS NULL)),
    CHECK (released_at IS NULL OR released_at >= placed_at)
);
CREATE INDEX audit_legal_holds_active ON audit_legal_holds (placed_at) WHERE released_at IS NULL;
GRANT SELECT, INSERT, UPDATE ON audit_legal_holds TO {{agency_role}};

CREATE FUNCTION audit_legal_hold_release_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.released_at IS NULL AND NEW.released_at IS NOT NULL
       AND (NEW.agency_id, NEW.id, NEW.reason, NEW.placed_by, NEW.placed_at)
           IS NOT DISTINCT FROM (OLD.agency_id, OLD.id, OLD.reason, OLD.placed_by, OLD.placed_at) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a legal hold is only ever released, once: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_legal_holds_release_only BEFORE UPDATE ON audit_legal_holds
    FOR EACH ROW EXECUTE FUNCTION audit_legal_hold_release_only();
CREATE TRIGGER audit_legal_holds_no_delete BEFORE DELETE ON audit_legal_holds
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_legal_holds_no_truncate BEFORE TRUNCATE ON audit_legal_holds
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- One row per pruning: the signed statement (note) and its fields, for the delete guard below and
-- for verification and exports. Written by the owner only; never changed or deleted.
CREATE TABLE audit_minimum_index (
    agency_id      uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id             bigserial PRIMARY KEY,
    minimum_index  bigint NOT NULL CHECK (minimum_index >= 2),
    prev_hash      bytea NOT NULL,
    tree_size      bigint NOT NULL CHECK (tree_size >= minimum_index),
    root           bytea NOT NULL,
    note           text NOT NULL,
    signed_at      timestamptz NOT NULL,
    pruned         bigint NOT NULL CHECK (pruned >= 0),
    retention_days integer NOT NULL CHECK (retention_days >= 365)
);
CREATE INDEX audit_minimum_index_latest ON audit_minimum_index (minimum_index);
GRANT SELECT ON audit_minimum_index TO {{agency_role}};

CREATE TRIGGER audit_minimum_index_append_only BEFORE UPDATE OR DELETE ON audit_minimum_index
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_minimum_index_no_truncate BEFORE TRUNCATE ON audit_minimum_index
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- The guards read this schema's tables whatever the caller's search_path (a superuser's session
-- has none of ours): SET search_path FROM CURRENT pins the agency schema the migrator set.
CREATE FUNCTION audit_minimum_index_never_lowers() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
DECLARE
    latest bigint;
BEGIN
    SELECT max(minimum_index) INTO latest FROM audit_minimum_index;
    IF latest IS NOT NULL AND NEW.minimum_index < latest THEN
        RAISE EXCEPTION 'the minimum index never goes down: % is below %', NEW.minimum_index, latest
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_minimum_index_monotonic BEFORE INSERT ON audit_minimum_index
    FOR EACH ROW EXECUTE FUNCTION audit_minimum_index_never_lowers();

-- audit_log: UPDATE stays refused for everyone; DELETE only below the latest signed minimum index
-- and only while no legal hold is active (TRUNCATE stays refused by 0002's trigger).
CREATE FUNCTION audit_log_prune_guard() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
DECLARE
    minimum bigint;
BEGIN
    SELECT max(minimum_index) INTO minimum FROM audit_minimum_index;
    IF minimum IS NULL OR OLD.seq >= minimum THEN
        RAISE EXCEPTION 'the audit log is append-only: DELETE of seq % refused (only entries below the signed minimum index, now %, are ever pruned)',
            OLD.seq, coalesce(minimum::text, 'none')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT 1 FROM audit_legal_holds WHERE released_at IS NULL) THEN
        RAISE EXCEPTION 'the audit log is append-only and under legal hold: DELETE of seq % refused', OLD.seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END
$$;
DROP TRIGGER audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_log_prune_only BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_prune_guard();

-- Retention is never under 365 days (CJIS AU-11), whoever writes the policy. NOT VALID: a value
-- stored before this migration does not block it; the pruner refuses such a value anyway.
ALTER TABLE policies ADD CONSTRAINT policies_audit_retention_min CHECK (
    name <> 'audit.retention'
    OR CASE WHEN jsonb_typeof(value -> 'days') = 'number'
            THEN (value ->> 'days')::numeric >= 365
            ELSE false END
) NOT VALID;
