use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Row};
use uuid::Uuid;
use writ_keys::{KeyPurpose, KeyRef, KeyState};

use crate::{AgencyIdent, TenancyError};

/// An onboarded agency as the control plane knows it.
#[derive(Debug, Clone)]
pub struct Agency {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    /// Schema and role share this validated name.
    pub ident: AgencyIdent,
    pub key_provider: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

pub(crate) const AGENCY_COLUMNS: &str =
    "id, slug, name, schema_name, key_provider, status, created_at";

pub(crate) fn agency_from_row(row: &sqlx::postgres::PgRow) -> Result<Agency, TenancyError> {
    Ok(Agency {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        ident: AgencyIdent::parse(row.try_get::<&str, _>("schema_name")?)?,
        key_provider: row.try_get("key_provider")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn agency_by_id(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<Agency>, TenancyError> {
    let sql = format!("SELECT {AGENCY_COLUMNS} FROM control.agencies WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(agency_from_row)
        .transpose()
}

pub async fn agency_by_slug(
    db: impl PgExecutor<'_>,
    slug: &str,
) -> Result<Option<Agency>, TenancyError> {
    let sql = format!("SELECT {AGENCY_COLUMNS} FROM control.agencies WHERE slug = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(slug)
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(agency_from_row)
        .transpose()
}

pub async fn list_agencies(db: impl PgExecutor<'_>) -> Result<Vec<Agency>, TenancyError> {
    let sql = format!("SELECT {AGENCY_COLUMNS} FROM control.agencies ORDER BY created_at, slug");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(db)
        .await?
        .iter()
        .map(agency_from_row)
        .collect()
}

/// For background work: the agencies being served, or none (with a warning naming `task`) while
/// the database cannot say; the next round tries again.
pub async fn active_agencies(pool: &sqlx::PgPool, task: &str) -> Vec<Agency> {
    match list_agencies(pool).await {
        Ok(list) => list.into_iter().filter(|a| a.status == "active").collect(),
        Err(e) => {
            tracing::warn!(error = %e, task, "cannot list agencies");
            Vec::new()
        }
    }
}

/// One version of an agency key with its validity window; its state is `key.state`.
#[derive(Debug, Clone)]
pub struct AgencyKeyRecord {
    pub key: KeyRef,
    pub public_key_pem: Option<String>,
    pub valid_from: DateTime<Utc>,
    pub valid_to: Option<DateTime<Utc>>,
}

/// Every version of one of an agency's keys, oldest first.
pub async fn agency_keys(
    db: impl PgExecutor<'_>,
    agency_id: Uuid,
    purpose: KeyPurpose,
) -> Result<Vec<AgencyKeyRecord>, TenancyError> {
    let rows = sqlx::query(
        "SELECT version, provider, key_id, material, public_key_pem, state, valid_from, valid_to \
         FROM control.agency_keys WHERE agency_id = $1 AND purpose = $2 ORDER BY version",
    )
    .bind(agency_id)
    .bind(purpose.as_str())
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            // An unknown state (a newer server's) is treated as unusable, never as enabled.
            let state: String = r.try_get("state")?;
            Ok(AgencyKeyRecord {
                key: KeyRef {
                    provider: r.try_get("provider")?,
                    purpose,
                    version: r.try_get("version")?,
                    key_id: r.try_get("key_id")?,
                    material: r.try_get("material")?,
                    state: KeyState::parse(&state).unwrap_or(KeyState::Disabled),
                },
                public_key_pem: r.try_get("public_key_pem")?,
                valid_from: r.try_get("valid_from")?,
                valid_to: r.try_get("valid_to")?,
            })
        })
        .collect()
}
