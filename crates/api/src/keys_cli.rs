//! `writ keys …` and the key options of `writ agency create`: agency key administration for
//! operators, usable without the HTTP API.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use writ_keys::{KeyPurpose, KeySpec};
use writ_tenancy::Agency;

use crate::AppState;

/// Where an agency's keys live (`writ agency create`).
#[derive(Args, Debug, Clone)]
pub struct KeySpecArgs {
    /// `local` (keys sealed under the master key file), `aws-kms` or `azure-keyvault`.
    #[arg(long, default_value = "local")]
    pub key_provider: String,
    /// aws-kms: an existing symmetric key (ARN or id) to use as the key-encryption key.
    #[arg(long)]
    pub kms_key_id: Option<String>,
    /// aws-kms: an existing ECC_NIST_P256 SIGN_VERIFY key for signing.
    #[arg(long)]
    pub kms_signing_key_id: Option<String>,
    /// azure-keyvault: the agency's vault, e.g. https://agency.vault.azure.net
    #[arg(long)]
    pub vault_url: Option<String>,
    /// azure-keyvault: base name of the agency's keys (`<name>-kek`, `<name>-signing`).
    #[arg(long)]
    pub key_name: Option<String>,
}

impl KeySpecArgs {
    pub fn spec(&self) -> anyhow::Result<KeySpec> {
        Ok(KeySpec::from_parts(
            Some(&self.key_provider),
            self.kms_key_id.clone(),
            self.kms_signing_key_id.clone(),
            self.vault_url.clone(),
            self.key_name.clone(),
        )?)
    }
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List every version of the agency's keys with its state and validity window.
    List {
        #[arg(long)]
        agency: String,
    },
    /// Rotate now: a new version of the key-encryption key, the signing key, or both.
    Rotate {
        #[arg(long)]
        agency: String,
        /// kek, signing or all.
        #[arg(long, default_value = "all")]
        purpose: String,
        /// Re-wrap the data keys here and now, printing progress, instead of leaving it to the
        /// server's background work.
        #[arg(long)]
        wait: bool,
    },
    /// Revoke one (non-current) version; what only it protects becomes unreadable.
    Disable {
        #[arg(long)]
        agency: String,
        /// kek or signing.
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        version: i32,
        /// Recorded in the `key.revocation` audit entry.
        #[arg(long)]
        reason: String,
        /// Revoke a key-encryption version that still wraps data keys (the re-wrap has not
        /// finished): what they protect becomes unreadable for good.
        #[arg(long)]
        force: bool,
    },
    /// Re-wrap the agency's data keys under the current key-encryption key now, with progress.
    Rewrap {
        #[arg(long)]
        agency: String,
    },
}

async fn agency(state: &AppState, slug: &str) -> anyhow::Result<Agency> {
    writ_tenancy::agency_by_slug(&state.pool, slug)
        .await?
        .with_context(|| format!("no agency {slug:?}"))
}

fn purposes(s: &str) -> anyhow::Result<Vec<KeyPurpose>> {
    match s {
        "all" => Ok(vec![KeyPurpose::KeyEncryption, KeyPurpose::Signing]),
        other => Ok(vec![KeyPurpose::parse(other).with_context(|| {
            format!("--purpose {other:?}: expected kek, signing or all")
        })?]),
    }
}

pub async fn run(state: &AppState, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::List { agency: slug } => {
            let agency = agency(state, &slug).await?;
            println!("purpose\tversion\tstate\tprovider\tvalid_from\tvalid_to\tkey_id");
            for purpose in [KeyPurpose::KeyEncryption, KeyPurpose::Signing] {
                for k in writ_tenancy::agency_keys(&state.pool, agency.id, purpose).await? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        purpose.as_str(),
                        k.key.version,
                        k.key.state.as_str(),
                        k.key.provider,
                        k.valid_from.to_rfc3339(),
                        k.valid_to
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_else(|| "-".into()),
                        k.key.key_id
                    );
                }
            }
        }
        KeysCommand::Rotate {
            agency: slug,
            purpose,
            wait,
        } => {
            let agency = agency(state, &slug).await?;
            let caller = crate::audit_cli::cli_caller();
            for purpose in purposes(&purpose)? {
                let rotated = writ_agency_keys::rotate(
                    &state.pool,
                    &state.keys,
                    &agency,
                    purpose,
                    &caller,
                    None,
                )
                .await?
                .context("rotation did not happen")?;
                println!(
                    "{}: version {} -> {} ({})",
                    rotated.purpose, rotated.from_version, rotated.to_version, rotated.key_id
                );
                if let Some(id) = rotated.rewrap_id {
                    println!("re-wrap of data keys: {id}");
                }
            }
            if wait {
                rewrap(state, &agency).await?;
            }
        }
        KeysCommand::Disable {
            agency: slug,
            purpose,
            version,
            reason,
            force,
        } => {
            let agency = agency(state, &slug).await?;
            let purpose = KeyPurpose::parse(&purpose)
                .with_context(|| format!("--purpose {purpose:?}: expected kek or signing"))?;
            let done = writ_agency_keys::disable_version(
                &state.pool,
                &state.keys,
                &agency,
                purpose,
                version,
                &reason,
                force,
                &crate::audit_cli::cli_caller(),
            )
            .await?;
            println!(
                "{} version {} disabled ({})",
                done.purpose, done.version, done.key_id
            );
        }
        KeysCommand::Rewrap { agency: slug } => {
            let agency = agency(state, &slug).await?;
            rewrap(state, &agency).await?;
        }
    }
    Ok(())
}

/// Runs re-wrap steps until the agency's job is finished, printing progress.
async fn rewrap(state: &AppState, agency: &Agency) -> anyhow::Result<()> {
    loop {
        match writ_agency_keys::rewrap_step(&state.pool, &state.keys, agency, 500).await? {
            None => {
                println!("no re-wrap running");
                return Ok(());
            }
            Some(job) => {
                println!(
                    "re-wrap {}: {}/{} data keys re-wrapped, {} unreadable, {}",
                    job.id, job.done, job.total, job.failed, job.status
                );
                match job.status.as_str() {
                    "running" => tokio::time::sleep(Duration::from_millis(10)).await,
                    "failed" => anyhow::bail!("re-wrap failed: {}", job.error.unwrap_or_default()),
                    _ => return Ok(()),
                }
            }
        }
    }
}

/// Offboards an agency, or resumes its offboarding, and says where it stands.
pub async fn offboard(
    state: &AppState,
    slug: &str,
    reason: Option<&str>,
    cancel: bool,
) -> anyhow::Result<()> {
    let agency = agency(state, slug).await?;
    let offboarder = crate::offboarding::Offboarder {
        pool: &state.pool,
        keys: &state.keys,
        documents: &state.documents,
        export_dir: &state.export_dir,
    };
    let caller = crate::audit_cli::cli_caller();
    if cancel {
        offboarder.cancel(&agency, &caller).await?;
        println!(
            "agency {slug}: offboarding called off; its keys are usable and it is served again"
        );
        return Ok(());
    }
    let view = offboarder.offboard(&agency, &caller, reason).await?;
    let dir = state.export_dir.join(agency.id.to_string());
    if view.status() == "offboarded" {
        println!("agency {slug} offboarded: schema, role, keys and stored documents are gone");
        return Ok(());
    }
    println!(
        "agency {slug} offboarding: no longer served; the final export and the certificate of \
         offboarding are in {} (hand both to the agency: they are removed with the agency)",
        dir.display()
    );
    if view.keys_scheduled() {
        println!(
            "keys scheduled for deletion after {}; the schema and role are dropped then \
             (by `writ serve`, or by running this command again)",
            view.deletion_after().to_rfc3339()
        );
    }
    Ok(())
}
