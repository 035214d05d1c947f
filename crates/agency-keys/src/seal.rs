//! Sealing objects: envelope encryption of a byte stream (a document, a recording) under a fresh
//! AES-256-GCM data key per object, in fixed-size chunks, so an object of any size is sealed and
//! opened with memory for one chunk.
//!
//! # Construction
//!
//! STREAM (Hoang, Reyhanitabar, Rogaway, Vizár, "Online Authenticated-Encryption and its
//! Nonce-Reuse Misuse-Resistance", CRYPTO 2015) over AES-256-GCM, as the RustCrypto `aead` crate
//! implements it (`EncryptorBE32` to seal; `StreamBE32` at each chunk's position to open, so a reader
//! can start at any chunk). The plaintext is cut into chunks of
//! [`CHUNK_SIZE`] (64 KiB); chunk `i` is sealed with the 96-bit nonce
//!
//! ```text
//! nonce prefix (7 bytes, random per object) ‖ i (u32, big-endian) ‖ last (1 byte: 0x00, or 0x01 for the final chunk)
//! ```
//!
//! so a chunk decrypts only at its own position, and only the final chunk carries the last flag:
//! reordered, dropped, duplicated or appended chunks, and a stream cut short, fail authentication.
//! Every chunk has the same associated data, which binds the object to its agency and identity:
//!
//! ```text
//! "writ.seal.v1" ‖ agency id (16) ‖ object id (16) ‖ label length (1) ‖ label ‖ header (25)
//! ```
//!
//! The header therefore cannot be altered either, and a chunk moved to another object or another
//! agency (even one sharing the data key) does not open there.
//!
//! # Sealed form
//!
//! A sealed object is the header followed by the chunk records:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `WRITSEAL` |
//! | 1 | format version, 1 |
//! | 1 | algorithm, 1 = AES-256-GCM under STREAM with a big-endian 32-bit counter |
//! | 4 | chunk size, big-endian; 65,536 in version 1 |
//! | 4 | the key-encryption key version that wrapped the data key when the object was sealed |
//! | 7 | STREAM nonce prefix |
//!
//! Each record is the chunk's ciphertext followed by its 16-byte tag. Every chunk but the final
//! one is full (a 65,552-byte record); the final chunk is shorter than a full one — empty when the
//! plaintext is a multiple of the chunk size (0 bytes included) — so a reader knows a full record
//! is never the last one, and a stream that ends after a full record is truncated. Overhead:
//! 25 bytes plus 16 per 64 KiB chunk. STREAM's 32-bit counter limits an object to 2^32 - 1 chunks
//! (256 TiB).
//!
//! Record `i` starts at byte `25 + i × 65,552`, so a reader that wants the plaintext from byte `n`
//! reads the header and the records from chunk `n / 65,536` on ([`Opener::start_at_chunk`]).
//!
//! # Keys
//!
//! The data key is stored in the tenant table `data_keys` under the object's id, wrapped by the
//! agency's current key-encryption key, so a rotation's re-wrap covers it like any data key; the
//! ciphertext never changes. The key-encryption key version in the header is the one current at
//! sealing (bound as associated data); the wrapped key may since have moved to a newer version.
//! The data key's bytes never leave [`Sealer`] and [`Opener`]; the AES key schedule is zeroized
//! when they are dropped.

use std::fmt;
use std::mem;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::KeyInit;
use aes_gcm::aead::stream::{EncryptorBE32, NewStream, StreamBE32, StreamPrimitive};
use bytes::Bytes;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use writ_tenancy::TenantTx;

use crate::data_keys::{create_data_key_for, open_data_key};
use crate::{KeyLifecycleError, Keyring};

/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// AES-GCM tag bytes after each chunk.
pub const TAG_SIZE: usize = 16;
/// Bytes of a full chunk record.
pub const RECORD_SIZE: usize = CHUNK_SIZE + TAG_SIZE;
/// Bytes of the header that starts a sealed object.
pub const HEADER_SIZE: usize = 25;
/// Longest label, in bytes.
pub const MAX_LABEL_SIZE: usize = 64;

/// The chunk that holds byte `offset` of the plaintext.
pub fn chunk_of(offset: u64) -> u64 {
    offset / CHUNK_SIZE as u64
}

/// Where the record of chunk `chunk` starts in the sealed object.
pub fn record_offset(chunk: u64) -> u64 {
    HEADER_SIZE as u64 + chunk * RECORD_SIZE as u64
}

const MAGIC: [u8; 8] = *b"WRITSEAL";
const FORMAT: u8 = 1;
const ALGORITHM: u8 = 1;
const NONCE_PREFIX_SIZE: usize = 7;
const AAD_DOMAIN: &[u8] = b"writ.seal.v1";

/// Why sealing or opening an object failed. `Header`, `Corrupt` and `Truncated` mean the stored
/// object is not what was sealed ([`SealError::is_integrity_failure`]); no plaintext of or after
/// the failing chunk is released.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Storing, resolving or unwrapping the object's data key: no such object (`NotFound`), a
    /// provider outage, a disabled key version.
    #[error(transparent)]
    Key(#[from] KeyLifecycleError),
    /// An object is sealed once: a new version of a document is a new object.
    #[error("object {0} is already sealed")]
    AlreadySealed(Uuid),
    #[error("label: {0}")]
    Label(&'static str),
    /// More chunks than STREAM's counter allows (256 TiB).
    #[error("the object is too large to seal")]
    TooLarge,
    /// The sealed bytes do not start with a header this version reads.
    #[error("not a sealed object: {0}")]
    Header(&'static str),
    /// A chunk failed authentication: altered, reordered, from another object or agency, cut in
    /// the middle, or followed by extra bytes.
    #[error("chunk {chunk} of the sealed object failed authentication")]
    Corrupt { chunk: u64 },
    /// The stream ended before its final chunk.
    #[error("the sealed object is truncated after {chunks} chunks")]
    Truncated { chunks: u64 },
    /// Used again after an error.
    #[error("the sealed stream already failed")]
    Failed,
    /// Every chunk authenticated, but the plaintext's SHA-256 is not the one the caller expected
    /// (the hash recorded when it was sealed): the record of the object was changed.
    #[error("the opened object's SHA-256 is not the recorded one")]
    DigestMismatch,
    /// The thread hashing the plaintext beside the stream went away (the runtime is shutting
    /// down): the summary could not be made.
    #[error("hashing the plaintext stopped")]
    HashingStopped,
}

impl SealError {
    /// Whether the stored object itself is bad (as opposed to a key or provider problem).
    pub fn is_integrity_failure(&self) -> bool {
        matches!(
            self,
            SealError::Header(_)
                | SealError::Corrupt { .. }
                | SealError::Truncated { .. }
                | SealError::DigestMismatch
        )
    }
}

/// What was sealed: the plaintext's SHA-256 and size, computed while streaming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealSummary {
    pub sha256: [u8; 32],
    /// Plaintext bytes.
    pub bytes: u64,
    /// Chunk records, the final one included.
    pub chunks: u64,
    /// Bytes of the sealed form (header and records).
    pub sealed_bytes: u64,
}

/// What was opened; compare `sha256` with the hash recorded at sealing where one was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenSummary {
    pub sha256: [u8; 32],
    pub bytes: u64,
    pub chunks: u64,
}

/// Makes the data key of `object_id` (wrapped by the agency's current key-encryption key, stored
/// in `data_keys` in `tx`) and returns a [`Sealer`] that owns it. `label` names what the object is
/// (`document`, `oath-recording`, …): lowercase ASCII letters, digits, `.`, `-`, `_`, at most 64
/// bytes; it is bound into every chunk and must be given again to open the object.
///
/// Commit `tx` before streaming a large object: it holds the key-encryption key's lock shared,
/// which a rotation waits for. A data key whose upload then fails is harmless (it protects nothing).
pub async fn seal(
    tx: &mut TenantTx,
    keys: &Keyring,
    object_id: Uuid,
    label: &str,
) -> Result<Sealer, SealError> {
    check_label(label)?;
    let key = create_data_key_for(tx, keys.pool(), keys.provider(), object_id)
        .await?
        .ok_or(SealError::AlreadySealed(object_id))?;
    let kek_version = u32::try_from(key.kek_version).map_err(|_| {
        SealError::Key(KeyLifecycleError::Invalid {
            field: "key version",
            reason: format!("{} is not a key version", key.kek_version),
        })
    })?;
    let mut nonce_prefix = [0u8; NONCE_PREFIX_SIZE];
    OsRng.fill_bytes(&mut nonce_prefix);
    Sealer::new(
        key.bytes(),
        tx.agency_id(),
        object_id,
        label,
        kek_version,
        nonce_prefix,
    )
}

/// Unwraps the data key of `object_id` in `tx` and returns an [`Opener`] that owns it; `tx` may be
/// committed before the object is streamed through it. `label` is the one given to [`seal`].
pub async fn open(
    tx: &mut TenantTx,
    keys: &Keyring,
    object_id: Uuid,
    label: &str,
) -> Result<Opener, SealError> {
    check_label(label)?;
    let key = open_data_key(tx, keys.pool(), keys.provider(), object_id).await?;
    Opener::new(key.bytes(), tx.agency_id(), object_id, label)
}

fn check_label(label: &str) -> Result<(), SealError> {
    if label.is_empty() || label.len() > MAX_LABEL_SIZE {
        return Err(SealError::Label("1 to 64 bytes"));
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(SealError::Label(
            "lowercase ASCII letters, digits, '.', '-' and '_'",
        ));
    }
    Ok(())
}

fn cipher(key: &[u8]) -> Result<Aes256Gcm, SealError> {
    Aes256Gcm::new_from_slice(key).map_err(|_| {
        SealError::Key(KeyLifecycleError::Invalid {
            field: "data key",
            reason: "not an AES-256 key".into(),
        })
    })
}

fn associated_data(
    agency_id: Uuid,
    object_id: Uuid,
    label: &str,
    header: &[u8; HEADER_SIZE],
) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + 33 + label.len() + HEADER_SIZE);
    aad.extend_from_slice(AAD_DOMAIN);
    aad.extend_from_slice(agency_id.as_bytes());
    aad.extend_from_slice(object_id.as_bytes());
    // check_label bounds the length to 64, so it fits the one length byte.
    aad.push(label.len() as u8);
    aad.extend_from_slice(label.as_bytes());
    aad.extend_from_slice(header);
    aad
}

fn header(kek_version: u32, nonce_prefix: &[u8; NONCE_PREFIX_SIZE]) -> [u8; HEADER_SIZE] {
    let mut h = [0u8; HEADER_SIZE];
    h[..8].copy_from_slice(&MAGIC);
    h[8] = FORMAT;
    h[9] = ALGORITHM;
    h[10..14].copy_from_slice(&(CHUNK_SIZE as u32).to_be_bytes());
    h[14..18].copy_from_slice(&kek_version.to_be_bytes());
    h[18..].copy_from_slice(nonce_prefix);
    h
}

/// The nonce prefix of a header this version reads. The other fields need no reading: the whole
/// header is associated data, so a changed one fails the first chunk.
fn parse_header(h: &[u8; HEADER_SIZE]) -> Result<[u8; NONCE_PREFIX_SIZE], SealError> {
    if h[..8] != MAGIC {
        return Err(SealError::Header("no WRITSEAL magic"));
    }
    if h[8] != FORMAT {
        return Err(SealError::Header("unknown format version"));
    }
    if h[9] != ALGORITHM {
        return Err(SealError::Header("unknown algorithm"));
    }
    // Checked before any record is buffered: a forged size must not make the reader hold more.
    if h[10..14] != (CHUNK_SIZE as u32).to_be_bytes() {
        return Err(SealError::Header("unsupported chunk size"));
    }
    let mut prefix = [0u8; NONCE_PREFIX_SIZE];
    prefix.copy_from_slice(&h[18..]);
    Ok(prefix)
}

/// Seals one object's plaintext, chunk by chunk. Everything it returns, concatenated in order —
/// the header and records from [`Sealer::update`], then the final record from
/// [`Sealer::finish`] — is the sealed object. See [`Sealer::into_stream`] for a stream adapter.
pub struct Sealer {
    encryptor: EncryptorBE32<Aes256Gcm>,
    aad: Vec<u8>,
    /// Not yet handed out.
    header: Option<Bytes>,
    /// The chunk being filled; allocated for the record it becomes (chunk and tag).
    buf: Vec<u8>,
    /// `None` when the plaintext is hashed elsewhere (see [`Sealer::into_parallel_stream`]).
    hasher: Option<Sha256>,
    bytes: u64,
    chunks: u64,
    sealed_bytes: u64,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("bytes", &self.bytes)
            .field("chunks", &self.chunks)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    pub(crate) fn new(
        key: &[u8],
        agency_id: Uuid,
        object_id: Uuid,
        label: &str,
        kek_version: u32,
        nonce_prefix: [u8; NONCE_PREFIX_SIZE],
    ) -> Result<Sealer, SealError> {
        check_label(label)?;
        let header = header(kek_version, &nonce_prefix);
        Ok(Sealer {
            encryptor: EncryptorBE32::from_aead(cipher(key)?, &nonce_prefix.into()),
            aad: associated_data(agency_id, object_id, label, &header),
            header: Some(Bytes::copy_from_slice(&header)),
            buf: Vec::with_capacity(RECORD_SIZE),
            hasher: Some(Sha256::new()),
            bytes: 0,
            chunks: 0,
            sealed_bytes: HEADER_SIZE as u64,
        })
    }

    /// Takes plaintext; returns the header (first time) and every record it completed.
    pub fn update(&mut self, plaintext: &[u8]) -> Result<Vec<Bytes>, SealError> {
        let mut out: Vec<Bytes> = self.take_header().into_iter().collect();
        let mut rest = plaintext;
        while !rest.is_empty() {
            let (used, record) = self.absorb(rest)?;
            rest = &rest[used..];
            out.extend(record);
        }
        Ok(out)
    }

    /// Seals the final chunk; returns its record (after the header, if nothing was handed out
    /// yet) and the summary.
    pub fn finish(mut self) -> Result<(Bytes, SealSummary), SealError> {
        let mut record = mem::take(&mut self.buf);
        self.encryptor
            .encrypt_last_in_place(&self.aad, &mut record)
            .map_err(|_| SealError::TooLarge)?;
        self.chunks += 1;
        self.sealed_bytes += record.len() as u64;
        let tail = match self.header.take() {
            Some(header) => {
                let mut both = header.to_vec();
                both.extend_from_slice(&record);
                Bytes::from(both)
            }
            None => Bytes::from(record),
        };
        Ok((
            tail,
            SealSummary {
                sha256: self.hasher.map(|h| h.finalize().into()).unwrap_or_default(),
                bytes: self.bytes,
                chunks: self.chunks,
                sealed_bytes: self.sealed_bytes,
            },
        ))
    }

    /// Leaves the plaintext's SHA-256 to the caller, who puts it into the summary.
    pub(crate) fn hash_elsewhere(&mut self) {
        self.hasher = None;
    }

    pub(crate) fn take_header(&mut self) -> Option<Bytes> {
        self.header.take()
    }

    /// Takes what fits in the current chunk; returns how much it took and the chunk's record when
    /// that filled it. At most one record per call keeps a streaming caller at one chunk.
    pub(crate) fn absorb(&mut self, data: &[u8]) -> Result<(usize, Option<Bytes>), SealError> {
        let used = data.len().min(CHUNK_SIZE - self.buf.len());
        self.buf.extend_from_slice(&data[..used]);
        if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(&data[..used]);
        }
        self.bytes += used as u64;
        if self.buf.len() < CHUNK_SIZE {
            return Ok((used, None));
        }
        let mut record = mem::replace(&mut self.buf, Vec::with_capacity(RECORD_SIZE));
        self.encryptor
            .encrypt_next_in_place(&self.aad, &mut record)
            .map_err(|_| SealError::TooLarge)?;
        self.chunks += 1;
        self.sealed_bytes += record.len() as u64;
        Ok((used, Some(Bytes::from(record))))
    }

    /// Bytes this sealer holds: the chunk buffer's allocation.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.capacity()
    }
}

enum OpenState {
    /// Reading the header; the cipher waits for its nonce prefix.
    Header(Aes256Gcm),
    /// Opening records; the position of each is `Opener::chunks`, so that opening can start at
    /// any chunk.
    Records(StreamBE32<Aes256Gcm>),
    Failed,
}

/// Opens one sealed object, chunk by chunk, releasing only authenticated plaintext. The plaintext
/// is complete, and a truncated stream is detected, only when [`Opener::finish`] returns `Ok`.
/// See [`Opener::into_stream`] for a stream adapter.
pub struct Opener {
    state: OpenState,
    agency_id: Uuid,
    object_id: Uuid,
    label: String,
    aad: Vec<u8>,
    /// The header, then the record being filled.
    buf: Vec<u8>,
    /// `None` when the plaintext is hashed elsewhere (see [`Opener::into_verified_stream`]), or
    /// when opening starts past the first chunk.
    hasher: Option<Sha256>,
    bytes: u64,
    /// Chunks opened so far, counted from the object's first whatever chunk opening started at:
    /// the position of the next record.
    chunks: u64,
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("object_id", &self.object_id)
            .field("bytes", &self.bytes)
            .field("chunks", &self.chunks)
            .finish_non_exhaustive()
    }
}

impl Opener {
    pub(crate) fn new(
        key: &[u8],
        agency_id: Uuid,
        object_id: Uuid,
        label: &str,
    ) -> Result<Opener, SealError> {
        check_label(label)?;
        Ok(Opener {
            state: OpenState::Header(cipher(key)?),
            agency_id,
            object_id,
            label: label.to_owned(),
            aad: Vec::new(),
            buf: Vec::with_capacity(HEADER_SIZE),
            hasher: Some(Sha256::new()),
            bytes: 0,
            chunks: 0,
        })
    }

    /// Leaves the plaintext's SHA-256 to the caller, who puts it into the summary.
    pub(crate) fn hash_elsewhere(&mut self) {
        self.hasher = None;
    }

    /// Makes this opener, which has read nothing yet, take the header followed by the records
    /// from chunk `first` on: a reader serving the end of a large object reads and decrypts only
    /// what it serves. Each record still opens only at its own position and the final one only
    /// as the final one; the summary's `sha256` is then empty (only part of the plaintext passes)
    /// and its `bytes` count what was opened.
    pub fn start_at_chunk(&mut self, first: u64) -> Result<(), SealError> {
        if !matches!(self.state, OpenState::Header(_)) || !self.buf.is_empty() {
            return Err(SealError::Failed);
        }
        if first > u64::from(u32::MAX) {
            return Err(SealError::TooLarge);
        }
        self.chunks = first;
        if first > 0 {
            self.hasher = None;
        }
        Ok(())
    }

    /// Takes sealed bytes, split anywhere; returns the plaintext of every chunk they completed.
    /// The first chunk that fails authentication is an error, and so is every call after it.
    pub fn update(&mut self, sealed: &[u8]) -> Result<Vec<Bytes>, SealError> {
        let mut out = Vec::new();
        let mut rest = sealed;
        while !rest.is_empty() {
            let (used, plain) = self.absorb(rest)?;
            rest = &rest[used..];
            out.extend(plain);
        }
        Ok(out)
    }

    /// Opens the final chunk: its plaintext (possibly empty) and the summary. A stream that ended
    /// early is [`SealError::Truncated`] here.
    pub fn finish(mut self) -> Result<(Bytes, OpenSummary), SealError> {
        let stream = match mem::replace(&mut self.state, OpenState::Failed) {
            OpenState::Records(s) => s,
            OpenState::Header(_) => return Err(SealError::Truncated { chunks: 0 }),
            OpenState::Failed => return Err(SealError::Failed),
        };
        if self.buf.len() < TAG_SIZE {
            return Err(SealError::Truncated {
                chunks: self.chunks,
            });
        }
        let mut record = mem::take(&mut self.buf);
        let corrupt = SealError::Corrupt { chunk: self.chunks };
        let position = u32::try_from(self.chunks).map_err(|_| SealError::TooLarge)?;
        stream
            .decrypt_in_place(position, true, &self.aad, &mut record)
            .map_err(|_| corrupt)?;
        if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(&record);
        }
        self.bytes += record.len() as u64;
        self.chunks += 1;
        Ok((
            Bytes::from(record),
            OpenSummary {
                sha256: self.hasher.map(|h| h.finalize().into()).unwrap_or_default(),
                bytes: self.bytes,
                chunks: self.chunks,
            },
        ))
    }

    /// Takes what fits in the header or the current record; returns how much it took and the
    /// plaintext of the record when that completed it (at most one per call).
    pub(crate) fn absorb(&mut self, data: &[u8]) -> Result<(usize, Option<Bytes>), SealError> {
        match &mut self.state {
            OpenState::Failed => Err(SealError::Failed),
            OpenState::Header(_) => {
                let used = data.len().min(HEADER_SIZE - self.buf.len());
                self.buf.extend_from_slice(&data[..used]);
                if self.buf.len() == HEADER_SIZE {
                    self.start_records()?;
                }
                Ok((used, None))
            }
            OpenState::Records(stream) => {
                let used = data.len().min(RECORD_SIZE - self.buf.len());
                self.buf.extend_from_slice(&data[..used]);
                if self.buf.len() < RECORD_SIZE {
                    return Ok((used, None));
                }
                // A full record is never the final one (see the module docs).
                let mut record = mem::replace(&mut self.buf, Vec::with_capacity(RECORD_SIZE));
                // The last position is the final chunk's: a full record cannot have it.
                let opened = u32::try_from(self.chunks)
                    .ok()
                    .filter(|p| *p < u32::MAX)
                    .is_some_and(|p| {
                        stream
                            .decrypt_in_place(p, false, &self.aad, &mut record)
                            .is_ok()
                    });
                if !opened {
                    self.state = OpenState::Failed;
                    return Err(SealError::Corrupt { chunk: self.chunks });
                }
                if let Some(hasher) = self.hasher.as_mut() {
                    hasher.update(&record);
                }
                self.bytes += record.len() as u64;
                self.chunks += 1;
                Ok((used, Some(Bytes::from(record))))
            }
        }
    }

    fn start_records(&mut self) -> Result<(), SealError> {
        let mut header = [0u8; HEADER_SIZE];
        header.copy_from_slice(&self.buf);
        let prefix = match parse_header(&header) {
            Ok(p) => p,
            Err(e) => {
                self.state = OpenState::Failed;
                return Err(e);
            }
        };
        let OpenState::Header(cipher) = mem::replace(&mut self.state, OpenState::Failed) else {
            return Err(SealError::Failed);
        };
        self.aad = associated_data(self.agency_id, self.object_id, &self.label, &header);
        self.state = OpenState::Records(StreamBE32::from_aead(cipher, &prefix.into()));
        self.buf = Vec::with_capacity(RECORD_SIZE);
        Ok(())
    }

    /// Bytes this opener holds: the record buffer's allocation.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const KEY: [u8; 32] = [7; 32];
    pub(crate) const AGENCY: Uuid = Uuid::from_u128(0xa9e0c1);
    pub(crate) const OBJECT: Uuid = Uuid::from_u128(0x0b1ec7);

    /// Deterministic bytes that differ at every offset.
    pub(crate) fn data(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0])
            .collect()
    }

    pub(crate) fn sealer_for(agency: Uuid, object: Uuid, label: &str) -> Sealer {
        let mut prefix = [0u8; NONCE_PREFIX_SIZE];
        OsRng.fill_bytes(&mut prefix);
        Sealer::new(&KEY, agency, object, label, 3, prefix).unwrap()
    }

    pub(crate) fn opener_for(agency: Uuid, object: Uuid, label: &str) -> Opener {
        Opener::new(&KEY, agency, object, label).unwrap()
    }

    /// Seals `plain` fed in pieces of `piece` bytes; returns the sealed object's pieces (header
    /// first, then one per record) and the summary.
    fn seal_pieces(plain: &[u8], piece: usize, object: Uuid) -> (Vec<Bytes>, SealSummary) {
        let mut sealer = sealer_for(AGENCY, object, "document");
        let mut out = Vec::new();
        for p in plain.chunks(piece.max(1)) {
            out.extend(sealer.update(p).unwrap());
        }
        let (tail, summary) = sealer.finish().unwrap();
        if out.is_empty() {
            // Nothing handed out yet: the tail carries the header too; split it for the tests.
            out.push(tail.slice(..HEADER_SIZE));
            out.push(tail.slice(HEADER_SIZE..));
        } else {
            out.push(tail);
        }
        (out, summary)
    }

    fn concat(pieces: &[Bytes]) -> Vec<u8> {
        pieces.iter().flat_map(|b| b.iter().copied()).collect()
    }

    /// Opens `sealed` fed in pieces of `piece` bytes; returns the plaintext released before the
    /// outcome, and the outcome.
    fn open_pieces(
        sealed: &[u8],
        piece: usize,
        agency: Uuid,
        object: Uuid,
        label: &str,
    ) -> (Vec<u8>, Result<OpenSummary, SealError>) {
        let mut opener = opener_for(agency, object, label);
        let mut released = Vec::new();
        for p in sealed.chunks(piece.max(1)) {
            match opener.update(p) {
                Ok(plain) => released.extend(plain.iter().flat_map(|b| b.iter().copied())),
                Err(e) => return (released, Err(e)),
            }
        }
        match opener.finish() {
            Ok((tail, summary)) => {
                released.extend_from_slice(&tail);
                (released, Ok(summary))
            }
            Err(e) => (released, Err(e)),
        }
    }

    fn open_all(sealed: &[u8]) -> (Vec<u8>, Result<OpenSummary, SealError>) {
        open_pieces(sealed, 4096, AGENCY, OBJECT, "document")
    }

    #[test]
    fn round_trips_every_size_byte_exact_with_the_plaintext_hash() {
        for len in [
            0,
            1,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            3 * CHUNK_SIZE,
            5 * CHUNK_SIZE + 123,
        ] {
            let plain = data(len);
            for piece in [1000, CHUNK_SIZE, 3 * CHUNK_SIZE + 7] {
                let (pieces, summary) = seal_pieces(&plain, piece, OBJECT);
                let sealed = concat(&pieces);
                let chunks = (len / CHUNK_SIZE + 1) as u64;
                assert_eq!(summary.bytes, len as u64);
                assert_eq!(summary.chunks, chunks, "len {len}");
                assert_eq!(summary.sha256, <[u8; 32]>::from(Sha256::digest(&plain)));
                assert_eq!(
                    summary.sealed_bytes,
                    (HEADER_SIZE + len + TAG_SIZE * chunks as usize) as u64
                );
                assert_eq!(sealed.len() as u64, summary.sealed_bytes);
                for split in [1, 17, RECORD_SIZE, 1 << 20] {
                    let (opened, outcome) = open_pieces(&sealed, split, AGENCY, OBJECT, "document");
                    let opened_summary = outcome.unwrap();
                    assert!(opened == plain, "len {len} piece {piece} split {split}");
                    assert_eq!(opened_summary.sha256, summary.sha256);
                    assert_eq!(opened_summary.bytes, len as u64);
                    assert_eq!(opened_summary.chunks, chunks);
                }
            }
        }
    }

    #[test]
    fn opening_from_a_chunk_reads_only_its_records_and_still_checks_each_position() {
        let plain = data(4 * CHUNK_SIZE + 500);
        let (pieces, _) = seal_pieces(&plain, 9000, OBJECT);
        let sealed = concat(&pieces);
        let records_from = |k: usize| {
            let mut v = pieces[0].to_vec();
            v.extend_from_slice(&sealed[HEADER_SIZE + k * RECORD_SIZE..]);
            v
        };
        let open_from = |k: u64, bytes: &[u8]| {
            let mut opener = opener_for(AGENCY, OBJECT, "document");
            opener.start_at_chunk(k).unwrap();
            let mut released = opener.update(bytes).map(|p| p.concat());
            let summary = match &mut released {
                Ok(so_far) => opener.finish().map(|(tail, summary)| {
                    so_far.extend_from_slice(&tail);
                    summary
                }),
                Err(_) => Err(SealError::Failed),
            };
            (released, summary)
        };
        for k in 0..=4 {
            let (released, summary) = open_from(k as u64, &records_from(k));
            assert!(
                released.unwrap() == plain[k * CHUNK_SIZE..],
                "from chunk {k}"
            );
            let summary = summary.unwrap();
            assert_eq!(summary.chunks, 5);
            assert_eq!(summary.bytes, (plain.len() - k * CHUNK_SIZE) as u64);
        }
        // Records from another position than the one claimed do not open.
        let (released, _) = open_from(2, &records_from(1));
        assert!(matches!(released, Err(SealError::Corrupt { chunk: 2 })));
        // The end still has to be the final chunk.
        let mut opener = opener_for(AGENCY, OBJECT, "document");
        opener.start_at_chunk(3).unwrap();
        opener
            .update(&records_from(3)[..HEADER_SIZE + RECORD_SIZE])
            .unwrap();
        assert!(matches!(
            opener.finish(),
            Err(SealError::Truncated { chunks: 4 })
        ));
        // Only before anything was read.
        let mut opener = opener_for(AGENCY, OBJECT, "document");
        opener.update(&pieces[0][..3]).unwrap();
        assert!(matches!(opener.start_at_chunk(1), Err(SealError::Failed)));
    }

    #[test]
    fn every_record_but_the_last_is_full_and_the_last_is_shorter() {
        let (pieces, _) = seal_pieces(&data(2 * CHUNK_SIZE), 5000, OBJECT);
        let lens: Vec<usize> = pieces.iter().map(Bytes::len).collect();
        assert_eq!(lens, vec![HEADER_SIZE, RECORD_SIZE, RECORD_SIZE, TAG_SIZE]);
        assert_eq!(&pieces[0][..8], b"WRITSEAL");
        assert_eq!(pieces[0][8], FORMAT);
        assert_eq!(&pieces[0][14..18], &3u32.to_be_bytes());
    }

    #[test]
    fn two_seals_of_the_same_plaintext_differ() {
        let plain = data(100);
        let a = concat(&seal_pieces(&plain, 100, OBJECT).0);
        let b = concat(&seal_pieces(&plain, 100, OBJECT).0);
        assert_ne!(a, b, "a fresh nonce prefix per object");
    }

    #[test]
    fn a_flipped_bit_anywhere_stops_at_its_chunk_without_releasing_it() {
        let plain = data(4 * CHUNK_SIZE + 500);
        let sealed = concat(&seal_pieces(&plain, 9000, OBJECT).0);
        for at in [
            HEADER_SIZE,                       // first byte of chunk 0
            HEADER_SIZE + RECORD_SIZE - 1,     // tag of chunk 0
            HEADER_SIZE + 2 * RECORD_SIZE + 9, // chunk 2
            sealed.len() - 1,                  // the final chunk's tag
        ] {
            let mut bad = sealed.clone();
            bad[at] ^= 0x01;
            let chunk = ((at - HEADER_SIZE) / RECORD_SIZE) as u64;
            let (released, outcome) = open_all(&bad);
            match outcome {
                Err(SealError::Corrupt { chunk: c }) => assert_eq!(c, chunk, "bit at {at}"),
                other => panic!("bit at {at}: {other:?}"),
            }
            assert_eq!(released.len(), chunk as usize * CHUNK_SIZE);
            assert!(released[..] == plain[..released.len()]);
        }
    }

    #[test]
    fn a_changed_header_fails() {
        let sealed = concat(&seal_pieces(&data(10), 10, OBJECT).0);
        // The key version and the nonce prefix are bound as associated data.
        for at in [14, 17, 18, 24] {
            let mut bad = sealed.clone();
            bad[at] ^= 0x80;
            let (released, outcome) = open_all(&bad);
            assert!(
                matches!(outcome, Err(SealError::Corrupt { chunk: 0 })),
                "byte {at}: {outcome:?}"
            );
            assert!(released.is_empty());
        }
        for (at, why) in [
            (0, "no WRITSEAL magic"),
            (8, "unknown format version"),
            (9, "unknown algorithm"),
            (11, "unsupported chunk size"),
        ] {
            let mut bad = sealed.clone();
            bad[at] ^= 0x01;
            let (_, outcome) = open_all(&bad);
            match outcome {
                Err(SealError::Header(w)) => assert_eq!(w, why),
                other => panic!("byte {at}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_truncated_object_never_opens() {
        let plain = data(3 * CHUNK_SIZE + 10);
        let (pieces, _) = seal_pieces(&plain, 70_000, OBJECT);
        assert_eq!(pieces.len(), 5);
        // Without the final record: every full chunk opens, then the end is missing.
        let cut = concat(&pieces[..4]);
        let (released, outcome) = open_all(&cut);
        assert!(
            matches!(outcome, Err(SealError::Truncated { chunks: 3 })),
            "{outcome:?}"
        );
        assert!(released[..] == plain[..3 * CHUNK_SIZE]);
        // Cut inside a record: the rest is taken for a final chunk, which it is not.
        let sealed = concat(&pieces);
        let (released, outcome) = open_all(&sealed[..HEADER_SIZE + RECORD_SIZE + 100]);
        assert!(
            matches!(outcome, Err(SealError::Corrupt { chunk: 1 })),
            "{outcome:?}"
        );
        assert_eq!(released.len(), CHUNK_SIZE);
        // Cut inside a tag's worth, inside the header, or before it.
        for len in [HEADER_SIZE + 5, 10, 0] {
            let (released, outcome) = open_all(&sealed[..len]);
            assert!(
                matches!(outcome, Err(SealError::Truncated { chunks: 0 })),
                "{len}: {outcome:?}"
            );
            assert!(released.is_empty());
        }
        // Extra bytes after the final record.
        let mut longer = sealed.clone();
        longer.extend_from_slice(&[0; 16]);
        let (_, outcome) = open_all(&longer);
        assert!(
            matches!(outcome, Err(SealError::Corrupt { chunk: 3 })),
            "{outcome:?}"
        );
    }

    #[test]
    fn reordered_or_repeated_chunks_fail_at_the_first_out_of_place() {
        let plain = data(3 * CHUNK_SIZE + 1);
        let (pieces, _) = seal_pieces(&plain, CHUNK_SIZE, OBJECT);
        let (h, r0, r1, r2, last) = (&pieces[0], &pieces[1], &pieces[2], &pieces[3], &pieces[4]);
        for (order, fails_at) in [
            (vec![h, r1, r0, r2, last], 0),
            (vec![h, r0, r2, r1, last], 1),
            (vec![h, r0, r0, r1, r2, last], 1),
            (vec![h, r0, r1, last, r2], 2),
            (vec![h, r0, r1, r2, last, last], 3),
        ] {
            let sealed: Vec<u8> = order.iter().flat_map(|b| b.iter().copied()).collect();
            let (released, outcome) = open_all(&sealed);
            match outcome {
                Err(SealError::Corrupt { chunk }) => assert_eq!(chunk, fails_at),
                other => panic!("{other:?}"),
            }
            assert!(released[..] == plain[..fails_at as usize * CHUNK_SIZE]);
        }
    }

    #[test]
    fn another_agency_object_or_label_cannot_open_it_even_with_the_key() {
        let sealed = concat(&seal_pieces(&data(CHUNK_SIZE + 5), 4096, OBJECT).0);
        for (agency, object, label) in [
            (Uuid::from_u128(1), OBJECT, "document"),
            (AGENCY, Uuid::from_u128(2), "document"),
            (AGENCY, OBJECT, "oath-recording"),
        ] {
            let (released, outcome) = open_pieces(&sealed, 4096, agency, object, label);
            assert!(
                matches!(outcome, Err(SealError::Corrupt { chunk: 0 })),
                "{outcome:?}"
            );
            assert!(released.is_empty());
        }
    }

    #[test]
    fn a_chunk_of_another_object_does_not_open_in_this_one() {
        let plain = data(3 * CHUNK_SIZE);
        let (mine, _) = seal_pieces(&plain, CHUNK_SIZE, OBJECT);
        let (theirs, _) = seal_pieces(&plain, CHUNK_SIZE, Uuid::from_u128(99));
        let mut spliced = mine.clone();
        spliced[2] = theirs[2].clone();
        let (released, outcome) = open_all(&concat(&spliced));
        assert!(
            matches!(outcome, Err(SealError::Corrupt { chunk: 1 })),
            "{outcome:?}"
        );
        assert_eq!(released.len(), CHUNK_SIZE);
    }

    #[test]
    fn an_opener_that_failed_stays_failed() {
        let sealed = concat(&seal_pieces(&data(2 * CHUNK_SIZE), 4096, OBJECT).0);
        let mut bad = sealed.clone();
        bad[HEADER_SIZE] ^= 1;
        let mut opener = opener_for(AGENCY, OBJECT, "document");
        assert!(matches!(
            opener.update(&bad[..HEADER_SIZE + RECORD_SIZE]),
            Err(SealError::Corrupt { chunk: 0 })
        ));
        assert!(matches!(
            opener.update(&sealed[HEADER_SIZE + RECORD_SIZE..]),
            Err(SealError::Failed)
        ));
        assert!(matches!(opener.finish(), Err(SealError::Failed)));
    }

    #[test]
    fn labels_are_checked() {
        for bad in ["", "Document", "a b", "é", &"x".repeat(65)] {
            assert!(
                matches!(
                    Opener::new(&KEY, AGENCY, OBJECT, bad),
                    Err(SealError::Label(_))
                ),
                "{bad:?}"
            );
        }
        assert!(Opener::new(&KEY, AGENCY, OBJECT, &"x".repeat(64)).is_ok());
        assert!(Opener::new(&KEY, AGENCY, OBJECT, "oath-recording.v2_a").is_ok());
    }

    #[test]
    fn a_data_key_of_the_wrong_length_is_an_error_not_a_panic() {
        assert!(matches!(
            Opener::new(&[1; 16], AGENCY, OBJECT, "document"),
            Err(SealError::Key(_))
        ));
    }
}
