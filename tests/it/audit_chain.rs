//! The audit chain in PostgreSQL: exactly-once recording with the business change, contiguous
//! sequencing under concurrency across server processes, append-only storage, signed checkpoints,
//! proofs from stored nodes, tamper detection on the live database, exports that verify
//! offline, and pending rows that cannot be chained set aside without stopping the chain.

use std::process::Command;
use std::time::{Duration, Instant};

use writ_audit_chain::{InclusionProof, SignedNote, verify_note};
use writ_audit_log::{Actor, Event, record};
use writ_tenancy::TenantTx;
use writ_testkit::{
    TestDb, TestServer, as_attacker, audit_seqs, ok, sqlstate, superuser_error, text,
    writ_verify_bundle, write_agency_pem, write_events,
};

#[tokio::test]
async fn a_failed_business_transaction_leaves_no_entry_and_no_gap() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    let lost = record(&mut tx, &Event::new("warrant.created", Actor::system()))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    let kept = record(&mut tx, &Event::new("warrant.submitted", Actor::system()))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let receipt = writ_audit_log::receipt(&db.pool, a.id, &a.ident, kept)
        .await
        .unwrap();
    assert_eq!(
        receipt.seq, 1,
        "no gap where the rolled-back event would have been"
    );
    assert!(
        writ_audit_log::receipt(&db.pool, a.id, &a.ident, lost)
            .await
            .is_err()
    );
    assert_eq!(audit_seqs(&db, &a).await, vec![1]);
}

#[tokio::test]
async fn a_commit_wakes_its_own_sequencer_and_only_others_notify_through_the_database() {
    let db = TestDb::new().await;
    let (a, b) = (db.onboard("agency-a").await, db.onboard("agency-b").await);
    let mut listener = sqlx::postgres::PgListener::connect(&db.url).await.unwrap();
    listener.listen("writ_audit_pending").await.unwrap();
    let wake = writ_tenancy::CommitWake::new();
    let sequencer = wake.listen();

    // A transaction of a process whose sequencer listens: woken directly, nothing notified.
    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    tx.wake_on_commit(&wake);
    record(&mut tx, &Event::new("warrant.created", Actor::system()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(sequencer.woken().await, vec![a.id]);

    // Rolled back, or with nothing appended: no wake-up.
    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    tx.wake_on_commit(&wake);
    record(&mut tx, &Event::new("warrant.created", Actor::system()))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    tx.wake_on_commit(&wake);
    tx.commit().await.unwrap();

    // Without a listening sequencer (another process, the command line): notified at commit.
    drop(sequencer);
    let mut tx = TenantTx::begin(&db.pool, &b).await.unwrap();
    tx.wake_on_commit(&wake);
    record(&mut tx, &Event::new("warrant.created", Actor::system()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Notifications arrive in commit order: agency A's commit, had it notified, would be first.
    let first = tokio::time::timeout(Duration::from_secs(30), listener.recv())
        .await
        .expect("a notification")
        .unwrap();
    assert_eq!(first.payload(), b.id.to_string());

    // A new listener sees the rolled-back and empty transactions' wake-ups never came.
    let sequencer = wake.listen();
    wake.wake(b.id);
    assert_eq!(sequencer.woken().await, vec![b.id]);
    // Both committed events are sequenced by whoever runs a pass.
    writ_audit_log::sequence_agency(&db.pool, a.id, &a.ident)
        .await
        .unwrap();
    writ_audit_log::sequence_agency(&db.pool, b.id, &b.ident)
        .await
        .unwrap();
    assert_eq!(audit_seqs(&db, &a).await, vec![1]);
    assert_eq!(audit_seqs(&db, &b).await, vec![1]);
}

#[tokio::test]
async fn the_sequencers_listener_takes_no_connection_from_the_requests_pool() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    // A pool of one connection, as a server's busiest moment leaves it.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&db.url)
        .await
        .unwrap();
    let config = writ_audit_log::BackgroundConfig {
        sweep_interval: Duration::from_secs(3600),
        ..Default::default()
    };
    let sequencer = tokio::spawn(writ_audit_log::run_sequencer(
        pool.clone(),
        writ_audit_log::listener_pool(&pool),
        config,
        None,
    ));
    // The listener is up once PostgreSQL shows its LISTEN.
    let started = Instant::now();
    loop {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND query LIKE 'LISTEN %writ_audit_pending%'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        if listening > 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no listener");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The pool's one connection is still the requests': taken and given back at once.
    let conn = pool.acquire().await.expect("the pool's connection is free");
    drop(conn);
    // And the listener still wakes the sequencer: an event appended elsewhere, which notifies
    // (no local sequencer), is sequenced long before the hour-long sweep.
    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    record(&mut tx, &Event::new("warrant.created", Actor::system()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let started = Instant::now();
    while audit_seqs(&db, &a).await.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(30), "not sequenced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sequencer.abort();
}

#[tokio::test]
async fn concurrent_writers_across_two_servers_keep_the_chain_contiguous() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    // Two server processes, each running its own sequencer against the same agency.
    let _s1 = TestServer::start(&db);
    let _s2 = TestServer::start(&db);
    // Each records its start in the chain first.
    let deadline = Instant::now() + Duration::from_secs(30);
    while audit_seqs(&db, &a).await.len() < 2 {
        assert!(Instant::now() < deadline, "the starts were not sequenced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        writ_testkit::audit_actions(&db, &a).await,
        ["system.start", "system.start"]
    );
    const WRITERS: usize = 64;
    const EACH: usize = 15;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(64)
        .connect(&db.url)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let pool = pool.clone();
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = 0;
            for i in 0..EACH {
                let mut tx = TenantTx::begin(&pool, &a).await.unwrap();
                let event = Event::new("warrant.created", Actor::system())
                    .resource("warrantId", format!("{w}-{i}"));
                record(&mut tx, &event).await.unwrap();
                tx.commit().await.unwrap();
                acked += 1;
            }
            acked
        }));
    }
    let mut acked = 2;
    for t in tasks {
        acked += t.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if audit_seqs(&db, &a).await.len() == acked {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "servers did not sequence every event"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = audit_seqs(&db, &a).await;
    assert_eq!(
        got,
        (1..=acked as i64).collect::<Vec<_>>(),
        "seq must be contiguous from 1"
    );
    let report = writ_audit_log::verify_live(&db.pool, &a).await.unwrap();
    assert!(report.is_valid(), "{:?}", report.failure);
    assert_eq!(report.entries, acked as u64);
}

#[tokio::test]
async fn the_log_is_append_only_for_the_agency_role_and_for_superusers() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    write_events(&db, &a, 3, "w").await;
    writ_audit_log::checkpoint_agency(&db.pool, &db.keys, &a, Duration::ZERO, true)
        .await
        .unwrap();
    for stmt in [
        "UPDATE audit_log SET action = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
        let err = sqlx::query(sqlx::AssertSqlSafe(stmt))
            .execute(tx.conn())
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&err).as_deref(), Some("42501"), "{stmt}: {err}");
    }
    let q = a.ident.quoted();
    for stmt in [
        format!("UPDATE {q}.audit_log SET action = 'x'"),
        format!("DELETE FROM {q}.audit_log"),
        format!("TRUNCATE {q}.audit_log"),
        format!("DELETE FROM {q}.audit_merkle_nodes"),
        format!("UPDATE {q}.audit_checkpoints SET note = ''"),
    ] {
        let err = superuser_error(&db, &stmt).await;
        assert!(err.to_string().contains("append-only"), "{stmt}: {err}");
    }
    assert_eq!(audit_seqs(&db, &a).await.len(), 3);
}

#[tokio::test]
async fn proofs_from_stored_nodes_verify_for_every_size() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    write_events(&db, &a, 33, "w").await;
    let mut tx = TenantTx::begin(&db.pool, &a).await.unwrap();
    for size in 1..=33u64 {
        let root = writ_audit_log::root_at(&mut tx, size).await.unwrap();
        for seq in 1..=size {
            let p = writ_audit_log::inclusion_proof(&mut tx, seq, size)
                .await
                .unwrap();
            assert_eq!(p.root_hash, root);
            p.verify()
                .unwrap_or_else(|e| panic!("inclusion {seq}/{size}: {e}"));
        }
        for from in 1..=size {
            let p = writ_audit_log::consistency_proof(&mut tx, from, size)
                .await
                .unwrap();
            p.verify()
                .unwrap_or_else(|e| panic!("consistency {from}->{size}: {e}"));
        }
    }
    assert!(
        writ_audit_log::inclusion_proof(&mut tx, 0, 5)
            .await
            .is_err()
    );
    assert!(
        writ_audit_log::inclusion_proof(&mut tx, 6, 5)
            .await
            .is_err()
    );
    assert!(
        writ_audit_log::inclusion_proof(&mut tx, 1, 34)
            .await
            .is_err()
    );
    // A proof for one entry does not pass for another's hash.
    let p: InclusionProof = writ_audit_log::inclusion_proof(&mut tx, 3, 33)
        .await
        .unwrap();
    let other = writ_audit_log::inclusion_proof(&mut tx, 4, 33)
        .await
        .unwrap();
    assert!(
        InclusionProof {
            leaf_hash: other.leaf_hash,
            ..p
        }
        .verify()
        .is_err()
    );
}

#[tokio::test]
async fn a_checkpoint_verifies_with_the_exported_pem_outside_writ() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    write_events(&db, &a, 5, "w").await;
    let checkpoint = ok(db.writ(&["audit", "checkpoint", "--agency", "agency-a"]));
    let note = SignedNote::parse(&checkpoint).unwrap();
    assert_eq!(note.checkpoint().unwrap().size, 5);
    let keys = writ_audit_log::verifier_keys(&db.pool, a.id).await.unwrap();
    verify_note(&note, &keys).unwrap();

    // openssl, knowing nothing of Writ: the signature line is key id (4 bytes) ‖ DER signature
    // over the note body.
    let dir = tempfile::tempdir().unwrap();
    let sig = &note.signatures()[0].sig_bytes;
    std::fs::write(dir.path().join("sig.der"), sig).unwrap();
    std::fs::write(dir.path().join("body"), note.body()).unwrap();
    std::fs::write(dir.path().join("key.pem"), keys[0].key().to_pem()).unwrap();
    let verified = Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "key.pem",
            "-signature",
            "sig.der",
            "body",
        ])
        .current_dir(dir.path())
        .output()
        .expect("openssl on PATH");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    std::fs::write(dir.path().join("body"), note.body().replace('5', "6")).unwrap();
    let bad = Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "key.pem",
            "-signature",
            "sig.der",
            "body",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[tokio::test]
async fn exports_verify_offline_whole_and_partial_and_tampering_is_caught() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    write_events(&db, &a, 12, "w").await;
    let dir = tempfile::tempdir().unwrap();
    let tgz = dir.path().join("export.tar.gz");
    ok(db.writ(&[
        "audit",
        "export",
        "--agency",
        "agency-a",
        "--out",
        tgz.to_str().unwrap(),
    ]));
    let pem = write_agency_pem(&db, &a, dir.path()).await;

    let report = ok(writ_verify_bundle(&tgz, &pem));
    // The 12 entries; the export's own entry (with its outcome) follows the export.
    assert!(report.contains("12/12"), "{report}");

    let part = dir.path().join("part");
    ok(db.writ(&[
        "audit",
        "export",
        "--agency",
        "agency-a",
        "--out",
        part.to_str().unwrap(),
        "--from-seq",
        "4",
        "--to-seq",
        "9",
    ]));
    ok(writ_verify_bundle(&part, &pem));

    let log = part.join("log.jsonl");
    let jsonl = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, jsonl.replacen("w-5", "w-X", 1)).unwrap();
    let bad = writ_verify_bundle(&part, &pem);
    assert!(!bad.status.success());
    let report = text(&bad);
    assert!(
        report.contains('6'),
        "first bad seq (entry w-5 is seq 6) named: {report}"
    );
}

/// Tampering done directly in the database (triggers bypassed by a superuser) is found by
/// `writ audit verify`, with the first bad seq.
#[tokio::test]
async fn live_tampering_is_detected_with_the_first_bad_seq() {
    type Tamper = fn(&str) -> String;
    let cases: &[(&str, Tamper, &str)] = &[
        (
            "edit a field",
            |q| {
                format!(
                    "UPDATE {q}.audit_log SET entry = replace(entry, 'w-4', 'w-9') WHERE seq = 5"
                )
            },
            "seq 5",
        ),
        (
            "delete an entry",
            |q| format!("DELETE FROM {q}.audit_log WHERE seq = 4"),
            "seq 4",
        ),
        (
            "swap two entries",
            |q| {
                format!(
                    "UPDATE {q}.audit_log SET entry = CASE seq WHEN 3 THEN (SELECT entry FROM {q}.audit_log WHERE seq = 6) \
             ELSE (SELECT entry FROM {q}.audit_log WHERE seq = 3) END WHERE seq IN (3, 6)"
                )
            },
            "seq 3",
        ),
        (
            "truncate the tail",
            |q| format!("DELETE FROM {q}.audit_log WHERE seq > 6"),
            "truncated",
        ),
        (
            "forge an entry",
            |q| {
                format!(
                    "INSERT INTO {q}.audit_log (agency_id, seq, id, ts, action, entry, hash, prev_hash) \
             SELECT agency_id, 9, gen_random_uuid(), ts, action, replace(entry, '\"seq\":8', '\"seq\":9'), \
                    '\\x00'::bytea || substring(hash from 2), '\\x01'::bytea || substring(prev_hash from 2) \
             FROM {q}.audit_log WHERE seq = 8"
                )
            },
            "seq 9",
        ),
        (
            "replace the public key",
            |_| {
                "UPDATE control.agency_keys SET public_key_pem = \
             (SELECT public_key_pem FROM control.agency_keys k2 WHERE k2.agency_id <> agency_keys.agency_id AND k2.purpose = 'signing' LIMIT 1) \
             WHERE purpose = 'signing' AND agency_id = (SELECT id FROM control.agencies WHERE slug = 'agency-a')".to_owned()
            },
            "signature",
        ),
    ];
    let mut exports_refused = 0;
    for (name, tamper, expect) in cases {
        let db = TestDb::new().await;
        let a = db.onboard("agency-a").await;
        db.onboard("agency-b").await;
        write_events(&db, &a, 8, "w").await;
        let out = db.writ(&["audit", "checkpoint", "--agency", "agency-a"]);
        assert!(out.status.success());
        let clean = db.writ(&["audit", "verify", "--agency", "agency-a"]);
        assert!(
            clean.status.success(),
            "{name}: clean chain must verify: {}",
            String::from_utf8_lossy(&clean.stdout)
        );

        as_attacker(&db, &tamper(&a.ident.quoted())).await;

        let out = db.writ(&["audit", "verify", "--agency", "agency-a"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success(),
            "{name}: tampering went unnoticed: {stdout}"
        );
        assert!(
            stdout.contains(expect),
            "{name}: expected {expect:?} in {stdout}"
        );

        // An export either certifies a verifying chain or fails leaving nothing behind (no
        // staging directory, no partial file).
        let out_dir = tempfile::tempdir().unwrap();
        let bundle = out_dir.path().join("a.tar.gz");
        let export = db.writ(&[
            "audit",
            "export",
            "--agency",
            "agency-a",
            "--out",
            bundle.to_str().unwrap(),
        ]);
        let left: Vec<_> = std::fs::read_dir(out_dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        if export.status.success() {
            assert_eq!(left, ["a.tar.gz"], "{name}");
        } else {
            exports_refused += 1;
            assert!(left.is_empty(), "{name}: {left:?}");
        }
    }
    assert!(exports_refused > 0, "no tampering stopped an export");
}

/// A pending row the sequencer cannot seal — too large for an entry, or not an event at all
/// (written before recording checked sizes, or by hand) — is set aside with a `system.error`
/// entry in its place, and the events after it are chained as usual: one bad row never stops an
/// agency's chain.
#[tokio::test]
async fn an_unsealable_pending_row_is_quarantined_and_the_chain_goes_on() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-q").await;
    write_events(&db, &a, 1, "before").await;
    let pending = format!("{}.audit_pending", a.ident.quoted());
    let huge = "x".repeat(1_100_000);
    let (not_an_event, too_large) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    as_attacker(
        &db,
        &format!(
            "INSERT INTO {pending} (agency_id, id, event) VALUES \
             ('{agency}', '{not_an_event}', '{{\"garbage\": true}}'), \
             ('{agency}', '{too_large}', jsonb_build_object('id', '{too_large}', \
               'timestamp', '2026-12-04T12:00:00.000Z', \
               'actor', jsonb_build_object('userId', null, 'role', 'system', 'agencyId', '{agency}'), \
               'action', 'auth.login', 'resource', '{{}}'::jsonb, 'outcome', 'failure', \
               'sourceIp', null, 'detail', jsonb_build_object('username', '{huge}')))",
            agency = a.id,
        ),
    )
    .await;
    write_events(&db, &a, 1, "after").await;

    let entries = writ_testkit::audit::entries(&db, &a).await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "warrant.created",
            "system.error",
            "system.error",
            "warrant.created"
        ]
    );
    let named: Vec<&str> = entries[1..3]
        .iter()
        .map(|e| e["resource"]["quarantinedEventId"].as_str().unwrap())
        .collect();
    assert_eq!(named, [not_an_event.to_string(), too_large.to_string()]);
    assert!(
        entries[2]["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("bytes"),
        "{}",
        entries[2]["detail"]
    );
    let kept: Vec<(uuid::Uuid, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, reason FROM {}.audit_quarantine ORDER BY recorded_at, id",
        a.ident.quoted()
    )))
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        kept.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [not_an_event, too_large]
    );
    let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {pending}"
    )))
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(left, 0);
    let report = writ_audit_log::verify_live(&db.pool, &a).await.unwrap();
    assert!(report.is_valid(), "{:?}", report.failure);
    assert_eq!(report.entries, 4);
}
