//! writ-tenancy owns the control plane and the walls between agencies: agency onboarding (schema,
//! role, row-level security, keys — all or nothing), the migration runner for the control and
//! tenant schemas, and [`TenantTx`], the only way domain code reaches an agency's tables. It never
//! reads criminal-justice information itself and never builds SQL from unvalidated names.

mod agency;
mod error;
mod ident;
mod migrate;
mod offboard;
mod onboard;
mod policies;
mod roles;
mod tx;
mod wake;

pub use agency::{
    Agency, AgencyKeyRecord, active_agencies, agency_by_id, agency_by_slug, agency_keys,
    list_agencies,
};
pub use error::TenancyError;
pub use ident::{AgencyIdent, Slug};
pub use migrate::{
    Migration, MigrationReport, control_migrations, migrate_all, migrations_current,
    tenant_migrations,
};
pub use offboard::{
    OFFBOARDING_WAITING_DAYS, Offboarding, OffboardingStep, finish_offboarding,
    finish_offboarding_cancel, note_keys_scheduled, note_offboarding_step, offboarding,
    offboardings_pending, request_offboarding_cancel, start_offboarding, try_lock_offboarding,
};
pub use onboard::{NewAgency, insert_key_version, onboard, onboard_open};
pub use policies::{
    PolicyChange, PolicyDef, PolicyName, PolicyRegistry, PolicyValue, delete_policy, get_policy,
    list_policies, policy_value, set_policy,
};
pub use roles::{LoginRole, OWNER_ROLE, SERVING_ROLE, login_role};
pub use tx::{
    ControlTx, EXCLUSIVE_WAIT, TenantTx, hold_agency_shared, wait_for_agency_transactions,
    xact_lock_within,
};
pub use wake::{CommitWake, WakeListener};
