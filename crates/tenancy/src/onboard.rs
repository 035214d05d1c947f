use p256::pkcs8::{EncodePublicKey, LineEnding};
use sqlx::PgPool;
use uuid::Uuid;
use writ_keys::{KeyProvider, KeyRef, KeySpec, spec_provider};

use crate::migrate::apply_tenant;
use crate::{Agency, AgencyIdent, Migration, Slug, TenancyError, agency_by_id};

/// What an operator gives to onboard an agency.
#[derive(Debug, Clone)]
pub struct NewAgency<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    /// The provider the agency's keys are created in (or adopted from).
    pub key_spec: KeySpec,
}

/// Onboards an agency: control row, database role, schema, tenant tables with forced row-level
/// security, and the agency's keys. All of it happens in one transaction (PostgreSQL's DDL,
/// including CREATE ROLE, is transactional), so a failure anywhere leaves nothing behind.
pub async fn onboard(
    pool: &PgPool,
    keys: &KeyProvider,
    new: NewAgency<'_>,
    tenant_set: &[Migration],
) -> Result<Agency, TenancyError> {
    let (tx, agency) = onboard_open(pool, keys, new, tenant_set).await?;
    tx.commit().await?;
    tracing::info!(agency_id = %agency.id, slug = agency.slug, schema = %agency.ident, "agency onboarded");
    Ok(agency)
}

/// Onboards an agency in a transaction left open, so the caller can add to it (the first
/// administrator, through [`crate::ControlTx::enter`]) and commit everything at once.
pub async fn onboard_open(
    pool: &PgPool,
    keys: &KeyProvider,
    new: NewAgency<'_>,
    tenant_set: &[Migration],
) -> Result<(crate::ControlTx, Agency), TenancyError> {
    let slug = Slug::parse(new.slug)?;
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(TenancyError::invalid(
            "name",
            "1 to 200 printable characters",
        ));
    }
    let id = agency_id_for(pool, keys, &new.key_spec).await?;
    let ident = AgencyIdent::for_agency(id);
    // Noted before any key is tagged, in a statement of its own: should this onboarding not
    // complete, the next one takes the id over with the keys it tagged. Attempts older than a
    // month are forgotten meanwhile (an operator retries within minutes).
    sqlx::query(
        "WITH forgotten AS (DELETE FROM control.onboarding_attempts \
                            WHERE started_at < now() - interval '30 days') \
         INSERT INTO control.onboarding_attempts (agency_id, slug) VALUES ($1, $2) \
         ON CONFLICT (agency_id) DO NOTHING",
    )
    .bind(id)
    .bind(slug.as_str())
    .execute(pool)
    .await?;

    let mut tx = pool.begin().await?;
    // The schema, its tables and the agency role belong to the owner, whoever logged in.
    crate::roles::act_as_owner(&mut tx).await?;
    let inserted = sqlx::query(
        "INSERT INTO control.agencies (id, slug, name, schema_name, role_name, key_provider) \
         VALUES ($1, $2, $3, $4, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(slug.as_str())
    .bind(name)
    .bind(ident.as_str())
    .bind(spec_provider(&new.key_spec))
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        // The slug, or (taking over an unfinished onboarding's id) the id another run of the
        // same onboarding committed first.
        if agency_by_id(&mut *tx, id).await?.is_some() {
            return Err(TenancyError::Conflict(
                "these keys were just onboarded by another run of this onboarding".into(),
            ));
        }
        return Err(TenancyError::SlugTaken(slug.as_str().to_owned()));
    }
    let q = ident.quoted();
    // The owner and the serving login (both NOINHERIT) gain the agency's rights only by SET ROLE,
    // per transaction (TenantTx).
    let ddl = format!(
        "CREATE ROLE {q} NOLOGIN NOINHERIT; GRANT {q} TO {owner}, {serving}; \
         CREATE SCHEMA {q}; REVOKE ALL ON SCHEMA {q} FROM PUBLIC; GRANT USAGE ON SCHEMA {q} TO {q}",
        owner = crate::OWNER_ROLE,
        serving = crate::SERVING_ROLE,
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(&mut *tx)
        .await?;
    apply_tenant(&mut tx, id, &ident, tenant_set).await?;

    // The operator's key settings were refused: say why to the operator (elsewhere a refusal is
    // the server's configuration, and its provider details are not told to the caller).
    let made = keys
        .create_agency_keys(id, &new.key_spec)
        .await
        .map_err(|e| match e {
            writ_keys::KeyError::Refused(reason) => TenancyError::invalid("keys", reason),
            e => e.into(),
        })?;
    let pem = made
        .signing_public_key
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| TenancyError::invalid("signing public key", e.to_string()))?;
    insert_key_version(&mut tx, id, &made.key_encryption, None).await?;
    insert_key_version(&mut tx, id, &made.signing, Some(&pem)).await?;

    // Gone with this onboarding's commit; kept by its rollback.
    sqlx::query("DELETE FROM control.onboarding_attempts WHERE agency_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let agency = agency_by_id(&mut *tx, id)
        .await?
        .ok_or_else(|| TenancyError::NoSuchAgency(id.to_string()))?;
    Ok((crate::ControlTx { tx }, agency))
}

/// The new agency's id: a fresh one, unless the keys to adopt are tagged for an onboarding that
/// did not complete (its id still noted as an attempt, no agency under it), which this one takes
/// over. Keys tagged for any other id are another agency's, and refused.
async fn agency_id_for(
    pool: &PgPool,
    keys: &KeyProvider,
    spec: &KeySpec,
) -> Result<Uuid, TenancyError> {
    let refused = |reason: String| TenancyError::invalid("keys", reason);
    let claim = keys.prior_claim(spec).await.map_err(|e| match e {
        writ_keys::KeyError::Refused(reason) => refused(reason),
        e => e.into(),
    })?;
    let Some(owner) = claim else {
        return Ok(Uuid::new_v4());
    };
    let unfinished: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM control.onboarding_attempts WHERE agency_id = $1) \
            AND NOT EXISTS (SELECT 1 FROM control.agencies WHERE id = $1)",
    )
    .bind(owner)
    .fetch_one(pool)
    .await?;
    if unfinished {
        tracing::info!(agency_id = %owner, "onboarding again with keys an unfinished onboarding tagged");
        Ok(owner)
    } else {
        // The id is another agency's (perhaps of another deployment): logged, not told.
        tracing::warn!(agency_id = %owner, "onboarding refused keys tagged for another agency");
        Err(refused(
            "the given keys are tagged for another agency".to_owned(),
        ))
    }
}

/// Records a new version of an agency key (at onboarding or rotation).
pub async fn insert_key_version(
    conn: &mut sqlx::PgConnection,
    agency_id: Uuid,
    key: &KeyRef,
    public_key_pem: Option<&str>,
) -> Result<(), TenancyError> {
    sqlx::query(
        "INSERT INTO control.agency_keys (agency_id, purpose, version, provider, key_id, material, public_key_pem) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(agency_id)
    .bind(key.purpose.as_str())
    .bind(key.version)
    .bind(&key.provider)
    .bind(&key.key_id)
    .bind(&key.material)
    .bind(public_key_pem)
    .execute(conn)
    .await?;
    Ok(())
}
