-- Agency users (DESIGN §3 roles), their sessions and rotating refresh tokens. Usernames are
-- lowercase and unique per agency for ever: a deactivated user keeps its row, so a username is never
-- reused (IA-4 asks for at least one year).
CREATE TABLE users (
    agency_id             uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id                    uuid PRIMARY KEY,
    username              text NOT NULL CHECK (username ~ '^[a-z][a-z0-9._-]{2,63}$'),
    display_name          text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    role                  text NOT NULL CHECK (role IN ('officer', 'supervisor', 'prosecutor', 'judge', 'agency_admin', 'auditor')),
    status                text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'disabled', 'deactivated')),
    password_hash         text,
    totp_secret           bytea,          -- sealed under the master key
    totp_pending_secret   bytea,          -- during enrollment, until a code confirms it
    totp_last_step        bigint,         -- the last accepted TOTP time step: never accepted again
    enrollment_token_hash bytea UNIQUE,
    enrollment_expires_at timestamptz,
    failed_logins         integer NOT NULL DEFAULT 0,
    failed_window_start   timestamptz,
    locked_at             timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    last_login_at         timestamptz,
    deactivated_at        timestamptz,
    UNIQUE (agency_id, username)
);
GRANT SELECT, INSERT, UPDATE ON users TO {{agency_role}};

CREATE TABLE sessions (
    agency_id        uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now(),
    stepped_up_until timestamptz,
    revoked_at       timestamptz,
    revoke_reason    text,
    source_ip        text
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;
GRANT SELECT, INSERT, UPDATE ON sessions TO {{agency_role}};

CREATE TABLE refresh_tokens (
    agency_id  uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    hash       bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    spent_at   timestamptz
);
GRANT SELECT, INSERT, UPDATE ON refresh_tokens TO {{agency_role}};
