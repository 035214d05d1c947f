//! A warrant's evidence certificate (`writ.evidence.v1`): the documents and their hashes, every
//! review and decision with who and when, the oath, every signature record, the seal events,
//! the execution window against the execution time, the return, and the audit entries that
//! recorded all of it with inclusion proofs to one signed checkpoint — signed by the agency's
//! P-256 key, so that a court or the defense checks it offline, with no Writ server.
//!
//! The signature is ECDSA P-256 / SHA-256 over the RFC 8785 canonical JSON of the `certificate`
//! member, the construction of signature records and export certificates.
//! `docs/EVIDENCE-CERTIFICATE.md` is its specification.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::canonical;
use crate::certificate::SIGNATURE_ALGORITHM;
use crate::checkpoint::{Checkpoint, SignedNote, verify_note};
use crate::entry::Entry;
use crate::error::{CanonicalError, KeyError};
use crate::hash::Hash;
use crate::keys::{AuditKey, KeyId, VerifierKey};
use crate::proof::InclusionProof;
use crate::signature_record::{self, RecordSignature, SignatureEnvelope};
use crate::time::{is_valid_timestamp, parse_timestamp_millis};
use crate::timestamp::inspect_token;

/// Value of the certificate's `format` member.
pub const EVIDENCE_FORMAT: &str = "writ.evidence.v1";

/// The warrant the certificate is about, as it stands when the certificate is made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarrantFacts {
    pub id: String,
    pub number: String,
    pub court: String,
    /// The warrant type's key and name (`search`, "Search warrant").
    #[serde(rename = "type")]
    pub type_key: String,
    pub type_name: String,
    /// The court's IANA time zone, in which deadlines and daytime windows are counted.
    pub time_zone: String,
    pub state: String,
    /// The affiant.
    pub author_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_warrant_id: Option<String>,
    /// SHA-256 (hex) of the canonical issued document, once issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_document_sha256: Option<String>,
    /// The affidavit version the issued warrant rests on, and its SHA-256 (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sworn_affidavit_version: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sworn_affidavit_sha256: Option<String>,
}

/// A document of the warrant (uploaded, or made by the server for signing).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DocumentFacts {
    pub id: String,
    /// `attachment`, `affidavit` (the affiant's sworn affidavit) or `warrant` (the warrant the
    /// judge signs).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    pub content_type: String,
    /// 1–4 (4: criminal-justice information).
    pub classification: i16,
    /// SHA-256 (hex) of the exact plaintext bytes, as `sha256sum` prints.
    pub sha256: String,
    pub size: u64,
    pub uploaded_at: String,
    pub uploaded_by: String,
    /// Crypto-erased (the hash and size stay as the record of what was destroyed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<String>,
    /// Soft-deleted: hidden from readers of the warrant, kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
}

/// An immutable affidavit version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AffidavitVersionFacts {
    pub number: i32,
    /// SHA-256 (hex) of the affidavit text.
    pub sha256: String,
    /// Why the version was made (`submitted`, `resubmitted`, `amendment`, …).
    pub reason: String,
    pub created_at: String,
    pub created_by: String,
}

/// One step of the warrant's life with who took it and when: submission, each review,
/// claim, return for revision, issue or rejection, execution, return, withdrawal, and the seal
/// events (sealed, renewed, unsealed, lapsed). `auditSeq` is the entry that recorded it, which
/// is among `audit.entries`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepFacts {
    /// The audit action, e.g. `warrant.supervisor_approved`, `warrant.sealed`.
    pub action: String,
    /// The acting user's id, absent for the system (expiry, a seal lapsing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The acting user's name (and badge or judicial id) as the agency had it when the
    /// certificate was made: for the reader, not covered by the audit entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub role: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub audit_seq: u64,
}

/// The execution window against the execution time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutionFacts {
    pub issued_at: String,
    /// Execute before (absent: no deadline for this type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// The daytime window in the court's time (`06:00-22:00`), absent when any hour is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daytime: Option<String>,
    pub night_service: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executed_at: Option<String>,
    /// Executed before the deadline (absent while not executed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_deadline: Option<bool>,
}

/// The return filed to the court.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReturnFacts {
    /// `inventory` or `not_executed`.
    pub kind: String,
    pub returned_at: String,
    pub returned_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An oath administered over a remote session: the oath record as the court keeps it
/// (affiant identity step, judge location, oath text, time, recording reference and SHA-256,
/// transcript certification).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OathFacts {
    pub session_id: String,
    pub record: Value,
}

/// An audit entry with its inclusion proof in the tree of the certificate's checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProvenEntry {
    pub entry: Entry,
    pub inclusion_proof: InclusionProof,
}

/// The audit entries about the warrant (its reads left out) and the signed checkpoint whose
/// tree holds all of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditFacts {
    /// The C2SP signed note of the checkpoint, as text.
    pub checkpoint: String,
    pub tree_size: u64,
    pub entries: Vec<ProvenEntry>,
}

/// What the agency signs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvidenceCertificate {
    /// Always [`EVIDENCE_FORMAT`].
    pub format: String,
    pub certificate_id: String,
    pub agency_id: String,
    /// When the certificate was made (server UTC, `YYYY-MM-DDTHH:MM:SS.mmmZ`).
    pub issued_at: String,
    pub warrant: WarrantFacts,
    pub documents: Vec<DocumentFacts>,
    pub affidavit_versions: Vec<AffidavitVersionFacts>,
    pub steps: Vec<StepFacts>,
    pub oaths: Vec<OathFacts>,
    pub signatures: Vec<SignatureEnvelope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionFacts>,
    #[serde(rename = "return", default, skip_serializing_if = "Option::is_none")]
    pub return_filed: Option<ReturnFacts>,
    pub audit: AuditFacts,
}

/// A certificate as served and exported: the certificate and the agency's signature over it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedEvidenceCertificate {
    pub certificate: EvidenceCertificate,
    pub signature: RecordSignature,
}

/// Why a certificate cannot be read, assembled or hashed. Verification failures are not
/// errors: [`verify_certificate`] reports each check in an [`EvidenceReport`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EvidenceError {
    #[error("not an evidence certificate: {0}")]
    Json(String),
    #[error("the certificate has no format member; expected {EVIDENCE_FORMAT:?}")]
    MissingFormat,
    #[error("unknown evidence certificate format {0:?}; expected {EVIDENCE_FORMAT:?}")]
    UnknownFormat(String),
    #[error("malformed evidence certificate: {0}")]
    Malformed(String),
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// The bytes the agency signs: the RFC 8785 canonical JSON of `certificate`.
pub fn signing_bytes(certificate: &EvidenceCertificate) -> Result<Vec<u8>, EvidenceError> {
    Ok(canonical::to_canonical_vec(certificate)?)
}

impl SignedEvidenceCertificate {
    /// The certificate with the agency's signature over [`signing_bytes`]; `sig_bytes` may be
    /// DER or raw `r ‖ s` (what the KMS returned).
    pub fn assemble(
        certificate: EvidenceCertificate,
        key_id: KeyId,
        key_version: i32,
        sig_bytes: &[u8],
    ) -> Result<SignedEvidenceCertificate, EvidenceError> {
        Ok(SignedEvidenceCertificate {
            certificate,
            signature: RecordSignature::new(key_id, key_version, sig_bytes)?,
        })
    }

    /// Pretty-printed JSON, as served and exported.
    pub fn to_json(&self) -> String {
        // Strings, integers, booleans and JSON values that came from JSON: serializing cannot
        // fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses a served or exported certificate. The format is checked first, so a certificate
    /// of another version is reported as such rather than as unknown members. Unknown members
    /// are refused everywhere. A certificate not in the one form [`signing_bytes`] gives (a
    /// `null` where an optional member must be absent) is refused: someone checking by hand
    /// canonicalises the certificate as it is in the file, and both must agree on what was
    /// signed.
    pub fn from_json(bytes: &[u8]) -> Result<SignedEvidenceCertificate, EvidenceError> {
        crate::unique::check_unique_members(bytes).map_err(EvidenceError::Json)?;
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| EvidenceError::Json(e.to_string()))?;
        let certificate = value
            .get("certificate")
            .ok_or_else(|| EvidenceError::Json("no certificate member".into()))?;
        match certificate.get("format") {
            None => return Err(EvidenceError::MissingFormat),
            Some(Value::String(f)) if f == EVIDENCE_FORMAT => {}
            Some(Value::String(f)) => return Err(EvidenceError::UnknownFormat(f.clone())),
            Some(other) => return Err(EvidenceError::UnknownFormat(other.to_string())),
        }
        let as_found = canonical::canonicalize(certificate)?;
        let signed: SignedEvidenceCertificate =
            serde_json::from_value(value).map_err(|e| EvidenceError::Json(e.to_string()))?;
        if signing_bytes(&signed.certificate)? != as_found {
            return Err(EvidenceError::Malformed(
                "the certificate is not in its one form: a member holds null where it must be \
                 absent"
                    .into(),
            ));
        }
        Ok(signed)
    }

    /// SHA-256 of the RFC 8785 canonical JSON of the whole signed certificate (certificate and
    /// signature): one name for the certificate however its JSON is formatted, printed on
    /// every page of its PDF (`jq -jcS . certificate.json | sha256sum`).
    pub fn sha256(&self) -> Result<Hash, EvidenceError> {
        Ok(Hash::of(&canonical::to_canonical_vec(self)?))
    }
}

/// The outcome of one check of [`verify_certificate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceCheck {
    pub ok: bool,
    /// What the check established, or why it failed.
    pub message: String,
}

impl EvidenceCheck {
    fn pass(message: impl Into<String>) -> EvidenceCheck {
        EvidenceCheck {
            ok: true,
            message: message.into(),
        }
    }

    fn fail(message: impl Into<String>) -> EvidenceCheck {
        EvidenceCheck {
            ok: false,
            message: message.into(),
        }
    }

    /// Passes with `ok` when `problems` is empty, else fails listing them (the first few).
    fn from_problems(problems: Vec<String>, ok: impl FnOnce() -> String) -> EvidenceCheck {
        const SHOWN: usize = 5;
        if problems.is_empty() {
            return EvidenceCheck::pass(ok());
        }
        let mut message = problems
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        if problems.len() > SHOWN {
            message.push_str(&format!("; and {} more", problems.len() - SHOWN));
        }
        EvidenceCheck::fail(message)
    }
}

/// Every check of a certificate, each reported on its own (`docs/EVIDENCE-CERTIFICATE.md` §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceReport {
    /// (a) Format, timestamps, ids and hashes are well formed.
    pub form: EvidenceCheck,
    /// (b) The agency signature over the certificate, with the key its `keyId` names.
    pub agency_signature: EvidenceCheck,
    /// (c) The checkpoint note verifies with the agency key and has `audit.treeSize`.
    pub checkpoint: EvidenceCheck,
    /// (d) Every audit entry: its hash, its inclusion proof in the checkpoint's tree, its order
    /// and that it is about this warrant.
    pub audit_entries: EvidenceCheck,
    /// (e) Every step names an included entry with the step's action.
    pub steps: EvidenceCheck,
    /// (f) Every signature record: form, intent, agency signature, warrant, audit entry and
    /// document.
    pub signatures: EvidenceCheck,
    /// (g) The sworn affidavit hash is one of the listed affidavit versions.
    pub sworn_affidavit: EvidenceCheck,
    /// (h) `withinDeadline` agrees with the execution time and the deadline.
    pub execution: EvidenceCheck,
    /// (i) The issued document is the one the issue's entry names, issued by the judge who
    /// signed the warrant document.
    pub issued_document: EvidenceCheck,
}

impl EvidenceReport {
    /// The checks in order, with the names `writ-verify certificate` prints.
    pub fn checks(&self) -> [(&'static str, &EvidenceCheck); 9] {
        [
            ("Certificate form", &self.form),
            ("Agency signature", &self.agency_signature),
            ("Checkpoint", &self.checkpoint),
            ("Audit entries", &self.audit_entries),
            ("Steps", &self.steps),
            ("Signature records", &self.signatures),
            ("Sworn affidavit", &self.sworn_affidavit),
            ("Execution window", &self.execution),
            ("Issued document", &self.issued_document),
        ]
    }

    /// Whether every check passed.
    pub fn verified(&self) -> bool {
        self.checks().iter().all(|(_, c)| c.ok)
    }

    /// Names of the checks that failed.
    pub fn failed(&self) -> Vec<&'static str> {
        self.checks()
            .iter()
            .filter(|(_, c)| !c.ok)
            .map(|(name, _)| *name)
            .collect()
    }
}

/// Verifies a certificate with the agency's public keys (one or several versions; each
/// signature uses the key its key id names). Every check runs, whatever the others found.
pub fn verify_certificate(signed: &SignedEvidenceCertificate, keys: &[AuditKey]) -> EvidenceReport {
    let cert = &signed.certificate;
    let (checkpoint_check, checkpoint) = check_checkpoint(cert, keys);
    let included: BTreeMap<u64, &Entry> = cert
        .audit
        .entries
        .iter()
        .map(|p| (p.entry.seq, &p.entry))
        .collect();
    EvidenceReport {
        form: check_form(cert),
        agency_signature: match check_record_signature(&signed.signature, keys, || {
            signing_bytes(cert).map_err(|e| e.to_string())
        }) {
            Ok(message) => EvidenceCheck::pass(message),
            Err(message) => EvidenceCheck::fail(message),
        },
        checkpoint: checkpoint_check,
        audit_entries: check_entries(cert, checkpoint.as_ref()),
        steps: check_steps(cert, &included),
        signatures: check_signatures(cert, keys, &included),
        sworn_affidavit: check_sworn_affidavit(cert),
        execution: check_execution(cert),
        issued_document: check_issued_document(cert, &included),
    }
}

fn is_hex_sha256(text: &str) -> bool {
    Hash::from_hex(text).is_ok()
}

/// (a)
fn check_form(cert: &EvidenceCertificate) -> EvidenceCheck {
    let mut problems = Vec::new();
    if cert.format != EVIDENCE_FORMAT {
        problems.push(format!(
            "format is {:?}, expected {EVIDENCE_FORMAT:?}",
            cert.format
        ));
    }
    let w = &cert.warrant;
    let mut times: Vec<(String, &str)> = vec![("issuedAt".into(), &cert.issued_at)];
    let mut ids: Vec<(String, &str)> = vec![
        ("certificateId".into(), &cert.certificate_id),
        ("agencyId".into(), &cert.agency_id),
        ("warrant.id".into(), &w.id),
        ("warrant.number".into(), &w.number),
        ("warrant.court".into(), &w.court),
        ("warrant.type".into(), &w.type_key),
        ("warrant.state".into(), &w.state),
        ("warrant.authorId".into(), &w.author_id),
        ("audit.checkpoint".into(), &cert.audit.checkpoint),
    ];
    let mut hashes: Vec<(String, &str)> = Vec::new();
    if let Some(h) = &w.issued_document_sha256 {
        hashes.push(("warrant.issuedDocumentSha256".into(), h));
    }
    if let Some(h) = &w.sworn_affidavit_sha256 {
        hashes.push(("warrant.swornAffidavitSha256".into(), h));
    }
    let mut document_ids = BTreeSet::new();
    for (i, d) in cert.documents.iter().enumerate() {
        ids.push((format!("documents[{i}].id"), &d.id));
        ids.push((format!("documents[{i}].kind"), &d.kind));
        hashes.push((format!("documents[{i}].sha256"), &d.sha256));
        times.push((format!("documents[{i}].uploadedAt"), &d.uploaded_at));
        if let Some(t) = &d.deleted_at {
            times.push((format!("documents[{i}].deletedAt"), t));
        }
        if let Some(t) = &d.erased_at {
            times.push((format!("documents[{i}].erasedAt"), t));
        }
        if !document_ids.insert(d.id.as_str()) {
            problems.push(format!("document {} is listed twice", d.id));
        }
    }
    for (i, v) in cert.affidavit_versions.iter().enumerate() {
        hashes.push((format!("affidavitVersions[{i}].sha256"), &v.sha256));
        times.push((format!("affidavitVersions[{i}].createdAt"), &v.created_at));
    }
    for (i, s) in cert.steps.iter().enumerate() {
        ids.push((format!("steps[{i}].action"), &s.action));
        times.push((format!("steps[{i}].at"), &s.at));
    }
    for (i, o) in cert.oaths.iter().enumerate() {
        ids.push((format!("oaths[{i}].sessionId"), &o.session_id));
    }
    if let Some(e) = &cert.execution {
        times.push(("execution.issuedAt".into(), &e.issued_at));
        if let Some(t) = &e.deadline {
            times.push(("execution.deadline".into(), t));
        }
        if let Some(t) = &e.executed_at {
            times.push(("execution.executedAt".into(), t));
        }
    }
    if let Some(r) = &cert.return_filed {
        ids.push(("return.kind".into(), &r.kind));
        times.push(("return.returnedAt".into(), &r.returned_at));
    }
    for (name, value) in ids {
        if value.is_empty() {
            problems.push(format!("{name} is empty"));
        }
    }
    for (name, value) in times {
        if !is_valid_timestamp(value) {
            problems.push(format!("{name} {value:?} is not YYYY-MM-DDTHH:MM:SS.mmmZ"));
        }
    }
    for (name, value) in hashes {
        if !is_hex_sha256(value) {
            problems.push(format!("{name} is not 64 lowercase hex digits"));
        }
    }
    EvidenceCheck::from_problems(problems, || {
        format!(
            "valid ({}, {} documents, {} steps, {} signatures, {} audit entries)",
            cert.format,
            cert.documents.len(),
            cert.steps.len(),
            cert.signatures.len(),
            cert.audit.entries.len()
        )
    })
}

/// (b), and the agency signature of each signature record in (f): ECDSA P-256 over `message`
/// with the given key whose id the signature names.
fn check_record_signature(
    signature: &RecordSignature,
    keys: &[AuditKey],
    message: impl FnOnce() -> Result<Vec<u8>, String>,
) -> Result<String, String> {
    if signature.algorithm != SIGNATURE_ALGORITHM {
        return Err(format!(
            "unsupported signature algorithm {:?}; expected {SIGNATURE_ALGORITHM:?}",
            signature.algorithm
        ));
    }
    let signed_by = signature.key_id;
    let Some(key) = keys.iter().find(|k| k.key_id() == signed_by) else {
        let given: Vec<String> = keys.iter().map(|k| k.key_id().to_string()).collect();
        return Err(match given.as_slice() {
            [] => format!("signed by key {signed_by}, and no public key was given"),
            [one] => format!("signed by key {signed_by}, the given public key is key {one}"),
            many => format!(
                "signed by key {signed_by}, the given public keys are {}",
                many.join(", ")
            ),
        });
    };
    let der = BASE64
        .decode(signature.value.as_bytes())
        .map_err(|_| "the signature value is not base64".to_owned())?;
    let sig = p256::ecdsa::Signature::from_der(&der)
        .map_err(|_| "the signature value is not a DER ECDSA signature".to_owned())?;
    let message = message()?;
    key.verify_signature(&message, &sig).map_err(|_| {
        format!("the signature does not verify with key {signed_by}: changed after it was signed")
    })?;
    Ok(format!(
        "valid (key id {signed_by}, key version {})",
        signature.key_version
    ))
}

/// (c). Returns the checkpoint when its note parses, verified or not, so the proofs are still
/// compared with what it says.
fn check_checkpoint(
    cert: &EvidenceCertificate,
    keys: &[AuditKey],
) -> (EvidenceCheck, Option<Checkpoint>) {
    let note = match SignedNote::parse(&cert.audit.checkpoint) {
        Ok(note) => note,
        Err(e) => return (EvidenceCheck::fail(format!("the note: {e}")), None),
    };
    let checkpoint = match note.checkpoint() {
        Ok(cp) => cp,
        Err(e) => return (EvidenceCheck::fail(format!("the note's body: {e}")), None),
    };
    let mut problems = Vec::new();
    // The key name is the origin (AUDIT-FORMAT §8).
    let verifiers: Vec<VerifierKey> = keys
        .iter()
        .filter_map(|k| VerifierKey::new(checkpoint.origin.clone(), k.clone()).ok())
        .collect();
    let verified = match verify_note(&note, &verifiers) {
        Ok(v) => v
            .verified
            .iter()
            .map(|(_, id)| id.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => {
            problems.push(e.to_string());
            String::new()
        }
    };
    if checkpoint.size != cert.audit.tree_size {
        problems.push(format!(
            "the checkpoint's tree size is {}, audit.treeSize says {}",
            checkpoint.size, cert.audit.tree_size
        ));
    }
    // Every Writ log's origin ends in /audit/<agencyId>: the checkpoint is this agency's log.
    if !checkpoint
        .origin
        .ends_with(&format!("/audit/{}", cert.agency_id))
    {
        problems.push(format!(
            "the checkpoint is of log {}, not of agency {}",
            checkpoint.origin, cert.agency_id
        ));
    }
    let check = EvidenceCheck::from_problems(problems, || {
        format!(
            "valid (log {}, tree size {}, root {}, signed {}, key id {verified})",
            checkpoint.origin,
            checkpoint.size,
            checkpoint.root.to_base64(),
            checkpoint.time
        )
    });
    (check, Some(checkpoint))
}

/// (d)
fn check_entries(cert: &EvidenceCertificate, checkpoint: Option<&Checkpoint>) -> EvidenceCheck {
    let entries = &cert.audit.entries;
    let mut problems = Vec::new();
    if entries.is_empty() {
        problems.push("the certificate lists no audit entries".to_owned());
    }
    let documents: BTreeSet<&str> = cert.documents.iter().map(|d| d.id.as_str()).collect();
    let (tree_size, root) = match checkpoint {
        Some(cp) => (cp.size, Some(cp.root)),
        None => {
            problems.push(
                "the checkpoint cannot be read, so no proof can be checked against its root"
                    .to_owned(),
            );
            (cert.audit.tree_size, None)
        }
    };
    let mut previous: Option<u64> = None;
    for proven in entries {
        let entry = &proven.entry;
        let proof = &proven.inclusion_proof;
        let seq = entry.seq;
        if let Some(prev) = previous
            && seq <= prev
        {
            problems.push(format!(
                "seq {seq} follows seq {prev}: entries must be in increasing seq, each once"
            ));
        }
        previous = Some(seq);
        if let Err(e) = entry.validate() {
            problems.push(format!("seq {seq}: {e}"));
        }
        match entry.compute_hash() {
            Ok(h) if h == entry.hash => {}
            Ok(h) => problems.push(format!(
                "seq {seq}: recorded hash {}, its content hashes to {h} (entry modified)",
                entry.hash
            )),
            Err(e) => problems.push(format!("seq {seq}: {e}")),
        }
        if entry.actor.agency_id != cert.agency_id {
            problems.push(format!(
                "seq {seq} is an entry of agency {}",
                entry.actor.agency_id
            ));
        }
        let about_warrant = entry.resource.get("warrantId").and_then(Value::as_str)
            == Some(cert.warrant.id.as_str());
        let about_document = entry
            .resource
            .get("documentId")
            .and_then(Value::as_str)
            .is_some_and(|id| documents.contains(id));
        if !about_warrant && !about_document {
            problems.push(format!(
                "seq {seq} ({}) is about neither warrant {} nor one of its documents",
                entry.action, cert.warrant.id
            ));
        }
        if proof.seq != seq {
            problems.push(format!(
                "seq {seq}: its inclusion proof is for seq {}",
                proof.seq
            ));
        }
        if proof.tree_size != tree_size {
            problems.push(format!(
                "seq {seq}: its inclusion proof is for tree size {}, the checkpoint's is {tree_size}",
                proof.tree_size
            ));
        }
        if root.is_some_and(|r| r != proof.root_hash) {
            problems.push(format!(
                "seq {seq}: its inclusion proof leads to another root than the checkpoint's"
            ));
        }
        if let Err(e) = proof.verify_entry_hash(&entry.hash) {
            problems.push(format!("seq {seq}: inclusion proof: {e}"));
        }
    }
    EvidenceCheck::from_problems(problems, || {
        let range = match (entries.first(), entries.last()) {
            (Some(first), Some(last)) => {
                format!(", seq {} to {}", first.entry.seq, last.entry.seq)
            }
            _ => String::new(),
        };
        format!(
            "{} entries{range}, each hash recomputed and included in the tree of size {tree_size}",
            entries.len()
        )
    })
}

/// (e)
fn check_steps(cert: &EvidenceCertificate, included: &BTreeMap<u64, &Entry>) -> EvidenceCheck {
    let mut problems = Vec::new();
    for step in &cert.steps {
        let seq = step.audit_seq;
        match included.get(&seq) {
            None => problems.push(format!(
                "step {} names audit seq {seq}, which is not among the certificate's entries",
                step.action
            )),
            Some(entry) if entry.action != step.action => problems.push(format!(
                "step {} names audit seq {seq}, which records {}",
                step.action, entry.action
            )),
            Some(entry) => {
                // Who, in which role and when: each as the entry records it.
                if step.by != entry.actor.user_id {
                    problems.push(format!(
                        "step {} says it was taken by {}, audit seq {seq} by {}",
                        step.action,
                        step.by.as_deref().unwrap_or("the system"),
                        entry.actor.user_id.as_deref().unwrap_or("the system")
                    ));
                }
                if step.role != entry.actor.role {
                    problems.push(format!(
                        "step {} says role {}, audit seq {seq} records role {}",
                        step.action, step.role, entry.actor.role
                    ));
                }
                if step.at != entry.timestamp {
                    problems.push(format!(
                        "step {} says {}, audit seq {seq} records {}",
                        step.action, step.at, entry.timestamp
                    ));
                }
            }
        }
    }
    EvidenceCheck::from_problems(problems, || {
        format!(
            "{} steps, each recorded by the audit entry it names",
            cert.steps.len()
        )
    })
}

/// (f)
fn check_signatures(
    cert: &EvidenceCertificate,
    keys: &[AuditKey],
    included: &BTreeMap<u64, &Entry>,
) -> EvidenceCheck {
    let mut problems = Vec::new();
    let mut unrecorded = 0;
    let mut stamped = 0;
    for envelope in &cert.signatures {
        let record = &envelope.record;
        let id = &record.record_id;
        if let Err(e) = record.validate() {
            problems.push(format!("record {id}: {e}"));
        }
        if let Err(e) = record.check_intent() {
            problems.push(format!("record {id}: {e}"));
        }
        if let Err(e) = check_record_signature(&envelope.signature, keys, || {
            signature_record::signing_bytes(record).map_err(|e| e.to_string())
        }) {
            problems.push(format!("record {id}: agency signature: {e}"));
        }
        // The token is outside the record's own signature; a present one must at least be
        // an intact token over this signature (whether its TSA is trusted is the reader's
        // question: `writ-verify certificate --tsa-cert`).
        if envelope.timestamp.is_some() {
            stamped += 1;
            let token = envelope
                .timestamp_token()
                .and_then(|token| Ok(inspect_token(&token, &envelope.timestamp_digest()?)?));
            if let Err(e) = token {
                problems.push(format!("record {id}: timestamp: {e}"));
            }
        }
        if record.warrant_id != cert.warrant.id {
            problems.push(format!(
                "record {id} is about warrant {}",
                record.warrant_id
            ));
        }
        if record.agency_id != cert.agency_id {
            problems.push(format!("record {id} is of agency {}", record.agency_id));
        }
        match &record.audit {
            None => unrecorded += 1,
            Some(audit) => match included.get(&audit.seq) {
                None => problems.push(format!(
                    "record {id} names audit seq {}, which is not among the certificate's entries",
                    audit.seq
                )),
                Some(entry) if entry.hash != audit.entry_hash => problems.push(format!(
                    "record {id} names audit seq {} with hash {}, the entry's hash is {}",
                    audit.seq, audit.entry_hash, entry.hash
                )),
                Some(_) => {}
            },
        }
        let doc = &record.document;
        let listed = cert.documents.iter().find(|d| d.id == doc.id);
        match listed {
            None => problems.push(format!(
                "record {id} signs document {}, which is not listed",
                doc.id
            )),
            Some(d) if d.sha256 != doc.sha256.to_hex() || d.size != doc.size => {
                problems.push(format!(
                    "record {id} signs document {} with SHA-256 {} ({} bytes), the listed document has SHA-256 {} ({} bytes)",
                    doc.id,
                    doc.sha256.to_hex(),
                    doc.size,
                    d.sha256,
                    d.size
                ))
            }
            Some(_) => {}
        }
    }
    EvidenceCheck::from_problems(problems, || {
        let mut message = format!(
            "{} signature records, each valid, signed by the agency and about a listed document",
            cert.signatures.len()
        );
        if stamped > 0 {
            message.push_str(&format!(
                " ({stamped} with an intact RFC 3161 timestamp token)"
            ));
        }
        if unrecorded > 0 {
            message.push_str(&format!(" ({unrecorded} without an audit reference)"));
        }
        message
    })
}

/// (g)
fn check_sworn_affidavit(cert: &EvidenceCertificate) -> EvidenceCheck {
    let w = &cert.warrant;
    let Some(sha256) = &w.sworn_affidavit_sha256 else {
        return EvidenceCheck::pass("no sworn affidavit recorded");
    };
    let found = cert
        .affidavit_versions
        .iter()
        .find(|v| &v.sha256 == sha256 && w.sworn_affidavit_version.is_none_or(|n| n == v.number));
    match found {
        Some(v) => EvidenceCheck::pass(format!(
            "version {} (SHA-256 {sha256}) is a listed affidavit version",
            v.number
        )),
        None => EvidenceCheck::fail(format!(
            "the sworn affidavit{} has SHA-256 {sha256}, which no listed affidavit version has",
            w.sworn_affidavit_version
                .map(|n| format!(" (version {n})"))
                .unwrap_or_default()
        )),
    }
}

/// (i) Ties `issuedDocumentSha256` to the chain and to the judge's signature: the included
/// `warrant.approved` entry records that document, and its `judgeSignatureId` is a listed
/// signature record of a warrant document by the same judge who issued.
fn check_issued_document(
    cert: &EvidenceCertificate,
    included: &BTreeMap<u64, &Entry>,
) -> EvidenceCheck {
    let Some(sha256) = &cert.warrant.issued_document_sha256 else {
        return EvidenceCheck::pass("not issued");
    };
    let named = format!("sha256:{sha256}");
    let Some(entry) = included.values().find(|e| {
        e.action == "warrant.approved"
            && e.detail.get("documentHash").and_then(Value::as_str) == Some(named.as_str())
    }) else {
        return EvidenceCheck::fail(format!(
            "no included warrant.approved entry records the issued document {sha256}"
        ));
    };
    let seq = entry.seq;
    let Some(signature_id) = entry.detail.get("judgeSignatureId").and_then(Value::as_str) else {
        return EvidenceCheck::fail(format!(
            "the issue's entry (seq {seq}) names no judge signature"
        ));
    };
    let Some(signed) = cert
        .signatures
        .iter()
        .find(|s| s.record.record_id == signature_id)
    else {
        return EvidenceCheck::fail(format!(
            "the judge signature {signature_id} of the issue's entry (seq {seq}) is not among \
             the signature records"
        ));
    };
    let signer = &signed.record.signer;
    if entry.actor.user_id.as_deref() != Some(signer.user_id.as_str()) || signer.role != "judge" {
        return EvidenceCheck::fail(format!(
            "signature record {signature_id} is by {} ({}), the issue's entry (seq {seq}) by {}",
            signer.user_id,
            signer.role,
            entry.actor.user_id.as_deref().unwrap_or("the system")
        ));
    }
    let kind = cert
        .documents
        .iter()
        .find(|d| d.id == signed.record.document.id)
        .map(|d| d.kind.as_str());
    if kind != Some("warrant") {
        return EvidenceCheck::fail(format!(
            "signature record {signature_id} signs document {}, which is no listed warrant \
             document",
            signed.record.document.id
        ));
    }
    EvidenceCheck::pass(format!(
        "SHA-256 {sha256} is what the issue's entry (seq {seq}) records, issued by the judge \
         who signed the warrant (record {signature_id})"
    ))
}

/// (h)
fn check_execution(cert: &EvidenceCertificate) -> EvidenceCheck {
    let Some(e) = &cert.execution else {
        return EvidenceCheck::pass("no execution window (not issued)");
    };
    match (&e.executed_at, &e.deadline) {
        (None, _) if e.within_deadline.is_some() => {
            EvidenceCheck::fail("withinDeadline is given, but the warrant was not executed")
        }
        (None, Some(deadline)) => {
            EvidenceCheck::pass(format!("not executed; execute before {deadline}"))
        }
        (None, None) => EvidenceCheck::pass("not executed; no deadline"),
        (Some(executed), None) => {
            EvidenceCheck::pass(format!("executed {executed}; no deadline for this type"))
        }
        (Some(executed), Some(deadline)) => {
            let (Some(at), Some(before)) = (
                parse_timestamp_millis(executed),
                parse_timestamp_millis(deadline),
            ) else {
                return EvidenceCheck::fail(
                    "executedAt or deadline is not YYYY-MM-DDTHH:MM:SS.mmmZ",
                );
            };
            let within = at < before;
            let words = if within { "before" } else { "not before" };
            match e.within_deadline {
                Some(said) if said == within => EvidenceCheck::pass(format!(
                    "executed {executed}, {words} the deadline {deadline}"
                )),
                Some(said) => EvidenceCheck::fail(format!(
                    "withinDeadline is {said}, but executed {executed} is {words} the deadline {deadline}"
                )),
                None => EvidenceCheck::fail(format!(
                    "withinDeadline is absent, but executed {executed} is {words} the deadline {deadline}"
                )),
            }
        }
    }
}

/// A complete, valid sample certificate signed with the fixtures' test key (feature
/// `fixtures`), for this crate's tests, `writ-verify`'s and the PDF's.
#[cfg(feature = "fixtures")]
pub mod sample {
    use p256::ecdsa::SigningKey;
    use serde_json::{Map, json};

    use super::*;
    use crate::entry::{Actor, Outcome, PendingEvent, genesis_hash};
    use crate::fixtures::{
        TEST_AGENCY_ID, TEST_ORIGIN, audit_key, sample_event, sample_time, sign_der,
        signed_checkpoint, test_signing_key,
    };
    use crate::merkle;
    use crate::signature_record::{
        AuditReference, Authentication, Intent, SIGNATURE_RECORD_FORMAT, SignatureRecord,
        SignedDocument, Signer,
    };

    pub const WARRANT_ID: &str = "9e2a4d61-3b7c-4f08-a1d5-6c8e0f2b7a43";
    pub const OFFICER: &str = "5b8e2c1a-7d3f-4e9b-a2c6-1f4d8e7b3a90";
    pub const SUPERVISOR: &str = "8c2f4a6e-1b3d-4c5e-9f7a-2d4b6c8e0a13";
    pub const PROSECUTOR: &str = "2e4a6c8f-3b5d-4f7a-8c1e-5d7f9b2c4e60";
    pub const JUDGE: &str = "c3a1e5f7-2d4b-4a6c-8e0f-1b3d5f7a9c2e";
    pub const AFFIDAVIT_DOC: &str = "a1f0c2d4-6e8b-4a1c-9d3e-5f7a9b1c3d5e";
    pub const PHOTO_DOC: &str = "b2e1d3f5-7a9c-4b2d-8e4f-6a8c0d2e4f61";
    pub const WARRANT_DOC: &str = "d7f0a2c4-5e6b-4d8a-9c1e-3f5a7b9d1e2c";
    pub const OATH_SESSION: &str = "5a7c9e1b-3d5f-4a7c-9e1b-3d5f7a9c1e3b";
    /// The judge's signature record on the warrant document.
    pub const JUDGE_RECORD: &str = "7c1e3a5b-9d2f-4b6a-8c0e-2a4c6e8f0b13";
    /// Size of the sample log: the checkpoint's tree size.
    pub const TREE_SIZE: u64 = 32;
    /// Sample affidavit text, version 1.
    pub const AFFIDAVIT_TEXT: &str =
        "On 2026-11-20 a confidential informant bought a handgun at 1200 Elm St (rear).";

    /// The certificate with the bytes of the documents it lists.
    #[derive(Clone, Debug)]
    pub struct SampleEvidence {
        pub signed: SignedEvidenceCertificate,
        /// (document id, exact bytes), in the order of `certificate.documents`.
        pub documents: Vec<(String, Vec<u8>)>,
        /// The issued document (the service copy's `issued-warrant.json`): not the warrant
        /// document the judge signed, since it names that signature.
        pub issued_document: Vec<u8>,
    }

    /// Signs (or re-signs) `certificate` with `sk` as key version 3.
    pub fn sign_evidence(
        certificate: EvidenceCertificate,
        sk: &SigningKey,
    ) -> SignedEvidenceCertificate {
        let message = signing_bytes(&certificate)
            .unwrap_or_else(|e| panic!("fixture certificate canonicalizes: {e}"));
        let key_id = audit_key(sk).key_id();
        SignedEvidenceCertificate::assemble(certificate, key_id, 3, &sign_der(sk, &message))
            .unwrap_or_else(|e| panic!("fixture signature: {e}"))
    }

    /// Signs a signature record with `sk` as key version 3.
    pub fn sign_record(record: SignatureRecord, sk: &SigningKey) -> SignatureEnvelope {
        let message = signature_record::signing_bytes(&record)
            .unwrap_or_else(|e| panic!("fixture record canonicalizes: {e}"));
        SignatureEnvelope::assemble(record, audit_key(sk).key_id(), 3, &sign_der(sk, &message))
            .unwrap_or_else(|e| panic!("fixture record signature: {e}"))
    }

    fn event(seq: u64, action: &str, user: &str, role: &str, resource: Value) -> PendingEvent {
        PendingEvent {
            id: format!("0190a5c5-0000-7000-8000-{seq:012x}"),
            timestamp: sample_time(seq),
            actor: Actor {
                user_id: Some(user.to_owned()),
                role: role.to_owned(),
                agency_id: TEST_AGENCY_ID.to_owned(),
            },
            action: action.to_owned(),
            resource: resource.as_object().cloned().unwrap_or_else(Map::new),
            outcome: Outcome::Success,
            source_ip: Some("203.0.113.24".to_owned()),
            detail: json!({}),
        }
    }

    fn document(
        id: &str,
        kind: &str,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
        seq: u64,
        by: &str,
    ) -> DocumentFacts {
        DocumentFacts {
            id: id.to_owned(),
            kind: kind.to_owned(),
            filename: Some(filename.to_owned()),
            content_type: content_type.to_owned(),
            classification: 4,
            sha256: Hash::of(bytes).to_hex(),
            size: bytes.len() as u64,
            uploaded_at: sample_time(seq),
            uploaded_by: by.to_owned(),
            erased_at: None,
            deleted_at: None,
        }
    }

    fn step(action: &str, by: &str, role: &str, seq: u64, reason: Option<&str>) -> StepFacts {
        StepFacts {
            action: action.to_owned(),
            by: Some(by.to_owned()),
            name: None,
            role: role.to_owned(),
            at: sample_time(seq),
            reason: reason.map(str::to_owned),
            audit_seq: seq,
        }
    }

    /// A returned search warrant: three documents, two signatures (the affiant's on the
    /// affidavit, the judge's on the warrant), an oath, reviews, a seal, execution and return,
    /// and the 13 audit entries about it among the 32 of the agency's log, with their proofs.
    pub fn sample_evidence() -> SampleEvidence {
        let sk = test_signing_key();
        let affidavit_pdf = format!("%PDF-1.7\n{AFFIDAVIT_TEXT}\n%%EOF\n").into_bytes();
        let photo = b"\xff\xd8\xff\xe0 rear door, 1200 Elm St \xff\xd9".to_vec();
        let warrant_doc = format!(
            "{{\"format\":\"writ-issued-warrant/1\",\"number\":\"W-2026-000847\",\"warrantId\":\"{WARRANT_ID}\"}}"
        )
        .into_bytes();
        let issued_doc = format!(
            "{{\"format\":\"writ-issued-warrant/1\",\"judgeSignatureId\":\"{JUDGE_RECORD}\",\"number\":\"W-2026-000847\",\"warrantId\":\"{WARRANT_ID}\"}}"
        )
        .into_bytes();
        let doc_hash = |b: &[u8]| Hash::of(b).to_string();
        let w = json!({ "warrantId": WARRANT_ID });
        let mut ours: BTreeMap<u64, PendingEvent> = BTreeMap::new();
        let mut add = |seq: u64, action: &str, user: &str, role: &str, resource: Value| {
            ours.insert(seq, event(seq, action, user, role, resource));
        };
        add(3, "warrant.created", OFFICER, "officer", w.clone());
        add(
            5,
            "document.upload",
            OFFICER,
            "officer",
            json!({"warrantId": WARRANT_ID, "documentId": AFFIDAVIT_DOC, "documentHash": doc_hash(&affidavit_pdf)}),
        );
        add(
            6,
            "document.upload",
            OFFICER,
            "officer",
            json!({"warrantId": WARRANT_ID, "documentId": PHOTO_DOC, "documentHash": doc_hash(&photo)}),
        );
        add(
            7,
            "esign.applied",
            OFFICER,
            "officer",
            json!({"warrantId": WARRANT_ID, "documentId": AFFIDAVIT_DOC, "recordId": "0b6d5c1e-6f3a-4c2e-9a51-2f7d8e4b1c90"}),
        );
        add(8, "warrant.submitted", OFFICER, "officer", w.clone());
        add(11, "warrant.reviewed", SUPERVISOR, "supervisor", w.clone());
        add(13, "warrant.queued", PROSECUTOR, "prosecutor", w.clone());
        add(16, "warrant.claimed", JUDGE, "judge", w.clone());
        add(
            18,
            "oath.administered",
            JUDGE,
            "judge",
            json!({"warrantId": WARRANT_ID, "sessionId": OATH_SESSION}),
        );
        // The warrant document the judge signs names no warrant in its entry: it is in the
        // certificate through its document id.
        add(
            20,
            "document.upload",
            JUDGE,
            "judge",
            json!({"documentId": WARRANT_DOC, "documentHash": doc_hash(&warrant_doc)}),
        );
        add(
            21,
            "esign.applied",
            JUDGE,
            "judge",
            json!({"warrantId": WARRANT_ID, "documentId": WARRANT_DOC, "recordId": JUDGE_RECORD}),
        );
        add(22, "warrant.approved", JUDGE, "judge", w.clone());
        add(25, "warrant.sealed", JUDGE, "judge", w.clone());
        add(27, "warrant.executed", OFFICER, "officer", w.clone());
        add(29, "warrant.returned", OFFICER, "officer", w);
        // The issue records the issued document and the judge's signature it rests on.
        if let Some(issue) = ours.get_mut(&22) {
            issue.detail = json!({
                "documentHash": doc_hash(&issued_doc),
                "judgeSignatureId": JUDGE_RECORD,
            });
        }

        let mut entries = Vec::new();
        let mut prev = genesis_hash(TEST_AGENCY_ID);
        for seq in 1..=TREE_SIZE {
            let pending = ours
                .get(&seq)
                .cloned()
                .unwrap_or_else(|| sample_event(TEST_AGENCY_ID, seq));
            let entry = pending
                .seal(seq, prev)
                .unwrap_or_else(|e| panic!("fixture entry {seq}: {e}"));
            prev = entry.hash;
            entries.push(entry);
        }
        let leaves: Vec<Hash> = entries.iter().map(Entry::leaf_hash).collect();
        let root = merkle::root(&leaves);
        let checkpoint = Checkpoint {
            origin: TEST_ORIGIN.to_owned(),
            size: TREE_SIZE,
            root,
            time: "2026-11-23T15:05:00.000Z".to_owned(),
        };
        let note = signed_checkpoint(&checkpoint, &[&sk]).to_text();
        let proven: Vec<ProvenEntry> = entries
            .iter()
            .filter(|e| ours.contains_key(&e.seq))
            .map(|e| ProvenEntry {
                entry: e.clone(),
                inclusion_proof: InclusionProof {
                    seq: e.seq,
                    tree_size: TREE_SIZE,
                    leaf_hash: e.leaf_hash(),
                    proof: merkle::inclusion_proof(&leaves, e.seq - 1, TREE_SIZE)
                        .unwrap_or_else(|err| panic!("fixture proof: {err}")),
                    root_hash: root,
                },
            })
            .collect();
        let entry_hash = |seq: u64| entries[seq as usize - 1].hash;

        let documents = vec![
            document(
                AFFIDAVIT_DOC,
                "affidavit",
                "affidavit.pdf",
                "application/pdf",
                &affidavit_pdf,
                5,
                OFFICER,
            ),
            document(
                PHOTO_DOC,
                "attachment",
                "rear-door.jpg",
                "image/jpeg",
                &photo,
                6,
                OFFICER,
            ),
            document(
                WARRANT_DOC,
                "warrant",
                "issued-warrant.json",
                "application/json",
                &warrant_doc,
                20,
                JUDGE,
            ),
        ];
        let affiant_record = SignatureRecord {
            format: SIGNATURE_RECORD_FORMAT.to_owned(),
            record_id: "0b6d5c1e-6f3a-4c2e-9a51-2f7d8e4b1c90".into(),
            agency_id: TEST_AGENCY_ID.into(),
            warrant_id: WARRANT_ID.into(),
            signer: Signer {
                user_id: OFFICER.into(),
                role: "officer".into(),
                name: "Det. Jordan Reyes".into(),
                badge_or_judicial_id: "B-4471".into(),
            },
            authentication: Authentication {
                methods: vec!["password".into(), "totp".into()],
                strength: "aal2".into(),
                auth_time: "2026-11-23T14:40:00.000Z".into(),
                stepped_up_at: sample_time(7),
            },
            intent: Intent::new(
                "I swear that the facts in this affidavit are true to the best of my knowledge.",
            ),
            document: SignedDocument {
                id: AFFIDAVIT_DOC.into(),
                sha256: Hash::of(&affidavit_pdf),
                size: affidavit_pdf.len() as u64,
            },
            signed_at: sample_time(7),
            source_ip: "203.0.113.24".into(),
            user_agent: "Mozilla/5.0 (X11; Linux x86_64)".into(),
            oath_reference: None,
            audit: Some(AuditReference {
                seq: 7,
                entry_hash: entry_hash(7),
            }),
        };
        let judge_record = SignatureRecord {
            record_id: JUDGE_RECORD.into(),
            signer: Signer {
                user_id: JUDGE.into(),
                role: "judge".into(),
                // Outside Latin-1 on purpose: the PDF must still render.
                name: "Hon. Zofia Łukasiewicz".into(),
                badge_or_judicial_id: "J-20431".into(),
            },
            authentication: Authentication {
                methods: vec!["password".into(), "totp".into()],
                strength: "aal2".into(),
                auth_time: "2026-11-23T14:50:00.000Z".into(),
                stepped_up_at: sample_time(21),
            },
            intent: Intent::new(
                "I have reviewed the affidavit and find probable cause; I sign this warrant.",
            ),
            document: SignedDocument {
                id: WARRANT_DOC.into(),
                sha256: Hash::of(&warrant_doc),
                size: warrant_doc.len() as u64,
            },
            signed_at: sample_time(21),
            oath_reference: Some(OATH_SESSION.into()),
            audit: Some(AuditReference {
                seq: 21,
                entry_hash: entry_hash(21),
            }),
            ..affiant_record.clone()
        };
        let affidavit_sha = Hash::of(AFFIDAVIT_TEXT.as_bytes()).to_hex();
        let certificate = EvidenceCertificate {
            format: EVIDENCE_FORMAT.to_owned(),
            certificate_id: "e5c7a9b1-2d4f-4e6a-8b0c-1d3e5f7a9b2c".into(),
            agency_id: TEST_AGENCY_ID.into(),
            issued_at: "2026-11-23T15:05:01.250Z".into(),
            warrant: WarrantFacts {
                id: WARRANT_ID.into(),
                number: "W-2026-000847".into(),
                court: "d-minn".into(),
                type_key: "search".into(),
                type_name: "Search warrant".into(),
                time_zone: "America/Chicago".into(),
                state: "returned".into(),
                author_id: OFFICER.into(),
                parent_warrant_id: None,
                issued_document_sha256: Some(Hash::of(&issued_doc).to_hex()),
                sworn_affidavit_version: Some(1),
                sworn_affidavit_sha256: Some(affidavit_sha.clone()),
            },
            documents,
            affidavit_versions: vec![AffidavitVersionFacts {
                number: 1,
                sha256: affidavit_sha.clone(),
                reason: "submitted".into(),
                created_at: sample_time(8),
                created_by: OFFICER.into(),
            }],
            steps: vec![
                step("warrant.submitted", OFFICER, "officer", 8, None),
                step("warrant.reviewed", SUPERVISOR, "supervisor", 11, None),
                step("warrant.queued", PROSECUTOR, "prosecutor", 13, None),
                step("warrant.claimed", JUDGE, "judge", 16, None),
                step("warrant.approved", JUDGE, "judge", 22, None),
                step(
                    "warrant.sealed",
                    JUDGE,
                    "judge",
                    25,
                    Some("ongoing investigation (order 26-114)"),
                ),
                step("warrant.executed", OFFICER, "officer", 27, None),
                step("warrant.returned", OFFICER, "officer", 29, None),
            ],
            oaths: vec![OathFacts {
                session_id: OATH_SESSION.into(),
                // The shape the server writes: the session's oath, recording and transcript.
                record: json!({
                    "oath": {
                        "sessionId": OATH_SESSION,
                        "warrantId": WARRANT_ID,
                        "judgeId": JUDGE,
                        "affiantId": OFFICER,
                        "identityMethod": "government_id_on_video",
                        "identityNote": null,
                        "judgeLocation": "Minneapolis, MN",
                        "judgeInJurisdiction": true,
                        "oathText": "Do you swear that the affidavit is true?",
                        "administeredAt": sample_time(18),
                        "affidavitVersion": 1,
                        "affidavitSha256": affidavit_sha,
                    },
                    "recording": {
                        "reference": "provider:recordings/8812",
                        "sha256": Hash::of(b"recording").to_hex(),
                        "custody": "court",
                    },
                    "recordingMissing": false,
                    "transcript": {
                        "sha256": Hash::of(b"transcript").to_hex(),
                        "certifiedBy": JUDGE,
                    },
                    "judgeId": JUDGE,
                    "affiantId": OFFICER,
                }),
            }],
            signatures: vec![
                sign_record(affiant_record, &sk),
                sign_record(judge_record, &sk),
            ],
            execution: Some(ExecutionFacts {
                issued_at: sample_time(22),
                deadline: Some("2026-12-08T06:00:00.000Z".into()),
                daytime: Some("06:00-22:00".into()),
                night_service: false,
                executed_at: Some(sample_time(27)),
                within_deadline: Some(true),
            }),
            return_filed: Some(ReturnFacts {
                kind: "inventory".into(),
                returned_at: sample_time(29),
                returned_by: OFFICER.into(),
                inventory: Some(vec![
                    "Glock 19 handgun, serial ABX-2231".into(),
                    "2 mobile phones (Xiaomi 小米 Redmi)".into(),
                ]),
                note: Some("Rear door forced; premises secured.".into()),
            }),
            audit: AuditFacts {
                checkpoint: note,
                tree_size: TREE_SIZE,
                entries: proven,
            },
        };
        SampleEvidence {
            signed: sign_evidence(certificate, &sk),
            documents: vec![
                (AFFIDAVIT_DOC.to_owned(), affidavit_pdf),
                (PHOTO_DOC.to_owned(), photo),
                (WARRANT_DOC.to_owned(), warrant_doc),
            ],
            issued_document: issued_doc,
        }
    }
}
