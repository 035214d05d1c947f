//! `writ operator create` and `writ totp`.

use crate::AppState;

/// Prints the current code of a base32 TOTP secret.
pub fn print_totp(secret: &str) -> anyhow::Result<()> {
    let bytes = writ_auth_mfa::totp::secret_from_base32(secret)?;
    println!("{}", writ_auth_mfa::totp::current_code(&bytes)?);
    Ok(())
}

/// Creates a platform operator and prints the one-time enrollment token.
pub async fn create_operator(
    state: &AppState,
    username: &str,
    name: Option<&str>,
) -> anyhow::Result<()> {
    let auth = state.auth().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let created =
        writ_auth_mfa::create_operator(&state.pool, auth, username, name.unwrap_or(username))
            .await?;
    println!(
        "operator {} created (id {}); enrollment token, valid until {}:",
        created.user.username, created.user.id, created.enrollment_expires_at
    );
    println!("{}", created.enrollment_token.as_str());
    println!(
        "enroll: POST /v1/auth/enroll {{token, password}}, then POST /v1/auth/enroll/confirm {{token, totp}}; \
         log in at POST /v1/platform/auth/login"
    );
    Ok(())
}

/// Creates an agency's first agency_admin and prints the one-time enrollment token.
/// Creates an agency's first agency_admin inside the onboarding transaction.
pub async fn create_first_admin(
    state: &AppState,
    tx: &mut writ_tenancy::TenantTx,
    username: &str,
) -> anyhow::Result<writ_auth_mfa::CreatedUser> {
    let auth = state.auth().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let created = writ_auth_mfa::create_user(
        &mut writ_auth_mfa::Realm::Agency(tx),
        auth,
        &crate::audit_cli::cli_caller(),
        writ_auth_mfa::NewUser {
            username,
            display_name: username,
            role: writ_auth_mfa::Role::AgencyAdmin,
            badge_or_judicial_id: None,
        },
    )
    .await?;
    Ok(created)
}
