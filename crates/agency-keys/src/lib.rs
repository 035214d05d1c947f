//! writ-agency-keys runs the lifecycle of each agency's keys on top of writ-keys and the control
//! plane: data keys for envelope encryption, rotation (on demand and by policy) with re-wrapping of
//! data keys in the background, revocation of a version, crypto-shredding at offboarding, and the
//! audit entries of all of it (`key.rotation`, `key.revocation`, `key.access` once a minute).
//!
//! Domain code uses the keys through a [`Keyring`]: [`seal()`] and [`open`] encrypt and decrypt an
//! object as a stream bound to its agency and id ([`seal`](mod@seal) documents the format), and
//! [`sign`] and [`verify`] make and check agency signatures. None of them hands out a data key's or
//! a private key's bytes.

mod access;
mod background;
mod data_keys;
mod error;
mod keyring;
mod lifecycle;
mod rewrap;
pub mod seal;
mod seal_stream;
mod sign;

pub use access::flush_key_access;
pub use background::{KeyMaintenanceConfig, run_key_maintenance};
pub use data_keys::{DataKey, create_data_key, open_data_key};
pub use error::KeyLifecycleError;
pub use keyring::Keyring;
pub use lifecycle::{
    DEFAULT_ROTATION_DAYS, Disabled, ROTATION_POLICY, Rotated, cancel_offboarding_keys,
    current_key, disable_version, rotate, rotate_due, rotation_policy_days,
    schedule_offboarding_keys,
};
pub use rewrap::{RewrapJob, rewrap_job, rewrap_step};
pub use seal::{
    CHUNK_SIZE, HEADER_SIZE, OpenSummary, Opener, SealError, SealSummary, Sealer, chunk_of, open,
    record_offset, seal,
};
pub use seal_stream::{Completion, OpenStream, SealStream, StreamError};
pub use sign::{AgencySignature, SignatureError, VerifiedSignature, sign, sign_as, verify};

/// The agency policy this crate reads, for the server's policy registry. A longer rotation period
/// weakens a control: changing it needs step-up.
pub const POLICIES: &[writ_tenancy::PolicyDef] = &[writ_tenancy::PolicyDef {
    name: writ_tenancy::PolicyName::Exact(ROTATION_POLICY),
    validate: |v| rotation_policy_days(v).map(|_| ()),
    default: |_| serde_json::json!({ "days": DEFAULT_ROTATION_DAYS }),
    needs_step_up: true,
    description: "Days between automatic key rotations: {\"days\": N}, 1 to 365",
}];
