//! Data keys for envelope encryption: a fresh AES-256 key per protected object, stored wrapped by
//! the agency's current key-encryption key version.

use rand::RngCore;
use rand::rngs::OsRng;
use sqlx::{PgPool, Row};
use uuid::Uuid;
use writ_keys::{KeyProvider, KeyPurpose, WrappedKey};
use writ_tenancy::{TenantTx, agency_keys};
use zeroize::Zeroizing;

use crate::{KeyLifecycleError, current_key};

/// An unwrapped data key; the bytes are zeroized when it is dropped.
pub struct DataKey {
    pub id: Uuid,
    pub kek_version: i32,
    key: Zeroizing<Vec<u8>>,
}

impl DataKey {
    pub fn bytes(&self) -> &[u8] {
        &self.key
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .field("kek_version", &self.kek_version)
            .finish_non_exhaustive()
    }
}

/// Makes a new data key, wraps it with the current key-encryption key and stores it in the
/// caller's transaction. `pool` reads the key references from the control plane. This hands out
/// the key's bytes: domain code seals objects with [`seal`](crate::seal()) instead.
pub async fn create_data_key(
    tx: &mut TenantTx,
    pool: &PgPool,
    keys: &KeyProvider,
) -> Result<DataKey, KeyLifecycleError> {
    let id = Uuid::now_v7();
    create_data_key_for(tx, pool, keys, id)
        .await?
        .ok_or_else(|| KeyLifecycleError::Conflict(format!("data key {id} already exists")))
}

/// Makes and stores the data key of object `id`; `None` when that object already has one (the
/// caller's transaction stays usable: the insert does nothing rather than fail).
pub(crate) async fn create_data_key_for(
    tx: &mut TenantTx,
    pool: &PgPool,
    keys: &KeyProvider,
    id: Uuid,
) -> Result<Option<DataKey>, KeyLifecycleError> {
    let agency_id = tx.agency_id();
    // Shared with other new data keys, exclusive with a rotation: a rotation waits for this
    // transaction, so its re-wrap sees this data key, and this data key never lands on a version
    // a rotation has just closed.
    sqlx::query("SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))")
        .bind(crate::lifecycle::lock_name(
            agency_id,
            KeyPurpose::KeyEncryption,
        ))
        .execute(tx.conn())
        .await?;
    let kek = current_key(pool, agency_id, KeyPurpose::KeyEncryption).await?;
    let mut key = Zeroizing::new(vec![0u8; 32]);
    OsRng.fill_bytes(&mut key);
    let wrapped = keys.wrap_data_key(agency_id, &kek.key, &key).await?;
    let inserted = sqlx::query(
        "INSERT INTO data_keys (id, kek_version, wrapped) VALUES ($1, $2, $3) \
         ON CONFLICT (agency_id, id) DO NOTHING",
    )
    .bind(id)
    .bind(wrapped.kek_version)
    .bind(&wrapped.ciphertext)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(None);
    }
    Ok(Some(DataKey {
        id,
        kek_version: wrapped.kek_version,
        key,
    }))
}

/// Unwraps a stored data key with the key-encryption key version that wrapped it.
pub async fn open_data_key(
    tx: &mut TenantTx,
    pool: &PgPool,
    keys: &KeyProvider,
    id: Uuid,
) -> Result<DataKey, KeyLifecycleError> {
    let agency_id = tx.agency_id();
    let row = sqlx::query("SELECT kek_version, wrapped FROM data_keys WHERE id = $1")
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(KeyLifecycleError::NotFound)?;
    let wrapped = WrappedKey {
        kek_version: row.try_get("kek_version")?,
        ciphertext: row.try_get("wrapped")?,
    };
    let kek = agency_keys(pool, agency_id, KeyPurpose::KeyEncryption)
        .await?
        .into_iter()
        .find(|k| k.key.version == wrapped.kek_version)
        .ok_or(KeyLifecycleError::NoCurrentKey {
            agency: agency_id,
            purpose: KeyPurpose::KeyEncryption.as_str(),
        })?;
    let key = keys.unwrap_data_key(agency_id, &kek.key, &wrapped).await?;
    Ok(DataKey {
        id,
        kek_version: wrapped.kek_version,
        key,
    })
}
