//! Agencies whose keys live in AWS KMS (moto, on the real wire protocol), end to end through the
//! `writ` binary and the HTTP server: onboarding, envelope encryption, checkpoints signed by KMS
//! and verified offline, rotation over HTTP, and a provider outage answered with 503.

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use writ_agency_keys::{create_data_key, open_data_key};
use writ_audit_chain::{SignedNote, verify_note};
use writ_auth_mfa::Role;
use writ_keys::{AwsKmsProvider, KeyProvider, LocalProvider};
use writ_tenancy::{Agency, TenantTx};
use writ_testkit::{
    Moto, TestDb, TestServer, fake_vault_settings, ok, seed_user, writ_command, writ_verify_bundle,
    write_pem,
};

fn aws_env(moto: &Moto) -> Vec<(&'static str, String)> {
    let mut env = moto.aws_env();
    env.push(("WRIT_KEY_PROVIDERS", "aws-kms".into()));
    env
}

fn writ(db: &TestDb, env: &[(&'static str, String)], args: &[&str]) -> Output {
    writ_command(&db.url, &db.master_key_file)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(args)
        .output()
        .unwrap()
}

async fn onboard_on_kms(db: &TestDb, env: &[(&'static str, String)], slug: &str) -> Agency {
    ok(writ(
        db,
        env,
        &[
            "agency",
            "create",
            "--slug",
            slug,
            "--name",
            "KMS County Sheriff",
            "--key-provider",
            "aws-kms",
        ],
    ));
    writ_tenancy::agency_by_slug(&db.pool, slug)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn an_agency_on_aws_kms_end_to_end() {
    let guard = Moto::exclusive().await;
    let env = aws_env(guard.moto);
    let db = TestDb::new().await;
    let agency = onboard_on_kms(&db, &env, "kms-pd").await;
    assert_eq!(agency.key_provider, "aws-kms");
    let list = ok(writ(&db, &env, &["keys", "list", "--agency", "kms-pd"]));
    assert_eq!(list.matches("\taws-kms\t").count(), 2, "{list}");
    assert!(list.contains("arn:aws:kms:"), "{list}");

    // Envelope encryption through KMS, in this process.
    let keys = KeyProvider::new(LocalProvider::open_or_create(&db.master_key_file).unwrap())
        .with_aws(
            AwsKmsProvider::with_endpoint(&guard.moto.endpoint, "us-east-1", "testing", "testing")
                .await
                .unwrap(),
        );
    let mut tx = TenantTx::begin(&db.pool, &agency).await.unwrap();
    let made = create_data_key(&mut tx, &db.pool, &keys).await.unwrap();
    let back = open_data_key(&mut tx, &db.pool, &keys, made.id)
        .await
        .unwrap();
    assert_eq!(back.bytes(), made.bytes());
    // Something for the export to hold (its own entry follows it).
    writ_audit_log::record(
        &mut tx,
        &writ_audit_log::Event::new("warrant.created", writ_audit_log::Actor::system()),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // A checkpoint signed by KMS verifies with the published key, and so does the export.
    let note = SignedNote::parse(&ok(writ(
        &db,
        &env,
        &["audit", "checkpoint", "--agency", "kms-pd"],
    )))
    .unwrap();
    let verifiers = writ_audit_log::verifier_keys(&db.pool, agency.id)
        .await
        .unwrap();
    verify_note(&note, &verifiers).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tgz = dir.path().join("kms.tar.gz");
    ok(writ(
        &db,
        &env,
        &[
            "audit",
            "export",
            "--agency",
            "kms-pd",
            "--out",
            tgz.to_str().unwrap(),
        ],
    ));
    let pem = write_pem(dir.path(), &verifiers[0]);
    ok(writ_verify_bundle(&tgz, &pem));

    // Rotation over HTTP by an agency_admin with step-up; the old data key stays readable.
    let admin = seed_user(&db, &agency, "kms.admin", Role::AgencyAdmin).await;
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = TestServer::start_with(&db.url, &db.master_key_file, &env_ref);
    let token = server.token(&admin).await;
    server.step_up(&admin, &token).await;
    let (status, body) = server
        .call(
            "POST",
            "/v1/keys/rotate",
            &token,
            Some(json!({ "purpose": "kek" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["toVersion"], 2, "{body}");
    assert!(
        body[0]["keyId"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:kms:"),
        "{body}"
    );
    let mut tx = TenantTx::begin(&db.pool, &agency).await.unwrap();
    let again = open_data_key(&mut tx, &db.pool, &keys, made.id)
        .await
        .unwrap();
    assert_eq!(again.bytes(), made.bytes());
    tx.commit().await.unwrap();

    // Offboarding: KMS signs the certificate of offboarding, then every version is scheduled
    // for deletion at KMS.
    let exports = dir.path().join("exports");
    let mut offboard_env = env.clone();
    offboard_env.push(("WRIT_EXPORT_DIR", exports.to_str().unwrap().into()));
    ok(writ(
        &db,
        &offboard_env,
        &[
            "agency",
            "offboard",
            "--slug",
            "kms-pd",
            "--reason",
            "Moved to the state system",
        ],
    ));
    assert_eq!(
        crate::offboarding::key_states(&db, &agency).await,
        vec!["pending_deletion"; 3]
    );
    let mut tx = TenantTx::begin(&db.pool, &agency).await.unwrap();
    assert!(
        open_data_key(&mut tx, &db.pool, &keys, made.id)
            .await
            .is_err()
    );
    tx.rollback().await.unwrap();
    let agency_dir = exports.join(agency.id.to_string());
    let certificate: Value = serde_json::from_slice(
        &std::fs::read(agency_dir.join("offboarding-certificate.json")).unwrap(),
    )
    .unwrap();
    let report = std::process::Command::new(writ_testkit::writ_verify_bin())
        .arg("offboarding")
        .arg(agency_dir.join("offboarding-certificate.json"))
        .arg("--public-key")
        .arg(&pem)
        .arg("--bundle")
        .arg(
            agency_dir.join(
                certificate["certificate"]["finalExport"]["fileName"]
                    .as_str()
                    .unwrap(),
            ),
        )
        .output()
        .unwrap();
    ok(report);

    // Called off within the waiting period: KMS cancels the deletions and the keys work again.
    ok(writ(
        &db,
        &offboard_env,
        &["agency", "offboard", "--slug", "kms-pd", "--cancel"],
    ));
    assert_eq!(
        crate::offboarding::key_states(&db, &agency).await,
        vec!["enabled"; 3]
    );
    for purpose in [
        writ_keys::KeyPurpose::KeyEncryption,
        writ_keys::KeyPurpose::Signing,
    ] {
        for v in writ_tenancy::agency_keys(&db.pool, agency.id, purpose)
            .await
            .unwrap()
        {
            let at_kms = keys.describe(agency.id, &v.key).await.unwrap();
            assert_eq!(
                at_kms.state,
                writ_keys::KeyState::Enabled,
                "{}",
                v.key.key_id
            );
        }
    }
    let mut tx = TenantTx::begin(&db.pool, &agency).await.unwrap();
    let again = open_data_key(&mut tx, &db.pool, &keys, made.id)
        .await
        .unwrap();
    assert_eq!(again.bytes(), made.bytes());
    tx.rollback().await.unwrap();
}

/// A rotation that fails after KMS made the new key leaves no live key behind: the key Writ did
/// not record is scheduled for deletion at KMS, and the next rotation makes a key of its own.
#[tokio::test]
async fn a_failed_rotation_leaves_no_live_key_at_kms() {
    let guard = Moto::exclusive().await;
    let env = aws_env(guard.moto);
    let db = TestDb::new().await;
    let agency = onboard_on_kms(&db, &env, "orphan-pd").await;
    let recorded = async || -> Vec<String> {
        let mut ids = Vec::new();
        for purpose in [
            writ_keys::KeyPurpose::KeyEncryption,
            writ_keys::KeyPurpose::Signing,
        ] {
            for k in writ_tenancy::agency_keys(&db.pool, agency.id, purpose)
                .await
                .unwrap()
            {
                ids.push(k.key.key_id);
            }
        }
        ids
    };

    writ_testkit::refuse_key_versions(&db, "signing").await;
    let failed = writ(
        &db,
        &env,
        &[
            "keys",
            "rotate",
            "--agency",
            "orphan-pd",
            "--purpose",
            "signing",
        ],
    );
    assert!(!failed.status.success());
    let states = guard.moto.kms_key_states().await;
    assert_eq!(states.len(), 3, "{states:?}");
    let ours = recorded().await;
    assert_eq!(ours.len(), 2);
    for (arn, state) in &states {
        let expected = if ours.contains(arn) {
            "Enabled"
        } else {
            "PendingDeletion"
        };
        assert_eq!(state, expected, "{arn}: {states:?}");
    }
    // The agency's record says which version was made and what became of it.
    writ_testkit::sequence(&db, &agency).await;
    let mut tx = TenantTx::begin(&db.pool, &agency).await.unwrap();
    let entry: String = sqlx::query_scalar(
        "SELECT entry FROM audit_log WHERE action = 'key.rotation' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(tx.conn())
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    let entry: Value = serde_json::from_str(&entry).unwrap();
    assert_eq!(entry["outcome"], "failure", "{entry}");
    let discarded = entry["detail"]["unrecordedKeyId"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        states.get(discarded).map(String::as_str),
        Some("PendingDeletion"),
        "{entry}"
    );
    assert_eq!(entry["detail"]["unrecordedKey"], "scheduledForDeletion");

    writ_testkit::accept_key_versions(&db).await;
    ok(writ(
        &db,
        &env,
        &[
            "keys",
            "rotate",
            "--agency",
            "orphan-pd",
            "--purpose",
            "signing",
        ],
    ));
    let states = guard.moto.kms_key_states().await;
    let ours = recorded().await;
    assert_eq!(ours.len(), 3);
    assert!(
        ours.iter().all(|arn| states[arn] == "Enabled"),
        "{states:?}"
    );
    assert_eq!(
        states.values().filter(|s| *s == "PendingDeletion").count(),
        1
    );
}

#[tokio::test]
async fn a_key_provider_outage_is_a_503_problem_not_a_hang() {
    let guard = Moto::exclusive().await;
    let env = aws_env(guard.moto);
    let db = TestDb::new().await;
    let agency = onboard_on_kms(&db, &env, "dark-pd").await;
    let admin = seed_user(&db, &agency, "dark.admin", Role::AgencyAdmin).await;

    // The server's KMS endpoint is a closed port: every KMS call fails to connect.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut dark: Vec<(&str, &str)> = env
        .iter()
        .filter(|(k, _)| *k != "AWS_ENDPOINT_URL")
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    dark.push(("AWS_ENDPOINT_URL", &dead));
    let server = TestServer::start_with(&db.url, &db.master_key_file, &dark);
    let token = server.token(&admin).await;
    server.step_up(&admin, &token).await;
    let started = Instant::now();
    let res = server
        .http
        .post(server.url("/v1/keys/rotate"))
        .bearer_auth(&token)
        .json(&json!({ "purpose": "signing" }))
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["type"], "urn:writ:problem:key-provider-unavailable",
        "{body}"
    );
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    // Nothing was half-written: still one signing key version.
    let versions = writ_tenancy::agency_keys(&db.pool, agency.id, writ_keys::KeyPurpose::Signing)
        .await
        .unwrap();
    assert_eq!(versions.len(), 1);
    // The failed rotation is on the agency's record, with its outcome and the admin who tried.
    let tried = writ_testkit::audit::entries_with_action(&db, &agency, "key.rotation").await;
    assert_eq!(tried.len(), 1, "{tried:?}");
    assert_eq!(tried[0]["outcome"], "failure", "{tried:?}");
    assert_eq!(tried[0]["actor"]["role"], "agency_admin", "{tried:?}");
    assert_eq!(tried[0]["resource"]["keyPurpose"], "signing", "{tried:?}");
    // In words the agency's auditors may read: no endpoint, account or provider message.
    assert_eq!(
        tried[0]["detail"]["error"], "the key provider is unavailable",
        "{tried:?}"
    );
}

/// An agency whose keys are in Azure Key Vault (the in-repo fake, over HTTPS with the 401
/// challenge): envelope encryption, checkpoints signed by the vault and verified offline,
/// rotation with co-signing, and a version disabled in the vault refusing at once.
#[tokio::test]
async fn an_agency_on_azure_key_vault_end_to_end() {
    use writ_fake_keyvault::FakeKeyVault;
    use writ_keys::{AzureKeyVaultProvider, KeySpec};

    let vault = FakeKeyVault::start().unwrap();
    let azure = AzureKeyVaultProvider::new(fake_vault_settings(&vault)).unwrap();
    let db = TestDb::new().await;
    let keys = KeyProvider::new(LocalProvider::open_or_create(&db.master_key_file).unwrap())
        .with_azure(azure);
    let agency = writ_tenancy::onboard(
        &db.pool,
        &keys,
        writ_tenancy::NewAgency {
            slug: "vault-pd",
            name: "Vault City Police",
            key_spec: KeySpec::AzureKeyVault {
                vault_url: vault.url(),
                key_name: Some("vault-pd".into()),
            },
        },
        writ_tenancy::tenant_migrations(),
    )
    .await
    .unwrap();
    assert_eq!(agency.key_provider, "azure-keyvault");

    let mut tx = TenantTx::begin(&db.pool, &agency).await.unwrap();
    let made = create_data_key(&mut tx, &db.pool, &keys).await.unwrap();
    tx.commit().await.unwrap();

    let first = writ_audit_log::checkpoint_agency(
        &db.pool,
        &keys,
        &agency,
        Duration::from_secs(3600),
        true,
    )
    .await
    .unwrap()
    .unwrap();
    let v1 = writ_audit_log::verifier_keys(&db.pool, agency.id)
        .await
        .unwrap();
    verify_note(&SignedNote::parse(&first.note).unwrap(), &v1).unwrap();

    // Rotate both keys; the next checkpoint carries the old and the new signature.
    for purpose in [
        writ_keys::KeyPurpose::KeyEncryption,
        writ_keys::KeyPurpose::Signing,
    ] {
        writ_agency_keys::rotate(
            &db.pool,
            &keys,
            &agency,
            purpose,
            &writ_audit_log::Caller::system(),
            None,
        )
        .await
        .unwrap()
        .unwrap();
    }
    while writ_agency_keys::rewrap_step(&db.pool, &keys, &agency, 100)
        .await
        .unwrap()
        .is_some_and(|j| j.status == "running")
    {}
    let second = writ_audit_log::checkpoint_agency(
        &db.pool,
        &keys,
        &agency,
        Duration::from_secs(3600),
        true,
    )
    .await
    .unwrap()
    .unwrap();
    let note = SignedNote::parse(&second.note).unwrap();
    assert_eq!(note.signatures().len(), 2);
    verify_note(&note, &v1).unwrap();

    // The export verifies offline with the current key.
    let dir = tempfile::tempdir().unwrap();
    let tgz = dir.path().join("vault.tar.gz");
    writ_audit_log::export_bundle(&db.pool, &keys, &agency, None, None, &tgz)
        .await
        .unwrap();
    let all = writ_audit_log::verifier_keys(&db.pool, agency.id)
        .await
        .unwrap();
    let current = all.iter().find(|k| k.key_id() != v1[0].key_id()).unwrap();
    let pem = write_pem(dir.path(), current);
    ok(writ_verify_bundle(&tgz, &pem));

    // The data key was re-wrapped under version 2; the vault's admin disables that version
    // behind Writ's back, and the vault refuses the next unwrap.
    let mut tx = TenantTx::begin(&db.pool, &agency).await.unwrap();
    assert_eq!(
        open_data_key(&mut tx, &db.pool, &keys, made.id)
            .await
            .unwrap()
            .bytes(),
        made.bytes()
    );
    tx.commit().await.unwrap();
    let kek2 = writ_tenancy::agency_keys(&db.pool, agency.id, writ_keys::KeyPurpose::KeyEncryption)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(kek2.key.version, 2);
    assert!(vault.set_enabled(&kek2.key.key_id, false));
    let no_cache = KeyProvider::new(LocalProvider::open_or_create(&db.master_key_file).unwrap())
        .with_azure(AzureKeyVaultProvider::new(fake_vault_settings(&vault)).unwrap());
    let mut tx = TenantTx::begin(&db.pool, &agency).await.unwrap();
    let refused = open_data_key(&mut tx, &db.pool, &no_cache, made.id).await;
    tx.rollback().await.unwrap();
    assert!(
        matches!(
            refused,
            Err(writ_agency_keys::KeyLifecycleError::Keys(
                writ_keys::KeyError::Disabled(_)
            ))
        ),
        "{refused:?}"
    );
}

/// Keys adopted by an onboarding that then failed carry its agency id; the next onboarding of the
/// same keys takes that id over instead of refusing them as another agency's. Keys tagged for an
/// agency that exists, or for an id no onboarding here tried, stay refused.
#[tokio::test]
async fn an_onboarding_that_failed_after_tagging_adopted_keys_can_be_run_again() {
    use crate::key_providers::{kms, kms_create_key};
    let guard = Moto::exclusive().await;
    let moto = guard.moto;
    let env = aws_env(moto);
    let db = TestDb::new().await;
    let (_, kek) = kms_create_key(moto, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT").await;
    let (_, signing) = kms_create_key(moto, "ECC_NIST_P256", "SIGN_VERIFY").await;
    let tag = |arn: String, agency: uuid::Uuid, purpose: &'static str| async move {
        let (status, out) = kms(
            moto,
            "TagResource",
            json!({"KeyId": arn, "Tags": [
                {"TagKey": "writ:agency", "TagValue": agency.to_string()},
                {"TagKey": "writ:purpose", "TagValue": purpose}]}),
        )
        .await;
        assert_eq!(status, 200, "{out}");
    };
    let create = |slug: &'static str| {
        writ(
            &db,
            &env,
            &[
                "agency",
                "create",
                "--slug",
                slug,
                "--name",
                "Retry County",
                "--key-provider",
                "aws-kms",
                "--kms-key-id",
                &kek,
                "--kms-signing-key-id",
                &signing,
            ],
        )
    };
    // As a failed onboarding leaves them: the keys tagged for an id never committed.
    let unfinished = uuid::Uuid::new_v4();
    tag(kek.clone(), unfinished, "kek").await;
    tag(signing.clone(), unfinished, "signing").await;

    // An id no onboarding here noted is another deployment's agency: refused.
    let out = create("retry-county");
    assert!(
        !out.status.success() && writ_testkit::text(&out).contains("tagged for another agency"),
        "{}",
        writ_testkit::text(&out)
    );
    // Noted as an attempt (the failed onboarding did that first): taken over.
    sqlx::query(
        "INSERT INTO control.onboarding_attempts (agency_id, slug) VALUES ($1, 'retry-county')",
    )
    .bind(unfinished)
    .execute(&db.pool)
    .await
    .unwrap();
    ok(create("retry-county"));
    let agency = writ_tenancy::agency_by_slug(&db.pool, "retry-county")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(agency.id, unfinished);
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM control.onboarding_attempts")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 0, "the completed onboarding removed its attempt");
    // Now they are an existing agency's keys.
    let out = create("second-county");
    assert!(!out.status.success(), "{}", writ_testkit::text(&out));
}
