//! Audit entries: fields, validation, the hash rule and the genesis value.
//!
//! `hash = "sha256:" + hex(SHA-256(RFC 8785 canonical JSON of the entry without "hash"))`.
//! The first entry of an agency's chain has `prevHash = genesis_hash(agencyId)`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::canonical::{self, MAX_SAFE_INTEGER};
use crate::error::EntryError;
use crate::hash::Hash;
use crate::merkle;

/// Domain-separation prefix of the genesis rule.
pub const GENESIS_PREFIX: &str = "writ-audit-genesis:";

/// Longest canonical entry (one `log.jsonl` line without its newline) the format allows, so
/// that a verifier can stream any log in bounded memory. Sealing refuses larger events.
pub const MAX_ENTRY_BYTES: usize = 1 << 20;

/// `prevHash` of seq 1: `SHA-256("writ-audit-genesis:" ‖ agencyId)` (UTF-8, no separator
/// or terminator), rendered like any other hash. Binding the agency id means one agency's chain
/// cannot be passed off as another's from the first entry on.
pub fn genesis_hash(agency_id: &str) -> Hash {
    let mut input = Vec::with_capacity(GENESIS_PREFIX.len() + agency_id.len());
    input.extend_from_slice(GENESIS_PREFIX.as_bytes());
    input.extend_from_slice(agency_id.as_bytes());
    Hash::of(&input)
}

/// Who acted. `userId` is null for the system itself and for unauthenticated callers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Actor {
    pub user_id: Option<String>,
    pub role: String,
    pub agency_id: String,
}

/// Result of the recorded action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    Partial,
}

/// One audit entry, exactly as it appears (canonicalized) on a line of `log.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    /// 1, 2, … per agency; the entry's Merkle leaf index is `seq − 1`.
    pub seq: u64,
    /// UUID, lowercase and hyphenated.
    pub id: String,
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub timestamp: String,
    pub actor: Actor,
    /// Dotted event code, e.g. `warrant.submitted`.
    pub action: String,
    /// What the action was about: `warrantId`, `documentId`, `documentHash`, `sessionId`, …
    pub resource: Map<String, Value>,
    pub outcome: Outcome,
    pub source_ip: Option<String>,
    pub detail: Value,
    pub prev_hash: Hash,
    pub hash: Hash,
}

/// An event recorded in a request's transaction, before the sequencer gives it a place in the
/// chain. Everything of an [`Entry`] except `seq`, `prevHash` and `hash`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PendingEvent {
    pub id: String,
    pub timestamp: String,
    pub actor: Actor,
    pub action: String,
    pub resource: Map<String, Value>,
    pub outcome: Outcome,
    pub source_ip: Option<String>,
    pub detail: Value,
}

impl PendingEvent {
    /// Checks that the event can be sealed at any place in the chain: every field against the
    /// format, `resource` and `detail` with a canonical form, and the whole entry within
    /// [`MAX_ENTRY_BYTES`] even at the longest `seq`. Call it when the event is recorded, so a
    /// bad event fails its own request rather than the sequencer later (which cannot pass it).
    pub fn validate(&self) -> Result<(), EntryError> {
        self.seal(MAX_SAFE_INTEGER, Hash::default()).map(|_| ())
    }

    /// The entry at `seq` whose predecessor has hash `prev_hash` (the genesis hash for seq 1).
    pub fn seal(&self, seq: u64, prev_hash: Hash) -> Result<Entry, EntryError> {
        let mut entry = Entry {
            seq,
            id: self.id.clone(),
            timestamp: self.timestamp.clone(),
            actor: self.actor.clone(),
            action: self.action.clone(),
            resource: self.resource.clone(),
            outcome: self.outcome,
            source_ip: self.source_ip.clone(),
            detail: self.detail.clone(),
            prev_hash,
            hash: Hash::default(),
        };
        entry.validate()?;
        entry.hash = entry.compute_hash()?;
        let bytes = entry.canonical_json()?.len();
        if bytes > MAX_ENTRY_BYTES {
            return Err(EntryError::TooLarge {
                bytes,
                limit: MAX_ENTRY_BYTES,
            });
        }
        Ok(entry)
    }
}

impl Entry {
    /// Parses one entry from JSON (any formatting; see [`Entry::canonical_json`] for the form
    /// used in logs). Does not check the hash.
    pub fn from_json(bytes: &[u8]) -> Result<Entry, EntryError> {
        // Checking UTF-8 once for the whole line is faster than serde_json's check of every
        // string; invalid UTF-8 takes the byte parser, for its error message.
        match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::from_str(text),
            Err(_) => serde_json::from_slice(bytes),
        }
        .map_err(|e| EntryError::Json(e.to_string()))
    }

    /// Checks every field except the hashes against the format.
    pub fn validate(&self) -> Result<(), EntryError> {
        if self.seq == 0 || self.seq > MAX_SAFE_INTEGER {
            return Err(invalid("seq", "must be between 1 and 2^53 − 1"));
        }
        validate_fields(
            &self.id,
            &self.timestamp,
            &self.actor,
            &self.action,
            self.source_ip.as_deref(),
        )
    }

    /// The RFC 8785 canonical JSON of the entry without its `hash` member: the bytes the hash
    /// covers.
    pub fn hashed_bytes(&self) -> Result<Vec<u8>, EntryError> {
        let mut out = Vec::with_capacity(CANONICAL_CAPACITY);
        self.write_canonical(&mut out, false)?;
        Ok(out)
    }

    /// `SHA-256(hashed_bytes())`.
    pub fn compute_hash(&self) -> Result<Hash, EntryError> {
        Ok(Hash::of(&self.hashed_bytes()?))
    }

    /// Whether the recorded `hash` is the hash of the entry's content.
    pub fn hash_is_valid(&self) -> bool {
        self.compute_hash().is_ok_and(|h| h == self.hash)
    }

    /// The canonical JSON of the whole entry, `hash` included: one line of `log.jsonl`
    /// without its newline.
    pub fn canonical_json(&self) -> Result<Vec<u8>, EntryError> {
        let mut out = Vec::with_capacity(CANONICAL_CAPACITY);
        self.write_canonical(&mut out, true)?;
        Ok(out)
    }

    /// [`Entry::canonical_json`] and [`Entry::compute_hash`] from one serialization: the hashed
    /// bytes are the line without its `hash` member.
    pub fn canonical_json_and_hash(&self) -> Result<(Vec<u8>, Hash), EntryError> {
        let mut out = Vec::with_capacity(CANONICAL_CAPACITY);
        let (start, end) = self.write_canonical(&mut out, true)?;
        let mut sha = Sha256::new();
        sha.update(out.get(..start).unwrap_or_default());
        sha.update(out.get(end..).unwrap_or_default());
        Ok((out, Hash(sha.finalize().into())))
    }

    /// One line of `log.jsonl`: [`Entry::canonical_json`] followed by `\n`.
    pub fn to_line(&self) -> Result<Vec<u8>, EntryError> {
        let mut line = self.canonical_json()?;
        line.push(b'\n');
        Ok(line)
    }

    /// The entry's RFC 9162 leaf hash, `SHA-256(0x00 ‖ hash bytes)`.
    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(&self.hash)
    }

    /// Leaf index in the agency's Merkle tree.
    pub fn leaf_index(&self) -> u64 {
        self.seq.saturating_sub(1)
    }

    /// Writes what `canonical::canonicalize(&serde_json::to_value(self))` writes (RFC 8785:
    /// members sorted by key, the same errors in the same order), without building the `Value`:
    /// the entry's members have fixed keys whose sorted order is written out here. Returns the
    /// byte range of `,"hash":"…"` (empty without the hash).
    fn write_canonical(
        &self,
        out: &mut Vec<u8>,
        with_hash: bool,
    ) -> Result<(usize, usize), EntryError> {
        // The member names are ASCII letters: nothing to escape.
        fn key(out: &mut Vec<u8>, first: bool, name: &str) {
            if !first {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
        }
        fn optional(out: &mut Vec<u8>, value: Option<&str>) {
            match value {
                Some(s) => canonical::write_string(out, s),
                None => out.extend_from_slice(b"null"),
            }
        }
        // Keys in UTF-16 code unit order (all ASCII here), as RFC 8785 §3.2.3 sorts them.
        out.push(b'{');
        key(out, true, "action");
        canonical::write_string(out, &self.action);
        key(out, false, "actor");
        out.push(b'{');
        key(out, true, "agencyId");
        canonical::write_string(out, &self.actor.agency_id);
        key(out, false, "role");
        canonical::write_string(out, &self.actor.role);
        key(out, false, "userId");
        optional(out, self.actor.user_id.as_deref());
        out.push(b'}');
        key(out, false, "detail");
        canonical::write_value(out, &self.detail, 1)?;
        let hash_start = out.len();
        if with_hash {
            key(out, false, "hash");
            write_prefixed_hash(out, &self.hash);
        }
        let hash_end = out.len();
        key(out, false, "id");
        canonical::write_string(out, &self.id);
        key(out, false, "outcome");
        canonical::write_string(out, self.outcome.as_str());
        key(out, false, "prevHash");
        write_prefixed_hash(out, &self.prev_hash);
        key(out, false, "resource");
        canonical::write_object(out, &self.resource, 1)?;
        key(out, false, "seq");
        canonical::write_number(out, &serde_json::Number::from(self.seq))?;
        key(out, false, "sourceIp");
        optional(out, self.source_ip.as_deref());
        key(out, false, "timestamp");
        canonical::write_string(out, &self.timestamp);
        out.push(b'}');
        Ok((hash_start, hash_end))
    }
}

/// Room for a typical entry line, so that writing one rarely reallocates.
const CANONICAL_CAPACITY: usize = 1024;

/// A hash as its canonical JSON string, `"sha256:<hex>"` (nothing in it needs escaping).
fn write_prefixed_hash(out: &mut Vec<u8>, hash: &Hash) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 64];
    for (pair, b) in hex.chunks_exact_mut(2).zip(hash.0) {
        if let [hi, lo] = pair {
            *hi = HEX[usize::from(b >> 4)];
            *lo = HEX[usize::from(b & 0x0f)];
        }
    }
    out.push(b'"');
    out.extend_from_slice(crate::hash::HASH_PREFIX.as_bytes());
    out.extend_from_slice(&hex);
    out.push(b'"');
}

impl Outcome {
    /// The serialized name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Partial => "partial",
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> EntryError {
    EntryError::InvalidField {
        field,
        reason: reason.into(),
    }
}

fn validate_fields(
    id: &str,
    timestamp: &str,
    actor: &Actor,
    action: &str,
    source_ip: Option<&str>,
) -> Result<(), EntryError> {
    if !is_uuid(id) {
        return Err(invalid("id", "must be a lowercase hyphenated UUID"));
    }
    if !crate::time::is_valid_timestamp(timestamp) {
        return Err(invalid(
            "timestamp",
            "must be YYYY-MM-DDTHH:MM:SS.mmmZ (UTC)",
        ));
    }
    if let Some(user_id) = &actor.user_id {
        check_identifier("actor.userId", user_id)?;
    }
    check_identifier("actor.agencyId", &actor.agency_id)?;
    if !is_code_segment(&actor.role) || actor.role.len() > 64 {
        return Err(invalid("actor.role", "must match [a-z][a-z0-9_]*"));
    }
    if action.len() > 128
        || action.split('.').count() < 2
        || !action.split('.').all(is_code_segment)
    {
        return Err(invalid(
            "action",
            "must be a dotted code such as warrant.submitted",
        ));
    }
    if let Some(ip) = source_ip
        && ip.parse::<IpAddr>().is_err()
    {
        return Err(invalid("sourceIp", "must be an IPv4 or IPv6 address"));
    }
    Ok(())
}

/// Identifiers are opaque, but must be printable and bounded.
fn check_identifier(field: &'static str, value: &str) -> Result<(), EntryError> {
    // Printable ASCII other than space holds no control or whitespace character; anything
    // else is checked character by character.
    let printable_ascii = value.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if value.is_empty()
        || value.len() > 128
        || (!printable_ascii && value.chars().any(|c| c.is_control() || c.is_whitespace()))
    {
        return Err(invalid(
            field,
            "must be 1–128 characters without spaces or control characters",
        ));
    }
    Ok(())
}

fn is_code_segment(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => matches!(c, b'0'..=b'9' | b'a'..=b'f'),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> PendingEvent {
        PendingEvent {
            id: "0b6f8c5e-4c1a-4f5e-9a53-2f0d0c1e7a10".into(),
            timestamp: "2026-11-23T15:04:05.123Z".into(),
            actor: Actor {
                user_id: Some("u-1".into()),
                role: "officer".into(),
                agency_id: "agency-1".into(),
            },
            action: "warrant.submitted".into(),
            resource: json!({"warrantId": "w-1"}).as_object().cloned().unwrap(),
            outcome: Outcome::Success,
            source_ip: Some("203.0.113.7".into()),
            detail: json!({"note": "x"}),
        }
    }

    #[test]
    fn genesis_binds_the_agency() {
        assert_ne!(genesis_hash("a"), genesis_hash("b"));
        assert_eq!(genesis_hash("a"), Hash::of(b"writ-audit-genesis:a"));
    }

    #[test]
    fn sealed_entry_hash_covers_everything_but_the_hash() {
        let entry = event().seal(1, genesis_hash("agency-1")).unwrap();
        assert!(entry.hash_is_valid());
        let text = String::from_utf8(entry.hashed_bytes().unwrap()).unwrap();
        assert!(text.starts_with(r#"{"action":"warrant.submitted","actor":{"agencyId":"agency-1","role":"officer","userId":"u-1"},"detail":{"note":"x"},"id":"#));
        assert!(!text.contains("\"hash\""));
        assert!(text.contains("\"prevHash\":\"sha256:"));

        let mut edited = entry.clone();
        edited.detail = json!({"note": "y"});
        assert!(!edited.hash_is_valid());
        let mut edited = entry.clone();
        edited.seq = 2;
        assert!(!edited.hash_is_valid());
    }

    #[test]
    fn canonical_line_round_trips() {
        let entry = event().seal(7, Hash::of(b"prev")).unwrap();
        let line = entry.to_line().unwrap();
        assert_eq!(line.last(), Some(&b'\n'));
        let back = Entry::from_json(&line).unwrap();
        assert_eq!(back, entry);
        assert_eq!(back.canonical_json().unwrap(), line[..line.len() - 1]);
    }

    #[test]
    fn seal_refuses_what_the_format_cannot_hold() {
        let mut e = event();
        e.timestamp = "2026-11-23T15:04:05Z".into();
        assert!(e.seal(1, Hash::default()).is_err());
        let mut e = event();
        e.detail = json!({"n": u64::MAX});
        assert!(matches!(
            e.seal(1, Hash::default()),
            Err(EntryError::Canonical(_))
        ));
        assert!(e.validate().is_err());
        let mut e = event();
        e.action = "Warrant.Submitted".into();
        assert!(e.seal(1, Hash::default()).is_err());
        let mut e = event();
        e.source_ip = Some("not-an-ip".into());
        assert!(e.seal(1, Hash::default()).is_err());
        let mut e = event();
        e.detail = Value::String("x".repeat(MAX_ENTRY_BYTES));
        assert!(matches!(
            e.seal(1, Hash::default()),
            Err(EntryError::TooLarge { .. })
        ));
        assert!(matches!(e.validate(), Err(EntryError::TooLarge { .. })));
        assert!(event().seal(0, Hash::default()).is_err());
    }

    #[test]
    fn an_event_must_fit_at_the_longest_seq_to_be_recorded() {
        let mut e = event();
        e.detail = json!({"note": ""});
        let base = e
            .seal(1, Hash::default())
            .unwrap()
            .canonical_json()
            .unwrap()
            .len();
        // Exactly the limit at seq 1, over it with the 16 digits of the longest seq.
        e.detail = json!({"note": "x".repeat(MAX_ENTRY_BYTES - base)});
        let at_one = e
            .seal(1, Hash::default())
            .unwrap()
            .canonical_json()
            .unwrap();
        assert_eq!(at_one.len(), MAX_ENTRY_BYTES);
        assert!(matches!(
            e.validate(),
            Err(EntryError::TooLarge { bytes, limit: MAX_ENTRY_BYTES }) if bytes == MAX_ENTRY_BYTES + 15
        ));
        e.detail = json!({"note": "x".repeat(MAX_ENTRY_BYTES - base - 15)});
        e.validate().unwrap();
    }

    /// The entry's own serializer must write exactly what the generic canonicalizer writes for
    /// `serde_json::to_value(entry)`, errors included, whatever the fields hold.
    #[test]
    fn entry_serialization_matches_the_generic_canonicalizer() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};

        fn generic(entry: &Entry, with_hash: bool) -> Result<Vec<u8>, String> {
            let mut value = serde_json::to_value(entry).unwrap();
            if !with_hash {
                value.as_object_mut().unwrap().remove("hash");
            }
            canonical::canonicalize(&value).map_err(|e| format!("{:?}", EntryError::from(e)))
        }
        fn check(entry: &Entry) {
            let dbg = |r: Result<Vec<u8>, EntryError>| r.map_err(|e| format!("{e:?}"));
            assert_eq!(
                dbg(entry.canonical_json()),
                generic(entry, true),
                "{entry:?}"
            );
            assert_eq!(
                dbg(entry.hashed_bytes()),
                generic(entry, false),
                "{entry:?}"
            );
            match entry.canonical_json_and_hash() {
                Ok((line, hash)) => {
                    assert_eq!(Ok(line), generic(entry, true));
                    assert_eq!(hash, Hash::of(&generic(entry, false).unwrap()));
                    assert_eq!(Ok(hash), entry.compute_hash().map_err(|e| e.to_string()));
                }
                Err(e) => assert_eq!(Err(format!("{e:?}")), generic(entry, true)),
            }
        }
        fn text(rng: &mut StdRng) -> String {
            let pool = [
                "a",
                "hash",
                "Z",
                "\"",
                "\\",
                "\n",
                "\u{1}",
                "\u{1f}",
                "\u{7f}",
                "é",
                "€",
                "\u{ffff}",
                "😀",
                " ",
                ",\"hash\":\"",
            ];
            (0..rng.gen_range(0..5))
                .map(|_| pool[rng.gen_range(0..pool.len())])
                .collect()
        }
        fn value(rng: &mut StdRng, depth: u32) -> Value {
            match rng.gen_range(0..if depth > 2 { 5 } else { 7 }) {
                0 => Value::Null,
                1 => Value::Bool(rng.r#gen()),
                2 => json!(rng.gen_range(-(1i64 << 54)..(1i64 << 54))),
                3 => json!(rng.r#gen::<f64>() * 1e6),
                4 => Value::String(text(rng)),
                5 => Value::Array(
                    (0..rng.gen_range(0..3))
                        .map(|_| value(rng, depth + 1))
                        .collect(),
                ),
                _ => Value::Object(
                    (0..rng.gen_range(0..4))
                        .map(|_| (text(rng), value(rng, depth + 1)))
                        .collect(),
                ),
            }
        }

        let base = event().seal(1, genesis_hash("agency-1")).unwrap();
        check(&base);
        let mut rng = StdRng::seed_from_u64(9162);
        for i in 0..3000 {
            let mut e = base.clone();
            e.seq = match i % 50 {
                0 => MAX_SAFE_INTEGER + 1,
                1 => 0,
                _ => rng.gen_range(1..=MAX_SAFE_INTEGER),
            };
            e.id = text(&mut rng);
            e.timestamp = text(&mut rng);
            e.action = text(&mut rng);
            e.actor.role = text(&mut rng);
            e.actor.agency_id = text(&mut rng);
            e.actor.user_id = rng.r#gen::<bool>().then(|| text(&mut rng));
            e.source_ip = rng.r#gen::<bool>().then(|| text(&mut rng));
            e.outcome = [Outcome::Success, Outcome::Failure, Outcome::Partial][i % 3];
            e.detail = value(&mut rng, 0);
            e.resource = match value(&mut rng, 1) {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            e.prev_hash = Hash::of(&rng.r#gen::<[u8; 8]>());
            e.hash = Hash::of(&rng.r#gen::<[u8; 8]>());
            check(&e);
        }
        // Errors come in the generic order: detail before resource before seq.
        let mut e = base.clone();
        e.detail = json!({"n": u64::MAX});
        e.resource = json!({"m": i64::MIN}).as_object().cloned().unwrap();
        e.seq = u64::MAX;
        check(&e);
        let mut deep = json!(1);
        for _ in 0..(canonical::MAX_DEPTH + 2) {
            deep = json!({"hash": deep});
        }
        e.detail = deep.clone();
        check(&e);
        e.detail = json!({});
        e.resource = json!({"deep": deep}).as_object().cloned().unwrap();
        check(&e);
    }

    /// Parsing through `from_str` after one UTF-8 check gives what `from_slice` gives,
    /// errors included.
    #[test]
    fn parsing_matches_the_byte_parser() {
        let good = event()
            .seal(1, Hash::default())
            .unwrap()
            .canonical_json()
            .unwrap();
        let text = String::from_utf8(good.clone()).unwrap();
        let mut lines: Vec<Vec<u8>> = vec![
            good.clone(),
            text.replace("\"x\"", "\"\\ud800\"").into_bytes(),
            text.replace("\"x\"", "\"\\ud83d\\ude00\u{e9}\"")
                .into_bytes(),
            text.replace("\"x\"", "\"\\q\"").into_bytes(),
            text.replace("\"note\"", "\"n\u{0}\"").into_bytes(),
            text.replace("\"seq\":1", "\"seq\":1.5").into_bytes(),
            text.replace("\"seq\":1", "\"seq\":1,\"seq\":2")
                .into_bytes(),
            good[..good.len() - 1].to_vec(),
            [good.as_slice(), b" x"].concat(),
            b"".to_vec(),
        ];
        let mut invalid = good.clone();
        let at = text.find("\"x\"").unwrap() + 1;
        invalid[at] = 0xff;
        lines.push(invalid);
        for line in &lines {
            let slice: Result<Entry, String> =
                serde_json::from_slice(line).map_err(|e| e.to_string());
            let ours = Entry::from_json(line).map_err(|e| match e {
                EntryError::Json(m) => m,
                other => panic!("{other:?}"),
            });
            assert_eq!(ours, slice, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn unknown_fields_are_malformed() {
        let entry = event().seal(1, Hash::default()).unwrap();
        let mut v = serde_json::to_value(&entry).unwrap();
        v.as_object_mut().unwrap().insert("extra".into(), json!(1));
        assert!(Entry::from_json(v.to_string().as_bytes()).is_err());
    }
}
