//! Signed exports: `log.jsonl`, `certificate.json`, the covering `checkpoint`, the public keys
//! (`keys/<keyId>.pem`) and, for a pruned log, its `minimum-index` statement, as a directory or a
//! `.tar.gz`. The builder re-verifies the chain while streaming, so a broken log is never
//! certified. An export of a pruned log asked from below its minimum index starts there.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::{PgPool, Row};
use writ_audit_chain::{
    AuditKey, Entry, ExportBuilder, ExportDetails, ExportStart, KeyRecord, RequestedRange,
    SignedNote, consistency_proof_nodes, fold_range,
};
use writ_keys::{KeyProvider, KeyPurpose, KeyState};
use writ_tenancy::{Agency, TenantTx};

use crate::retention::{latest_minimum_index, lock_against_pruning};
use crate::store::{corrupt, element_hashes, frontier, hash_from};
use crate::{AuditError, checkpoint_agency, latest_checkpoint, origin};

const PAGE: i64 = 10_000;

/// What an export produced.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub path: PathBuf,
    pub first_seq: u64,
    pub last_seq: u64,
    pub entry_count: u64,
    pub checkpoint_size: u64,
    pub certificate_key_id: String,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn io(e: std::io::Error) -> AuditError {
    AuditError::Io(e.to_string())
}

/// Writes a signed export of seqs `from..=to` (defaults: the whole log) to `out`: a directory,
/// or a gzip-compressed tar when `out` ends in `.tar.gz`.
pub async fn export_bundle(
    pool: &PgPool,
    keys: &KeyProvider,
    agency: &Agency,
    from: Option<u64>,
    to: Option<u64>,
    out: &Path,
) -> Result<ExportSummary, AuditError> {
    let id = agency.id;
    crate::sequence_agency(pool, id, &agency.ident).await?;
    let mut tx = TenantTx::begin(pool, agency).await?;
    let size = crate::store::tree_size(tx.conn()).await?;
    let requested_first = from.unwrap_or(1);
    let last = to.unwrap_or(size).min(size);
    if requested_first == 0 || requested_first > last {
        return Err(AuditError::InvalidRequest(format!(
            "nothing to export: the log holds {size} entries, asked for {requested_first}..={}",
            to.map_or("end".into(), |t| t.to_string())
        )));
    }
    // The certificate needs a signed checkpoint covering the last exported entry.
    let mut cp = latest_checkpoint(&mut tx).await?;
    if cp.as_ref().is_none_or(|c| c.tree_size < last) {
        tx.rollback().await?;
        checkpoint_agency(pool, keys, agency, Duration::ZERO, true).await?;
        tx = TenantTx::begin(pool, agency).await?;
        cp = latest_checkpoint(&mut tx).await?;
    }
    let cp = cp.filter(|c| c.tree_size >= last).ok_or_else(|| {
        corrupt(
            id,
            "no checkpoint covers the export (another signer is busy); retry",
        )
    })?;
    // An export runs to the end of what was asked for or of the signed tree, whichever comes
    // first: a verifier takes a shorter log for a truncated one.
    let last = to.map_or(cp.tree_size, |t| t.min(cp.tree_size));
    // No pruning while the log is read; the statement read now is the one in force.
    lock_against_pruning(&mut tx).await?;
    let statement = latest_minimum_index(&mut tx).await?;
    let first = requested_first.max(statement.as_ref().map_or(1, |s| s.minimum_index));
    if first > last {
        return Err(AuditError::InvalidRequest(format!(
            "nothing to export: entries before seq {first} were pruned under the retention policy, \
             asked for {requested_first}..={last}"
        )));
    }

    let first_prev_hash = if first == 1 {
        writ_audit_chain::genesis_hash(&id.to_string())
    } else {
        let row = sqlx::query("SELECT prev_hash FROM audit_log WHERE seq = $1")
            .bind(first as i64)
            .fetch_one(tx.conn())
            .await?;
        hash_from(id, &row.try_get::<Vec<u8>, _>("prev_hash")?)?
    };
    let left = frontier(tx.conn(), id, first - 1).await?;
    let start = ExportStart {
        first_seq: first,
        first_prev_hash,
        left_frontier: left.hashes().to_vec(),
    };
    let mut builder =
        ExportBuilder::new(&id.to_string(), start).map_err(|e| corrupt(id, e.to_string()))?;

    let staging = tempdir_near(out)?;
    let log_path = staging.join("log.jsonl");
    let mut log = BufWriter::new(File::create(&log_path).map_err(io)?);
    let mut next = first;
    while next <= last {
        let upto = (next + PAGE as u64 - 1).min(last);
        let rows =
            sqlx::query("SELECT entry FROM audit_log WHERE seq BETWEEN $1 AND $2 ORDER BY seq")
                .bind(next as i64)
                .bind(upto as i64)
                .fetch_all(tx.conn())
                .await?;
        for row in rows {
            let text: String = row.try_get("entry")?;
            let entry =
                Entry::from_json(text.as_bytes()).map_err(|e| corrupt(id, e.to_string()))?;
            let line = builder
                .push(&entry)
                .map_err(|e| corrupt(id, e.to_string()))?;
            log.write_all(&line).map_err(io)?;
        }
        next = upto + 1;
    }
    log.flush().map_err(io)?;
    drop(log);

    let consistency = if last < cp.tree_size {
        let nodes =
            consistency_proof_nodes(last, cp.tree_size).map_err(|e| corrupt(id, e.to_string()))?;
        element_hashes(tx.conn(), id, &nodes)
            .await?
            .iter()
            .map(|e| fold_range(e))
            .collect()
    } else {
        Vec::new()
    };
    tx.rollback().await?;

    let name = origin(id);
    let mut key_history = Vec::new();
    let mut current = None;
    for record in writ_tenancy::agency_keys(pool, id, KeyPurpose::Signing).await? {
        let Some(pem) = record.public_key_pem.as_deref() else {
            continue;
        };
        let key = AuditKey::from_pem(pem).map_err(|e| corrupt(id, e.to_string()))?;
        let valid_to = record.valid_to.map(ts);
        key_history.push(KeyRecord::new(
            &key,
            &name,
            &ts(record.valid_from),
            valid_to.as_deref(),
        ));
        if record.valid_to.is_none() && record.key.state == KeyState::Enabled {
            current = Some((record.key, key));
        }
    }
    let (signing_ref, signing_key) =
        current.ok_or_else(|| corrupt(id, "no enabled signing key"))?;

    let certificate = builder
        .finish(ExportDetails {
            agency_name: agency.name.clone(),
            agency_slug: agency.slug.clone(),
            origin: name,
            requested_range: RequestedRange {
                first_seq: requested_first,
                last_seq: to,
            },
            checkpoint: cp.note.clone(),
            checkpoint_consistency: consistency,
            minimum_index: statement.as_ref().map(|s| s.note.clone()),
            key_history,
            created_at: ts(Utc::now()),
        })
        .map_err(|e| corrupt(id, e.to_string()))?;
    let message = certificate
        .signing_bytes()
        .map_err(|e| corrupt(id, e.to_string()))?;
    let sig = keys.sign_message(id, &signing_ref, &message).await?;
    let certificate = certificate
        .with_signature(signing_key.key_id(), sig.as_bytes())
        .map_err(|e| corrupt(id, e.to_string()))?;

    std::fs::write(staging.join("certificate.json"), certificate.to_json()).map_err(io)?;
    std::fs::write(
        staging.join("checkpoint"),
        SignedNote::parse(&cp.note)
            .map_err(|e| corrupt(id, e.to_string()))?
            .to_text(),
    )
    .map_err(io)?;
    if let Some(statement) = &certificate.minimum_index {
        std::fs::write(
            staging.join(writ_audit_chain::bundle::MINIMUM_INDEX_FILE),
            statement,
        )
        .map_err(io)?;
    }
    std::fs::create_dir_all(staging.join("keys")).map_err(io)?;
    for record in &certificate.key_history {
        std::fs::write(
            staging.join("keys").join(format!("{}.pem", record.key_id)),
            &record.public_key_pem,
        )
        .map_err(io)?;
    }
    // Compressing a large log takes seconds: off the async thread, which also runs the
    // sequencer and the checkpointer.
    let out_path = out.to_path_buf();
    tokio::task::spawn_blocking(move || finish_output(&staging, &out_path))
        .await
        .map_err(|e| corrupt(id, format!("writing the export: {e}")))??;
    Ok(ExportSummary {
        path: out.to_path_buf(),
        first_seq: first,
        last_seq: last,
        entry_count: certificate.entry_count,
        checkpoint_size: cp.tree_size,
        certificate_key_id: signing_key.key_id().to_string(),
    })
}

/// A staging directory beside the output, so the final rename stays on one filesystem. Removed
/// when dropped, so an export that fails half-way leaves nothing behind.
struct Staging(PathBuf);

impl Staging {
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.0.exists()
            && let Err(e) = std::fs::remove_dir_all(&self.0)
        {
            tracing::warn!(dir = %self.0.display(), error = %e, "export staging directory left behind");
        }
    }
}

fn tempdir_near(out: &Path) -> Result<Staging, AuditError> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io)?;
    let dir = parent.join(format!(".writ-export-{}", uuid::Uuid::new_v4().simple()));
    create_private_dir(&dir)?;
    Ok(Staging(dir))
}

/// A directory only the server's user reads: the log holds who did what to which warrant.
fn create_private_dir(dir: &Path) -> Result<(), AuditError> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io)
}

fn finish_output(staging: &Staging, out: &Path) -> Result<(), AuditError> {
    if out.to_string_lossy().ends_with(".tar.gz") {
        write_tar_gz(&staging.0, out)
    } else if out.exists() {
        Err(AuditError::InvalidRequest(format!(
            "{} already exists",
            out.display()
        )))
    } else {
        std::fs::rename(&staging.0, out).map_err(io)
    }
}

/// Writes the tar to a file of its own beside `out`, renamed into place once complete: two
/// writers of one export (a worker whose lease ran out, and the one that took over) never mix
/// their bytes, and a failure leaves no partial file.
fn write_tar_gz(dir: &Path, out: &Path) -> Result<(), AuditError> {
    let tmp = out.with_extension(format!("{}.partial", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let file = private_file(&tmp)?;
        let gz =
            flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        tar.append_dir_all(".", dir)?;
        let gz = tar.into_inner()?;
        gz.finish()?.flush()?;
        std::fs::rename(&tmp, out)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)
}

fn private_file(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}
