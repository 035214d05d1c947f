//! `writ-verify bundle`: a bundle directory or archive, streamed through
//! `writ_audit_chain::BundleVerifier`.

use std::cell::Cell;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use flate2::read::GzDecoder;
use indicatif::ProgressBar;
use writ_audit_chain::bundle::{
    CERTIFICATE_FILE, CHECKPOINT_FILE, KEYS_DIR, LOG_FILE, MINIMUM_INDEX_FILE,
};
use writ_audit_chain::checkpoint::MAX_NOTE_BYTES;
use writ_audit_chain::{AuditKey, BundleReport, BundleVerifier};

use crate::Outcome;
use crate::input::{MAX_SMALL_FILE, load_keys, progress_bar, read_bounded, read_small_file};

/// More key files than this is not a bundle we made.
const MAX_KEY_FILES: usize = 1024;
const MAX_KEY_FILE: u64 = 64 << 10;

pub fn run(path: &Path, key_paths: &[PathBuf]) -> Outcome {
    let result = load_keys(key_paths).and_then(|keys| {
        if path.is_dir() {
            verify_directory(path, &keys)
        } else {
            verify_archive(path, &keys)
        }
    });
    match result {
        Ok(report) => Outcome {
            text: render(path, &report),
            verified: report.is_valid(),
        },
        Err(e) => Outcome {
            text: format!(
                "Cannot verify {}: {e}\n\nVerification FAILED.\n",
                path.display()
            ),
            verified: false,
        },
    }
}

fn verify_directory(dir: &Path, keys: &[AuditKey]) -> Result<BundleReport, String> {
    let certificate = optional(read_small_file, &dir.join(CERTIFICATE_FILE))?;
    let mut verifier = BundleVerifier::new(certificate.as_deref().unwrap_or_default(), keys);
    if certificate.is_none() {
        verifier.missing_file(CERTIFICATE_FILE);
    }
    let checkpoint_path = dir.join(CHECKPOINT_FILE);
    let checkpoint_read = |p: &Path| {
        read_bounded(
            File::open(p).map_err(|e| e.to_string())?,
            MAX_NOTE_BYTES as u64,
            CHECKPOINT_FILE,
        )
    };
    match optional(checkpoint_read, &checkpoint_path)? {
        Some(text) => verifier.check_checkpoint_file(&text),
        None => verifier.missing_file(CHECKPOINT_FILE),
    }
    let minimum_index_read = |p: &Path| {
        read_bounded(
            File::open(p).map_err(|e| e.to_string())?,
            MAX_NOTE_BYTES as u64,
            MINIMUM_INDEX_FILE,
        )
    };
    let minimum_index = optional(minimum_index_read, &dir.join(MINIMUM_INDEX_FILE))?;
    verifier.check_minimum_index_file(minimum_index.as_deref());
    let mut key_files = Vec::new();
    if let Ok(listing) = fs::read_dir(dir.join(KEYS_DIR)) {
        for item in listing.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".pem") || !item.path().is_file() {
                continue;
            }
            if key_files.len() == MAX_KEY_FILES {
                return Err(format!("more than {MAX_KEY_FILES} key files"));
            }
            let file = File::open(item.path()).map_err(|e| format!("{name}: {e}"))?;
            key_files.push((name.clone(), read_bounded(file, MAX_KEY_FILE, &name)?));
        }
    }
    check_keys(&mut verifier, key_files);

    let log_path = dir.join(LOG_FILE);
    match File::open(&log_path) {
        Ok(file) => {
            let total = file.metadata().map(|m| m.len()).unwrap_or(0);
            let bar = progress_bar(total, "Verifying log.jsonl");
            stream(file, &mut verifier, |v| bar.set_position(v.bytes_read()))?;
            bar.finish_and_clear();
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => verifier.missing_file(LOG_FILE),
        Err(e) => return Err(format!("{}: {e}", log_path.display())),
    }
    Ok(verifier.finish())
}

fn optional(
    read: impl Fn(&Path) -> Result<Vec<u8>, String>,
    path: &Path,
) -> Result<Option<Vec<u8>>, String> {
    if !path.exists() {
        return Ok(None);
    }
    read(path).map(Some)
}

fn check_keys(verifier: &mut BundleVerifier, mut key_files: Vec<(String, Vec<u8>)>) {
    if key_files.is_empty() {
        verifier.missing_file("keys/*.pem");
    }
    key_files.sort();
    for (name, pem) in key_files {
        verifier.check_key_file(&format!("{KEYS_DIR}/{name}"), &pem);
    }
}

/// A file of the bundle, by its name inside the bundle.
#[derive(Debug, PartialEq, Eq)]
enum Member {
    Log,
    Certificate,
    Checkpoint,
    MinimumIndex,
    Key(String),
}

/// Which bundle file an archive path is: the bundle may sit at the archive's root or under
/// one top-level folder. Anything else (and any `..`) is not part of the bundle.
fn member(path: &Path) -> Option<Member> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(s) => parts.push(s.to_str()?),
            Component::CurDir => {}
            _ => return None,
        }
    }
    let known = |s: &str| {
        [
            LOG_FILE,
            CERTIFICATE_FILE,
            CHECKPOINT_FILE,
            MINIMUM_INDEX_FILE,
            KEYS_DIR,
        ]
        .contains(&s)
    };
    let relative = match parts.as_slice() {
        [first, rest @ ..] if !known(first) && rest.first().is_some_and(|s| known(s)) => rest,
        all => all,
    };
    match relative {
        [name] if *name == LOG_FILE => Some(Member::Log),
        [name] if *name == CERTIFICATE_FILE => Some(Member::Certificate),
        [name] if *name == CHECKPOINT_FILE => Some(Member::Checkpoint),
        [name] if *name == MINIMUM_INDEX_FILE => Some(Member::MinimumIndex),
        [dir, name] if *dir == KEYS_DIR && name.ends_with(".pem") => {
            Some(Member::Key((*name).to_owned()))
        }
        _ => None,
    }
}

/// Counts the archive bytes read (compressed, for gzip), to drive the progress bar.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

fn open_archive(path: &Path, count: Rc<Cell<u64>>) -> Result<tar::Archive<Box<dyn Read>>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut reader = BufReader::new(Counting { inner: file, count });
    let magic = reader
        .fill_buf()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let gzip = magic.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gzip {
        Box::new(GzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    Ok(tar::Archive::new(reader))
}

/// Two passes at most: tar has no index, and the log can only be checked once the certificate
/// has been read. If the certificate comes first (as Writ writes bundles), one pass does it.
fn verify_archive(path: &Path, keys: &[AuditKey]) -> Result<BundleReport, String> {
    let damaged =
        |e: std::io::Error| format!("{} is not a readable bundle archive: {e}", path.display());
    let total = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let count = Rc::new(Cell::new(0));
    let bar = progress_bar(total, "Verifying bundle");

    let mut certificate: Option<Vec<u8>> = None;
    let mut checkpoint: Option<Vec<u8>> = None;
    let mut minimum_index: Option<Vec<u8>> = None;
    let mut key_files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut verifier: Option<BundleVerifier> = None;
    let mut logs_seen = 0;

    let mut archive = open_archive(path, count.clone())?;
    for item in archive.entries().map_err(damaged)? {
        let mut item = item.map_err(damaged)?;
        if !item.header().entry_type().is_file() {
            continue;
        }
        let Some(member) = item.path().ok().and_then(|p| member(&p)) else {
            continue;
        };
        match member {
            Member::Certificate => {
                if certificate.is_some() {
                    return Err("the archive holds two certificate.json".into());
                }
                certificate = Some(read_bounded(&mut item, MAX_SMALL_FILE, CERTIFICATE_FILE)?);
            }
            Member::Checkpoint => {
                if checkpoint.is_some() {
                    return Err("the archive holds two checkpoint files".into());
                }
                checkpoint = Some(read_bounded(
                    &mut item,
                    MAX_NOTE_BYTES as u64,
                    CHECKPOINT_FILE,
                )?);
            }
            Member::MinimumIndex => {
                if minimum_index.is_some() {
                    return Err("the archive holds two minimum-index files".into());
                }
                minimum_index = Some(read_bounded(
                    &mut item,
                    MAX_NOTE_BYTES as u64,
                    MINIMUM_INDEX_FILE,
                )?);
            }
            Member::Key(name) => {
                if key_files.len() == MAX_KEY_FILES {
                    return Err(format!("more than {MAX_KEY_FILES} key files"));
                }
                let pem = read_bounded(&mut item, MAX_KEY_FILE, &name)?;
                key_files.push((name, pem));
            }
            Member::Log => {
                logs_seen += 1;
                if logs_seen > 1 {
                    return Err("the archive holds two log.jsonl".into());
                }
                if let Some(cert) = &certificate {
                    let mut v = BundleVerifier::new(cert, keys);
                    stream(&mut item, &mut v, |_| bar.set_position(count.get()))?;
                    verifier = Some(v);
                }
            }
        }
    }

    let mut verifier = match verifier {
        Some(v) => v,
        None => {
            let mut v = BundleVerifier::new(certificate.as_deref().unwrap_or_default(), keys);
            if certificate.is_none() {
                v.missing_file(CERTIFICATE_FILE);
            }
            if logs_seen == 0 {
                v.missing_file(LOG_FILE);
            } else {
                second_pass(path, &mut v, &bar)?;
            }
            v
        }
    };
    bar.finish_and_clear();
    match checkpoint {
        Some(text) => verifier.check_checkpoint_file(&text),
        None => verifier.missing_file(CHECKPOINT_FILE),
    }
    verifier.check_minimum_index_file(minimum_index.as_deref());
    check_keys(&mut verifier, key_files);
    Ok(verifier.finish())
}

fn second_pass(
    path: &Path,
    verifier: &mut BundleVerifier,
    bar: &ProgressBar,
) -> Result<(), String> {
    let damaged =
        |e: std::io::Error| format!("{} is not a readable bundle archive: {e}", path.display());
    let count = Rc::new(Cell::new(0));
    let mut archive = open_archive(path, count.clone())?;
    for item in archive.entries().map_err(damaged)? {
        let mut item = item.map_err(damaged)?;
        let is_log = item.header().entry_type().is_file()
            && item.path().ok().and_then(|p| member(&p)) == Some(Member::Log);
        if is_log {
            return stream(&mut item, verifier, |_| bar.set_position(count.get()));
        }
    }
    Err("log.jsonl vanished between two reads of the archive".into())
}

fn stream(
    mut reader: impl Read,
    verifier: &mut BundleVerifier,
    mut progress: impl FnMut(&BundleVerifier),
) -> Result<(), String> {
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                verifier.update(buf.get(..n).unwrap_or_default());
                progress(verifier);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read log.jsonl: {e}")),
        }
    }
}

fn render(source: &Path, r: &BundleReport) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "Validating audit export {}", source.display());
    if let (Some(agency), Some(origin)) = (&r.agency_id, &r.origin) {
        let _ = writeln!(w, "Agency {agency}, log {origin}");
    }
    let requested = match r.requested_range {
        Some(range) => match range.last_seq {
            Some(last) => format!("seq {} to {last}", range.first_seq),
            None => format!("seq {} to the latest entry", range.first_seq),
        },
        None => "unknown (certificate unreadable)".to_owned(),
    };
    let _ = writeln!(w, "Results requested for {requested}");
    if let Some(c) = r.certified_range {
        let _ = writeln!(
            w,
            "Results certified for seq {} to {}",
            c.first_seq, c.last_seq
        );
    }
    match r.found_range {
        Some(f) => {
            let _ = writeln!(
                w,
                "Results found for seq {} to {}:",
                f.first_seq, f.last_seq
            );
        }
        None => {
            let _ = writeln!(w, "Results found: no readable entries");
        }
    }
    let _ = writeln!(w);
    let _ = writeln!(w, "{}/{} entries valid", r.entries_valid, r.entries_total);
    if let Some(c) = &r.checkpoint {
        let _ = writeln!(w, "Checkpoint: tree size {}, signed {}", c.size, c.time);
    }
    let _ = writeln!(w, "Checkpoint signature: {}", r.checkpoint_signature);
    if let Some(m) = &r.minimum_index {
        let _ = writeln!(
            w,
            "Minimum index: seq {} (entries before it pruned), prevHash {}, tree size {}, signed {}",
            m.minimum_index, m.prev_hash, m.tree_size, m.time
        );
        let _ = writeln!(w, "Minimum-index signature: {}", m.signature);
    }
    let _ = writeln!(w, "Certificate signature: {}", r.certificate_signature);
    let _ = writeln!(
        w,
        "log.jsonl SHA-256: {} ({} bytes)",
        r.log_sha256.to_hex(),
        r.log_bytes
    );

    if !r.failures.is_empty() {
        let _ = writeln!(w);
    }
    for failure in &r.failures {
        let _ = writeln!(w, "FAILED {failure}");
    }
    if r.omitted_entry_failures > 0 {
        let _ = writeln!(
            w,
            "FAILED … and {} more invalid entries",
            r.omitted_entry_failures
        );
    }
    for warning in &r.warnings {
        let _ = writeln!(w, "WARNING {warning}");
    }
    let _ = writeln!(w);
    if r.is_valid() {
        let _ = writeln!(w, "All checks passed.");
    } else {
        let problems = r.failures.len() as u64 + r.omitted_entry_failures;
        let first = r
            .first_bad_seq()
            .map(|s| format!("; first bad seq {s}"))
            .unwrap_or_default();
        let _ = writeln!(w, "Verification FAILED: {problems} problem(s){first}.");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_map_to_bundle_files() {
        let m = |p: &str| member(Path::new(p));
        assert_eq!(m("log.jsonl"), Some(Member::Log));
        assert_eq!(m("./certificate.json"), Some(Member::Certificate));
        assert_eq!(m("export-2026-11-24/checkpoint"), Some(Member::Checkpoint));
        assert_eq!(m("export/minimum-index"), Some(Member::MinimumIndex));
        assert_eq!(
            m("export/keys/f857ae4e.pem"),
            Some(Member::Key("f857ae4e.pem".into()))
        );
        assert_eq!(m("keys/a.pem"), Some(Member::Key("a.pem".into())));
        assert_eq!(m("a/b/log.jsonl"), None);
        assert_eq!(m("../log.jsonl"), None);
        assert_eq!(m("/log.jsonl"), None);
        assert_eq!(m("keys/a.txt"), None);
        assert_eq!(m("other.txt"), None);
    }
}
