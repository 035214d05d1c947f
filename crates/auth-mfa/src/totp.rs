//! TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps, one step of skew). totp-rs checks a code; refusing
//! a replayed time step (IA-2(8)) is ours: callers store the accepted step and pass it back in.

use totp_rs::{Builder, Secret, Totp};

use crate::AuthError;

/// A fresh 160-bit secret.
pub fn generate_secret() -> Vec<u8> {
    rand::random::<[u8; 20]>().to_vec()
}

pub fn secret_base32(secret: &[u8]) -> String {
    Secret::from(secret.to_vec()).to_base32()
}

pub fn secret_from_base32(s: &str) -> Result<Vec<u8>, AuthError> {
    Secret::try_from_base32(s.trim().replace(' ', "").to_uppercase())
        .map(|s| s.as_ref().to_vec())
        .map_err(|_| AuthError::invalid("secret", "not a base32 TOTP secret"))
}

fn totp(secret: &[u8], issuer: &str, account: &str) -> Result<Totp, AuthError> {
    Builder::new()
        .with_secret(secret.to_vec())
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build()
        .map_err(|e| AuthError::internal(format!("totp: {e}")))
}

/// What an authenticator app needs: the otpauth:// URI and the same as a QR code PNG.
pub fn provisioning(
    secret: &[u8],
    issuer: &str,
    account: &str,
) -> Result<(String, Vec<u8>), AuthError> {
    let t = totp(secret, issuer, account)?;
    let uri = t
        .to_url()
        .map_err(|e| AuthError::internal(format!("totp: {e}")))?;
    let png = t
        .to_qr_png()
        .map_err(|e| AuthError::internal(format!("totp qr: {e}")))?;
    Ok((uri, png))
}

/// The code for now (for `writ totp` and tests).
pub fn current_code(secret: &[u8]) -> Result<String, AuthError> {
    Ok(totp(secret, "Writ", "user")?.generate_current().to_string())
}

/// The code for a given Unix time.
pub fn code_at(secret: &[u8], unix_time: u64) -> Result<String, AuthError> {
    Ok(totp(secret, "Writ", "user")?
        .generate(unix_time)
        .to_string())
}

/// The time step `code` matches now, if any, and only if it is later than `last_step`.
pub fn accept(secret: &[u8], code: &str, last_step: Option<i64>) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret, "Writ", "user").ok()?;
    let step = i64::try_from(t.check_current(code)?).ok()?;
    match last_step {
        Some(last) if step <= last => None,
        _ => Some(step),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_accepted_once() {
        let s = generate_secret();
        let code = current_code(&s).unwrap();
        let step = accept(&s, &code, None).unwrap();
        assert_eq!(accept(&s, &code, Some(step)), None);
        assert_eq!(accept(&s, "12345", None), None);
        assert_eq!(secret_from_base32(&secret_base32(&s)).unwrap(), s);
    }
}
