//! `writ user …`: account administration from the server's command line, for when nobody can do
//! it over HTTP — e.g. the agency's only administrator is locked out, or a platform operator's
//! account must end now (operators have no HTTP route that ends another's).

use clap::{Args, Subcommand};
use writ_auth_mfa::{AuthError, Realm, User};

use crate::AppState;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Unlock an account locked after failed logins and reset its failure count (audited as
    /// `admin.user.unlocked`, naming the operating-system user who ran the command).
    Unlock(Account),
    /// Deactivate an account and end its sessions at once (audited as
    /// `admin.user.deactivated`, naming the operating-system user who ran the command).
    Deactivate(Account),
}

/// One account: an agency user, or with `--platform` a platform operator.
#[derive(Args)]
pub struct Account {
    /// The agency's slug.
    #[arg(long, required_unless_present = "platform")]
    agency: Option<String>,
    /// A platform operator instead of an agency user.
    #[arg(long, conflicts_with = "agency")]
    platform: bool,
    username: String,
}

pub async fn run(state: &AppState, command: UserCommand) -> anyhow::Result<()> {
    // The actor is the system; the entry names who ran the command (`detail.invokedBy`).
    let caller = crate::audit_cli::cli_caller();
    match command {
        UserCommand::Unlock(a) => {
            let user = in_realm(state, &a, async |realm| {
                writ_auth_mfa::unlock_username(realm, &caller, &a.username).await
            })
            .await?;
            println!("{} unlocked (id {})", user.username, user.id);
        }
        UserCommand::Deactivate(a) => {
            let user = in_realm(state, &a, async |realm| {
                writ_auth_mfa::deactivate_username(realm, &caller, &a.username).await
            })
            .await?;
            println!(
                "{} deactivated, sessions ended (id {})",
                user.username, user.id
            );
        }
    }
    Ok(())
}

/// Runs `change` in one transaction of the account's realm: the agency's (active) schema, or the
/// control plane for an operator.
async fn in_realm(
    state: &AppState,
    account: &Account,
    change: impl AsyncFnOnce(&mut Realm<'_>) -> Result<User, AuthError>,
) -> anyhow::Result<User> {
    let named = |e| not_found_as(e, &account.username);
    match &account.agency {
        Some(slug) => {
            let agency = writ_tenancy::agency_by_slug(&state.pool, slug)
                .await?
                .filter(|a| a.status == "active")
                .ok_or_else(|| anyhow::anyhow!("no active agency with slug {slug:?}"))?;
            // Holds the agency's lock as a request does: an offboarding waits for the change.
            let mut tx = writ_tenancy::TenantTx::begin_still_active(&state.pool, &agency).await?;
            let user = change(&mut Realm::Agency(&mut tx)).await.map_err(named)?;
            tx.commit().await?;
            Ok(user)
        }
        None => {
            let mut tx = state.pool.begin().await?;
            let user = change(&mut Realm::Platform(&mut tx)).await.map_err(named)?;
            tx.commit().await?;
            Ok(user)
        }
    }
}

fn not_found_as(e: AuthError, username: &str) -> anyhow::Error {
    match e {
        AuthError::NotFound => anyhow::anyhow!("no user {username:?}"),
        other => other.into(),
    }
}
