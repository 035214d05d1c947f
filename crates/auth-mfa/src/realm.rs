//! Agency users live in their agency's schema, platform operators in the control plane; both
//! share one credential layout, so every account function runs against a [`Realm`].

use sqlx::PgConnection;
use uuid::Uuid;
use writ_audit_log::Event;
use writ_tenancy::TenantTx;

use crate::AuthError;

pub(crate) struct Tables {
    pub users: &'static str,
    pub sessions: &'static str,
    pub refresh: &'static str,
}

const AGENCY_TABLES: Tables = Tables {
    users: "users",
    sessions: "sessions",
    refresh: "refresh_tokens",
};

const PLATFORM_TABLES: Tables = Tables {
    users: "control.operators",
    sessions: "control.operator_sessions",
    refresh: "control.operator_refresh_tokens",
};

/// Where accounts live: one agency (inside its [`TenantTx`]) or the control plane.
pub enum Realm<'a> {
    Agency(&'a mut TenantTx),
    Platform(&'a mut PgConnection),
}

impl Realm<'_> {
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        match self {
            Realm::Agency(tx) => tx.conn(),
            Realm::Platform(c) => c,
        }
    }

    pub(crate) fn tables(&self) -> &'static Tables {
        match self {
            Realm::Agency(_) => &AGENCY_TABLES,
            Realm::Platform(_) => &PLATFORM_TABLES,
        }
    }

    pub(crate) fn agency_id(&self) -> Option<Uuid> {
        match self {
            Realm::Agency(tx) => Some(tx.agency_id()),
            Realm::Platform(_) => None,
        }
    }

    /// Records an event in the same transaction: the agency's audit chain, or the control plane's
    /// platform event table for operators (who hold no agency chain).
    pub async fn audit(&mut self, event: Event) -> Result<(), AuthError> {
        match self {
            Realm::Agency(tx) => {
                writ_audit_log::record(tx, &event).await?;
            }
            Realm::Platform(conn) => {
                writ_audit_log::record_platform(conn, &event).await?;
            }
        }
        Ok(())
    }
}

/// SQL with one of our constant table names substituted for `{u}`, `{s}` and `{r}`.
pub(crate) fn sql(t: &Tables, template: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(
        template
            .replace("{u}", t.users)
            .replace("{s}", t.sessions)
            .replace("{r}", t.refresh),
    )
}
