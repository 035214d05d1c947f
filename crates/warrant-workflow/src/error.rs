//! Why a stored warrant operation failed, and what kind of failure that is
//! ([`writ_error_kind::Classify`]): the core's refusals keep their own problem slugs, so a client
//! tells an illegal transition from a closed execution window without reading the text.

use writ_error_kind::{Classify, ErrorKind, classify_sqlx};

use crate::completeness::Incomplete;
use crate::deadline::ExecutionRefusal;
use crate::seal::SealError;
use crate::state::{TransitionError, WarrantState};
use crate::types::PolicyErrors;

/// The problem slug of a request made against an older version of the warrant.
pub const STALE_VERSION: &str = "stale-version";

#[derive(Debug, thiserror::Error)]
pub enum WarrantError {
    /// No such warrant in the agency, or one the caller may not see (sealed): not told apart.
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Incomplete(#[from] Incomplete),
    #[error(transparent)]
    Execution(#[from] ExecutionRefusal),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("the warrant is at version {current}, not {expected}: reload it and try again")]
    StaleVersion { expected: i32, current: i32 },
    #[error("only a draft can be edited; this warrant is {0}")]
    NotDraft(WarrantState),
    #[error("only the warrant's author may edit the draft")]
    NotAuthor,
    #[error("the warrant is sealed already; renew or unseal the seal instead")]
    AlreadySealed,
    #[error("the warrant is not sealed")]
    NotSealed,
    #[error("the warrant has not been issued: there is no service copy")]
    NotIssued,
    #[error(
        "the warrant this extends ({number}) is {state} now: an extension issues only while its \
         warrant may still be extended (issued and in its window, or a tracking device in use)"
    )]
    ParentNotExtendable { number: String, state: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("warrant numbers for {0} are exhausted")]
    NumbersExhausted(i32),
    /// The stored `warrant-types` policy no longer validates (it is checked when set).
    #[error("the agency's warrant-types policy is invalid: {0}")]
    Policy(PolicyErrors),
    /// A stored row the code cannot read: the schema and the code disagree.
    #[error("stored warrant data is unreadable: {0}")]
    Corrupt(String),
    /// A signature the step needs is missing, or the document cannot be signed now; `slug` is
    /// one of [`crate::signing::slug`].
    #[error("{detail}")]
    Unsigned { slug: &'static str, detail: String },
    /// A remote-oath rule (session state, oath, amendments, the provider's webhook).
    #[error(transparent)]
    Video(#[from] crate::video::VideoError),
    #[error(transparent)]
    Tenancy(#[from] writ_tenancy::TenancyError),
    #[error(transparent)]
    Audit(#[from] writ_audit_log::AuditError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl WarrantError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

fn transition_kind(e: &TransitionError) -> ErrorKind {
    use TransitionError as T;
    let detail = e.to_string();
    // The slugs are the core's (`TransitionError::slug`); a unit test keeps them equal.
    match e {
        T::WrongRole { .. } | T::OwnWarrant { .. } | T::NotAuthor { .. } => {
            ErrorKind::Forbidden { detail }
        }
        T::IllegalInState { .. } => ErrorKind::Conflict {
            slug: "illegal-transition",
            detail,
        },
        T::ClaimedByAnotherJudge { .. } => ErrorKind::Conflict {
            slug: "claimed-by-another-judge",
            detail,
        },
        T::WindowClosed { .. } => ErrorKind::Conflict {
            slug: "execution-window-closed",
            detail,
        },
        T::WindowOpen { .. } => ErrorKind::Conflict {
            slug: "execution-window-open",
            detail,
        },
        T::ApprovalsMissing { .. } => ErrorKind::Conflict {
            slug: "approvals-missing",
            detail,
        },
        T::ReasonRequired { .. } => ErrorKind::invalid("reason", detail),
        T::RouteNotAllowed { .. } => ErrorKind::invalid("route", detail),
        T::ReturnRequired | T::ReturnMismatch { .. } => ErrorKind::invalid("return", detail),
        T::StepUpRequired { .. } => ErrorKind::Unauthorized {
            slug: "step-up-required",
            detail,
        },
    }
}

fn execution_kind(e: &ExecutionRefusal) -> ErrorKind {
    let detail = e.to_string();
    match e {
        ExecutionRefusal::BeforeIssue { .. } => ErrorKind::Conflict {
            slug: "execution-before-issue",
            detail,
        },
        ExecutionRefusal::Expired { .. } => ErrorKind::Conflict {
            slug: "warrant-expired",
            detail,
        },
        ExecutionRefusal::OutsideDaytime { .. } => ErrorKind::Conflict {
            slug: "outside-daytime-window",
            detail,
        },
    }
}

fn seal_kind(e: &SealError) -> ErrorKind {
    let detail = e.to_string();
    match e {
        SealError::NotAJudge(_) => ErrorKind::Forbidden { detail },
        SealError::Missing(field) | SealError::TooLong(field) => ErrorKind::invalid(*field, detail),
        SealError::ExpiryTooFar => ErrorKind::invalid("expiresAt", detail),
        SealError::ExpiryNotAfter | SealError::NotLater { .. } => {
            ErrorKind::invalid("expiresAt", detail)
        }
        SealError::NoExpiry | SealError::Lapsed { .. } | SealError::AlreadyUnsealed(_) => {
            ErrorKind::conflict(detail)
        }
    }
}

impl Classify for WarrantError {
    fn kind(&self) -> ErrorKind {
        match self {
            WarrantError::NotFound => ErrorKind::NotFound,
            WarrantError::Transition(e) => transition_kind(e),
            // The 422 lists every field; the route renders all of them (`errors`).
            WarrantError::Incomplete(e) => match e.problems.first() {
                Some(p) => ErrorKind::invalid(p.path(), p.to_string()),
                None => ErrorKind::invalid("body", e.to_string()),
            },
            WarrantError::Execution(e) => execution_kind(e),
            WarrantError::Seal(e) => seal_kind(e),
            WarrantError::StaleVersion { .. } => ErrorKind::Conflict {
                slug: STALE_VERSION,
                detail: self.to_string(),
            },
            WarrantError::NotDraft(_)
            | WarrantError::AlreadySealed
            | WarrantError::NotSealed
            | WarrantError::NotIssued
            | WarrantError::ParentNotExtendable { .. }
            | WarrantError::NumbersExhausted(_) => ErrorKind::conflict(self.to_string()),
            WarrantError::NotAuthor => ErrorKind::Forbidden {
                detail: self.to_string(),
            },
            WarrantError::Invalid { field, reason } => ErrorKind::invalid(field, reason),
            WarrantError::Policy(_) | WarrantError::Corrupt(_) => ErrorKind::Internal,
            WarrantError::Unsigned { slug, detail } => ErrorKind::Conflict {
                slug,
                detail: detail.clone(),
            },
            WarrantError::Video(e) => e.kind(),
            WarrantError::Tenancy(e) => e.kind(),
            WarrantError::Audit(e) => e.kind(),
            WarrantError::Database(e) => classify_sqlx(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use writ_auth_mfa::Role;

    use super::*;
    use crate::state::{Action, ApprovalBy, ReturnKind, ReviewRoute};

    #[test]
    fn transition_slugs_and_statuses_are_the_cores() {
        let samples = [
            TransitionError::WrongRole {
                action: Action::Claim,
                role: Some(Role::Officer),
            },
            TransitionError::OwnWarrant {
                action: Action::Claim,
            },
            TransitionError::NotAuthor {
                action: Action::Submit,
            },
            TransitionError::IllegalInState {
                state: WarrantState::Draft,
                action: Action::Claim,
                allowed: vec![],
            },
            TransitionError::ClaimedByAnotherJudge {
                action: Action::Issue,
                allowed: vec![],
            },
            TransitionError::WindowClosed {
                action: Action::Execute,
                allowed: vec![],
            },
            TransitionError::WindowOpen {
                action: Action::Expire,
                allowed: vec![],
            },
            TransitionError::ApprovalsMissing {
                action: Action::Claim,
                missing: vec![ApprovalBy::Prosecutor],
                allowed: vec![],
            },
            TransitionError::ReasonRequired {
                action: Action::Reject,
            },
            TransitionError::StepUpRequired {
                action: Action::Issue,
            },
            TransitionError::RouteNotAllowed {
                requested: ReviewRoute::Judge,
                reason: "r",
            },
            TransitionError::ReturnRequired,
            TransitionError::ReturnMismatch {
                state: WarrantState::Issued,
                expected: ReturnKind::NotExecuted,
                given: ReturnKind::Inventory,
            },
        ];
        for e in samples {
            let status = e.status();
            let kind = WarrantError::Transition(e.clone()).kind();
            match (status, kind) {
                (403, ErrorKind::Forbidden { .. }) | (422, ErrorKind::Invalid { .. }) => {}
                (409, ErrorKind::Conflict { slug, .. }) => assert_eq!(slug, e.slug()),
                (401, ErrorKind::Unauthorized { slug, .. }) => assert_eq!(slug, e.slug()),
                (status, kind) => panic!("{e:?}: {status} became {kind:?}"),
            }
        }
    }

    #[test]
    fn execution_refusals_keep_the_cores_slugs() {
        let t = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        for e in [
            ExecutionRefusal::BeforeIssue {
                issued_at: t,
                executed_at: t,
            },
            ExecutionRefusal::Expired {
                deadline: t,
                executed_at: t,
            },
        ] {
            match WarrantError::Execution(e.clone()).kind() {
                ErrorKind::Conflict { slug, .. } => assert_eq!(slug, e.slug()),
                other => panic!("{other:?}"),
            }
        }
    }
}
