//! The key-provider conformance suite (tests/src/key_conformance.rs) against each provider.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use uuid::Uuid;
use writ_keys::{
    AwsKmsProvider, KeyBackend, KeyError, KeyPurpose, KeyRef, KeySpec, KeyState, LocalProvider,
};
use writ_testkit::Moto;
use writ_testkit::key_conformance::{self, DigestSigning};

#[tokio::test]
async fn local_provider_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalProvider::open_or_create(dir.path().join("master.key")).unwrap();
    key_conformance::run(&local, &KeySpec::Local).await;
}

/// A provider pointed at the shared moto server, configured explicitly (tests run in parallel, so
/// the process environment is left alone).
async fn aws_provider(moto: &Moto) -> AwsKmsProvider {
    AwsKmsProvider::with_endpoint(&moto.endpoint, "us-east-1", "testing", "testing")
        .await
        .expect("aws-kms provider")
}

fn fresh_aws_spec() -> KeySpec {
    KeySpec::AwsKms {
        kek_key_id: None,
        signing_key_id: None,
    }
}

/// One KMS call straight on moto's wire protocol, bypassing the provider: to set up keys Writ did
/// not make, and to see what KMS itself enforces. Returns the HTTP status and the JSON answer.
pub(crate) async fn kms(
    moto: &Moto,
    operation: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let res = reqwest::Client::new()
        .post(&moto.endpoint)
        .header("X-Amz-Target", format!("TrentService.{operation}"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kms/aws4_request, \
             SignedHeaders=host, Signature=00",
        )
        .body(body.to_string())
        .send()
        .await
        .expect("moto answers");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

pub(crate) async fn kms_create_key(moto: &Moto, spec: &str, usage: &str) -> (String, String) {
    let (status, out) = kms(
        moto,
        "CreateKey",
        serde_json::json!({"KeySpec": spec, "KeyUsage": usage}),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let meta = &out["KeyMetadata"];
    (
        meta["KeyId"].as_str().unwrap().to_owned(),
        meta["Arn"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn aws_kms_provider_conforms() {
    let guard = Moto::exclusive().await;
    let provider = aws_provider(guard.moto).await;
    key_conformance::run_with(
        &provider,
        &fresh_aws_spec(),
        // moto ignores MessageType=DIGEST (see key_conformance::DigestSigning).
        DigestSigning::HashesAgain,
    )
    .await;
}

#[tokio::test]
async fn aws_kms_adopts_existing_keys_and_tags_them_for_the_agency() {
    let guard = Moto::exclusive().await;
    let moto = guard.moto;
    let provider = aws_provider(moto).await;
    let (kek_id, kek_arn) = kms_create_key(moto, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT").await;
    let (_, signing_arn) = kms_create_key(moto, "ECC_NIST_P256", "SIGN_VERIFY").await;
    let agency = Uuid::new_v4();

    // The key-encryption key is named by its bare key id, the signing key by its ARN; the refs
    // hold ARNs either way, and no key material.
    let keys = provider
        .create_agency_keys(
            agency,
            &KeySpec::AwsKms {
                kek_key_id: Some(kek_id),
                signing_key_id: Some(signing_arn.clone()),
            },
        )
        .await
        .expect("adopt both keys");
    assert_eq!(keys.key_encryption.key_id, kek_arn);
    assert_eq!(keys.signing.key_id, signing_arn);
    assert_eq!(keys.key_encryption.material, None);
    assert_eq!(keys.signing.version, 1);
    let wrapped = provider
        .wrap_data_key(agency, &keys.key_encryption, &[9u8; 32])
        .await
        .expect("wrap with the adopted key");
    assert_eq!(
        provider
            .unwrap_data_key(agency, &keys.key_encryption, &wrapped)
            .await
            .expect("unwrap")
            .as_slice(),
        &[9u8; 32]
    );
    assert_eq!(
        provider.public_key(agency, &keys.signing).await.unwrap(),
        keys.signing_public_key
    );

    // moto signs SHA-256 of whatever it is sent, whatever the MessageType; the provider verifies
    // every signature before returning it, and names the cause. Should moto ever sign digests as
    // KMS does, this fails: switch the conformance run to `DigestSigning::Signs`.
    let err = provider
        .sign_digest(agency, &keys.signing, &[5u8; 32])
        .await
        .expect_err("moto cannot sign a precomputed digest");
    assert!(
        matches!(&err, KeyError::Refused(m) if m.contains("MessageType=DIGEST")),
        "{err:?}"
    );

    // The adopted keys now carry the agency's tags in KMS.
    let (_, tags) = kms(
        moto,
        "ListResourceTags",
        serde_json::json!({"KeyId": kek_arn}),
    )
    .await;
    let tags = tags["Tags"].as_array().expect("tags").clone();
    assert!(
        tags.contains(
            &serde_json::json!({"TagKey": "writ:agency", "TagValue": agency.to_string()})
        ),
        "{tags:?}"
    );
    assert!(tags.contains(&serde_json::json!({"TagKey": "writ:purpose", "TagValue": "kek"})));

    // Another agency cannot adopt the same keys.
    let taken = provider
        .create_agency_keys(
            Uuid::new_v4(),
            &KeySpec::AwsKms {
                kek_key_id: Some(kek_arn.clone()),
                signing_key_id: None,
            },
        )
        .await
        .expect_err("a key tagged for another agency");
    assert!(matches!(taken, KeyError::Refused(_)), "{taken:?}");

    // A key of the wrong kind is refused as either key.
    let (_, other_signing) = kms_create_key(moto, "ECC_NIST_P256", "SIGN_VERIFY").await;
    let wrong = provider
        .create_agency_keys(
            Uuid::new_v4(),
            &KeySpec::AwsKms {
                kek_key_id: Some(other_signing),
                signing_key_id: None,
            },
        )
        .await
        .expect_err("a signing key as key-encryption key");
    assert!(matches!(wrong, KeyError::Refused(_)), "{wrong:?}");

    // A key that does not exist.
    let missing = provider
        .create_agency_keys(
            Uuid::new_v4(),
            &KeySpec::AwsKms {
                kek_key_id: Some(Uuid::new_v4().to_string()),
                signing_key_id: None,
            },
        )
        .await
        .expect_err("no such key");
    assert!(matches!(missing, KeyError::NotFound(_)), "{missing:?}");
}

#[tokio::test]
async fn aws_kms_binds_data_keys_to_the_agency_encryption_context() {
    let guard = Moto::exclusive().await;
    let moto = guard.moto;
    let provider = aws_provider(moto).await;
    let agency = Uuid::new_v4();
    let keys = provider
        .create_agency_keys(agency, &fresh_aws_spec())
        .await
        .unwrap();
    let wrapped = provider
        .wrap_data_key(agency, &keys.key_encryption, &[3u8; 32])
        .await
        .unwrap();

    // Straight to KMS, past the provider's own checks: only the agency's context decrypts.
    let decrypt = |agency: Uuid| {
        let body = serde_json::json!({
            "KeyId": keys.key_encryption.key_id,
            "CiphertextBlob": BASE64.encode(&wrapped.ciphertext),
            "EncryptionContext": {"writ:agency": agency.to_string()},
        });
        kms(moto, "Decrypt", body)
    };
    let (status, out) = decrypt(Uuid::new_v4()).await;
    assert_eq!(
        status, 400,
        "another agency's context must not decrypt: {out}"
    );
    assert_eq!(out["__type"], "InvalidCiphertextException", "{out}");
    let (status, out) = decrypt(agency).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["Plaintext"], BASE64.encode([3u8; 32]));
}

#[tokio::test]
async fn aws_kms_refuses_a_reference_of_another_agency() {
    let guard = Moto::exclusive().await;
    let provider = aws_provider(guard.moto).await;
    let agency = Uuid::new_v4();
    let other = Uuid::new_v4();
    let keys = provider
        .create_agency_keys(agency, &fresh_aws_spec())
        .await
        .unwrap();
    let wrapped = provider
        .wrap_data_key(agency, &keys.key_encryption, &[1u8; 32])
        .await
        .unwrap();

    // A new provider has nothing cached: ownership comes from the keys' tags in KMS.
    for provider in [provider, aws_provider(guard.moto).await] {
        let refused = |r: Result<_, KeyError>| matches!(r, Err(KeyError::MalformedRef(_)));
        let kek = &keys.key_encryption;
        assert!(refused(
            provider
                .wrap_data_key(other, kek, &[1u8; 32])
                .await
                .map(drop)
        ));
        assert!(refused(
            provider
                .unwrap_data_key(other, kek, &wrapped)
                .await
                .map(drop)
        ));
        assert!(refused(
            provider
                .sign_digest(other, &keys.signing, &[1u8; 32])
                .await
                .map(drop)
        ));
        assert!(refused(
            provider.public_key(other, &keys.signing).await.map(drop)
        ));
        assert!(refused(provider.rotate(other, kek).await.map(drop)));
        assert!(refused(provider.describe(other, kek).await.map(drop)));
        assert!(refused(provider.disable(other, kek).await.map(drop)));
        assert!(refused(
            provider.schedule_deletion(other, kek).await.map(drop)
        ));
        // Nor is a key used for the other purpose.
        let as_signing = KeyRef {
            purpose: KeyPurpose::Signing,
            ..kek.clone()
        };
        assert!(refused(
            provider.public_key(agency, &as_signing).await.map(drop)
        ));
        // The agency's own use still works.
        assert!(
            provider
                .unwrap_data_key(agency, kek, &wrapped)
                .await
                .is_ok()
        );
    }
}

#[tokio::test]
async fn aws_kms_outage_is_unavailable_quickly() {
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let provider = AwsKmsProvider::with_endpoint(
        &format!("http://127.0.0.1:{port}"),
        "us-east-1",
        "testing",
        "testing",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let err = provider
        .create_agency_keys(Uuid::new_v4(), &fresh_aws_spec())
        .await
        .expect_err("no KMS there");
    assert!(matches!(err, KeyError::Unavailable(_)), "{err:?}");
    let kek = KeyRef {
        provider: AwsKmsProvider::NAME.into(),
        purpose: KeyPurpose::KeyEncryption,
        version: 1,
        key_id: "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
            .into(),
        material: None,
        state: KeyState::Enabled,
    };
    let err = provider
        .wrap_data_key(Uuid::new_v4(), &kek, &[0u8; 32])
        .await
        .expect_err("no KMS there");
    assert!(matches!(err, KeyError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "an outage took {:?} to report",
        started.elapsed()
    );
}

#[tokio::test]
async fn aws_kms_silent_endpoint_times_out_as_unavailable() {
    // Accepts connections (the kernel completes them) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let provider = AwsKmsProvider::with_endpoint(&endpoint, "us-east-1", "testing", "testing")
        .await
        .unwrap();
    let started = Instant::now();
    let err = provider
        .create_agency_keys(Uuid::new_v4(), &fresh_aws_spec())
        .await
        .expect_err("no answer");
    assert!(matches!(err, KeyError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a silent KMS held the call for {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn aws_kms_signs_messages_that_verify_offline() {
    let guard = Moto::exclusive().await;
    let provider = aws_provider(guard.moto).await;
    let agency = Uuid::new_v4();
    let keys = provider
        .create_agency_keys(agency, &fresh_aws_spec())
        .await
        .unwrap();
    // Checked as writ-verify checks a checkpoint: ECDSA P-256 over SHA-256 of the message.
    let audit_key =
        writ_audit_chain::AuditKey::from_verifying_key(keys.signing_public_key).unwrap();
    let body = b"writ.example/agency\n42\nq1Sb3Ee5Q8uH0Y0Qn1bRjV2WQ3l9j2m1cO0XbFh0hKk=\n";
    let sig = provider
        .sign_message(agency, &keys.signing, body)
        .await
        .expect("KMS signs the message");
    audit_key
        .verify(body, sig.as_bytes())
        .expect("verifies offline");
    assert!(audit_key.verify(b"another body", sig.as_bytes()).is_err());

    // The agency binding and the disabled state hold here too.
    assert!(matches!(
        provider
            .sign_message(Uuid::new_v4(), &keys.signing, body)
            .await,
        Err(KeyError::MalformedRef(_))
    ));
    let disabled = provider.disable(agency, &keys.signing).await.unwrap();
    assert!(matches!(
        provider.sign_message(agency, &disabled, body).await,
        Err(KeyError::Disabled(_))
    ));
}
