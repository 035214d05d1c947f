use sqlx::PgPool;
use writ_keys::KeyProvider;

/// The agency keys as domain code uses them: the key providers, and the control-plane pool the
/// key references are read from (an agency's database role cannot read `control.agency_keys`).
/// Made once at start-up; cloning is cheap. Sealing and signing through it never hand out a data
/// key or a private key.
#[derive(Clone)]
pub struct Keyring {
    pool: PgPool,
    provider: KeyProvider,
}

impl Keyring {
    pub fn new(pool: PgPool, provider: KeyProvider) -> Self {
        Self { pool, provider }
    }

    pub fn provider(&self) -> &KeyProvider {
        &self.provider
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }
}
