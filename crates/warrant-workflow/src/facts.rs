//! What a warrant's evidence certificate states about the warrant itself: its identity and
//! rules, its affidavit versions, the execution window against the execution time, and the
//! return — in the certificate's own types (`writ_audit_chain::evidence`). Read as they are
//! stored; the certificate's maker records the reading once, for the whole certificate.

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;
use writ_audit_chain::evidence::{
    AffidavitVersionFacts, ExecutionFacts, ReturnFacts, WarrantFacts,
};
use writ_tenancy::TenantTx;

use crate::caller::Caller;
use crate::error::WarrantError;
use crate::store::{load_visible, now_ms};

/// The warrant's part of an evidence certificate.
#[derive(Debug, Clone)]
pub struct CertificateFacts {
    pub warrant: WarrantFacts,
    pub affidavit_versions: Vec<AffidavitVersionFacts>,
    pub execution: Option<ExecutionFacts>,
    pub return_filed: Option<ReturnFacts>,
}

fn millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    number: i32,
    sha256: String,
    reason: String,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
}

/// The facts of a warrant the caller may read.
pub async fn certificate_facts(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
) -> Result<CertificateFacts, WarrantError> {
    let row = load_visible(tx, caller, id, false, now_ms()).await?;
    let (ty, _) = row.rules()?;
    let issued_sha256: Option<String> =
        sqlx::query_scalar("SELECT issued_document_sha256 FROM warrants WHERE id = $1")
            .bind(id)
            .fetch_one(tx.conn())
            .await?;
    let versions: Vec<VersionRow> = sqlx::query_as(
        "SELECT number, sha256, reason, created_by, created_at FROM affidavit_versions \
         WHERE warrant_id = $1 ORDER BY number",
    )
    .bind(id)
    .fetch_all(tx.conn())
    .await?;
    let warrant = WarrantFacts {
        id: row.id.to_string(),
        number: row.number.clone(),
        court: row.court.clone(),
        type_key: row.type_key.clone(),
        type_name: ty.name.clone(),
        time_zone: row.time_zone.clone(),
        state: row.state.clone(),
        author_id: row.author_id.to_string(),
        parent_warrant_id: row.parent_id.map(|p| p.to_string()),
        issued_document_sha256: issued_sha256,
        sworn_affidavit_version: row.sworn_affidavit_version,
        sworn_affidavit_sha256: row.sworn_affidavit_sha256.clone(),
    };
    let affidavit_versions = versions
        .into_iter()
        .map(|v| AffidavitVersionFacts {
            number: v.number,
            sha256: v.sha256,
            reason: v.reason,
            created_at: millis(v.created_at),
            // Versions are made by a person (submission, a sworn amendment): the author when
            // the row predates recording who.
            created_by: v.created_by.unwrap_or(row.author_id).to_string(),
        })
        .collect();
    let execution = row.issued_at.map(|issued_at| ExecutionFacts {
        issued_at: millis(issued_at),
        deadline: row.execution_deadline.map(millis),
        daytime: ty.daytime.map(|d| d.to_string()),
        night_service: row.night_service,
        executed_at: row.executed_at.map(millis),
        within_deadline: match (row.executed_at, row.execution_deadline) {
            (Some(at), Some(deadline)) => Some(at < deadline),
            _ => None,
        },
    });
    let return_filed = match (&row.return_kind, row.returned_at, row.returned_by) {
        (Some(kind), Some(at), Some(by)) => Some(ReturnFacts {
            kind: kind.clone(),
            returned_at: millis(at),
            returned_by: by.to_string(),
            inventory: row
                .return_inventory
                .clone()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| WarrantError::Corrupt(format!("return_inventory: {e}")))?,
            note: row.return_note.clone(),
        }),
        _ => None,
    };
    Ok(CertificateFacts {
        warrant,
        affidavit_versions,
        execution,
        return_filed,
    })
}
