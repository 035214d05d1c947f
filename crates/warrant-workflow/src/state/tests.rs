use super::*;

const ROLES: [Role; 7] = [
    Role::Officer,
    Role::Supervisor,
    Role::Prosecutor,
    Role::Judge,
    Role::AgencyAdmin,
    Role::Auditor,
    Role::PlatformOperator,
];

/// Who must the caller be, relative to the application's author.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rel {
    Author,
    NotAuthor,
    Either,
}

/// The lifecycle written out independently of `RULES`: (from, action, role, relation, to).
/// Context: prosecutor review required, both approvals present, window open, the judge holds
/// the claim, the request complete.
const EXPECTED: &[(WarrantState, Action, Role, Rel, WarrantState)] = &[
    (
        S::Draft,
        A::Submit,
        Role::Officer,
        Rel::Author,
        S::SupervisorReview,
    ),
    (
        S::SupervisorReview,
        A::SupervisorApprove,
        Role::Supervisor,
        Rel::NotAuthor,
        S::ProsecutorReview,
    ),
    (
        S::SupervisorReview,
        A::ReturnForRevision,
        Role::Supervisor,
        Rel::NotAuthor,
        S::Draft,
    ),
    (
        S::ProsecutorReview,
        A::ProsecutorApprove,
        Role::Prosecutor,
        Rel::NotAuthor,
        S::PendingJudge,
    ),
    (
        S::ProsecutorReview,
        A::ReturnForRevision,
        Role::Prosecutor,
        Rel::NotAuthor,
        S::Draft,
    ),
    (
        S::PendingJudge,
        A::Claim,
        Role::Judge,
        Rel::NotAuthor,
        S::JudgeReview,
    ),
    (
        S::JudgeReview,
        A::Issue,
        Role::Judge,
        Rel::NotAuthor,
        S::Issued,
    ),
    (
        S::JudgeReview,
        A::Reject,
        Role::Judge,
        Rel::NotAuthor,
        S::Rejected,
    ),
    (
        S::JudgeReview,
        A::ReturnForRevision,
        Role::Judge,
        Rel::NotAuthor,
        S::Draft,
    ),
    (
        S::Issued,
        A::Execute,
        Role::Officer,
        Rel::Either,
        S::Executed,
    ),
    (S::Issued, A::Extend, Role::Officer, Rel::Author, S::Issued),
    (
        S::Executed,
        A::Extend,
        Role::Officer,
        Rel::Author,
        S::Executed,
    ),
    (
        S::Issued,
        A::FileReturn,
        Role::Officer,
        Rel::Either,
        S::Returned,
    ),
    (
        S::Executed,
        A::FileReturn,
        Role::Officer,
        Rel::Either,
        S::Returned,
    ),
    // Recorded after the deadline or the expiry, with an execution time inside the window.
    (
        S::Expired,
        A::Execute,
        Role::Officer,
        Rel::Either,
        S::Executed,
    ),
    (
        S::Expired,
        A::FileReturn,
        Role::Officer,
        Rel::Either,
        S::Returned,
    ),
    (
        S::Draft,
        A::Withdraw,
        Role::Officer,
        Rel::Author,
        S::Withdrawn,
    ),
    (
        S::SupervisorReview,
        A::Withdraw,
        Role::Officer,
        Rel::Author,
        S::Withdrawn,
    ),
    (
        S::ProsecutorReview,
        A::Withdraw,
        Role::Officer,
        Rel::Author,
        S::Withdrawn,
    ),
    (
        S::PendingJudge,
        A::Withdraw,
        Role::Officer,
        Rel::Author,
        S::Withdrawn,
    ),
    (
        S::JudgeReview,
        A::Withdraw,
        Role::Officer,
        Rel::Author,
        S::Withdrawn,
    ),
];

fn full_ctx(state: WarrantState, role: Role, is_author: bool) -> TransitionContext {
    let mut ctx = TransitionContext::new(
        state,
        Mover::User {
            role,
            is_author,
            is_claimant: role == Role::Judge,
        },
        ProsecutorReview::Required,
    );
    ctx.approvals = Approvals {
        supervisor: true,
        prosecutor: true,
    };
    ctx.tracking_use_open = true;
    ctx.input = ActionInput {
        reason: Some("the affidavit does not say when the informant saw the gun".into()),
        route: None,
        stepped_up: true,
        return_kind: Some(if state == S::Executed {
            ReturnKind::Inventory
        } else {
            ReturnKind::NotExecuted
        }),
    };
    ctx
}

fn user_ctx(state: WarrantState, role: Role, is_author: bool) -> TransitionContext {
    TransitionContext::new(
        state,
        Mover::user(role, is_author),
        ProsecutorReview::Required,
    )
}

#[test]
fn every_state_action_role_and_authorship() {
    let mut checked = 0;
    for state in WarrantState::ALL {
        for action in Action::ALL {
            for role in ROLES {
                for is_author in [false, true] {
                    let ctx = full_ctx(state, role, is_author);
                    let got = transition(&ctx, action);
                    let line = EXPECTED
                        .iter()
                        .find(|(s, a, r, _, _)| *s == state && *a == action && *r == role);
                    let role_ever = EXPECTED
                        .iter()
                        .any(|(_, a, r, _, _)| *a == action && *r == role);
                    let case = format!("{state} {action} {role} author={is_author}");
                    match line {
                        Some((_, _, _, rel, to)) => match (rel, is_author) {
                            (Rel::Author, false) => {
                                assert_eq!(
                                    got,
                                    Err(TransitionError::NotAuthor { action }),
                                    "{case}"
                                )
                            }
                            (Rel::NotAuthor, true) => {
                                assert_eq!(
                                    got,
                                    Err(TransitionError::OwnWarrant { action }),
                                    "{case}"
                                )
                            }
                            _ => {
                                let t = got.unwrap_or_else(|e| panic!("{case}: {e}"));
                                assert_eq!(
                                    (t.from, t.action, t.to),
                                    (state, action, *to),
                                    "{case}"
                                );
                            }
                        },
                        None if !role_ever => assert_eq!(
                            got,
                            Err(TransitionError::WrongRole {
                                action,
                                role: Some(role)
                            }),
                            "{case}"
                        ),
                        None => match got {
                            Err(TransitionError::IllegalInState {
                                state: s,
                                action: a,
                                ..
                            }) => assert_eq!((s, a), (state, action), "{case}"),
                            other => panic!("{case}: expected 409, got {other:?}"),
                        },
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 11 * 12 * 7 * 2);
}

#[test]
fn every_rule_is_in_the_written_out_lifecycle() {
    // The other direction: nothing in RULES for users that EXPECTED does not list.
    for rule in RULES {
        let Who::Roles(roles) = rule.who else {
            continue;
        };
        for from in rule.from {
            for role in roles.iter() {
                assert!(
                    EXPECTED
                        .iter()
                        .any(|(s, a, r, _, _)| s == from && *a == rule.action && r == role),
                    "{from} {} {role}",
                    rule.action
                );
            }
        }
    }
}

#[test]
fn allowed_actions_match_transition_for_every_context() {
    for state in WarrantState::ALL {
        for role in ROLES {
            for is_author in [false, true] {
                let ctx = full_ctx(state, role, is_author);
                let allowed = allowed_actions(&ctx);
                let succeeding: Vec<Action> = Action::ALL
                    .into_iter()
                    .filter(|a| transition(&ctx, *a).is_ok())
                    .collect();
                assert_eq!(allowed, succeeding, "{state} {role} author={is_author}");
            }
        }
    }
}

#[test]
fn an_illegal_transition_lists_the_callers_allowed_actions() {
    let ctx = full_ctx(S::Issued, Role::Officer, true);
    let err = transition(&ctx, A::Submit).unwrap_err();
    assert_eq!(err.status(), 409);
    assert_eq!(err.slug(), "illegal-transition");
    assert_eq!(
        err.allowed_actions(),
        Some(&[A::Execute, A::FileReturn, A::Extend][..])
    );
    assert!(
        err.to_string()
            .contains("submit is not allowed while the warrant is issued; allowed: execute, file-return, extend"),
        "{err}"
    );
    // Another officer may execute and file the return, not extend.
    let other = full_ctx(S::Issued, Role::Officer, false);
    assert_eq!(allowed_actions(&other), [A::Execute, A::FileReturn]);
    // Final states allow nothing.
    for s in [S::Returned, S::Rejected, S::Withdrawn] {
        assert!(s.is_final(), "{s}");
        for role in ROLES {
            assert!(
                allowed_actions(&full_ctx(s, role, true)).is_empty(),
                "{s} {role}"
            );
        }
    }
    assert!(
        !S::Expired.is_final(),
        "an expired warrant still takes its return"
    );
}

#[test]
fn error_statuses() {
    let cases = [
        (
            transition(&full_ctx(S::JudgeReview, Role::Officer, false), A::Issue),
            403,
            "forbidden",
        ),
        (
            transition(
                &full_ctx(S::SupervisorReview, Role::Supervisor, true),
                A::SupervisorApprove,
            ),
            403,
            "separation-of-duties",
        ),
        (
            transition(&full_ctx(S::Draft, Role::Officer, false), A::Submit),
            403,
            "not-author",
        ),
        (
            transition(&full_ctx(S::Draft, Role::Judge, false), A::Claim),
            409,
            "illegal-transition",
        ),
    ];
    for (result, status, slug) in cases {
        let err = result.unwrap_err();
        assert_eq!((err.status(), err.slug()), (status, slug), "{err}");
    }
}

#[test]
fn agency_admin_auditor_and_operator_never_move_a_warrant() {
    for role in [Role::AgencyAdmin, Role::Auditor, Role::PlatformOperator] {
        for state in WarrantState::ALL {
            let ctx = full_ctx(state, role, false);
            assert!(allowed_actions(&ctx).is_empty(), "{role} {state}");
            for action in Action::ALL {
                assert_eq!(
                    transition(&ctx, action),
                    Err(TransitionError::WrongRole {
                        action,
                        role: Some(role)
                    })
                );
            }
        }
    }
}

// Separation of duties: nobody reviews, claims or issues a warrant they authored.

#[test]
fn supervisor_cannot_review_own_warrant() {
    let ctx = full_ctx(S::SupervisorReview, Role::Supervisor, true);
    for action in [A::SupervisorApprove, A::ReturnForRevision] {
        let err = transition(&ctx, action).unwrap_err();
        assert_eq!(err, TransitionError::OwnWarrant { action });
        assert_eq!(err.status(), 403);
    }
    assert!(allowed_actions(&ctx).is_empty());
}

#[test]
fn prosecutor_cannot_review_own_warrant() {
    let ctx = full_ctx(S::ProsecutorReview, Role::Prosecutor, true);
    assert_eq!(
        transition(&ctx, A::ProsecutorApprove),
        Err(TransitionError::OwnWarrant {
            action: A::ProsecutorApprove
        })
    );
}

#[test]
fn judge_cannot_claim_issue_reject_or_return_own_warrant() {
    let claim = full_ctx(S::PendingJudge, Role::Judge, true);
    assert_eq!(
        transition(&claim, A::Claim),
        Err(TransitionError::OwnWarrant { action: A::Claim })
    );
    let review = full_ctx(S::JudgeReview, Role::Judge, true);
    for action in [A::Issue, A::Reject, A::ReturnForRevision] {
        assert_eq!(
            transition(&review, action),
            Err(TransitionError::OwnWarrant { action })
        );
    }
}

#[test]
fn only_the_author_submits_withdraws_and_extends() {
    for (state, action) in [
        (S::Draft, A::Submit),
        (S::PendingJudge, A::Withdraw),
        (S::Issued, A::Extend),
    ] {
        let other = full_ctx(state, Role::Officer, false);
        assert_eq!(
            transition(&other, action),
            Err(TransitionError::NotAuthor { action })
        );
        assert!(transition(&full_ctx(state, Role::Officer, true), action).is_ok());
    }
}

#[test]
fn only_the_claiming_judge_decides() {
    let mut ctx = full_ctx(S::JudgeReview, Role::Judge, false);
    ctx.mover = Mover::user(Role::Judge, false);
    for action in [A::Issue, A::Reject, A::ReturnForRevision] {
        let err = transition(&ctx, action).unwrap_err();
        assert!(
            matches!(err, TransitionError::ClaimedByAnotherJudge { .. }),
            "{err:?}"
        );
        assert_eq!(err.status(), 409);
        assert_eq!(err.allowed_actions(), Some(&[][..]));
    }
    ctx.mover = Mover::claimant();
    assert!(transition(&ctx, A::Issue).is_ok());
}

// Prosecutor review modes.

fn approve(
    mode: ProsecutorReview,
    ai: bool,
    route: Option<ReviewRoute>,
) -> Result<Transition, TransitionError> {
    let mut ctx = user_ctx(S::SupervisorReview, Role::Supervisor, false);
    ctx.prosecutor_review = mode;
    ctx.ai_assisted = ai;
    ctx.input.route = route;
    transition(&ctx, A::SupervisorApprove)
}

#[test]
fn required_review_goes_to_the_prosecutor() {
    let t = approve(ProsecutorReview::Required, false, None).unwrap();
    assert_eq!(t.to, S::ProsecutorReview);
    assert_eq!(t.audit_action, "warrant.reviewed");
    assert_eq!(t.approval, Some(ApprovalBy::Supervisor));
    assert_eq!(
        approve(
            ProsecutorReview::Required,
            false,
            Some(ReviewRoute::Prosecutor)
        )
        .unwrap()
        .to,
        S::ProsecutorReview
    );
    let err = approve(ProsecutorReview::Required, false, Some(ReviewRoute::Judge)).unwrap_err();
    assert_eq!(
        err,
        TransitionError::RouteNotAllowed {
            requested: ReviewRoute::Judge,
            reason: "this warrant type requires prosecutor review"
        }
    );
    assert_eq!(err.status(), 422);
}

#[test]
fn skipped_review_goes_straight_to_the_judge_queue() {
    let t = approve(ProsecutorReview::Skipped, false, None).unwrap();
    assert_eq!(t.to, S::PendingJudge);
    assert_eq!(t.audit_action, "warrant.queued");
    assert!(matches!(
        approve(
            ProsecutorReview::Skipped,
            false,
            Some(ReviewRoute::Prosecutor)
        ),
        Err(TransitionError::RouteNotAllowed { .. })
    ));
}

#[test]
fn optional_review_is_the_supervisors_choice() {
    assert_eq!(
        approve(ProsecutorReview::Optional, false, Some(ReviewRoute::Judge))
            .unwrap()
            .to,
        S::PendingJudge
    );
    assert_eq!(
        approve(
            ProsecutorReview::Optional,
            false,
            Some(ReviewRoute::Prosecutor)
        )
        .unwrap()
        .to,
        S::ProsecutorReview
    );
    // Unsaid, the prosecutor sees it.
    assert_eq!(
        approve(ProsecutorReview::Optional, false, None).unwrap().to,
        S::ProsecutorReview
    );
}

#[test]
fn optional_review_routed_to_the_judge_needs_no_prosecutor_approval_to_claim() {
    let mut ctx = user_ctx(S::PendingJudge, Role::Judge, false);
    ctx.prosecutor_review = ProsecutorReview::Optional;
    ctx.approvals.supervisor = true;
    assert_eq!(transition(&ctx, A::Claim).unwrap().to, S::JudgeReview);
}

// AI-assisted affidavits need both approvals before the judge.

#[test]
fn ai_assisted_affidavits_always_go_to_the_prosecutor() {
    for mode in [
        ProsecutorReview::Required,
        ProsecutorReview::Optional,
        ProsecutorReview::Skipped,
    ] {
        assert_eq!(
            approve(mode, true, None).unwrap().to,
            S::ProsecutorReview,
            "{mode:?}"
        );
        assert_eq!(
            approve(mode, true, Some(ReviewRoute::Judge)),
            Err(TransitionError::RouteNotAllowed {
                requested: ReviewRoute::Judge,
                reason: "an AI-assisted affidavit needs the prosecutor's approval"
            }),
            "{mode:?}"
        );
    }
}

#[test]
fn ai_assisted_affidavit_cannot_be_claimed_without_both_approvals() {
    let mut ctx = user_ctx(S::PendingJudge, Role::Judge, false);
    ctx.prosecutor_review = ProsecutorReview::Skipped;
    ctx.ai_assisted = true;
    ctx.approvals.supervisor = true;
    let err = transition(&ctx, A::Claim).unwrap_err();
    assert_eq!(
        err,
        TransitionError::ApprovalsMissing {
            action: A::Claim,
            missing: vec![ApprovalBy::Prosecutor],
            allowed: vec![]
        }
    );
    assert_eq!(err.status(), 409);
    ctx.approvals.prosecutor = true;
    assert!(transition(&ctx, A::Claim).is_ok());
    // Nor issued, should a claim have slipped through.
    let mut review = full_ctx(S::JudgeReview, Role::Judge, false);
    review.ai_assisted = true;
    review.approvals.prosecutor = false;
    assert!(matches!(
        transition(&review, A::Issue),
        Err(TransitionError::ApprovalsMissing { .. })
    ));
}

#[test]
fn ai_assisted_full_path_reaches_the_judge_only_through_the_prosecutor() {
    let mut ctx = user_ctx(S::Draft, Role::Officer, true);
    ctx.prosecutor_review = ProsecutorReview::Skipped;
    ctx.ai_assisted = true;
    let t = transition(&ctx, A::Submit).unwrap();
    assert_eq!(t.version, Some(VersionReason::Submitted));
    ctx.state = t.to;
    ctx.mover = Mover::user(Role::Supervisor, false);
    let t = transition(&ctx, A::SupervisorApprove).unwrap();
    ctx.state = t.to;
    ctx.approvals.supervisor = true;
    assert_eq!(ctx.state, S::ProsecutorReview);
    ctx.mover = Mover::user(Role::Prosecutor, false);
    let t = transition(&ctx, A::ProsecutorApprove).unwrap();
    assert_eq!((t.to, t.audit_action), (S::PendingJudge, "warrant.queued"));
    ctx.state = t.to;
    ctx.approvals.prosecutor = true;
    ctx.mover = Mover::user(Role::Judge, false);
    let t = transition(&ctx, A::Claim).unwrap();
    assert_eq!((t.to, t.audit_action), (S::JudgeReview, "warrant.claimed"));
    ctx.state = t.to;
    ctx.mover = Mover::claimant();
    ctx.input.stepped_up = true;
    let t = transition(&ctx, A::Issue).unwrap();
    assert_eq!((t.to, t.audit_action), (S::Issued, "warrant.approved"));
}

#[test]
fn a_claim_needs_the_supervisors_approval_and_the_prosecutors_when_required() {
    let mut ctx = user_ctx(S::PendingJudge, Role::Judge, false);
    assert!(matches!(
        transition(&ctx, A::Claim),
        Err(TransitionError::ApprovalsMissing { ref missing, .. })
            if missing == &[ApprovalBy::Supervisor, ApprovalBy::Prosecutor]
    ));
    // Allowed actions honour the same check: nothing until the approvals exist.
    assert!(allowed_actions(&ctx).is_empty());
    ctx.approvals = Approvals {
        supervisor: true,
        prosecutor: true,
    };
    assert_eq!(allowed_actions(&ctx), [A::Claim]);
}

// Reasons, step-up, returns.

#[test]
fn rejecting_and_returning_need_a_reason() {
    let mut review = full_ctx(S::JudgeReview, Role::Judge, false);
    for reason in [None, Some(String::new()), Some("   ".to_owned())] {
        review.input.reason = reason;
        for action in [A::Reject, A::ReturnForRevision] {
            let err = transition(&review, action).unwrap_err();
            assert_eq!(err, TransitionError::ReasonRequired { action });
            assert_eq!(err.status(), 422);
        }
    }
    // Missing input does not hide an action from the allowed list.
    assert!(allowed_actions(&review).contains(&A::Reject));
    let mut sup = full_ctx(S::SupervisorReview, Role::Supervisor, false);
    sup.input.reason = None;
    assert_eq!(
        transition(&sup, A::ReturnForRevision),
        Err(TransitionError::ReasonRequired {
            action: A::ReturnForRevision
        })
    );
    assert!(A::Reject.needs_reason() && A::ReturnForRevision.needs_reason());
    assert!(!A::Submit.needs_reason());
}

#[test]
fn return_for_revision_goes_back_to_draft_clearing_approvals() {
    for (state, role) in [
        (S::SupervisorReview, Role::Supervisor),
        (S::ProsecutorReview, Role::Prosecutor),
        (S::JudgeReview, Role::Judge),
    ] {
        let t = transition(&full_ctx(state, role, false), A::ReturnForRevision).unwrap();
        assert_eq!(t.to, S::Draft);
        assert_eq!(t.audit_action, "warrant.returned_for_revision");
        assert_eq!(t.version, Some(VersionReason::ReturnedForRevision));
        assert!(t.clears_approvals);
    }
}

#[test]
fn issuing_needs_a_step_up() {
    let mut ctx = full_ctx(S::JudgeReview, Role::Judge, false);
    ctx.input.stepped_up = false;
    let err = transition(&ctx, A::Issue).unwrap_err();
    assert_eq!(err, TransitionError::StepUpRequired { action: A::Issue });
    assert_eq!((err.status(), err.slug()), (401, "step-up-required"));
    assert!(A::Issue.needs_step_up());
    assert!(!A::Claim.needs_step_up());
}

#[test]
fn a_return_is_an_inventory_after_execution_and_not_executed_otherwise() {
    let mut executed = full_ctx(S::Executed, Role::Officer, false);
    executed.input.return_kind = Some(ReturnKind::NotExecuted);
    assert_eq!(
        transition(&executed, A::FileReturn),
        Err(TransitionError::ReturnMismatch {
            state: S::Executed,
            expected: ReturnKind::Inventory,
            given: ReturnKind::NotExecuted
        })
    );
    executed.input.return_kind = None;
    assert_eq!(
        transition(&executed, A::FileReturn),
        Err(TransitionError::ReturnRequired)
    );
    for state in [S::Issued, S::Expired] {
        let mut ctx = full_ctx(state, Role::Officer, false);
        ctx.input.return_kind = Some(ReturnKind::Inventory);
        assert!(matches!(
            transition(&ctx, A::FileReturn),
            Err(TransitionError::ReturnMismatch { .. })
        ));
        ctx.input.return_kind = Some(ReturnKind::NotExecuted);
        let t = transition(&ctx, A::FileReturn).unwrap();
        assert_eq!((t.to, t.audit_action), (S::Returned, "warrant.returned"));
    }
}

// The execution window.

#[test]
fn execute_and_extend_only_while_the_window_is_open() {
    let mut ctx = full_ctx(S::Issued, Role::Officer, true);
    ctx.window_elapsed = true;
    for action in [A::Execute, A::Extend] {
        let err = transition(&ctx, action).unwrap_err();
        assert!(
            matches!(err, TransitionError::WindowClosed { .. }),
            "{err:?}"
        );
        assert_eq!(err.status(), 409);
        // An unexecuted return is still possible.
        assert_eq!(err.allowed_actions(), Some(&[A::FileReturn][..]));
    }
}

#[test]
fn an_expired_warrant_is_executed_only_with_an_execution_time_inside_the_window() {
    // The store judges the window at `executedAt`: open for an execution done in time.
    let mut ctx = full_ctx(S::Expired, Role::Officer, false);
    let t = transition(&ctx, A::Execute).unwrap();
    assert_eq!((t.from, t.to), (S::Expired, S::Executed));
    ctx.window_elapsed = true;
    let err = transition(&ctx, A::Execute).unwrap_err();
    assert!(
        matches!(err, TransitionError::WindowClosed { .. }),
        "{err:?}"
    );
    assert_eq!(err.allowed_actions(), Some(&[A::FileReturn][..]));
    // Never extended once expired.
    ctx.window_elapsed = false;
    assert!(matches!(
        transition(&ctx, A::Extend),
        Err(TransitionError::IllegalInState { .. })
    ));
}

#[test]
fn a_tracking_device_in_use_is_extended_after_installation_only_while_its_use_lasts() {
    let mut ctx = full_ctx(S::Executed, Role::Officer, true);
    let t = transition(&ctx, A::Extend).unwrap();
    assert_eq!((t.from, t.to), (S::Executed, S::Executed));
    assert!(t.creates_child);
    // Its use ended, or not a tracking device: nothing to extend once executed.
    ctx.tracking_use_open = false;
    assert!(matches!(
        transition(&ctx, A::Extend),
        Err(TransitionError::IllegalInState { .. })
    ));
    assert!(!allowed_actions(&ctx).contains(&A::Extend));
    // Someone else's warrant: the author asks.
    let other = full_ctx(S::Executed, Role::Officer, false);
    assert_eq!(
        transition(&other, A::Extend),
        Err(TransitionError::NotAuthor { action: A::Extend })
    );
}

#[test]
fn extend_creates_a_child_and_leaves_the_warrant_issued() {
    let t = transition(&full_ctx(S::Issued, Role::Officer, true), A::Extend).unwrap();
    assert_eq!((t.from, t.to), (S::Issued, S::Issued));
    assert!(t.creates_child);
    assert_eq!(t.audit_action, "warrant.created");
}

#[test]
fn the_expiry_job_expires_issued_warrants_past_their_window() {
    let mut ctx = TransitionContext::new(S::Issued, Mover::System, ProsecutorReview::Required);
    let err = transition(&ctx, A::Expire).unwrap_err();
    assert!(matches!(err, TransitionError::WindowOpen { .. }), "{err:?}");
    assert!(allowed_actions(&ctx).is_empty());
    ctx.window_elapsed = true;
    assert_eq!(allowed_actions(&ctx), [A::Expire]);
    let t = transition(&ctx, A::Expire).unwrap();
    assert_eq!((t.to, t.audit_action), (S::Expired, "warrant.expired"));
    for state in WarrantState::ALL.into_iter().filter(|s| *s != S::Issued) {
        ctx.state = state;
        assert!(
            matches!(
                transition(&ctx, A::Expire),
                Err(TransitionError::IllegalInState { .. })
            ),
            "{state}"
        );
    }
    // The job does nothing else, and no user expires a warrant.
    ctx.state = S::Issued;
    assert_eq!(
        transition(&ctx, A::Execute),
        Err(TransitionError::WrongRole {
            action: A::Execute,
            role: None
        })
    );
    for role in ROLES {
        let mut user = full_ctx(S::Issued, role, false);
        user.window_elapsed = true;
        assert_eq!(
            transition(&user, A::Expire),
            Err(TransitionError::WrongRole {
                action: A::Expire,
                role: Some(role)
            })
        );
    }
}

// Audit codes and versions.

#[test]
fn audit_codes_per_transition() {
    let expected = [
        (
            S::Draft,
            A::Submit,
            Role::Officer,
            true,
            "warrant.submitted",
        ),
        (
            S::SupervisorReview,
            A::SupervisorApprove,
            Role::Supervisor,
            false,
            "warrant.reviewed",
        ),
        (
            S::ProsecutorReview,
            A::ProsecutorApprove,
            Role::Prosecutor,
            false,
            "warrant.queued",
        ),
        (
            S::PendingJudge,
            A::Claim,
            Role::Judge,
            false,
            "warrant.claimed",
        ),
        (
            S::JudgeReview,
            A::Issue,
            Role::Judge,
            false,
            "warrant.approved",
        ),
        (
            S::JudgeReview,
            A::Reject,
            Role::Judge,
            false,
            "warrant.rejected",
        ),
        (
            S::Issued,
            A::Execute,
            Role::Officer,
            false,
            "warrant.executed",
        ),
        (
            S::Executed,
            A::FileReturn,
            Role::Officer,
            false,
            "warrant.returned",
        ),
        (
            S::Draft,
            A::Withdraw,
            Role::Officer,
            true,
            "warrant.withdrawn",
        ),
    ];
    for (state, action, role, author, code) in expected {
        let t = transition(&full_ctx(state, role, author), action).unwrap();
        assert_eq!(t.audit_action, code, "{state} {action}");
    }
    for rule in RULES {
        assert!(rule.audit_action.starts_with("warrant."), "{}", rule.action);
    }
}

#[test]
fn only_submit_and_return_for_revision_keep_an_affidavit_version() {
    for rule in RULES {
        let expected = match rule.action {
            A::Submit => Some(VersionReason::Submitted),
            A::ReturnForRevision => Some(VersionReason::ReturnedForRevision),
            _ => None,
        };
        assert_eq!(rule.version, expected, "{}", rule.action);
    }
}

#[test]
fn wire_names() {
    assert_eq!(
        serde_json::to_value(A::SupervisorApprove).unwrap(),
        serde_json::json!("supervisor-approve")
    );
    assert_eq!(
        serde_json::to_value(A::ReturnForRevision).unwrap(),
        serde_json::json!("return-for-revision")
    );
    for a in Action::ALL {
        assert_eq!(
            serde_json::to_value(a).unwrap(),
            serde_json::json!(a.as_str())
        );
    }
    for s in WarrantState::ALL {
        assert_eq!(
            serde_json::to_value(s).unwrap(),
            serde_json::json!(s.as_str())
        );
    }
    let err = transition(&full_ctx(S::Draft, Role::Judge, false), A::Claim).unwrap_err();
    assert_eq!(
        serde_json::to_value(&err).unwrap(),
        serde_json::json!({
            "error": "illegal_in_state",
            "state": "draft",
            "action": "claim",
            "allowed": []
        })
    );
}
