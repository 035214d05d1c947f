//! The `azure-keyvault` provider against the in-repo fake Key Vault (crates/fake-keyvault): the
//! official SDK and the real client-secret credential run unmodified over HTTPS, through the 401
//! challenge and the token endpoint.

use std::time::{Duration, Instant};

use p256::ecdsa::Signature;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use uuid::Uuid;
use writ_fake_keyvault::{Event, FakeKeyVault, Fault, KeyKind};
use writ_keys::{
    AzureCredential, AzureKeyVaultProvider, AzureKeyVaultSettings, KeyBackend, KeyError,
    KeyProvider, KeyPurpose, KeyRef, KeySpec, KeyState, LocalProvider, WrappedKey,
};
use writ_testkit::{fake_vault_settings, key_conformance};

fn provider(vault: &FakeKeyVault) -> AzureKeyVaultProvider {
    AzureKeyVaultProvider::new(fake_vault_settings(vault)).expect("provider")
}

fn fresh_keys(vault: &FakeKeyVault) -> KeySpec {
    KeySpec::AzureKeyVault {
        vault_url: vault.url(),
        key_name: None,
    }
}

fn key_name(key: &KeyRef) -> String {
    key.key_id
        .split("/keys/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("a key version URL")
        .to_owned()
}

#[tokio::test]
async fn azure_key_vault_provider_conforms() {
    let vault = FakeKeyVault::start().unwrap();
    // The production key size, which the other tests trade for speed.
    let azure = AzureKeyVaultProvider::new(AzureKeyVaultSettings {
        rsa_key_size: AzureKeyVaultSettings::default().rsa_key_size,
        ..fake_vault_settings(&vault)
    })
    .unwrap();
    key_conformance::run(&azure, &fresh_keys(&vault)).await;
    // One client for the one vault: one challenge, one token, reused for every call.
    assert_eq!(vault.challenges(), 1);
    assert_eq!(vault.tokens_issued(), 1);
}

#[tokio::test]
async fn the_vault_challenges_before_any_token_is_sent() {
    let vault = FakeKeyVault::start().unwrap();
    let azure = provider(&vault);
    let agency = Uuid::new_v4();
    azure
        .create_agency_keys(agency, &fresh_keys(&vault))
        .await
        .expect("create keys");

    let events = vault.events();
    let Some(Event::Challenge {
        had_authorization,
        body_len,
        ..
    }) = events.first()
    else {
        panic!("the first request must be challenged: {events:?}");
    };
    assert!(!had_authorization, "no token before the challenge");
    assert_eq!(
        *body_len, 0,
        "no request body is sent before authenticating"
    );
    assert_eq!(
        events.get(1),
        Some(&Event::TokenIssued {
            scope: "https://vault.azure.net/.default".into()
        }),
        "the token is asked for the scope the challenge named"
    );
    assert!(
        events[2..]
            .iter()
            .all(|e| matches!(e, Event::Request { .. })),
        "every later request carries the token: {events:?}"
    );
    assert_eq!(vault.challenges(), 1);
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused_not_retried_forever() {
    let vault = FakeKeyVault::start().unwrap();
    let mut settings = fake_vault_settings(&vault);
    settings.credential = AzureCredential::ClientSecret {
        tenant_id: vault.tenant_id().into(),
        client_id: vault.client_id().into(),
        client_secret: "not-the-secret".into(),
    };
    let azure = AzureKeyVaultProvider::new(settings).unwrap();
    let err = azure
        .create_agency_keys(Uuid::new_v4(), &fresh_keys(&vault))
        .await
        .expect_err("no token, no keys");
    assert!(matches!(err, KeyError::Refused(_)), "{err:?}");
    assert_eq!(vault.tokens_issued(), 0);
}

#[tokio::test]
async fn a_version_disabled_in_the_vault_is_refused_even_when_the_ref_says_enabled() {
    let vault = FakeKeyVault::start().unwrap();
    let azure = provider(&vault);
    let agency = Uuid::new_v4();
    let keys = azure
        .create_agency_keys(agency, &fresh_keys(&vault))
        .await
        .unwrap();
    let wrapped = azure
        .wrap_data_key(agency, &keys.key_encryption, &[9u8; 32])
        .await
        .unwrap();

    // An administrator disables both versions in the vault; Writ's references still say enabled.
    assert!(vault.set_enabled(&keys.key_encryption.key_id, false));
    assert!(vault.set_enabled(&keys.signing.key_id, false));
    assert_eq!(keys.key_encryption.state, KeyState::Enabled);

    // The same provider (which has seen these versions) and a fresh one (which has not) are
    // both refused by the vault.
    for azure in [&azure, &provider(&vault)] {
        let unwrap = azure
            .unwrap_data_key(agency, &keys.key_encryption, &wrapped)
            .await;
        assert!(matches!(unwrap, Err(KeyError::Disabled(_))), "{unwrap:?}");
        let wrap = azure
            .wrap_data_key(agency, &keys.key_encryption, &[9u8; 32])
            .await;
        assert!(matches!(wrap, Err(KeyError::Disabled(_))), "{wrap:?}");
        let sign = azure.sign_digest(agency, &keys.signing, &[1u8; 32]).await;
        assert!(matches!(sign, Err(KeyError::Disabled(_))), "{sign:?}");
    }
    let described = azure.describe(agency, &keys.key_encryption).await.unwrap();
    assert_eq!(described.state, KeyState::Disabled);

    // Enabled again in the vault, the same references work again.
    assert!(vault.set_enabled(&keys.key_encryption.key_id, true));
    let back = azure
        .unwrap_data_key(agency, &keys.key_encryption, &wrapped)
        .await
        .unwrap();
    assert_eq!(back.as_slice(), &[9u8; 32]);
}

#[tokio::test]
async fn keys_of_another_agency_are_refused() {
    let vault = FakeKeyVault::start().unwrap();
    let azure = provider(&vault);
    let owner = Uuid::new_v4();
    let intruder = Uuid::new_v4();
    let keys = azure
        .create_agency_keys(owner, &fresh_keys(&vault))
        .await
        .unwrap();
    let wrapped = azure
        .wrap_data_key(owner, &keys.key_encryption, &[3u8; 32])
        .await
        .unwrap();

    // Through a provider that made the keys, and through one that learns ownership from the
    // vault's tags.
    for azure in [&azure, &provider(&vault)] {
        let kek = &keys.key_encryption;
        let signing = &keys.signing;
        let malformed = |r: Result<(), KeyError>| matches!(r, Err(KeyError::MalformedRef(_)));
        assert!(malformed(
            azure
                .wrap_data_key(intruder, kek, &[3u8; 32])
                .await
                .map(drop)
        ));
        assert!(malformed(
            azure
                .unwrap_data_key(intruder, kek, &wrapped)
                .await
                .map(drop)
        ));
        assert!(malformed(
            azure
                .sign_digest(intruder, signing, &[1u8; 32])
                .await
                .map(drop)
        ));
        assert!(malformed(
            azure.public_key(intruder, signing).await.map(drop)
        ));
        assert!(malformed(azure.rotate(intruder, kek).await.map(drop)));
        assert!(malformed(azure.disable(intruder, kek).await.map(drop)));
        assert!(malformed(
            azure.schedule_deletion(intruder, kek).await.map(drop)
        ));
        assert!(malformed(azure.describe(intruder, kek).await.map(drop)));
    }
    let described = azure.describe(owner, &keys.key_encryption).await.unwrap();
    assert_eq!(
        described.state,
        KeyState::Enabled,
        "the intruder changed nothing"
    );
    assert_eq!(vault.version_count(&key_name(&keys.key_encryption)), 1);

    // A data key wrapped outside Writ for another agency (anyone can encrypt with the public
    // key) does not unwrap for the owner: the agency id inside the wrap is checked.
    let mut foreign = intruder.as_bytes().to_vec();
    foreign.extend_from_slice(&[4u8; 32]);
    let forged = WrappedKey {
        kek_version: keys.key_encryption.version,
        ciphertext: vault
            .encrypt_with_public_key(&keys.key_encryption.key_id, &foreign)
            .unwrap(),
    };
    let refused = azure
        .unwrap_data_key(owner, &keys.key_encryption, &forged)
        .await;
    assert!(matches!(refused, Err(KeyError::Decrypt)), "{refused:?}");
}

#[tokio::test]
async fn existing_keys_are_adopted_by_key_name() {
    let vault = FakeKeyVault::start().unwrap();
    // Made by the agency's administrators before onboarding, without Writ's tags.
    let kek_id = vault.create_key("sheriff-keys-kek", KeyKind::Rsa { bits: 2048 }, &[]);
    let signing_id = vault.create_key("sheriff-keys-signing", KeyKind::EcP256, &[]);
    vault.create_key("wrong-type-kek", KeyKind::EcP256, &[]);
    vault.create_key("wrong-type-signing", KeyKind::EcP256, &[]);

    let azure = provider(&vault);
    let agency = Uuid::new_v4();
    let spec = |name: &str| KeySpec::AzureKeyVault {
        vault_url: vault.url(),
        key_name: Some(name.into()),
    };
    let keys = azure
        .create_agency_keys(agency, &spec("sheriff-keys"))
        .await
        .expect("adopt");
    assert_eq!(keys.key_encryption.key_id, kek_id);
    assert_eq!(keys.signing.key_id, signing_id);
    assert_eq!(keys.key_encryption.version, 1);
    assert_eq!(
        vault.version_count("sheriff-keys-kek"),
        1,
        "adopted, not created"
    );
    assert_eq!(vault.version_count("sheriff-keys-signing"), 1);

    let wrapped = azure
        .wrap_data_key(agency, &keys.key_encryption, &[7u8; 32])
        .await
        .unwrap();
    let back = azure
        .unwrap_data_key(agency, &keys.key_encryption, &wrapped)
        .await
        .unwrap();
    assert_eq!(back.as_slice(), &[7u8; 32]);
    let digest = [5u8; 32];
    let der = azure
        .sign_digest(agency, &keys.signing, &digest)
        .await
        .unwrap();
    let signature = Signature::from_der(der.as_bytes()).unwrap();
    keys.signing_public_key
        .verify_prehash(&digest, &signature)
        .expect("verifies with the adopted key's public key");

    // Adopted keys are now tagged for the agency: another agency cannot adopt them.
    let taken = azure
        .create_agency_keys(Uuid::new_v4(), &spec("sheriff-keys"))
        .await;
    assert!(matches!(taken, Err(KeyError::Refused(_))), "{taken:?}");
    // An EC key cannot be a key-encryption key.
    let wrong = azure
        .create_agency_keys(Uuid::new_v4(), &spec("wrong-type"))
        .await;
    assert!(matches!(wrong, Err(KeyError::Refused(_))), "{wrong:?}");
    // Onboarding run again for the same agency adopts what it made the first time.
    let again = azure
        .create_agency_keys(agency, &spec("sheriff-keys"))
        .await
        .unwrap();
    assert_eq!(again.key_encryption.key_id, kek_id);
}

#[tokio::test]
async fn deletion_waits_until_every_version_is_scheduled() {
    let vault = FakeKeyVault::start().unwrap();
    let azure = provider(&vault);
    let agency = Uuid::new_v4();
    let keys = azure
        .create_agency_keys(agency, &fresh_keys(&vault))
        .await
        .unwrap();
    let v1 = keys.key_encryption;
    let v2 = azure.rotate(agency, &v1).await.unwrap();
    let name = key_name(&v1);
    assert_eq!(key_name(&v2), name);
    assert_eq!(vault.version_count(&name), 2);
    let wrapped = azure.wrap_data_key(agency, &v2, &[1u8; 32]).await.unwrap();

    // Key Vault deletes whole keys: scheduling one version disables it and keeps the key.
    let doomed = azure.schedule_deletion(agency, &v1).await.unwrap();
    assert_eq!(doomed.state, KeyState::PendingDeletion);
    assert!(vault.key_exists(&name));
    assert_eq!(
        azure.describe(agency, &v1).await.unwrap().state,
        KeyState::PendingDeletion
    );
    let v1_as_enabled = v1.with_state(KeyState::Enabled);
    assert!(matches!(
        azure
            .wrap_data_key(agency, &v1_as_enabled, &[1u8; 32])
            .await,
        Err(KeyError::Disabled(_))
    ));
    assert!(azure.unwrap_data_key(agency, &v2, &wrapped).await.is_ok());

    // The last version scheduled: the key is (soft-)deleted, to be purged by the vault.
    azure.schedule_deletion(agency, &v2).await.unwrap();
    assert!(!vault.key_exists(&name));
    assert!(vault.is_deleted(&name));
    assert_eq!(
        azure.schedule_deletion(agency, &v2).await.unwrap().state,
        KeyState::PendingDeletion,
        "scheduling again (a retried offboarding) is fine"
    );
    assert!(matches!(
        azure.describe(agency, &v2).await,
        Err(KeyError::NotFound(_))
    ));
    // The signing key is untouched.
    assert!(
        azure
            .sign_digest(agency, &keys.signing, &[2u8; 32])
            .await
            .is_ok()
    );
}

/// An offboarding schedules every version of the key, also one a rotation made but never got
/// recorded (it failed after the vault answered): otherwise that version, never scheduled, would
/// keep the key, and every version with it, from being deleted.
#[tokio::test]
async fn an_offboarding_deletes_the_key_with_a_version_writ_never_recorded() {
    let vault = FakeKeyVault::start().unwrap();
    let azure = provider(&vault);
    let agency = Uuid::new_v4();
    let keys = azure
        .create_agency_keys(agency, &fresh_keys(&vault))
        .await
        .unwrap();
    let v1 = keys.key_encryption;
    // A rotation whose version the control plane never heard of.
    let _orphan = azure.rotate(agency, &v1).await.unwrap();
    let name = key_name(&v1);
    assert_eq!(vault.version_count(&name), 2);

    // Another agency cannot; the agency's own offboarding deletes the key, every version of it.
    let other = Uuid::new_v4();
    assert!(
        azure
            .schedule_deletion_of_every_version(other, &v1)
            .await
            .is_err(),
        "another agency's key is refused"
    );
    assert!(vault.key_exists(&name));
    let doomed = azure
        .schedule_deletion_of_every_version(agency, &v1)
        .await
        .unwrap();
    assert_eq!(doomed.state, KeyState::PendingDeletion);
    assert!(!vault.key_exists(&name));
    assert!(vault.is_deleted(&name));
    assert_eq!(
        azure
            .schedule_deletion_of_every_version(agency, &v1)
            .await
            .unwrap()
            .state,
        KeyState::PendingDeletion,
        "asking again (a resumed offboarding) is fine"
    );
}

/// A key the agency brought along with older versions (none of them tagged by Writ): onboarding
/// reports who has adopted it, and offboarding deletes it whole.
#[tokio::test]
async fn an_adopted_key_with_older_versions_is_claimed_and_deleted_whole() {
    let vault = FakeKeyVault::start().unwrap();
    vault.create_key("byok-kek", KeyKind::Rsa { bits: 2048 }, &[]);
    vault.create_key("byok-kek", KeyKind::Rsa { bits: 2048 }, &[]);
    vault.create_key("byok-signing", KeyKind::EcP256, &[]);
    assert_eq!(vault.version_count("byok-kek"), 2);
    let azure = provider(&vault);
    let spec = KeySpec::AzureKeyVault {
        vault_url: vault.url(),
        key_name: Some("byok".into()),
    };
    assert_eq!(azure.prior_claim(&spec).await.unwrap(), None);
    let agency = Uuid::new_v4();
    let keys = azure.create_agency_keys(agency, &spec).await.unwrap();
    assert_eq!(azure.prior_claim(&spec).await.unwrap(), Some(agency));

    assert!(
        azure
            .schedule_deletion_of_every_version(Uuid::new_v4(), &keys.key_encryption)
            .await
            .is_err()
    );
    assert!(vault.key_exists("byok-kek"));
    azure
        .schedule_deletion_of_every_version(agency, &keys.key_encryption)
        .await
        .unwrap();
    assert!(!vault.key_exists("byok-kek"));
    assert!(vault.is_deleted("byok-kek"));
}

#[tokio::test]
async fn an_unreachable_vault_is_unavailable_quickly() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let vault = FakeKeyVault::start().unwrap();
    let azure = provider(&vault);
    let kek = KeyRef {
        provider: AzureKeyVaultProvider::NAME.into(),
        purpose: KeyPurpose::KeyEncryption,
        version: 1,
        key_id: format!("https://127.0.0.1:{port}/keys/writ-x-kek/0123456789abcdef"),
        material: None,
        state: KeyState::Enabled,
    };

    let started = Instant::now();
    let wrap = azure.wrap_data_key(Uuid::new_v4(), &kek, &[0u8; 32]).await;
    assert!(matches!(wrap, Err(KeyError::Unavailable(_))), "{wrap:?}");
    let create = azure
        .create_agency_keys(
            Uuid::new_v4(),
            &KeySpec::AzureKeyVault {
                vault_url: format!("https://127.0.0.1:{port}"),
                key_name: None,
            },
        )
        .await;
    assert!(
        matches!(create, Err(KeyError::Unavailable(_))),
        "{create:?}"
    );
    // The vault answers, but Entra ID (the token endpoint) does not.
    let mut no_entra = fake_vault_settings(&vault);
    no_entra.authority_host = Some(format!("https://127.0.0.1:{port}"));
    let no_token = AzureKeyVaultProvider::new(no_entra)
        .unwrap()
        .create_agency_keys(Uuid::new_v4(), &fresh_keys(&vault))
        .await;
    assert!(
        matches!(no_token, Err(KeyError::Unavailable(_))),
        "{no_token:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "retries with backoff, then gives up: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_failing_or_stalled_vault_is_unavailable_within_the_deadline() {
    let vault = FakeKeyVault::start().unwrap();
    let agency = Uuid::new_v4();
    // Keys are made with the default deadline: generating RSA keys on a loaded machine may take
    // longer than the short deadline under test.
    let keys = provider(&vault)
        .create_agency_keys(agency, &fresh_keys(&vault))
        .await
        .unwrap();
    let mut settings = fake_vault_settings(&vault);
    settings.request_timeout = Duration::from_millis(500);
    settings.max_retries = 2;
    settings.deadline = Duration::from_secs(3);
    let azure = AzureKeyVaultProvider::new(settings).unwrap();

    for fault in [Fault::Unavailable, Fault::Stall] {
        vault.set_fault(Some(fault));
        let started = Instant::now();
        let sign = azure.sign_digest(agency, &keys.signing, &[1u8; 32]).await;
        assert!(
            matches!(sign, Err(KeyError::Unavailable(_))),
            "{fault:?}: {sign:?}"
        );
        // A stalled vault never answers: returning at all proves the deadline. The bound is
        // loose so a loaded machine does not fail it.
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{fault:?} took {:?}",
            started.elapsed()
        );
    }
    vault.set_fault(None);
    assert!(
        azure
            .sign_digest(agency, &keys.signing, &[1u8; 32])
            .await
            .is_ok(),
        "works again once the vault recovers"
    );
}

#[tokio::test]
async fn the_key_provider_routes_azure_references_to_the_azure_provider() {
    let vault = FakeKeyVault::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local = LocalProvider::open_or_create(dir.path().join("master.key")).unwrap();
    let agency = Uuid::new_v4();

    let without = KeyProvider::new(local.clone());
    assert!(matches!(
        without
            .create_agency_keys(agency, &fresh_keys(&vault))
            .await,
        Err(KeyError::NotConfigured(_))
    ));

    let keys_provider = KeyProvider::new(local).with_azure(provider(&vault));
    let keys = keys_provider
        .create_agency_keys(agency, &fresh_keys(&vault))
        .await
        .unwrap();
    assert_eq!(keys.key_encryption.provider, "azure-keyvault");
    let wrapped = keys_provider
        .wrap_data_key(agency, &keys.key_encryption, &[6u8; 32])
        .await
        .unwrap();
    let back = keys_provider
        .unwrap_data_key(agency, &keys.key_encryption, &wrapped)
        .await
        .unwrap();
    assert_eq!(back.as_slice(), &[6u8; 32]);
}
