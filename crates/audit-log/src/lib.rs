//! writ-audit-log keeps each agency's audit chain in PostgreSQL, in the format of
//! `writ-audit-chain`: events are recorded inside the caller's tenant transaction, a sequencer
//! gives committed events their place in the chain in batches, Merkle subtree hashes are stored so
//! proofs read O(log n) rows, and a checkpointer signs tree heads with the agency's key. Retention
//! prunes entries past the agency's period below a signed minimum index, keeping the Merkle nodes
//! so every remaining proof verifies. It never updates an entry, never deletes one except by
//! pruning (never under a legal hold), and never holds an agency's chain lock during a request's
//! transaction.

mod archive;
mod background;
mod checkpoint;
mod error;
mod export;
mod export_jobs;
mod proofs;
mod query;
mod record;
mod retention;
mod sequencer;
mod store;
mod verify;

pub use archive::{
    ARCHIVE_POLICY, ARCHIVED, ArchiveConfig, ArchiveDestination, ArchiveDestinations, ArchiveError,
    ArchiveOutcome, ArchivePolicy, ArchiveRecord, DEFAULT_ARCHIVE_HOURS, MAX_ARCHIVE_HOURS,
    archive_agency, archive_due, last_archive, run_archiver,
};
pub use background::{BackgroundConfig, listener_pool, run_checkpointer, run_sequencer};
pub use checkpoint::{
    SignedCheckpoint, checkpoint_agency, latest_checkpoint, origin, verifier_keys,
};
pub use error::AuditError;
pub use export::{ExportSummary, export_bundle};
pub use export_jobs::{
    DEFAULT_RETENTION_DAYS, EXPORT_DOWNLOADED, EXPORT_EXPIRED, EXPORT_REQUESTED, ExportJob,
    ExportStatus, ExportWorkerConfig, MAX_ATTEMPTS, WrittenExport, expire_exports, export_to_file,
    get_export, hash_file, record_download, request_export, run_agency_jobs, run_export_worker,
};
pub use proofs::{consistency_proof, inclusion_proof, root_at};
pub use query::{
    ActionScan, EventFilter, EventPage, LOG_READ, MAX_PAGE, SigningKeyVersion, list_events,
    record_read, scan_actions, sequenced_head, signing_key_history,
};
pub use record::{Actor, Caller, Event, Origin, clipped, record, record_platform, set_invoked_by};
pub use retention::{
    LegalHold, MAX_RETENTION_DAYS, MIN_RETENTION_DAYS, PruneMode, PruneReport, RETENTION_POLICY,
    RetentionError, RetentionPolicy, StoredMinimumIndex, latest_minimum_index, list_legal_holds,
    place_legal_hold, prune_agency, release_legal_hold, run_pruner,
};
pub use sequencer::{Receipt, receipt, sequence_agency};
pub use store::events_after;
pub use verify::{LiveReport, verify_live};
pub use writ_audit_chain::{Entry, Outcome};

/// The agency policies this crate reads, for the server's policy registry. Both are security
/// controls (how long evidence of access is kept, where its copy goes): changing them needs
/// step-up.
pub const POLICIES: &[writ_tenancy::PolicyDef] = &[
    writ_tenancy::PolicyDef {
        name: writ_tenancy::PolicyName::Exact(RETENTION_POLICY),
        validate: |v| RetentionPolicy::from_value(v).map(|_| ()),
        default: |_| serde_json::json!({ "days": MIN_RETENTION_DAYS }),
        needs_step_up: true,
        description: "Days audit entries are kept before pruning: {\"days\": N}, at least 365 (CJIS AU-11)",
    },
    writ_tenancy::PolicyDef {
        name: writ_tenancy::PolicyName::Exact(ARCHIVE_POLICY),
        validate: |v| ArchivePolicy::from_value(v).map(|_| ()),
        // No archiving until the agency names its storage.
        default: |_| serde_json::Value::Null,
        needs_step_up: true,
        description: "Automated export to the agency's storage: {\"url\": \"s3://bucket/prefix\" or \"file:///dir\", \"everyHours\": N}",
    },
];
