//! The Writ audit format, as an auditor verifies it.
//!
//! This crate owns everything that decides whether an agency's audit log is intact: the entry
//! fields and their RFC 8785 canonical form, the entry hash and the hash chain, the RFC 9162
//! Merkle tree over the entries (with a storage-friendly node numbering), inclusion and
//! consistency proofs and their JSON, checkpoints and minimum-index statements (a pruned log's
//! signed new start) as C2SP signed notes, the export certificate, and streaming verification of
//! a whole export bundle. `docs/AUDIT-FORMAT.md` is its specification.
//!
//! It must never touch a database, the network, the clock or a private key: the server reads
//! and writes rows and asks the KMS for signatures; this crate only says what the bytes are,
//! what to sign, and whether what it is given verifies. That keeps it small enough for an
//! auditor to read, and lets `writ-verify` run offline. It must never panic on any input:
//! malformed data is an `Err` or a reported failure.
//!
//! The server's path through it:
//! - record: [`PendingEvent::validate`] in the request's transaction;
//! - sequence: [`PendingEvent::seal`] with the next seq and the previous hash, then
//!   [`CompactRange::append`] the entry's [`Entry::leaf_hash`] and store the returned nodes;
//! - checkpoint: [`Checkpoint::body`], sign [`signing_digest`] in the KMS,
//!   [`SignedNote::assemble`];
//! - prove: [`inclusion_proof_nodes`] / [`consistency_proof_nodes`], fetch those nodes,
//!   [`InclusionProof::from_node_hashes`] / [`ConsistencyProof::from_node_hashes`];
//! - prune: [`MinimumIndex::body`], sign [`signing_digest`], [`SignedNote::assemble`]; resume
//!   verification with [`MinimumIndex::from_signed_note`] and [`ChainVerifier::resume`];
//! - export: [`ExportBuilder`], sign [`Certificate::signing_digest`],
//!   [`Certificate::with_signature`];
//! - verify: [`verify_chain`], [`verify_bundle`].

pub mod bundle;
pub mod canonical;
pub mod certificate;
pub mod chain;
pub mod checkpoint;
pub mod entry;
pub mod error;
pub mod evidence;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod hash;
pub mod keys;
pub mod merkle;
pub mod minimum_index;
pub mod offboarding;
pub mod proof;
pub mod signature_record;
pub mod time;
pub mod timestamp;
pub mod unique;

pub use bundle::{
    BundleReport, BundleVerifier, CheckpointSummary, ExportBuilder, ExportDetails, ExportStart,
    Failure, FailureReason, SignatureCheck, verify_bundle,
};
pub use canonical::{canonicalize, to_canonical_vec};
pub use certificate::{
    CERTIFICATE_FORMAT, Certificate, CertificateSignature, KeyRecord, RequestedRange,
    SIGNATURE_ALGORITHM, SeqRange,
};
pub use chain::{ChainBreak, ChainFailure, ChainVerifier, verify_chain};
pub use checkpoint::{
    Checkpoint, NoteSignature, NoteVerification, SignedNote, signing_digest, verify_note,
};
pub use entry::{Actor, Entry, MAX_ENTRY_BYTES, Outcome, PendingEvent, genesis_hash};
pub use error::{
    CanonicalError, CertificateError, CheckpointError, EntryError, ExportError, HashParseError,
    KeyError, MinimumIndexError, NoteError, ProofError,
};
pub use hash::Hash;
pub use keys::{
    AuditKey, KeyId, SIGNATURE_TYPE_ECDSA, VerifierKey, ecdsa_sig_from_der_or_raw, ecdsa_sig_to_der,
};
pub use merkle::{
    CompactRange, NodeId, consistency_proof, consistency_proof_nodes, empty_root, fold_range,
    inclusion_proof, inclusion_proof_nodes, leaf_hash, node_hash, verify_consistency,
    verify_inclusion,
};
pub use minimum_index::{MINIMUM_INDEX_FORMAT, MinimumIndex};
pub use proof::{ConsistencyProof, InclusionProof};
pub use time::{is_valid_timestamp, parse_timestamp_millis};
