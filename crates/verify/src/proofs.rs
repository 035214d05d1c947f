//! `writ-verify inclusion` and `writ-verify consistency`.

use std::path::{Path, PathBuf};

use writ_audit_chain::{
    AuditKey, Checkpoint, ConsistencyProof, Entry, Hash, InclusionProof, SignedNote, VerifierKey,
    verify_note,
};

use crate::Outcome;
use crate::checks::Checks;
use crate::input::{load_keys, load_note, read_small_file};

/// Verifies a checkpoint note with the trusted keys, named `key_name` or the checkpoint origin.
fn check_note(
    checks: &mut Checks,
    label: &str,
    note: &SignedNote,
    keys: &[AuditKey],
    key_name: Option<&str>,
) -> Option<Checkpoint> {
    let checkpoint = match note.checkpoint() {
        Ok(cp) => cp,
        Err(e) => {
            checks.check(label, Err(e.to_string()));
            return None;
        }
    };
    checks.info(format!(
        "{label}: log {}, tree size {}, root {}, signed {}",
        checkpoint.origin,
        checkpoint.size,
        checkpoint.root.to_base64(),
        checkpoint.time
    ));
    let name = key_name.unwrap_or(&checkpoint.origin);
    let verifiers: Vec<VerifierKey> = keys
        .iter()
        .filter_map(|k| VerifierKey::new(name, k.clone()).ok())
        .collect();
    let result = verify_note(note, &verifiers)
        .map(|v| {
            let ids: Vec<String> = v.verified.iter().map(|(_, id)| id.to_string()).collect();
            format!("valid (key id {})", ids.join(", "))
        })
        .map_err(|e| e.to_string());
    checks.check(&format!("{label} signature"), result);
    Some(checkpoint)
}

pub fn inclusion(
    entry_arg: &str,
    proof_path: &Path,
    checkpoint_path: &Path,
    key_paths: &[PathBuf],
    key_name: Option<&str>,
) -> Outcome {
    let mut checks = Checks::new();
    let inputs = (|| {
        let keys = load_keys(key_paths)?;
        let proof = InclusionProof::from_json(&read_small_file(proof_path)?)
            .map_err(|e| format!("{}: {e}", proof_path.display()))?;
        let note = load_note(checkpoint_path)?;
        let entry = read_entry(entry_arg)?;
        Ok::<_, String>((keys, proof, note, entry))
    })();
    let (keys, proof, note, entry) = match inputs {
        Ok(inputs) => inputs,
        Err(e) => return checks.abort(e),
    };

    let entry_hash = match &entry {
        EntryArg::Hash(hash) => {
            checks.info(format!("Entry hash {hash} (claimed seq {})", proof.seq));
            *hash
        }
        EntryArg::Entry(entry) => {
            checks.info(format!(
                "Entry seq {} ({}, {})",
                entry.seq, entry.action, entry.hash
            ));
            let own = match entry.compute_hash() {
                Ok(h) if h == entry.hash => Ok("matches its content".to_owned()),
                Ok(h) => Err(format!(
                    "recorded {}, content hashes to {h} (entry modified)",
                    entry.hash
                )),
                Err(e) => Err(e.to_string()),
            };
            checks.check("Entry hash", own);
            if entry.seq != proof.seq {
                checks.check(
                    "Entry seq",
                    Err(format!(
                        "entry is seq {}, the proof is for seq {}",
                        entry.seq, proof.seq
                    )),
                );
            }
            entry.hash
        }
    };

    let checkpoint = check_note(&mut checks, "Checkpoint", &note, &keys, key_name);
    let proof_result = proof
        .verify_entry_hash(&entry_hash)
        .map(|()| {
            format!(
                "valid: seq {} is leaf {} of the tree of size {}",
                proof.seq,
                proof.seq - 1,
                proof.tree_size
            )
        })
        .map_err(|e| e.to_string());
    checks.check("Inclusion proof", proof_result);
    if let Some(cp) = checkpoint {
        let matches = if proof.tree_size != cp.size {
            Err(format!(
                "proof is for tree size {}, checkpoint is size {}",
                proof.tree_size, cp.size
            ))
        } else if proof.root_hash != cp.root {
            Err("proof's root hash is not the checkpoint's root hash".to_owned())
        } else {
            Ok("proof and checkpoint agree on tree size and root".to_owned())
        };
        checks.check("Checkpoint match", matches);
    }
    checks.finish()
}

enum EntryArg {
    Hash(Hash),
    Entry(Box<Entry>),
}

/// `--entry` is a `sha256:` hash, or a file holding the entry's JSON.
fn read_entry(arg: &str) -> Result<EntryArg, String> {
    if let Ok(hash) = arg.parse::<Hash>() {
        return Ok(EntryArg::Hash(hash));
    }
    let path = Path::new(arg);
    if !path.is_file() {
        return Err(format!(
            "--entry {arg:?} is neither a sha256:<hex> hash nor a file"
        ));
    }
    let bytes = read_small_file(path)?;
    // Any formatting is taken (a log line must be canonical, a file need not), but not a member
    // named twice: the entry read would not be the one a reader sees.
    writ_audit_chain::unique::check_unique_members(&bytes).map_err(|e| format!("{arg}: {e}"))?;
    let entry = Entry::from_json(&bytes).map_err(|e| format!("{arg}: {e}"))?;
    Ok(EntryArg::Entry(Box::new(entry)))
}

pub fn consistency(
    proof_path: &Path,
    old_path: &Path,
    new_path: &Path,
    key_paths: &[PathBuf],
    key_name: Option<&str>,
) -> Outcome {
    let mut checks = Checks::new();
    let inputs = (|| {
        let keys = load_keys(key_paths)?;
        let proof = ConsistencyProof::from_json(&read_small_file(proof_path)?)
            .map_err(|e| format!("{}: {e}", proof_path.display()))?;
        Ok::<_, String>((keys, proof, load_note(old_path)?, load_note(new_path)?))
    })();
    let (keys, proof, old_note, new_note) = match inputs {
        Ok(inputs) => inputs,
        Err(e) => return checks.abort(e),
    };
    let old = check_note(&mut checks, "Old checkpoint", &old_note, &keys, key_name);
    let new = check_note(&mut checks, "New checkpoint", &new_note, &keys, key_name);
    if let (Some(old), Some(new)) = (&old, &new) {
        if old.origin != new.origin {
            checks.check(
                "Checkpoints",
                Err(format!(
                    "they belong to different logs ({} and {})",
                    old.origin, new.origin
                )),
            );
        }
        let agree = |label: &str, size: u64, root: &Hash, cp: &Checkpoint| {
            if size != cp.size || *root != cp.root {
                Err(format!(
                    "proof says size {size} root {}, {label} checkpoint says size {} root {}",
                    root.to_base64(),
                    cp.size,
                    cp.root.to_base64()
                ))
            } else {
                Ok("matches the proof".to_owned())
            }
        };
        // The old checkpoint comes first in time too: one signed after the new one would hide a
        // rollback of the log between them.
        let order = match (
            writ_audit_chain::parse_timestamp_millis(&old.time),
            writ_audit_chain::parse_timestamp_millis(&new.time),
        ) {
            (Some(o), Some(n)) if o <= n => Ok(format!("{} is not after {}", old.time, new.time)),
            (Some(_), Some(_)) => Err(format!(
                "the old checkpoint was signed at {}, after the new one ({})",
                old.time, new.time
            )),
            _ => Err("a checkpoint's time is unreadable".to_owned()),
        };
        checks.check("Checkpoint times", order);
        checks.check(
            "Old checkpoint match",
            agree("old", proof.from_size, &proof.from_root, old),
        );
        checks.check(
            "New checkpoint match",
            agree("new", proof.to_size, &proof.to_root, new),
        );
    }
    let result = proof
        .verify()
        .map(|()| {
            format!(
                "valid: the tree of size {} is a prefix of the tree of size {}",
                proof.from_size, proof.to_size
            )
        })
        .map_err(|e| e.to_string());
    checks.check("Consistency proof", result);
    checks.finish()
}
