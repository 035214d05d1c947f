//! The [`Notifier`] interface (deliver one rendered message to one address over one channel) and
//! the transports behind it: e-mail over SMTP ([`SmtpMailer`]), texts and voice calls through a
//! Twilio-compatible HTTP API ([`SmsProvider`]). [`Transports`] routes each channel to its
//! transport; a channel without one fails the message, visibly.

use std::future::Future;
use std::time::Duration;

use lettre::message::Body;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::error::SendError;
use crate::message::Channel;

/// Per attempt: a stuck relay or provider must not hold a delivery (and its row lock) for long.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// One message for one address.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub channel: Channel,
    /// An e-mail address, or an E.164 phone number for texts and calls.
    pub to: &'a str,
    pub subject: &'a str,
    /// The text, or for a call the TwiML to speak.
    pub body: &'a str,
}

/// Delivers messages. The delivery loop is generic over it, so tests and deployments plug in
/// what they have.
pub trait Notifier: Send + Sync + 'static {
    fn send(&self, msg: &Outgoing<'_>) -> impl Future<Output = Result<(), SendError>> + Send;
}

/// `WRIT_SMTP_URL` and `WRIT_SMTP_FROM`.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// `smtps://user:pass@host:465` (TLS), `smtp://user:pass@host:587` (STARTTLS required), or
    /// `smtp://127.0.0.1:2525` (plain, loopback only: a local relay or a test server).
    pub url: String,
    pub from: String,
}

/// E-mail over SMTP (lettre, rustls).
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl SmtpMailer {
    pub fn new(config: &SmtpConfig) -> Result<Self, String> {
        let url = reqwest::Url::parse(&config.url).map_err(|e| format!("not a URL: {e}"))?;
        let host = url
            .host_str()
            .ok_or_else(|| "no host in the URL".to_owned())?
            .to_owned();
        let builder = match url.scheme() {
            "smtps" => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)
                .map_err(|e| e.to_string())?
                .port(url.port().unwrap_or(465)),
            // Mail carries the warrant number and a link: never in clear text off this machine.
            "smtp" if is_loopback(&host) => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
                    .port(url.port().unwrap_or(25))
            }
            "smtp" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
                .map_err(|e| e.to_string())?
                .port(url.port().unwrap_or(587)),
            other => return Err(format!("scheme {other:?}: expected smtp or smtps")),
        };
        let mut builder = builder.timeout(Some(SEND_TIMEOUT));
        if !url.username().is_empty() {
            let decode = |s: &str| {
                // Userinfo is percent-encoded in a URL; credentials are sent as written.
                let bytes: Vec<u8> = percent_decode(s);
                String::from_utf8(bytes).map_err(|_| "credentials are not UTF-8".to_owned())
            };
            builder = builder.credentials(Credentials::new(
                decode(url.username())?,
                decode(url.password().unwrap_or(""))?,
            ));
        }
        let from = config
            .from
            .parse()
            .map_err(|e| format!("WRIT_SMTP_FROM {:?}: {e}", config.from))?;
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<(), SendError> {
        let to = msg
            .to
            .parse()
            .map_err(|e| SendError::Unreachable(format!("invalid e-mail address: {e}")))?;
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(msg.subject)
            .header(ContentType::TEXT_PLAIN)
            // Plain 7-bit when the text allows it (it is ASCII: a number and a link), so the link
            // is never split by quoted-printable soft breaks in clients that show the source.
            .body(
                Body::new_with_encoding(
                    msg.body.replace('\n', "\r\n"),
                    ContentTransferEncoding::SevenBit,
                )
                .unwrap_or_else(Body::new),
            )
            .map_err(|e| SendError::Refused(format!("message: {e}")))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Refused(format!("smtp: {e}"))),
            Err(e) => Err(SendError::Transient(format!("smtp: {e}"))),
        }
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// `WRIT_SMS_URL`, `WRIT_SMS_ACCOUNT_SID`, `WRIT_SMS_AUTH_TOKEN`, `WRIT_SMS_FROM`.
#[derive(Debug, Clone)]
pub struct SmsConfig {
    /// The provider's API base, e.g. `https://api.twilio.com`.
    pub url: String,
    pub account_sid: String,
    pub auth_token: String,
    /// The sending number (E.164).
    pub from: String,
}

/// Texts and calls through a Twilio-compatible API: `POST {base}/2010-04-01/Accounts/{sid}/
/// Messages.json` (`To`, `From`, `Body`) and `…/Calls.json` (`To`, `From`, `Twiml`), HTTP basic
/// authentication with the account SID and auth token.
#[derive(Clone)]
pub struct SmsProvider {
    http: reqwest::Client,
    config: SmsConfig,
}

impl SmsProvider {
    pub fn new(config: SmsConfig) -> Result<Self, String> {
        let url = reqwest::Url::parse(&config.url).map_err(|e| format!("not a URL: {e}"))?;
        let host = url.host_str().unwrap_or_default();
        if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback(host)) {
            return Err("https required (plain http only on loopback)".into());
        }
        let http = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { http, config })
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<(), SendError> {
        let (resource, content) = match msg.channel {
            Channel::Voice => ("Calls.json", ("Twiml", msg.body)),
            _ => ("Messages.json", ("Body", msg.body)),
        };
        let url = format!(
            "{}/2010-04-01/Accounts/{}/{resource}",
            self.config.url.trim_end_matches('/'),
            self.config.account_sid
        );
        let form = [("To", msg.to), ("From", self.config.from.as_str()), content];
        let res = self
            .http
            .post(url)
            .basic_auth(&self.config.account_sid, Some(&self.config.auth_token))
            .form(&form)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("sms provider unreachable: {e}")))?;
        let status = res.status();
        if status.is_success() {
            return Ok(());
        }
        // The provider's own message (Twilio: `message`) says why; the body is never logged whole.
        let reason = res
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .map(|m| m.chars().take(200).collect::<String>())
            .unwrap_or_default();
        let text = format!("sms provider answered {status} {reason}")
            .trim_end()
            .to_owned();
        if status.as_u16() == 429 || status.is_server_error() {
            Err(SendError::Transient(text))
        } else {
            Err(SendError::Refused(text))
        }
    }
}

/// The transports this server has, by channel.
#[derive(Clone, Default)]
pub struct Transports {
    pub email: Option<SmtpMailer>,
    pub sms: Option<SmsProvider>,
}

impl Notifier for Transports {
    async fn send(&self, msg: &Outgoing<'_>) -> Result<(), SendError> {
        match msg.channel {
            Channel::Email => match &self.email {
                Some(m) => m.send(msg).await,
                None => Err(SendError::NotConfigured("email")),
            },
            Channel::Sms | Channel::Voice => match &self.sms {
                Some(p) => p.send(msg).await,
                None => Err(SendError::NotConfigured(msg.channel.as_str())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_smtp_is_refused_off_loopback_only() {
        let ok = SmtpMailer::new(&SmtpConfig {
            url: "smtp://127.0.0.1:2525".into(),
            from: "writ@example.org".into(),
        });
        assert!(ok.is_ok());
        assert!(
            SmtpMailer::new(&SmtpConfig {
                url: "smtp://mail.example.org".into(),
                from: "writ@example.org".into(),
            })
            .is_ok(),
            "a remote smtp:// URL is STARTTLS, not refused"
        );
        assert!(
            SmtpMailer::new(&SmtpConfig {
                url: "http://mail.example.org".into(),
                from: "writ@example.org".into(),
            })
            .is_err()
        );
        assert!(
            SmsProvider::new(SmsConfig {
                url: "http://api.example.org".into(),
                account_sid: "AC1".into(),
                auth_token: "t".into(),
                from: "+15550000000".into(),
            })
            .is_err()
        );
    }

    #[test]
    fn percent_decoding_of_credentials() {
        assert_eq!(percent_decode("a%40b%2"), b"a@b%2".to_vec());
        assert_eq!(percent_decode("p%3Ass"), b"p:ss".to_vec());
    }
}
