//! Passwords: argon2id hashes, a length policy without truncation, and a banned-password list.

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::AuthError;

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Common passwords (see data/README.md for the source), lowercased.
static BANNED: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/banned-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
});

/// How many passwords the banned list holds.
pub fn banned_password_count() -> usize {
    BANNED.len()
}

/// Checks a new password against the policy; the error names the reason.
pub fn check_password_policy(password: &str, username: &str) -> Result<(), AuthError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(AuthError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(AuthError::invalid(
            "password",
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    let lower = password.to_lowercase();
    if BANNED.contains(lower.as_str()) {
        return Err(AuthError::invalid(
            "password",
            "is on the list of commonly used passwords; choose another",
        ));
    }
    if lower == username.to_lowercase() {
        return Err(AuthError::invalid("password", "must not be the username"));
    }
    Ok(())
}

/// argon2id with the configured cost.
#[derive(Clone)]
pub struct PasswordHasherConfig {
    params: Params,
    /// A hash of a random password, verified against when a username is unknown so that a failed
    /// login takes the same time whether or not the user exists.
    dummy: String,
}

impl PasswordHasherConfig {
    pub fn new(memory_kib: u32, iterations: u32) -> Result<Self, AuthError> {
        let params = Params::new(memory_kib, iterations, 1, None)
            .map_err(|e| AuthError::internal(format!("argon2 parameters: {e}")))?;
        let mut me = Self {
            params,
            dummy: String::new(),
        };
        let random: [u8; 16] = rand::random();
        me.dummy = me.hash(&hex::encode(random))?;
        Ok(me)
    }

    fn argon(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    pub fn hash(&self, password: &str) -> Result<String, AuthError> {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        self.argon()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AuthError::internal(format!("argon2: {e}")))
    }

    /// Whether `hash` was made with other parameters than the current ones (then it is rehashed
    /// at the next successful login, so every account costs the same to check).
    pub fn needs_rehash(&self, hash: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(hash) else {
            return true;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return true;
        };
        parsed.algorithm.as_str() != "argon2id"
            || params.m_cost() != self.params.m_cost()
            || params.t_cost() != self.params.t_cost()
            || params.p_cost() != self.params.p_cost()
    }

    /// Verifies `password` against `hash`, or against the dummy hash when `hash` is `None` (and
    /// then always fails). Constant work either way.
    pub fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let (target, real) = match hash {
            Some(h) => (h, true),
            None => (self.dummy.as_str(), false),
        };
        let Ok(parsed) = PasswordHash::new(target) else {
            return false;
        };
        let ok = self
            .argon()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && real
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_large_and_case_insensitive() {
        assert!(banned_password_count() >= 10_000);
        assert!(check_password_policy("Password1", "x").is_err());
        assert!(check_password_policy("PASSWORD123", "x").is_err());
        assert!(check_password_policy("correct horse battery", "x").is_ok());
    }

    #[test]
    fn length_limits_count_characters_and_nothing_is_truncated() {
        assert!(check_password_policy("short1!", "x").is_err());
        assert!(check_password_policy(&"é".repeat(256), "x").is_ok());
        assert!(check_password_policy(&"é".repeat(257), "x").is_err());
        let h = PasswordHasherConfig::new(64, 1).unwrap();
        let long = "a".repeat(200) + "XYZ-tail";
        let hash = h.hash(&long).unwrap();
        assert!(h.verify(&long, Some(&hash)));
        assert!(!h.verify(&("a".repeat(200) + "XYZ-tale"), Some(&hash)));
        assert!(!h.verify(&long, None));
    }

    #[test]
    fn hashes_of_other_parameters_are_flagged_for_rehash() {
        let cheap = PasswordHasherConfig::new(64, 1).unwrap();
        let dearer = PasswordHasherConfig::new(128, 2).unwrap();
        let hash = cheap.hash("a passphrase").unwrap();
        assert!(!cheap.needs_rehash(&hash));
        assert!(dearer.needs_rehash(&hash));
        assert!(dearer.verify("a passphrase", Some(&hash)));
    }
}
