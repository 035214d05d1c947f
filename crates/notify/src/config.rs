//! The notifier's settings from the environment (README's configuration table lists them).

use std::time::Duration;

use crate::delivery::DeliveryConfig;
use crate::transport::{SmsConfig, SmsProvider, SmtpConfig, SmtpMailer, Transports};

/// Everything the notifier reads at start.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    pub delivery: DeliveryConfig,
    pub smtp: Option<SmtpConfig>,
    pub sms: Option<SmsConfig>,
}

/// A variable that is wrong, and why.
pub type VarError = (&'static str, String);

impl NotifyConfig {
    /// Reads the `WRIT_PUBLIC_URL`, `WRIT_SMTP_*`, `WRIT_SMS_*` and `WRIT_NOTIFY_*` variables
    /// through `var` (unset or blank: `None`). A transport is configured when its URL is; its
    /// other variables are then required.
    pub fn from_vars(var: impl Fn(&'static str) -> Option<String>) -> Result<Self, VarError> {
        let d = DeliveryConfig::default();
        let num = |name: &'static str, default: u64| -> Result<u64, VarError> {
            match var(name) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err((name, format!("{v:?}: a positive integer"))),
                },
            }
        };
        let public_url = var("WRIT_PUBLIC_URL").unwrap_or(d.public_url);
        reqwest::Url::parse(&public_url).map_err(|e| ("WRIT_PUBLIC_URL", e.to_string()))?;
        let delivery = DeliveryConfig {
            public_url,
            poll: Duration::from_millis(num(
                "WRIT_NOTIFY_POLL_MS",
                d.poll.as_millis().try_into().unwrap_or(2000),
            )?),
            max_attempts: u32::try_from(num("WRIT_NOTIFY_MAX_ATTEMPTS", d.max_attempts.into())?)
                .map_err(|e| ("WRIT_NOTIFY_MAX_ATTEMPTS", e.to_string()))?,
            backoff_base: Duration::from_millis(num(
                "WRIT_NOTIFY_BACKOFF_MS",
                d.backoff_base.as_millis().try_into().unwrap_or(30_000),
            )?),
            backoff_max: Duration::from_secs(num(
                "WRIT_NOTIFY_BACKOFF_MAX_SECS",
                d.backoff_max.as_secs(),
            )?),
        };
        let required = |name: &'static str| {
            var(name).ok_or((name, "required when the transport's URL is set".to_owned()))
        };
        let smtp = match var("WRIT_SMTP_URL") {
            None => None,
            Some(url) => Some(SmtpConfig {
                url,
                from: required("WRIT_SMTP_FROM")?,
            }),
        };
        let sms = match var("WRIT_SMS_URL") {
            None => None,
            Some(url) => Some(SmsConfig {
                url,
                account_sid: required("WRIT_SMS_ACCOUNT_SID")?,
                auth_token: required("WRIT_SMS_AUTH_TOKEN")?,
                from: required("WRIT_SMS_FROM")?,
            }),
        };
        let config = Self {
            delivery,
            smtp,
            sms,
        };
        // Fail at start, not at the first alert.
        config.transports()?;
        Ok(config)
    }

    /// The transports configured (none for a channel whose URL is unset).
    pub fn transports(&self) -> Result<Transports, VarError> {
        Ok(Transports {
            email: self
                .smtp
                .as_ref()
                .map(SmtpMailer::new)
                .transpose()
                .map_err(|e| ("WRIT_SMTP_URL", e))?,
            sms: self
                .sms
                .clone()
                .map(SmsProvider::new)
                .transpose()
                .map_err(|e| ("WRIT_SMS_URL", e))?,
        })
    }
}
