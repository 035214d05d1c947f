//! writ-agency-keys runs the lifecycle of each agency's keys on top of writ-keys and the control
//! plane: data keys for envelope encryption, rotation (on demand and by policy) with re-wrapping of
//! data keys in the background, revocation of a version, crypto-shredding at offboarding, and the
//! audit entries of all of it (`key.rotation`, `key.revocation`, `key.access` once a minute).

mod access;
mod background;
mod data_keys;
mod error;
mod lifecycle;
mod rewrap;

pub use access::flush_key_access;
pub use background::{KeyMaintenanceConfig, run_key_maintenance};
pub use data_keys::{DataKey, create_data_key, open_data_key};
pub use error::KeyLifecycleError;
pub use lifecycle::{
    DEFAULT_ROTATION_DAYS, DELETION_WAITING_DAYS, Disabled, Offboarded, ROTATION_POLICY, Rotated,
    current_key, disable_version, offboard, purge_destroyed, rotate, rotate_due,
    rotation_policy_days,
};
pub use rewrap::{RewrapJob, rewrap_job, rewrap_step};
