//! Affidavit versions: every submitted or returned-for-revision affidavit (and every sworn
//! amendment, and the draft whose AI draft was replaced) is kept as an immutable version with the SHA-256 of its exact UTF-8 bytes, and any
//! two versions can be compared line by line. An AI-assisted affidavit keeps the tool's draft
//! with it, so the diff from the draft to the sworn text can always be shown (DOMAIN: an AI
//! report tool was found to keep no first drafts).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use similar::{ChangeTag, TextDiff};

/// Why a version was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionReason {
    Submitted,
    ReturnedForRevision,
    /// An amendment the affiant swore to (e.g. facts raised during the oath).
    Amended,
    /// The draft as it stood, with the AI draft it declared, when the author declared another
    /// one: every AI draft is kept.
    AiDraftReplaced,
}

/// `hex(SHA-256(text))`, lowercase, of the text's exact UTF-8 bytes (no normalisation: the
/// version is what was sworn, byte for byte).
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The draft an AI tool produced, kept with the version built on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AiDraft {
    /// The tool's name (and version, where known).
    pub tool: String,
    pub text: String,
    pub sha256: String,
}

impl AiDraft {
    pub fn new(tool: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        Self {
            tool: tool.into(),
            sha256: sha256_hex(&text),
            text,
        }
    }
}

/// One kept version of a warrant's affidavit. Built only by [`AffidavitVersion::first`] and
/// [`AffidavitVersion::next`], so its hash always matches its text; a stored record read back is
/// checked with [`AffidavitVersion::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AffidavitVersion {
    /// 1, 2, … per warrant.
    pub number: u32,
    pub text: String,
    pub sha256: String,
    pub reason: VersionReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_draft: Option<AiDraft>,
}

impl AffidavitVersion {
    pub fn first(
        text: impl Into<String>,
        reason: VersionReason,
        ai_draft: Option<AiDraft>,
    ) -> Self {
        Self::numbered(1, text.into(), reason, ai_draft)
    }

    /// The version after this one. `None` past `u32::MAX` versions.
    pub fn next(
        &self,
        text: impl Into<String>,
        reason: VersionReason,
        ai_draft: Option<AiDraft>,
    ) -> Option<Self> {
        let number = self.number.checked_add(1)?;
        Some(Self::numbered(number, text.into(), reason, ai_draft))
    }

    fn numbered(
        number: u32,
        text: String,
        reason: VersionReason,
        ai_draft: Option<AiDraft>,
    ) -> Self {
        Self {
            number,
            sha256: sha256_hex(&text),
            text,
            reason,
            ai_draft,
        }
    }

    /// Whether the stored hashes match the stored texts.
    pub fn verify(&self) -> bool {
        self.sha256 == sha256_hex(&self.text)
            && self
                .ai_draft
                .as_ref()
                .is_none_or(|d| d.sha256 == sha256_hex(&d.text))
    }

    /// The diff from the AI draft to this version's text, if there was a draft.
    pub fn diff_from_ai_draft(&self) -> Option<LineDiff> {
        self.ai_draft.as_ref().map(|d| {
            diff_lines(
                &d.text,
                &self.text,
                &format!("ai-draft ({})", d.tool),
                &format!("v{}", self.number),
            )
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineOp {
    Equal,
    Insert,
    Delete,
}

/// One line of a diff; line numbers start at 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffLine {
    pub op: LineOp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_line: Option<usize>,
    /// The line without its line break.
    pub text: String,
}

/// A line diff: unified text for people, and every line structured for clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineDiff {
    pub unified: String,
    pub lines: Vec<DiffLine>,
    pub inserted: usize,
    pub deleted: usize,
}

impl LineDiff {
    pub fn is_identical(&self) -> bool {
        self.inserted == 0 && self.deleted == 0
    }
}

/// The diff between two versions (either order), with their numbers and hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionDiff {
    pub from_version: u32,
    pub to_version: u32,
    pub from_sha256: String,
    pub to_sha256: String,
    #[serde(flatten)]
    pub diff: LineDiff,
}

pub fn diff_versions(from: &AffidavitVersion, to: &AffidavitVersion) -> VersionDiff {
    VersionDiff {
        from_version: from.number,
        to_version: to.number,
        from_sha256: from.sha256.clone(),
        to_sha256: to.sha256.clone(),
        diff: diff_lines(
            &from.text,
            &to.text,
            &format!("v{}", from.number),
            &format!("v{}", to.number),
        ),
    }
}

/// A line diff of two texts; the unified text has 3 lines of context and the given labels.
pub fn diff_lines(old: &str, new: &str, old_label: &str, new_label: &str) -> LineDiff {
    let diff = TextDiff::from_lines(old, new);
    let unified = diff
        .unified_diff()
        .context_radius(3)
        .header(old_label, new_label)
        .to_string();
    let mut lines = Vec::new();
    let (mut inserted, mut deleted) = (0, 0);
    for change in diff.iter_all_changes() {
        let op = match change.tag() {
            ChangeTag::Equal => LineOp::Equal,
            ChangeTag::Insert => {
                inserted += 1;
                LineOp::Insert
            }
            ChangeTag::Delete => {
                deleted += 1;
                LineOp::Delete
            }
        };
        let text = change.value();
        let text = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(text);
        lines.push(DiffLine {
            op,
            old_line: change.old_index().map(|i| i + 1),
            new_line: change.new_index().map(|i| i + 1),
            text: text.to_owned(),
        });
    }
    LineDiff {
        unified,
        lines,
        inserted,
        deleted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_sha256_of_the_exact_bytes() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // No normalisation: a trailing newline is a different affidavit.
        assert_ne!(sha256_hex("abc\n"), sha256_hex("abc"));
    }

    #[test]
    fn versions_number_up_and_verify() {
        let v1 = AffidavitVersion::first("one\n", VersionReason::Submitted, None);
        let v2 = v1
            .next("one\ntwo\n", VersionReason::ReturnedForRevision, None)
            .unwrap();
        assert_eq!((v1.number, v2.number), (1, 2));
        assert!(v1.verify() && v2.verify());
        let mut tampered = v2.clone();
        tampered.text.push('!');
        assert!(!tampered.verify());
        let last = AffidavitVersion {
            number: u32::MAX,
            ..v1.clone()
        };
        assert_eq!(last.next("x", VersionReason::Amended, None), None);
    }

    #[test]
    fn a_diff_between_versions_is_unified_and_structured() {
        let v1 = AffidavitVersion::first(
            "I am Officer Reyes.\nI saw a red car.\nIt was 21:40.\n",
            VersionReason::Submitted,
            None,
        );
        let v2 = v1
            .next(
                "I am Officer Reyes.\nI saw a blue car.\nIt was 21:40.\n",
                VersionReason::ReturnedForRevision,
                None,
            )
            .unwrap();
        let d = diff_versions(&v1, &v2);
        assert_eq!((d.from_version, d.to_version), (1, 2));
        assert_eq!(d.from_sha256, v1.sha256);
        assert_eq!((d.diff.inserted, d.diff.deleted), (1, 1));
        assert_eq!(
            d.diff.unified,
            "--- v1\n+++ v2\n@@ -1,3 +1,3 @@\n I am Officer Reyes.\n-I saw a red car.\n+I saw a blue car.\n It was 21:40.\n"
        );
        let ops: Vec<(LineOp, Option<usize>, Option<usize>, &str)> = d
            .diff
            .lines
            .iter()
            .map(|l| (l.op, l.old_line, l.new_line, l.text.as_str()))
            .collect();
        assert_eq!(
            ops,
            [
                (LineOp::Equal, Some(1), Some(1), "I am Officer Reyes."),
                (LineOp::Delete, Some(2), None, "I saw a red car."),
                (LineOp::Insert, None, Some(2), "I saw a blue car."),
                (LineOp::Equal, Some(3), Some(3), "It was 21:40."),
            ]
        );
    }

    #[test]
    fn identical_texts_have_an_empty_diff() {
        let d = diff_lines("same\n", "same\n", "a", "b");
        assert!(d.is_identical());
        assert_eq!(d.unified, "");
    }

    #[test]
    fn crlf_lines_are_shown_without_their_break() {
        let d = diff_lines("a\r\nb\r\n", "a\r\nc\r\n", "a", "b");
        let texts: Vec<&str> = d.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a", "b", "c"]);
    }

    #[test]
    fn the_ai_draft_is_kept_and_diffed_against_the_sworn_text() {
        let draft = AiDraft::new("DraftOne 2.1", "The suspect fled.\n");
        let v1 = AffidavitVersion::first(
            "The suspect fled on foot northbound.\n",
            VersionReason::Submitted,
            Some(draft.clone()),
        );
        assert!(v1.verify());
        let d = v1.diff_from_ai_draft().unwrap();
        assert!(
            d.unified
                .starts_with("--- ai-draft (DraftOne 2.1)\n+++ v1\n"),
            "{}",
            d.unified
        );
        assert_eq!((d.inserted, d.deleted), (1, 1));
        let json = serde_json::to_value(&v1).unwrap();
        assert_eq!(json["aiDraft"]["sha256"], serde_json::json!(draft.sha256));
        assert_eq!(json["reason"], serde_json::json!("submitted"));
        assert_eq!(
            AffidavitVersion::first("x", VersionReason::Submitted, None).diff_from_ai_draft(),
            None
        );
    }
}
