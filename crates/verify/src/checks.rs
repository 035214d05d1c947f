//! Reporting checks line by line, as every subcommand prints them.

use std::fmt::Write as _;

use crate::Outcome;

/// Collects results line by line; any failure makes the whole outcome fail.
pub struct Checks {
    text: String,
    failed: bool,
}

impl Checks {
    pub fn new() -> Checks {
        Checks {
            text: String::new(),
            failed: false,
        }
    }

    pub fn info(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(self.text, "{}", line.as_ref());
    }

    pub fn check(&mut self, what: &str, result: Result<String, String>) {
        match result {
            Ok(detail) => self.info(format!("{what}: {detail}")),
            Err(reason) => {
                self.failed = true;
                self.info(format!("FAILED {what}: {reason}"));
            }
        }
    }

    pub fn finish(mut self) -> Outcome {
        self.info("");
        if self.failed {
            self.info("Verification FAILED.");
        } else {
            self.info("All checks passed.");
        }
        Outcome {
            text: self.text,
            verified: !self.failed,
        }
    }

    pub fn abort(mut self, reason: String) -> Outcome {
        self.failed = true;
        self.info(format!("FAILED {reason}"));
        self.finish()
    }
}
