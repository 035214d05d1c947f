//! Walking a hash chain: every entry's own hash, its link to the previous entry, seq order and
//! agency. Streaming: the verifier holds the previous entry's seq and hash, nothing more.

use std::fmt;

use crate::entry::{Entry, MAX_ENTRY_BYTES, genesis_hash};
use crate::hash::Hash;

/// Why an entry breaks the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainBreak {
    /// Not an entry at all (not JSON, missing or extra fields, invalid field values).
    Malformed(String),
    /// A JSON entry, but not written in its canonical form (RFC 8785), as log lines must be.
    NotCanonical,
    /// The recorded `hash` is not the hash of the entry's content: the entry was edited.
    HashMismatch { recorded: Hash, computed: Hash },
    /// `prevHash` is not the previous entry's `hash`: an entry before it was removed,
    /// replaced or reordered.
    PrevHashMismatch { expected: Hash, found: Hash },
    /// A later seq than expected: entries are missing (or reordered).
    SeqGap { expected: u64, found: u64 },
    /// An earlier seq than expected: entries are out of order.
    SeqOutOfOrder { expected: u64, found: u64 },
    /// The previous entry's seq again.
    SeqDuplicate { seq: u64 },
    /// `actor.agencyId` names another agency.
    WrongAgency { expected: String, found: String },
}

impl ChainBreak {
    /// Short stable name of the reason, e.g. for tests and machine-readable output.
    pub fn kind(&self) -> &'static str {
        match self {
            ChainBreak::Malformed(_) => "malformed",
            ChainBreak::NotCanonical => "not-canonical",
            ChainBreak::HashMismatch { .. } => "hash-mismatch",
            ChainBreak::PrevHashMismatch { .. } => "prev-hash-mismatch",
            ChainBreak::SeqGap { .. } => "seq-gap",
            ChainBreak::SeqOutOfOrder { .. } => "seq-out-of-order",
            ChainBreak::SeqDuplicate { .. } => "seq-duplicate",
            ChainBreak::WrongAgency { .. } => "wrong-agency",
        }
    }
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainBreak::Malformed(why) => write!(f, "malformed entry: {why}"),
            ChainBreak::NotCanonical => {
                f.write_str("entry line is not in canonical (RFC 8785) form")
            }
            ChainBreak::HashMismatch { recorded, computed } => write!(
                f,
                "entry hash mismatch: recorded {recorded}, content hashes to {computed} (entry modified)"
            ),
            ChainBreak::PrevHashMismatch { expected, found } => write!(
                f,
                "broken link: prevHash is {found}, previous entry's hash is {expected}"
            ),
            ChainBreak::SeqGap { expected, found } => write!(
                f,
                "expected seq {expected}, found seq {found} (entries missing or reordered)"
            ),
            ChainBreak::SeqOutOfOrder { expected, found } => {
                write!(
                    f,
                    "expected seq {expected}, found seq {found} (entries out of order)"
                )
            }
            ChainBreak::SeqDuplicate { seq } => write!(f, "seq {seq} appears twice"),
            ChainBreak::WrongAgency { expected, found } => {
                write!(f, "entry belongs to agency {found}, not {expected}")
            }
        }
    }
}

/// The first entry at which a chain breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainFailure {
    /// The first bad seq: the entry's own seq, or for missing/reordered entries the seq that
    /// should have come next.
    pub seq: u64,
    pub reason: ChainBreak,
}

impl fmt::Display for ChainFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {}: {}", self.seq, self.reason)
    }
}

impl std::error::Error for ChainFailure {}

/// Streaming chain verifier for one agency. After a failure it keeps going from the entry it
/// was given, so a caller can count every bad entry; [`verify_chain`] stops at the first.
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    agency_id: String,
    /// Seq the next entry must have; `None` until anchored.
    next_seq: Option<u64>,
    /// Hash the next entry's `prevHash` must equal; `None` when unknown (unanchored, or after a
    /// line that could not be parsed).
    prev_hash: Option<Hash>,
}

impl ChainVerifier {
    /// A chain that starts at seq 1 with the agency's genesis hash.
    pub fn from_genesis(agency_id: &str) -> ChainVerifier {
        ChainVerifier::resume(agency_id, 1, genesis_hash(agency_id))
    }

    /// A chain that continues at `next_seq` after an entry whose hash is `prev_hash`.
    pub fn resume(agency_id: &str, next_seq: u64, prev_hash: Hash) -> ChainVerifier {
        ChainVerifier {
            agency_id: agency_id.to_owned(),
            next_seq: Some(next_seq),
            prev_hash: Some(prev_hash),
        }
    }

    /// A chain anchored by its first entry, whatever its seq and `prevHash`.
    pub fn unanchored(agency_id: &str) -> ChainVerifier {
        ChainVerifier {
            agency_id: agency_id.to_owned(),
            next_seq: None,
            prev_hash: None,
        }
    }

    /// The seq the next entry must have, once known.
    pub fn next_seq(&self) -> Option<u64> {
        self.next_seq
    }

    /// Checks one entry. Reports one reason per entry, the most basic first: malformed, wrong
    /// agency, seq order, hash, link.
    pub fn push(&mut self, entry: &Entry) -> Result<(), ChainFailure> {
        let result = self.check(entry);
        self.next_seq = entry.seq.checked_add(1);
        self.prev_hash = Some(entry.hash);
        result
    }

    /// Parses and checks one `log.jsonl` line (without its newline), which must be the entry's
    /// canonical JSON. Returns the entry when the line parsed, whether or not it fits the chain.
    pub fn push_line(&mut self, line: &[u8]) -> (Option<Entry>, Result<(), ChainFailure>) {
        let entry = if line.len() > MAX_ENTRY_BYTES {
            Err(ChainBreak::Malformed(format!(
                "line longer than {MAX_ENTRY_BYTES} bytes"
            )))
        } else {
            Entry::from_json(line).map_err(|e| ChainBreak::Malformed(e.to_string()))
        };
        let entry = match entry {
            Ok(entry) => entry,
            Err(reason) => return (None, Err(self.skip_unreadable(reason))),
        };
        // One serialization gives both the canonical line and the entry's hash.
        let (canonical, computed) = match entry.canonical_json_and_hash() {
            Ok((canonical, hash)) => (Some(canonical), Some(hash)),
            Err(_) => (None, None),
        };
        let mut result = self.check_with(&entry, computed);
        if result.is_ok() && canonical.as_deref() != Some(line) {
            result = Err(ChainFailure {
                seq: entry.seq,
                reason: ChainBreak::NotCanonical,
            });
        }
        self.next_seq = entry.seq.checked_add(1);
        self.prev_hash = Some(entry.hash);
        (Some(entry), result)
    }

    /// Records a line that is not an entry at all: reported at the seq that was expected, and
    /// the next entry is then taken as it comes.
    pub fn skip_unreadable(&mut self, reason: ChainBreak) -> ChainFailure {
        let seq = self.next_seq.unwrap_or(0);
        self.next_seq = self.next_seq.and_then(|s| s.checked_add(1));
        self.prev_hash = None;
        ChainFailure { seq, reason }
    }

    fn check(&self, entry: &Entry) -> Result<(), ChainFailure> {
        self.check_with(entry, None)
    }

    /// [`ChainVerifier::check`] with the entry's hash already computed, when it is known.
    fn check_with(&self, entry: &Entry, computed: Option<Hash>) -> Result<(), ChainFailure> {
        let fail = |seq: u64, reason: ChainBreak| Err(ChainFailure { seq, reason });
        let expected_seq = self.next_seq.unwrap_or(entry.seq);
        if let Err(e) = entry.validate() {
            return fail(expected_seq, ChainBreak::Malformed(e.to_string()));
        }
        if entry.actor.agency_id != self.agency_id {
            return fail(
                entry.seq,
                ChainBreak::WrongAgency {
                    expected: self.agency_id.clone(),
                    found: entry.actor.agency_id.clone(),
                },
            );
        }
        if entry.seq != expected_seq {
            let reason = if entry.seq > expected_seq {
                ChainBreak::SeqGap {
                    expected: expected_seq,
                    found: entry.seq,
                }
            } else if entry.seq.checked_add(1) == Some(expected_seq) {
                ChainBreak::SeqDuplicate { seq: entry.seq }
            } else {
                ChainBreak::SeqOutOfOrder {
                    expected: expected_seq,
                    found: entry.seq,
                }
            };
            // The first bad seq is the earlier of the two: the one that should be here, or the
            // one that is here out of turn.
            return fail(expected_seq.min(entry.seq), reason);
        }
        match computed.map_or_else(|| entry.compute_hash(), Ok) {
            Ok(computed) if computed == entry.hash => {}
            Ok(computed) => {
                return fail(
                    entry.seq,
                    ChainBreak::HashMismatch {
                        recorded: entry.hash,
                        computed,
                    },
                );
            }
            Err(e) => return fail(entry.seq, ChainBreak::Malformed(e.to_string())),
        }
        if let Some(expected) = self.prev_hash
            && entry.prev_hash != expected
        {
            return fail(
                entry.seq,
                ChainBreak::PrevHashMismatch {
                    expected,
                    found: entry.prev_hash,
                },
            );
        }
        Ok(())
    }
}

/// Verifies a whole chain from seq 1 (genesis) and returns the number of entries, or the first
/// break.
pub fn verify_chain<'a>(
    agency_id: &str,
    entries: impl IntoIterator<Item = &'a Entry>,
) -> Result<u64, ChainFailure> {
    let mut verifier = ChainVerifier::from_genesis(agency_id);
    let mut count = 0u64;
    for entry in entries {
        verifier.push(entry)?;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Actor, Outcome, PendingEvent};
    use serde_json::json;

    const AGENCY: &str = "agency-1";

    fn chain(n: u64) -> Vec<Entry> {
        let mut prev = genesis_hash(AGENCY);
        (1..=n)
            .map(|seq| {
                let e = PendingEvent {
                    id: format!("00000000-0000-4000-8000-{seq:012x}"),
                    timestamp: "2026-11-23T15:04:05.123Z".into(),
                    actor: Actor {
                        user_id: None,
                        role: "system".into(),
                        agency_id: AGENCY.into(),
                    },
                    action: "system.start".into(),
                    resource: Default::default(),
                    outcome: Outcome::Success,
                    source_ip: None,
                    detail: json!(seq),
                }
                .seal(seq, prev)
                .unwrap();
                prev = e.hash;
                e
            })
            .collect()
    }

    fn first_break(entries: &[Entry]) -> ChainFailure {
        verify_chain(AGENCY, entries).unwrap_err()
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify_chain(AGENCY, &chain(10)), Ok(10));
        assert_eq!(verify_chain(AGENCY, &[]), Ok(0));
    }

    #[test]
    fn each_kind_of_damage_is_reported_at_the_first_bad_seq() {
        let good = chain(6);

        let mut edited = good.clone();
        edited[2].detail = json!("edited");
        let f = first_break(&edited);
        assert_eq!((f.seq, f.reason.kind()), (3, "hash-mismatch"));

        let mut deleted = good.clone();
        deleted.remove(3);
        let f = first_break(&deleted);
        assert_eq!((f.seq, f.reason.kind()), (4, "seq-gap"));

        let mut swapped = good.clone();
        swapped.swap(1, 2);
        let f = first_break(&swapped);
        assert_eq!((f.seq, f.reason.kind()), (2, "seq-gap"));

        let mut duplicated = good.clone();
        duplicated.insert(3, good[2].clone());
        let f = first_break(&duplicated);
        assert_eq!((f.seq, f.reason.kind()), (3, "seq-duplicate"));

        // Re-sealed so its own hash is right, but linked to the wrong predecessor.
        let mut relinked = good.clone();
        relinked[4].prev_hash = good[2].hash;
        relinked[4].hash = relinked[4].compute_hash().unwrap();
        let f = first_break(&relinked);
        assert_eq!((f.seq, f.reason.kind()), (5, "prev-hash-mismatch"));

        let f = verify_chain("agency-2", &good).unwrap_err();
        assert_eq!((f.seq, f.reason.kind()), (1, "wrong-agency"));

        // A chain that does not start at genesis.
        let f = first_break(&good[1..]);
        assert_eq!((f.seq, f.reason.kind()), (1, "seq-gap"));
    }

    #[test]
    fn lines_must_be_canonical_entries() {
        let good = chain(3);
        let mut v = ChainVerifier::from_genesis(AGENCY);
        let line = good[0].canonical_json().unwrap();
        assert!(v.push_line(&line).1.is_ok());

        let pretty = serde_json::to_vec_pretty(&good[1]).unwrap();
        let (entry, result) = v.push_line(&pretty);
        assert!(entry.is_some());
        assert_eq!(result.unwrap_err().reason, ChainBreak::NotCanonical);

        let (entry, result) = v.push_line(b"{not json");
        assert!(entry.is_none());
        let f = result.unwrap_err();
        assert_eq!((f.seq, f.reason.kind()), (3, "malformed"));
        // After an unreadable line the next entry's link cannot be checked, but its seq can.
        let line = chain(4)[3].canonical_json().unwrap();
        assert!(v.push_line(&line).1.is_ok());
    }
}
