//! The behaviour every key provider must show, run against each one (local, AWS KMS on moto,
//! Azure Key Vault on the in-repo fake vault). Signatures are always checked here with p256,
//! never by asking the provider.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use uuid::Uuid;
use writ_keys::{KeyBackend, KeyError, KeyPurpose, KeyRef, KeySpec, KeyState};

fn message_verifies(key: &VerifyingKey, message: &[u8], der: &[u8]) -> bool {
    use p256::ecdsa::signature::Verifier;
    Signature::from_der(der)
        .map(|sig| key.verify(message, &sig).is_ok())
        .unwrap_or(false)
}

fn verifies(key: &VerifyingKey, digest: &[u8; 32], der: &[u8]) -> bool {
    Signature::from_der(der)
        .map(|sig| key.verify_prehash(digest, &sig).is_ok())
        .unwrap_or(false)
}

/// Whether the provider's test double signs a precomputed digest as the real service does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestSigning {
    /// It does (the local provider, the fake Key Vault, the real clouds): every signature must
    /// verify over the digest.
    Signs,
    /// It hashes the digest again before signing: moto ignores Sign's `MessageType=DIGEST` (every
    /// 5.x release), so no signature over a precomputed digest can come from it, whatever the
    /// provider sends. The provider must then refuse ([`KeyError::Refused`]) rather than return a
    /// signature that verifies for no one.
    HashesAgain,
}

/// Runs the whole suite; `spec` asks the provider to create fresh keys.
pub async fn run<B: KeyBackend>(backend: &B, spec: &KeySpec) {
    run_with(backend, spec, DigestSigning::Signs).await;
}

/// Signs `digest`; where the test double cannot sign a digest, checks the provider's refusal
/// instead and returns `None`.
async fn sign<B: KeyBackend>(
    backend: &B,
    signing: DigestSigning,
    agency: Uuid,
    key: &KeyRef,
    digest: &[u8; 32],
) -> Option<Vec<u8>> {
    let result = backend.sign_digest(agency, key, digest).await;
    match signing {
        DigestSigning::Signs => Some(result.expect("sign").as_bytes().to_vec()),
        DigestSigning::HashesAgain => {
            let err = result.expect_err("a signature over a re-hashed digest must be refused");
            assert!(
                matches!(err, KeyError::Refused(_)),
                "expected Refused, got {err:?}"
            );
            None
        }
    }
}

/// Runs the whole suite against a test double that signs digests as `signing` says.
pub async fn run_with<B: KeyBackend>(backend: &B, spec: &KeySpec, signing: DigestSigning) {
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
    let public = backend
        .public_key(agency, &keys.signing)
        .await
        .expect("public key");
    assert_eq!(public, keys.signing_public_key);
    if let Some(der) = sign(backend, signing, agency, &keys.signing, &digest).await {
        assert!(verifies(&public, &digest, &der));
        assert!(!verifies(&public, &[8u8; 32], &der));
    }
    // What Writ signs is a message (a checkpoint body, a certificate): every provider, and every
    // test double, must sign it so that a plain ECDSA-SHA256 verifier accepts it.
    let message = b"writ/audit/conformance\n42\nc2lnbmVkIGJ5IGEgcHJvdmlkZXI=\n";
    let der = backend
        .sign_message(agency, &keys.signing, message)
        .await
        .expect("sign a message");
    assert!(message_verifies(&public, message, der.as_bytes()));
    assert!(!message_verifies(
        &public,
        b"another message",
        der.as_bytes()
    ));
    let long = vec![b'x'; 10_000];
    let der = backend.sign_message(agency, &keys.signing, &long).await;
    if signing == DigestSigning::Signs {
        assert!(message_verifies(
            &public,
            &long,
            der.expect("sign a long message").as_bytes()
        ));
    }
    assert!(
        backend
            .sign_message(other, &keys.signing, message)
            .await
            .is_err(),
        "signing a message for another agency must fail"
    );

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
    if let Some(der2) = sign(backend, signing, agency, &signing2, &digest).await {
        assert!(verifies(&public2, &digest, &der2));
        assert!(!verifies(&public, &digest, &der2));
    }

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
    assert!(matches!(
        backend
            .sign_message(agency, &disabled_signing, b"after revocation")
            .await,
        Err(KeyError::Disabled(_))
    ));

    // Scheduling deletion (crypto-shredding) is accepted and reported.
    let doomed = backend
        .schedule_deletion(agency, &disabled)
        .await
        .expect("schedule deletion");
    assert_eq!(doomed.state, KeyState::PendingDeletion);

    // Every version scheduled (an offboarding; Azure then deletes the whole key), then called off
    // within the waiting period: the version that was in use works again, the one revoked before
    // stays revoked.
    let doomed2 = backend
        .schedule_deletion(agency, &kek2)
        .await
        .expect("schedule deletion of version 2");
    assert_eq!(doomed2.state, KeyState::PendingDeletion);
    let back = backend
        .cancel_deletion(agency, &doomed2, true)
        .await
        .expect("cancel deletion");
    assert_eq!(back.state, KeyState::Enabled);
    assert_eq!(
        backend
            .describe(agency, &back)
            .await
            .expect("describe")
            .state,
        KeyState::Enabled
    );
    let reopened = backend
        .unwrap_data_key(agency, &back, &wrapped2)
        .await
        .expect("the restored version unwraps");
    assert_eq!(reopened.as_slice(), data_key.as_slice());
    let still_revoked = backend
        .cancel_deletion(agency, &doomed, false)
        .await
        .expect("cancel deletion of the revoked version");
    assert_eq!(still_revoked.state, KeyState::Disabled);
    assert_eq!(
        backend
            .describe(agency, &still_revoked)
            .await
            .expect("describe")
            .state,
        KeyState::Disabled
    );
    // Another agency cannot call off this agency's deletion.
    assert!(
        backend
            .cancel_deletion(Uuid::new_v4(), &doomed2, true)
            .await
            .is_err()
    );
}
