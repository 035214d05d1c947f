//! The warrant state machine: one table ([`RULES`]) says who may do what in which state, what
//! follows, and which audit action records it. [`transition`] applies it; [`allowed_actions`]
//! (the 409 body) is derived from the same table, never a second list.
//!
//! | from | action | who | to | audit action |
//! |---|---|---|---|---|
//! | draft | submit | officer, author | supervisor_review | `warrant.submitted` |
//! | supervisor_review | supervisor-approve | supervisor, not author | prosecutor_review or pending_judge ¹ | `warrant.reviewed`, or `warrant.queued` into pending_judge |
//! | prosecutor_review | prosecutor-approve | prosecutor, not author | pending_judge | `warrant.queued` |
//! | supervisor_review, prosecutor_review, judge_review | return-for-revision ² | supervisor / prosecutor / judge (the claimant), not author | draft | `warrant.returned_for_revision` |
//! | pending_judge | claim | judge, not author ³ | judge_review | `warrant.claimed` |
//! | judge_review | issue ⁴ | judge, the claimant, not author | issued | `warrant.approved` |
//! | judge_review | reject ² | judge, the claimant, not author | rejected | `warrant.rejected` |
//! | issued | execute ⁵ | officer | executed | `warrant.executed` |
//! | executed | file-return (inventory) | officer | returned | `warrant.returned` |
//! | issued, expired | file-return ("not executed") | officer | returned | `warrant.returned` |
//! | draft … judge_review | withdraw | officer, author | withdrawn | `warrant.withdrawn` |
//! | issued | extend ⁵ | officer, author | issued (a child request in draft) | `warrant.created` (the child) |
//! | issued | expire ⁶ | the expiry job | expired | `warrant.expired` |
//!
//! ¹ Prosecutor review `required` → prosecutor_review; `skipped` → pending_judge; `optional` →
//! the supervisor's choice ([`ReviewRoute`], prosecutor when unsaid). An AI-assisted affidavit
//! always goes to the prosecutor. ² A reason is required. ³ Claim and issue check the approvals:
//! the supervisor's always, the prosecutor's when review is required or the affidavit is
//! AI-assisted. ⁴ Needs a step-up. ⁵ Only while the execution window is open; the execution time
//! itself is checked by [`crate::deadline::check_execution`]. ⁶ Only once the window has closed.
//!
//! Audit codes come from DESIGN §6 where one fits: the judge's issue is `warrant.approved` (the
//! reviews before it are `warrant.reviewed`/`warrant.queued`, never "approved"). Three codes are
//! added where §6 has none: `warrant.returned_for_revision` (DESIGN §4 names the step),
//! `warrant.claimed` (DESIGN §4 records when a judge opened it) and `warrant.withdrawn`.
//! `warrant.returned` is the return of an executed (or unexecuted) warrant to the court.
//!
//! Roles are `writ_auth_mfa::Role`; agency_admin, auditor and platform_operator appear in no
//! rule: they never move a warrant (agency_admin never approves one).

use std::fmt;

use serde::{Deserialize, Serialize};
use writ_auth_mfa::Role;

use crate::types::ProsecutorReview;
use crate::versions::VersionReason;

/// Where a warrant is in its life (DESIGN §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarrantState {
    Draft,
    SupervisorReview,
    ProsecutorReview,
    PendingJudge,
    JudgeReview,
    Issued,
    Executed,
    Returned,
    Rejected,
    Withdrawn,
    Expired,
}

impl WarrantState {
    pub const ALL: [WarrantState; 11] = [
        WarrantState::Draft,
        WarrantState::SupervisorReview,
        WarrantState::ProsecutorReview,
        WarrantState::PendingJudge,
        WarrantState::JudgeReview,
        WarrantState::Issued,
        WarrantState::Executed,
        WarrantState::Returned,
        WarrantState::Rejected,
        WarrantState::Withdrawn,
        WarrantState::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WarrantState::Draft => "draft",
            WarrantState::SupervisorReview => "supervisor_review",
            WarrantState::ProsecutorReview => "prosecutor_review",
            WarrantState::PendingJudge => "pending_judge",
            WarrantState::JudgeReview => "judge_review",
            WarrantState::Issued => "issued",
            WarrantState::Executed => "executed",
            WarrantState::Returned => "returned",
            WarrantState::Rejected => "rejected",
            WarrantState::Withdrawn => "withdrawn",
            WarrantState::Expired => "expired",
        }
    }

    /// No rule leads out of this state.
    pub fn is_final(self) -> bool {
        !RULES
            .iter()
            .any(|r| r.from.contains(&self) && r.to != Target::Same)
    }
}

impl fmt::Display for WarrantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a caller asks to do to a warrant (kebab-case on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Submit,
    SupervisorApprove,
    ProsecutorApprove,
    ReturnForRevision,
    Claim,
    Reject,
    Issue,
    Execute,
    FileReturn,
    Withdraw,
    Extend,
    /// The expiry job's, never a user's.
    Expire,
}

impl Action {
    pub const ALL: [Action; 12] = [
        Action::Submit,
        Action::SupervisorApprove,
        Action::ProsecutorApprove,
        Action::ReturnForRevision,
        Action::Claim,
        Action::Reject,
        Action::Issue,
        Action::Execute,
        Action::FileReturn,
        Action::Withdraw,
        Action::Extend,
        Action::Expire,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Submit => "submit",
            Action::SupervisorApprove => "supervisor-approve",
            Action::ProsecutorApprove => "prosecutor-approve",
            Action::ReturnForRevision => "return-for-revision",
            Action::Claim => "claim",
            Action::Reject => "reject",
            Action::Issue => "issue",
            Action::Execute => "execute",
            Action::FileReturn => "file-return",
            Action::Withdraw => "withdraw",
            Action::Extend => "extend",
            Action::Expire => "expire",
        }
    }

    /// Whether the action needs a reason (from the table).
    pub fn needs_reason(self) -> bool {
        RULES.iter().any(|r| r.action == self && r.needs_reason)
    }

    /// Whether the action needs a recent second factor (from the table).
    pub fn needs_step_up(self) -> bool {
        RULES.iter().any(|r| r.action == self && r.needs_step_up)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The audit action codes a transition records (DESIGN §6; see the module docs).
pub mod audit {
    pub const SUBMITTED: &str = "warrant.submitted";
    pub const REVIEWED: &str = "warrant.reviewed";
    pub const QUEUED: &str = "warrant.queued";
    pub const RETURNED_FOR_REVISION: &str = "warrant.returned_for_revision";
    pub const CLAIMED: &str = "warrant.claimed";
    pub const APPROVED: &str = "warrant.approved";
    pub const REJECTED: &str = "warrant.rejected";
    pub const EXECUTED: &str = "warrant.executed";
    pub const RETURNED: &str = "warrant.returned";
    pub const WITHDRAWN: &str = "warrant.withdrawn";
    pub const CREATED: &str = "warrant.created";
    pub const EXPIRED: &str = "warrant.expired";
}

/// Who moves the warrant, as the rules see them: a user in a role (author, claimant) or the
/// system (the expiry job).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mover {
    User {
        role: Role,
        /// The caller wrote the application.
        is_author: bool,
        /// The caller is the judge who claimed it (judge_review).
        is_claimant: bool,
    },
    /// The expiry job.
    System,
}

impl Mover {
    pub fn user(role: Role, is_author: bool) -> Self {
        Mover::User {
            role,
            is_author,
            is_claimant: false,
        }
    }

    /// The judge holding the claim.
    pub fn claimant() -> Self {
        Mover::User {
            role: Role::Judge,
            is_author: false,
            is_claimant: true,
        }
    }

    pub fn role(self) -> Option<Role> {
        match self {
            Mover::User { role, .. } => Some(role),
            Mover::System => None,
        }
    }
}

/// The review approvals the current submission has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approvals {
    pub supervisor: bool,
    pub prosecutor: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalBy {
    Supervisor,
    Prosecutor,
}

impl fmt::Display for ApprovalBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApprovalBy::Supervisor => "supervisor",
            ApprovalBy::Prosecutor => "prosecutor",
        })
    }
}

/// Where a supervisor's approval sends the warrant when prosecutor review is optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewRoute {
    Prosecutor,
    Judge,
}

impl fmt::Display for ReviewRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReviewRoute::Prosecutor => "prosecutor",
            ReviewRoute::Judge => "judge",
        })
    }
}

/// What a filed return says: an inventory of what was seized (possibly nothing), or that the
/// warrant was not executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnKind {
    Inventory,
    NotExecuted,
}

impl fmt::Display for ReturnKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReturnKind::Inventory => "an inventory",
            ReturnKind::NotExecuted => "a \"not executed\"",
        })
    }
}

/// What the caller's request carries beyond the action.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActionInput {
    pub reason: Option<String>,
    pub route: Option<ReviewRoute>,
    /// A second factor was entered within the step-up window.
    pub stepped_up: bool,
    pub return_kind: Option<ReturnKind>,
}

/// Everything a transition depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionContext {
    pub state: WarrantState,
    pub mover: Mover,
    /// The warrant type's mode.
    pub prosecutor_review: ProsecutorReview,
    pub ai_assisted: bool,
    pub approvals: Approvals,
    /// An issued warrant's execution deadline has passed ([`crate::deadline::is_past_deadline`]).
    pub window_elapsed: bool,
    /// A tracking device's authorised use has not ended yet (`false` for other warrants).
    pub tracking_use_open: bool,
    pub input: ActionInput,
}

impl TransitionContext {
    /// A context with no approvals, no AI assistance, the window open and an empty request.
    pub fn new(state: WarrantState, mover: Mover, prosecutor_review: ProsecutorReview) -> Self {
        Self {
            state,
            mover,
            prosecutor_review,
            ai_assisted: false,
            approvals: Approvals::default(),
            window_elapsed: false,
            tracking_use_open: false,
            input: ActionInput::default(),
        }
    }

    /// Whether the prosecutor must approve before the judge sees the warrant.
    pub fn prosecutor_approval_required(&self) -> bool {
        self.ai_assisted || self.prosecutor_review == ProsecutorReview::Required
    }
}

/// What an allowed transition does; the caller writes it and its audit entry in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    pub from: WarrantState,
    pub action: Action,
    pub to: WarrantState,
    /// The audit action code to record.
    pub audit_action: &'static str,
    /// The affidavit is kept as an immutable version, for this reason.
    pub version: Option<VersionReason>,
    /// The approval this records.
    pub approval: Option<ApprovalBy>,
    /// Earlier approvals no longer count: a revised affidavit is reviewed afresh.
    pub clears_approvals: bool,
    /// A linked child request is created in draft, inheriting this warrant's content.
    pub creates_child: bool,
}

/// Who a rule admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Roles(&'static [Role]),
    System,
}

impl Who {
    fn admits(self, mover: Mover) -> bool {
        match (self, mover) {
            (Who::Roles(roles), Mover::User { role, .. }) => roles.contains(&role),
            (Who::System, Mover::System) => true,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorship {
    /// Only the author (their own application).
    MustBe,
    /// Never the author (separation of duties).
    MustNotBe,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    State(WarrantState),
    /// The state does not change (extend).
    Same,
    /// After the supervisor: prosecutor_review or pending_judge (see [`ReviewRoute`]).
    AfterSupervisor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowGuard {
    Any,
    /// The execution window must still be open.
    Open,
    /// The execution window must have closed.
    Elapsed,
    /// A tracking device's use must not have ended (its installation window may have).
    TrackingUseOpen,
}

/// One line of the transition table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub from: &'static [WarrantState],
    pub action: Action,
    pub who: Who,
    pub author: Authorship,
    pub to: Target,
    pub audit_action: &'static str,
    pub needs_reason: bool,
    pub needs_step_up: bool,
    /// Only the judge who claimed it.
    pub needs_claim: bool,
    pub window: WindowGuard,
    /// The approvals the judge needs must exist.
    pub needs_approvals: bool,
    /// The kind of return this rule files.
    pub return_kind: Option<ReturnKind>,
    pub version: Option<VersionReason>,
    pub approval: Option<ApprovalBy>,
    pub clears_approvals: bool,
    pub creates_child: bool,
}

const fn rule(
    from: &'static [WarrantState],
    action: Action,
    who: Who,
    author: Authorship,
    to: Target,
    audit_action: &'static str,
) -> Rule {
    Rule {
        from,
        action,
        who,
        author,
        to,
        audit_action,
        needs_reason: false,
        needs_step_up: false,
        needs_claim: false,
        window: WindowGuard::Any,
        needs_approvals: false,
        return_kind: None,
        version: None,
        approval: None,
        clears_approvals: false,
        creates_child: false,
    }
}

impl Rule {
    const fn reason(mut self) -> Self {
        self.needs_reason = true;
        self
    }
    const fn step_up(mut self) -> Self {
        self.needs_step_up = true;
        self
    }
    const fn claimant(mut self) -> Self {
        self.needs_claim = true;
        self
    }
    const fn window(mut self, w: WindowGuard) -> Self {
        self.window = w;
        self
    }
    const fn approvals(mut self) -> Self {
        self.needs_approvals = true;
        self
    }
    const fn files(mut self, kind: ReturnKind) -> Self {
        self.return_kind = Some(kind);
        self
    }
    const fn version(mut self, reason: VersionReason) -> Self {
        self.version = Some(reason);
        self
    }
    const fn records(mut self, by: ApprovalBy) -> Self {
        self.approval = Some(by);
        self
    }
    const fn clears(mut self) -> Self {
        self.clears_approvals = true;
        self
    }
    const fn child(mut self) -> Self {
        self.creates_child = true;
        self
    }
}

use Action as A;
use Authorship::{Any, MustBe, MustNotBe};
use WarrantState as S;

const OFFICER: Who = Who::Roles(&[Role::Officer]);
const SUPERVISOR: Who = Who::Roles(&[Role::Supervisor]);
const PROSECUTOR: Who = Who::Roles(&[Role::Prosecutor]);
const JUDGE: Who = Who::Roles(&[Role::Judge]);
const BEFORE_ISSUE: &[WarrantState] = &[
    S::Draft,
    S::SupervisorReview,
    S::ProsecutorReview,
    S::PendingJudge,
    S::JudgeReview,
];

/// The transition table: the only place that says who may move a warrant where.
pub const RULES: &[Rule] = &[
    rule(
        &[S::Draft],
        A::Submit,
        OFFICER,
        MustBe,
        Target::State(S::SupervisorReview),
        audit::SUBMITTED,
    )
    .version(VersionReason::Submitted),
    rule(
        &[S::SupervisorReview],
        A::SupervisorApprove,
        SUPERVISOR,
        MustNotBe,
        Target::AfterSupervisor,
        audit::REVIEWED,
    )
    .records(ApprovalBy::Supervisor),
    rule(
        &[S::SupervisorReview],
        A::ReturnForRevision,
        SUPERVISOR,
        MustNotBe,
        Target::State(S::Draft),
        audit::RETURNED_FOR_REVISION,
    )
    .reason()
    .version(VersionReason::ReturnedForRevision)
    .clears(),
    rule(
        &[S::ProsecutorReview],
        A::ProsecutorApprove,
        PROSECUTOR,
        MustNotBe,
        Target::State(S::PendingJudge),
        audit::QUEUED,
    )
    .records(ApprovalBy::Prosecutor),
    rule(
        &[S::ProsecutorReview],
        A::ReturnForRevision,
        PROSECUTOR,
        MustNotBe,
        Target::State(S::Draft),
        audit::RETURNED_FOR_REVISION,
    )
    .reason()
    .version(VersionReason::ReturnedForRevision)
    .clears(),
    rule(
        &[S::PendingJudge],
        A::Claim,
        JUDGE,
        MustNotBe,
        Target::State(S::JudgeReview),
        audit::CLAIMED,
    )
    .approvals(),
    rule(
        &[S::JudgeReview],
        A::Issue,
        JUDGE,
        MustNotBe,
        Target::State(S::Issued),
        audit::APPROVED,
    )
    .claimant()
    .approvals()
    .step_up(),
    rule(
        &[S::JudgeReview],
        A::Reject,
        JUDGE,
        MustNotBe,
        Target::State(S::Rejected),
        audit::REJECTED,
    )
    .claimant()
    .reason(),
    rule(
        &[S::JudgeReview],
        A::ReturnForRevision,
        JUDGE,
        MustNotBe,
        Target::State(S::Draft),
        audit::RETURNED_FOR_REVISION,
    )
    .claimant()
    .reason()
    .version(VersionReason::ReturnedForRevision)
    .clears(),
    // The window is judged at the execution time the officer records (`executedAt`): a search
    // done in time may be recorded after the deadline, even once the warrant has expired.
    rule(
        &[S::Issued, S::Expired],
        A::Execute,
        OFFICER,
        Any,
        Target::State(S::Executed),
        audit::EXECUTED,
    )
    .window(WindowGuard::Open),
    rule(
        &[S::Executed],
        A::FileReturn,
        OFFICER,
        Any,
        Target::State(S::Returned),
        audit::RETURNED,
    )
    .files(ReturnKind::Inventory),
    rule(
        &[S::Issued, S::Expired],
        A::FileReturn,
        OFFICER,
        Any,
        Target::State(S::Returned),
        audit::RETURNED,
    )
    .files(ReturnKind::NotExecuted),
    rule(
        BEFORE_ISSUE,
        A::Withdraw,
        OFFICER,
        MustBe,
        Target::State(S::Withdrawn),
        audit::WITHDRAWN,
    ),
    rule(
        &[S::Issued],
        A::Extend,
        OFFICER,
        MustBe,
        Target::Same,
        audit::CREATED,
    )
    .window(WindowGuard::Open)
    .child(),
    // A tracking device in use: an extension of its use (FRCrP 41(e)(2)(C)), asked before the
    // use ends.
    rule(
        &[S::Executed],
        A::Extend,
        OFFICER,
        MustBe,
        Target::Same,
        audit::CREATED,
    )
    .window(WindowGuard::TrackingUseOpen)
    .child(),
    rule(
        &[S::Issued],
        A::Expire,
        Who::System,
        Any,
        Target::State(S::Expired),
        audit::EXPIRED,
    )
    .window(WindowGuard::Elapsed),
];

/// Why a transition is refused. [`TransitionError::status`] gives the HTTP status; every 409
/// lists the actions the caller may take instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum TransitionError {
    #[error("{} may not {action} a warrant", role_name(*role))]
    WrongRole { action: Action, role: Option<Role> },
    #[error("separation of duties: nobody may {action} a warrant they authored")]
    OwnWarrant { action: Action },
    #[error("only the warrant's author may {action} it")]
    NotAuthor { action: Action },
    #[error(
        "{action} is not allowed while the warrant is {state}; allowed: {}",
        list(allowed)
    )]
    IllegalInState {
        state: WarrantState,
        action: Action,
        allowed: Vec<Action>,
    },
    #[error("another judge has claimed this warrant; allowed: {}", list(allowed))]
    ClaimedByAnotherJudge {
        action: Action,
        allowed: Vec<Action>,
    },
    #[error(
        "the execution window has closed: {action} is no longer possible; allowed: {}",
        list(allowed)
    )]
    WindowClosed {
        action: Action,
        allowed: Vec<Action>,
    },
    #[error("the execution window is still open; allowed: {}", list(allowed))]
    WindowOpen {
        action: Action,
        allowed: Vec<Action>,
    },
    #[error(
        "the judge may not see this warrant before these approvals: {}; allowed: {}",
        list(missing),
        list(allowed)
    )]
    ApprovalsMissing {
        action: Action,
        missing: Vec<ApprovalBy>,
        allowed: Vec<Action>,
    },
    #[error("{action} needs a reason")]
    ReasonRequired { action: Action },
    #[error("{action} needs a second factor entered within the step-up window")]
    StepUpRequired { action: Action },
    #[error("the warrant cannot go to the {requested}: {reason}")]
    RouteNotAllowed {
        requested: ReviewRoute,
        reason: &'static str,
    },
    #[error("file-return needs the return: an inventory, or \"not executed\"")]
    ReturnRequired,
    #[error("a warrant that is {state} files {expected} return, not {given}")]
    ReturnMismatch {
        state: WarrantState,
        expected: ReturnKind,
        given: ReturnKind,
    },
}

fn role_name(role: Option<Role>) -> &'static str {
    role.map_or("the system", Role::as_str)
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl TransitionError {
    pub fn status(&self) -> u16 {
        use TransitionError::*;
        match self {
            WrongRole { .. } | OwnWarrant { .. } | NotAuthor { .. } => 403,
            IllegalInState { .. }
            | ClaimedByAnotherJudge { .. }
            | WindowClosed { .. }
            | WindowOpen { .. }
            | ApprovalsMissing { .. } => 409,
            ReasonRequired { .. }
            | RouteNotAllowed { .. }
            | ReturnRequired
            | ReturnMismatch { .. } => 422,
            StepUpRequired { .. } => 401,
        }
    }

    /// The problem slug (`urn:writ:problem:<slug>`).
    pub fn slug(&self) -> &'static str {
        use TransitionError::*;
        match self {
            WrongRole { .. } => "forbidden",
            OwnWarrant { .. } => "separation-of-duties",
            NotAuthor { .. } => "not-author",
            IllegalInState { .. } => "illegal-transition",
            ClaimedByAnotherJudge { .. } => "claimed-by-another-judge",
            WindowClosed { .. } => "execution-window-closed",
            WindowOpen { .. } => "execution-window-open",
            ApprovalsMissing { .. } => "approvals-missing",
            ReasonRequired { .. } => "reason-required",
            StepUpRequired { .. } => "step-up-required",
            RouteNotAllowed { .. } => "route-not-allowed",
            ReturnRequired => "return-required",
            ReturnMismatch { .. } => "return-mismatch",
        }
    }

    /// The actions the caller may take instead (every 409).
    pub fn allowed_actions(&self) -> Option<&[Action]> {
        use TransitionError::*;
        match self {
            IllegalInState { allowed, .. }
            | ClaimedByAnotherJudge { allowed, .. }
            | WindowClosed { allowed, .. }
            | WindowOpen { allowed, .. }
            | ApprovalsMissing { allowed, .. } => Some(allowed),
            _ => None,
        }
    }

    fn set_allowed(&mut self, actions: Vec<Action>) {
        use TransitionError::*;
        if let IllegalInState { allowed, .. }
        | ClaimedByAnotherJudge { allowed, .. }
        | WindowClosed { allowed, .. }
        | WindowOpen { allowed, .. }
        | ApprovalsMissing { allowed, .. } = self
        {
            *allowed = actions;
        }
    }
}

/// Applies the table to `action` in `ctx`: the transition to write, or why not.
pub fn transition(ctx: &TransitionContext, action: Action) -> Result<Transition, TransitionError> {
    evaluate(ctx, action, true).map_err(|mut e| {
        if e.status() == 409 {
            e.set_allowed(allowed_actions(ctx));
        }
        e
    })
}

/// The actions the caller may take now, from the same table: those [`transition`] would allow
/// given a complete request (a reason, a step-up, the right return).
pub fn allowed_actions(ctx: &TransitionContext) -> Vec<Action> {
    Action::ALL
        .into_iter()
        .filter(|a| evaluate(ctx, *a, false).is_ok())
        .collect()
}

/// `check_input: false` leaves out what the request itself must carry.
fn evaluate(
    ctx: &TransitionContext,
    action: Action,
    check_input: bool,
) -> Result<Transition, TransitionError> {
    let for_action = || RULES.iter().filter(move |r| r.action == action);
    if !for_action().any(|r| r.who.admits(ctx.mover)) {
        return Err(TransitionError::WrongRole {
            action,
            role: ctx.mover.role(),
        });
    }
    let Some(rule) = for_action().find(|r| r.from.contains(&ctx.state) && r.who.admits(ctx.mover))
    else {
        return Err(TransitionError::IllegalInState {
            state: ctx.state,
            action,
            allowed: Vec::new(),
        });
    };
    if let Mover::User {
        is_author,
        is_claimant,
        ..
    } = ctx.mover
    {
        match rule.author {
            MustNotBe if is_author => return Err(TransitionError::OwnWarrant { action }),
            MustBe if !is_author => return Err(TransitionError::NotAuthor { action }),
            _ => {}
        }
        if rule.needs_claim && !is_claimant {
            return Err(TransitionError::ClaimedByAnotherJudge {
                action,
                allowed: Vec::new(),
            });
        }
    }
    match (rule.window, ctx.window_elapsed) {
        // Not a tracking device, or its use has ended: nothing to extend in this state.
        (WindowGuard::TrackingUseOpen, _) if !ctx.tracking_use_open => {
            return Err(TransitionError::IllegalInState {
                state: ctx.state,
                action,
                allowed: Vec::new(),
            });
        }
        (WindowGuard::Open, true) => {
            return Err(TransitionError::WindowClosed {
                action,
                allowed: Vec::new(),
            });
        }
        (WindowGuard::Elapsed, false) => {
            return Err(TransitionError::WindowOpen {
                action,
                allowed: Vec::new(),
            });
        }
        _ => {}
    }
    if rule.needs_approvals {
        let mut missing = Vec::new();
        if !ctx.approvals.supervisor {
            missing.push(ApprovalBy::Supervisor);
        }
        if ctx.prosecutor_approval_required() && !ctx.approvals.prosecutor {
            missing.push(ApprovalBy::Prosecutor);
        }
        if !missing.is_empty() {
            return Err(TransitionError::ApprovalsMissing {
                action,
                missing,
                allowed: Vec::new(),
            });
        }
    }
    let to = match rule.to {
        Target::State(s) => s,
        Target::Same => ctx.state,
        Target::AfterSupervisor => after_supervisor(ctx, check_input)?,
    };
    if check_input {
        check_request(rule, ctx)?;
    }
    Ok(Transition {
        from: ctx.state,
        action,
        to,
        // Whatever the path, entering the judge queue is recorded as such.
        audit_action: if to == S::PendingJudge {
            audit::QUEUED
        } else {
            rule.audit_action
        },
        version: rule.version,
        approval: rule.approval,
        clears_approvals: rule.clears_approvals,
        creates_child: rule.creates_child,
    })
}

fn after_supervisor(
    ctx: &TransitionContext,
    check_input: bool,
) -> Result<WarrantState, TransitionError> {
    let forced = if ctx.ai_assisted {
        Some((
            ReviewRoute::Prosecutor,
            "an AI-assisted affidavit needs the prosecutor's approval",
        ))
    } else {
        match ctx.prosecutor_review {
            ProsecutorReview::Required => Some((
                ReviewRoute::Prosecutor,
                "this warrant type requires prosecutor review",
            )),
            ProsecutorReview::Skipped => Some((
                ReviewRoute::Judge,
                "this warrant type skips prosecutor review",
            )),
            ProsecutorReview::Optional => None,
        }
    };
    let route = match (forced, ctx.input.route) {
        (Some((route, reason)), Some(requested)) if requested != route && check_input => {
            return Err(TransitionError::RouteNotAllowed { requested, reason });
        }
        (Some((route, _)), _) => route,
        // Optional review: the supervisor chooses; unsaid, the prosecutor sees it.
        (None, requested) => requested.unwrap_or(ReviewRoute::Prosecutor),
    };
    Ok(match route {
        ReviewRoute::Prosecutor => S::ProsecutorReview,
        ReviewRoute::Judge => S::PendingJudge,
    })
}

fn check_request(rule: &Rule, ctx: &TransitionContext) -> Result<(), TransitionError> {
    let action = rule.action;
    if rule.needs_step_up && !ctx.input.stepped_up {
        return Err(TransitionError::StepUpRequired { action });
    }
    if rule.needs_reason
        && ctx
            .input
            .reason
            .as_deref()
            .is_none_or(|r| r.trim().is_empty())
    {
        return Err(TransitionError::ReasonRequired { action });
    }
    if let Some(expected) = rule.return_kind {
        match ctx.input.return_kind {
            None => return Err(TransitionError::ReturnRequired),
            Some(given) if given != expected => {
                return Err(TransitionError::ReturnMismatch {
                    state: ctx.state,
                    expected,
                    given,
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
