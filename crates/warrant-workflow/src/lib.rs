//! writ-warrant-workflow owns the warrant lifecycle's rules: the state machine and who may move
//! a warrant (separation of duties, prosecutor review modes, AI-assisted affidavits), warrant
//! types and jurisdiction presets as data, execution deadlines in the court's local time, the
//! completeness check before submission, affidavit versions and diffs, warrant numbers and seals.
//!
//! The core is pure: no database, no HTTP, no audit writes, no clock. The storing layer
//! ([`store`], [`jobs`], [`stats`]) calls it inside one tenant transaction per transition and
//! records the audit action code each [`Transition`] names (DESIGN §4, §6); it never decides a
//! rule of its own. Nothing here knows HTTP.
//!
//! # Modules
//!
//! - [`state`]: [`WarrantState`], [`Action`], the transition table [`RULES`], [`transition`],
//!   [`allowed_actions`] and the audit-code mapping.
//! - [`types`]: [`WarrantType`], a court's [`WarrantTypes`] and the `warrant-types` policy
//!   ([`WarrantTypesPolicy`], [`POLICIES`]) with JSON-path validation.
//! - [`presets`]: federal, Kansas, California, Maryland and Minnesota rules.
//! - [`deadline`]: [`execution_deadline`], [`check_execution`], [`reminder_at`].
//! - [`completeness`]: [`check_completeness`] (missing fields, template placeholders).
//! - [`versions`]: [`AffidavitVersion`] with SHA-256, [`diff_versions`].
//! - [`number`]: [`WarrantNumber`] (`W-2026-000847`).
//! - [`seal`]: [`Seal`], [`may_see_sealed`].
//! - [`fields`]: the vocabulary of warrant fields and [`WarrantContent`].
//! - [`store`]: warrants in the agency's schema — [`store::create`], [`store::list`],
//!   [`store::get`], [`store::patch`], [`store::apply`] (every transition), versions and diffs,
//!   the judge queue, seals.
//! - [`jobs`]: expiry, deadline reminders and seal lapses ([`jobs::run_due`],
//!   [`jobs::run_warrant_jobs`]).
//! - [`stats`]: review telemetry per court ([`stats::warrant_stats`]).
//! - [`oncall`]: rosters per court (exact across DST), the `on-call` policy, and the routing job
//!   that offers a queued warrant to the judge on call and escalates it ([`oncall::run_routing`]),
//!   alerting through the `writ-notify` outbox.
//! - [`service_copy`]: the canonical issued document and its PDF service copy.
//! - [`signing`]: the affidavit and warrant documents made for signing, and the signatures
//!   submission and issue require.
//! - [`Caller`] (who acts) and [`WarrantError`] (what went wrong, [`writ_error_kind::Classify`]).
//!
//! # Presets
//!
//! Windows: "end of day N" means the issue day is day 0 and the window closes at midnight after
//! day N in the court's time zone; hours count from the issue instant. Sources per type are in
//! each type's `source` and in docs/WARRANT-TYPES.md.
//!
//! | preset | search, blood draw | electronic records | tracking device (install; use / extension) | daytime (search) | arrest |
//! |---|---|---|---|---|---|
//! | federal | 14 days, end of day 14 | 14 days | 10 days; 45 / 45 days | 06:00–22:00, night service may be authorized | no deadline |
//! | kansas | 240 h from issue | 240 h | 15 days, sealed by default; as ordered | any hour | no deadline |
//! | california | 10 days, end of day 10 | 10 days | 10 days; 30 / 30 days | 07:00–22:00 (installs 06:00–22:00) | no deadline |
//! | maryland | 10 days, end of day 10 | 10 days | 10 days; as ordered | any hour | no deadline |
//! | minnesota | 10 days, end of day 10 | 10 days | 10 days; as ordered | 07:00–20:00 | no deadline |

pub mod caller;
pub mod completeness;
pub mod deadline;
pub mod error;
pub mod events;
pub mod facts;
pub mod fields;
pub mod jobs;
pub mod number;
pub mod oncall;
pub mod pdf;
pub mod presets;
pub mod seal;
pub mod service_copy;
pub mod signing;
pub mod state;
pub mod stats;
pub mod store;
pub mod types;
pub mod versions;
pub mod video;

pub use caller::Caller;

pub use completeness::{
    FieldProblem, Incomplete, ProblemReason, check_completeness, find_placeholders,
};
pub use deadline::{
    ExecutionRefusal, TrackingUseError, check_execution, execution_deadline, is_past_deadline,
    reminder_at, tracking_use_end,
};
pub use error::WarrantError;
pub use fields::{FieldValue, Urgency, WarrantContent, WarrantField};
pub use number::{NumberError, WarrantNumber};
pub use presets::Preset;
pub use seal::{Seal, SealError, SealOrigin, may_read_warrant, may_seal, may_see_sealed};
pub use state::{
    Action, ActionInput, ApprovalBy, Approvals, Mover, RULES, ReturnKind, ReviewRoute, Transition,
    TransitionContext, TransitionError, WarrantState, allowed_actions, transition,
};
pub use types::{
    ClockTime, DayCounting, DaytimeWindow, ExecutionWindow, POLICIES, PolicyError, PolicyErrors,
    ProsecutorReview, SealingDefault, TimeUnit, TrackingDeviceRules, WARRANT_TYPES_POLICY,
    WarrantKind, WarrantType, WarrantTypes, WarrantTypesPolicy,
};
pub use versions::{
    AffidavitVersion, AiDraft, LineDiff, VersionDiff, VersionReason, diff_versions,
};
pub use writ_auth_mfa::Role;
