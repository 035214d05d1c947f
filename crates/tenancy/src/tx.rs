use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::{Agency, AgencyIdent, TenancyError};

/// A transaction confined to one agency: it runs as the agency's database role, with the agency's
/// schema as search path and `writ.agency_id` set for row-level security. Each of those three
/// walls alone keeps another agency's rows out; holding a `TenantTx` is how code proves it is
/// inside them.
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    agency_id: Uuid,
    ident: AgencyIdent,
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

    /// Confines a transaction that has already done control-plane work (as the owner) to the
    /// agency, so both commit or neither does: e.g. a key rotation and its audit entry.
    pub async fn enter(
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
        Ok(Self {
            tx,
            agency_id,
            ident,
        })
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
        Ok(self.tx.commit().await?)
    }

    pub async fn rollback(self) -> Result<(), TenancyError> {
        Ok(self.tx.rollback().await?)
    }
}
