//! `writ user …`: account administration from the server's command line, for when nobody can do
//! it over HTTP — e.g. the agency's only administrator is locked out.

use clap::Subcommand;
use writ_auth_mfa::{AuthError, Realm};

use crate::AppState;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Unlock an account locked after failed logins and reset its failure count (audited as
    /// `admin.user.unlocked`, naming the operating-system user who ran the command).
    Unlock {
        /// The agency's slug.
        #[arg(long, required_unless_present = "platform")]
        agency: Option<String>,
        /// Unlock a platform operator instead of an agency user.
        #[arg(long, conflicts_with = "agency")]
        platform: bool,
        username: String,
    },
}

pub async fn run(state: &AppState, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Unlock {
            agency, username, ..
        } => unlock(state, agency.as_deref(), &username).await,
    }
}

async fn unlock(state: &AppState, slug: Option<&str>, username: &str) -> anyhow::Result<()> {
    // The actor is the system; the entry names who ran the command (`detail.invokedBy`).
    let caller = crate::audit_cli::cli_caller();
    let user = match slug {
        Some(slug) => {
            let agency = writ_tenancy::agency_by_slug(&state.pool, slug)
                .await?
                .filter(|a| a.status == "active")
                .ok_or_else(|| anyhow::anyhow!("no active agency with slug {slug:?}"))?;
            let mut tx = writ_tenancy::TenantTx::begin(&state.pool, &agency).await?;
            let user =
                writ_auth_mfa::unlock_username(&mut Realm::Agency(&mut tx), &caller, username)
                    .await
                    .map_err(|e| not_found_as(e, username))?;
            tx.commit().await?;
            user
        }
        None => {
            let mut tx = state.pool.begin().await?;
            let user =
                writ_auth_mfa::unlock_username(&mut Realm::Platform(&mut tx), &caller, username)
                    .await
                    .map_err(|e| not_found_as(e, username))?;
            tx.commit().await?;
            user
        }
    };
    println!("{} unlocked (id {})", user.username, user.id);
    Ok(())
}

fn not_found_as(e: AuthError, username: &str) -> anyhow::Error {
    match e {
        AuthError::NotFound => anyhow::anyhow!("no user {username:?}"),
        other => other.into(),
    }
}
