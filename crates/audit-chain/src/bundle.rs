//! Export bundles: building one (the server, streaming entries out of the database) and
//! verifying one (the auditor, streaming `log.jsonl` in bounded memory).
//!
//! A bundle holds `log.jsonl` (one canonical entry per line), `certificate.json`, `checkpoint`
//! (the signed checkpoint note, also inside the certificate), `keys/*.pem` (the key history's
//! public keys) and, for a pruned log, `minimum-index` (the signed minimum-index statement, also
//! inside the certificate). The verifier keeps the previous entry's seq and hash, the Merkle frontier and a
//! running SHA-256; never the entries.

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest, Sha256};

use crate::certificate::{CERTIFICATE_FORMAT, Certificate, KeyRecord, RequestedRange, SeqRange};
use crate::chain::{ChainBreak, ChainVerifier};
use crate::checkpoint::{SignedNote, verify_note};
use crate::entry::{Entry, MAX_ENTRY_BYTES, genesis_hash};
use crate::error::{CheckpointError, ExportError};
use crate::hash::Hash;
use crate::keys::{AuditKey, KeyId, VerifierKey};
use crate::merkle::{CompactRange, verify_consistency};
use crate::minimum_index::{MinimumIndex, expected_first_seq};
use crate::time::parse_timestamp_millis;

pub const LOG_FILE: &str = "log.jsonl";
pub const CERTIFICATE_FILE: &str = "certificate.json";
pub const CHECKPOINT_FILE: &str = "checkpoint";
pub const KEYS_DIR: &str = "keys";
pub const MINIMUM_INDEX_FILE: &str = "minimum-index";

/// Entry failures listed one by one in a report; beyond this they are only counted.
pub const MAX_REPORTED_ENTRY_FAILURES: usize = 100;

/// Checkpoints are signed at least hourly; an export whose checkpoint is older than this at
/// `createdAt` may be hiding a tail, and the report says so.
pub const STALE_CHECKPOINT_MILLIS: i64 = 65 * 60 * 1000;

// ---------------------------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------------------------

/// Where an export starts: its first seq, that entry's `prevHash`, and the frontier of the tree
/// before it (`CompactRange::frontier_ids(first_seq − 1)`, read from the node table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportStart {
    pub first_seq: u64,
    pub first_prev_hash: Hash,
    pub left_frontier: Vec<Hash>,
}

impl ExportStart {
    /// An export from seq 1.
    pub fn from_genesis(agency_id: &str) -> ExportStart {
        ExportStart {
            first_seq: 1,
            first_prev_hash: genesis_hash(agency_id),
            left_frontier: Vec::new(),
        }
    }
}

/// Everything of a certificate that is not computed from the entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportDetails {
    pub agency_name: String,
    pub agency_slug: String,
    pub origin: String,
    pub requested_range: RequestedRange,
    /// Signed checkpoint note of tree size ≥ the last exported seq.
    pub checkpoint: String,
    /// Consistency proof from the last exported seq to the checkpoint's size.
    pub checkpoint_consistency: Vec<Hash>,
    /// The log's latest signed minimum-index statement (note text), when it was pruned.
    pub minimum_index: Option<String>,
    pub key_history: Vec<KeyRecord>,
    pub created_at: String,
}

/// Streams entries into `log.jsonl` lines and produces the (unsigned) certificate. It checks the
/// chain as it goes and the checkpoint at the end, so a broken export is never produced.
#[derive(Clone, Debug)]
pub struct ExportBuilder {
    agency_id: String,
    start: ExportStart,
    chain: ChainVerifier,
    tree: CompactRange,
    sha: Sha256,
    count: u64,
    last_hash: Option<Hash>,
}

impl ExportBuilder {
    pub fn new(agency_id: &str, start: ExportStart) -> Result<ExportBuilder, ExportError> {
        let Some(before) = start.first_seq.checked_sub(1) else {
            return Err(ExportError::Invalid("seq starts at 1".into()));
        };
        let tree = CompactRange::from_parts(before, start.left_frontier.clone())?;
        Ok(ExportBuilder {
            agency_id: agency_id.to_owned(),
            chain: ChainVerifier::resume(agency_id, start.first_seq, start.first_prev_hash),
            start,
            tree,
            sha: Sha256::new(),
            count: 0,
            last_hash: None,
        })
    }

    /// Adds the next entry; returns its `log.jsonl` line (newline included) to write out.
    pub fn push(&mut self, entry: &Entry) -> Result<Vec<u8>, ExportError> {
        self.chain.push(entry).map_err(|f| ExportError::Chain {
            seq: f.seq,
            reason: f.reason.to_string(),
        })?;
        let line = entry.to_line()?;
        self.tree.append(entry.leaf_hash())?;
        self.sha.update(&line);
        self.count += 1;
        self.last_hash = Some(entry.hash);
        Ok(line)
    }

    /// Entries pushed so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Merkle root of the tree up to the last pushed entry.
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// The certificate, unsigned: sign [`Certificate::signing_digest`] and attach it with
    /// [`Certificate::with_signature`].
    pub fn finish(self, details: ExportDetails) -> Result<Certificate, ExportError> {
        let last_hash = self.last_hash.ok_or(ExportError::Empty)?;
        let last_seq = self.tree.size();
        let note = SignedNote::parse(&details.checkpoint).map_err(CheckpointError::from)?;
        let checkpoint = note.checkpoint()?;
        if checkpoint.origin != details.origin {
            return Err(ExportError::Invalid(format!(
                "checkpoint origin {:?} is not the log origin {:?}",
                checkpoint.origin, details.origin
            )));
        }
        verify_consistency(
            last_seq,
            checkpoint.size,
            &self.tree.root(),
            &checkpoint.root,
            &details.checkpoint_consistency,
        )?;
        let keys = details
            .key_history
            .iter()
            .map(KeyRecord::verifier_key)
            .collect::<Result<Vec<_>, _>>()?;
        verify_note(&note, &keys).map_err(CheckpointError::from)?;
        let minimum_index = match &details.minimum_index {
            None => None,
            Some(text) => {
                let (statement, _) = MinimumIndex::from_signed_note(text, &keys)?;
                if statement.origin != details.origin {
                    return Err(ExportError::Invalid(format!(
                        "minimum-index origin {:?} is not the log origin {:?}",
                        statement.origin, details.origin
                    )));
                }
                statement
                    .check_start(self.start.first_seq, &self.start.first_prev_hash)
                    .map_err(ExportError::Invalid)?;
                Some(statement.minimum_index)
            }
        };
        let expected_first = expected_first_seq(details.requested_range.first_seq, minimum_index);
        if self.start.first_seq != expected_first {
            return Err(ExportError::Invalid(format!(
                "the export starts at seq {} where seq {expected_first} was asked for",
                self.start.first_seq
            )));
        }

        let certificate = Certificate {
            format: CERTIFICATE_FORMAT.to_owned(),
            agency_id: self.agency_id,
            agency_name: details.agency_name,
            agency_slug: details.agency_slug,
            origin: details.origin,
            requested_range: details.requested_range,
            found_range: SeqRange {
                first_seq: self.start.first_seq,
                last_seq,
            },
            entry_count: self.count,
            first_prev_hash: self.start.first_prev_hash,
            last_hash,
            merkle_root: self.tree.root(),
            left_frontier: self.start.left_frontier,
            checkpoint: details.checkpoint,
            checkpoint_consistency: details.checkpoint_consistency,
            minimum_index: details.minimum_index,
            key_history: details.key_history,
            log_sha256: Hash(self.sha.finalize().into()),
            created_at: details.created_at,
            signature: None,
        };
        certificate.validate()?;
        Ok(certificate)
    }
}

// ---------------------------------------------------------------------------------------------
// Verifying
// ---------------------------------------------------------------------------------------------

/// Result of checking one signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Verified by these keys.
    Valid { key_ids: Vec<KeyId> },
    /// Present but not acceptable; `key_id` is the key it claims, when known.
    Invalid {
        key_id: Option<KeyId>,
        reason: String,
    },
    /// Could not be checked (e.g. the certificate is unreadable).
    NotChecked { reason: String },
}

impl SignatureCheck {
    pub fn is_valid(&self) -> bool {
        matches!(self, SignatureCheck::Valid { .. })
    }
}

impl fmt::Display for SignatureCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureCheck::Valid { key_ids } => {
                let ids: Vec<String> = key_ids.iter().map(KeyId::to_string).collect();
                write!(f, "valid (key id {})", ids.join(", "))
            }
            SignatureCheck::Invalid {
                key_id: Some(id),
                reason,
            } => write!(f, "INVALID (key id {id}): {reason}"),
            SignatureCheck::Invalid {
                key_id: None,
                reason,
            } => write!(f, "INVALID: {reason}"),
            SignatureCheck::NotChecked { reason } => write!(f, "not checked: {reason}"),
        }
    }
}

/// The checkpoint a bundle was checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointSummary {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub time: String,
}

/// The minimum-index statement a pruned log's bundle carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinimumIndexSummary {
    pub minimum_index: u64,
    pub prev_hash: Hash,
    pub tree_size: u64,
    pub root: Hash,
    pub time: String,
    pub signature: SignatureCheck,
}

/// Why a bundle fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureReason {
    /// An entry breaks the hash chain.
    Entry(ChainBreak),
    /// A well-formed, chained entry the certificate does not cover (e.g. appended later).
    OutsideCertifiedRange {
        certified: SeqRange,
    },
    /// Certified entries are missing from the end of the log.
    MissingEntries {
        certified_last: u64,
        found_last: Option<u64>,
    },
    EntryCountMismatch {
        certified: u64,
        found: u64,
    },
    LastHashMismatch {
        certified: Hash,
        found: Hash,
    },
    GenesisMismatch {
        certified: Hash,
        genesis: Hash,
    },
    LogDigestMismatch {
        certified: Hash,
        computed: Hash,
    },
    MerkleRootMismatch {
        certified: Hash,
        computed: Hash,
    },
    EmptyLog,
    MissingFinalNewline,
    MissingFile(String),
    /// The certificate is unreadable or inconsistent in itself.
    Certificate(String),
    CertificateSignature(String),
    KeyHistory(String),
    /// A `keys/*.pem` file that is not in the certificate's key history.
    KeyFile(String),
    Checkpoint(String),
    CheckpointSignature(String),
    CheckpointConsistency(String),
    /// The `checkpoint` file differs from the certificate's checkpoint.
    CheckpointFile(String),
    /// The log ends before the requested range or the signed tree does.
    MissingTail {
        expected_last: u64,
        found_last: u64,
    },
    /// Entries at the start of the requested range are missing, and no signed minimum index
    /// says they were pruned.
    MissingHead {
        expected_first: u64,
        found_first: u64,
    },
    /// The minimum-index statement is unreadable, or the log does not start as it says.
    MinimumIndex(String),
    MinimumIndexSignature(String),
    /// The `minimum-index` file differs from the certificate's statement.
    MinimumIndexFile(String),
}

impl FailureReason {
    /// Short stable name, e.g. for tests and machine-readable output.
    pub fn kind(&self) -> &'static str {
        match self {
            FailureReason::Entry(b) => b.kind(),
            FailureReason::OutsideCertifiedRange { .. } => "outside-certified-range",
            FailureReason::MissingEntries { .. } => "missing-entries",
            FailureReason::EntryCountMismatch { .. } => "entry-count-mismatch",
            FailureReason::LastHashMismatch { .. } => "last-hash-mismatch",
            FailureReason::GenesisMismatch { .. } => "genesis-mismatch",
            FailureReason::LogDigestMismatch { .. } => "log-digest-mismatch",
            FailureReason::MerkleRootMismatch { .. } => "merkle-root-mismatch",
            FailureReason::EmptyLog => "empty-log",
            FailureReason::MissingFinalNewline => "missing-final-newline",
            FailureReason::MissingFile(_) => "missing-file",
            FailureReason::Certificate(_) => "certificate",
            FailureReason::CertificateSignature(_) => "certificate-signature",
            FailureReason::KeyHistory(_) => "key-history",
            FailureReason::KeyFile(_) => "key-file",
            FailureReason::Checkpoint(_) => "checkpoint",
            FailureReason::CheckpointSignature(_) => "checkpoint-signature",
            FailureReason::CheckpointConsistency(_) => "checkpoint-consistency",
            FailureReason::CheckpointFile(_) => "checkpoint-file",
            FailureReason::MissingTail { .. } => "missing-tail",
            FailureReason::MissingHead { .. } => "missing-head",
            FailureReason::MinimumIndex(_) => "minimum-index",
            FailureReason::MinimumIndexSignature(_) => "minimum-index-signature",
            FailureReason::MinimumIndexFile(_) => "minimum-index-file",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::Entry(b) => write!(f, "{b}"),
            FailureReason::OutsideCertifiedRange { certified } => write!(
                f,
                "entry is outside the certified range {}..{} (added after certification?)",
                certified.first_seq, certified.last_seq
            ),
            FailureReason::MissingEntries {
                certified_last,
                found_last: Some(found),
            } => write!(
                f,
                "log ends at seq {found} but the certificate covers up to seq {certified_last} (truncated)"
            ),
            FailureReason::MissingEntries {
                certified_last,
                found_last: None,
            } => write!(
                f,
                "no entries found; the certificate covers up to seq {certified_last}"
            ),
            FailureReason::EntryCountMismatch { certified, found } => {
                write!(f, "certificate counts {certified} entries, log has {found}")
            }
            FailureReason::LastHashMismatch { certified, found } => write!(
                f,
                "last entry's hash is {found}, certificate says {certified}"
            ),
            FailureReason::GenesisMismatch { certified, genesis } => write!(
                f,
                "certificate's first prevHash {certified} is not the agency's genesis hash {genesis}"
            ),
            FailureReason::LogDigestMismatch {
                certified,
                computed,
            } => write!(
                f,
                "log.jsonl SHA-256 is {}, certificate says {}",
                computed.to_hex(),
                certified.to_hex()
            ),
            FailureReason::MerkleRootMismatch {
                certified,
                computed,
            } => write!(
                f,
                "Merkle root of the log is {}, certificate says {}",
                computed.to_base64(),
                certified.to_base64()
            ),
            FailureReason::EmptyLog => f.write_str("log.jsonl holds no entries"),
            FailureReason::MissingFinalNewline => {
                f.write_str("log.jsonl does not end with a newline (cut short?)")
            }
            FailureReason::MissingFile(name) => write!(f, "bundle has no {name}"),
            FailureReason::Certificate(m) => write!(f, "certificate: {m}"),
            FailureReason::CertificateSignature(m) => write!(f, "certificate signature: {m}"),
            FailureReason::KeyHistory(m) => write!(f, "key history: {m}"),
            FailureReason::KeyFile(m) => write!(f, "key file: {m}"),
            FailureReason::Checkpoint(m) => write!(f, "checkpoint: {m}"),
            FailureReason::CheckpointSignature(m) => write!(f, "checkpoint signature: {m}"),
            FailureReason::CheckpointConsistency(m) => write!(
                f,
                "checkpoint consistency: the export's tree is not a prefix of the signed tree: {m}"
            ),
            FailureReason::CheckpointFile(m) => write!(f, "checkpoint file: {m}"),
            FailureReason::MissingTail {
                expected_last,
                found_last,
            } => write!(
                f,
                "the export ends at seq {found_last} but runs to seq {expected_last} by its \
                 requested range and signed checkpoint (tail truncated)"
            ),
            FailureReason::MissingHead {
                expected_first,
                found_first,
            } => write!(
                f,
                "the export starts at seq {found_first} but seq {expected_first} was asked for, \
                 and no signed minimum index says the entries before were pruned (head truncated)"
            ),
            FailureReason::MinimumIndex(m) => write!(f, "minimum index: {m}"),
            FailureReason::MinimumIndexSignature(m) => {
                write!(f, "minimum-index signature: {m}")
            }
            FailureReason::MinimumIndexFile(m) => write!(f, "minimum-index file: {m}"),
        }
    }
}

/// One problem, with the first bad seq when it concerns entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub seq: Option<u64>,
    pub reason: FailureReason,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "seq {seq}: {}", self.reason),
            None => write!(f, "{}", self.reason),
        }
    }
}

/// Everything a bundle verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleReport {
    pub agency_id: Option<String>,
    pub origin: Option<String>,
    pub requested_range: Option<RequestedRange>,
    /// The range the certificate vouches for.
    pub certified_range: Option<SeqRange>,
    /// First and last seq actually in `log.jsonl`.
    pub found_range: Option<SeqRange>,
    /// Lines in `log.jsonl`.
    pub entries_total: u64,
    /// Lines that are well-formed, correctly hashed and chained entries within the certified
    /// range.
    pub entries_valid: u64,
    pub log_sha256: Hash,
    pub log_bytes: u64,
    pub checkpoint: Option<CheckpointSummary>,
    pub checkpoint_signature: SignatureCheck,
    pub certificate_signature: SignatureCheck,
    /// The signed minimum index, when the log was pruned.
    pub minimum_index: Option<MinimumIndexSummary>,
    /// In the order found: certificate problems, then entries in log order, then whole-log
    /// checks (file checks wherever the caller made them).
    pub failures: Vec<Failure>,
    /// Entry failures beyond [`MAX_REPORTED_ENTRY_FAILURES`], counted only.
    pub omitted_entry_failures: u64,
    /// Not failures, but worth an auditor's attention.
    pub warnings: Vec<String>,
}

impl BundleReport {
    /// Everything verified.
    pub fn is_valid(&self) -> bool {
        self.failures.is_empty()
            && self.omitted_entry_failures == 0
            && self.certificate_signature.is_valid()
            && self.checkpoint_signature.is_valid()
            && self
                .minimum_index
                .as_ref()
                .is_none_or(|m| m.signature.is_valid())
    }

    /// The lowest seq any failure points at.
    pub fn first_bad_seq(&self) -> Option<u64> {
        self.failures.iter().filter_map(|f| f.seq).min()
    }

    /// The failures of one kind (see [`FailureReason::kind`]).
    pub fn failures_of(&self, kind: &str) -> Vec<&Failure> {
        self.failures
            .iter()
            .filter(|f| f.reason.kind() == kind)
            .collect()
    }
}

/// Streaming verifier of one bundle: construct it with the certificate and the keys trusted
/// out of band, feed it `log.jsonl` in chunks of any size, then [`BundleVerifier::finish`].
#[derive(Debug)]
pub struct BundleVerifier {
    certificate: Option<Certificate>,
    report: BundleReport,
    chain: Option<ChainVerifier>,
    tree: Option<CompactRange>,
    sha: Sha256,
    line: Vec<u8>,
    /// Inside a line that is already too long: drop bytes until its newline.
    discarding: bool,
    first_seq_found: Option<u64>,
    last_seq_found: Option<u64>,
    /// (seq, hash) of the last line, if it parsed.
    last_line: Option<(u64, Hash)>,
    invalid_entries: u64,
    entry_failures_listed: usize,
    /// A seq gap just reported: (index in failures, seq expected there). If that seq comes
    /// next, the entries were reordered rather than lost.
    pending_gap: Option<(usize, u64)>,
    /// The verified minimum-index statement: its root is checked when the tree passes its size.
    statement: Option<MinimumIndex>,
}

impl BundleVerifier {
    /// Checks the certificate (its signature with `trusted_keys`, its key history, its
    /// checkpoint) and gets ready for the log.
    pub fn new(certificate_json: &[u8], trusted_keys: &[AuditKey]) -> BundleVerifier {
        let mut v = BundleVerifier {
            certificate: None,
            report: BundleReport {
                agency_id: None,
                origin: None,
                requested_range: None,
                certified_range: None,
                found_range: None,
                entries_total: 0,
                entries_valid: 0,
                log_sha256: Hash::default(),
                log_bytes: 0,
                checkpoint: None,
                checkpoint_signature: SignatureCheck::NotChecked {
                    reason: "certificate unreadable".into(),
                },
                certificate_signature: SignatureCheck::NotChecked {
                    reason: "certificate unreadable".into(),
                },
                minimum_index: None,
                failures: Vec::new(),
                omitted_entry_failures: 0,
                warnings: Vec::new(),
            },
            chain: None,
            tree: None,
            sha: Sha256::new(),
            line: Vec::new(),
            discarding: false,
            first_seq_found: None,
            last_seq_found: None,
            last_line: None,
            invalid_entries: 0,
            entry_failures_listed: 0,
            pending_gap: None,
            statement: None,
        };

        let signer = match Certificate::verify_json_signature(certificate_json, trusted_keys) {
            Ok(key_id) => {
                v.report.certificate_signature = SignatureCheck::Valid {
                    key_ids: vec![key_id],
                };
                Some(key_id)
            }
            Err(e) => {
                v.report.certificate_signature = SignatureCheck::Invalid {
                    key_id: claimed_signature_key(certificate_json),
                    reason: e.to_string(),
                };
                v.fail(None, FailureReason::CertificateSignature(e.to_string()));
                None
            }
        };

        let certificate = match Certificate::from_json(certificate_json) {
            Ok(c) => c,
            Err(e) => {
                v.fail(None, FailureReason::Certificate(e.to_string()));
                return v;
            }
        };
        v.report.agency_id = Some(certificate.agency_id.clone());
        v.report.origin = Some(certificate.origin.clone());
        v.report.requested_range = Some(certificate.requested_range);
        v.report.certified_range = Some(certificate.found_range);
        if let Err(e) = certificate.validate() {
            v.fail(None, FailureReason::Certificate(e.to_string()));
        }

        let first_seq = certificate.found_range.first_seq;
        v.chain = Some(ChainVerifier::resume(
            &certificate.agency_id,
            first_seq,
            certificate.first_prev_hash,
        ));
        v.tree = first_seq.checked_sub(1).and_then(|before| {
            CompactRange::from_parts(before, certificate.left_frontier.clone()).ok()
        });
        if first_seq == 1 {
            let genesis = genesis_hash(&certificate.agency_id);
            if certificate.first_prev_hash != genesis {
                v.fail(
                    Some(1),
                    FailureReason::GenesisMismatch {
                        certified: certificate.first_prev_hash,
                        genesis,
                    },
                );
            }
        }
        v.check_key_history(&certificate, signer);
        v.check_checkpoint(&certificate, signer.is_some(), trusted_keys);
        v.check_minimum_index(&certificate, signer.is_some(), trusted_keys);
        v.certificate = Some(certificate);
        v
    }

    /// Feeds the next bytes of `log.jsonl`.
    pub fn update(&mut self, mut chunk: &[u8]) {
        self.sha.update(chunk);
        self.report.log_bytes += chunk.len() as u64;
        while let Some(pos) = chunk.iter().position(|b| *b == b'\n') {
            let (part, rest) = chunk.split_at(pos);
            chunk = rest.get(1..).unwrap_or_default();
            if self.discarding {
                self.discarding = false;
                self.on_oversized_line();
            } else if self.line.len() + part.len() > MAX_ENTRY_BYTES {
                self.line.clear();
                self.on_oversized_line();
            } else if self.line.is_empty() {
                self.on_line(part);
            } else {
                self.line.extend_from_slice(part);
                let line = std::mem::take(&mut self.line);
                self.on_line(&line);
            }
        }
        if !chunk.is_empty() && !self.discarding {
            if self.line.len() + chunk.len() > MAX_ENTRY_BYTES {
                self.line.clear();
                self.discarding = true;
            } else {
                self.line.extend_from_slice(chunk);
            }
        }
    }

    /// Compares the bundle's `checkpoint` file with the certificate's checkpoint.
    pub fn check_checkpoint_file(&mut self, contents: &[u8]) {
        let Some(certificate) = &self.certificate else {
            return;
        };
        if contents != certificate.checkpoint.as_bytes() {
            self.fail(
                None,
                FailureReason::CheckpointFile(
                    "differs from the checkpoint in certificate.json".into(),
                ),
            );
        }
    }

    /// Compares the bundle's `minimum-index` file (`None` when absent) with the certificate's
    /// statement: both or neither, and the same text.
    pub fn check_minimum_index_file(&mut self, contents: Option<&[u8]>) {
        let Some(certificate) = &self.certificate else {
            return;
        };
        match (contents, &certificate.minimum_index) {
            (None, None) => {}
            (None, Some(_)) => self.missing_file(MINIMUM_INDEX_FILE),
            (Some(_), None) => self.fail(
                None,
                FailureReason::MinimumIndexFile(
                    "present, but certificate.json carries no minimum index".into(),
                ),
            ),
            (Some(file), Some(text)) if file != text.as_bytes() => self.fail(
                None,
                FailureReason::MinimumIndexFile(
                    "differs from the minimum index in certificate.json".into(),
                ),
            ),
            (Some(_), Some(_)) => {}
        }
    }

    /// Checks one `keys/*.pem` file is a key of the certificate's key history.
    pub fn check_key_file(&mut self, name: &str, contents: &[u8]) {
        let key = std::str::from_utf8(contents)
            .ok()
            .and_then(|pem| AuditKey::from_pem(pem).ok());
        let Some(key) = key else {
            self.fail(
                None,
                FailureReason::KeyFile(format!("{name} is not a P-256 public key")),
            );
            return;
        };
        let listed = self.certificate.as_ref().is_some_and(|c| {
            c.key_record(key.key_id())
                .and_then(|r| r.audit_key().ok())
                .is_some_and(|k| k == key)
        });
        if !listed && self.certificate.is_some() {
            self.fail(
                None,
                FailureReason::KeyFile(format!(
                    "{name} (key id {}) is not in the certificate's key history",
                    key.key_id()
                )),
            );
        }
    }

    /// Records that a bundle file is missing.
    pub fn missing_file(&mut self, name: &str) {
        self.fail(None, FailureReason::MissingFile(name.to_owned()));
    }

    /// Log bytes fed so far.
    pub fn bytes_read(&self) -> u64 {
        self.report.log_bytes
    }

    /// Runs the whole-log checks and returns the report.
    pub fn finish(mut self) -> BundleReport {
        if self.discarding {
            self.discarding = false;
            self.on_oversized_line();
            self.fail(None, FailureReason::MissingFinalNewline);
        } else if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.on_line(&line);
            self.fail(None, FailureReason::MissingFinalNewline);
        }
        let sha = std::mem::take(&mut self.sha);
        self.report.log_sha256 = Hash(sha.finalize().into());
        self.report.entries_valid = self
            .report
            .entries_total
            .saturating_sub(self.invalid_entries);
        if let (Some(first_seq), Some(last_seq)) = (self.first_seq_found, self.last_seq_found) {
            self.report.found_range = Some(SeqRange {
                first_seq,
                last_seq,
            });
        }
        if self.report.entries_total == 0 {
            self.fail(None, FailureReason::EmptyLog);
        }

        let Some(certificate) = self.certificate.take() else {
            return self.report;
        };
        if self.report.log_sha256 != certificate.log_sha256 {
            self.fail(
                None,
                FailureReason::LogDigestMismatch {
                    certified: certificate.log_sha256,
                    computed: self.report.log_sha256,
                },
            );
        }
        if self.report.entries_total != certificate.entry_count {
            self.fail(
                None,
                FailureReason::EntryCountMismatch {
                    certified: certificate.entry_count,
                    found: self.report.entries_total,
                },
            );
        }
        let certified = certificate.found_range;
        let found_last = self.last_seq_found;
        if found_last.is_none_or(|last| last < certified.last_seq) {
            let seq = found_last.map_or(certified.first_seq, |l| l.saturating_add(1));
            self.fail(
                Some(seq),
                FailureReason::MissingEntries {
                    certified_last: certified.last_seq,
                    found_last,
                },
            );
        }
        if let Some((seq, hash)) = self.last_line
            && seq == certified.last_seq
            && hash != certificate.last_hash
        {
            self.fail(
                Some(seq),
                FailureReason::LastHashMismatch {
                    certified: certificate.last_hash,
                    found: hash,
                },
            );
        }
        // Compared only when the log filled the tree up to the certified size; otherwise the
        // count and range failures above already tell what is wrong.
        if let Some(tree) = &self.tree {
            let computed = tree.root();
            if tree.size() == certified.last_seq && computed != certificate.merkle_root {
                self.fail(
                    None,
                    FailureReason::MerkleRootMismatch {
                        certified: certificate.merkle_root,
                        computed,
                    },
                );
            }
        }
        self.report
    }

    fn fail(&mut self, seq: Option<u64>, reason: FailureReason) {
        self.report.failures.push(Failure { seq, reason });
    }

    /// Returns the failure's index when it was listed.
    fn fail_entry(&mut self, seq: Option<u64>, reason: FailureReason) -> Option<usize> {
        self.invalid_entries += 1;
        if self.entry_failures_listed >= MAX_REPORTED_ENTRY_FAILURES {
            self.report.omitted_entry_failures += 1;
            return None;
        }
        self.entry_failures_listed += 1;
        self.fail(seq, reason);
        Some(self.report.failures.len() - 1)
    }

    fn on_oversized_line(&mut self) {
        self.report.entries_total += 1;
        self.last_line = None;
        self.pending_gap = None;
        let reason = ChainBreak::Malformed(format!("line longer than {MAX_ENTRY_BYTES} bytes"));
        let seq = self
            .chain
            .as_mut()
            .map(|chain| chain.skip_unreadable(reason.clone()).seq);
        self.fail_entry(seq, FailureReason::Entry(reason));
    }

    fn on_line(&mut self, line: &[u8]) {
        self.report.entries_total += 1;
        if self.chain.is_none() {
            // No usable certificate: anchor on the first readable entry.
            match Entry::from_json(line) {
                Ok(e) => self.chain = Some(ChainVerifier::unanchored(&e.actor.agency_id)),
                Err(e) => {
                    self.last_line = None;
                    self.fail_entry(
                        None,
                        FailureReason::Entry(ChainBreak::Malformed(e.to_string())),
                    );
                    return;
                }
            }
        }
        let Some(chain) = self.chain.as_mut() else {
            return;
        };
        let (entry, result) = chain.push_line(line);
        let mut failure = result
            .err()
            .map(|f| (Some(f.seq), FailureReason::Entry(f.reason)));

        let pending_gap = self.pending_gap.take();
        match &entry {
            None => self.last_line = None,
            Some(e) => {
                if let Some((index, expected)) = pending_gap
                    && e.seq == expected
                {
                    self.reclassify_gap(index);
                }
                self.first_seq_found.get_or_insert(e.seq);
                self.last_seq_found = Some(e.seq);
                self.last_line = Some((e.seq, e.hash));
                let certified = self.certificate.as_ref().map(|c| c.found_range);
                match certified {
                    Some(range) if e.seq < range.first_seq || e.seq > range.last_seq => {
                        if failure.is_none() {
                            failure = Some((
                                Some(e.seq),
                                FailureReason::OutsideCertifiedRange { certified: range },
                            ));
                        }
                    }
                    _ => {
                        if let Some(tree) = &mut self.tree
                            && tree.append(e.leaf_hash()).is_err()
                        {
                            self.tree = None;
                        }
                        if failure.is_none() {
                            failure = self.statement_root_failure();
                        }
                    }
                }
            }
        }
        if let Some((seq, reason)) = failure {
            let gap_expected = match &reason {
                FailureReason::Entry(ChainBreak::SeqGap { expected, .. }) => Some(*expected),
                _ => None,
            };
            let index = self.fail_entry(seq, reason);
            if let (Some(index), Some(expected)) = (index, gap_expected) {
                self.pending_gap = Some((index, expected));
            }
        }
    }

    fn reclassify_gap(&mut self, index: usize) {
        if let Some(failure) = self.report.failures.get_mut(index)
            && let FailureReason::Entry(ChainBreak::SeqGap { expected, found }) = failure.reason
        {
            failure.reason = FailureReason::Entry(ChainBreak::SeqOutOfOrder { expected, found });
        }
    }

    fn check_key_history(&mut self, certificate: &Certificate, signer: Option<KeyId>) {
        let mut seen: Vec<KeyId> = Vec::new();
        for record in &certificate.key_history {
            if let Err(e) = record.audit_key() {
                self.fail(
                    None,
                    FailureReason::KeyHistory(format!("key {}: {e}", record.key_id)),
                );
            }
            if seen.contains(&record.key_id) {
                self.fail(
                    None,
                    FailureReason::KeyHistory(format!("key {} listed twice", record.key_id)),
                );
            }
            seen.push(record.key_id);
        }
        let Some(signer) = signer else {
            return;
        };
        match certificate.key_record(signer) {
            None => self.fail(
                None,
                FailureReason::KeyHistory(format!(
                    "the certificate's signing key {signer} is not in its key history"
                )),
            ),
            Some(record) if !record.valid_at(&certificate.created_at) => self.fail(
                None,
                FailureReason::KeyHistory(format!(
                    "the certificate's signing key {signer} was not valid at createdAt {}",
                    certificate.created_at
                )),
            ),
            Some(_) => {}
        }
    }

    /// The statement of a pruned log: signed by a key valid when it was signed, of this log, not
    /// signed after the export, and the export starts where it says. Without one, the export
    /// starts where it was asked to: a missing head is never silent.
    fn check_minimum_index(
        &mut self,
        certificate: &Certificate,
        history_trusted: bool,
        trusted: &[AuditKey],
    ) {
        let found_first = certificate.found_range.first_seq;
        let statement = certificate
            .minimum_index
            .as_deref()
            .and_then(|text| self.read_minimum_index(certificate, history_trusted, trusted, text));
        if let Some(statement) = &statement
            && let Err(reason) = statement.check_start(found_first, &certificate.first_prev_hash)
        {
            self.fail(Some(found_first), FailureReason::MinimumIndex(reason));
        }
        // Without a statement that verifies, the export starts where it was asked to.
        let expected_first = expected_first_seq(
            certificate.requested_range.first_seq,
            statement.as_ref().map(|s| s.minimum_index),
        );
        if found_first > expected_first {
            self.fail(
                Some(expected_first),
                FailureReason::MissingHead {
                    expected_first,
                    found_first,
                },
            );
        }
        if let (Some(statement), Some(tree)) = (&statement, &self.tree)
            && statement.tree_size == tree.size()
            && statement.root != tree.root()
        {
            self.fail(
                None,
                FailureReason::MinimumIndex(format!(
                    "the tree of size {} has another root than the signed minimum index says",
                    statement.tree_size
                )),
            );
        }
        self.statement = statement;
    }

    /// Parses and verifies the statement; reports and returns `None` when it does not verify.
    fn read_minimum_index(
        &mut self,
        certificate: &Certificate,
        history_trusted: bool,
        trusted: &[AuditKey],
        text: &str,
    ) -> Option<MinimumIndex> {
        let parsed = SignedNote::parse(text)
            .map_err(|e| e.to_string())
            .and_then(|note| {
                note.minimum_index()
                    .map(|s| (s, note))
                    .map_err(|e| e.to_string())
            });
        let (statement, note) = match parsed {
            Ok(parsed) => parsed,
            Err(e) => {
                self.fail(None, FailureReason::MinimumIndex(e));
                return None;
            }
        };
        let mut summary = MinimumIndexSummary {
            minimum_index: statement.minimum_index,
            prev_hash: statement.prev_hash,
            tree_size: statement.tree_size,
            root: statement.root,
            time: statement.time.clone(),
            signature: SignatureCheck::NotChecked {
                reason: "not yet checked".into(),
            },
        };
        let mut ok = true;
        if statement.origin != certificate.origin {
            self.fail(
                None,
                FailureReason::MinimumIndex(format!(
                    "origin {:?} is not the certificate's origin {:?}",
                    statement.origin, certificate.origin
                )),
            );
            ok = false;
        }
        let keys = note_keys(certificate, history_trusted, trusted, &certificate.origin);
        match verify_note(&note, &keys) {
            Ok(verified) => {
                summary.signature = SignatureCheck::Valid {
                    key_ids: verified.verified.iter().map(|(_, id)| *id).collect(),
                };
                for (_, key_id) in &verified.verified {
                    if let Some(record) = certificate.key_record(*key_id)
                        && !record.valid_at(&statement.time)
                    {
                        self.fail(
                            None,
                            FailureReason::MinimumIndexSignature(format!(
                                "key {key_id} signed at {} outside its validity window",
                                statement.time
                            )),
                        );
                        ok = false;
                    }
                }
            }
            Err(e) => {
                summary.signature = SignatureCheck::Invalid {
                    key_id: note.signatures().first().map(|s| s.key_id),
                    reason: e.to_string(),
                };
                self.fail(None, FailureReason::MinimumIndexSignature(e.to_string()));
                ok = false;
            }
        }
        if let (Some(signed), Some(created)) = (
            parse_timestamp_millis(&statement.time),
            parse_timestamp_millis(&certificate.created_at),
        ) && signed > created
        {
            self.fail(
                None,
                FailureReason::MinimumIndex(format!(
                    "signed at {}, after the certificate was created ({})",
                    statement.time, certificate.created_at
                )),
            );
        }
        self.report.minimum_index = Some(summary);
        ok.then_some(statement)
    }

    /// A failure when the tree just reached the statement's size with another root.
    fn statement_root_failure(&self) -> Option<(Option<u64>, FailureReason)> {
        let (statement, tree) = (self.statement.as_ref()?, self.tree.as_ref()?);
        (tree.size() == statement.tree_size && tree.root() != statement.root).then(|| {
            (
                None,
                FailureReason::MinimumIndex(format!(
                    "the tree of size {} has another root than the signed minimum index says",
                    statement.tree_size
                )),
            )
        })
    }

    fn check_checkpoint(
        &mut self,
        certificate: &Certificate,
        history_trusted: bool,
        trusted: &[AuditKey],
    ) {
        let note = match SignedNote::parse(&certificate.checkpoint) {
            Ok(note) => note,
            Err(e) => {
                self.report.checkpoint_signature = SignatureCheck::NotChecked {
                    reason: e.to_string(),
                };
                self.fail(None, FailureReason::Checkpoint(e.to_string()));
                return;
            }
        };
        let checkpoint = match note.checkpoint() {
            Ok(cp) => cp,
            Err(e) => {
                self.report.checkpoint_signature = SignatureCheck::NotChecked {
                    reason: e.to_string(),
                };
                self.fail(None, FailureReason::Checkpoint(e.to_string()));
                return;
            }
        };
        self.report.checkpoint = Some(CheckpointSummary {
            origin: checkpoint.origin.clone(),
            size: checkpoint.size,
            root: checkpoint.root,
            time: checkpoint.time.clone(),
        });
        if checkpoint.origin != certificate.origin {
            self.fail(
                None,
                FailureReason::Checkpoint(format!(
                    "origin {:?} is not the certificate's origin {:?}",
                    checkpoint.origin, certificate.origin
                )),
            );
        }

        let keys = note_keys(certificate, history_trusted, trusted, &checkpoint.origin);
        match verify_note(&note, &keys) {
            Ok(verified) => {
                let key_ids: Vec<KeyId> = verified.verified.iter().map(|(_, id)| *id).collect();
                match checkpoint_signers_in_window(certificate, &key_ids, &checkpoint.time) {
                    Ok(()) => {
                        self.report.checkpoint_signature = SignatureCheck::Valid { key_ids };
                    }
                    Err(reason) => {
                        self.report.checkpoint_signature = SignatureCheck::Invalid {
                            key_id: key_ids.first().copied(),
                            reason: reason.clone(),
                        };
                        self.fail(None, FailureReason::CheckpointSignature(reason));
                    }
                }
            }
            Err(e) => {
                let key_id = note.signatures().first().map(|s| s.key_id);
                self.report.checkpoint_signature = SignatureCheck::Invalid {
                    key_id,
                    reason: e.to_string(),
                };
                self.fail(None, FailureReason::CheckpointSignature(e.to_string()));
            }
        }

        let last_seq = certificate.found_range.last_seq;
        // An export asked to run to a seq holds everything up to it that the checkpoint signs: a
        // missing tail is never silent, as a missing head is not. (One asked for to the end may
        // stop short of a checkpoint signed while it was made: exports before this rule did.)
        let expected_last = certificate
            .requested_range
            .last_seq
            .map(|l| l.min(checkpoint.size));
        if let Some(expected_last) = expected_last
            && last_seq < expected_last
        {
            self.fail(
                Some(last_seq + 1),
                FailureReason::MissingTail {
                    expected_last,
                    found_last: last_seq,
                },
            );
        }
        if checkpoint.size < last_seq {
            self.fail(
                None,
                FailureReason::Checkpoint(format!(
                    "tree size {} is below the export's last seq {last_seq}",
                    checkpoint.size
                )),
            );
        } else if let Err(e) = verify_consistency(
            last_seq,
            checkpoint.size,
            &certificate.merkle_root,
            &checkpoint.root,
            &certificate.checkpoint_consistency,
        ) {
            self.fail(None, FailureReason::CheckpointConsistency(e.to_string()));
        }

        if let (Some(signed), Some(created)) = (
            parse_timestamp_millis(&checkpoint.time),
            parse_timestamp_millis(&certificate.created_at),
        ) {
            if signed > created {
                self.fail(
                    None,
                    FailureReason::Checkpoint(format!(
                        "signed at {}, after the certificate was created ({})",
                        checkpoint.time, certificate.created_at
                    )),
                );
            } else if created - signed > STALE_CHECKPOINT_MILLIS {
                self.report.warnings.push(format!(
                    "the checkpoint was signed {} minutes before the export was created; \
                     checkpoints are signed at least hourly, so a newer one should exist",
                    (created - signed) / 60_000
                ));
            }
        }
    }
}

/// A checkpoint is signed by a key valid at its time. The first checkpoint after a rotation is
/// co-signed by the key just retired (§8), after its `validTo`: that signature is a courtesy to
/// verifiers holding only the old key and is not required, but a key signing before its own
/// `validFrom`, or a checkpoint with no signature in a valid window, is a failure.
fn checkpoint_signers_in_window(
    certificate: &Certificate,
    key_ids: &[KeyId],
    time: &str,
) -> Result<(), String> {
    let Some(at) = parse_timestamp_millis(time) else {
        return Err(format!("checkpoint time {time:?} is unreadable"));
    };
    let mut in_window = false;
    for key_id in key_ids {
        let Some(record) = certificate.key_record(*key_id) else {
            // A trusted key from outside the history: no window to hold it to.
            in_window = true;
            continue;
        };
        if parse_timestamp_millis(&record.valid_from).is_none_or(|from| at < from) {
            return Err(format!(
                "key {key_id} signed at {time}, before its validity window ({})",
                record.valid_from
            ));
        }
        in_window |= record.valid_at(time);
    }
    if in_window {
        Ok(())
    } else {
        Err(format!(
            "no key valid at {time} signed it (only keys retired before then)"
        ))
    }
}

/// The keys a note of the bundle (checkpoint, minimum index) may be signed with. Keys from the
/// key history count only when the certificate itself is trusted; the keys given out of band
/// always count, under the log's origin as key name.
fn note_keys(
    certificate: &Certificate,
    history_trusted: bool,
    trusted: &[AuditKey],
    origin: &str,
) -> Vec<VerifierKey> {
    let mut keys: Vec<VerifierKey> = Vec::new();
    if history_trusted {
        keys.extend(
            certificate
                .key_history
                .iter()
                .filter_map(|r| r.verifier_key().ok()),
        );
    }
    for key in trusted {
        if let Ok(vk) = VerifierKey::new(origin.to_owned(), key.clone())
            && !keys
                .iter()
                .any(|k| k.name() == vk.name() && k.key_id() == vk.key_id())
        {
            keys.push(vk);
        }
    }
    keys
}

/// The key id a certificate claims to be signed with, if it can be read at all.
fn claimed_signature_key(certificate_json: &[u8]) -> Option<KeyId> {
    let value: serde_json::Value = serde_json::from_slice(certificate_json).ok()?;
    value.get("signature")?.get("keyId")?.as_str()?.parse().ok()
}

/// Verifies a bundle whose `log.jsonl` is read from `log` (streamed).
pub fn verify_bundle(
    mut log: impl Read,
    certificate_json: &[u8],
    trusted_keys: &[AuditKey],
) -> io::Result<BundleReport> {
    let mut verifier = BundleVerifier::new(certificate_json, trusted_keys);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match log.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => verifier.update(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(verifier.finish())
}
