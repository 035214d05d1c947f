//! Who acts on a stored warrant: the request's [`Caller`] (actor, agency, source IP, request id),
//! or [`Caller::system`] for the expiry job. The rules need the caller's role as a [`Role`].

use writ_auth_mfa::Role;

pub use writ_audit_log::Caller;

/// The caller's agency role; `None` for the system (and anyone who holds no agency role).
pub(crate) fn role_of(caller: &Caller) -> Option<Role> {
    caller
        .actor
        .role
        .parse()
        .ok()
        .filter(|r| Role::AGENCY.contains(r))
}
