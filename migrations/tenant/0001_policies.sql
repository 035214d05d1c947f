-- Agency policies (rate limits, retention, session limits …), one JSON value per name.
CREATE TABLE policies (
    agency_id  uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    name       text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_.]{0,62}$'),
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agency_id, name)
);
GRANT SELECT, INSERT, UPDATE ON policies TO {{agency_role}};
