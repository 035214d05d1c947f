//! The migration runner. Control migrations run once per database; tenant migrations run once per
//! agency schema. Both are serialised by an advisory lock so replicas starting together agree.

use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::{AgencyIdent, TenancyError, list_agencies};

/// One embedded migration file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    fn checksum(&self) -> Vec<u8> {
        Sha256::digest(self.sql.as_bytes()).to_vec()
    }
}

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

pub fn control_migrations() -> &'static [Migration] {
    CONTROL
}

pub fn tenant_migrations() -> &'static [Migration] {
    TENANT
}

/// Held for the whole of a migration run, so two runners never interleave.
const MIGRATION_LOCK: i64 = 0x7772_6974_6d69_6772;

/// What a run applied: control versions, and (agency slug, version) pairs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub control: Vec<i64>,
    pub tenant: Vec<(String, i64)>,
}

impl MigrationReport {
    pub fn is_empty(&self) -> bool {
        self.control.is_empty() && self.tenant.is_empty()
    }
}

/// Brings the control plane and every agency schema up to date. Idempotent.
pub async fn migrate_all(
    pool: &PgPool,
    tenant_set: &[Migration],
) -> Result<MigrationReport, TenancyError> {
    let mut report = MigrationReport::default();
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    // Everything below is created by, and belongs to, the owner role, whoever logged in.
    crate::roles::setup_as_superuser(&mut tx).await?;
    crate::roles::act_as_owner(&mut tx).await?;
    sqlx::raw_sql(
        "CREATE SCHEMA IF NOT EXISTS control; \
         CREATE TABLE IF NOT EXISTS control.schema_migrations ( \
             version bigint PRIMARY KEY, name text NOT NULL, checksum bytea NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&mut *tx)
    .await?;
    let applied = applied_versions(
        &mut tx,
        sqlx::query("SELECT version, name, checksum FROM control.schema_migrations"),
    )
    .await?;
    for m in CONTROL {
        if check_applied(&applied, m)? {
            continue;
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(m.sql))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO control.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(m.checksum())
        .execute(&mut *tx)
        .await?;
        report.control.push(m.version);
    }
    for agency in list_agencies(&mut *tx).await? {
        if agency.status != "active" {
            continue;
        }
        for v in apply_tenant(&mut tx, agency.id, &agency.ident, tenant_set).await? {
            report.tenant.push((agency.slug.clone(), v));
        }
    }
    tx.commit().await?;
    Ok(report)
}

async fn applied_versions(
    conn: &mut PgConnection,
    query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> Result<Vec<(i64, String, Vec<u8>)>, TenancyError> {
    Ok(query
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("version")?,
                r.try_get("name")?,
                r.try_get("checksum")?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?)
}

/// True when `m` was applied already; an error when it was applied with other contents.
fn check_applied(applied: &[(i64, String, Vec<u8>)], m: &Migration) -> Result<bool, TenancyError> {
    match applied.iter().find(|(v, _, _)| *v == m.version) {
        None => Ok(false),
        Some((_, _, sum)) if *sum == m.checksum() => Ok(true),
        Some((_, name, _)) => Err(TenancyError::MigrationEdited {
            version: m.version,
            name: name.clone(),
        }),
    }
}

/// Applies the missing tenant migrations to one agency schema, then makes sure every table of the
/// schema has forced row-level security. Runs inside the caller's transaction.
pub(crate) async fn apply_tenant(
    conn: &mut PgConnection,
    agency_id: Uuid,
    ident: &AgencyIdent,
    set: &[Migration],
) -> Result<Vec<i64>, TenancyError> {
    let applied = applied_versions(
        conn,
        sqlx::query(
            "SELECT version, name, checksum FROM control.tenant_migrations WHERE agency_id = $1",
        )
        .bind(agency_id),
    )
    .await?;
    let mut done = Vec::new();
    sqlx::query(
        "SELECT set_config('search_path', $1, true), set_config('writ.agency_id', $2, true)",
    )
    .bind(ident.quoted())
    .bind(agency_id.to_string())
    .execute(&mut *conn)
    .await?;
    for m in set {
        if check_applied(&applied, m)? {
            continue;
        }
        let sql = m.sql.replace("{{agency_role}}", &ident.quoted());
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await?;
        sqlx::query("INSERT INTO control.tenant_migrations (agency_id, version, name, checksum) VALUES ($1, $2, $3, $4)")
            .bind(agency_id)
            .bind(m.version)
            .bind(m.name)
            .bind(m.checksum())
            .execute(&mut *conn)
            .await?;
        done.push(m.version);
    }
    enforce_row_security(conn, ident).await?;
    sqlx::query("SELECT set_config('search_path', '\"$user\", public', true)")
        .execute(&mut *conn)
        .await?;
    Ok(done)
}

async fn enforce_row_security(
    conn: &mut PgConnection,
    ident: &AgencyIdent,
) -> Result<(), TenancyError> {
    let tables = sqlx::query(
        "SELECT c.relname::text AS name, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced, \
           EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'agency_id' \
                   AND NOT a.attisdropped) AS has_agency_id, \
           EXISTS (SELECT 1 FROM pg_policies p WHERE p.schemaname = n.nspname AND p.tablename = c.relname \
                   AND p.policyname = 'agency_isolation') AS has_policy \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')",
    )
    .bind(ident.as_str())
    .fetch_all(&mut *conn)
    .await?;
    for t in tables {
        let name: String = t.try_get("name")?;
        let valid = !name.is_empty()
            && name.len() < 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(TenancyError::invalid("tenant table name", name));
        }
        if !t.try_get::<bool, _>("has_agency_id")? {
            return Err(TenancyError::TableWithoutAgencyId(name));
        }
        let table = format!("{}.\"{name}\"", ident.quoted());
        if !t.try_get::<bool, _>("rls")? || !t.try_get::<bool, _>("forced")? {
            let sql = format!(
                "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY; ALTER TABLE {table} FORCE ROW LEVEL SECURITY"
            );
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut *conn)
                .await?;
        }
        if !t.try_get::<bool, _>("has_policy")? {
            let sql = format!(
                "CREATE POLICY agency_isolation ON {table} \
                 USING (agency_id = current_setting('writ.agency_id')::uuid) \
                 WITH CHECK (agency_id = current_setting('writ.agency_id')::uuid)"
            );
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// True when the control plane and every active agency schema have every embedded migration.
pub async fn migrations_current(pool: &PgPool) -> Result<bool, TenancyError> {
    let control_latest = CONTROL.iter().map(|m| m.version).max().unwrap_or(0);
    let tenant_count = TENANT.len() as i64;
    let row = sqlx::query(
        "SELECT \
           (SELECT coalesce(max(version), 0) FROM control.schema_migrations) AS control, \
           (SELECT count(*) FROM control.agencies a WHERE a.status = 'active' AND \
              (SELECT count(*) FROM control.tenant_migrations t WHERE t.agency_id = a.id) < $1) AS behind",
    )
    .bind(tenant_count)
    .fetch_one(pool)
    .await;
    match row {
        Ok(row) => Ok(row.try_get::<i64, _>("control")? >= control_latest
            && row.try_get::<i64, _>("behind")? == 0),
        // Before the first migration the control schema does not exist: not current.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Ok(false),
        Err(e) => Err(e.into()),
    }
}
