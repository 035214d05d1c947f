//! Minimum-index statements: the signed record that an agency's log was pruned.
//!
//! Retention deletes old entries but keeps the Merkle tree's stored hashes, so every proof about
//! the remaining entries still verifies. What the remaining entries can no longer show is why the
//! log now starts above seq 1; the agency says so in a statement signed like a checkpoint, as a
//! signed note whose body is
//!
//! ```text
//! writ-audit-minimum-index/v1\n
//! <origin>\n
//! <tree size>\n
//! <base64 root hash of the tree of that size>\n
//! minimum-index <N>\n
//! prev-hash sha256:<hex of the hash of entry N − 1>\n
//! time <YYYY-MM-DDTHH:MM:SS.mmmZ>\n
//! ```
//!
//! "From `time` on, the log `origin`, whose tree of `tree size` entries has this root, holds no
//! entry below seq N, and entry N's `prevHash` is `prev-hash`." The first line keeps a statement
//! from ever being read as a checkpoint (whose second line is a number) and a checkpoint from
//! being read as a statement. A verifier resumes the hash chain at N with `prev-hash`, and checks
//! the root when its recomputed tree passes `tree size`.

use crate::checkpoint::{SignedNote, TIME_EXTENSION_PREFIX, verify_note};
use crate::error::MinimumIndexError;
use crate::hash::Hash;
use crate::keys::{VerifierKey, is_valid_key_name};

/// First line of every minimum-index statement.
pub const MINIMUM_INDEX_FORMAT: &str = "writ-audit-minimum-index/v1";

const INDEX_PREFIX: &str = "minimum-index ";
const PREV_HASH_PREFIX: &str = "prev-hash ";

/// A pruned log's new start, with the tree head it was cut from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinimumIndex {
    pub origin: String,
    /// Size of the tree when the statement was signed (≥ `minimum_index`).
    pub tree_size: u64,
    /// Root of the tree of `tree_size` entries.
    pub root: Hash,
    /// The lowest seq still held; entries `1 .. minimum_index − 1` were deleted.
    pub minimum_index: u64,
    /// Hash of entry `minimum_index − 1`: the `prevHash` of the first remaining entry.
    pub prev_hash: Hash,
    /// When it was signed, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub time: String,
}

fn malformed(m: impl Into<String>) -> MinimumIndexError {
    MinimumIndexError::Malformed(m.into())
}

fn decimal(text: &str, what: &str) -> Result<u64, MinimumIndexError> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return Err(malformed(format!(
            "{what} must be a decimal number without leading zeros"
        )));
    }
    text.parse()
        .map_err(|_| malformed(format!("{what} does not fit in 64 bits")))
}

impl MinimumIndex {
    /// Checks the fields can be written as a body that parses back to the same statement, and
    /// that they make sense: at least one entry pruned, at least one left.
    pub fn validate(&self) -> Result<(), MinimumIndexError> {
        if !is_valid_key_name(&self.origin) {
            return Err(malformed(
                "origin must be non-empty, without spaces, '+' or control characters",
            ));
        }
        if self.minimum_index < 2 {
            return Err(malformed(
                "minimum index must be at least 2 (seq 1 is the first entry of every log)",
            ));
        }
        if self.minimum_index > self.tree_size {
            return Err(malformed(format!(
                "minimum index {} is beyond the tree size {}: a log is never pruned empty",
                self.minimum_index, self.tree_size
            )));
        }
        if !crate::time::is_valid_timestamp(&self.time) {
            return Err(malformed("time must be YYYY-MM-DDTHH:MM:SS.mmmZ"));
        }
        Ok(())
    }

    /// The note text to sign.
    pub fn body(&self) -> String {
        format!(
            "{MINIMUM_INDEX_FORMAT}\n{}\n{}\n{}\n{INDEX_PREFIX}{}\n{PREV_HASH_PREFIX}{}\n{TIME_EXTENSION_PREFIX}{}\n",
            self.origin,
            self.tree_size,
            self.root.to_base64(),
            self.minimum_index,
            self.prev_hash.to_prefixed(),
            self.time
        )
    }

    /// Parses a statement body; exactly the seven lines [`MinimumIndex::body`] writes.
    pub fn parse_body(text: &str) -> Result<MinimumIndex, MinimumIndexError> {
        let Some(text) = text.strip_suffix('\n') else {
            return Err(malformed("body must end with a newline"));
        };
        let lines: Vec<&str> = text.split('\n').collect();
        let [format, origin, size, root, index, prev, time] = lines.as_slice() else {
            return Err(malformed(
                "body must have exactly seven lines: format, origin, tree size, root hash, \
                 minimum-index, prev-hash, time",
            ));
        };
        if *format != MINIMUM_INDEX_FORMAT {
            return Err(malformed(format!(
                "first line must be {MINIMUM_INDEX_FORMAT:?}"
            )));
        }
        let tree_size = decimal(size, "tree size")?;
        let root = Hash::from_base64(root)
            .map_err(|_| malformed("root hash must be base64 of 32 bytes"))?;
        let index = index
            .strip_prefix(INDEX_PREFIX)
            .ok_or_else(|| malformed("fifth line must be \"minimum-index <seq>\""))?;
        let minimum_index = decimal(index, "minimum index")?;
        let prev = prev
            .strip_prefix(PREV_HASH_PREFIX)
            .ok_or_else(|| malformed("sixth line must be \"prev-hash sha256:<hex>\""))?;
        let prev_hash =
            Hash::from_prefixed(prev).map_err(|e| malformed(format!("prev-hash: {e}")))?;
        let time = time.strip_prefix(TIME_EXTENSION_PREFIX).ok_or_else(|| {
            malformed("seventh line must be the signing time, \"time <timestamp>\"")
        })?;
        let statement = MinimumIndex {
            origin: (*origin).to_owned(),
            tree_size,
            root,
            minimum_index,
            prev_hash,
            time: time.to_owned(),
        };
        statement.validate()?;
        Ok(statement)
    }

    /// Parses a signed statement and verifies its signature with `keys` (as a checkpoint's:
    /// at least one trusted signature, none failing).
    pub fn from_signed_note(
        text: &str,
        keys: &[VerifierKey],
    ) -> Result<(MinimumIndex, SignedNote), MinimumIndexError> {
        let note = SignedNote::parse(text)?;
        let statement = note.minimum_index()?;
        verify_note(&note, keys)?;
        Ok((statement, note))
    }

    /// Checks that a log (or an export) starting at `first_seq`, whose first entry's `prevHash`
    /// is `first_prev_hash`, is what remains after this statement: nothing below the minimum
    /// index, and the first remaining entry linked to the hash the statement names.
    pub fn check_start(&self, first_seq: u64, first_prev_hash: &Hash) -> Result<(), String> {
        if first_seq < self.minimum_index {
            return Err(format!(
                "entries from seq {first_seq} exist below the minimum index {}",
                self.minimum_index
            ));
        }
        if first_seq == self.minimum_index && *first_prev_hash != self.prev_hash {
            return Err(format!(
                "entry {first_seq} has prevHash {first_prev_hash}, the signed minimum index names {}",
                self.prev_hash
            ));
        }
        Ok(())
    }
}

/// Where an export asked to start at `requested_first` must start: there, or at the minimum
/// index when the log was pruned above it.
pub fn expected_first_seq(requested_first: u64, minimum_index: Option<u64>) -> u64 {
    requested_first.max(minimum_index.unwrap_or(0))
}

impl SignedNote {
    /// The body read as a minimum-index statement.
    pub fn minimum_index(&self) -> Result<MinimumIndex, MinimumIndexError> {
        MinimumIndex::parse_body(self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Checkpoint, NoteSignature};
    use crate::keys::AuditKey;

    use p256::ecdsa::SigningKey;

    fn statement() -> MinimumIndex {
        MinimumIndex {
            origin: "writ.example/audit/a1".into(),
            tree_size: 9,
            root: Hash::of(b"root"),
            minimum_index: 4,
            prev_hash: Hash::of(b"entry 3"),
            time: "2027-11-24T09:00:00.000Z".into(),
        }
    }

    #[test]
    fn body_round_trips_and_is_never_a_checkpoint() {
        let s = statement();
        let body = s.body();
        assert!(body.starts_with("writ-audit-minimum-index/v1\nwrit.example/audit/a1\n9\n"));
        assert!(body.contains("\nminimum-index 4\nprev-hash sha256:"));
        assert_eq!(MinimumIndex::parse_body(&body).unwrap(), s);
        assert!(Checkpoint::parse_body(&body).is_err());
        let cp = Checkpoint {
            origin: s.origin.clone(),
            size: 9,
            root: s.root,
            time: s.time.clone(),
        };
        assert!(MinimumIndex::parse_body(&cp.body()).is_err());
    }

    #[test]
    fn body_parser_is_strict() {
        let good = statement().body();
        for bad in [
            good.trim_end().to_owned(),
            good.replace("/v1\n", "/v2\n"),
            good.replace("\n9\n", "\n09\n"),
            good.replace("minimum-index 4", "minimum-index 1"),
            good.replace("minimum-index 4", "minimum-index 10"),
            good.replace("minimum-index 4", "minimum-index=4"),
            good.replace("prev-hash sha256:", "prev-hash sha256:0"),
            good.replace("prev-hash ", "prevHash "),
            good.replace("time ", "time="),
            format!("{good}extra\n"),
        ] {
            assert!(MinimumIndex::parse_body(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn signed_statements_verify_and_tampering_fails() {
        let sk = SigningKey::from_slice(&[7; 32]).unwrap();
        let vk = VerifierKey::new(
            "writ.example/audit/a1",
            AuditKey::from_verifying_key(*sk.verifying_key()).unwrap(),
        )
        .unwrap();
        let body = statement().body();
        let sig = crate::fixtures::sign_low_s(&sk, body.as_bytes());
        let text = SignedNote::assemble(
            body,
            vec![NoteSignature {
                key_name: vk.name().into(),
                key_id: vk.key_id(),
                sig_bytes: sig.to_der().as_bytes().to_vec(),
            }],
        )
        .unwrap()
        .to_text();
        let (s, _) = MinimumIndex::from_signed_note(&text, std::slice::from_ref(&vk)).unwrap();
        assert_eq!(s, statement());
        let tampered = text.replace("minimum-index 4", "minimum-index 5");
        assert!(matches!(
            MinimumIndex::from_signed_note(&tampered, std::slice::from_ref(&vk)),
            Err(MinimumIndexError::Note(_))
        ));
    }

    #[test]
    fn the_start_of_a_pruned_log_must_match() {
        let s = statement();
        assert!(s.check_start(4, &s.prev_hash).is_ok());
        assert!(s.check_start(6, &Hash::of(b"other")).is_ok());
        assert!(s.check_start(4, &Hash::of(b"other")).is_err());
        assert!(s.check_start(3, &s.prev_hash).is_err());
    }
}
