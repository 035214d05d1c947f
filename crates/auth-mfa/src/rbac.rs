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
    /// Create users, change role or name, unlock, deactivate.
    UsersManage,
    /// Change agency policies (rate limits, retention …).
    PolicyManage,
    /// Read the audit log, checkpoints, proofs and audit keys.
    AuditRead,
    /// Request and download signed audit exports.
    AuditExport,
    /// Place and release legal holds on the audit log (a hold stops retention pruning). Reading
    /// the holds is `AuditRead`.
    LegalHoldManage,
    /// Rotate the agency's keys (needs step-up).
    KeyRotate,
    /// Onboard, list and offboard agencies (platform operators only).
    AgenciesManage,
}

use Role::*;

/// Which roles hold which permission. The single source of truth for authorisation.
pub const MATRIX: &[(Permission, &[Role])] = &[
    (
        Permission::OwnSession,
        &[Officer, Supervisor, Prosecutor, Judge, AgencyAdmin, Auditor],
    ),
    (Permission::UsersRead, &[AgencyAdmin]),
    (Permission::UsersManage, &[AgencyAdmin]),
    (Permission::PolicyManage, &[AgencyAdmin]),
    (Permission::AuditRead, &[AgencyAdmin, Auditor]),
    (Permission::AuditExport, &[AgencyAdmin, Auditor]),
    (Permission::LegalHoldManage, &[AgencyAdmin]),
    (Permission::KeyRotate, &[AgencyAdmin]),
    (Permission::AgenciesManage, &[PlatformOperator]),
];

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::OwnSession => "ownSession",
            Permission::UsersRead => "usersRead",
            Permission::UsersManage => "usersManage",
            Permission::PolicyManage => "policyManage",
            Permission::AuditRead => "auditRead",
            Permission::AuditExport => "auditExport",
            Permission::LegalHoldManage => "legalHoldManage",
            Permission::KeyRotate => "keyRotate",
            Permission::AgenciesManage => "agenciesManage",
        }
    }

    /// The roles holding this permission.
    pub fn roles(self) -> &'static [Role] {
        MATRIX
            .iter()
            .find(|(p, _)| *p == self)
            .map(|(_, r)| *r)
            .unwrap_or(&[])
    }

    /// Whether using it needs a TOTP re-entry within the step-up window (signing, erasure
    /// approval and key rotation).
    pub fn needs_step_up(self) -> bool {
        matches!(self, Permission::KeyRotate)
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
        for (p, roles) in MATRIX {
            let platform = *p == Permission::AgenciesManage;
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
}
