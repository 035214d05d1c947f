//! writ-audit-log keeps each agency's audit chain in PostgreSQL, in the format of
//! `writ-audit-chain`: events are recorded inside the caller's tenant transaction, a sequencer
//! gives committed events their place in the chain in batches, Merkle subtree hashes are stored so
//! proofs read O(log n) rows, and a checkpointer signs tree heads with the agency's key. It never
//! updates or deletes an entry, and it never holds an agency's chain lock during a request's
//! transaction.

mod background;
mod checkpoint;
mod error;
mod export;
mod proofs;
mod record;
mod sequencer;
mod store;
mod verify;

pub use background::{BackgroundConfig, run_checkpointer, run_sequencer};
pub use checkpoint::{
    SignedCheckpoint, checkpoint_agency, latest_checkpoint, origin, verifier_keys,
};
pub use error::AuditError;
pub use export::{ExportSummary, export_bundle};
pub use proofs::{consistency_proof, inclusion_proof, root_at};
pub use record::{Actor, Event, record};
pub use sequencer::{Receipt, receipt, sequence_agency};
pub use verify::{LiveReport, verify_live};
pub use writ_audit_chain::Outcome;
