//! The key-provider conformance suite (tests/src/key_conformance.rs) against each provider.

use writ_keys::{KeySpec, LocalProvider};
use writ_testkit::key_conformance;

#[tokio::test]
async fn local_provider_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalProvider::open_or_create(dir.path().join("master.key")).unwrap();
    key_conformance::run(&local, &KeySpec::Local).await;
}
