use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::{Agency, AgencyIdent, CommitWake, TenancyError};

/// How long [`TenantTx::commit_resolved`] asks after a commit whose outcome it did not hear.
const COMMIT_RESOLVE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What became of transaction `xid` whose commit failed with `failed`: `Ok` once the database says
/// committed, `failed` once it says aborted, [`TenancyError::CommitUnknown`] when it cannot say
/// within [`COMMIT_RESOLVE_WAIT`] (unreachable, or the commit still in progress).
async fn resolve_commit(pool: &PgPool, xid: i64, failed: TenancyError) -> Result<(), TenancyError> {
    let deadline = tokio::time::Instant::now() + COMMIT_RESOLVE_WAIT;
    loop {
        // Each question is bounded too: a link that lost one answer may hang on the next.
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let asked = tokio::time::timeout(
            left,
            sqlx::query_scalar::<_, Option<String>>("SELECT txid_status($1)")
                .bind(xid)
                .fetch_one(pool),
        )
        .await;
        let status = asked.unwrap_or(Err(sqlx::Error::PoolTimedOut));
        match status.as_ref().map(Option::as_deref) {
            Ok(Some("committed")) => {
                tracing::warn!(xid, error = %failed, "a commit reported as failed took effect");
                return Ok(());
            }
            Ok(Some("aborted")) => return Err(failed),
            // Too old to tell: it cannot happen for a transaction that just ended.
            Ok(None) => return Err(TenancyError::CommitUnknown(failed.to_string())),
            // "in progress", or the database unreachable for now.
            Ok(Some(_)) | Err(_) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(TenancyError::CommitUnknown(failed.to_string()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The advisory lock a request's transaction holds shared (taken in the statement that finds the
/// agency active, no extra round trip), and key changes too. The start of an offboarding takes it
/// exclusively to wait for those in flight. Only those two kinds take it shared, and neither
/// opens a second transaction that takes it while holding it, so a waiting exclusive taker never
/// closes a cycle; the exclusive takers wait a bounded time ([`EXCLUSIVE_WAIT`]) all the same.
pub(crate) fn agency_lock_name(agency_id: Uuid) -> String {
    format!("writ.agency:{agency_id}")
}

/// How long an exclusive taker of a lock that requests hold shared (the agency's, a key's) waits
/// for them: while it waits, new requests that take the lock wait behind it.
pub const EXCLUSIVE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Takes the transaction-scoped advisory lock `name` exclusively, waiting at most `wait` (not at
/// all when zero); `false` when it is still held elsewhere by then.
pub async fn xact_lock_within(
    conn: &mut PgConnection,
    name: &str,
    wait: std::time::Duration,
) -> Result<bool, sqlx::Error> {
    if wait.is_zero() {
        return sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(name)
            .fetch_one(&mut *conn)
            .await;
    }
    sqlx::query("SELECT set_config('lock_timeout', $1, true)")
        .bind(format!("{}ms", wait.as_millis()))
        .execute(&mut *conn)
        .await?;
    let taken = sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(name)
        .execute(&mut *conn)
        .await;
    match taken {
        Ok(_) => {}
        // lock_not_available: the wait ran out (and the transaction is aborted).
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => return Ok(false),
        Err(e) => return Err(e),
    }
    sqlx::query("SELECT set_config('lock_timeout', '0', true)")
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// Takes the agency's lock exclusively in `conn`'s transaction, waiting at most
/// [`EXCLUSIVE_WAIT`]; a conflict when transactions in flight hold it longer (a long upload).
pub(crate) async fn hold_agency_exclusive(
    conn: &mut PgConnection,
    agency_id: Uuid,
) -> Result<(), TenancyError> {
    if xact_lock_within(conn, &agency_lock_name(agency_id), EXCLUSIVE_WAIT).await? {
        return Ok(());
    }
    Err(TenancyError::Conflict(format!(
        "the agency's transactions in flight (a long upload?) did not end within {} s; retry \
         in a moment",
        EXCLUSIVE_WAIT.as_secs()
    )))
}

/// Holds the agency's lock shared until the transaction ends, as a request's transaction does:
/// for key changes, which must not overlap the start of an offboarding.
pub async fn hold_agency_shared(
    conn: &mut PgConnection,
    agency_id: Uuid,
) -> Result<(), TenancyError> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))")
        .bind(agency_lock_name(agency_id))
        .execute(conn)
        .await?;
    Ok(())
}

/// Waits until every transaction that holds the agency's lock has ended (takes it exclusively,
/// then lets it go). Once an agency is no longer active, no request enters it any more, so after
/// this no request in flight can still commit into it.
pub async fn wait_for_agency_transactions(
    pool: &PgPool,
    agency_id: Uuid,
) -> Result<(), TenancyError> {
    let mut tx = pool.begin().await?;
    hold_agency_exclusive(&mut tx, agency_id).await?;
    tx.commit().await?;
    Ok(())
}

/// A transaction confined to one agency: it runs as the agency's database role, with the agency's
/// schema as search path and `writ.agency_id` set for row-level security. Each of those three
/// walls alone keeps another agency's rows out; holding a `TenantTx` is how code proves it is
/// inside them.
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    agency_id: Uuid,
    ident: AgencyIdent,
    /// Set by [`TenantTx::wake_on_commit`] while a sequencer listens.
    wake: Option<CommitWake>,
    /// Audit events were appended in this transaction.
    appended: bool,
}

impl TenantTx {
    pub async fn begin(pool: &PgPool, agency: &Agency) -> Result<Self, TenancyError> {
        Self::begin_for(pool, agency.id, agency.ident.clone()).await
    }

    pub async fn begin_for(
        pool: &PgPool,
        agency_id: Uuid,
        ident: AgencyIdent,
    ) -> Result<Self, TenancyError> {
        Self::enter(pool.begin().await?, agency_id, ident).await
    }

    /// Opens a transaction inside the agency `agency_id` when the control plane says it is
    /// active, reading it on the connection that then enters it (one pool checkout, one
    /// transaction). `None` for an unknown or inactive agency (nothing is left open).
    pub async fn begin_active(
        pool: &PgPool,
        agency_id: Uuid,
    ) -> Result<Option<(Agency, Self)>, TenancyError> {
        let mut ctl = ControlTx::begin(pool).await?;
        // One round trip: the statement that finds the agency active also enters it, with the
        // validated name every onboarding gives its schema and role, bound as in `enter`.
        let ident = AgencyIdent::for_agency(agency_id);
        let sql = format!(
            "SELECT {}, set_config('role', $2, true), set_config('search_path', $3, true), \
                    set_config('writ.agency_id', $4, true), \
                    pg_advisory_xact_lock_shared(hashtextextended($5, 0)) \
             FROM control.agencies WHERE id = $1 AND schema_name = $2 AND status = 'active'",
            crate::agency::AGENCY_COLUMNS
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(agency_id)
            .bind(ident.as_str())
            .bind(ident.quoted())
            .bind(agency_id.to_string())
            .bind(agency_lock_name(agency_id))
            .fetch_optional(ctl.conn())
            .await?;
        if let Some(row) = row {
            let agency = crate::agency::agency_from_row(&row)?;
            let tx = Self::new(ctl.tx, agency_id, ident);
            return Ok(Some((agency, tx)));
        }
        // Unknown, inactive, or (none is today) a schema named otherwise: look and enter apart.
        match ctl.agency(agency_id).await? {
            Some(agency) if agency.status == "active" => {
                let tx = ctl.enter(&agency).await?;
                Ok(Some((agency, tx)))
            }
            _ => {
                ctl.rollback().await?;
                Ok(None)
            }
        }
    }

    /// [`Self::begin_active`] for an agency already looked up: a conflict when it is no longer
    /// active (an offboarding began since), for work that must not land after its final export.
    pub async fn begin_still_active(pool: &PgPool, agency: &Agency) -> Result<Self, TenancyError> {
        match Self::begin_active(pool, agency.id).await? {
            Some((_, tx)) => Ok(tx),
            None => Err(TenancyError::Conflict(format!(
                "agency {} is no longer active",
                agency.slug
            ))),
        }
    }

    async fn enter(
        mut tx: Transaction<'static, Postgres>,
        agency_id: Uuid,
        ident: AgencyIdent,
    ) -> Result<Self, TenancyError> {
        // set_config(..., true) is SET LOCAL: it ends with the transaction, so a pooled connection
        // never carries one agency's role into the next request.
        sqlx::query(
            "SELECT set_config('role', $1, true), set_config('search_path', $2, true), \
                    set_config('writ.agency_id', $3, true)",
        )
        .bind(ident.as_str())
        .bind(ident.quoted())
        .bind(agency_id.to_string())
        .execute(&mut *tx)
        .await?;
        Ok(Self::new(tx, agency_id, ident))
    }

    fn new(tx: Transaction<'static, Postgres>, agency_id: Uuid, ident: AgencyIdent) -> Self {
        Self {
            tx,
            agency_id,
            ident,
            wake: None,
            appended: false,
        }
    }

    /// Wakes this process's sequencer directly when the transaction commits with audit events,
    /// if one listens (see [`CommitWake`]); otherwise nothing changes.
    pub fn wake_on_commit(&mut self, wake: &CommitWake) {
        if wake.is_listening() {
            self.wake = Some(wake.clone());
        }
    }

    /// Notes that an audit event was appended; whether the commit will wake the sequencer
    /// itself. When it will not, the caller notifies through the database.
    pub fn appended_audit_event(&mut self) -> bool {
        self.appended = true;
        self.wake.is_some()
    }

    pub fn agency_id(&self) -> Uuid {
        self.agency_id
    }

    pub fn ident(&self) -> &AgencyIdent {
        &self.ident
    }

    /// The connection, for queries inside the agency's walls.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), TenancyError> {
        self.tx.commit().await?;
        if self.appended
            && let Some(wake) = &self.wake
        {
            wake.wake(self.agency_id);
        }
        Ok(())
    }

    /// Commits, and when the commit fails without the server saying why (the connection dropped
    /// during it), asks the database from another connection whether it took effect. `Ok` means
    /// committed; [`TenancyError::CommitUnknown`] that nobody could tell; any other error that it
    /// did not happen. For work that is cleaned up outside the database when its transaction
    /// fails (an object stored, a key made): cleaning up after a commit that did happen would
    /// destroy what it recorded.
    pub async fn commit_resolved(mut self, pool: &PgPool) -> Result<(), TenancyError> {
        let xid: i64 = sqlx::query_scalar("SELECT txid_current()")
            .fetch_one(self.conn())
            .await?;
        match self.commit().await {
            Ok(()) => Ok(()),
            // The server answered: the transaction rolled back.
            Err(TenancyError::Database(e @ sqlx::Error::Database(_))) => Err(e.into()),
            Err(failed) => resolve_commit(pool, xid, failed).await,
        }
    }

    pub async fn rollback(self) -> Result<(), TenancyError> {
        Ok(self.tx.rollback().await?)
    }
}

/// A transaction that starts in the control plane and may then enter one agency, so control-plane
/// rows and the agency's rows (its audit entry above all) commit together or not at all: a key
/// rotation, an onboarding with its first administrator. It runs as the login role (the serving
/// role `writ_app` in `writ serve`, whose control-plane grants are in the control migrations) until
/// [`ControlTx::enter`]; after that only the agency's walls hold. There is no way back out.
pub struct ControlTx {
    pub(crate) tx: Transaction<'static, Postgres>,
}

impl ControlTx {
    pub async fn begin(pool: &PgPool) -> Result<Self, TenancyError> {
        Ok(Self {
            tx: pool.begin().await?,
        })
    }

    /// The connection, for control-plane queries (`control.*`).
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// The agency `id` as the control plane knows it, read in this transaction.
    pub async fn agency(&mut self, id: Uuid) -> Result<Option<Agency>, TenancyError> {
        crate::agency_by_id(&mut *self.tx, id).await
    }

    /// Confines the transaction to `agency`: what was written so far commits with what is
    /// written inside the agency from now on.
    pub async fn enter(self, agency: &Agency) -> Result<TenantTx, TenancyError> {
        TenantTx::enter(self.tx, agency.id, agency.ident.clone()).await
    }

    pub async fn commit(self) -> Result<(), TenancyError> {
        Ok(self.tx.commit().await?)
    }

    pub async fn rollback(self) -> Result<(), TenancyError> {
        Ok(self.tx.rollback().await?)
    }
}
