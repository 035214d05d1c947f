//! The `writ` command line: serve the API, run migrations, onboard agencies, and `dev` for the
//! one-command local setup.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sqlx::postgres::PgPoolOptions;
use writ_keys::{KeyProvider, LocalProvider};

use crate::{AppState, Config};

#[derive(Parser)]
#[command(
    name = "writ",
    version,
    about = "Writ: electronic warrants for law-enforcement agencies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API through the serving role (DATABASE_URL; WRIT_OWNER_DATABASE_URL for
    /// onboarding, offboarding and pruning).
    Serve,
    /// Local development: a private PostgreSQL under WRIT_DATA_DIR, migrations, a demo agency, serve.
    Dev,
    /// Bring the control plane and every agency schema up to date (idempotent).
    Migrate,
    /// Agency administration for platform operators.
    Agency {
        #[command(subcommand)]
        command: AgencyCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Platform operators (control plane).
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Print the current TOTP code for a base32 secret (for the demo users and testing).
    Totp {
        /// The base32 secret.
        secret: String,
    },
    /// Agency keys: list versions, rotate, revoke a version, re-wrap data keys.
    Keys {
        #[command(subcommand)]
        command: crate::keys_cli::KeysCommand,
    },
    /// Audit chain operations for agency admins and operators.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Accounts: unlock a locked user (e.g. an agency's only administrator).
    User {
        #[command(subcommand)]
        command: crate::user_cli::UserCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Write a signed export (directory, or .tar.gz) of the agency's audit log.
    Export {
        #[arg(long)]
        agency: String,
        #[arg(long)]
        out: std::path::PathBuf,
        #[arg(long)]
        from_seq: Option<u64>,
        #[arg(long)]
        to_seq: Option<u64>,
    },
    /// Sequence pending events and sign a checkpoint now; prints the signed note.
    Checkpoint {
        #[arg(long)]
        agency: String,
    },
    /// Re-verify the live chain, Merkle nodes and checkpoints; exits non-zero on the first bad seq.
    Verify {
        #[arg(long)]
        agency: String,
    },
    /// Prune entries older than the agency's retention policy (`audit.retention`, at least 365
    /// days) below a signed minimum index; refused while a legal hold is active. Also runs daily
    /// in `writ serve`.
    Prune {
        #[arg(long)]
        agency: String,
        /// Only say what would be pruned.
        #[arg(long)]
        dry_run: bool,
    },
    /// Archive the entries not archived yet to the agency's storage (policy `audit.archive`) now,
    /// as a signed bundle and the latest checkpoint. Also runs in `writ serve` as the policy says.
    Archive {
        #[arg(long)]
        agency: String,
    },
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Create a platform operator; prints a one-time enrollment token (valid 72 hours).
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum AgencyCommand {
    /// Onboard an agency: schema, role, row-level security and keys, all or nothing.
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        /// Also create the agency's first agency_admin and print their enrollment token.
        #[arg(long)]
        admin: Option<String>,
        #[command(flatten)]
        keys: crate::keys_cli::KeySpecArgs,
    },
    /// Offboard an agency: stop serving it, write its final signed export and certificate of
    /// offboarding, and schedule its keys for deletion (crypto-shredding); after the waiting
    /// period, drop its schema and role. Run again to resume or finish.
    Offboard {
        #[arg(long)]
        slug: String,
        /// Why the agency leaves (recorded and certified); needed to start.
        #[arg(long)]
        reason: Option<String>,
        /// Call the offboarding off (within its 30 days): keys usable again, the agency served.
        #[arg(long, conflicts_with = "reason")]
        cancel: bool,
    },
    /// List onboarded agencies.
    List,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("writ: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if !matches!(
        cli.command,
        Command::Serve | Command::Dev | Command::Openapi | Command::Totp { .. }
    ) {
        // What this process records is a person's command-line action, not the server's.
        writ_audit_log::set_invoked_by(crate::audit_cli::invoked_by());
    }
    let result = actix_web::rt::System::new().block_on(run(cli.command, config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("writ: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Openapi => {
            print!("{}", crate::openapi::document_json());
            Ok(())
        }
        Command::Dev => crate::dev::run(config).await,
        Command::Totp { secret } => crate::auth_cli::print_totp(&secret),
        Command::Operator {
            command: OperatorCommand::Create { username, name },
        } => {
            let state = state(&config, Connect::Operate).await?;
            crate::auth_cli::create_operator(&state, &username, name.as_deref()).await
        }
        Command::Serve => {
            let state = state(&config, Connect::Serve).await?;
            crate::app::serve(&config, state).await
        }
        Command::Migrate => {
            // Needs no keys: a fresh deployment migrates before it has a master key.
            let urls = database_urls(&config)?;
            let pool = pool(&config, &urls.owner)?;
            let report = writ_tenancy::migrate_all(&pool, writ_tenancy::tenant_migrations()).await;
            pool.close().await;
            let report = report?;
            if report.is_empty() {
                println!("already up to date");
            }
            for v in &report.control {
                println!("control: applied {v}");
            }
            for (slug, v) in &report.tenant {
                println!("agency {slug}: applied {v}");
            }
            Ok(())
        }
        Command::Keys { command } => {
            let state = state(&config, Connect::Operate).await?;
            let done = crate::keys_cli::run(&state, command).await;
            flush_key_access(&state).await;
            done
        }
        Command::User { command } => {
            crate::user_cli::run(&state(&config, Connect::Operate).await?, command).await
        }
        Command::Audit { command } => {
            let state = state(&config, Connect::Operate).await?;
            let done = crate::audit_cli::run(&state, command_parts(command)).await;
            flush_key_access(&state).await;
            done
        }
        Command::Agency { command } => {
            // Onboarding is one of the two commands that may create the master key.
            let connect = if matches!(command, AgencyCommand::Create { .. }) {
                Connect::Onboard
            } else {
                Connect::Operate
            };
            let state = state(&config, connect).await?;
            match command {
                AgencyCommand::Create {
                    slug,
                    name,
                    admin,
                    keys,
                } => {
                    let key_spec = keys.spec()?;
                    if let Some(a) = &admin {
                        writ_auth_mfa::normalize_username(a)?;
                    }
                    // The agency and its first administrator commit together, or neither does.
                    let (tx, agency) = writ_tenancy::onboard_open(
                        &state.pool,
                        &state.keys,
                        writ_tenancy::NewAgency {
                            slug: &slug,
                            name: &name,
                            key_spec,
                        },
                        writ_tenancy::tenant_migrations(),
                    )
                    .await?;
                    let mut tx = tx;
                    crate::routes::platform::record_onboarded(
                        tx.conn(),
                        &crate::audit_cli::cli_caller(),
                        &agency,
                    )
                    .await?;
                    let mut tx = tx.enter(&agency).await?;
                    let created = match &admin {
                        Some(admin) => {
                            Some(crate::auth_cli::create_first_admin(&state, &mut tx, admin).await?)
                        }
                        None => None,
                    };
                    tx.commit().await?;
                    println!(
                        "agency {} created: id {} schema {}",
                        agency.slug, agency.id, agency.ident
                    );
                    if let Some(created) = created {
                        println!(
                            "agency_admin {} created; enrollment token, valid until {}:",
                            created.user.username, created.enrollment_expires_at
                        );
                        println!("{}", created.enrollment_token.as_str());
                    }
                }
                AgencyCommand::Offboard {
                    slug,
                    reason,
                    cancel,
                } => {
                    crate::keys_cli::offboard(&state, &slug, reason.as_deref(), cancel).await?;
                }
                AgencyCommand::List => {
                    for a in writ_tenancy::list_agencies(&state.pool).await? {
                        println!(
                            "{}\t{}\t{}\t{}\t{}",
                            a.slug, a.id, a.status, a.key_provider, a.name
                        );
                    }
                }
            }
            Ok(())
        }
    }
}

fn command_parts(command: AuditCommand) -> crate::audit_cli::AuditCommand {
    use crate::audit_cli::AuditCommand as A;
    match command {
        AuditCommand::Export {
            agency,
            out,
            from_seq,
            to_seq,
        } => A::Export {
            agency,
            out,
            from_seq,
            to_seq,
        },
        AuditCommand::Checkpoint { agency } => A::Checkpoint { agency },
        AuditCommand::Verify { agency } => A::Verify { agency },
        AuditCommand::Prune { agency, dry_run } => A::Prune { agency, dry_run },
        AuditCommand::Archive { agency } => A::Archive { agency },
    }
}

/// What a command connects for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    /// `writ serve`: requests through the serving role, the owner's pool for onboarding and
    /// pruning.
    Serve,
    /// `writ dev`: as `Serve`, and the master key is created when missing.
    Dev,
    /// An operator's command: everything through the owner's connection.
    Operate,
    /// `writ agency create`: as `Operate`, and the master key is created when missing.
    Onboard,
}

/// The two connections of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrls {
    /// The serving role (`DATABASE_URL`).
    pub serving: String,
    /// The owner role (`WRIT_OWNER_DATABASE_URL`, defaulting to `DATABASE_URL`).
    pub owner: String,
}

/// `DATABASE_URL` (and `WRIT_OWNER_DATABASE_URL`), else the URLs of the `writ dev` running with
/// this `WRIT_DATA_DIR`, else an error naming both.
pub fn database_urls(config: &Config) -> anyhow::Result<DatabaseUrls> {
    if let Some(url) = &config.database_url {
        return Ok(DatabaseUrls {
            serving: url.clone(),
            owner: config
                .owner_database_url
                .clone()
                .unwrap_or_else(|| url.clone()),
        });
    }
    crate::dev::read_database_file(&config.data_dir)
}

/// Writes the `key.access` entries of what this command used (a server does it every minute;
/// a command that re-wraps every data key would otherwise leave no trace of those uses).
async fn flush_key_access(state: &AppState) {
    if let Err(e) = writ_agency_keys::flush_key_access(&state.pool, &state.keys).await {
        tracing::warn!(error = %e, "could not write the key.access entries of this command");
    }
}

/// The shared state for `connect`: pools and key providers.
pub async fn state(config: &Config, connect: Connect) -> anyhow::Result<AppState> {
    let urls = database_urls(config)?;
    state_for_urls(config, &urls, connect).await
}

/// A lazy pool: the server must start (and report unready) while the database is down.
fn pool(config: &Config, url: &str) -> anyhow::Result<sqlx::PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(config.db_acquire_timeout)
        // No ping on checkout (a round trip per request): a connection that died while idle
        // fails its first statement as unavailable (503, the problem tells the client to
        // retry) and is then dropped, as every connection is pinged when released.
        .test_before_acquire(false)
        .connect_lazy(url)?)
}

pub async fn state_for_urls(
    config: &Config,
    urls: &DatabaseUrls,
    connect: Connect,
) -> anyhow::Result<AppState> {
    let owner = pool(config, &urls.owner)?;
    let serving = match connect {
        Connect::Serve | Connect::Dev => pool(config, &urls.serving)?,
        Connect::Operate | Connect::Onboard => owner.clone(),
    };
    let create_master_key = matches!(connect, Connect::Dev | Connect::Onboard);
    let keys = key_providers(config, create_master_key, &owner).await?;
    Ok(AppState::new(
        serving,
        owner,
        keys,
        config.auth.clone(),
        config.rate_limits.clone(),
        config.trust_forwarded_for,
    )
    .with_video(config.video_webhook_secret.clone())
    .with_upload_stall(config.upload_stall)
    .with_export_dir(config.export_dir.clone())
    .with_archive_destinations(config.archive_destinations.clone())
    .with_document_store(config.document_store.clone())
    .with_timestamp_authority(config.timestamp_authority.clone()))
}

/// Whether any agency of this database keeps keys with the local provider (so under an existing
/// master key). A database not reachable or not migrated yet has none that could be lost.
async fn has_local_keys(owner: &sqlx::PgPool) -> bool {
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM control.agency_keys WHERE provider = 'local')",
    )
    .fetch_one(owner)
    .await
    .unwrap_or(false)
}

/// The local provider always (it also seals deployment secrets), and the cloud providers named in
/// `WRIT_KEY_PROVIDERS`, configured from their standard environment. The master key file is
/// created only when `create_master_key` (`writ dev`, onboarding) and no agency of the `owner`'s
/// database keeps local keys: anywhere else a missing file is a mistake (another working directory, a missing
/// `WRIT_MASTER_KEY_FILE`), and a new key would decrypt nothing.
pub(crate) async fn key_providers(
    config: &Config,
    create_master_key: bool,
    owner: &sqlx::PgPool,
) -> anyhow::Result<KeyProvider> {
    let path = &config.master_key_file;
    if !path.exists() {
        let shown = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        if !create_master_key {
            anyhow::bail!(
                "WRIT_MASTER_KEY_FILE: {} does not exist. Point WRIT_MASTER_KEY_FILE (or \
                 WRIT_DATA_DIR) at the deployment's master key; only `writ dev` and \
                 `writ agency create` create one",
                shown.display()
            );
        }
        // Agencies already keep keys under a master key: a new one would open none of them
        // (a command run from another directory, a missing WRIT_MASTER_KEY_FILE).
        if has_local_keys(owner).await {
            anyhow::bail!(
                "WRIT_MASTER_KEY_FILE: {} does not exist, but agencies of this database keep \
                 keys under a master key. Point WRIT_MASTER_KEY_FILE (or WRIT_DATA_DIR) at it; \
                 a new one would open none of them",
                shown.display()
            );
        }
    }
    let mut keys = KeyProvider::new(LocalProvider::open_or_create(path)?).with_data_key_cache(
        std::time::Duration::from_secs(config.data_key_cache_secs),
        10_000,
    );
    for provider in &config.key_providers {
        keys = match provider.as_str() {
            writ_keys::AwsKmsProvider::NAME => {
                keys.with_aws(writ_keys::AwsKmsProvider::from_env().await?)
            }
            writ_keys::AzureKeyVaultProvider::NAME => {
                keys.with_azure(writ_keys::AzureKeyVaultProvider::from_env()?)
            }
            other => anyhow::bail!("WRIT_KEY_PROVIDERS: unknown provider {other:?}"),
        };
    }
    Ok(keys)
}
