//! The media provider's webhook, pure: the signature scheme (HMAC-SHA256 over
//! `timestamp + "." + raw body`, five minutes of tolerance either way) and the payload. Replays
//! are refused by the delivery's `eventId`, which [`super::store::receive`] keeps per agency.
//! docs/VIDEO-OATH.md is the provider's specification, with an example.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use uuid::Uuid;

use super::VideoError;
use super::slug;
use super::state::SessionEvent;

pub const TIMESTAMP_HEADER: &str = "writ-webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "writ-webhook-signature";
/// How far the signed timestamp may be from the server's clock, either way.
pub const TOLERANCE: Duration = Duration::minutes(5);
/// The largest delivery accepted: the events are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The shortest shared secret accepted (bytes): an HMAC key shorter than its output adds no
/// strength and hints at a typo.
pub const MIN_SECRET_BYTES: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// The secret shared with the provider (`WRIT_VIDEO_WEBHOOK_SECRET`); never printed.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    pub fn new(secret: &str) -> Result<Self, String> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!("at least {MIN_SECRET_BYTES} bytes"));
        }
        Ok(Self(secret.as_bytes().to_vec()))
    }

    fn mac(&self, timestamp: &str, body: &[u8]) -> HmacSha256 {
        // Any key length is accepted by HMAC; the error arm cannot happen.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The signature header value for `body` signed at `timestamp` (Unix seconds): `v1=<hex>`.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        let tag = self
            .mac(&timestamp.to_string(), body)
            .finalize()
            .into_bytes();
        format!("v1={}", hex::encode(tag))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// Why a delivery was not accepted as the provider's. All are 401 and change nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRefusal {
    #[error("the signature header is missing or does not match the body")]
    BadSignature,
    #[error("the timestamp header is missing or not Unix seconds")]
    BadTimestamp,
    #[error("the delivery was signed {seconds} s away from the server's time; at most 300 s")]
    Stale { seconds: i64 },
    #[error("the delivery {event_id:?} was received before")]
    Replayed { event_id: String },
}

impl WebhookRefusal {
    pub fn slug(&self) -> &'static str {
        match self {
            WebhookRefusal::BadSignature => slug::WEBHOOK_SIGNATURE_INVALID,
            WebhookRefusal::BadTimestamp | WebhookRefusal::Stale { .. } => {
                slug::WEBHOOK_TIMESTAMP_INVALID
            }
            WebhookRefusal::Replayed { .. } => slug::WEBHOOK_REPLAYED,
        }
    }
}

/// Checks a delivery's headers against its raw body; the signing time when it is the provider's.
/// The signature header may list several `v1=` values (comma-separated) while the provider
/// rotates its secret; one match suffices. Compared in constant time.
pub fn verify(
    secret: &WebhookSecret,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, WebhookRefusal> {
    let timestamp = timestamp
        .map(str::trim)
        .ok_or(WebhookRefusal::BadTimestamp)?;
    let seconds: i64 = timestamp
        .parse()
        .map_err(|_| WebhookRefusal::BadTimestamp)?;
    let signed_at = DateTime::from_timestamp(seconds, 0).ok_or(WebhookRefusal::BadTimestamp)?;
    let signature = signature.ok_or(WebhookRefusal::BadSignature)?;
    let matches = signature
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .filter_map(|h| hex::decode(h).ok())
        .any(|tag| secret.mac(timestamp, body).verify_slice(&tag).is_ok());
    if !matches {
        return Err(WebhookRefusal::BadSignature);
    }
    let skew = (now - signed_at).num_seconds();
    if skew.abs() > TOLERANCE.num_seconds() {
        return Err(WebhookRefusal::Stale { seconds: skew });
    }
    Ok(signed_at)
}

/// A delivery as the provider sends it. Members the provider adds are ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Unique per delivery; a second delivery with the same id is a replay.
    pub event_id: String,
    /// `session.connected`, `session.disconnected`, `session.ended`, `recording.ready`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The room Writ named at creation: `<agency id>.<session id>`.
    pub room: String,
    /// When the provider saw it happen (informational; Writ orders by arrival).
    #[serde(default)]
    pub occurred_at: Option<DateTime<Utc>>,
    /// `recording.ready`: where the court's recording is and its SHA-256.
    #[serde(default)]
    pub recording: Option<RecordingReport>,
    /// SHA-256 (hex) of the body as received: a resend has the same.
    #[serde(skip)]
    pub body_sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingReport {
    pub reference: String,
    pub sha256: String,
}

/// What a delivery asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderEvent {
    Session(SessionEvent),
    RecordingReady { reference: String, sha256: String },
}

pub const MAX_EVENT_ID_CHARS: usize = 200;
pub const MAX_REFERENCE_CHARS: usize = 1000;

impl Delivery {
    /// Reads a body whose signature was verified: 400 when it is not JSON, 422 when a member is
    /// wrong.
    pub fn parse(body: &[u8]) -> Result<Self, crate::WarrantError> {
        let mut d: Delivery = serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                crate::WarrantError::invalid("body", e.to_string())
            } else {
                VideoError::MalformedBody(e.to_string()).into()
            }
        })?;
        if d.event_id.trim().is_empty() || d.event_id.chars().count() > MAX_EVENT_ID_CHARS {
            return Err(crate::WarrantError::invalid(
                "eventId",
                format!("1 to {MAX_EVENT_ID_CHARS} characters"),
            ));
        }
        d.body_sha256 = crate::service_copy::sha256_hex(body);
        Ok(d)
    }

    /// The agency and the session the room names.
    pub fn room(&self) -> Result<(Uuid, Uuid), crate::WarrantError> {
        parse_room(&self.room).ok_or_else(|| {
            crate::WarrantError::invalid(
                "room",
                "not a room this server named (<agency>.<session>)",
            )
        })
    }

    pub fn event(&self) -> Result<ProviderEvent, crate::WarrantError> {
        Ok(match self.kind.as_str() {
            "session.connected" => ProviderEvent::Session(SessionEvent::Connected),
            "session.disconnected" => ProviderEvent::Session(SessionEvent::Disconnected),
            "session.ended" => ProviderEvent::Session(SessionEvent::Ended),
            "recording.ready" => {
                let Some(r) = &self.recording else {
                    return Err(crate::WarrantError::invalid(
                        "recording",
                        "recording.ready carries the recording's reference and sha256",
                    ));
                };
                check_sha256("recording.sha256", &r.sha256)?;
                let reference = r.reference.trim();
                if reference.is_empty() || reference.chars().count() > MAX_REFERENCE_CHARS {
                    return Err(crate::WarrantError::invalid(
                        "recording.reference",
                        format!("1 to {MAX_REFERENCE_CHARS} characters"),
                    ));
                }
                ProviderEvent::RecordingReady {
                    reference: reference.to_owned(),
                    sha256: r.sha256.clone(),
                }
            }
            other => {
                return Err(crate::WarrantError::invalid(
                    "type",
                    format!(
                        "unknown event {other:?}; one of session.connected, session.disconnected, \
                         session.ended, recording.ready"
                    ),
                ));
            }
        })
    }
}

/// The room name of a session: `<agency id>.<session id>`.
pub fn room_name(agency_id: Uuid, session_id: Uuid) -> String {
    format!("{agency_id}.{session_id}")
}

pub fn parse_room(room: &str) -> Option<(Uuid, Uuid)> {
    let (a, s) = room.split_once('.')?;
    Some((Uuid::parse_str(a).ok()?, Uuid::parse_str(s).ok()?))
}

/// A SHA-256 as 64 lowercase hex digits, or 422 naming `field`.
pub fn check_sha256(field: &str, value: &str) -> Result<(), crate::WarrantError> {
    if value.len() == 64
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        Ok(())
    } else {
        Err(crate::WarrantError::invalid(
            field,
            "a SHA-256 as 64 lowercase hex digits",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> WebhookSecret {
        WebhookSecret::new("whsec_0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn a_signed_delivery_verifies_and_any_change_does_not() {
        let now = DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        let body = br#"{"eventId":"e1","type":"session.ended","room":"r"}"#;
        let sig = secret().sign(now.timestamp(), body);
        let ts = now.timestamp().to_string();
        assert_eq!(verify(&secret(), Some(&ts), Some(&sig), body, now), Ok(now));
        // Rotation: a list with one match passes.
        let both = format!("v1=00, {sig}");
        assert!(verify(&secret(), Some(&ts), Some(&both), body, now).is_ok());
        let other = WebhookSecret::new("another-secret-another-secret-0123").unwrap();
        assert_eq!(
            verify(&other, Some(&ts), Some(&sig), body, now),
            Err(WebhookRefusal::BadSignature)
        );
        let tampered = br#"{"eventId":"e2","type":"session.ended","room":"r"}"#;
        assert_eq!(
            verify(&secret(), Some(&ts), Some(&sig), tampered, now),
            Err(WebhookRefusal::BadSignature)
        );
        // The timestamp is signed: moving it breaks the signature.
        let later = (now.timestamp() + 1).to_string();
        assert_eq!(
            verify(&secret(), Some(&later), Some(&sig), body, now),
            Err(WebhookRefusal::BadSignature)
        );
        assert_eq!(
            verify(&secret(), None, Some(&sig), body, now),
            Err(WebhookRefusal::BadTimestamp)
        );
        assert_eq!(
            verify(&secret(), Some(&ts), None, body, now),
            Err(WebhookRefusal::BadSignature)
        );
    }

    #[test]
    fn five_minutes_either_way() {
        let now = DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        let body = b"{}";
        for (offset, ok) in [(-300, true), (300, true), (-301, false), (360, false)] {
            let at = now.timestamp() + offset;
            let sig = secret().sign(at, body);
            let r = verify(&secret(), Some(&at.to_string()), Some(&sig), body, now);
            assert_eq!(r.is_ok(), ok, "{offset}: {r:?}");
        }
    }

    #[test]
    fn the_rfc_4231_vector_holds() {
        // The primitive against RFC 4231, test case 2.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_documented_example_signs_as_documented() {
        // docs/VIDEO-OATH.md, "The provider's webhook".
        let secret = WebhookSecret::new("whsec_example_0123456789abcdef0123456789").unwrap();
        let body = br#"{"eventId":"evt_01HQ3V7K2M","type":"session.connected","room":"0190f4a0-0000-7000-8000-000000000001.0190f4e1-2a3b-7c4d-8e5f-6a7b8c9d0e1f"}"#;
        assert_eq!(
            secret.sign(1_772_488_902, body),
            "v1=22d7487a75e9df392bb72d98a660304502e5aa48c95d0ca34684ebb9734e17d9"
        );
    }

    #[test]
    fn rooms_name_agency_and_session() {
        let (a, s) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(parse_room(&room_name(a, s)), Some((a, s)));
        assert_eq!(parse_room("x.y"), None);
    }
}
