//! Rotation, revocation and crypto-shredding of agency key versions. Each change and its audit
//! entry commit in one transaction, a [`ControlTx`]: the control-plane rows are written first,
//! then the same transaction enters the agency's walls to record the event. Each function owns
//! that transaction (it holds the key's lock across a call to the key provider), so a request
//! commits its own transaction before calling one.

use chrono::{DateTime, Duration, Utc};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use writ_audit_log::{Caller, Event, record};
use writ_keys::{KeyProvider, KeyPurpose, KeyRef, KeyState};
use writ_tenancy::{
    Agency, AgencyKeyRecord, ControlTx, TenancyError, TenantTx, agency_keys, insert_key_version,
};

use crate::KeyLifecycleError;

/// Keys are rotated this often unless the agency's `keys.rotation` policy says otherwise.
pub const DEFAULT_ROTATION_DAYS: i64 = 90;

/// The version in use for new work: the newest one without an end of validity.
pub async fn current_key(
    db: impl sqlx::PgExecutor<'_>,
    agency_id: Uuid,
    purpose: KeyPurpose,
) -> Result<AgencyKeyRecord, KeyLifecycleError> {
    let versions = agency_keys(db, agency_id, purpose).await?;
    current_of(&versions, agency_id, purpose).cloned()
}

/// The newest of `versions` without an end of validity.
fn current_of(
    versions: &[AgencyKeyRecord],
    agency_id: Uuid,
    purpose: KeyPurpose,
) -> Result<&AgencyKeyRecord, KeyLifecycleError> {
    versions
        .iter()
        .rfind(|k| k.valid_to.is_none())
        .ok_or(KeyLifecycleError::NoCurrentKey {
            agency: agency_id,
            purpose: purpose.as_str(),
        })
}

/// Serialises lifecycle changes of one agency's key of one purpose, across replicas.
/// Takes the key's lock exclusively, waiting for the transactions making data keys under it at
/// most [`writ_tenancy::EXCLUSIVE_WAIT`]: an upload holds it shared while its body streams, which
/// can take hours, and every new data key of the agency waits behind a waiting taker.
async fn lock(
    conn: &mut PgConnection,
    agency_id: Uuid,
    purpose: KeyPurpose,
) -> Result<(), KeyLifecycleError> {
    let name = lock_name(agency_id, purpose);
    if writ_tenancy::xact_lock_within(conn, &name, writ_tenancy::EXCLUSIVE_WAIT).await? {
        return Ok(());
    }
    Err(KeyLifecycleError::Conflict(format!(
        "the {} key is in use by a long request (an upload?) that did not end within {} s; retry \
         in a moment",
        purpose.as_str(),
        writ_tenancy::EXCLUSIVE_WAIT.as_secs()
    )))
}

/// The advisory lock of one agency key: rotations take it exclusively, new data keys shared.
pub(crate) fn lock_name(agency_id: Uuid, purpose: KeyPurpose) -> String {
    format!("writ.keys:{agency_id}:{}", purpose.as_str())
}

/// The agency is `expected`, read under the agency's shared lock (held until the transaction
/// ends), which starting an offboarding takes exclusively: an offboarding cannot start while a
/// key changes, and no key changes once it has. Taken before the key's lock, in the order every
/// transaction inside the agency takes them, so the two never wait on each other in a cycle.
async fn status_held(
    conn: &mut PgConnection,
    agency: &Agency,
    expected: &str,
) -> Result<(), KeyLifecycleError> {
    writ_tenancy::hold_agency_shared(&mut *conn, agency.id).await?;
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM control.agencies WHERE id = $1")
            .bind(agency.id)
            .fetch_optional(conn)
            .await?;
    if status.as_deref() == Some(expected) {
        return Ok(());
    }
    Err(KeyLifecycleError::Conflict(format!(
        "agency {} is {}: its keys change only while it is {expected}",
        agency.slug,
        status.as_deref().unwrap_or("gone")
    )))
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rotated {
    pub purpose: &'static str,
    pub from_version: i32,
    pub to_version: i32,
    pub key_id: String,
    /// The background re-wrap of data keys a key-encryption key rotation starts.
    pub rewrap_id: Option<Uuid>,
}

/// Makes a new version of the agency's `purpose` key. The old version stays usable for unwrapping
/// and verification; for the signing key it co-signs the next checkpoint (see the checkpointer),
/// and for the key-encryption key a re-wrap of every data key starts in the background.
///
/// With `only_if_older_than`, nothing happens (`Ok(None)`) unless the current version is at least
/// that old — checked under the lock, so replicas never rotate twice.
pub async fn rotate(
    pool: &PgPool,
    keys: &KeyProvider,
    agency: &Agency,
    purpose: KeyPurpose,
    caller: &Caller,
    only_if_older_than: Option<Duration>,
) -> Result<Option<Rotated>, KeyLifecycleError> {
    let mut unrecorded = None;
    let outcome = rotate_once(
        pool,
        keys,
        agency,
        purpose,
        caller,
        only_if_older_than,
        &mut unrecorded,
    )
    .await;
    if let Err(e) = &outcome {
        let mut detail = json!({ "scheduled": only_if_older_than.is_some() });
        if let Some((key_id, fate)) = unrecorded {
            detail["unrecordedKeyId"] = key_id.into();
            detail["unrecordedKey"] = fate.into();
        }
        if let KeyLifecycleError::Tenancy(TenancyError::CommitUnknown(_)) = e {
            // The rotation may have been recorded after all: the key list says which.
            detail["commitOutcome"] = "unknown".into();
        }
        let event = caller
            .event("key.rotation")
            .resource("keyPurpose", purpose.as_str())
            .detail(detail);
        record_failure(pool, agency, event, e).await;
    }
    outcome
}

/// How much later than due a scheduled rotation stops giving way to the requests that use the
/// key, and waits for them (at most [`writ_tenancy::EXCLUSIVE_WAIT`]) as one asked for does.
const ROTATION_GRACE: Duration = Duration::days(1);

async fn rotate_once(
    pool: &PgPool,
    keys: &KeyProvider,
    agency: &Agency,
    purpose: KeyPurpose,
    caller: &Caller,
    only_if_older_than: Option<Duration>,
    unrecorded: &mut Option<(String, &'static str)>,
) -> Result<Option<Rotated>, KeyLifecycleError> {
    let mut ctl = ControlTx::begin(pool).await?;
    status_held(ctl.conn(), agency, "active").await?;
    let due = |versions: &[AgencyKeyRecord]| -> Result<bool, KeyLifecycleError> {
        let current = current_of(versions, agency.id, purpose)?;
        Ok(only_if_older_than.is_none_or(|age| Utc::now() - current.valid_from >= age))
    };
    if let Some(age) = only_if_older_than {
        // The hourly check neither waits for the key's lock nor makes requests wait behind it:
        // a key not due is seen without it, and one held elsewhere is rotated at a later check,
        // until the rotation is a day late: then it waits as a rotation asked for does.
        let versions = agency_keys(ctl.conn(), agency.id, purpose).await?;
        if !due(&versions)? {
            return Ok(None);
        }
        let late = Utc::now() - current_of(&versions, agency.id, purpose)?.valid_from
            >= age + ROTATION_GRACE;
        let wait = if late {
            writ_tenancy::EXCLUSIVE_WAIT
        } else {
            std::time::Duration::ZERO
        };
        let name = lock_name(agency.id, purpose);
        if !writ_tenancy::xact_lock_within(ctl.conn(), &name, wait).await? {
            if late {
                tracing::warn!(agency_id = %agency.id, purpose = purpose.as_str(),
                    "key rotation more than a day late, its key still in use; left to the next check");
            } else {
                tracing::info!(agency_id = %agency.id, purpose = purpose.as_str(),
                    "key rotation due, its key in use; left to the next check");
            }
            return Ok(None);
        }
    } else {
        lock(ctl.conn(), agency.id, purpose).await?;
    }
    let versions = agency_keys(ctl.conn(), agency.id, purpose).await?;
    // Under the lock: another replica may have rotated meanwhile.
    if !due(&versions)? {
        return Ok(None);
    }
    let current = current_of(&versions, agency.id, purpose)?.clone();
    let newest = versions.iter().map(|k| k.key.version).max().unwrap_or(0);
    let next = keys.rotate(agency.id, &current.key).await?;
    let recorded = if next.version != newest + 1 || next.purpose != purpose {
        Err(KeyLifecycleError::Conflict(format!(
            "provider made version {} of {}, expected version {}",
            next.version,
            next.purpose.as_str(),
            newest + 1
        )))
    } else {
        let scheduled = only_if_older_than.is_some();
        record_rotation(pool, ctl, keys, agency, &current, &next, caller, scheduled).await
    };
    match &recorded {
        Ok(_) => {}
        Err(KeyLifecycleError::Tenancy(TenancyError::CommitUnknown(e))) => {
            tracing::warn!(
                agency_id = %agency.id, key_id = %next.key_id, error = %e,
                "a rotation's commit has an unknown outcome; its new key version is left in the provider"
            );
            *unrecorded = Some((next.key_id.clone(), "leftInProvider"));
        }
        Err(_) => {
            let fate = discard_unrecorded(keys, agency, &next).await;
            *unrecorded = Some((next.key_id.clone(), fate));
        }
    }
    recorded.map(Some)
}

/// Records the version the provider just made as the agency's current one, with its audit entry,
/// in the transaction that holds the key's lock.
#[allow(clippy::too_many_arguments)]
async fn record_rotation(
    pool: &PgPool,
    mut ctl: ControlTx,
    keys: &KeyProvider,
    agency: &Agency,
    current: &AgencyKeyRecord,
    next: &KeyRef,
    caller: &Caller,
    scheduled: bool,
) -> Result<Rotated, KeyLifecycleError> {
    let purpose = current.key.purpose;
    let pem = match purpose {
        KeyPurpose::Signing => Some(
            keys.public_key(agency.id, next)
                .await?
                .to_public_key_pem(LineEnding::LF)
                .map_err(|e| KeyLifecycleError::Invalid {
                    field: "public key",
                    reason: e.to_string(),
                })?,
        ),
        KeyPurpose::KeyEncryption => None,
    };
    sqlx::query(
        "UPDATE control.agency_keys SET valid_to = now() \
         WHERE agency_id = $1 AND purpose = $2 AND version = $3",
    )
    .bind(agency.id)
    .bind(purpose.as_str())
    .bind(current.key.version)
    .execute(ctl.conn())
    .await?;
    insert_key_version(ctl.conn(), agency.id, next, pem.as_deref()).await?;

    let mut tx = ctl.enter(agency).await?;
    let rewrap_id = match purpose {
        KeyPurpose::KeyEncryption => Some(crate::rewrap::start(&mut tx, next.version).await?),
        KeyPurpose::Signing => None,
    };
    let rotated = Rotated {
        purpose: purpose.as_str(),
        from_version: current.key.version,
        to_version: next.version,
        key_id: next.key_id.clone(),
        rewrap_id,
    };
    record(
        &mut tx,
        &caller
            .event("key.rotation")
            .resource("keyPurpose", purpose.as_str())
            .resource("keyVersion", next.version)
            .detail(json!({
                "provider": next.provider,
                "fromVersion": rotated.from_version,
                "toVersion": rotated.to_version,
                "keyId": rotated.key_id,
                "scheduled": scheduled,
                "rewrapId": rewrap_id,
            })),
    )
    .await?;
    tx.commit_resolved(pool).await?;
    tracing::info!(agency_id = %agency.id, purpose = purpose.as_str(), version = next.version, "key rotated");
    Ok(rotated)
}

/// A version the provider made for a rotation that then failed (its transaction known not to have
/// committed) protects nothing, but in a cloud provider it lives on (an AWS key per version,
/// billed and tagged for the agency): it is scheduled for deletion.
/// What became of it, for the failure's audit entry.
async fn discard_unrecorded(keys: &KeyProvider, agency: &Agency, made: &KeyRef) -> &'static str {
    match keys.schedule_deletion(agency.id, made).await {
        Ok(_) => {
            tracing::info!(
                agency_id = %agency.id, key_id = %made.key_id,
                "key version of a failed rotation scheduled for deletion"
            );
            "scheduledForDeletion"
        }
        Err(e) => {
            tracing::warn!(
                agency_id = %agency.id, key_id = %made.key_id, error = %e,
                "key version of a failed rotation left in the provider"
            );
            "leftInProvider"
        }
    }
}

/// Rotates every key of the agency whose current version is older than the agency's rotation
/// period (`keys.rotation` policy `{"days": N}`, default 90).
pub async fn rotate_due(
    pool: &PgPool,
    keys: &KeyProvider,
    agency: &Agency,
) -> Result<Vec<Rotated>, KeyLifecycleError> {
    let days = rotation_days(pool, agency).await?;
    let mut done = Vec::new();
    for purpose in [KeyPurpose::KeyEncryption, KeyPurpose::Signing] {
        if let Some(r) = rotate(
            pool,
            keys,
            agency,
            purpose,
            &Caller::system(),
            Some(Duration::days(days)),
        )
        .await?
        {
            done.push(r);
        }
    }
    Ok(done)
}

/// The agency policy naming its key rotation period: `{"days": N}`, 1 to 365.
pub const ROTATION_POLICY: &str = "keys.rotation";

/// Reads a `keys.rotation` policy value; the error says what is expected.
pub fn rotation_policy_days(value: &serde_json::Value) -> Result<i64, String> {
    value
        .get("days")
        .and_then(serde_json::Value::as_i64)
        .filter(|d| (1..=365).contains(d))
        .filter(|_| value.as_object().is_some_and(|o| o.len() == 1))
        .ok_or_else(|| "a key rotation period is {\"days\": N} with N from 1 to 365".into())
}

async fn rotation_days(pool: &PgPool, agency: &Agency) -> Result<i64, KeyLifecycleError> {
    let mut tx = TenantTx::begin(pool, agency).await?;
    let value: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT value FROM policies WHERE name = $1")
            .bind(ROTATION_POLICY)
            .fetch_optional(tx.conn())
            .await?;
    tx.commit().await?;
    // Values are checked when set; one that is not valid (set before the check) falls back.
    Ok(value
        .and_then(|v| rotation_policy_days(&v).ok())
        .unwrap_or(DEFAULT_ROTATION_DAYS))
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Disabled {
    pub purpose: &'static str,
    pub version: i32,
    pub key_id: String,
}

/// Revokes one version: the provider disables it and the control plane records it, so anything
/// only that version protects becomes unreadable. The current version cannot be disabled —
/// rotate first, so new work always has a usable key. A key-encryption version that still wraps
/// data keys (the re-wrap after a rotation has not moved them all) is refused unless `force`:
/// revoking it would make those documents unreadable for good.
#[allow(clippy::too_many_arguments)]
pub async fn disable_version(
    pool: &PgPool,
    keys: &KeyProvider,
    agency: &Agency,
    purpose: KeyPurpose,
    version: i32,
    reason: &str,
    force: bool,
    caller: &Caller,
) -> Result<Disabled, KeyLifecycleError> {
    let outcome = disable_once(pool, keys, agency, purpose, version, reason, force, caller).await;
    if let Err(e) = &outcome {
        let event = caller
            .event("key.revocation")
            .resource("keyPurpose", purpose.as_str())
            .resource("keyVersion", version)
            .detail(json!({
                "force": force,
                "reason": writ_audit_log::clipped(reason.trim(), 500),
            }));
        record_failure(pool, agency, event, e).await;
    }
    outcome
}

/// A key change that failed or was refused is on the agency's record with its outcome (CJIS
/// audits privileged actions, failures included), in a transaction of its own, with the reason
/// as a caller may read it (a provider's own words can name accounts and roles: those are only
/// logged). For an agency no longer served, whose chain has ended, in the platform events
/// instead; when even that cannot be written (the database is down), the log has it.
async fn record_failure(pool: &PgPool, agency: &Agency, event: Event, e: &KeyLifecycleError) {
    tracing::warn!(agency_id = %agency.id, action = event.action, error = %e, "key change failed");
    let reason = writ_audit_log::clipped(&public_reason(e), 1000);
    let mut detail = event.detail.clone();
    if let Some(map) = detail.as_object_mut() {
        map.insert("error".into(), reason.into());
    }
    let event = event.failure().detail(detail);
    let written = async {
        match TenantTx::begin_active(pool, agency.id).await? {
            Some((_, mut tx)) => {
                record(&mut tx, &event).await?;
                tx.commit().await?;
            }
            None => {
                // The platform events are not the agency's own: they name it.
                let event = event.clone().resource("agencyId", agency.id.to_string());
                let mut conn = pool.acquire().await?;
                writ_audit_log::record_platform(&mut conn, &event).await?;
            }
        }
        Ok::<_, KeyLifecycleError>(())
    }
    .await;
    if let Err(w) = written {
        tracing::error!(agency_id = %agency.id, action = event.action, error = %e, record_error = %w, "a failed key change could not be recorded");
    }
}

/// Why a key change failed, in words its auditors may read: this crate's own refusals as they
/// are, a provider's failures by kind only.
fn public_reason(e: &KeyLifecycleError) -> String {
    use writ_error_kind::{Classify, ErrorKind};
    match e.kind() {
        ErrorKind::Conflict { detail, .. } => detail,
        ErrorKind::Invalid { field, reason } => format!("{field}: {reason}"),
        ErrorKind::NotFound => "no such key version".into(),
        ErrorKind::Unavailable { .. } => "the key provider is unavailable".into(),
        _ => "the key provider refused or failed; the server log has the details".into(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn disable_once(
    pool: &PgPool,
    keys: &KeyProvider,
    agency: &Agency,
    purpose: KeyPurpose,
    version: i32,
    reason: &str,
    force: bool,
    caller: &Caller,
) -> Result<Disabled, KeyLifecycleError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(KeyLifecycleError::Invalid {
            field: "reason",
            reason: "1 to 500 characters".into(),
        });
    }
    let mut ctl = ControlTx::begin(pool).await?;
    status_held(ctl.conn(), agency, "active").await?;
    lock(ctl.conn(), agency.id, purpose).await?;
    let versions = agency_keys(ctl.conn(), agency.id, purpose).await?;
    let target = versions
        .iter()
        .find(|k| k.key.version == version)
        .ok_or(KeyLifecycleError::NotFound)?;
    if target.valid_to.is_none() {
        return Err(KeyLifecycleError::Conflict(format!(
            "version {version} is the current {} key: rotate before disabling it",
            purpose.as_str()
        )));
    }
    if target.key.state != KeyState::Enabled {
        return Err(KeyLifecycleError::Conflict(format!(
            "version {version} is already {}",
            target.key.state.as_str()
        )));
    }
    let still_wrapped = match purpose {
        KeyPurpose::KeyEncryption => {
            let mut tx = writ_tenancy::TenantTx::begin(pool, agency).await?;
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM data_keys WHERE kek_version = $1")
                    .bind(version)
                    .fetch_one(tx.conn())
                    .await?;
            tx.rollback().await?;
            n
        }
        KeyPurpose::Signing => 0,
    };
    if still_wrapped > 0 && !force {
        return Err(KeyLifecycleError::Conflict(format!(
            "{still_wrapped} data key(s) are still wrapped by version {version}: wait for the \
             re-wrap (GET /v1/keys/rewraps), or revoke with force, which makes what they \
             protect unreadable"
        )));
    }
    let updated = keys.disable(agency.id, &target.key).await?;
    sqlx::query(
        "UPDATE control.agency_keys SET state = $4, disabled_at = now() \
         WHERE agency_id = $1 AND purpose = $2 AND version = $3",
    )
    .bind(agency.id)
    .bind(purpose.as_str())
    .bind(version)
    .bind(updated.state.as_str())
    .execute(ctl.conn())
    .await?;
    let mut tx = ctl.enter(agency).await?;
    record(
        &mut tx,
        &caller
            .event("key.revocation")
            .resource("keyPurpose", purpose.as_str())
            .resource("keyVersion", version)
            .detail(json!({
                "provider": target.key.provider,
                "keyId": target.key.key_id,
                "reason": reason,
                "dataKeysStillWrapped": still_wrapped,
            })),
    )
    .await?;
    tx.commit().await?;
    keys.forget_unwrapped(&target.key.key_id);
    Ok(Disabled {
        purpose: purpose.as_str(),
        version,
        key_id: target.key.key_id.clone(),
    })
}

/// Schedules every version of an offboarding agency's keys for deletion at `deletion_after`:
/// key-encryption keys first, the signing key last (the certificate of offboarding is signed
/// before this). Each version commits on its own right after its provider accepted, so a run that
/// fails part-way leaves the control plane saying exactly what the providers were told, and the
/// next run goes on from there (a provider asked twice answers as before). Nothing is recorded in
/// the agency's chain: it ended with the final export. Answers how many versions were scheduled
/// by this run.
pub async fn schedule_offboarding_keys(
    pool: &PgPool,
    keys: &KeyProvider,
    agency: &Agency,
    deletion_after: DateTime<Utc>,
) -> Result<usize, KeyLifecycleError> {
    let mut scheduled = 0;
    for purpose in [KeyPurpose::KeyEncryption, KeyPurpose::Signing] {
        for version in agency_keys(pool, agency.id, purpose).await? {
            if version.key.state == KeyState::PendingDeletion {
                continue;
            }
            let mut ctl = ControlTx::begin(pool).await?;
            status_held(ctl.conn(), agency, "offboarding").await?;
            lock(ctl.conn(), agency.id, purpose).await?;
            let updated = keys
                .schedule_deletion_of_every_version(agency.id, &version.key)
                .await?;
            sqlx::query(
                "UPDATE control.agency_keys SET state = $4, deletion_after = $5, \
                        disabled_at = coalesce(disabled_at, now()) \
                 WHERE agency_id = $1 AND purpose = $2 AND version = $3",
            )
            .bind(agency.id)
            .bind(purpose.as_str())
            .bind(version.key.version)
            .bind(updated.state.as_str())
            .bind(deletion_after)
            .execute(ctl.conn())
            .await?;
            ctl.commit().await?;
            keys.forget_unwrapped(&version.key.key_id);
            scheduled += 1;
        }
    }
    Ok(scheduled)
}

/// Calls off the deletion of an offboarding agency's keys, one version at a time, each committed
/// as its provider accepts (a call-off that stops part-way is resumed). A version the offboarding
/// disabled (at or after `started_at`) is usable again; one revoked before stays disabled.
/// Answers how many versions this run restored.
pub async fn cancel_offboarding_keys(
    pool: &PgPool,
    keys: &KeyProvider,
    agency: &Agency,
    started_at: DateTime<Utc>,
) -> Result<usize, KeyLifecycleError> {
    let mut restored = 0;
    for purpose in [KeyPurpose::KeyEncryption, KeyPurpose::Signing] {
        // Every version, not only those the control plane says are scheduled: a provider may have
        // accepted a deletion whose commit was then lost. Asking again is harmless.
        for version in agency_keys(pool, agency.id, purpose).await? {
            let mut ctl = ControlTx::begin(pool).await?;
            status_held(ctl.conn(), agency, "offboarding").await?;
            lock(ctl.conn(), agency.id, purpose).await?;
            let revoked_before: bool = sqlx::query_scalar(
                "SELECT coalesce(disabled_at < $4, false) FROM control.agency_keys \
                 WHERE agency_id = $1 AND purpose = $2 AND version = $3",
            )
            .bind(agency.id)
            .bind(purpose.as_str())
            .bind(version.key.version)
            .bind(started_at)
            .fetch_one(ctl.conn())
            .await?;
            let updated = keys
                .cancel_deletion(agency.id, &version.key, !revoked_before)
                .await?;
            sqlx::query(
                "UPDATE control.agency_keys SET state = $4, deletion_after = NULL, \
                        disabled_at = CASE WHEN $4 = 'enabled' THEN NULL ELSE disabled_at END \
                 WHERE agency_id = $1 AND purpose = $2 AND version = $3",
            )
            .bind(agency.id)
            .bind(purpose.as_str())
            .bind(version.key.version)
            .bind(updated.state.as_str())
            .execute(ctl.conn())
            .await?;
            ctl.commit().await?;
            restored += 1;
        }
    }
    Ok(restored)
}
