//! Jobs and records that sit beside the request path: authorisation denials, sampled rate-limit
//! entries, the inactivity job, rate-limit policies, and platform operators.

use std::collections::HashMap;

use serde_json::json;
use sqlx::{PgPool, Row};
use uuid::Uuid;
use writ_audit_log::{Actor, Caller, Event};
use writ_tenancy::TenantTx;

use crate::accounts::{CreatedUser, NewUser, create_user, revoke_user_sessions};
use crate::session::{Principal, Tx};
use crate::tokens::TokenRealm;
use crate::{Auth, AuthError, Permission, Realm, Role};

/// What a denial refused: the route (method and template, for counting), the request's own path
/// (naming the warrant, document or request it was about) and why.
#[derive(Debug, Clone, Copy)]
pub struct Refused<'a> {
    pub permission: Option<Permission>,
    pub route: &'a str,
    pub path: &'a str,
    pub reason: &'a str,
}

fn denial(caller: &Caller, refused: &Refused<'_>) -> Event {
    caller.event("authz.denied").failure().detail(json!({
        "route": refused.route,
        "path": writ_audit_log::clipped(refused.path, 512),
        "permission": refused.permission.map(Permission::as_str),
        "reason": writ_audit_log::clipped(refused.reason, 1000),
    }))
}

/// Records a denial in its own small transaction (committed although the request fails): an
/// `authz.denied` entry in the caller's agency chain, or a platform event for an operator.
pub async fn record_denial(
    pool: &PgPool,
    caller: &Caller,
    refused: &Refused<'_>,
) -> Result<(), AuthError> {
    let realm = match caller.agency_id {
        Some(a) => TokenRealm::Agency(a),
        None => TokenRealm::Platform,
    };
    record_in_realm(pool, realm, denial(caller, refused)).await
}

/// Records a denial in the request's own transaction, which the caller then commits although the
/// request fails.
pub async fn record_denial_in(
    tx: &mut TenantTx,
    caller: &Caller,
    refused: &Refused<'_>,
) -> Result<(), AuthError> {
    writ_audit_log::record(tx, &denial(caller, refused)).await?;
    Ok(())
}

/// Records `event` about the caller `principal` in a small transaction of its own, in the
/// caller's agency's chain (or as a platform event for an operator): for what the gateway notices
/// outside any request's transaction (`validation.failed`).
pub async fn record_caller_event(
    pool: &PgPool,
    principal: &Principal,
    event: Event,
) -> Result<(), AuthError> {
    let realm = match principal.agency_id {
        Some(a) => TokenRealm::Agency(a),
        None => TokenRealm::Platform,
    };
    record_in_realm(pool, realm, event).await
}

/// Records `event` in a small transaction of its own: in an agency's chain, or as a platform
/// event for an operator.
async fn record_in_realm(pool: &PgPool, realm: TokenRealm, event: Event) -> Result<(), AuthError> {
    let Some(mut tx) = Tx::open(pool, realm).await? else {
        return Ok(());
    };
    let outcome = tx.realm().audit(event).await;
    tx.finish(outcome).await
}

/// The agency's rate-limit overrides: policies named `ratelimit.<role>` holding a number or
/// `{"perMinute": n}`.
pub async fn rate_limit_policies(
    pool: &PgPool,
    agency_id: Uuid,
) -> Result<HashMap<Role, u32>, AuthError> {
    let Some(agency) = writ_tenancy::agency_by_id(pool, agency_id).await? else {
        return Ok(HashMap::new());
    };
    let mut tx = TenantTx::begin(pool, &agency).await?;
    let rows = sqlx::query("SELECT name, value FROM policies WHERE name LIKE 'ratelimit.%'")
        .fetch_all(tx.conn())
        .await?;
    tx.commit().await?;
    let mut out = HashMap::new();
    for r in rows {
        let name: String = r.try_get("name")?;
        let value: serde_json::Value = r.try_get("value")?;
        let role = name
            .strip_prefix(crate::policies::RATE_LIMIT_PREFIX)
            .and_then(|r| r.parse().ok());
        if let (Some(role), Some(n)) = (role, crate::policies::rate_limit_value(&value)) {
            out.insert(role, n);
        }
    }
    Ok(out)
}

/// Disables every active account of every agency (and every operator) without a login for the
/// configured inactivity period (AC-2(3)), revoking its sessions, audited as the system. Returns
/// how many were disabled.
pub async fn disable_inactive_accounts(pool: &PgPool, auth: &Auth) -> Result<u64, AuthError> {
    let mut total = 0;
    let mut realms: Vec<TokenRealm> = writ_tenancy::list_agencies(pool)
        .await?
        .into_iter()
        .filter(|a| a.status == "active")
        .map(|a| TokenRealm::Agency(a.id))
        .collect();
    realms.push(TokenRealm::Platform);
    for realm_id in realms {
        let Some(mut tx) = Tx::open(pool, realm_id).await? else {
            continue;
        };
        let outcome = disable_in(&mut tx.realm(), auth).await;
        total += tx.finish(outcome).await?;
    }
    Ok(total)
}

async fn disable_in(realm: &mut Realm<'_>, auth: &Auth) -> Result<u64, AuthError> {
    let t = realm.tables();
    let rows = sqlx::query(crate::realm::sql(
        t,
        "UPDATE {u} SET status = 'disabled', updated_at = now() WHERE status = 'active' \
         AND coalesce(last_login_at, created_at) < now() - make_interval(secs => $1) RETURNING id",
    ))
    .bind(auth.config.inactivity.as_secs_f64())
    .fetch_all(realm.conn())
    .await?;
    let days = auth.config.inactivity.as_secs() / 86_400;
    for r in &rows {
        let id: Uuid = r.try_get("id")?;
        revoke_user_sessions(realm, id, "account disabled for inactivity").await?;
        realm
            .audit(
                Event::new("admin.user.modified", Actor::system())
                    .resource("userId", id.to_string())
                    .detail(json!({ "status": "disabled", "reason": format!("no login for {days} days") })),
            )
            .await?;
    }
    Ok(rows.len() as u64)
}

/// Creates a platform operator with a one-time enrollment token (`writ operator create`).
pub async fn create_operator(
    pool: &PgPool,
    auth: &Auth,
    username: &str,
    display_name: &str,
) -> Result<CreatedUser, AuthError> {
    let mut tx = Tx::Platform(pool.begin().await?);
    let outcome = create_user(
        &mut tx.realm(),
        auth,
        &Caller::system(),
        NewUser {
            username,
            display_name,
            role: Role::PlatformOperator,
            badge_or_judicial_id: None,
        },
    )
    .await;
    tx.finish(outcome).await
}

/// Records what an operator did in the control plane's platform event table.
pub async fn record_platform_event(pool: &PgPool, event: Event) -> Result<(), AuthError> {
    let mut tx = Tx::Platform(pool.begin().await?);
    let outcome = tx.realm().audit(event).await;
    tx.finish(outcome).await
}
