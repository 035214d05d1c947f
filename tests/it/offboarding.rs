//! Offboarding an agency end to end: from the command line (a run that stops part-way resumes,
//! the certificate and the final export verify offline, the schema and role go after the waiting
//! period) and from the platform API (step-up, the agency's users shut out at once).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use writ_auth_mfa::Role;
use writ_keys::KeyError;
use writ_tenancy::Agency;
use writ_testkit::{
    TestDb, TestServer, ok, seed_user, text, writ_command, writ_verify_bin, writ_verify_bundle,
    write_agency_pem,
};

use crate::key_lifecycle::{data_keys, open};

async fn status(db: &TestDb, agency: &Agency) -> String {
    sqlx::query_scalar("SELECT status FROM control.agencies WHERE id = $1")
        .bind(agency.id)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

/// Time travel: the offboarding's waiting period is over.
async fn pass_deletion_date(db: &TestDb, agency: &Agency) {
    sqlx::query(
        "UPDATE control.offboardings SET deletion_after = now() - interval '1 second' \
         WHERE agency_id = $1",
    )
    .bind(agency.id)
    .execute(&db.pool)
    .await
    .unwrap();
}

/// The states of the agency's key versions, key-encryption first, oldest first.
pub(crate) async fn key_states(db: &TestDb, agency: &Agency) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT state FROM control.agency_keys WHERE agency_id = $1 ORDER BY purpose, version",
    )
    .bind(agency.id)
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

async fn platform_events(db: &TestDb, agency: &Agency) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT event FROM control.platform_events \
         WHERE event->'resource'->>'agencyId' = $1 ORDER BY recorded_at",
    )
    .bind(agency.id.to_string())
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

async fn schema_and_role_exist(db: &TestDb, agency: &Agency) -> (bool, bool) {
    sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), \
                EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
    )
    .bind(agency.ident.as_str())
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

fn verify_offboarding(certificate: &Path, pem: &Path, bundle: &Path) -> std::process::Output {
    Command::new(writ_verify_bin())
        .args(["offboarding", certificate.to_str().unwrap(), "--public-key"])
        .arg(pem)
        .arg("--bundle")
        .arg(bundle)
        .output()
        .unwrap()
}

#[tokio::test]
async fn an_offboarding_resumes_where_it_stopped_certifies_its_export_and_ends_with_the_schema() {
    let db = TestDb::new().await;
    let a = db.onboard("leaving-pd").await;
    let b = db.onboard("staying-pd").await;
    let made = data_keys(&db, &a, 2).await;
    // A rotated key-encryption key: the certificate lists every version.
    ok(writ_command(&db.url, &db.master_key_file)
        .args([
            "keys",
            "rotate",
            "--agency",
            "leaving-pd",
            "--purpose",
            "kek",
            "--wait",
        ])
        .output()
        .unwrap());
    let dir = tempfile::tempdir().unwrap();
    let pem = write_agency_pem(&db, &a, dir.path()).await;
    let exports = dir.path().join("exports");
    let store = dir.path().join("documents");
    let stored = store.join(a.id.to_string());
    std::fs::create_dir_all(&stored).unwrap();
    // Another agency's stored document, which must outlive this offboarding.
    let others = store.join(b.id.to_string());
    std::fs::create_dir_all(&others).unwrap();
    std::fs::write(
        others.join(format!("{}.sealed", uuid::Uuid::new_v4())),
        b"kept",
    )
    .unwrap();
    std::fs::set_permissions(&store, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::fs::write(
        stored.join(format!("{}.sealed", uuid::Uuid::new_v4())),
        b"sealed",
    )
    .unwrap();
    let store_url = format!("file://{}", store.display());
    let writ = |args: &[&str]| {
        writ_command(&db.url, &db.master_key_file)
            .env("WRIT_EXPORT_DIR", &exports)
            .env("WRIT_DOCUMENT_STORE", &store_url)
            .args(["agency", "offboard", "--slug"])
            .args(args)
            .output()
            .unwrap()
    };

    // Starting needs a reason; nothing changes without one.
    let out = writ(&["leaving-pd"]);
    assert!(
        !out.status.success() && text(&out).contains("reason"),
        "{}",
        text(&out)
    );
    assert_eq!(status(&db, &a).await, "active");

    // The export directory cannot be written: the run stops after the start, with the keys
    // untouched, and the failed step is on the platform's record.
    std::fs::create_dir_all(&exports).unwrap();
    let agency_exports = exports.join(a.id.to_string());
    std::fs::write(&agency_exports, b"in the way").unwrap();
    let out = writ(&["leaving-pd", "--reason", "County contract ended"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(status(&db, &a).await, "offboarding");
    assert!(key_states(&db, &a).await.iter().all(|s| s == "enabled"));
    assert_eq!(&open(&db, &a, made[0].0).await.unwrap(), &made[0].1);
    let events = platform_events(&db, &a).await;
    assert_eq!(
        events[0]["action"], "platform.agency.offboarding",
        "{events:?}"
    );
    assert_eq!(events[0]["detail"]["step"], "started", "{events:?}");
    let failed = events.last().unwrap();
    assert_eq!(failed["outcome"], "failure", "{events:?}");
    assert_eq!(failed["detail"]["step"], "final export", "{events:?}");

    // No key changes under a leaving agency (the certificate lists every version).
    let rotate = writ_command(&db.url, &db.master_key_file)
        .args(["keys", "rotate", "--agency", "leaving-pd"])
        .output()
        .unwrap();
    assert!(
        !rotate.status.success() && text(&rotate).contains("is offboarding"),
        "{}",
        text(&rotate)
    );
    // Nor entries from the audit commands: the final export is the chain's certified end.
    let before = writ_testkit::audit::entries(&db, &a).await.len();
    for args in [
        vec![
            "export",
            "--out",
            dir.path().join("late.tar.gz").to_str().unwrap(),
        ],
        vec!["prune"],
        vec!["archive"],
    ] {
        let out = writ_command(&db.url, &db.master_key_file)
            .args(["audit"])
            .args(&args[..1])
            .args(["--agency", "leaving-pd"])
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(
            !out.status.success() && text(&out).contains("is offboarding"),
            "{args:?}: {}",
            text(&out)
        );
    }
    assert!(!dir.path().join("late.tar.gz").exists());
    assert_eq!(writ_testkit::audit::entries(&db, &a).await.len(), before);

    // Run again (no reason needed to resume): export, certificate, keys.
    std::fs::remove_file(&agency_exports).unwrap();
    let out = ok(writ(&["leaving-pd"]));
    assert!(out.contains("keys scheduled for deletion after"), "{out}");
    assert!(
        key_states(&db, &a)
            .await
            .iter()
            .all(|s| s == "pending_deletion")
    );
    assert!(matches!(
        open(&db, &a, made[1].0).await,
        Err(writ_agency_keys::KeyLifecycleError::Keys(
            KeyError::Disabled(_)
        ))
    ));
    assert!(key_states(&db, &b).await.iter().all(|s| s == "enabled"));
    assert_eq!(status(&db, &b).await, "active");

    // The certificate names the final export, which verifies; a changed bundle does not match.
    let certificate = agency_exports.join("offboarding-certificate.json");
    let cert: Value = serde_json::from_slice(&std::fs::read(&certificate).unwrap()).unwrap();
    let bundle = agency_exports.join(
        cert["certificate"]["finalExport"]["fileName"]
            .as_str()
            .unwrap(),
    );
    let report = verify_offboarding(&certificate, &pem, &bundle);
    assert!(report.status.success(), "{}", text(&report));
    assert!(
        text(&report).contains("is the certified final export"),
        "{}",
        text(&report)
    );
    let verified = writ_verify_bundle(&bundle, &pem);
    assert!(verified.status.success(), "{}", text(&verified));
    assert_eq!(cert["certificate"]["reason"], "County contract ended");
    let listed: Vec<(String, i64)> = cert["certificate"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["purpose"].as_str().unwrap().to_owned(),
                k["version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("kek".to_owned(), 1),
            ("kek".to_owned(), 2),
            ("signing".to_owned(), 1)
        ]
    );
    let altered = dir.path().join("altered.tar.gz");
    let mut bytes = std::fs::read(&bundle).unwrap();
    bytes.push(0);
    std::fs::write(&altered, bytes).unwrap();
    let report = verify_offboarding(&certificate, &pem, &altered);
    assert!(!report.status.success(), "{}", text(&report));
    // The exported chain ends saying why; the rotation refused after it is a platform event.
    let exported: Vec<String> = {
        let mut tx = writ_tenancy::TenantTx::begin(&db.pool, &a).await.unwrap();
        let actions = sqlx::query_scalar(
            "SELECT entry::jsonb->>'action' FROM audit_log WHERE seq <= $1 ORDER BY seq",
        )
        .bind(
            cert["certificate"]["finalExport"]["lastSeq"]
                .as_i64()
                .unwrap(),
        )
        .fetch_all(tx.conn())
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        actions
    };
    assert_eq!(
        exported.last().unwrap(),
        "agency.offboarding",
        "{exported:?}"
    );
    let refused: Vec<Value> = platform_events(&db, &a)
        .await
        .into_iter()
        .filter(|e| e["action"] == "key.rotation")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["outcome"], "failure", "{refused:?}");

    // Before the waiting period ends, running again changes nothing but a certificate file
    // gone missing, which comes back from the control plane's copy.
    std::fs::remove_file(&certificate).unwrap();
    ok(writ(&["leaving-pd"]));
    assert_eq!(schema_and_role_exist(&db, &a).await, (true, true));
    let again: Value = serde_json::from_slice(&std::fs::read(&certificate).unwrap()).unwrap();
    assert_eq!(again, cert);

    // After it: schema, role, stored documents and exports are gone; the record stays.
    pass_deletion_date(&db, &a).await;
    let out = ok(writ(&["leaving-pd"]));
    assert!(out.contains("offboarded"), "{out}");
    assert_eq!(status(&db, &a).await, "offboarded");
    assert_eq!(schema_and_role_exist(&db, &a).await, (false, false));
    assert!(!stored.exists() && !agency_exports.exists());
    assert_eq!(std::fs::read_dir(&others).unwrap().count(), 1);
    let material: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM control.agency_keys WHERE agency_id = $1 AND material IS NOT NULL",
    )
    .bind(a.id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(material, 0);
    let kept: Option<Value> =
        sqlx::query_scalar("SELECT certificate FROM control.offboardings WHERE agency_id = $1")
            .bind(a.id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(kept.unwrap(), cert);
    let events = platform_events(&db, &a).await;
    let done = events.last().unwrap();
    assert_eq!(done["action"], "platform.agency.offboarded", "{events:?}");
    assert_eq!(done["detail"]["eventsAfterFinalExport"], 0, "{done}");
    assert_eq!(done["detail"]["documentObjectsRemoved"], 1, "{done}");
    assert_eq!(schema_and_role_exist(&db, &b).await, (true, true));

    // Done is done; migrations still run over what is left.
    let out = writ(&["leaving-pd"]);
    assert!(
        !out.status.success() && text(&out).contains("is offboarded"),
        "{}",
        text(&out)
    );
    ok(writ_command(&db.url, &db.master_key_file)
        .arg("migrate")
        .output()
        .unwrap());
}

#[tokio::test]
async fn an_operator_offboards_over_the_api_with_a_fresh_step_up() {
    let db = TestDb::new().await;
    let a = db.onboard("api-leaving-pd").await;
    let admin = seed_user(&db, &a, "leaving.admin", Role::AgencyAdmin).await;
    let dir = tempfile::tempdir().unwrap();
    let exports: PathBuf = dir.path().join("exports");
    let server = TestServer::start_with(
        &db.url,
        &db.master_key_file,
        &[("WRIT_EXPORT_DIR", exports.to_str().unwrap())],
    );
    let admin_token = server.token(&admin).await;
    let (op, _, operator) = crate::auth_rbac::operator_tokens(&db, &server, "ops.offboard").await;
    let path = format!("/v1/platform/agencies/{}/offboarding", a.id);
    let body = json!({ "reason": "Merged into the county", "confirmSlug": "api-leaving-pd" });

    // Agency users never reach it; an operator needs a fresh step-up and the right slug.
    let (s, p) = server
        .call("POST", &path, &admin_token, Some(body.clone()))
        .await;
    assert_eq!(s, 403, "{p}");
    let (s, p) = server.call("POST", &path, &op, Some(body.clone())).await;
    assert_eq!(s, 401, "{p}");
    assert_eq!(p["type"], "urn:writ:problem:step-up-required", "{p}");
    server.operator_step_up(&operator, &op).await;
    let (s, p) = server
        .call(
            "POST",
            &path,
            &op,
            Some(json!({ "reason": "Merged", "confirmSlug": "other-pd" })),
        )
        .await;
    assert_eq!(s, 422, "{p}");
    assert_eq!(p["errors"][0]["field"], "confirmSlug", "{p}");
    let (s, p) = server
        .call(
            "POST",
            &path,
            &op,
            Some(json!({ "reason": " ", "confirmSlug": "api-leaving-pd" })),
        )
        .await;
    assert_eq!(s, 422, "{p}");
    let (s, p) = server
        .call(
            "POST",
            &format!("/v1/platform/agencies/{}/offboarding", uuid::Uuid::new_v4()),
            &op,
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, 404, "{p}");
    let (s, p) = server.call("GET", &path, &op, None).await;
    assert_eq!(s, 404, "{p}");
    let (s, p) = server.call("GET", &path, &admin_token, None).await;
    assert_eq!(s, 403, "{p}");
    assert_eq!(status(&db, &a).await, "active");

    let (s, started) = server.call("POST", &path, &op, Some(body.clone())).await;
    assert_eq!(s, 202, "{started}");
    assert_eq!(started["status"], "offboarding", "{started}");
    assert_eq!(started["reason"], "Merged into the county", "{started}");
    // The agency's users are shut out at once.
    let (s, p) = server
        .call("GET", "/v1/auth/session", &admin_token, None)
        .await;
    assert_eq!(s, 401, "{p}");

    // The rest runs in the background; follow it.
    let mut view = Value::Null;
    for _ in 0..200 {
        let (s, v) = server.call("GET", &path, &op, None).await;
        assert_eq!(s, 200, "{v}");
        view = v;
        if !view["keysScheduledAt"].is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!view["keysScheduledAt"].is_null(), "{view}");
    assert!(
        key_states(&db, &a)
            .await
            .iter()
            .all(|s| s == "pending_deletion")
    );
    let signed = writ_audit_chain::offboarding::SignedOffboardingCertificate::from_json(
        view["certificate"].to_string().as_bytes(),
    )
    .unwrap();
    let pem = write_agency_pem(&db, &a, dir.path()).await;
    let key = writ_audit_chain::AuditKey::from_pem(&std::fs::read_to_string(pem).unwrap()).unwrap();
    assert_eq!(signed.verify(&key).unwrap(), key.key_id());
    assert!(
        started["requestedBy"]
            .as_str()
            .unwrap()
            .starts_with("operator:"),
        "{started}"
    );
    assert_eq!(
        signed.certificate.requested_by,
        started["requestedBy"].as_str().unwrap()
    );
    assert_eq!(
        view["finalExport"]["sha256"],
        signed.certificate.final_export.sha256.as_str(),
        "{view}"
    );
    assert!(
        exports
            .join(a.id.to_string())
            .join(view["finalExport"]["fileName"].as_str().unwrap())
            .is_file()
    );

    // Asked again it resumes (nothing left to do now); the list shows the status.
    let (s, again) = server.call("POST", &path, &op, Some(body)).await;
    assert_eq!(s, 202, "{again}");
    assert_eq!(again["startedAt"], started["startedAt"], "{again}");
    let (_, list) = server.call("GET", "/v1/platform/agencies", &op, None).await;
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["slug"] == "api-leaving-pd")
        .unwrap();
    assert_eq!(listed["status"], "offboarding", "{list}");

    // Called off (the leaving agency's own admin is shut out of this too): its users are back.
    let (s, p) = server.call("DELETE", &path, &admin_token, None).await;
    assert_eq!(s, 401, "{p}");
    let (s, back) = server.call("DELETE", &path, &op, None).await;
    assert_eq!(s, 200, "{back}");
    assert_eq!(back["status"], "active", "{back}");
    assert!(key_states(&db, &a).await.iter().all(|s| s == "enabled"));
    let (s, p) = server
        .call("GET", "/v1/auth/session", &admin_token, None)
        .await;
    assert_eq!(s, 200, "{p}");
    let (s, p) = server.call("DELETE", &path, &op, None).await;
    assert_eq!(s, 409, "{p}");
}

/// A request the agency had in flight when the offboarding started commits before the final
/// export is taken, so the export (and the certificate) hold it.
#[tokio::test]
async fn a_transaction_in_flight_at_the_start_lands_in_the_final_export() {
    let db = TestDb::new().await;
    let a = db.onboard("busy-pd").await;
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("exports");
    // A request's transaction (it found the agency active).
    let (_, mut tx) = writ_tenancy::TenantTx::begin_active(&db.pool, a.id)
        .await
        .unwrap()
        .unwrap();
    writ_audit_log::record(
        &mut tx,
        &writ_audit_log::Event::new("warrant.created", writ_audit_log::Actor::system())
            .resource("warrantId", "in-flight"),
    )
    .await
    .unwrap();
    let offboard = writ_command(&db.url, &db.master_key_file)
        .env("WRIT_EXPORT_DIR", &exports)
        .args([
            "agency",
            "offboard",
            "--slug",
            "busy-pd",
            "--reason",
            "Dissolved",
        ])
        .spawn()
        .unwrap();
    // The offboarding waits for the open transaction (on the agency's lock).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the offboarding did not wait"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tx.commit().await.unwrap();
    let out = offboard.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let last_seq: i64 = sqlx::query_scalar(
        "SELECT (final_export->>'lastSeq')::bigint FROM control.offboardings WHERE agency_id = $1",
    )
    .bind(a.id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let mut tx = writ_tenancy::TenantTx::begin(&db.pool, &a).await.unwrap();
    let seq: i64 = sqlx::query_scalar(
        "SELECT seq FROM audit_log WHERE entry::jsonb->'resource'->>'warrantId' = 'in-flight'",
    )
    .fetch_one(tx.conn())
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert!(
        seq <= last_seq,
        "seq {seq} is past the final export's {last_seq}"
    );
}

/// Within its waiting period an offboarding is called off: the keys it scheduled are usable
/// again (one revoked before stays revoked), the agency is served again, and it can be offboarded
/// later all the same.
#[tokio::test]
async fn an_offboarding_is_called_off_within_its_waiting_period() {
    let db = TestDb::new().await;
    let a = db.onboard("staying-after-all-pd").await;
    let made = data_keys(&db, &a, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("exports");
    let writ = |args: &[&str]| {
        writ_command(&db.url, &db.master_key_file)
            .env("WRIT_EXPORT_DIR", &exports)
            .args(args)
            .output()
            .unwrap()
    };
    let slug = "staying-after-all-pd";
    // Version 1 of the key-encryption key is revoked after a rotation moved its data key.
    ok(writ(&[
        "keys",
        "rotate",
        "--agency",
        slug,
        "--purpose",
        "kek",
        "--wait",
    ]));
    ok(writ(&[
        "keys",
        "disable",
        "--agency",
        slug,
        "--purpose",
        "kek",
        "--version",
        "1",
        "--reason",
        "retired",
    ]));

    // Nothing to call off yet.
    let out = writ(&["agency", "offboard", "--slug", slug, "--cancel"]);
    assert!(
        !out.status.success() && text(&out).contains("called off"),
        "{}",
        text(&out)
    );

    ok(writ(&[
        "agency",
        "offboard",
        "--slug",
        slug,
        "--reason",
        "Mistaken ticket",
    ]));
    assert!(
        key_states(&db, &a)
            .await
            .iter()
            .all(|s| s == "pending_deletion")
    );
    let agency_exports = exports.join(a.id.to_string());
    assert_eq!(std::fs::read_dir(&agency_exports).unwrap().count(), 2);

    let out = ok(writ(&["agency", "offboard", "--slug", slug, "--cancel"]));
    assert!(out.contains("called off"), "{out}");
    assert_eq!(status(&db, &a).await, "active");
    // kek 1 (revoked before), kek 2, signing 1.
    assert_eq!(
        key_states(&db, &a).await,
        ["disabled", "enabled", "enabled"]
    );
    assert_eq!(&open(&db, &a, made[0].0).await.unwrap(), &made[0].1);
    assert_eq!(std::fs::read_dir(&agency_exports).unwrap().count(), 0);
    let record: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM control.offboardings WHERE agency_id = $1")
            .bind(a.id)
            .fetch_optional(&db.pool)
            .await
            .unwrap();
    assert_eq!(record, None);
    let events = platform_events(&db, &a).await;
    let cancelled = events.last().unwrap();
    assert_eq!(cancelled["detail"]["step"], "cancelled", "{events:?}");
    assert_eq!(cancelled["detail"]["keyVersionsRestored"], 3, "{cancelled}");
    assert!(
        cancelled["detail"]["certificate"]["signature"].is_object(),
        "{cancelled}"
    );
    let entries = writ_testkit::audit::entries(&db, &a).await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    let started = actions
        .iter()
        .position(|x| *x == "agency.offboarding")
        .unwrap();
    let called_off = actions
        .iter()
        .position(|x| *x == "agency.offboarding.cancelled")
        .unwrap();
    assert!(started < called_off, "{actions:?}");
    // The agency's key work goes on as before.
    ok(writ(&[
        "keys",
        "rotate",
        "--agency",
        slug,
        "--purpose",
        "signing",
    ]));

    // Later it can leave for real; past its deletion date it can no longer be called off.
    ok(writ(&[
        "agency",
        "offboard",
        "--slug",
        slug,
        "--reason",
        "Contract ended",
    ]));
    pass_deletion_date(&db, &a).await;
    let out = writ(&["agency", "offboard", "--slug", slug, "--cancel"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(status(&db, &a).await, "offboarding");
}

/// A request that stays in flight (a long upload) does not stall the start, nor the agency's other
/// requests behind it, for long: after a bounded wait the start is refused and nothing changes.
#[tokio::test]
async fn a_start_that_cannot_wait_out_a_long_request_is_refused_and_changes_nothing() {
    let db = TestDb::new().await;
    let a = db.onboard("uploading-pd").await;
    let dir = tempfile::tempdir().unwrap();
    let (_, held) = writ_tenancy::TenantTx::begin_active(&db.pool, a.id)
        .await
        .unwrap()
        .unwrap();
    let out = writ_command(&db.url, &db.master_key_file)
        .env("WRIT_EXPORT_DIR", dir.path())
        .args([
            "agency",
            "offboard",
            "--slug",
            "uploading-pd",
            "--reason",
            "Merged",
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out).contains("did not end within"),
        "{}",
        text(&out)
    );
    held.commit().await.unwrap();
    assert_eq!(status(&db, &a).await, "active");
    assert!(platform_events(&db, &a).await.is_empty());
}
