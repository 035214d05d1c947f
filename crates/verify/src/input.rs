//! Reading the auditor's files: always bounded, never trusting sizes or encodings.

use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use writ_audit_chain::{AuditKey, SignedNote};

/// Small files (certificate, checkpoint, keys, proofs, entries) are read whole, up to this.
pub const MAX_SMALL_FILE: u64 = 16 << 20;

/// Reads at most `limit` bytes of `reader`; more is an error rather than a large allocation.
pub fn read_bounded(reader: impl Read, limit: u64, what: &str) -> Result<Vec<u8>, String> {
    let mut data = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("cannot read {what}: {e}"))?;
    if data.len() as u64 > limit {
        return Err(format!("{what} is larger than {limit} bytes"));
    }
    Ok(data)
}

pub fn read_small_file(path: &Path) -> Result<Vec<u8>, String> {
    let what = path.display().to_string();
    let file = File::open(path).map_err(|e| format!("cannot open {what}: {e}"))?;
    read_bounded(file, MAX_SMALL_FILE, &what)
}

pub fn read_text_file(path: &Path) -> Result<String, String> {
    String::from_utf8(read_small_file(path)?)
        .map_err(|_| format!("{} is not UTF-8 text", path.display()))
}

/// The keys given with `--public-key`.
pub fn load_keys(paths: &[impl AsRef<Path>]) -> Result<Vec<AuditKey>, String> {
    paths
        .iter()
        .map(|p| {
            let p = p.as_ref();
            let pem = read_text_file(p)?;
            AuditKey::from_pem(&pem).map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect()
}

pub fn load_note(path: &Path) -> Result<SignedNote, String> {
    let text = read_text_file(path)?;
    SignedNote::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A byte progress bar on stderr, only when stderr is a terminal (never in logs or pipes).
pub fn progress_bar(total: u64, label: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(label.to_owned());
    bar
}

/// The trusted time-stamping authority certificates in the PEM files `paths` (several per file).
pub fn load_tsa_certs(
    paths: &[PathBuf],
) -> Result<Vec<writ_audit_chain::timestamp::TsaCertificate>, String> {
    let mut certs = Vec::new();
    for path in paths {
        let pem = String::from_utf8(read_small_file(path)?)
            .map_err(|_| format!("{}: not a PEM file", path.display()))?;
        certs.extend(
            writ_audit_chain::timestamp::TsaCertificate::all_from_pem(&pem)
                .map_err(|e| format!("{}: {e}", path.display()))?,
        );
    }
    Ok(certs)
}

/// SHA-256 and length of the file at `path`, read in 64 KiB pieces (with a progress bar on a
/// terminal): documents may be large.
pub fn hash_file(path: &Path) -> Result<(writ_audit_chain::Hash, u64), String> {
    let what = path.display();
    let mut file = File::open(path).map_err(|e| format!("cannot open {what}: {e}"))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = progress_bar(total, "Hashing document");
    let mut hasher = writ_audit_chain::signature_record::DocumentHasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("cannot read {what}: {e}")),
        };
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(hasher.finish())
}

/// The one of `keys` that signed (`signed_by`), or why none is: what `what` is signed by and
/// what was given.
pub fn signing_key<'k>(
    signed_by: writ_audit_chain::KeyId,
    keys: &'k [AuditKey],
    what: &str,
) -> Result<&'k AuditKey, String> {
    keys.iter()
        .find(|k| k.key_id() == signed_by)
        .ok_or_else(|| {
            let given: Vec<String> = keys.iter().map(|k| k.key_id().to_string()).collect();
            let given = match given.as_slice() {
                [one] => format!("the given public key is key {one}"),
                many => format!("the given public keys are {}", many.join(", ")),
            };
            format!("the {what} is signed by key {signed_by}, {given}")
        })
}
