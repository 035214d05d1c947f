//! The client of an RFC 3161 time-stamping authority (TSA): it stamps the agency's signature on a
//! signature record, so that a third party vouches for when the record was signed.
//!
//! Optional: without `WRIT_TSA_URL` there are no timestamps. Every token is verified against the
//! configured TSA certificates (`WRIT_TSA_CERT`) before it is returned, so a record never carries
//! a token an auditor's check would refuse. The request is HTTP(S) POST of
//! `application/timestamp-query` (RFC 3161 §3.4) with a random nonce, a 10 s timeout and a 64 KiB
//! cap on the answer.

use std::path::Path;
use std::time::Duration;

use thiserror::Error;
use writ_audit_chain::signature_record::{SignatureEnvelope, SignatureRecordError};
use writ_audit_chain::timestamp::{
    TimestampError, TimestampInfo, TsaCertificate, parse_response, timestamp_request, verify_token,
};
use writ_error_kind::{Classify, Dependency, ErrorKind};

/// The TSA's URL; absent or empty: no timestamps.
pub const TSA_URL_VAR: &str = "WRIT_TSA_URL";
/// Path of a PEM file with the TSA certificate(s) to trust (the TSA's own or its CA's).
pub const TSA_CERT_VAR: &str = "WRIT_TSA_CERT";

/// How long a TSA may take to answer, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read; a token with its certificate chain is a few KiB.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Why a timestamp could not be had. The text names the TSA, never the token.
#[derive(Debug, Error)]
pub enum TsaError {
    #[error("timestamp authority {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("timestamp authority {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("timestamp authority {url} answered more than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge { url: String },
    #[error("timestamp authority {url} sent an unusable timestamp: {source}")]
    Token {
        url: String,
        #[source]
        source: TimestampError,
    },
    #[error("the signature record cannot be stamped: {0}")]
    Record(#[from] SignatureRecordError),
}

impl Classify for TsaError {
    fn kind(&self) -> ErrorKind {
        match self {
            TsaError::Transport { .. }
            | TsaError::Status { .. }
            | TsaError::TooLarge { .. }
            | TsaError::Token { .. } => ErrorKind::unavailable(Dependency::TimestampAuthority),
            // A record whose own signature is not base64 is a bug, not an outage.
            TsaError::Record(_) => ErrorKind::Internal,
        }
    }
}

/// A verified token and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StampedToken {
    pub token_der: Vec<u8>,
    pub info: TimestampInfo,
}

/// A configured TSA.
#[derive(Debug, Clone)]
pub struct TimestampAuthority {
    url: String,
    trusted: Vec<TsaCertificate>,
    client: reqwest::Client,
}

impl TimestampAuthority {
    /// A TSA at `url` (http or https), whose tokens must verify with one of `trusted`.
    pub fn new(url: &str, trusted: Vec<TsaCertificate>) -> Result<TimestampAuthority, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{TSA_URL_VAR} {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("{TSA_URL_VAR} {url:?}: not an http or https URL"));
        }
        if trusted.is_empty() {
            return Err(format!("{TSA_CERT_VAR}: no TSA certificate to trust"));
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| format!("timestamp authority client: {e}"))?;
        Ok(TimestampAuthority {
            url: url.to_owned(),
            trusted,
            client,
        })
    }

    /// The TSA from `WRIT_TSA_URL` and `WRIT_TSA_CERT`; `None` when no URL is set (timestamps
    /// off). A URL without a certificate file is an error: tokens nobody can check are useless.
    pub fn from_env() -> Result<Option<TimestampAuthority>, String> {
        let url = std::env::var(TSA_URL_VAR).ok();
        let cert = std::env::var_os(TSA_CERT_VAR);
        TimestampAuthority::from_settings(url.as_deref(), cert.as_deref().map(Path::new))
    }

    /// [`Self::from_env`] with the values given.
    pub fn from_settings(
        url: Option<&str>,
        cert_path: Option<&Path>,
    ) -> Result<Option<TimestampAuthority>, String> {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let Some(path) = cert_path.filter(|p| !p.as_os_str().is_empty()) else {
            return Err(format!(
                "{TSA_URL_VAR} is set but {TSA_CERT_VAR} is not: name the PEM file of the TSA certificate to trust"
            ));
        };
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("{TSA_CERT_VAR} {}: {e}", path.display()))?;
        let trusted = TsaCertificate::all_from_pem(&pem)
            .map_err(|e| format!("{TSA_CERT_VAR} {}: {e}", path.display()))?;
        TimestampAuthority::new(url, trusted).map(Some)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The TSA certificates tokens are checked against.
    pub fn trusted(&self) -> &[TsaCertificate] {
        &self.trusted
    }

    /// A verified timestamp token over the SHA-256 `digest`.
    pub async fn stamp(&self, digest: &[u8; 32]) -> Result<StampedToken, TsaError> {
        let nonce: u64 = rand::random();
        let der = self.post(timestamp_request(digest, nonce)).await?;
        let token_error = |source| TsaError::Token {
            url: self.url.clone(),
            source,
        };
        let token_der = parse_response(&der, digest, nonce).map_err(token_error)?;
        let info = verify_token(&token_der, digest, &self.trusted).map_err(token_error)?;
        Ok(StampedToken { token_der, info })
    }

    /// Stamps the agency signature of `envelope` and puts the token in its `timestamp` member.
    pub async fn stamp_envelope(
        &self,
        envelope: &mut SignatureEnvelope,
    ) -> Result<TimestampInfo, TsaError> {
        let stamped = self.stamp(&envelope.timestamp_digest()?).await?;
        envelope.set_timestamp_token(&stamped.token_der);
        Ok(stamped.info)
    }

    /// Checks a record's timestamp against this TSA's certificates (for re-verification).
    pub fn check(
        &self,
        envelope: &SignatureEnvelope,
    ) -> Result<TimestampInfo, SignatureRecordError> {
        envelope.check_timestamp(&self.trusted)
    }

    async fn post(&self, query: Vec<u8>) -> Result<Vec<u8>, TsaError> {
        let transport = |source| TsaError::Transport {
            url: self.url.clone(),
            source,
        };
        let mut response = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/timestamp-query")
            .body(query)
            .send()
            .await
            .map_err(transport)?;
        if !response.status().is_success() {
            return Err(TsaError::Status {
                url: self.url.clone(),
                status: response.status().as_u16(),
            });
        }
        let too_large = || TsaError::TooLarge {
            url: self.url.clone(),
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}
