-- Deployment-wide keys that sign access tokens (ES256, published at /.well-known/jwks.json). The
-- private key is sealed under the master key; a dump of this table alone signs nothing.
CREATE TABLE control.token_signing_keys (
    kid            text PRIMARY KEY,
    sealed_key     bytea NOT NULL,
    public_key_pem text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    retired_at     timestamptz
);

-- Platform operators: onboard and offboard agencies, nothing more. Same credential columns as an
-- agency's users table, so one implementation serves both.
CREATE TABLE control.operators (
    id                    uuid PRIMARY KEY,
    username              text NOT NULL UNIQUE CHECK (username ~ '^[a-z][a-z0-9._-]{2,63}$'),
    display_name          text NOT NULL,
    role                  text NOT NULL DEFAULT 'platform_operator' CHECK (role = 'platform_operator'),
    status                text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'disabled', 'deactivated')),
    password_hash         text,
    totp_secret           bytea,
    totp_pending_secret   bytea,
    totp_last_step        bigint,
    enrollment_token_hash bytea UNIQUE,
    enrollment_expires_at timestamptz,
    failed_logins         integer NOT NULL DEFAULT 0,
    failed_window_start   timestamptz,
    locked_at             timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    last_login_at         timestamptz,
    deactivated_at        timestamptz
);

CREATE TABLE control.operator_sessions (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES control.operators (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now(),
    stepped_up_until timestamptz,
    revoked_at       timestamptz,
    revoke_reason    text,
    source_ip        text
);

CREATE TABLE control.operator_refresh_tokens (
    hash       bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES control.operator_sessions (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    spent_at   timestamptz
);

-- What operators did (login, onboarding). Not an agency's chain: operators hold no agency data.
CREATE TABLE control.platform_events (
    id          uuid PRIMARY KEY,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    event       jsonb NOT NULL
);
