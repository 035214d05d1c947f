CREATE TABLE control.agencies (
    id           uuid PRIMARY KEY,
    slug         text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9-]{1,38}[a-z0-9]$'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    schema_name  text NOT NULL UNIQUE,
    role_name    text NOT NULL UNIQUE,
    key_provider text NOT NULL,
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'offboarding', 'offboarded')),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- References to agency keys. For the local provider `material` is the key sealed under the master key
-- file; cloud providers store only their key id.
CREATE TABLE control.agency_keys (
    agency_id      uuid NOT NULL REFERENCES control.agencies (id) ON DELETE CASCADE,
    purpose        text NOT NULL CHECK (purpose IN ('kek', 'signing')),
    version        integer NOT NULL CHECK (version > 0),
    provider       text NOT NULL,
    key_id         text NOT NULL,
    material       bytea,
    public_key_pem text,
    state          text NOT NULL DEFAULT 'enabled' CHECK (state IN ('enabled', 'disabled', 'pending_deletion')),
    valid_from     timestamptz NOT NULL DEFAULT now(),
    valid_to       timestamptz,
    PRIMARY KEY (agency_id, purpose, version)
);

CREATE TABLE control.tenant_migrations (
    agency_id  uuid NOT NULL REFERENCES control.agencies (id) ON DELETE CASCADE,
    version    bigint NOT NULL,
    name       text NOT NULL,
    checksum   bytea NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agency_id, version)
);
