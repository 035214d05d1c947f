//! The checkpointer signs the agency's tree head (C2SP tlog-checkpoint as a signed note) with the
//! agency's P-256 key: soon after the tree grows, and at least every `idle_interval` when it does
//! not, so the signing time bounds how stale a truncated copy can look. It never signs a tree that
//! is not consistent with the previous checkpoint. One signer per agency across replicas.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::{PgPool, Row};
use uuid::Uuid;
use writ_audit_chain::{
    AuditKey, Checkpoint, Hash, NoteSignature, SignedNote, VerifierKey, consistency_proof_nodes,
    verify_consistency,
};
use writ_keys::{KeyProvider, KeyPurpose, KeyState};
use writ_tenancy::{Agency, TenantTx};

use crate::AuditError;
use crate::store::{CHECKPOINTER_LOCK, corrupt, element_hashes, frontier, hash_from, lock_key};

/// The log's origin line and the signing key's name in notes.
pub fn origin(agency_id: Uuid) -> String {
    format!("writ/audit/{agency_id}")
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone)]
pub struct SignedCheckpoint {
    pub tree_size: u64,
    pub root: Hash,
    pub note: String,
    pub signed_at: DateTime<Utc>,
}

pub async fn latest_checkpoint(tx: &mut TenantTx) -> Result<Option<SignedCheckpoint>, AuditError> {
    let agency = tx.agency_id();
    let row = sqlx::query(
        "SELECT tree_size, root, note, signed_at FROM audit_checkpoints ORDER BY id DESC LIMIT 1",
    )
    // Planned afresh (see `store`): a busy agency adds a checkpoint a second.
    .persistent(false)
    .fetch_optional(tx.conn())
    .await?;
    row.map(|r| {
        Ok(SignedCheckpoint {
            tree_size: r.try_get::<i64, _>("tree_size")? as u64,
            root: hash_from(agency, &r.try_get::<Vec<u8>, _>("root")?)?,
            note: r.try_get("note")?,
            signed_at: r.try_get("signed_at")?,
        })
    })
    .transpose()
}

/// The agency's signing keys that verify its notes: every version not disabled.
pub async fn verifier_keys(pool: &PgPool, agency_id: Uuid) -> Result<Vec<VerifierKey>, AuditError> {
    let name = origin(agency_id);
    writ_tenancy::agency_keys(pool, agency_id, KeyPurpose::Signing)
        .await?
        .into_iter()
        .filter(|k| k.key.state != KeyState::Disabled)
        .filter_map(|k| k.public_key_pem)
        .map(|pem| {
            let key = AuditKey::from_pem(&pem)
                .map_err(|e| corrupt(agency_id, format!("public key: {e}")))?;
            VerifierKey::new(name.clone(), key).map_err(|e| corrupt(agency_id, e.to_string()))
        })
        .collect()
}

/// Signs a new checkpoint when the tree grew, when the last one is older than `idle_interval`, or
/// when `force` is set. Returns `None` when nothing was due or another replica holds the lock —
/// which a forced call (someone needs a checkpoint now) waits for, up to [`FORCED_LOCK_WAIT`].
pub async fn checkpoint_agency(
    pool: &PgPool,
    keys: &KeyProvider,
    agency: &Agency,
    idle_interval: Duration,
    force: bool,
) -> Result<Option<SignedCheckpoint>, AuditError> {
    let id = agency.id;
    let mut tx = TenantTx::begin(pool, agency).await?;
    if !signer_lock(&mut tx, force).await? {
        return Ok(None);
    }
    let size = crate::store::tree_size(tx.conn()).await?;
    let last = latest_checkpoint(&mut tx).await?;
    // Checkpoint times never go back, whichever replica's clock signs: a later tree signed at
    // an earlier time would read as a log rolled back in between.
    let now = Utc::now().max(
        last.as_ref()
            .map_or(DateTime::<Utc>::MIN_UTC, |l| l.signed_at),
    );
    let due = match &last {
        None => true,
        Some(l) => {
            force
                || size > l.tree_size
                || now
                    .signed_duration_since(l.signed_at)
                    .to_std()
                    .unwrap_or_default()
                    >= idle_interval
        }
    };
    if !due {
        return Ok(None);
    }
    let root = frontier(tx.conn(), id, size).await?.root();
    if let Some(l) = &last {
        check_consistent(&mut tx, l.tree_size, l.root, size, root).await?;
    }

    let checkpoint = Checkpoint {
        origin: origin(id),
        size,
        root,
        time: now.to_rfc3339_opts(SecondsFormat::Millis, true),
    };
    let body = checkpoint.body();
    let since = last.as_ref().map(|l| l.signed_at);
    // The current key signs; a key retired since the previous checkpoint co-signs once, so a
    // verifier holding only the old key can follow the rotation.
    let note = sign_note(pool, keys, id, body, |record| {
        record.valid_to.is_none()
            || matches!((record.valid_to, since), (Some(to), Some(s)) if to > s)
    })
    .await?;
    sqlx::query(
        "INSERT INTO audit_checkpoints (tree_size, root, note, signed_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(size as i64)
    .bind(root.0.to_vec())
    .bind(&note)
    .bind(now)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(Some(SignedCheckpoint {
        tree_size: size,
        root,
        note,
        signed_at: now,
    }))
}

/// How long a forced checkpoint waits for another replica's signer to finish.
pub const FORCED_LOCK_WAIT: Duration = Duration::from_secs(5);

/// Takes the agency's signer lock: at once or not at all for the background signer, waiting up to
/// [`FORCED_LOCK_WAIT`] when `wait` (the other signer finishes within moments).
async fn signer_lock(tx: &mut TenantTx, wait: bool) -> Result<bool, AuditError> {
    let key = lock_key(tx.agency_id(), CHECKPOINTER_LOCK);
    if !wait {
        return Ok(sqlx::query("SELECT pg_try_advisory_xact_lock($1)")
            .bind(key)
            .fetch_one(tx.conn())
            .await?
            .try_get(0)?);
    }
    sqlx::query("SELECT set_config('lock_timeout', $1, true)")
        .bind(format!("{}ms", FORCED_LOCK_WAIT.as_millis()))
        .execute(tx.conn())
        .await?;
    match sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(tx.conn())
        .await
    {
        Ok(_) => Ok(true),
        // lock_not_available: the wait ran out.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Refuses a tree that does not extend the previously signed one.
async fn check_consistent(
    tx: &mut TenantTx,
    old_size: u64,
    old_root: Hash,
    size: u64,
    root: Hash,
) -> Result<(), AuditError> {
    let id = tx.agency_id();
    if size < old_size {
        return Err(corrupt(
            id,
            format!("tree shrank from {old_size} to {size} entries"),
        ));
    }
    if size == old_size {
        return if root == old_root {
            Ok(())
        } else {
            Err(corrupt(id, format!("root at size {size} changed")))
        };
    }
    if old_size == 0 {
        return Ok(());
    }
    let nodes = consistency_proof_nodes(old_size, size).map_err(|e| corrupt(id, e.to_string()))?;
    let proof: Vec<Hash> = element_hashes(tx.conn(), id, &nodes)
        .await?
        .iter()
        .map(|e| writ_audit_chain::fold_range(e))
        .collect();
    verify_consistency(old_size, size, &old_root, &root, &proof).map_err(|e| {
        corrupt(
            id,
            format!("tree of {size} is not consistent with checkpoint {old_size}: {e}"),
        )
    })
}

/// Signs a note body with every enabled signing key version `signs` picks, as a C2SP signed note
/// with the agency's origin as key name.
pub(crate) async fn sign_note(
    pool: &PgPool,
    keys: &KeyProvider,
    agency: Uuid,
    body: String,
    signs: impl Fn(&writ_tenancy::AgencyKeyRecord) -> bool,
) -> Result<String, AuditError> {
    let name = origin(agency);
    let mut signatures = Vec::new();
    for record in writ_tenancy::agency_keys(pool, agency, KeyPurpose::Signing).await? {
        if record.key.state != KeyState::Enabled || !signs(&record) {
            continue;
        }
        let pem = record
            .public_key_pem
            .as_deref()
            .ok_or_else(|| corrupt(agency, "signing key without public key"))?;
        let verifier = VerifierKey::new(
            name.clone(),
            AuditKey::from_pem(pem).map_err(|e| corrupt(agency, e.to_string()))?,
        )
        .map_err(|e| corrupt(agency, e.to_string()))?;
        let sig = keys
            .sign_message(agency, &record.key, body.as_bytes())
            .await?;
        signatures.push(NoteSignature {
            key_name: name.clone(),
            key_id: verifier.key_id(),
            sig_bytes: sig.as_bytes().to_vec(),
        });
    }
    Ok(SignedNote::assemble(body, signatures)
        .map_err(|e| corrupt(agency, format!("signing a note: {e}")))?
        .to_text())
}
