//! `writ audit …`: export, checkpoint, verify, prune and archive an agency's chain from the command
//! line.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use writ_audit_log::{ArchiveOutcome, Caller, PruneMode, RetentionError};
use writ_tenancy::TenantTx;

use crate::AppState;

pub enum AuditCommand {
    Export {
        agency: String,
        out: PathBuf,
        from_seq: Option<u64>,
        to_seq: Option<u64>,
    },
    Checkpoint {
        agency: String,
    },
    Verify {
        agency: String,
    },
    Prune {
        agency: String,
        dry_run: bool,
    },
    Archive {
        agency: String,
    },
}

/// Who runs this command: the operating-system account (by the process's real uid, not the
/// environment) and the host, recorded as `detail.invokedBy` of every entry the command writes.
pub fn invoked_by() -> serde_json::Value {
    let mut who = serde_json::json!({
        "via": "cli",
        "osUser": os_user(),
        "host": host_name(),
    });
    // Someone who became another account through sudo is named too.
    if let Some(sudo) = std::env::var("SUDO_USER").ok().filter(|u| !u.is_empty()) {
        who["sudoUser"] = sudo.into();
    }
    who
}

/// The caller of a command-line action: the `system` actor, naming who ran the command.
pub fn cli_caller() -> Caller {
    Caller::cli(invoked_by())
}

fn os_user() -> String {
    // SAFETY: getuid has no preconditions; getpwuid_r writes only into the buffers given.
    unsafe {
        let uid = libc::getuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found);
        if rc == 0 && !found.is_null() && !pwd.pw_name.is_null() {
            return std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .into_owned();
        }
        format!("uid:{uid}")
    }
}

pub(crate) fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Removes an export written to `path` (a directory or a `.tar.gz`).
fn remove_output(path: &std::path::Path) {
    let removed = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    if let Err(e) = removed {
        tracing::error!(path = %path.display(), error = %e, "removing an unaudited export");
    }
}

async fn agency(state: &AppState, slug: &str) -> anyhow::Result<writ_tenancy::Agency> {
    writ_tenancy::agency_by_slug(&state.pool, slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no agency with slug {slug:?}"))
}

/// The agency, for a command that adds to its chain (export, prune, archive): only while it is
/// served. Once an offboarding has started, its final export is the certified end of the chain.
async fn active_agency(state: &AppState, slug: &str) -> anyhow::Result<writ_tenancy::Agency> {
    let agency = agency(state, slug).await?;
    if agency.status != "active" {
        anyhow::bail!(
            "agency {slug:?} is {}: its chain takes no more entries (an offboarding's final \
             export is the certified one)",
            agency.status
        );
    }
    Ok(agency)
}

pub async fn run(state: &AppState, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Export {
            agency: slug,
            out,
            from_seq,
            to_seq,
        } => {
            let agency = active_agency(state, &slug).await?;
            let exported = writ_audit_log::export_bundle(
                &state.pool,
                &state.keys,
                &agency,
                from_seq,
                to_seq,
                &out,
            )
            .await;
            // The export is an audited act with its real outcome. Its entry follows the export
            // (it cannot be in the bundle it describes); an export that cannot be audited is
            // removed rather than left unrecorded.
            let detail = match &exported {
                Ok(s) => serde_json::json!({
                    "via": "cli", "fromSeq": from_seq, "toSeq": to_seq,
                    "firstSeq": s.first_seq, "lastSeq": s.last_seq, "entryCount": s.entry_count,
                }),
                Err(e) => serde_json::json!({
                    "via": "cli", "fromSeq": from_seq, "toSeq": to_seq, "error": e.to_string(),
                }),
            };
            let mut event = cli_caller()
                .event(writ_audit_log::EXPORT_REQUESTED)
                .detail(detail);
            if exported.is_err() {
                event = event.failure();
            }
            let recorded = async {
                // Only while the agency is served, as every request's transaction.
                let Some((_, mut tx)) = TenantTx::begin_active(&state.pool, agency.id).await?
                else {
                    anyhow::bail!("agency {slug:?} is no longer active");
                };
                writ_audit_log::record(&mut tx, &event).await?;
                tx.commit().await?;
                anyhow::Ok(())
            }
            .await;
            let summary = match (exported, recorded) {
                (Ok(summary), Ok(())) => summary,
                (Ok(summary), Err(e)) => {
                    remove_output(&summary.path);
                    return Err(e.context(
                        "recording the export in the audit log failed; the export was removed",
                    ));
                }
                (Err(e), Ok(())) => return Err(e.into()),
                (Err(e), Err(audit)) => {
                    tracing::error!(error = %audit, "recording the failed export in the audit log");
                    return Err(e.into());
                }
            };
            println!(
                "exported seq {}..={} ({} entries) to {}; checkpoint size {}; certificate signed by key {}",
                summary.first_seq,
                summary.last_seq,
                summary.entry_count,
                summary.path.display(),
                summary.checkpoint_size,
                summary.certificate_key_id
            );
            Ok(())
        }
        AuditCommand::Checkpoint { agency: slug } => {
            let agency = agency(state, &slug).await?;
            writ_audit_log::sequence_agency(&state.pool, agency.id, &agency.ident).await?;
            let signed = writ_audit_log::checkpoint_agency(
                &state.pool,
                &state.keys,
                &agency,
                Duration::ZERO,
                true,
            )
            .await?
            .ok_or_else(|| {
                anyhow::anyhow!("another process is signing this agency's checkpoint; retry")
            })?;
            print!("{}", signed.note);
            Ok(())
        }
        AuditCommand::Verify { agency: slug } => {
            let agency = agency(state, &slug).await?;
            let report = writ_audit_log::verify_live(&state.pool, &agency).await?;
            println!(
                "{} entries, {} checkpoints checked",
                report.entries, report.checkpoints
            );
            if let Some(n) = report.minimum_index {
                println!("log pruned: starts at the signed minimum index, seq {n}");
            }
            match report.failure {
                None => {
                    println!("OK: chain, Merkle nodes and checkpoints verify");
                    Ok(())
                }
                Some((seq, reason)) => {
                    let at = seq.map_or("-".to_owned(), |s| s.to_string());
                    println!("FAILED at seq {at}: {reason}");
                    anyhow::bail!("audit chain of {slug} does not verify (first bad seq {at})")
                }
            }
        }
        AuditCommand::Prune {
            agency: slug,
            dry_run,
        } => {
            let agency = active_agency(state, &slug).await?;
            let mode = if dry_run {
                PruneMode::DryRun
            } else {
                PruneMode::Prune
            };
            let report =
                writ_audit_log::prune_agency(&state.pool, &state.keys, &agency, Utc::now(), mode)
                    .await
                    .map_err(|e| match e {
                        RetentionError::LegalHold(_) => {
                            anyhow::anyhow!("{e}; nothing was pruned")
                        }
                        other => other.into(),
                    })?;
            let verb = if dry_run { "would prune" } else { "pruned" };
            println!(
                "retention {} days: entries before {} are due",
                report.retention_days,
                report
                    .cutoff
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            );
            if report.pruned == 0 {
                println!(
                    "nothing to prune: the log starts at seq {} of {}",
                    report.minimum_index, report.tree_size
                );
            } else {
                println!(
                    "{verb} {} entries: seq {}..={}; the log now starts at seq {} of {}",
                    report.pruned,
                    report.previous_minimum_index,
                    report.minimum_index - 1,
                    report.minimum_index,
                    report.tree_size
                );
            }
            if let Some(note) = &report.statement {
                print!("{note}");
            }
            Ok(())
        }
        AuditCommand::Archive { agency: slug } => {
            let agency = active_agency(state, &slug).await?;
            match writ_audit_log::archive_agency(
                &state.pool,
                &state.keys,
                &agency,
                Utc::now(),
                &state.archive_destinations,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}; nothing was archived"))?
            {
                ArchiveOutcome::Archived(a) => println!(
                    "archived seq {}..={} ({} bytes, sha256 {}) to {}; checkpoint at {}",
                    a.from_seq, a.to_seq, a.bytes, a.sha256, a.object_path, a.checkpoint_path
                ),
                ArchiveOutcome::NothingNew {
                    archived_to,
                    tree_size,
                } => println!(
                    "nothing new to archive: seq ..={archived_to} archived, the log holds {tree_size}"
                ),
            }
            Ok(())
        }
    }
}
