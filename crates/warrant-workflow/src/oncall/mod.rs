//! On-call judges: rosters per court ([`mod@roster`]), the `on-call` policy of acknowledgement times
//! and quiet hours ([`policy`]), and the routing job that offers a queued warrant to the judge on
//! call and escalates it to the backup and the presiding judge ([`mod@routing`]). Alerts go through
//! the `writ-notify` outbox, in the transaction of the hop that causes them.

pub mod policy;
pub mod roster;
pub mod routing;

pub use policy::{CourtAlerting, ON_CALL_POLICY, OnCallPolicy, POLICIES};
pub use roster::{
    OnCall, Roster, RosterInput, Shift, ShiftInput, ShiftRole, on_call_at, put_roster,
    resolve_local, roster,
};
pub use routing::{Level, RoutingReport, RoutingView, routing, run_routing, run_routing_job};
