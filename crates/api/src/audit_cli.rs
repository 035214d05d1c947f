//! `writ audit …`: export, checkpoint and verify an agency's chain from the command line.

use std::path::PathBuf;
use std::time::Duration;

use writ_audit_log::{Actor, Event};
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
}

async fn agency(state: &AppState, slug: &str) -> anyhow::Result<writ_tenancy::Agency> {
    writ_tenancy::agency_by_slug(&state.pool, slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no agency with slug {slug:?}"))
}

pub async fn run(state: &AppState, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Export {
            agency: slug,
            out,
            from_seq,
            to_seq,
        } => {
            let agency = agency(state, &slug).await?;
            // The export itself is an audited act, recorded before the log is read.
            let mut tx = TenantTx::begin(&state.pool, &agency).await?;
            let event =
                Event::new("admin.export.requested", Actor::system()).detail(serde_json::json!({
                    "via": "cli", "fromSeq": from_seq, "toSeq": to_seq
                }));
            writ_audit_log::record(&mut tx, &event).await?;
            tx.commit().await?;
            let summary = writ_audit_log::export_bundle(
                &state.pool,
                &state.keys,
                &agency,
                from_seq,
                to_seq,
                &out,
            )
            .await?;
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
    }
}
