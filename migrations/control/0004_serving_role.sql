-- The serving login role (writ_app, README "Database roles"): what `writ serve` needs of the control
-- plane to authenticate and route, and nothing more. It owns nothing and reaches an agency's tables
-- only through SET LOCAL ROLE to the agency role (granted at onboarding). Schema changes,
-- onboarding, offboarding and pruning run as the owner (writ_owner). A new control table is
-- invisible to the server until a migration grants what the serving path needs of it.
GRANT USAGE ON SCHEMA control TO writ_app;

-- Routing and readiness (`/readyz` compares applied migrations with the binary's).
GRANT SELECT ON control.agencies, control.schema_migrations, control.tenant_migrations TO writ_app;

-- Agency keys: rotation adds a version and closes the previous one, revocation disables one, and
-- key maintenance erases the sealed material of versions past their deletion date.
GRANT SELECT, INSERT ON control.agency_keys TO writ_app;
GRANT UPDATE (valid_to, state, disabled_at, material) ON control.agency_keys TO writ_app;

-- Access-token signing keys (the first is created on first use) and the platform operators'
-- accounts, sessions and refresh tokens.
GRANT SELECT, INSERT ON control.token_signing_keys TO writ_app;
GRANT SELECT, INSERT, UPDATE ON control.operators, control.operator_sessions,
    control.operator_refresh_tokens TO writ_app;

-- Operators' actions are recorded, never changed.
GRANT INSERT ON control.platform_events TO writ_app;
