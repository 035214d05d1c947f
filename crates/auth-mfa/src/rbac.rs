//! The one permission matrix. Every route names the [`Permission`] it needs; only [`MATRIX`] says
//! which roles hold it. Platform operators are not agency users: they hold only the platform
//! permissions, and agency roles never hold those.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An agency role (DESIGN §3), plus the platform operator of the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Officer,
    Supervisor,
    Prosecutor,
    Judge,
    AgencyAdmin,
    Auditor,
    PlatformOperator,
}

impl Role {
    /// The roles an agency user may have.
    pub const AGENCY: [Role; 6] = [
        Role::Officer,
        Role::Supervisor,
        Role::Prosecutor,
        Role::Judge,
        Role::AgencyAdmin,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Officer => "officer",
            Role::Supervisor => "supervisor",
            Role::Prosecutor => "prosecutor",
            Role::Judge => "judge",
            Role::AgencyAdmin => "agency_admin",
            Role::Auditor => "auditor",
            Role::PlatformOperator => "platform_operator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::AGENCY
            .into_iter()
            .chain([Role::PlatformOperator])
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown role {s:?}; one of officer, supervisor, prosecutor, judge, agency_admin, auditor"
                )
            })
    }
}

/// Something a route lets a caller do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Permission {
    /// Own session: who am I, step-up, logout. Every agency role.
    OwnSession,
    /// List and read the agency's users.
    UsersRead,
    /// Create users, change role or name, unlock, deactivate — of roles other than agency_admin.
    UsersManage,
    /// Create an agency_admin, grant the agency_admin role or take it away.
    AdminsManage,
    /// Read the agency's policies.
    PolicyRead,
    /// Change a policy that is not a security control.
    PolicyManage,
    /// Change a security policy (rate limits, lockout, retention, archive, key rotation): each
    /// registers itself as one (`PolicyDef::needs_step_up`).
    SecurityPolicyManage,
    /// Read the audit log, checkpoints, proofs and audit keys.
    AuditRead,
    /// Request and download signed audit exports.
    AuditExport,
    /// Place legal holds on the audit log (a hold stops retention pruning). Reading the holds is
    /// `AuditRead`.
    LegalHoldManage,
    /// Release a legal hold: entries may be deleted again.
    LegalHoldRelease,
    /// Rotate the agency's keys, revoke a version.
    KeyRotate,
    /// Onboard and list agencies, and read an offboarding (platform operators only).
    AgenciesManage,
    /// Offboard an agency (platform operators): it stops being served and its keys are scheduled
    /// for destruction, so it needs step-up.
    AgenciesOffboard,
    /// Onboard an agency together with its first agency_admin (platform operators): creating an
    /// administrator, so it needs step-up like every other way of making one.
    AgencyAdminsOnboard,
    /// End the lockout of an agency account (platform operators): a way back into an agency's
    /// administration, so it needs step-up as an agency_admin's unlock of another admin does.
    AgencyAccountsUnlock,
    /// Read warrants, their affidavit versions and diffs (never sealed ones, except judges,
    /// prosecutors and agency_admin — the warrant workflow decides that).
    WarrantsRead,
    /// Open a warrant application and edit one's own drafts.
    WarrantsCreate,
    /// Move a warrant (submit, review, claim, reject, execute, file the return, withdraw, extend):
    /// the warrant workflow decides which role may take which step.
    WarrantsAct,
    /// Issue a warrant (judges): a signature, so it needs step-up.
    WarrantsIssue,
    /// Seal, renew a seal, unseal (judges).
    WarrantsSeal,
    /// The judge queue.
    WarrantQueueRead,
    /// Review statistics per court (presiding judges, admins).
    WarrantStatsRead,
    /// The live event stream (`GET /v1/events`): changes of the warrants the caller may read.
    EventsRead,
    /// Read a court's on-call roster and who is on call (judges, admins).
    RostersRead,
    /// Replace a court's on-call roster (agency_admin: who is woken at night is the court's
    /// administration, not one judge's choice).
    RostersManage,
    /// The notification outbox: sent, pending and failed alerts (agency_admin).
    NotificationsRead,
    /// Open a remote oath session, administer the oath, enter or withdraw an amendment (judges;
    /// the warrant workflow checks it is the claiming judge).
    VideoSessionsManage,
    /// Join or leave an oath session one takes part in (the judge and the affiant).
    VideoSessionsJoin,
    /// Swear to an amendment of one's own affidavit (the affiant): a sworn statement, so it needs
    /// step-up.
    AmendmentsSwear,
    /// Certify the transcript of an oath session's recording (judges): a certification, so it
    /// needs step-up.
    TranscriptCertify,
    /// Read a warrant's documents: metadata and content (whoever may read the warrant; the
    /// document store decides that).
    DocumentsRead,
    /// Upload a document to one's own warrant.
    DocumentsUpload,
    /// Soft-delete a document (hidden, retained); officers only on their own warrants.
    DocumentsDelete,
    /// Place a legal hold on a document (blocks erasure and retention).
    DocumentsLegalHold,
    /// Release a document's legal hold: it may be destroyed again.
    DocumentsLegalHoldRelease,
    /// Request a document's crypto-erase (the first of two people).
    DocumentsEraseRequest,
    /// Approve another person's erasure request, which destroys the document: step-up.
    DocumentsEraseApprove,
    /// Read erasure requests and certificates of deletion (no document content).
    ErasureCertificatesRead,
    /// Ask someone to sign a document of a warrant (or oneself: the affiant's affidavit, the
    /// judge's warrant).
    SignatureRequestsCreate,
    /// Sign a request one is named in: an electronic signature, so it needs step-up.
    SignaturesSign,
    /// Read signature requests, signature records and their verification, and warrants'
    /// evidence certificates (whoever may read the warrant).
    SignaturesRead,
}

use Role::*;

/// One line of the matrix: who holds a permission, and whether using it needs a TOTP re-entry
/// within the step-up window (`POST /v1/auth/reauth`).
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub permission: Permission,
    pub roles: &'static [Role],
    pub step_up: bool,
}

const fn rule(permission: Permission, roles: &'static [Role], step_up: bool) -> Rule {
    Rule {
        permission,
        roles,
        step_up,
    }
}

const STEP_UP: bool = true;
const PLAIN: bool = false;

/// Which roles hold which permission, and which permissions need step-up. The single source of
/// truth for authorisation: nothing else grants a permission or decides a step-up.
pub const MATRIX: &[Rule] = &[
    rule(
        Permission::OwnSession,
        &[Officer, Supervisor, Prosecutor, Judge, AgencyAdmin, Auditor],
        PLAIN,
    ),
    rule(Permission::UsersRead, &[AgencyAdmin], PLAIN),
    rule(Permission::UsersManage, &[AgencyAdmin], PLAIN),
    rule(Permission::AdminsManage, &[AgencyAdmin], STEP_UP),
    rule(Permission::PolicyRead, &[AgencyAdmin], PLAIN),
    rule(Permission::PolicyManage, &[AgencyAdmin], PLAIN),
    rule(Permission::SecurityPolicyManage, &[AgencyAdmin], STEP_UP),
    rule(Permission::AuditRead, &[AgencyAdmin, Auditor], PLAIN),
    rule(Permission::AuditExport, &[AgencyAdmin, Auditor], PLAIN),
    rule(Permission::LegalHoldManage, &[AgencyAdmin], PLAIN),
    rule(Permission::LegalHoldRelease, &[AgencyAdmin], STEP_UP),
    rule(Permission::KeyRotate, &[AgencyAdmin], STEP_UP),
    rule(Permission::AgenciesManage, &[PlatformOperator], PLAIN),
    rule(
        Permission::AgencyAdminsOnboard,
        &[PlatformOperator],
        STEP_UP,
    ),
    rule(Permission::AgenciesOffboard, &[PlatformOperator], STEP_UP),
    rule(
        Permission::AgencyAccountsUnlock,
        &[PlatformOperator],
        STEP_UP,
    ),
    rule(
        Permission::WarrantsRead,
        &[Officer, Supervisor, Prosecutor, Judge, AgencyAdmin],
        PLAIN,
    ),
    rule(Permission::WarrantsCreate, &[Officer], PLAIN),
    rule(
        Permission::WarrantsAct,
        &[Officer, Supervisor, Prosecutor, Judge],
        PLAIN,
    ),
    rule(Permission::WarrantsIssue, &[Judge], STEP_UP),
    rule(Permission::WarrantsSeal, &[Judge], PLAIN),
    rule(Permission::WarrantQueueRead, &[Judge], PLAIN),
    rule(Permission::WarrantStatsRead, &[Judge, AgencyAdmin], PLAIN),
    rule(
        Permission::EventsRead,
        &[Officer, Supervisor, Prosecutor, Judge, AgencyAdmin],
        PLAIN,
    ),
    rule(Permission::RostersRead, &[Judge, AgencyAdmin], PLAIN),
    rule(Permission::RostersManage, &[AgencyAdmin], PLAIN),
    rule(Permission::NotificationsRead, &[AgencyAdmin], PLAIN),
    rule(Permission::VideoSessionsManage, &[Judge], PLAIN),
    rule(Permission::VideoSessionsJoin, &[Officer, Judge], PLAIN),
    rule(Permission::AmendmentsSwear, &[Officer], STEP_UP),
    rule(Permission::TranscriptCertify, &[Judge], STEP_UP),
    rule(
        Permission::DocumentsRead,
        &[Officer, Supervisor, Prosecutor, Judge, AgencyAdmin],
        PLAIN,
    ),
    rule(Permission::DocumentsUpload, &[Officer], PLAIN),
    rule(Permission::DocumentsDelete, &[Officer, AgencyAdmin], PLAIN),
    rule(
        Permission::DocumentsLegalHold,
        &[Prosecutor, AgencyAdmin],
        PLAIN,
    ),
    rule(
        Permission::DocumentsLegalHoldRelease,
        &[Prosecutor, AgencyAdmin],
        STEP_UP,
    ),
    rule(
        Permission::DocumentsEraseRequest,
        &[Prosecutor, AgencyAdmin],
        PLAIN,
    ),
    // The second person is a prosecutor (DESIGN §3): administrators alone never destroy evidence.
    rule(Permission::DocumentsEraseApprove, &[Prosecutor], STEP_UP),
    rule(
        Permission::ErasureCertificatesRead,
        &[Prosecutor, AgencyAdmin, Auditor],
        PLAIN,
    ),
    rule(
        Permission::SignatureRequestsCreate,
        &[Officer, Supervisor, Prosecutor, Judge],
        PLAIN,
    ),
    rule(
        Permission::SignaturesSign,
        &[Officer, Supervisor, Prosecutor, Judge],
        STEP_UP,
    ),
    rule(
        Permission::SignaturesRead,
        &[Officer, Supervisor, Prosecutor, Judge, AgencyAdmin],
        PLAIN,
    ),
];

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::OwnSession => "ownSession",
            Permission::UsersRead => "usersRead",
            Permission::UsersManage => "usersManage",
            Permission::AdminsManage => "adminsManage",
            Permission::PolicyRead => "policyRead",
            Permission::PolicyManage => "policyManage",
            Permission::SecurityPolicyManage => "securityPolicyManage",
            Permission::AuditRead => "auditRead",
            Permission::AuditExport => "auditExport",
            Permission::LegalHoldManage => "legalHoldManage",
            Permission::LegalHoldRelease => "legalHoldRelease",
            Permission::KeyRotate => "keyRotate",
            Permission::AgenciesManage => "agenciesManage",
            Permission::AgencyAdminsOnboard => "agencyAdminsOnboard",
            Permission::AgenciesOffboard => "agenciesOffboard",
            Permission::AgencyAccountsUnlock => "agencyAccountsUnlock",
            Permission::WarrantsRead => "warrantsRead",
            Permission::WarrantsCreate => "warrantsCreate",
            Permission::WarrantsAct => "warrantsAct",
            Permission::WarrantsIssue => "warrantsIssue",
            Permission::WarrantsSeal => "warrantsSeal",
            Permission::WarrantQueueRead => "warrantQueueRead",
            Permission::WarrantStatsRead => "warrantStatsRead",
            Permission::EventsRead => "eventsRead",
            Permission::RostersRead => "rostersRead",
            Permission::RostersManage => "rostersManage",
            Permission::NotificationsRead => "notificationsRead",
            Permission::VideoSessionsManage => "videoSessionsManage",
            Permission::VideoSessionsJoin => "videoSessionsJoin",
            Permission::AmendmentsSwear => "amendmentsSwear",
            Permission::TranscriptCertify => "transcriptCertify",
            Permission::DocumentsRead => "documentsRead",
            Permission::DocumentsUpload => "documentsUpload",
            Permission::DocumentsDelete => "documentsDelete",
            Permission::DocumentsLegalHold => "documentsLegalHold",
            Permission::DocumentsLegalHoldRelease => "documentsLegalHoldRelease",
            Permission::DocumentsEraseRequest => "documentsEraseRequest",
            Permission::DocumentsEraseApprove => "documentsEraseApprove",
            Permission::ErasureCertificatesRead => "erasureCertificatesRead",
            Permission::SignatureRequestsCreate => "signatureRequestsCreate",
            Permission::SignaturesSign => "signaturesSign",
            Permission::SignaturesRead => "signaturesRead",
        }
    }

    fn rule(self) -> Option<&'static Rule> {
        MATRIX.iter().find(|r| r.permission == self)
    }

    /// The roles holding this permission.
    pub fn roles(self) -> &'static [Role] {
        self.rule().map(|r| r.roles).unwrap_or(&[])
    }

    /// Whether using it needs a TOTP re-entry within the step-up window.
    pub fn needs_step_up(self) -> bool {
        // A permission missing from the matrix is held by nobody; asking for step-up costs nothing.
        self.rule().is_none_or(|r| r.step_up)
    }
}

/// Whether `role` holds `permission`.
pub fn allows(role: Role, permission: Permission) -> bool {
    permission.roles().contains(&role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_hold_no_agency_permission_and_agency_roles_no_platform_one() {
        for Rule {
            permission: p,
            roles,
            ..
        } in MATRIX
        {
            let platform = matches!(
                p,
                Permission::AgenciesManage
                    | Permission::AgencyAdminsOnboard
                    | Permission::AgenciesOffboard
                    | Permission::AgencyAccountsUnlock
            );
            assert_eq!(roles.contains(&PlatformOperator), platform, "{p:?}");
            assert_eq!(
                roles.iter().any(|r| *r != PlatformOperator),
                !platform,
                "{p:?}"
            );
        }
    }

    #[test]
    fn admins_never_review_and_auditors_only_read_the_log() {
        assert!(allows(Auditor, Permission::AuditRead));
        assert!(!allows(Auditor, Permission::LegalHoldManage));
        assert!(allows(AgencyAdmin, Permission::LegalHoldManage));
        assert!(!allows(Auditor, Permission::UsersRead));
        assert!(!allows(Officer, Permission::AuditRead));
        assert!("nobody".parse::<Role>().is_err());
    }

    #[test]
    fn privileged_changes_need_step_up_and_reading_does_not() {
        for p in [
            Permission::AdminsManage,
            Permission::SecurityPolicyManage,
            Permission::LegalHoldRelease,
            Permission::KeyRotate,
            Permission::SignaturesSign,
            Permission::AgencyAdminsOnboard,
            Permission::AgenciesOffboard,
            Permission::AgencyAccountsUnlock,
        ] {
            assert!(p.needs_step_up(), "{p:?}");
        }
        for p in [
            Permission::OwnSession,
            Permission::UsersRead,
            Permission::UsersManage,
            Permission::PolicyRead,
            Permission::AuditRead,
        ] {
            assert!(!p.needs_step_up(), "{p:?}");
        }
        // Every permission has exactly one line.
        for r in MATRIX {
            assert_eq!(
                MATRIX
                    .iter()
                    .filter(|x| x.permission == r.permission)
                    .count(),
                1
            );
        }
    }
}
