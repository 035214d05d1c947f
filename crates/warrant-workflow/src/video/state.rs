//! The oath session's state machine, pure: its states, the events that move it, one table
//! ([`SESSION_RULES`]) and the timeouts (DESIGN §4: `initiated → connected ⇄ disconnected →
//! terminated`, or `timed_out` when nobody connects within 10 minutes or the session idles for
//! an hour, CJIS SC-10).

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How long a new session waits for the provider to report a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::minutes(10);
/// How long an open session may go without activity (provider events, joins, the oath).
pub const IDLE_TIMEOUT: Duration = Duration::minutes(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Initiated,
    Connected,
    Disconnected,
    Terminated,
    TimedOut,
}

impl SessionState {
    pub const ALL: [SessionState; 5] = [
        SessionState::Initiated,
        SessionState::Connected,
        SessionState::Disconnected,
        SessionState::Terminated,
        SessionState::TimedOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Initiated => "initiated",
            SessionState::Connected => "connected",
            SessionState::Disconnected => "disconnected",
            SessionState::Terminated => "terminated",
            SessionState::TimedOut => "timed_out",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Terminated or timed out: nothing moves it any more.
    pub fn is_ended(self) -> bool {
        matches!(self, SessionState::Terminated | SessionState::TimedOut)
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What moves a session: the provider's reports, and the timeout job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEvent {
    /// Media flows between the participants (provider `session.connected`).
    Connected,
    /// The media connection dropped (provider `session.disconnected`).
    Disconnected,
    /// The provider closed the room (provider `session.ended`).
    Ended,
    /// Nobody connected within [`CONNECT_TIMEOUT`].
    NoConnection,
    /// No activity for [`IDLE_TIMEOUT`].
    Idle,
    /// The warrant's judge opened a new session while this one was still open, but it belongs
    /// to an earlier review: another judge's, or one from before the warrant was queued again.
    Superseded,
}

impl SessionEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEvent::Connected => "connected",
            SessionEvent::Disconnected => "disconnected",
            SessionEvent::Ended => "ended",
            SessionEvent::NoConnection => "no_connection",
            SessionEvent::Idle => "idle",
            SessionEvent::Superseded => "superseded",
        }
    }
}

/// The audit codes of session transitions.
pub mod audit {
    pub const CREATED: &str = "video.session.initiated";
    pub const CONNECTED: &str = "video.session.connected";
    pub const DISCONNECTED: &str = "video.session.disconnected";
    pub const TERMINATED: &str = "video.session.terminated";
    pub const TIMED_OUT: &str = "video.session.timed_out";
    pub const JOINED: &str = "video.session.joined";
    pub const LEFT: &str = "video.session.left";
    pub const RECORDING: &str = "video.session.recording";
    pub const TRANSCRIPT_CERTIFIED: &str = "video.session.transcript_certified";
    pub const OATH_ADMINISTERED: &str = "oath.administered";
    pub const AMENDMENT_ENTERED: &str = "warrant.amendment.entered";
    pub const AMENDMENT_SWORN: &str = "warrant.amendment.sworn";
    pub const AMENDMENT_WITHDRAWN: &str = "warrant.amendment.withdrawn";
}

/// One line of the table: from which states an event leads where, recorded as what.
#[derive(Debug, Clone, Copy)]
pub struct SessionRule {
    pub from: &'static [SessionState],
    pub event: SessionEvent,
    pub to: SessionState,
    pub audit_action: &'static str,
}

use SessionEvent as E;
use SessionState as S;

/// Every session transition there is.
pub const SESSION_RULES: &[SessionRule] = &[
    SessionRule {
        from: &[S::Initiated, S::Disconnected],
        event: E::Connected,
        to: S::Connected,
        audit_action: audit::CONNECTED,
    },
    SessionRule {
        from: &[S::Connected],
        event: E::Disconnected,
        to: S::Disconnected,
        audit_action: audit::DISCONNECTED,
    },
    SessionRule {
        from: &[S::Initiated, S::Connected, S::Disconnected],
        event: E::Ended,
        to: S::Terminated,
        audit_action: audit::TERMINATED,
    },
    SessionRule {
        from: &[S::Initiated],
        event: E::NoConnection,
        to: S::TimedOut,
        audit_action: audit::TIMED_OUT,
    },
    SessionRule {
        from: &[S::Connected, S::Disconnected],
        event: E::Idle,
        to: S::TimedOut,
        audit_action: audit::TIMED_OUT,
    },
    SessionRule {
        from: &[S::Initiated, S::Connected, S::Disconnected],
        event: E::Superseded,
        to: S::Terminated,
        audit_action: audit::TERMINATED,
    },
];

/// A transition the table allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTransition {
    pub from: SessionState,
    pub event: SessionEvent,
    pub to: SessionState,
    pub audit_action: &'static str,
}

/// Where `event` takes a session in `state`; `None` when the table has no such line (a late or
/// repeated provider report, a timeout of an ended session).
pub fn next(state: SessionState, event: SessionEvent) -> Option<SessionTransition> {
    SESSION_RULES
        .iter()
        .find(|r| r.event == event && r.from.contains(&state))
        .map(|r| SessionTransition {
            from: state,
            event,
            to: r.to,
            audit_action: r.audit_action,
        })
}

/// The timeout due for a session at `now`, if any: an initiated session nobody connected to
/// within [`CONNECT_TIMEOUT`] of its creation, an open one idle for [`IDLE_TIMEOUT`].
pub fn due_timeout(
    state: SessionState,
    created_at: DateTime<Utc>,
    last_activity_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<SessionEvent> {
    match state {
        S::Initiated if now - created_at >= CONNECT_TIMEOUT => Some(E::NoConnection),
        S::Connected | S::Disconnected if now - last_activity_at >= IDLE_TIMEOUT => Some(E::Idle),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_of_the_design() {
        let t = |s, e| next(s, e).map(|t| t.to);
        assert_eq!(t(S::Initiated, E::Connected), Some(S::Connected));
        assert_eq!(t(S::Connected, E::Disconnected), Some(S::Disconnected));
        assert_eq!(t(S::Disconnected, E::Connected), Some(S::Connected));
        assert_eq!(t(S::Connected, E::Ended), Some(S::Terminated));
        assert_eq!(t(S::Initiated, E::NoConnection), Some(S::TimedOut));
        assert_eq!(t(S::Disconnected, E::Idle), Some(S::TimedOut));
        assert_eq!(t(S::Connected, E::Superseded), Some(S::Terminated));
        // Nothing leaves an ended session; a repeated report moves nothing.
        for ended in [S::Terminated, S::TimedOut] {
            for e in [
                E::Connected,
                E::Disconnected,
                E::Ended,
                E::NoConnection,
                E::Idle,
                E::Superseded,
            ] {
                assert_eq!(next(ended, e), None, "{ended} {e:?}");
            }
        }
        assert_eq!(next(S::Connected, E::Connected), None);
        assert_eq!(next(S::Initiated, E::Disconnected), None);
        assert_eq!(next(S::Initiated, E::Idle), None);
    }

    #[test]
    fn timeouts_count_from_creation_then_from_activity() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let m = Duration::minutes;
        assert_eq!(due_timeout(S::Initiated, t0, t0 + m(9), t0 + m(9)), None);
        assert_eq!(
            due_timeout(S::Initiated, t0, t0 + m(9), t0 + m(10)),
            Some(E::NoConnection)
        );
        assert_eq!(due_timeout(S::Connected, t0, t0 + m(30), t0 + m(89)), None);
        assert_eq!(
            due_timeout(S::Disconnected, t0, t0 + m(30), t0 + m(90)),
            Some(E::Idle)
        );
        assert_eq!(due_timeout(S::Terminated, t0, t0, t0 + m(600)), None);
    }

    #[test]
    fn every_state_round_trips() {
        for s in SessionState::ALL {
            assert_eq!(SessionState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
