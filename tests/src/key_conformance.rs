//! The behaviour every key provider must show, run against each one (local, AWS KMS on moto,
//! Azure Key Vault on the in-repo fake vault). Signatures are always checked here with p256,
//! never by asking the provider.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use uuid::Uuid;
use writ_keys::{KeyBackend, KeyError, KeyPurpose, KeySpec, KeyState};

fn verifies(key: &VerifyingKey, digest: &[u8; 32], der: &[u8]) -> bool {
    Signature::from_der(der)
        .map(|sig| key.verify_prehash(digest, &sig).is_ok())
        .unwrap_or(false)
}

/// Runs the whole suite; `spec` asks the provider to create fresh keys.
pub async fn run<B: KeyBackend>(backend: &B, spec: &KeySpec) {
    let agency = Uuid::new_v4();
    let other = Uuid::new_v4();
    let keys = backend
        .create_agency_keys(agency, spec)
        .await
        .expect("create agency keys");
    assert_eq!(keys.key_encryption.provider, backend.name());
    assert_eq!(keys.key_encryption.purpose, KeyPurpose::KeyEncryption);
    assert_eq!(keys.signing.purpose, KeyPurpose::Signing);
    assert_eq!(keys.key_encryption.version, 1);
    assert_eq!(keys.signing.version, 1);
    assert_eq!(keys.key_encryption.state, KeyState::Enabled);

    // Round trip of a 256-bit data key.
    let data_key = [0x5au8; 32];
    let wrapped = backend
        .wrap_data_key(agency, &keys.key_encryption, &data_key)
        .await
        .expect("wrap");
    assert_ne!(wrapped.ciphertext.as_slice(), data_key.as_slice());
    assert_eq!(wrapped.kek_version, 1);
    let back = backend
        .unwrap_data_key(agency, &keys.key_encryption, &wrapped)
        .await
        .expect("unwrap");
    assert_eq!(back.as_slice(), data_key.as_slice());

    // Another agency's context cannot unwrap it, nor sign with the key.
    assert!(
        backend
            .unwrap_data_key(other, &keys.key_encryption, &wrapped)
            .await
            .is_err(),
        "unwrap under another agency's context must fail"
    );
    assert!(
        backend
            .sign_digest(other, &keys.signing, &[1u8; 32])
            .await
            .is_err(),
        "signing for another agency must fail"
    );
    // A tampered wrapped key is refused.
    let mut tampered = wrapped.clone();
    if let Some(last) = tampered.ciphertext.last_mut() {
        *last ^= 1;
    }
    assert!(
        backend
            .unwrap_data_key(agency, &keys.key_encryption, &tampered)
            .await
            .is_err()
    );

    // Signatures verify locally with the public key the provider reports.
    let digest = [7u8; 32];
    let der = backend
        .sign_digest(agency, &keys.signing, &digest)
        .await
        .expect("sign");
    let public = backend
        .public_key(agency, &keys.signing)
        .await
        .expect("public key");
    assert_eq!(public, keys.signing_public_key);
    assert!(verifies(&public, &digest, der.as_bytes()));
    assert!(!verifies(&public, &[8u8; 32], der.as_bytes()));

    // Rotation: a new version; the old one still unwraps and its signatures still verify.
    let kek2 = backend
        .rotate(agency, &keys.key_encryption)
        .await
        .expect("rotate kek");
    assert_eq!(kek2.version, 2);
    assert_eq!(kek2.purpose, KeyPurpose::KeyEncryption);
    let wrapped2 = backend
        .wrap_data_key(agency, &kek2, &data_key)
        .await
        .expect("wrap v2");
    assert_eq!(wrapped2.kek_version, 2);
    assert_eq!(
        backend
            .unwrap_data_key(agency, &kek2, &wrapped2)
            .await
            .expect("unwrap v2")
            .as_slice(),
        data_key.as_slice()
    );
    assert_eq!(
        backend
            .unwrap_data_key(agency, &keys.key_encryption, &wrapped)
            .await
            .expect("old version still unwraps")
            .as_slice(),
        data_key.as_slice()
    );
    let signing2 = backend
        .rotate(agency, &keys.signing)
        .await
        .expect("rotate signing");
    assert_eq!(signing2.version, 2);
    let public2 = backend
        .public_key(agency, &signing2)
        .await
        .expect("public v2");
    assert_ne!(public2, public, "a rotated signing key is a new key pair");
    let der2 = backend
        .sign_digest(agency, &signing2, &digest)
        .await
        .expect("sign v2");
    assert!(verifies(&public2, &digest, der2.as_bytes()));
    assert!(!verifies(&public, &digest, der2.as_bytes()));

    // Describe reports what the provider holds.
    let described = backend.describe(agency, &kek2).await.expect("describe");
    assert_eq!(described.version, 2);
    assert_eq!(described.state, KeyState::Enabled);

    // Disabling version 1 of the key-encryption key makes what only it protects unreadable,
    // while version 2 keeps working.
    let disabled = backend
        .disable(agency, &keys.key_encryption)
        .await
        .expect("disable");
    assert_eq!(disabled.state, KeyState::Disabled);
    let refused = backend
        .unwrap_data_key(agency, &disabled, &wrapped)
        .await
        .expect_err("a disabled version must refuse");
    assert!(
        matches!(refused, KeyError::Disabled(_)),
        "expected Disabled, got {refused:?}"
    );
    assert!(
        backend
            .unwrap_data_key(agency, &kek2, &wrapped2)
            .await
            .is_ok()
    );
    let disabled_signing = backend
        .disable(agency, &keys.signing)
        .await
        .expect("disable signing");
    assert!(matches!(
        backend
            .sign_digest(agency, &disabled_signing, &digest)
            .await,
        Err(KeyError::Disabled(_))
    ));

    // Scheduling deletion (crypto-shredding) is accepted and reported.
    let doomed = backend
        .schedule_deletion(agency, &disabled)
        .await
        .expect("schedule deletion");
    assert_eq!(doomed.state, KeyState::PendingDeletion);
}
