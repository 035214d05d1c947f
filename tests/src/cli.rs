//! Running the built binaries (`writ`, `writ-verify`) and reading what they printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::writ_bin;

/// Asserts that the command succeeded (showing stdout and stderr otherwise) and returns its stdout.
pub fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// Everything the command printed: stdout, then stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `writ-verify` binary of this build, beside `writ`.
pub fn writ_verify_bin() -> PathBuf {
    writ_bin().with_file_name("writ-verify")
}

/// `writ-verify bundle <bundle> --public-key <pem>`; returns its output, success or not.
pub fn writ_verify_bundle(bundle: &Path, pem: &Path) -> Output {
    Command::new(writ_verify_bin())
        .args([
            "bundle",
            bundle.to_str().unwrap(),
            "--public-key",
            pem.to_str().unwrap(),
        ])
        .output()
        .unwrap()
}
