//! Agency key lifecycle end to end: data keys, rotation with re-wrap, co-signed checkpoints,
//! revocation, key-access auditing — through the `writ` CLI and the HTTP API (offboarding has its
//! own module).

use serde_json::{Value, json};
use writ_agency_keys::{KeyLifecycleError, create_data_key, open_data_key};
use writ_audit_chain::{SignedNote, verify_note};
use writ_auth_mfa::Role;
use writ_keys::KeyError;
use writ_tenancy::{Agency, TenantTx};
use writ_testkit::{
    TestDb, TestServer, audit_actions, ok, seed_user, writ_verify_bundle, write_pem,
};

/// Makes `n` data keys; returns (id, plaintext) pairs.
pub(crate) async fn data_keys(
    db: &TestDb,
    agency: &Agency,
    n: usize,
) -> Vec<(uuid::Uuid, Vec<u8>)> {
    let mut tx = TenantTx::begin(&db.pool, agency).await.unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let k = create_data_key(&mut tx, &db.pool, &db.keys).await.unwrap();
        out.push((k.id, k.bytes().to_vec()));
    }
    tx.commit().await.unwrap();
    out
}

pub(crate) async fn open(
    db: &TestDb,
    agency: &Agency,
    id: uuid::Uuid,
) -> Result<Vec<u8>, KeyLifecycleError> {
    let mut tx = TenantTx::begin(&db.pool, agency).await.unwrap();
    let k = open_data_key(&mut tx, &db.pool, &db.keys, id).await;
    tx.commit().await.unwrap();
    k.map(|k| k.bytes().to_vec())
}

async fn kek_versions(db: &TestDb, agency: &Agency) -> Vec<i32> {
    let mut tx = TenantTx::begin(&db.pool, agency).await.unwrap();
    let v = sqlx::query_scalar("SELECT kek_version FROM data_keys ORDER BY id")
        .fetch_all(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    v
}

/// `writ keys disable` of version 1 of `revoke-pd`'s key-encryption key.
fn revoke_kek_v1(db: &TestDb, reason: &str, force: bool) -> std::process::Output {
    let mut args = vec![
        "keys",
        "disable",
        "--agency",
        "revoke-pd",
        "--purpose",
        "kek",
        "--version",
        "1",
        "--reason",
        reason,
    ];
    if force {
        args.push("--force");
    }
    db.writ(&args)
}

#[tokio::test]
async fn a_kek_rotation_rewraps_every_data_key_and_keeps_them_readable() {
    let db = TestDb::new().await;
    let a = db.onboard("rotate-pd").await;
    let made = data_keys(&db, &a, 7).await;
    assert_eq!(kek_versions(&db, &a).await, vec![1; 7]);

    let out = ok(db.writ(&[
        "keys",
        "rotate",
        "--agency",
        "rotate-pd",
        "--purpose",
        "kek",
        "--wait",
    ]));
    assert!(out.contains("kek: version 1 -> 2"), "{out}");
    assert!(
        out.contains("7/7 data keys re-wrapped, 0 unreadable, done"),
        "{out}"
    );
    assert_eq!(kek_versions(&db, &a).await, vec![2; 7]);
    for (id, plain) in &made {
        assert_eq!(&open(&db, &a, *id).await.unwrap(), plain);
    }
    // New data keys use the new version.
    let newer = data_keys(&db, &a, 1).await;
    assert_eq!(kek_versions(&db, &a).await.len(), 8);
    assert_eq!(&open(&db, &a, newer[0].0).await.unwrap(), &newer[0].1);

    let list = ok(db.writ(&["keys", "list", "--agency", "rotate-pd"]));
    assert!(list.contains("kek\t1\tenabled"), "{list}");
    assert!(list.contains("kek\t2\tenabled"), "{list}");
    let actions = audit_actions(&db, &a).await;
    assert!(actions.contains(&"key.rotation".to_owned()), "{actions:?}");
    assert!(
        actions.contains(&"key.rewrap.completed".to_owned()),
        "{actions:?}"
    );
    // The command's own key uses are recorded before it exits: seven unwraps under v1.
    let access = writ_testkit::audit::entries_with_action(&db, &a, "key.access").await;
    let unwrapped_v1: u64 = access
        .iter()
        .flat_map(|e| e["detail"]["uses"].as_array().cloned().unwrap_or_default())
        .filter(|u| u["operation"] == "unwrap" && u["keyVersion"] == 1 && u["ok"] == true)
        .map(|u| u["count"].as_u64().unwrap())
        .sum();
    assert_eq!(unwrapped_v1, 7, "{access:#?}");
}

#[tokio::test]
async fn after_a_signing_rotation_old_and_new_keys_both_sign_the_next_checkpoint() {
    let db = TestDb::new().await;
    let a = db.onboard("cosign-pd").await;
    let old_keys = writ_audit_log::verifier_keys(&db.pool, a.id).await.unwrap();
    ok(db.writ(&["audit", "checkpoint", "--agency", "cosign-pd"]));
    ok(db.writ(&[
        "keys",
        "rotate",
        "--agency",
        "cosign-pd",
        "--purpose",
        "signing",
    ]));
    let note = SignedNote::parse(&ok(db.writ(&[
        "audit",
        "checkpoint",
        "--agency",
        "cosign-pd",
    ])))
    .unwrap();
    assert_eq!(note.signatures().len(), 2, "old and new key co-sign");
    let all = writ_audit_log::verifier_keys(&db.pool, a.id).await.unwrap();
    assert_eq!(all.len(), 2);
    let new_key: Vec<_> = all
        .iter()
        .filter(|k| k.key_id() != old_keys[0].key_id())
        .cloned()
        .collect();
    verify_note(&note, &old_keys).expect("a verifier holding only the old key follows");
    verify_note(&note, &new_key).expect("the new key signed");
    // An export certified by that co-signed checkpoint verifies with the current key: the old
    // key's signature, after its window, is the courtesy of the rotation, not a forgery.
    let dir = tempfile::tempdir().unwrap();
    let cosigned = dir.path().join("cosigned");
    ok(db.writ(&[
        "audit",
        "export",
        "--agency",
        "cosign-pd",
        "--to-seq",
        &note.checkpoint().unwrap().size.to_string(),
        "--out",
        cosigned.to_str().unwrap(),
    ]));
    let certificate: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cosigned.join("certificate.json")).unwrap()).unwrap();
    let certified = SignedNote::parse(certificate["checkpoint"].as_str().unwrap()).unwrap();
    assert_eq!(
        certified.signatures().len(),
        2,
        "certified by the co-signed checkpoint"
    );
    let pem = write_pem(dir.path(), &new_key[0]);
    ok(writ_verify_bundle(&cosigned, &pem));
    // The next checkpoint is signed by the new key alone.
    let next = SignedNote::parse(&ok(db.writ(&[
        "audit",
        "checkpoint",
        "--agency",
        "cosign-pd",
    ])))
    .unwrap();
    assert_eq!(next.signatures().len(), 1);
    verify_note(&next, &new_key).unwrap();
    assert!(verify_note(&next, &old_keys).is_err());

    // The whole log, checkpoints across the rotation included, verifies offline with the
    // current public key.
    let tgz = dir.path().join("export.tar.gz");
    ok(db.writ(&[
        "audit",
        "export",
        "--agency",
        "cosign-pd",
        "--out",
        tgz.to_str().unwrap(),
    ]));
    ok(writ_verify_bundle(&tgz, &pem));
}

#[tokio::test]
async fn a_disabled_version_makes_what_only_it_protects_unreadable() {
    let db = TestDb::new().await;
    let a = db.onboard("revoke-pd").await;
    let made = data_keys(&db, &a, 3).await;
    // The current version cannot be revoked: new work must always have a key.
    let refused = revoke_kek_v1(&db, "test", false);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("rotate before disabling"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    ok(db.writ(&[
        "keys",
        "rotate",
        "--agency",
        "revoke-pd",
        "--purpose",
        "kek",
    ]));
    // The re-wrap has not moved the data keys: revoking v1 now would make them unreadable, so
    // it takes --force.
    let unmoved = revoke_kek_v1(&db, "suspected compromise", false);
    assert!(!unmoved.status.success());
    assert!(
        String::from_utf8_lossy(&unmoved.stderr).contains("3 data key(s) are still wrapped"),
        "{}",
        String::from_utf8_lossy(&unmoved.stderr)
    );
    assert!(
        open(&db, &a, made[0].0).await.is_ok(),
        "nothing was revoked"
    );
    ok(revoke_kek_v1(&db, "suspected compromise", true));
    // The refusals are on the record as failed revocations, then the forced one.
    let revocation = writ_testkit::audit::entries_with_action(&db, &a, "key.revocation").await;
    let outcomes: Vec<&str> = revocation
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["failure", "failure", "success"]);
    assert!(
        revocation[1]["detail"]["error"]
            .as_str()
            .unwrap()
            .contains("still wrapped"),
        "{revocation:?}"
    );
    assert_eq!(revocation[1]["detail"]["reason"], "suspected compromise");
    assert_eq!(revocation[2]["detail"]["dataKeysStillWrapped"], 3);
    let err = open(&db, &a, made[0].0).await.unwrap_err();
    assert!(
        matches!(err, KeyLifecycleError::Keys(KeyError::Disabled(_))),
        "{err:?}"
    );
    // The re-wrap cannot read them either: they are counted, not retried for ever.
    let out = ok(db.writ(&["keys", "rewrap", "--agency", "revoke-pd"]));
    assert!(
        out.contains("0/3 data keys re-wrapped, 3 unreadable, done"),
        "{out}"
    );
    // Disabling twice is a conflict.
    let again = revoke_kek_v1(&db, "again", false);
    assert!(!again.status.success());
    let revocation = writ_testkit::audit::entries_with_action(&db, &a, "key.revocation").await;
    let outcomes: Vec<&str> = revocation
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["failure", "failure", "success", "failure"]);
}

#[tokio::test]
async fn key_access_is_one_audit_entry_per_agency_per_flush() {
    let db = TestDb::new().await;
    let a = db.onboard("access-pd").await;
    let made = data_keys(&db, &a, 1).await;
    for _ in 0..5 {
        open(&db, &a, made[0].0).await.unwrap();
    }
    assert_eq!(
        writ_agency_keys::flush_key_access(&db.pool, &db.keys)
            .await
            .unwrap(),
        1
    );
    // Nothing new to report: no entry.
    assert_eq!(
        writ_agency_keys::flush_key_access(&db.pool, &db.keys)
            .await
            .unwrap(),
        0
    );
    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    let details: Vec<Value> = sqlx::query_scalar(
        "SELECT event->'detail' FROM audit_pending WHERE event->>'action' = 'key.access' \
         UNION ALL SELECT entry::jsonb->'detail' FROM audit_log WHERE action = 'key.access'",
    )
    .fetch_all(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(details.len(), 1, "{details:?}");
    let uses = details[0]["uses"].as_array().unwrap();
    let count = |op: &str| {
        uses.iter()
            .filter(|u| u["operation"] == op)
            .map(|u| u["count"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(count("wrap"), 1, "{uses:?}");
    assert_eq!(count("unwrap"), 5, "{uses:?}");
}

#[tokio::test]
async fn key_routes_need_an_agency_admin_with_a_fresh_step_up() {
    let db = TestDb::new().await;
    let a = db.onboard("keys-pd").await;
    let b = db.onboard("other-pd").await;
    let admin = seed_user(&db, &a, "keys.admin", Role::AgencyAdmin).await;
    let officer = seed_user(&db, &a, "keys.officer", Role::Officer).await;
    let auditor = seed_user(&db, &a, "keys.auditor", Role::Auditor).await;
    let other_admin = seed_user(&db, &b, "other.admin", Role::AgencyAdmin).await;
    data_keys(&db, &a, 2).await;
    let server = TestServer::start(&db);
    let admin_token = server.token(&admin).await;
    let officer_token = server.token(&officer).await;
    let auditor_token = server.token(&auditor).await;

    let rotate = Some(json!({}));
    let (s, p) = server
        .call("POST", "/v1/keys/rotate", &officer_token, rotate.clone())
        .await;
    assert_eq!(s, 403, "{p}");
    let (s, p) = server
        .call("POST", "/v1/keys/rotate", &auditor_token, rotate.clone())
        .await;
    assert_eq!(s, 403, "{p}");
    let (s, p) = server
        .call("POST", "/v1/keys/rotate", &admin_token, rotate.clone())
        .await;
    assert_eq!(s, 401, "{p}");
    assert_eq!(p["type"], "urn:writ:problem:step-up-required", "{p}");

    server.step_up(&admin, &admin_token).await;
    let (s, p) = server
        .call(
            "POST",
            "/v1/keys/rotate",
            &admin_token,
            Some(json!({ "purpose": "sideways" })),
        )
        .await;
    assert_eq!(s, 422, "{p}");
    let (s, rotated) = server
        .call("POST", "/v1/keys/rotate", &admin_token, rotate)
        .await;
    assert_eq!(s, 200, "{rotated}");
    let rotated = rotated.as_array().unwrap().clone();
    assert_eq!(rotated.len(), 2);
    let rewrap = rotated
        .iter()
        .find_map(|r| r["rewrapId"].as_str())
        .unwrap()
        .to_owned();

    // Progress of the re-wrap, which the server's background work finishes.
    let mut status = String::new();
    for _ in 0..100 {
        let (s, job) = server
            .call(
                "GET",
                &format!("/v1/keys/rewraps/{rewrap}"),
                &auditor_token,
                None,
            )
            .await;
        assert_eq!(s, 200, "{job}");
        status = job["status"].as_str().unwrap().to_owned();
        if status == "done" {
            assert_eq!(job["done"], 2, "{job}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "done");
    // Another agency's admin cannot see it.
    let other_token = server.token(&other_admin).await;
    let (s, _) = server
        .call(
            "GET",
            &format!("/v1/keys/rewraps/{rewrap}"),
            &other_token,
            None,
        )
        .await;
    assert_eq!(s, 404);

    let (s, list) = server.call("GET", "/v1/keys", &auditor_token, None).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 4, "{list}");
    let (s, _) = server.call("GET", "/v1/keys", &officer_token, None).await;
    assert_eq!(s, 403);

    let reason = Some(json!({ "reason": "retired after rotation" }));
    let (s, p) = server
        .call(
            "POST",
            "/v1/keys/signing/versions/2/disable",
            &admin_token,
            reason.clone(),
        )
        .await;
    assert_eq!(s, 409, "the current version: {p}");
    let (s, p) = server
        .call(
            "POST",
            "/v1/keys/signing/versions/1/disable",
            &admin_token,
            reason.clone(),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    let (s, p) = server
        .call(
            "POST",
            "/v1/keys/signing/versions/1/disable",
            &admin_token,
            reason.clone(),
        )
        .await;
    assert_eq!(s, 409, "{p}");
    let (s, _) = server
        .call(
            "POST",
            "/v1/keys/signing/versions/9/disable",
            &admin_token,
            reason.clone(),
        )
        .await;
    assert_eq!(s, 404);
    // The re-wrap is done: the old key-encryption version protects nothing and is revoked
    // without force.
    let (s, p) = server
        .call(
            "POST",
            "/v1/keys/kek/versions/1/disable",
            &admin_token,
            reason,
        )
        .await;
    assert_eq!(s, 200, "{p}");
    let actions = audit_actions(&db, &a).await;
    assert_eq!(
        actions.iter().filter(|x| *x == "key.rotation").count(),
        2,
        "{actions:?}"
    );
    assert!(actions.contains(&"key.revocation".to_owned()));
    assert!(actions.contains(&"authz.denied".to_owned()));

    // The rotation period is an agency policy, checked when set.
    for bad in [
        json!({ "days": 0 }),
        json!({ "days": 400 }),
        json!(90),
        json!({ "days": 30, "x": 1 }),
    ] {
        let (s, _) = server
            .call(
                "PUT",
                "/v1/policies/keys.rotation",
                &admin_token,
                Some(json!({ "value": bad })),
            )
            .await;
        assert_eq!(s, 422, "{bad}");
    }
    let (s, _) = server
        .call(
            "PUT",
            "/v1/policies/keys.rotation",
            &admin_token,
            Some(json!({ "value": { "days": 30 } })),
        )
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn keys_are_rotated_when_they_reach_the_agency_rotation_period() {
    let db = TestDb::new().await;
    let a = db.onboard("period-pd").await;
    // Fresh keys are not due.
    assert!(
        writ_agency_keys::rotate_due(&db.pool, &db.keys, &a)
            .await
            .unwrap()
            .is_empty()
    );
    let age = |days: i32| {
        let pool = db.pool.clone();
        let id = a.id;
        async move {
            sqlx::query(
                "UPDATE control.agency_keys SET valid_from = now() - make_interval(days => $2) \
                 WHERE agency_id = $1 AND valid_to IS NULL",
            )
            .bind(id)
            .bind(days)
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    // 89 days old: not yet due under the default of 90.
    age(89).await;
    assert!(
        writ_agency_keys::rotate_due(&db.pool, &db.keys, &a)
            .await
            .unwrap()
            .is_empty()
    );
    // The agency's policy shortens the period to 30 days.
    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    sqlx::query("INSERT INTO policies (name, value) VALUES ('keys.rotation', '{\"days\": 30}')")
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let rotated = writ_agency_keys::rotate_due(&db.pool, &db.keys, &a)
        .await
        .unwrap();
    assert_eq!(rotated.len(), 2, "{rotated:?}");
    assert!(rotated.iter().all(|r| r.to_version == 2));
    // The new versions are fresh: nothing more to do.
    assert!(
        writ_agency_keys::rotate_due(&db.pool, &db.keys, &a)
            .await
            .unwrap()
            .is_empty()
    );
    let actions = audit_actions(&db, &a).await;
    assert_eq!(
        actions.iter().filter(|x| *x == "key.rotation").count(),
        2,
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_rotation_waits_for_data_keys_being_made_and_rewraps_them() {
    let db = TestDb::new().await;
    let a = db.onboard("race-pd").await;
    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    let made = create_data_key(&mut tx, &db.pool, &db.keys).await.unwrap();
    assert_eq!(made.kek_version, 1);
    let rotation = {
        let (pool, keys, agency) = (db.pool.clone(), db.keys.clone(), a.clone());
        tokio::spawn(async move {
            writ_agency_keys::rotate(
                &pool,
                &keys,
                &agency,
                writ_keys::KeyPurpose::KeyEncryption,
                &writ_audit_log::Caller::system(),
                None,
            )
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !rotation.is_finished(),
        "the rotation must wait for the data key's transaction"
    );
    tx.commit().await.unwrap();
    let rotated = rotation.await.unwrap().unwrap().unwrap();
    assert_eq!(rotated.to_version, 2);
    // The re-wrap counts and moves the data key made during the rotation.
    let out = ok(db.writ(&["keys", "rewrap", "--agency", "race-pd"]));
    assert!(
        out.contains("1/1 data keys re-wrapped, 0 unreadable, done"),
        "{out}"
    );
    assert_eq!(kek_versions(&db, &a).await, vec![2]);
    assert_eq!(&open(&db, &a, made.id).await.unwrap(), made.bytes());
}

/// A request that makes a data key holds the key's lock until it ends, which for an upload can
/// be hours: the scheduled rotation then neither waits nor makes the agency's new data keys wait
/// behind it (it rotates at a later check) until it is a day late, and one asked for gives up
/// after a bounded wait.
#[tokio::test]
async fn a_key_held_by_a_long_request_neither_stalls_the_agency_nor_hangs_a_rotation() {
    let db = TestDb::new().await;
    let a = db.onboard("long-pd").await;
    let mut upload = TenantTx::begin(&db.pool, &a).await.unwrap();
    create_data_key(&mut upload, &db.pool, &db.keys)
        .await
        .unwrap();
    let system = writ_audit_log::Caller::system();
    let rotate = |due_after: Option<chrono::Duration>| {
        writ_agency_keys::rotate(
            &db.pool,
            &db.keys,
            &a,
            writ_keys::KeyPurpose::KeyEncryption,
            &system,
            due_after,
        )
    };
    let due = Some(chrono::Duration::zero());
    let skipped = tokio::time::timeout(std::time::Duration::from_secs(5), rotate(due))
        .await
        .expect("the scheduled rotation does not wait");
    assert!(skipped.unwrap().is_none());
    // Another request makes its data key meanwhile.
    let mut other = TenantTx::begin(&db.pool, &a).await.unwrap();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        create_data_key(&mut other, &db.pool, &db.keys),
    )
    .await
    .expect("new data keys do not wait")
    .unwrap();
    other.commit().await.unwrap();
    // Asked for, the rotation waits a bounded time, then says why.
    let refused = tokio::time::timeout(std::time::Duration::from_secs(30), rotate(None))
        .await
        .expect("the rotation gives up");
    assert!(
        matches!(&refused, Err(KeyLifecycleError::Conflict(why)) if why.contains("in use")),
        "{refused:?}"
    );
    upload.commit().await.unwrap();
    let rotated = rotate(due)
        .await
        .unwrap()
        .expect("rotated once the key is free");
    assert_eq!(rotated.to_version, 2);

    // A scheduled rotation more than a day late waits for the key (a bounded time) instead of
    // giving way again, so an agency always uploading still rotates.
    let mut upload = TenantTx::begin(&db.pool, &a).await.unwrap();
    create_data_key(&mut upload, &db.pool, &db.keys)
        .await
        .unwrap();
    let late = Some(chrono::Duration::days(-2));
    let (rotated, ()) = tokio::join!(rotate(late), async {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        upload.commit().await.unwrap();
    });
    let rotated = rotated
        .unwrap()
        .expect("the late rotation waited for the key");
    assert_eq!(rotated.to_version, 3);
}

/// A data key another transaction holds when a re-wrap batch passes is taken on a later step: the
/// job does not end early counting it as unreadable (which would block revoking the old version,
/// or lose the key to a forced revocation).
#[tokio::test]
async fn a_data_key_held_elsewhere_is_rewrapped_later_not_counted_unreadable() {
    let db = TestDb::new().await;
    let a = db.onboard("held-pd").await;
    let made = data_keys(&db, &a, 3).await;
    writ_agency_keys::rotate(
        &db.pool,
        &db.keys,
        &a,
        writ_keys::KeyPurpose::KeyEncryption,
        &writ_audit_log::Caller::system(),
        None,
    )
    .await
    .unwrap()
    .unwrap();
    let mut holder = TenantTx::begin(&db.pool, &a).await.unwrap();
    sqlx::query("SELECT id FROM data_keys WHERE id = $1 FOR UPDATE")
        .bind(made[0].0)
        .fetch_one(holder.conn())
        .await
        .unwrap();
    let job = writ_agency_keys::rewrap_step(&db.pool, &db.keys, &a, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (job.status.as_str(), job.done, job.failed),
        ("running", 2, 0)
    );
    holder.rollback().await.unwrap();
    let job = writ_agency_keys::rewrap_step(&db.pool, &db.keys, &a, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.status.as_str(), job.done, job.failed), ("done", 3, 0));
    assert_eq!(kek_versions(&db, &a).await, vec![2; 3]);
    for (id, plain) in &made {
        assert_eq!(&open(&db, &a, *id).await.unwrap(), plain);
    }
}

/// Rotating both keys is two rotations: when the signing key's fails after the key-encryption
/// key's went through, the problem says what did rotate, and asking again for the signing key
/// alone leaves the key-encryption key at the version it reached.
#[tokio::test]
async fn a_rotation_of_both_keys_that_fails_halfway_says_what_rotated() {
    let db = TestDb::new().await;
    let agency = db.onboard("half-pd").await;
    let admin = seed_user(&db, &agency, "half.admin", Role::AgencyAdmin).await;
    let server = TestServer::start(&db);
    let token = server.token(&admin).await;
    server.step_up(&admin, &token).await;

    // The database refuses to record a new signing version (and nothing else).
    writ_testkit::refuse_key_versions(&db, "signing").await;
    let (s, p) = server
        .call("POST", "/v1/keys/rotate", &token, Some(json!({})))
        .await;
    assert!(s >= 500, "{s} {p}");
    let rotated = p["rotated"].as_array().expect("what rotated").clone();
    assert_eq!(rotated.len(), 1, "{p}");
    assert_eq!(rotated[0]["purpose"], "kek", "{p}");
    assert_eq!(rotated[0]["toVersion"], 2, "{p}");
    assert_eq!(kek_count(&db, &agency).await, 2);

    writ_testkit::accept_key_versions(&db).await;
    let (s, again) = server
        .call(
            "POST",
            "/v1/keys/rotate",
            &token,
            Some(json!({ "purpose": "signing" })),
        )
        .await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again[0]["purpose"], "signing", "{again}");
    assert_eq!(again[0]["toVersion"], 2, "{again}");
    assert_eq!(kek_count(&db, &agency).await, 2);
    // Both failed and completed rotations are on the agency's record.
    let tried = writ_testkit::audit::entries_with_action(&db, &agency, "key.rotation").await;
    let outcomes: Vec<_> = tried
        .iter()
        .map(|e| (e["resource"]["keyPurpose"].clone(), e["outcome"].clone()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (json!("kek"), json!("success")),
            (json!("signing"), json!("failure")),
            (json!("signing"), json!("success")),
        ],
        "{tried:?}"
    );
}

async fn kek_count(db: &TestDb, agency: &Agency) -> usize {
    writ_tenancy::agency_keys(&db.pool, agency.id, writ_keys::KeyPurpose::KeyEncryption)
        .await
        .unwrap()
        .len()
}
