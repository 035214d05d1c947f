//! The database roles of a deployment (README, "Database roles"):
//!
//! - [`OWNER_ROLE`] owns the control schema, every agency schema and their tables. It runs the
//!   migrations, onboards and offboards agencies and prunes audit entries. NOSUPERUSER,
//!   NOBYPASSRLS, CREATEROLE (it creates the agency roles).
//! - [`SERVING_ROLE`] is the login `writ serve` uses. NOSUPERUSER, NOBYPASSRLS, NOCREATEROLE,
//!   NOINHERIT: it holds only the control-plane privileges the serving path needs, and reaches an
//!   agency's tables only through `SET LOCAL ROLE` to that agency's role ([`crate::TenantTx`]).
//!
//! A superuser running the migrations creates both roles when they are missing and hands every
//! existing object to the owner; after that the owner migrates on its own.

use sqlx::{PgConnection, PgPool, Row};

use crate::TenancyError;

/// Owns the schemas and tables; used for migrations, onboarding, offboarding and pruning.
pub const OWNER_ROLE: &str = "writ_owner";
/// The login the server serves through.
pub const SERVING_ROLE: &str = "writ_app";

/// Creates the two roles when missing, lets the owner create in this database, hands every
/// control-plane and agency object to the owner and makes both roles members of every agency
/// role. Idempotent; needs a superuser.
const SUPERUSER_SETUP: &str = r#"
DO $setup$
DECLARE
    schemas text[];
    agency_roles text[];
    todo text[];
    x text;
BEGIN
    -- Roles are cluster-wide: another database's first migration may be creating them right now.
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'writ_owner') THEN
            CREATE ROLE writ_owner LOGIN NOSUPERUSER NOBYPASSRLS CREATEROLE NOCREATEDB NOINHERIT;
        END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'writ_app') THEN
            CREATE ROLE writ_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOINHERIT;
        END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    EXECUTE format('GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %I TO writ_owner', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO writ_app', current_database());
    IF to_regclass('control.agencies') IS NULL THEN
        IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'control') THEN
            ALTER SCHEMA control OWNER TO writ_owner;
        END IF;
        RETURN;
    END IF;
    -- A database migrated before the roles existed: its objects belong to whoever ran it. The
    -- lists are read whole first: a table being read cannot change owner in the same session.
    SELECT coalesce(array_agg(schema_name), '{}'), coalesce(array_agg(role_name), '{}')
        INTO schemas, agency_roles FROM control.agencies;
    schemas := array_append(schemas, 'control');
    SELECT coalesce(array_agg(nspname::text), '{}') INTO todo FROM pg_namespace
        WHERE nspname = ANY (schemas) AND nspowner <> 'writ_owner'::regrole;
    FOREACH x IN ARRAY todo LOOP
        EXECUTE format('ALTER SCHEMA %I OWNER TO writ_owner', x);
    END LOOP;
    -- Indexes and owned sequences follow their table.
    SELECT coalesce(array_agg(c.oid::regclass::text), '{}') INTO todo
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY (schemas) AND c.relkind IN ('r', 'p')
          AND c.relowner <> 'writ_owner'::regrole;
    FOREACH x IN ARRAY todo LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO writ_owner', x);
    END LOOP;
    SELECT coalesce(array_agg(p.oid::regprocedure::text), '{}') INTO todo
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY (schemas) AND p.proowner <> 'writ_owner'::regrole;
    FOREACH x IN ARRAY todo LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO writ_owner', x);
    END LOOP;
    FOREACH x IN ARRAY agency_roles LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = x) THEN
            EXECUTE format('GRANT %I TO writ_owner, writ_app', x);
        END IF;
    END LOOP;
END
$setup$
"#;

/// Whether the session's login is a superuser (it may create the roles and take over objects).
async fn session_is_superuser(conn: &mut PgConnection) -> Result<bool, TenancyError> {
    Ok(
        sqlx::query("SELECT rolsuper FROM pg_roles WHERE rolname = session_user")
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.try_get::<bool, _>(0))
            .transpose()?
            .unwrap_or(false),
    )
}

/// Run as a superuser: creates the roles when missing and hands existing objects to the owner.
pub(crate) async fn setup_as_superuser(conn: &mut PgConnection) -> Result<(), TenancyError> {
    if session_is_superuser(conn).await? {
        sqlx::raw_sql(SUPERUSER_SETUP).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Makes the rest of the transaction act as the owner, so what it creates belongs to the owner
/// whoever logged in (a superuser, the owner itself, or a member of the owner role).
pub(crate) async fn act_as_owner(conn: &mut PgConnection) -> Result<(), TenancyError> {
    let current: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut *conn)
        .await?;
    if current == OWNER_ROLE {
        return Ok(());
    }
    let allowed: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) \
            AND pg_has_role(session_user, $1, 'MEMBER')",
    )
    .bind(OWNER_ROLE)
    .fetch_one(&mut *conn)
    .await?;
    if !allowed {
        return Err(TenancyError::invalid(
            "database role",
            format!(
                "{current} is neither {OWNER_ROLE} nor a member of it (or the role does not \
                 exist yet): run `writ migrate` once as a PostgreSQL superuser, which creates \
                 {OWNER_ROLE} and {SERVING_ROLE}, then use {OWNER_ROLE} (see README, Database roles)"
            ),
        ));
    }
    sqlx::query("SELECT set_config('role', $1, true)")
        .bind(OWNER_ROLE)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The login role of a pool's connections and whether it is a superuser or bypasses row-level
/// security: the serving pool must answer `false, false`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRole {
    pub name: String,
    pub superuser: bool,
    pub bypass_rls: bool,
}

pub async fn login_role(pool: &PgPool) -> Result<LoginRole, TenancyError> {
    let row = sqlx::query(
        "SELECT rolname::text AS name, rolsuper, rolbypassrls FROM pg_roles \
         WHERE rolname = session_user",
    )
    .fetch_one(pool)
    .await?;
    Ok(LoginRole {
        name: row.try_get("name")?,
        superuser: row.try_get("rolsuper")?,
        bypass_rls: row.try_get("rolbypassrls")?,
    })
}
