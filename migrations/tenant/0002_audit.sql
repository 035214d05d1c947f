-- The agency's audit chain. Requests insert their events into audit_pending in their own
-- transaction (so an event exists if and only if its change committed); the sequencer moves them,
-- in batches, into audit_log with seq, prevHash and hash, and stores the Merkle subtree hashes.

CREATE TABLE audit_pending (
    agency_id   uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id          uuid PRIMARY KEY,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    event       jsonb NOT NULL
);
CREATE INDEX audit_pending_order ON audit_pending (recorded_at, id);
GRANT SELECT, INSERT, DELETE ON audit_pending TO {{agency_role}};

CREATE TABLE audit_log (
    agency_id     uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    seq           bigint PRIMARY KEY CHECK (seq > 0),
    id            uuid NOT NULL UNIQUE,
    ts            timestamptz NOT NULL,
    action        text NOT NULL,
    actor_user_id uuid,
    resource_ids  text[] NOT NULL DEFAULT '{}',
    entry         text NOT NULL,   -- the canonical JSON line, exactly as hashed and exported
    hash          bytea NOT NULL UNIQUE,
    prev_hash     bytea NOT NULL UNIQUE
);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_actor ON audit_log (actor_user_id, seq);
CREATE INDEX audit_log_ts ON audit_log (ts);
CREATE INDEX audit_log_resource ON audit_log USING gin (resource_ids);
GRANT SELECT, INSERT ON audit_log TO {{agency_role}};

-- Hash of every complete aligned subtree: node (level, idx) covers leaves [idx·2^level, (idx+1)·2^level).
CREATE TABLE audit_merkle_nodes (
    agency_id uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    level     smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx       bigint NOT NULL CHECK (idx >= 0),
    hash      bytea NOT NULL,
    PRIMARY KEY (level, idx)
);
GRANT SELECT, INSERT ON audit_merkle_nodes TO {{agency_role}};

CREATE TABLE audit_checkpoints (
    agency_id uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id        bigserial PRIMARY KEY,
    tree_size bigint NOT NULL CHECK (tree_size >= 0),
    root      bytea NOT NULL,
    note      text NOT NULL,
    signed_at timestamptz NOT NULL
);
CREATE INDEX audit_checkpoints_size ON audit_checkpoints (tree_size, id);
GRANT SELECT, INSERT ON audit_checkpoints TO {{agency_role}};
GRANT USAGE ON SEQUENCE audit_checkpoints_id_seq TO {{agency_role}};

-- Append-only for every role, superusers included (triggers fire for them too).
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_nodes_append_only BEFORE UPDATE OR DELETE ON audit_merkle_nodes
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_nodes_no_truncate BEFORE TRUNCATE ON audit_merkle_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- Wake the sequencer when events commit (delivered at commit, once per transaction and payload).
CREATE FUNCTION audit_notify_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('writ_audit_pending', current_setting('writ.agency_id'));
    RETURN NULL;
END
$$;
CREATE TRIGGER audit_pending_notify AFTER INSERT ON audit_pending
    FOR EACH STATEMENT EXECUTE FUNCTION audit_notify_pending();
