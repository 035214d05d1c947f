//! Error types. Every malformed input ends in one of these, never in a panic.

use thiserror::Error;

use crate::keys::KeyId;

/// A hash string that is not in its one accepted spelling.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HashParseError {
    #[error("hash must start with \"sha256:\"")]
    MissingPrefix,
    #[error("hash must be 64 lowercase hex digits")]
    Hex,
    #[error("hash must be canonical standard base64 of 32 bytes")]
    Base64,
    #[error("hash must be 32 bytes, got {0}")]
    Length(usize),
}

/// A value that has no RFC 8785 canonical form, or that we refuse to canonicalize.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CanonicalError {
    #[error(
        "integer {0} is outside ±(2^53 − 1): JSON numbers are IEEE doubles in RFC 8785, so it would hash like a different number"
    )]
    UnsafeInteger(String),
    #[error("number {0} has no JSON form")]
    NonFinite(String),
    #[error("JSON nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("value has no JSON form: {0}")]
    Serialize(String),
}

/// An entry (or an event about to become one) that breaks the format.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EntryError {
    #[error("not a JSON entry: {0}")]
    Json(String),
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("entry is {bytes} bytes canonicalized, the limit is {limit}")]
    TooLarge { bytes: usize, limit: usize },
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
}

/// Merkle tree, proof and proof-verification errors.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProofError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {from} is larger than tree size {to}")]
    SizesOutOfOrder { from: u64, to: u64 },
    #[error("{needed} leaves needed, {available} available")]
    NotEnoughLeaves { needed: u64, available: u64 },
    #[error("a tree of size {size} has {expected} frontier nodes, {found} given")]
    FrontierLength {
        size: u64,
        expected: usize,
        found: usize,
    },
    #[error("the tree cannot grow past 2^64 − 1 leaves")]
    TreeFull,
    #[error("a consistency proof from the empty tree proves nothing; start at size 1")]
    FromEmptyTree,
    #[error("the proof has too many hashes")]
    ProofTooLong,
    #[error("the proof has too few hashes")]
    ProofTooShort,
    #[error("a proof between equal or empty trees must be empty")]
    ProofNotEmpty,
    #[error("the proof does not lead to the expected root hash")]
    RootMismatch,
    #[error("the proof does not lead to the old root hash")]
    OldRootMismatch,
    #[error("the proof's leaf hash does not match the entry")]
    LeafMismatch,
    #[error("seq 0 does not exist (seq starts at 1)")]
    ZeroSeq,
    #[error("malformed proof: {0}")]
    Malformed(String),
}

/// Public keys and ECDSA signatures.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum KeyError {
    #[error("not a P-256 public key in PEM (SubjectPublicKeyInfo): {0}")]
    Pem(String),
    #[error("not a P-256 public key: {0}")]
    Encoding(String),
    #[error("invalid key name {0:?}: it must be non-empty, without spaces or '+'")]
    Name(String),
    #[error("invalid key id {0:?}: expected 8 lowercase hex digits")]
    KeyIdFormat(String),
    #[error("not an ECDSA P-256 signature (DER or 64-byte r‖s)")]
    SignatureEncoding,
    #[error("signature does not verify with key {0}")]
    BadSignature(KeyId),
}

/// Signed notes (c2sp.org/signed-note).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NoteError {
    #[error("malformed signed note: {0}")]
    Malformed(String),
    #[error("the note has no signature from a trusted key")]
    NoTrustedSignature,
    #[error("the signature of trusted key {key_name} ({key_id}) does not verify")]
    BadSignature { key_name: String, key_id: KeyId },
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Checkpoint bodies (c2sp.org/tlog-checkpoint).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    #[error(transparent)]
    Note(#[from] NoteError),
}

/// Minimum-index statements (a pruned log's signed new start).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MinimumIndexError {
    #[error("malformed minimum-index statement: {0}")]
    Malformed(String),
    #[error(transparent)]
    Note(#[from] NoteError),
}

/// Export certificates.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CertificateError {
    #[error("certificate is not valid JSON: {0}")]
    Json(String),
    #[error("malformed certificate: {0}")]
    Malformed(String),
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    #[error("certificate is not signed")]
    Unsigned,
    #[error("unsupported certificate signature algorithm {0:?}")]
    Algorithm(String),
    #[error("certificate is signed by key {0}, which is not a trusted key")]
    UntrustedKey(KeyId),
    #[error("certificate signature does not verify with key {0}")]
    BadSignature(KeyId),
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Building an export (the server side of a bundle).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ExportError {
    #[error("entry seq {seq} cannot be exported: {reason}")]
    Chain { seq: u64, reason: String },
    #[error("an export holds at least one entry")]
    Empty,
    #[error(transparent)]
    Entry(#[from] EntryError),
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    #[error(transparent)]
    MinimumIndex(#[from] MinimumIndexError),
    #[error("{0}")]
    Invalid(String),
}
