-- Envelope encryption: every protected object gets its own AES-256 data key, stored here wrapped
-- by a version of the agency's key-encryption key. Rotation re-wraps them in the background.
CREATE TABLE data_keys (
    agency_id    uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id           uuid NOT NULL,
    kek_version  integer NOT NULL CHECK (kek_version > 0),
    wrapped      bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    rewrapped_at timestamptz,
    PRIMARY KEY (agency_id, id)
);
CREATE INDEX data_keys_by_version ON data_keys (agency_id, kek_version);
GRANT SELECT, INSERT, UPDATE ON data_keys TO {{agency_role}};

-- One re-wrap run after a key-encryption key rotation, with its progress.
CREATE TABLE key_rewraps (
    agency_id   uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id          uuid NOT NULL,
    to_version  integer NOT NULL CHECK (to_version > 0),
    total       bigint NOT NULL DEFAULT 0,
    done        bigint NOT NULL DEFAULT 0,
    failed      bigint NOT NULL DEFAULT 0,
    status      text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed', 'superseded')),
    error       text,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (agency_id, id)
);
GRANT SELECT, INSERT, UPDATE ON key_rewraps TO {{agency_role}};
