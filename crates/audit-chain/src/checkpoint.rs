//! Checkpoints (c2sp.org/tlog-checkpoint) and signed notes (c2sp.org/signed-note).
//!
//! A Writ checkpoint body is
//!
//! ```text
//! <origin>\n<tree size>\n<base64 root hash>\ntime <YYYY-MM-DDTHH:MM:SS.mmmZ>\n
//! ```
//!
//! and is signed as a note: body, blank line, then one line per signature,
//! `— <key name> <base64(key id ‖ DER ECDSA signature)>\n`. Nothing here signs: the signature
//! comes from the agency's KMS key, asynchronously, elsewhere. This module only says what to
//! sign ([`signing_digest`]), assembles the note and verifies it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::error::{CheckpointError, KeyError, NoteError};
use crate::hash::Hash;
use crate::keys::{KeyId, VerifierKey, ecdsa_sig_to_der, is_valid_key_name};

/// The em dash (U+2014) and space that begin a signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Prefix of the checkpoint's extension line carrying the signing time.
pub const TIME_EXTENSION_PREFIX: &str = "time ";

/// Notes larger than this are refused before parsing.
pub const MAX_NOTE_BYTES: usize = 1 << 20;

/// At most this many signature lines (c2sp.org/signed-note requires accepting at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// SHA-256 of the exact bytes a signature covers: what to hand a KMS that signs digests
/// (AWS KMS `MessageType=DIGEST`, Azure Key Vault `sign` with ES256).
pub fn signing_digest(message: &[u8]) -> [u8; 32] {
    Hash::of(message).0
}

/// A tree head: the log `origin`, its `size`, its Merkle `root` and when it was signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub time: String,
}

impl Checkpoint {
    /// Checks the fields can be written as a body that parses back to the same checkpoint.
    pub fn validate(&self) -> Result<(), CheckpointError> {
        if !is_valid_key_name(&self.origin) {
            return Err(CheckpointError::Malformed(
                "origin must be non-empty, without spaces, '+' or control characters".into(),
            ));
        }
        if !crate::time::is_valid_timestamp(&self.time) {
            return Err(CheckpointError::Malformed(
                "time must be YYYY-MM-DDTHH:MM:SS.mmmZ".into(),
            ));
        }
        Ok(())
    }

    /// The note text to sign.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n{TIME_EXTENSION_PREFIX}{}\n",
            self.origin,
            self.size,
            self.root.to_base64(),
            self.time
        )
    }

    /// Parses a checkpoint body; exactly the four lines [`Checkpoint::body`] writes.
    pub fn parse_body(text: &str) -> Result<Checkpoint, CheckpointError> {
        let malformed = |m: &str| CheckpointError::Malformed(m.to_owned());
        let Some(text) = text.strip_suffix('\n') else {
            return Err(malformed("body must end with a newline"));
        };
        let lines: Vec<&str> = text.split('\n').collect();
        let [origin, size, root, time_line] = lines.as_slice() else {
            return Err(malformed(
                "body must have exactly four lines: origin, tree size, root hash, time",
            ));
        };
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(malformed(
                "tree size must be a decimal number without leading zeros",
            ));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| malformed("tree size does not fit in 64 bits"))?;
        let root = Hash::from_base64(root)
            .map_err(|_| malformed("root hash must be base64 of 32 bytes"))?;
        let Some(time) = time_line.strip_prefix(TIME_EXTENSION_PREFIX) else {
            return Err(malformed(
                "fourth line must be the signing time, \"time <timestamp>\"",
            ));
        };
        let checkpoint = Checkpoint {
            origin: (*origin).to_owned(),
            size,
            root,
            time: time.to_owned(),
        };
        checkpoint.validate()?;
        Ok(checkpoint)
    }
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    pub key_name: String,
    pub key_id: KeyId,
    /// The signature over the note text. For ECDSA, DER on the wire; [`SignedNote::assemble`]
    /// also accepts raw `r ‖ s` and converts it.
    pub sig_bytes: Vec<u8>,
}

impl NoteSignature {
    fn line(&self) -> String {
        let mut blob = Vec::with_capacity(4 + self.sig_bytes.len());
        blob.extend_from_slice(&self.key_id.0);
        blob.extend_from_slice(&self.sig_bytes);
        format!(
            "{SIGNATURE_PREFIX}{} {}\n",
            self.key_name,
            BASE64.encode(blob)
        )
    }
}

/// A note text with its signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedNote {
    body: String,
    signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Puts a body and its signatures together. ECDSA signatures are normalized to DER, so the
    /// raw `r ‖ s` of Azure Key Vault can be passed as is.
    pub fn assemble(
        body: impl Into<String>,
        signatures: Vec<NoteSignature>,
    ) -> Result<SignedNote, NoteError> {
        let body = body.into();
        check_body(&body)?;
        if signatures.is_empty() {
            return Err(NoteError::Malformed(
                "a note needs at least one signature".into(),
            ));
        }
        if signatures.len() > MAX_SIGNATURES {
            return Err(NoteError::Malformed("too many signatures".into()));
        }
        let signatures = signatures
            .into_iter()
            .map(|s| {
                if !is_valid_key_name(&s.key_name) {
                    return Err(NoteError::Key(KeyError::Name(s.key_name)));
                }
                Ok(NoteSignature {
                    sig_bytes: ecdsa_sig_to_der(&s.sig_bytes)?,
                    ..s
                })
            })
            .collect::<Result<Vec<_>, NoteError>>()?;
        Ok(SignedNote { body, signatures })
    }

    /// Parses a signed note: text, blank line, signature lines (the text ends at the *last*
    /// blank line).
    pub fn parse(text: &str) -> Result<SignedNote, NoteError> {
        let malformed = |m: &str| NoteError::Malformed(m.to_owned());
        if text.len() > MAX_NOTE_BYTES {
            return Err(malformed("note too large"));
        }
        if text.chars().any(|c| (c as u32) < 0x20 && c != '\n') {
            return Err(malformed("control characters other than newline"));
        }
        let Some(split) = text.rfind("\n\n") else {
            return Err(malformed("no blank line before the signatures"));
        };
        let (body, sigs) = (&text[..=split], &text[split + 2..]);
        check_body(body)?;
        let Some(sigs) = sigs.strip_suffix('\n') else {
            return Err(malformed("signature lines must end with a newline"));
        };
        let mut signatures = Vec::new();
        for line in sigs.split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(malformed("too many signatures"));
            }
            let Some(rest) = line.strip_prefix(SIGNATURE_PREFIX) else {
                return Err(malformed(
                    "signature line must start with an em dash and a space",
                ));
            };
            let Some((name, b64)) = rest.split_once(' ') else {
                return Err(malformed("signature line must be \"— <name> <signature>\""));
            };
            if !is_valid_key_name(name) {
                return Err(malformed("invalid key name in signature line"));
            }
            let blob = BASE64
                .decode(b64)
                .map_err(|_| malformed("signature is not standard base64"))?;
            let (Some(id), Some(sig)) = (blob.get(..4), blob.get(4..)) else {
                return Err(malformed("signature shorter than its 4-byte key id"));
            };
            if sig.is_empty() {
                return Err(malformed("empty signature"));
            }
            let mut key_id = [0u8; 4];
            key_id.copy_from_slice(id);
            signatures.push(NoteSignature {
                key_name: name.to_owned(),
                key_id: KeyId(key_id),
                sig_bytes: sig.to_vec(),
            });
        }
        Ok(SignedNote {
            body: body.to_owned(),
            signatures,
        })
    }

    /// The signed text.
    pub fn body(&self) -> &str {
        &self.body
    }

    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// The body read as a checkpoint.
    pub fn checkpoint(&self) -> Result<Checkpoint, CheckpointError> {
        Checkpoint::parse_body(&self.body)
    }

    /// The full note text.
    pub fn to_text(&self) -> String {
        let mut out = self.body.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.line());
        }
        out
    }
}

impl fmt::Display for SignedNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

fn check_body(body: &str) -> Result<(), NoteError> {
    if body.is_empty() || !body.ends_with('\n') {
        return Err(NoteError::Malformed(
            "note text must end with a newline".into(),
        ));
    }
    if body.chars().any(|c| (c as u32) < 0x20 && c != '\n') {
        return Err(NoteError::Malformed(
            "note text must not contain control characters other than newline".into(),
        ));
    }
    Ok(())
}

/// Outcome of a successful note verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerification {
    /// Trusted keys whose signatures verified, by (name, key id), in note order.
    pub verified: Vec<(String, KeyId)>,
    /// Signatures from keys not in the trusted set (ignored, as c2sp.org/signed-note requires).
    pub unknown: usize,
}

/// Verifies `note` against `keys`. A signature counts when both its key name and key id match
/// a trusted key. Succeeds when at least one trusted signature verifies and none fails (a
/// failing signature from a trusted key rejects the whole note).
pub fn verify_note(note: &SignedNote, keys: &[VerifierKey]) -> Result<NoteVerification, NoteError> {
    let mut verified = Vec::new();
    let mut unknown = 0;
    for sig in &note.signatures {
        let Some(key) = keys
            .iter()
            .find(|k| k.name() == sig.key_name && k.key_id() == sig.key_id)
        else {
            unknown += 1;
            continue;
        };
        // DER only on the wire, as the signature type specifies.
        let ok = p256::ecdsa::Signature::from_der(&sig.sig_bytes)
            .is_ok_and(|s| key.key().verify_signature(note.body.as_bytes(), &s).is_ok());
        if !ok {
            return Err(NoteError::BadSignature {
                key_name: sig.key_name.clone(),
                key_id: sig.key_id,
            });
        }
        if !verified
            .iter()
            .any(|(n, id)| n == &sig.key_name && *id == sig.key_id)
        {
            verified.push((sig.key_name.clone(), sig.key_id));
        }
    }
    if verified.is_empty() {
        return Err(NoteError::NoTrustedSignature);
    }
    Ok(NoteVerification { verified, unknown })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::AuditKey;

    use p256::ecdsa::SigningKey;

    fn key(seed: u8) -> (SigningKey, VerifierKey) {
        let sk = SigningKey::from_slice(&[seed; 32]).unwrap();
        let vk = VerifierKey::new(
            "writ.example/audit/a1",
            AuditKey::from_verifying_key(*sk.verifying_key()).unwrap(),
        )
        .unwrap();
        (sk, vk)
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "writ.example/audit/a1".into(),
            size: 5,
            root: Hash::of(b"root"),
            time: "2026-11-23T15:04:05.123Z".into(),
        }
    }

    fn sign(sk: &SigningKey, vk: &VerifierKey, body: &str, raw: bool) -> NoteSignature {
        let sig = crate::fixtures::sign_low_s(sk, body.as_bytes());
        NoteSignature {
            key_name: vk.name().into(),
            key_id: vk.key_id(),
            sig_bytes: if raw {
                sig.to_bytes().to_vec()
            } else {
                sig.to_der().as_bytes().to_vec()
            },
        }
    }

    #[test]
    fn body_round_trips() {
        let cp = checkpoint();
        let body = cp.body();
        assert!(body.starts_with("writ.example/audit/a1\n5\n"));
        assert!(body.ends_with("\ntime 2026-11-23T15:04:05.123Z\n"));
        assert_eq!(Checkpoint::parse_body(&body).unwrap(), cp);
    }

    #[test]
    fn body_parser_is_strict() {
        let good = checkpoint().body();
        for bad in [
            good.trim_end().to_owned(),
            good.replace("\n5\n", "\n05\n"),
            good.replace("\n5\n", "\n-5\n"),
            good.replace("\n5\n", "\n99999999999999999999\n"),
            good.replace("time ", "time="),
            format!("{good}extra\n"),
            good.replace("writ.example/audit/a1", ""),
            "a\n1\n".to_owned(),
        ] {
            assert!(Checkpoint::parse_body(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn signed_note_round_trips_and_verifies_with_rotation() {
        let (old_sk, old_vk) = key(1);
        let (new_sk, new_vk) = key(2);
        let body = checkpoint().body();
        let note = SignedNote::assemble(
            body.clone(),
            vec![
                sign(&old_sk, &old_vk, &body, false),
                sign(&new_sk, &new_vk, &body, true),
            ],
        )
        .unwrap();
        let text = note.to_text();
        assert!(text.contains("\n\n\u{2014} writ.example/audit/a1 "));
        let parsed = SignedNote::parse(&text).unwrap();
        assert_eq!(parsed, note);
        assert_eq!(parsed.checkpoint().unwrap(), checkpoint());

        let both = verify_note(&parsed, &[old_vk.clone(), new_vk.clone()]).unwrap();
        assert_eq!(both.verified.len(), 2);
        let only_new = verify_note(&parsed, std::slice::from_ref(&new_vk)).unwrap();
        assert_eq!(
            only_new.verified,
            vec![(new_vk.name().to_owned(), new_vk.key_id())]
        );
        assert_eq!(only_new.unknown, 1);
    }

    #[test]
    fn tampered_or_untrusted_notes_fail() {
        let (sk, vk) = key(1);
        let (_, other) = key(3);
        let body = checkpoint().body();
        let text = SignedNote::assemble(body.clone(), vec![sign(&sk, &vk, &body, false)])
            .unwrap()
            .to_text();
        let tampered = SignedNote::parse(&text.replacen("\n5\n", "\n6\n", 1)).unwrap();
        assert!(matches!(
            verify_note(&tampered, std::slice::from_ref(&vk)),
            Err(NoteError::BadSignature { .. })
        ));
        let note = SignedNote::parse(&text).unwrap();
        assert_eq!(
            verify_note(&note, std::slice::from_ref(&other)),
            Err(NoteError::NoTrustedSignature)
        );
        // Same key id under another name is not the same key.
        let renamed = VerifierKey::new("other.example/log", vk.key().clone()).unwrap();
        assert_eq!(
            verify_note(&note, &[renamed]),
            Err(NoteError::NoTrustedSignature)
        );
    }

    #[test]
    fn garbage_notes_are_errors() {
        for bad in [
            "",
            "\n\n",
            "body\n\n",
            "body\n\n\u{2014} name\n",
            "body\n\n\u{2014} name AAAA\n",
            "body\n\n\u{2014} name !!!!\n",
            "body\n\n-- name AAAAAAAA\n",
            "body\r\n\n\u{2014} name AAAAAAAA\n",
            "body\n\n\u{2014} name AAAAAAAA",
        ] {
            assert!(SignedNote::parse(bad).is_err(), "{bad:?}");
        }
    }
}
