//! Deterministic sample logs and bundles, signed with a well-known test key (feature
//! `fixtures`). The spec's test vectors come from here. The key is public knowledge: nothing
//! signed with it proves anything.

use std::io::{self, Read};

use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::json;

use crate::bundle::{ExportBuilder, ExportDetails, ExportStart};
use crate::certificate::{Certificate, KeyRecord, RequestedRange};
use crate::checkpoint::{Checkpoint, NoteSignature, SignedNote};
use crate::entry::{Actor, Entry, Outcome, PendingEvent, genesis_hash};
use crate::hash::Hash;
use crate::keys::{AuditKey, VerifierKey};
use crate::merkle::{self, CompactRange};
use crate::minimum_index::MinimumIndex;

pub const TEST_AGENCY_ID: &str = "4f1c2b7e-9a3d-4e8f-b6a1-0c5d7e9f2a31";
pub const TEST_AGENCY_NAME: &str = "Example County Sheriff's Office";
pub const TEST_AGENCY_SLUG: &str = "example-county-so";
pub const TEST_ORIGIN: &str = "writ.example/audit/4f1c2b7e-9a3d-4e8f-b6a1-0c5d7e9f2a31";
pub const TEST_KEY_VALID_FROM: &str = "2026-01-01T00:00:00.000Z";

/// Milliseconds between sample entries, from [`SAMPLE_START_MILLIS`].
const SAMPLE_STEP_MILLIS: i64 = 1_237;
/// 2026-11-23T15:04:05.123Z.
const SAMPLE_START_MILLIS: i64 = 1_795_446_245_123;

/// P-256 private key with scalar `0x0101…01` (32 bytes). Test use only.
pub fn test_signing_key() -> SigningKey {
    signing_key_from_byte(0x01)
}

/// Another deterministic key (scalar `b` repeated 32 times), e.g. a rotated or forged key.
pub fn signing_key_from_byte(b: u8) -> SigningKey {
    match SigningKey::from_slice(&[b; 32]) {
        Ok(key) => key,
        // Every repeated non-zero byte is below the group order; 0 falls back to 1.
        Err(_) => signing_key_from_byte(1),
    }
}

pub fn audit_key(sk: &SigningKey) -> AuditKey {
    match AuditKey::from_verifying_key(*sk.verifying_key()) {
        Ok(key) => key,
        Err(e) => unreachable!("a signing key's public key always encodes: {e}"),
    }
}

pub fn test_audit_key() -> AuditKey {
    audit_key(&test_signing_key())
}

/// ECDSA P-256 / SHA-256 signature in its low-S form, as Writ's signers emit (RFC 6979, so
/// deterministic).
pub fn sign_low_s(sk: &SigningKey, message: &[u8]) -> Signature {
    let sig: Signature = sk.sign(message);
    sig.normalize_s().unwrap_or(sig)
}

/// DER of [`sign_low_s`].
pub fn sign_der(sk: &SigningKey, message: &[u8]) -> Vec<u8> {
    sign_low_s(sk, message).to_der().as_bytes().to_vec()
}

/// The format's timestamp spelling of `millis` since the epoch.
pub fn timestamp(millis: i64) -> String {
    let days = millis.div_euclid(86_400_000);
    let ms = millis.rem_euclid(86_400_000);
    // Civil-from-days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// The timestamp of sample entry `seq`.
pub fn sample_time(seq: u64) -> String {
    timestamp(SAMPLE_START_MILLIS + SAMPLE_STEP_MILLIS * (seq as i64 - 1))
}

/// A deterministic event for position `seq` of agency `agency_id`.
pub fn sample_event(agency_id: &str, seq: u64) -> PendingEvent {
    let warrant = format!("7d3e{:04x}-5b2a-4c19-8f60-3e1d2c4b5a69", seq % 7);
    let (action, role, user, outcome, resource, detail) = match seq % 5 {
        1 => (
            "auth.login",
            "officer",
            Some("u-officer-17"),
            Outcome::Success,
            json!({}),
            json!({"mfa": "totp"}),
        ),
        2 => (
            "warrant.created",
            "officer",
            Some("u-officer-17"),
            Outcome::Success,
            json!({"warrantId": warrant}),
            json!({"type": "search", "court": "District 4"}),
        ),
        3 => (
            "document.upload",
            "officer",
            Some("u-officer-17"),
            Outcome::Success,
            json!({
                "warrantId": warrant,
                "documentId": format!("d-{seq}"),
                "documentHash": Hash::of(&seq.to_be_bytes()).to_string()
            }),
            json!({"bytes": 48_213 + seq, "classification": "cji"}),
        ),
        4 => (
            "warrant.submitted",
            "officer",
            Some("u-officer-17"),
            Outcome::Success,
            json!({"warrantId": warrant}),
            json!({"version": 3}),
        ),
        _ => (
            "authz.denied",
            "auditor",
            Some("u-auditor-2"),
            Outcome::Failure,
            json!({"warrantId": warrant}),
            json!({"reason": "role auditor may not read warrant content"}),
        ),
    };
    PendingEvent {
        id: format!(
            "0190a5c4-{:04x}-7000-8000-{:012x}",
            seq >> 48,
            seq & 0xffff_ffff_ffff
        ),
        timestamp: sample_time(seq),
        actor: Actor {
            user_id: user.map(str::to_owned),
            role: role.to_owned(),
            agency_id: agency_id.to_owned(),
        },
        action: action.to_owned(),
        resource: resource.as_object().cloned().unwrap_or_default(),
        outcome,
        source_ip: Some(format!("198.51.100.{}", seq % 250 + 1)),
        detail,
    }
}

/// The sample chain of an agency, one entry at a time (no entry is kept).
#[derive(Clone, Debug)]
pub struct SampleChain {
    agency_id: String,
    next_seq: u64,
    prev_hash: Hash,
}

impl SampleChain {
    pub fn new(agency_id: &str) -> SampleChain {
        SampleChain {
            agency_id: agency_id.to_owned(),
            next_seq: 1,
            prev_hash: genesis_hash(agency_id),
        }
    }
}

impl Iterator for SampleChain {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        let entry = sample_event(&self.agency_id, self.next_seq)
            .seal(self.next_seq, self.prev_hash)
            .ok()?;
        self.next_seq += 1;
        self.prev_hash = entry.hash;
        Some(entry)
    }
}

/// The first `n` sample entries of the test agency.
pub fn sample_entries(n: u64) -> Vec<Entry> {
    SampleChain::new(TEST_AGENCY_ID).take(n as usize).collect()
}

/// `log.jsonl` of sample entries `first..=last`, generated while read.
pub struct SampleLogReader {
    chain: std::iter::Skip<std::iter::Take<SampleChain>>,
    pending: Vec<u8>,
    offset: usize,
}

impl SampleLogReader {
    pub fn new(first: u64, last: u64) -> SampleLogReader {
        SampleLogReader {
            chain: SampleChain::new(TEST_AGENCY_ID)
                .take(last as usize)
                .skip(first.saturating_sub(1) as usize),
            pending: Vec::new(),
            offset: 0,
        }
    }
}

impl Read for SampleLogReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.offset == self.pending.len() {
            let Some(entry) = self.chain.next() else {
                return Ok(0);
            };
            self.pending = entry.to_line().map_err(io::Error::other)?;
            self.offset = 0;
        }
        let available = self.pending.get(self.offset..).unwrap_or_default();
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.offset += n;
        Ok(n)
    }
}

/// A signed checkpoint note over `checkpoint`, one signature per key.
pub fn signed_checkpoint(checkpoint: &Checkpoint, keys: &[&SigningKey]) -> SignedNote {
    signed_note(checkpoint.body(), &checkpoint.origin, keys)
}

/// A signed minimum-index statement, one signature per key.
pub fn signed_minimum_index(statement: &MinimumIndex, keys: &[&SigningKey]) -> SignedNote {
    signed_note(statement.body(), &statement.origin, keys)
}

fn signed_note(body: String, key_name: &str, keys: &[&SigningKey]) -> SignedNote {
    let signatures = keys
        .iter()
        .map(|sk| {
            let vk = audit_key(sk);
            NoteSignature {
                key_name: key_name.to_owned(),
                key_id: vk.key_id(),
                sig_bytes: sign_der(sk, body.as_bytes()),
            }
        })
        .collect();
    match SignedNote::assemble(body, signatures) {
        Ok(note) => note,
        Err(e) => unreachable!("fixture notes are well-formed: {e}"),
    }
}

/// Verifier key of `sk` under the test origin.
pub fn verifier_key(sk: &SigningKey) -> VerifierKey {
    match VerifierKey::new(TEST_ORIGIN, audit_key(sk)) {
        Ok(key) => key,
        Err(e) => unreachable!("the test origin is a valid key name: {e}"),
    }
}

/// What a sample bundle is made of.
#[derive(Clone, Debug)]
pub struct BundleSpec {
    /// First exported seq.
    pub first_seq: u64,
    /// Last exported seq.
    pub last_seq: u64,
    /// Size of the signed checkpoint (≥ `last_seq`).
    pub checkpoint_size: u64,
    /// Keys signing the checkpoint (all of them), the last one also signs the certificate.
    pub signers: Vec<SigningKey>,
    pub checkpoint_time: String,
    pub created_at: String,
    /// A pruned log: entries below this seq were deleted. The export asks for everything from
    /// seq 1, starts at `first_seq` (which must equal it) and carries the minimum-index
    /// statement, signed at tree size `checkpoint_size` and `checkpoint_time`.
    pub minimum_index: Option<u64>,
}

impl BundleSpec {
    /// A full export of `n` entries, the checkpoint at size `n`, signed by the test key.
    pub fn full(n: u64) -> BundleSpec {
        BundleSpec {
            first_seq: 1,
            last_seq: n,
            checkpoint_size: n,
            signers: vec![test_signing_key()],
            checkpoint_time: "2026-11-24T09:00:00.000Z".to_owned(),
            created_at: "2026-11-24T09:00:02.500Z".to_owned(),
            minimum_index: None,
        }
    }

    /// An export from seq `minimum_index` to `n` of a log pruned below `minimum_index`.
    pub fn pruned(n: u64, minimum_index: u64) -> BundleSpec {
        BundleSpec {
            first_seq: minimum_index,
            minimum_index: Some(minimum_index),
            ..BundleSpec::full(n)
        }
    }
}

/// The files of a bundle.
#[derive(Clone, Debug)]
pub struct SampleBundle {
    pub log: Vec<u8>,
    pub certificate: Vec<u8>,
    pub checkpoint: String,
    /// The `minimum-index` file of a pruned log's bundle.
    pub minimum_index: Option<String>,
    /// (file name under `keys/`, PEM), one per key of the history.
    pub keys: Vec<(String, String)>,
}

/// The key history for `signers`, all valid from [`TEST_KEY_VALID_FROM`] on (as during a
/// rotation, when old and new key both sign).
pub fn key_history(signers: &[SigningKey]) -> Vec<KeyRecord> {
    signers
        .iter()
        .map(|sk| KeyRecord::new(&audit_key(sk), TEST_ORIGIN, TEST_KEY_VALID_FROM, None))
        .collect()
}

/// Builds a complete, valid bundle with the same code the server uses. Only for small sizes:
/// it holds the leaves up to `checkpoint_size` to make the consistency proof.
pub fn sample_bundle(spec: &BundleSpec) -> SampleBundle {
    let entries = sample_entries(spec.checkpoint_size.max(spec.last_seq));
    let leaves: Vec<Hash> = entries.iter().map(Entry::leaf_hash).collect();
    let mut tree = CompactRange::new();
    let mut before = Vec::new();
    for (i, leaf) in leaves.iter().enumerate() {
        if i as u64 + 1 == spec.first_seq {
            before = tree.hashes().to_vec();
        }
        let _ = tree.append(*leaf);
    }
    let first_prev_hash = match spec.first_seq {
        1 => genesis_hash(TEST_AGENCY_ID),
        n => entries
            .get(n as usize - 2)
            .map(|e| e.hash)
            .unwrap_or_default(),
    };
    let mut builder = ExportBuilder::new(
        TEST_AGENCY_ID,
        ExportStart {
            first_seq: spec.first_seq,
            first_prev_hash,
            left_frontier: before,
        },
    )
    .unwrap_or_else(|e| panic!("fixture export start: {e}"));
    let mut log = Vec::new();
    for entry in entries
        .iter()
        .skip(spec.first_seq as usize - 1)
        .take((spec.last_seq + 1 - spec.first_seq) as usize)
    {
        log.extend(
            builder
                .push(entry)
                .unwrap_or_else(|e| panic!("fixture entry: {e}")),
        );
    }
    let checkpoint = Checkpoint {
        origin: TEST_ORIGIN.to_owned(),
        size: spec.checkpoint_size,
        root: merkle::root(
            leaves
                .get(..spec.checkpoint_size as usize)
                .unwrap_or_default(),
        ),
        time: spec.checkpoint_time.clone(),
    };
    let signer_refs: Vec<&SigningKey> = spec.signers.iter().collect();
    let note = signed_checkpoint(&checkpoint, &signer_refs).to_text();
    let minimum_index = spec.minimum_index.map(|n| {
        let statement = MinimumIndex {
            origin: TEST_ORIGIN.to_owned(),
            tree_size: checkpoint.size,
            root: checkpoint.root,
            minimum_index: n,
            prev_hash: (n as usize)
                .checked_sub(2)
                .and_then(|i| entries.get(i))
                .map(|e| e.hash)
                .unwrap_or_default(),
            time: spec.checkpoint_time.clone(),
        };
        signed_minimum_index(&statement, &signer_refs).to_text()
    });
    let consistency = merkle::consistency_proof(&leaves, spec.last_seq, spec.checkpoint_size)
        .unwrap_or_else(|e| panic!("fixture consistency proof: {e}"));
    let history = key_history(&spec.signers);
    let certificate = builder
        .finish(ExportDetails {
            agency_name: TEST_AGENCY_NAME.to_owned(),
            agency_slug: TEST_AGENCY_SLUG.to_owned(),
            origin: TEST_ORIGIN.to_owned(),
            requested_range: RequestedRange {
                first_seq: if spec.minimum_index.is_some() {
                    1
                } else {
                    spec.first_seq
                },
                last_seq: Some(spec.last_seq),
            },
            checkpoint: note.clone(),
            checkpoint_consistency: consistency,
            minimum_index: minimum_index.clone(),
            key_history: history.clone(),
            created_at: spec.created_at.clone(),
        })
        .unwrap_or_else(|e| panic!("fixture certificate: {e}"));
    let signer = spec
        .signers
        .last()
        .cloned()
        .unwrap_or_else(test_signing_key);
    let certificate = sign_certificate(certificate, &signer);
    SampleBundle {
        log,
        certificate: certificate.to_json().into_bytes(),
        checkpoint: note,
        minimum_index,
        keys: history
            .iter()
            .map(|r| (format!("{}.pem", r.key_id), r.public_key_pem.clone()))
            .collect(),
    }
}

/// Signs (or re-signs) a certificate with `sk`.
pub fn sign_certificate(mut certificate: Certificate, sk: &SigningKey) -> Certificate {
    certificate.signature = None;
    let message = certificate
        .signing_bytes()
        .unwrap_or_else(|e| panic!("fixture certificate canonicalizes: {e}"));
    let key_id = audit_key(sk).key_id();
    certificate
        .with_signature(key_id, &sign_der(sk, &message))
        .unwrap_or_else(|e| panic!("fixture signature: {e}"))
}

/// The certificate of a full export of `n` sample entries, computed in one streaming pass
/// (memory does not grow with `n`). Pair it with [`SampleLogReader::new`]`(1, n)`.
pub fn streaming_certificate(n: u64) -> Certificate {
    let sk = test_signing_key();
    let mut builder = ExportBuilder::new(TEST_AGENCY_ID, ExportStart::from_genesis(TEST_AGENCY_ID))
        .unwrap_or_else(|e| panic!("fixture export start: {e}"));
    for entry in SampleChain::new(TEST_AGENCY_ID).take(n as usize) {
        builder
            .push(&entry)
            .unwrap_or_else(|e| panic!("fixture entry: {e}"));
    }
    let checkpoint = Checkpoint {
        origin: TEST_ORIGIN.to_owned(),
        size: n,
        root: builder.root(),
        time: "2026-11-24T09:00:00.000Z".to_owned(),
    };
    let note = signed_checkpoint(&checkpoint, &[&sk]).to_text();
    let certificate = builder
        .finish(ExportDetails {
            agency_name: TEST_AGENCY_NAME.to_owned(),
            agency_slug: TEST_AGENCY_SLUG.to_owned(),
            origin: TEST_ORIGIN.to_owned(),
            requested_range: RequestedRange {
                first_seq: 1,
                last_seq: None,
            },
            checkpoint: note,
            checkpoint_consistency: Vec::new(),
            minimum_index: None,
            key_history: key_history(std::slice::from_ref(&sk)),
            created_at: "2026-11-24T09:00:02.500Z".to_owned(),
        })
        .unwrap_or_else(|e| panic!("fixture certificate: {e}"));
    sign_certificate(certificate, &sk)
}

/// A judge's signature record over `document` for the test agency, with no audit reference
/// yet: the sample every signature test starts from, changing what it is about.
pub fn sample_signature_record(document: &[u8]) -> crate::signature_record::SignatureRecord {
    use crate::signature_record::{
        Authentication, Intent, SIGNATURE_RECORD_FORMAT, SignatureRecord, SignedDocument, Signer,
    };
    SignatureRecord {
        format: SIGNATURE_RECORD_FORMAT.to_owned(),
        record_id: "0b6d5c1e-6f3a-4c2e-9a51-2f7d8e4b1c90".into(),
        agency_id: TEST_AGENCY_ID.into(),
        warrant_id: "9e2a4d61-3b7c-4f08-a1d5-6c8e0f2b7a43".into(),
        signer: Signer {
            user_id: "c3a1e5f7-2d4b-4a6c-8e0f-1b3d5f7a9c2e".into(),
            role: "judge".into(),
            name: "Hon. Maria Alvarez".into(),
            badge_or_judicial_id: "J-20431".into(),
        },
        authentication: Authentication {
            methods: vec!["password".into(), "totp".into()],
            strength: "aal2".into(),
            auth_time: "2026-12-04T08:01:12.000Z".into(),
            stepped_up_at: "2026-12-04T09:14:03.512Z".into(),
        },
        intent: Intent::new("I have reviewed the affidavit and find probable cause."),
        document: SignedDocument {
            id: "d7f0a2c4-5e6b-4d8a-9c1e-3f5a7b9d1e2c".into(),
            sha256: Hash::of(document),
            size: document.len() as u64,
        },
        signed_at: "2026-12-04T09:15:27.104Z".into(),
        source_ip: "203.0.113.24".into(),
        user_agent: "Mozilla/5.0".into(),
        oath_reference: None,
        audit: None,
    }
}
