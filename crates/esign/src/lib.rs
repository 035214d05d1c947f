//! writ-esign owns electronic signatures (DESIGN §7): signature requests, signing with step-up,
//! signature records bound to the exact document bytes and to the audit chain, their
//! verification, and warrants' evidence certificates.
//!
//! A signature is taken in two steps, so that a record can name the audit entry that recorded it:
//! [`sign`] checks the request, the signer and the document, signs a first record with the
//! agency's key (so a key outage refuses the signature and writes nothing) and records
//! `esign.applied`, all in the caller's transaction; once that has committed, [`complete`] waits
//! for the entry's `seq`, puts `audit {seq, entryHash}` in the record, signs it again, adds an
//! RFC 3161 timestamp when a time-stamping authority is configured, and stores it once. Every
//! read completes a record that is not complete yet, so a crash between the steps loses nothing.
//!
//! It never decides what a warrant needs signed (that is `writ-warrant-workflow::signing`) and
//! never holds a private key (`writ-agency-keys::sign`).
//!
//! - [`requests`]: requests to sign a document, and the signer's pending list.
//! - [`signing`]: [`sign`], [`complete`], reading signatures.
//! - [`verification`]: re-checking a stored signature.
//! - [`certificate`]: a warrant's evidence certificate.

pub mod certificate;
pub mod certificate_pdf;
pub mod error;
pub mod requests;
pub mod signing;
pub mod timestamp;
pub mod verification;

pub use error::{EsignError, slug};
pub use requests::{NewRequest, Plan, SignatureRequest};
pub use signing::{Signature, SignerSession, complete, sign};
