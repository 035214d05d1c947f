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
    /// Serve the API (DATABASE_URL required).
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
    /// Audit chain operations for agency admins and operators.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
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
            let state = state(&config)?;
            crate::auth_cli::create_operator(&state, &username, name.as_deref()).await
        }
        Command::Serve => {
            let state = state(&config)?;
            crate::app::serve(&config, state).await
        }
        Command::Migrate => {
            let state = state(&config)?;
            let report =
                writ_tenancy::migrate_all(&state.pool, writ_tenancy::tenant_migrations()).await?;
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
        Command::Audit { command } => {
            crate::audit_cli::run(&state(&config)?, command_parts(command)).await
        }
        Command::Agency { command } => {
            let state = state(&config)?;
            match command {
                AgencyCommand::Create { slug, name, admin } => {
                    if let Some(a) = &admin {
                        writ_auth_mfa::normalize_username(a)?;
                    }
                    let agency = writ_tenancy::onboard(
                        &state.pool,
                        &state.keys,
                        writ_tenancy::NewAgency {
                            slug: &slug,
                            name: &name,
                            key_spec: writ_keys::KeySpec::Local,
                        },
                        writ_tenancy::tenant_migrations(),
                    )
                    .await?;
                    println!(
                        "agency {} created: id {} schema {}",
                        agency.slug, agency.id, agency.ident
                    );
                    if let Some(admin) = admin {
                        crate::auth_cli::create_first_admin(&state, &agency, &admin).await?;
                    }
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
    }
}

/// The shared state: a connection pool and the local key provider.
pub fn state(config: &Config) -> anyhow::Result<AppState> {
    let url = config.database_url.as_deref().ok_or_else(|| {
        anyhow::anyhow!("DATABASE_URL is not set (use `writ dev` for a private database)")
    })?;
    state_for_url(config, url)
}

pub fn state_for_url(config: &Config, url: &str) -> anyhow::Result<AppState> {
    let options = PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(config.db_acquire_timeout);
    // Lazy: the server must start (and report unready) while the database is down.
    let pool = options.connect_lazy(url)?;
    let keys = KeyProvider::new(LocalProvider::open_or_create(&config.master_key_file)?);
    Ok(AppState::new(
        pool,
        keys,
        config.auth.clone(),
        config.rate_limits.clone(),
        config.trust_forwarded_for,
    ))
}
