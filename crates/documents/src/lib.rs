//! writ-documents owns the encrypted document store: per-document data keys wrapped by the agency
//! key, chunked streaming encryption, classification, retention, legal hold and crypto-erase with
//! deletion certificates. Plaintext never touches the database or the logs.
//!
//! Sealing is `writ_agency_keys::seal`/`open` (STREAM over AES-256-GCM, 64 KiB chunks, associated
//! data binding agency, document and label; chunk index and last-chunk flag in the nonce); this
//! crate writes no cryptography of its own. Documents belong to warrants and are seen by whoever
//! may read the warrant (warrant-workflow's rule); everything else is `NotFound`. Every access is
//! recorded in the caller's transaction: `document.upload`, `.encrypt`, `.view`, `.download`,
//! `.decrypt`, `.delete`, `.erase`, `.legal_hold`. Nothing here knows HTTP.
//!
//! - [`store`]: upload ([`store::prepare_upload`], [`store::upload`]), metadata, listing,
//!   content ([`store::open_content`], [`store::plaintext`]), soft delete, legal holds.
//! - [`erasure`]: two-person erasure and signed certificates of deletion.
//! - [`retention`]: the daily retention job ([`retention::run_due`]).
//! - [`storage`]: PostgreSQL or S3 ([`DocumentStore`]).
//! - [`sniff`]: the accepted types, judged from the bytes.
//! - [`policy`]: `documents.max_bytes` and `documents.retention` ([`POLICIES`]).

pub mod erasure;
mod error;
pub mod policy;
pub mod range;
pub mod retention;
pub mod sniff;
pub mod storage;
pub mod store;

pub use erasure::{DeletionCertificate, ErasureRequest, SignedDeletionCertificate};
pub use error::{DocumentError, ERASED, LEGAL_HOLD};
pub use policy::{DEFAULT_MAX_BYTES, MAX_BYTES_POLICY, POLICIES, RETENTION_POLICY, Retention};
pub use sniff::DocumentType;
pub use storage::DocumentStore;
pub use store::{Document, Generated, NewDocument, OpenedDocument, UploadPlan, store_generated};
