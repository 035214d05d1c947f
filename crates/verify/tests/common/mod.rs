//! What the tests of `writ-verify` share: running the real binary and writing its inputs.

// Each test binary uses the part it needs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// How a run of `writ-verify` ended: its exit code and everything it printed.
pub struct Run {
    pub code: i32,
    pub out: String,
}

pub fn writ_verify(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_writ-verify"))
        .args(args)
        .output()
        .expect("run writ-verify");
    Run {
        // No exit code means killed by a signal: never acceptable.
        code: output
            .status
            .code()
            .expect("writ-verify was killed by a signal"),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Writes `bytes` to `dir/name`; the path.
pub fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write a test input");
    path
}
