//! Counts data-key wrapping and unwrapping per agency, key version and operation, so that key
//! access can be audited as one entry per agency per minute rather than one per unwrap. Signing is
//! not counted here: every signature the agency key makes is itself a record (a checkpoint, a
//! certificate), and counting checkpoint signatures would grow an idle chain every minute.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyOperation {
    Wrap,
    Unwrap,
}

impl KeyOperation {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyOperation::Wrap => "wrap",
            KeyOperation::Unwrap => "unwrap",
        }
    }
}

/// One counted use: which key version did what, and whether the provider refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AccessKind {
    pub key_id: String,
    pub version: i32,
    pub operation: KeyOperation,
    pub ok: bool,
}

/// Uses since the last drain, per agency.
pub type AccessCounts = BTreeMap<Uuid, BTreeMap<AccessKind, u64>>;

#[derive(Clone, Default)]
pub struct AccessCounter {
    counts: Arc<Mutex<AccessCounts>>,
}

impl AccessCounter {
    pub fn count(&self, agency_id: Uuid, kind: AccessKind) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts
            .entry(agency_id)
            .or_default()
            .entry(kind)
            .or_default() += 1;
    }

    /// Takes the counts gathered so far, leaving zero.
    pub fn drain(&self) -> AccessCounts {
        std::mem::take(&mut *self.counts.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Puts counts back (when writing them to the audit chain failed), to be retried.
    pub fn restore(&self, counts: AccessCounts) {
        let mut mine = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for (agency, kinds) in counts {
            let slot = mine.entry(agency).or_default();
            for (kind, n) in kinds {
                *slot.entry(kind).or_default() += n;
            }
        }
    }
}
