//! Audit retention: a per-agency policy never under 365 days, pruning below a signed minimum
//! index after which every remaining proof still verifies (live, through `writ audit verify` and
//! offline with `writ-verify`), legal holds that block pruning, and pruning as an audited event.
//! Time is controlled by pruning "as of" a date a year or more ahead, never by faking timestamps.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::Row;
use writ_audit_chain::{MinimumIndex, NoteSignature, SignedNote, signing_digest};
use writ_audit_log::{
    Caller, PruneMode, PruneReport, RetentionError, place_legal_hold, prune_agency,
    release_legal_hold,
};
use writ_auth_mfa::Role;
use writ_keys::KeyPurpose;
use writ_tenancy::{Agency, TenantTx};
use writ_testkit::{
    TestDb, TestServer, as_attacker, audit_actions, audit_seqs, seed_user, sequence, sqlstate,
    superuser_error, text, writ_verify_bundle, write_agency_pem, write_events,
};

async fn checkpoint(db: &TestDb, agency: &Agency) {
    writ_audit_log::checkpoint_agency(&db.pool, &db.keys, agency, Duration::ZERO, true)
        .await
        .unwrap()
        .expect("checkpoint signed");
}

/// A moment strictly between the entries written before and after it.
async fn boundary() -> DateTime<Utc> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let t = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    t
}

fn days(n: i64) -> chrono::Duration {
    chrono::Duration::days(n)
}

async fn prune(db: &TestDb, agency: &Agency, as_of: DateTime<Utc>) -> PruneReport {
    prune_agency(&db.pool, &db.keys, agency, as_of, PruneMode::Prune)
        .await
        .unwrap()
}

/// Signs `body` with the agency's current audit key, as the server does, into a note.
async fn sign_as_agency(db: &TestDb, agency: &Agency, body: String) -> String {
    let record = writ_tenancy::agency_keys(&db.pool, agency.id, KeyPurpose::Signing)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.valid_to.is_none())
        .unwrap();
    let vkey = writ_audit_log::verifier_keys(&db.pool, agency.id)
        .await
        .unwrap()
        .remove(0);
    let sig = db
        .keys
        .sign_digest(agency.id, &record.key, &signing_digest(body.as_bytes()))
        .await
        .unwrap();
    SignedNote::assemble(
        body,
        vec![NoteSignature {
            key_name: writ_audit_log::origin(agency.id),
            key_id: vkey.key_id(),
            sig_bytes: sig.as_bytes().to_vec(),
        }],
    )
    .unwrap()
    .to_text()
}

/// Ten entries due for pruning a year from now, then ten that are not: pruning as of a year
/// after the boundary leaves seq 11 on.
async fn pruned_agency(db: &TestDb) -> (Agency, DateTime<Utc>) {
    let a = db.onboard("agency-a").await;
    write_events(db, &a, 5, "old").await;
    checkpoint(db, &a).await;
    write_events(db, &a, 5, "old").await;
    checkpoint(db, &a).await;
    let t = boundary().await;
    write_events(db, &a, 10, "new").await;
    checkpoint(db, &a).await;
    let report = prune(db, &a, t + days(365)).await;
    assert_eq!(
        (report.pruned, report.minimum_index, report.tree_size),
        (10, 11, 20),
        "{report:?}"
    );
    sequence(db, &a).await;
    (a, t)
}

#[tokio::test]
async fn entries_past_retention_are_pruned_and_every_remaining_proof_still_verifies() {
    let db = TestDb::new().await;
    let (a, t) = pruned_agency(&db).await;
    assert_eq!(audit_seqs(&db, &a).await, (11..=21).collect::<Vec<i64>>());

    // The pruning is itself in the chain, with what it did.
    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    let row = sqlx::query("SELECT action, entry FROM audit_log WHERE seq = 21")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>("action"), "audit.pruned");
    let entry: Value = serde_json::from_str(&row.get::<String, _>("entry")).unwrap();
    assert_eq!(entry["detail"]["count"], 10);
    assert_eq!(entry["detail"]["minimumIndex"], 11);
    assert_eq!(entry["detail"]["retentionDays"], 365);
    assert_eq!(entry["actor"]["role"], "system");

    // Every inclusion proof of a remaining entry, and every consistency proof (from the pruned
    // range too), against every tree size.
    for size in 11..=21u64 {
        for seq in 11..=size {
            let p = writ_audit_log::inclusion_proof(&mut tx, seq, size)
                .await
                .unwrap();
            p.verify()
                .unwrap_or_else(|e| panic!("inclusion {seq}/{size}: {e}"));
        }
    }
    for to in 1..=21u64 {
        for from in 1..=to {
            let p = writ_audit_log::consistency_proof(&mut tx, from, to)
                .await
                .unwrap();
            p.verify()
                .unwrap_or_else(|e| panic!("consistency {from}->{to}: {e}"));
        }
    }
    assert!(
        writ_audit_log::inclusion_proof(&mut tx, 5, 21)
            .await
            .is_err(),
        "a pruned entry has no inclusion proof"
    );
    // The checkpoints signed before the pruning still match the stored tree.
    for (size, root) in sqlx::query("SELECT tree_size, root FROM audit_checkpoints")
        .fetch_all(tx.conn())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<i64, _>(0) as u64, r.get::<Vec<u8>, _>(1)))
    {
        let now = writ_audit_log::root_at(&mut tx, size).await.unwrap();
        assert_eq!(now.0.to_vec(), root, "checkpoint at {size}");
    }
    tx.rollback().await.unwrap();

    let live = writ_audit_log::verify_live(&db.pool, &a).await.unwrap();
    assert!(live.is_valid(), "{:?}", live.failure);
    assert_eq!((live.entries, live.minimum_index), (11, Some(11)));
    let out = db.writ(&["audit", "verify", "--agency", "agency-a"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("starts at the signed minimum index, seq 11"),
        "{}",
        text(&out)
    );

    // Nothing more is due a year after the boundary; a dry run later says what would go, and
    // deletes nothing.
    assert_eq!(prune(&db, &a, t + days(365)).await.pruned, 0);
    let dry = prune_agency(
        &db.pool,
        &db.keys,
        &a,
        Utc::now() + days(366),
        PruneMode::DryRun,
    )
    .await
    .unwrap();
    assert_eq!((dry.pruned, dry.minimum_index), (10, 21), "{dry:?}");
    assert!(dry.statement.is_none() && dry.event_id.is_none());
    assert_eq!(audit_seqs(&db, &a).await.first(), Some(&11));

    // A second pruning moves the minimum index on; both statements keep verifying.
    let again = prune(&db, &a, Utc::now() + days(366)).await;
    assert_eq!(
        (again.previous_minimum_index, again.minimum_index),
        (11, 21)
    );
    sequence(&db, &a).await;
    assert_eq!(audit_seqs(&db, &a).await, vec![21, 22]);
    let live = writ_audit_log::verify_live(&db.pool, &a).await.unwrap();
    assert!(live.is_valid(), "{:?}", live.failure);
    assert_eq!(live.minimum_index, Some(21));
    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    for from in 1..=22u64 {
        let p = writ_audit_log::consistency_proof(&mut tx, from, 22)
            .await
            .unwrap();
        p.verify()
            .unwrap_or_else(|e| panic!("consistency {from}->22: {e}"));
    }
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn exports_of_a_pruned_log_verify_offline_and_start_at_the_minimum_index() {
    let db = TestDb::new().await;
    let (a, _) = pruned_agency(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let pem = write_agency_pem(&db, &a, dir.path()).await;

    let tgz = dir.path().join("export.tar.gz");
    let out = db.writ(&[
        "audit",
        "export",
        "--agency",
        "agency-a",
        "--out",
        tgz.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let ok = writ_verify_bundle(&tgz, &pem);
    assert!(ok.status.success(), "{}", text(&ok));
    for expected in [
        "Results requested for seq 1 to the latest entry",
        // 11..=20 and the pruning (21); the export's own entry follows it.
        "Results found for seq 11 to 21:",
        "11/11 entries valid",
        "Minimum index: seq 11 (entries before it pruned)",
        "Minimum-index signature: valid",
        "All checks passed.",
    ] {
        assert!(
            text(&ok).contains(expected),
            "{expected:?} in {}",
            text(&ok)
        );
    }

    // Asked from inside the pruned range: starts at the minimum index. Asked entirely inside
    // it: nothing to export.
    let part = dir.path().join("part");
    let out = db.writ(&[
        "audit",
        "export",
        "--agency",
        "agency-a",
        "--out",
        part.to_str().unwrap(),
        "--from-seq",
        "4",
        "--to-seq",
        "15",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let ok = writ_verify_bundle(&part, &pem);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        text(&ok).contains("Results found for seq 11 to 15:"),
        "{}",
        text(&ok)
    );
    let none = dir.path().join("none");
    let out = db.writ(&[
        "audit",
        "export",
        "--agency",
        "agency-a",
        "--out",
        none.to_str().unwrap(),
        "--to-seq",
        "9",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("pruned"), "{}", text(&out));

    // The statement edited in the bundle: both signatures over it fail.
    for file in ["minimum-index", "certificate.json"] {
        let path = part.join(file);
        let body = std::fs::read_to_string(&path).unwrap();
        assert!(body.contains("minimum-index 11"), "{file}");
        std::fs::write(&path, body.replace("minimum-index 11", "minimum-index 12")).unwrap();
    }
    let bad = writ_verify_bundle(&part, &pem);
    assert!(!bad.status.success(), "{}", text(&bad));
    assert!(
        text(&bad).contains("Minimum-index signature: INVALID"),
        "{}",
        text(&bad)
    );
    assert!(
        text(&bad).contains("Certificate signature: INVALID"),
        "{}",
        text(&bad)
    );

    // The statement dropped from a (re-signed) certificate: the head is missing, at seq 1.
    let cut = dir.path().join("cut");
    let out = db.writ(&[
        "audit",
        "export",
        "--agency",
        "agency-a",
        "--out",
        cut.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let cert_path = cut.join("certificate.json");
    let mut cert =
        writ_audit_chain::Certificate::from_json(&std::fs::read(&cert_path).unwrap()).unwrap();
    cert.minimum_index = None;
    let cert = resign_certificate(&db, &a, cert).await;
    std::fs::write(&cert_path, cert.to_json()).unwrap();
    std::fs::remove_file(cut.join("minimum-index")).unwrap();
    let bad = writ_verify_bundle(&cut, &pem);
    assert!(!bad.status.success(), "{}", text(&bad));
    assert!(text(&bad).contains("head truncated"), "{}", text(&bad));
    assert!(text(&bad).contains("first bad seq 1"), "{}", text(&bad));
}

/// Re-signs a certificate with the agency's current key: a server that signs whatever it is
/// given, so only the format's own checks stand between it and the auditor.
async fn resign_certificate(
    db: &TestDb,
    agency: &Agency,
    cert: writ_audit_chain::Certificate,
) -> writ_audit_chain::Certificate {
    let record = writ_tenancy::agency_keys(&db.pool, agency.id, KeyPurpose::Signing)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.valid_to.is_none())
        .unwrap();
    let key_id = cert.signature.as_ref().unwrap().key_id;
    let mut unsigned = cert;
    unsigned.signature = None;
    let sig = db
        .keys
        .sign_digest(agency.id, &record.key, &unsigned.signing_digest().unwrap())
        .await
        .unwrap();
    unsigned.with_signature(key_id, sig.as_bytes()).unwrap()
}

#[tokio::test]
async fn a_tampered_minimum_index_statement_is_detected_live_and_offline() {
    // Wrong signature: the stored statement edited.
    let db = TestDb::new().await;
    let (a, _) = pruned_agency(&db).await;
    let q = a.ident.quoted();
    as_attacker(
        &db,
        &format!(
            "UPDATE {q}.audit_minimum_index SET note = replace(note, 'minimum-index 11', 'minimum-index 12'), minimum_index = 12"
        ),
    )
    .await;
    let live = writ_audit_log::verify_live(&db.pool, &a).await.unwrap();
    let (_, reason) = live.failure.expect("tampering found");
    assert!(reason.contains("minimum index 12: signature"), "{reason}");
    let out = db.writ(&["audit", "verify", "--agency", "agency-a"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("minimum index"), "{}", text(&out));

    // Wrong prevHash, yet signed by the agency key: the chain does not continue from it.
    let db = TestDb::new().await;
    let (a, _) = pruned_agency(&db).await;
    let q = a.ident.quoted();
    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    let stored = writ_audit_log::latest_minimum_index(&mut tx)
        .await
        .unwrap()
        .unwrap();
    tx.rollback().await.unwrap();
    let mut statement = SignedNote::parse(&stored.note)
        .unwrap()
        .minimum_index()
        .unwrap();
    statement.prev_hash = writ_audit_chain::Hash::of(b"not entry 10");
    let note = sign_as_agency(&db, &a, statement.body()).await;
    as_attacker(
        &db,
        &format!(
            "UPDATE {q}.audit_minimum_index SET note = '{note}', prev_hash = '\\x{}'::bytea",
            statement.prev_hash.to_hex()
        ),
    )
    .await;
    let live = writ_audit_log::verify_live(&db.pool, &a).await.unwrap();
    let (seq, reason) = live.failure.expect("tampering found");
    assert_eq!(seq, Some(11), "{reason}");
    assert!(reason.contains("prevHash"), "{reason}");
    // The server will not certify it either.
    let dir = tempfile::tempdir().unwrap();
    let out = db.writ(&[
        "audit",
        "export",
        "--agency",
        "agency-a",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "{}", text(&out));

    // Offline: a bundle whose (agency-signed) certificate carries that statement.
    let db2 = TestDb::new().await;
    let (b, _) = pruned_agency(&db2).await;
    let dir = tempfile::tempdir().unwrap();
    let pem = write_agency_pem(&db2, &b, dir.path()).await;
    let bundle = dir.path().join("bundle");
    let out = db2.writ(&[
        "audit",
        "export",
        "--agency",
        "agency-a",
        "--out",
        bundle.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let cert_path = bundle.join("certificate.json");
    let mut cert =
        writ_audit_chain::Certificate::from_json(&std::fs::read(&cert_path).unwrap()).unwrap();
    let mut statement: MinimumIndex = SignedNote::parse(cert.minimum_index.as_deref().unwrap())
        .unwrap()
        .minimum_index()
        .unwrap();
    statement.prev_hash = writ_audit_chain::Hash::of(b"not entry 10");
    let forged = sign_as_agency(&db2, &b, statement.body()).await;
    cert.minimum_index = Some(forged.clone());
    let cert = resign_certificate(&db2, &b, cert).await;
    std::fs::write(&cert_path, cert.to_json()).unwrap();
    std::fs::write(bundle.join("minimum-index"), &forged).unwrap();
    let bad = writ_verify_bundle(&bundle, &pem);
    assert!(!bad.status.success(), "{}", text(&bad));
    assert!(
        text(&bad).contains("seq 11: minimum index: entry 11 has prevHash"),
        "{}",
        text(&bad)
    );
}

#[tokio::test]
async fn a_log_cut_at_the_head_without_a_statement_fails_at_seq_1() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    write_events(&db, &a, 6, "w").await;
    checkpoint(&db, &a).await;
    let q = a.ident.quoted();
    as_attacker(&db, &format!("DELETE FROM {q}.audit_log WHERE seq < 4")).await;
    let live = writ_audit_log::verify_live(&db.pool, &a).await.unwrap();
    let (seq, reason) = live.failure.expect("a cut head is found");
    assert_eq!(seq, Some(1), "{reason}");
}

#[tokio::test]
async fn deletes_are_refused_at_or_above_the_minimum_index_and_under_a_legal_hold() {
    let db = TestDb::new().await;
    let (a, _) = pruned_agency(&db).await;
    let q = a.ident.quoted();
    // The superuser, triggers on.
    for stmt in [
        format!("DELETE FROM {q}.audit_log WHERE seq = 11"),
        format!("DELETE FROM {q}.audit_log WHERE seq >= 11"),
        format!("DELETE FROM {q}.audit_log"),
        format!("UPDATE {q}.audit_log SET action = 'x' WHERE seq = 12"),
        format!("TRUNCATE {q}.audit_log"),
        format!("DELETE FROM {q}.audit_merkle_nodes WHERE idx < 10"),
        format!("DELETE FROM {q}.audit_minimum_index"),
        format!("UPDATE {q}.audit_minimum_index SET minimum_index = 2"),
    ] {
        let err = superuser_error(&db, &stmt).await;
        assert!(err.to_string().contains("append-only"), "{stmt}: {err}");
    }
    let lower = format!(
        "INSERT INTO {q}.audit_minimum_index (agency_id, minimum_index, prev_hash, tree_size, root, note, signed_at, pruned, retention_days) \
         SELECT agency_id, 5, prev_hash, tree_size, root, note, now(), 0, 365 FROM {q}.audit_minimum_index"
    );
    let err = superuser_error(&db, &lower).await;
    assert!(err.to_string().contains("never goes down"), "{err}");
    assert_eq!(audit_seqs(&db, &a).await.len(), 11);

    // The agency role has no DELETE privilege at all, and may not write statements.
    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    let err = sqlx::query("DELETE FROM audit_log WHERE seq < 11")
        .execute(tx.conn())
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("42501"));
    drop(tx);
    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    let err = sqlx::query(
        "INSERT INTO audit_minimum_index (minimum_index, prev_hash, tree_size, root, note, signed_at, pruned, retention_days) \
         VALUES (20, '\\x00', 21, '\\x00', '', now(), 0, 365)",
    )
    .execute(tx.conn())
    .await
    .unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("42501"));
    drop(tx);

    // Under a legal hold even entries below a minimum index stay: the database says so too.
    let b = db.onboard("agency-b").await;
    write_events(&db, &b, 4, "w").await;
    let admin = seed_user(&db, &b, "hold.admin", Role::AgencyAdmin).await;
    let mut tx = TenantTx::begin(&db.pool, &b).await.unwrap();
    place_legal_hold(
        &mut tx,
        &Caller::user(admin.id, "agency_admin", Some(b.id), None, None),
        "grand jury subpoena 26-114",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let qb = b.ident.quoted();
    as_attacker(
        &db,
        &format!(
            "INSERT INTO {qb}.audit_minimum_index (agency_id, minimum_index, prev_hash, tree_size, root, note, signed_at, pruned, retention_days) \
             VALUES ('{}', 3, '\\x00', 4, '\\x00', 'forged', now(), 2, 365)",
            b.id
        ),
    )
    .await;
    let err = superuser_error(&db, &format!("DELETE FROM {qb}.audit_log WHERE seq = 1")).await;
    assert!(err.to_string().contains("legal hold"), "{err}");
    // A hold is released, never deleted or edited.
    for stmt in [
        format!("DELETE FROM {qb}.audit_legal_holds"),
        format!("UPDATE {qb}.audit_legal_holds SET reason = 'nothing'"),
    ] {
        let err = superuser_error(&db, &stmt).await;
        assert!(
            err.to_string().contains("append-only") || err.to_string().contains("released"),
            "{stmt}: {err}"
        );
    }
}

#[tokio::test]
async fn a_legal_hold_blocks_pruning_until_it_is_released() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    let admin = seed_user(&db, &a, "hold.admin", Role::AgencyAdmin).await;
    write_events(&db, &a, 6, "old").await;
    let t = boundary().await;
    write_events(&db, &a, 2, "new").await;
    let actor = Caller::user(admin.id, "agency_admin", Some(a.id), None, None);
    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    let hold = place_legal_hold(&mut tx, &actor, "litigation hold: Doe v. County")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let before = audit_seqs(&db, &a).await;

    let err = prune_agency(&db.pool, &db.keys, &a, t + days(365), PruneMode::Prune)
        .await
        .unwrap_err();
    assert!(matches!(err, RetentionError::LegalHold(1)), "{err}");
    let out = db.writ(&["audit", "prune", "--agency", "agency-a"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("legal hold"), "{}", text(&out));
    sequence(&db, &a).await;
    assert_eq!(
        audit_seqs(&db, &a).await.first(),
        before.first(),
        "nothing pruned"
    );
    let statements: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {}.audit_minimum_index",
        a.ident.quoted()
    )))
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(statements, 0);
    assert!(
        !audit_actions(&db, &a)
            .await
            .contains(&"audit.pruned".to_owned())
    );

    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    let released = release_legal_hold(&mut tx, &actor, hold.id).await.unwrap();
    tx.commit().await.unwrap();
    assert!(!released.is_active());
    let report = prune(&db, &a, t + days(365)).await;
    assert!(report.pruned >= 6, "{report:?}");
    sequence(&db, &a).await;
    let actions = audit_actions(&db, &a).await;
    assert_eq!(actions.last().map(String::as_str), Some("audit.pruned"));
    for expected in ["audit.legal_hold.placed", "audit.legal_hold.released"] {
        assert!(actions.iter().any(|x| x == expected), "{actions:?}");
    }
    let live = writ_audit_log::verify_live(&db.pool, &a).await.unwrap();
    assert!(live.is_valid(), "{:?}", live.failure);

    // The CLI prunes as of now: nothing is a year old yet.
    let out = db.writ(&["audit", "prune", "--agency", "agency-a", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nothing to prune"), "{}", text(&out));
}

#[tokio::test]
async fn retention_policy_and_legal_holds_over_http() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    let admin = seed_user(&db, &a, "ret.admin", Role::AgencyAdmin).await;
    let officer = seed_user(&db, &a, "ret.officer", Role::Officer).await;
    let auditor = seed_user(&db, &a, "ret.auditor", Role::Auditor).await;
    let server = TestServer::start(&db);
    let (admin_t, officer_t, auditor_t) = (
        server.token(&admin).await,
        server.token(&officer).await,
        server.token(&auditor).await,
    );

    // Retention: at least 365 days, as {"days": N}; a security policy, so changed after step-up.
    server.step_up(&admin, &admin_t).await;
    for bad in [
        json!({ "days": 364 }),
        json!({ "days": 0 }),
        json!({ "days": "400" }),
        json!({ "days": 400.5 }),
        json!(400),
        json!({ "days": 400, "extra": 1 }),
    ] {
        let (status, body) = server
            .call(
                "PUT",
                "/v1/policies/audit.retention",
                &admin_t,
                Some(json!({ "value": bad })),
            )
            .await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["type"], "urn:writ:problem:validation", "{body}");
    }
    let (status, body) = server
        .call(
            "PUT",
            "/v1/policies/audit.retention",
            &admin_t,
            Some(json!({ "value": { "days": 400 } })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The database refuses a shorter period whoever writes it.
    let err = superuser_error(
        &db,
        &format!(
            "UPDATE {}.policies SET value = '{{\"days\": 30}}' WHERE name = 'audit.retention'",
            a.ident.quoted()
        ),
    )
    .await;
    assert!(
        err.to_string().contains("policies_audit_retention_min"),
        "{err}"
    );
    // 400 days: a year and a day after now, nothing is due yet.
    write_events(&db, &a, 3, "w").await;
    let report = prune(&db, &a, Utc::now() + days(366)).await;
    assert_eq!((report.retention_days, report.pruned), (400, 0));

    // Holds: officers may not place them, auditors may read them, admins place and release.
    let (status, body) = server
        .call(
            "POST",
            "/v1/audit/legal-holds",
            &officer_t,
            Some(json!({ "reason": "officer tries" })),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = server
        .call(
            "POST",
            "/v1/audit/legal-holds",
            &auditor_t,
            Some(json!({ "reason": "auditor tries" })),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = server
        .call(
            "POST",
            "/v1/audit/legal-holds",
            &admin_t,
            Some(json!({ "reason": "  " })),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, hold) = server
        .call(
            "POST",
            "/v1/audit/legal-holds",
            &admin_t,
            Some(json!({ "reason": "preservation order 26-CV-0042" })),
        )
        .await;
    assert_eq!(status, 201, "{hold}");
    assert_eq!(hold["active"], true);
    assert_eq!(hold["placedBy"], admin.id.to_string());
    let id = hold["id"].as_str().unwrap().to_owned();

    let (status, list) = server
        .call("GET", "/v1/audit/legal-holds", &auditor_t, None)
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["reason"], "preservation order 26-CV-0042");
    let (status, _) = server
        .call("GET", "/v1/audit/legal-holds", &officer_t, None)
        .await;
    assert_eq!(status, 403);

    let err = prune_agency(
        &db.pool,
        &db.keys,
        &a,
        Utc::now() + days(5000),
        PruneMode::Prune,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RetentionError::LegalHold(1)), "{err}");

    let release = format!("/v1/audit/legal-holds/{id}/release");
    let (status, _) = server.call("POST", &release, &officer_t, None).await;
    assert_eq!(status, 403);
    // Releasing re-enables deletion: a fresh TOTP (step-up) is required, in a new session too.
    let admin_t = server.token(&admin).await;
    let (status, body) = server.call("POST", &release, &admin_t, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["type"], "urn:writ:problem:step-up-required", "{body}");
    server.step_up(&admin, &admin_t).await;
    let (status, body) = server.call("POST", &release, &admin_t, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], false);
    assert_eq!(body["releasedBy"], admin.id.to_string());
    let (status, body) = server.call("POST", &release, &admin_t, None).await;
    assert_eq!(status, 409, "{body}");
    let missing = format!("/v1/audit/legal-holds/{}/release", uuid::Uuid::new_v4());
    let (status, _) = server.call("POST", &missing, &admin_t, None).await;
    assert_eq!(status, 404);

    let actions = audit_actions(&db, &a).await;
    for expected in [
        "admin.policy.changed",
        "audit.legal_hold.placed",
        "audit.legal_hold.released",
        "authz.denied",
    ] {
        assert!(
            actions.iter().any(|x| x == expected),
            "{expected}: {actions:?}"
        );
    }
    let report = prune(&db, &a, Utc::now() + days(5000)).await;
    assert!(report.pruned > 0, "{report:?}");
    sequence(&db, &a).await;
    assert_eq!(
        audit_actions(&db, &a).await.last().map(String::as_str),
        Some("audit.pruned")
    );
}
