use sqlx::PgPool;
use writ_keys::KeyProvider;

/// What every handler may reach. Cheap to clone: pools and providers are shared handles.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub keys: KeyProvider,
}
