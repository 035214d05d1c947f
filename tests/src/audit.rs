//! The audit chain of a test agency: writing and sequencing events, reading the stored sequence,
//! exporting the agency's public key, and tampering with the database as an attacker would.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use writ_audit_chain::VerifierKey;
use writ_audit_log::{Actor, Event, record};
use writ_tenancy::{Agency, TenantTx};

use crate::TestDb;

/// Records `n` `warrant.created` events by the system, each about warrant `<tag>-<i>`, one
/// transaction each, then sequences them.
pub async fn write_events(db: &TestDb, agency: &Agency, n: usize, tag: &str) {
    for i in 0..n {
        let mut tx = TenantTx::begin(&db.pool, agency).await.unwrap();
        let event = Event::new("warrant.created", Actor::system())
            .resource("warrantId", format!("{tag}-{i}"));
        record(&mut tx, &event).await.unwrap();
        tx.commit().await.unwrap();
    }
    sequence(db, agency).await;
}

/// Seals the agency's pending events into the log, as the server's sequencer does.
pub async fn sequence(db: &TestDb, agency: &Agency) {
    writ_audit_log::sequence_agency(&db.pool, agency.id, &agency.ident)
        .await
        .unwrap();
}

/// Every entry of the agency's log after sequencing what is pending, in order, as exported.
pub async fn entries(db: &TestDb, agency: &Agency) -> Vec<serde_json::Value> {
    logged(db, agency, None).await
}

/// The agency's entries with `action`, in seq order, after sequencing what is pending.
pub async fn entries_with_action(
    db: &TestDb,
    agency: &Agency,
    action: &str,
) -> Vec<serde_json::Value> {
    logged(db, agency, Some(action)).await
}

/// The agency's entries (with `action` when given), in seq order, after sequencing.
async fn logged(db: &TestDb, agency: &Agency, action: Option<&str>) -> Vec<serde_json::Value> {
    sequence(db, agency).await;
    let sql = format!(
        "SELECT entry FROM {}.audit_log WHERE $1::text IS NULL OR action = $1 ORDER BY seq",
        agency.ident.quoted()
    );
    sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
        .bind(action)
        .fetch_all(&db.pool)
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

/// The seqs stored in the agency's `audit_log`, in order.
pub async fn audit_seqs(db: &TestDb, agency: &Agency) -> Vec<i64> {
    let sql = format!(
        "SELECT seq FROM {}.audit_log ORDER BY seq",
        agency.ident.quoted()
    );
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

/// Writes `key` as `agency.pem` in `dir`; returns the file's path.
pub fn write_pem(dir: &Path, key: &VerifierKey) -> PathBuf {
    let pem = dir.join("agency.pem");
    std::fs::write(&pem, key.key().to_pem()).unwrap();
    pem
}

/// Writes the agency's first audit signing key as `agency.pem` in `dir`; returns the file's path.
pub async fn write_agency_pem(db: &TestDb, agency: &Agency, dir: &Path) -> PathBuf {
    let keys = writ_audit_log::verifier_keys(&db.pool, agency.id)
        .await
        .unwrap();
    write_pem(dir, &keys[0])
}

/// Runs `sql` as the superuser with every trigger off (what an attacker with the database would
/// do), on one connection.
pub async fn as_attacker(db: &TestDb, sql: &str) {
    let mut conn = db.pool.acquire().await.unwrap();
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await
        .unwrap();
    let result = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await;
    sqlx::query("SET session_replication_role = origin")
        .execute(&mut *conn)
        .await
        .unwrap();
    result.unwrap();
}

/// Runs `sql` as the superuser, triggers on, where it must fail; returns the error.
pub async fn superuser_error(db: &TestDb, sql: &str) -> sqlx::Error {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&db.pool)
        .await
        .unwrap_err()
}

/// The SQLSTATE of a database error (`42501`: insufficient privilege).
pub fn sqlstate(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
}

/// Lowercase hex of the SHA-256 of `bytes`, as export jobs and archives record it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
