//! Remote oath (DESIGN §4; DOMAIN "Oath record", "Four corners"): video sessions between the
//! judge who claimed a warrant and its affiant, driven by the media provider's signed webhooks
//! and timed out by a job; the oath record (identity step, the judge's location, the words, the
//! time, the affidavit version sworn to, and the recording's reference and SHA-256 in the
//! court's custody); transcript certification; and sworn amendments — facts beyond the affidavit
//! that the affiant swears to before the judge may issue.
//!
//! Media never passes through Writ: the provider hosts the room Writ names
//! (`<agency id>.<session id>`) and reports what happened. Every change is one transaction with
//! its audit entry, like every warrant transition.
//!
//! - [`state`]: the session states, events, the one table [`state::SESSION_RULES`], timeouts.
//! - [`webhook`]: the signature scheme and the delivery payload (pure).
//! - [`store`]: sessions in the agency's schema: create, read, join/leave, provider deliveries,
//!   the timeout job ([`store::run_due`], [`store::run_video_jobs`]).
//! - [`oath`]: the oath record, transcript certification, and what issuing requires
//!   ([`oath::issue_check`]).
//! - [`amendments`]: four corners.

pub mod amendments;
pub mod oath;
pub mod state;
pub mod store;
pub mod webhook;

use writ_error_kind::ErrorKind;

pub use state::{SessionEvent, SessionState};
pub use webhook::{WebhookRefusal, WebhookSecret};

/// Problem slugs of the refusals of this module.
pub mod slug {
    pub const VIDEO_NOT_CONFIGURED: &str = "video-not-configured";
    pub const WARRANT_NOT_IN_REVIEW: &str = "warrant-not-in-review";
    pub const SESSION_OPEN: &str = "session-open";
    pub const SESSION_SUPERSEDED: &str = "session-superseded";
    pub const SESSION_NOT_CONNECTED: &str = "session-not-connected";
    pub const PARTICIPANT_ABSENT: &str = "participant-absent";
    pub const SESSION_ENDED: &str = "session-ended";
    pub const OATH_ALREADY_ADMINISTERED: &str = "oath-already-administered";
    pub const OATH_MISSING: &str = "oath-missing";
    pub const OATH_REQUIRED: &str = "oath-required";
    pub const JUDGE_OUTSIDE_JURISDICTION: &str = "judge-outside-jurisdiction";
    pub const AMENDMENT_NOT_PENDING: &str = "amendment-not-pending";
    pub const AMENDMENT_UNSWORN: &str = "amendment-unsworn";
    pub const RECORDING_MISSING: &str = "recording-missing";
    pub const TRANSCRIPT_CERTIFIED: &str = "transcript-already-certified";
    pub const WEBHOOK_SIGNATURE_INVALID: &str = "webhook-signature-invalid";
    pub const WEBHOOK_TIMESTAMP_INVALID: &str = "webhook-timestamp-invalid";
    pub const WEBHOOK_REPLAYED: &str = "webhook-replayed";
}

/// What the oath and session rules refuse; wrapped in [`crate::WarrantError::Video`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum VideoError {
    /// The caller's role may act here, but not on this session (not its judge or affiant).
    #[error("{0}")]
    Forbidden(String),
    /// The session or warrant is not in a state that allows it; `slug` is one of [`slug`].
    #[error("{detail}")]
    Conflict { slug: &'static str, detail: String },
    /// A delivery that is not the provider's (bad or stale signature) or a replay.
    #[error(transparent)]
    Webhook(#[from] WebhookRefusal),
    /// A verified delivery that is not JSON.
    #[error("the delivery is not JSON: {0}")]
    MalformedBody(String),
    /// No `WRIT_VIDEO_WEBHOOK_SECRET`: this server takes no deliveries.
    #[error("this server has no video provider configured")]
    WebhookUnconfigured,
}

impl VideoError {
    pub fn conflict(slug: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            slug,
            detail: detail.into(),
        }
    }

    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            VideoError::Forbidden(detail) => ErrorKind::Forbidden {
                detail: detail.clone(),
            },
            VideoError::Conflict { slug, detail } => ErrorKind::Conflict {
                slug,
                detail: detail.clone(),
            },
            VideoError::Webhook(r) => ErrorKind::Unauthorized {
                slug: r.slug(),
                detail: r.to_string(),
            },
            VideoError::MalformedBody(_) => ErrorKind::BadRequest {
                slug: "bad-request",
                detail: self.to_string(),
            },
            // The route does not exist on a server without a provider.
            VideoError::WebhookUnconfigured => ErrorKind::NotFound,
        }
    }
}

impl From<WebhookRefusal> for crate::WarrantError {
    fn from(r: WebhookRefusal) -> Self {
        crate::WarrantError::Video(VideoError::Webhook(r))
    }
}
