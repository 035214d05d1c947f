//! Automated export of the audit log to agency-controlled storage (policy `audit.archive`): each
//! run uploads the entries not archived yet as a signed bundle that `writ-verify` accepts, plus
//! the latest signed checkpoint, to S3 (moto's server) or a directory; a run with nothing new
//! uploads nothing; a destination that is down fails the run and records nothing; the policy is
//! validated where agency admins set it.

use std::path::Path;
use std::process::Output;

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use sqlx::Row;
use writ_audit_chain::{SignedNote, verify_note};
use writ_audit_log::{ArchiveDestinations, ArchiveOutcome, Caller};
use writ_auth_mfa::Role;
use writ_tenancy::{Agency, TenantTx};
use writ_testkit::{
    Moto, TestDb, TestServer, audit_actions, seed_user, sequence, sha256_hex, text, writ_command,
    writ_verify_bundle, write_agency_pem, write_events,
};

async fn tree_size(db: &TestDb, agency: &Agency) -> u64 {
    sequence(db, agency).await;
    let mut tx = TenantTx::begin(&db.pool, agency).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM audit_log")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    n as u64
}

async fn set_archive_policy(db: &TestDb, agency: &Agency, value: Value) {
    let mut tx = TenantTx::begin(&db.pool, agency).await.unwrap();
    let registry = writ_tenancy::PolicyRegistry::new(&[writ_audit_log::POLICIES]);
    writ_auth_mfa::set_policy(
        &mut tx,
        &Caller::system(),
        &registry,
        "audit.archive",
        value,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[derive(Debug)]
struct Archive {
    from: u64,
    to: u64,
    path: String,
    checkpoint_path: String,
    sha256: String,
    bytes: u64,
}

async fn archives(db: &TestDb, agency: &Agency) -> Vec<Archive> {
    let mut tx = TenantTx::begin(&db.pool, agency).await.unwrap();
    sqlx::query(
        "SELECT from_seq, to_seq, object_path, checkpoint_path, sha256, bytes \
         FROM audit_archives ORDER BY from_seq",
    )
    .fetch_all(tx.conn())
    .await
    .unwrap()
    .iter()
    .map(|r| Archive {
        from: r.get::<i64, _>("from_seq") as u64,
        to: r.get::<i64, _>("to_seq") as u64,
        path: r.get("object_path"),
        checkpoint_path: r.get("checkpoint_path"),
        sha256: r.get("sha256"),
        bytes: r.get::<i64, _>("bytes") as u64,
    })
    .collect()
}

/// The `audit.archived` entries of the chain, as their `detail`.
async fn archived_entries(db: &TestDb, agency: &Agency) -> Vec<Value> {
    sequence(db, agency).await;
    let mut tx = TenantTx::begin(&db.pool, agency).await.unwrap();
    sqlx::query("SELECT entry FROM audit_log WHERE action = 'audit.archived' ORDER BY seq")
        .fetch_all(tx.conn())
        .await
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.get::<String, _>("entry")).unwrap()["detail"].clone()
        })
        .collect()
}

/// What the tests' server allows archives to go to: the test bucket, and the temp directories.
fn destinations_list() -> String {
    format!(
        "s3://agency-a-audit,file://{}",
        std::env::temp_dir().display()
    )
}

fn destinations() -> ArchiveDestinations {
    ArchiveDestinations::parse(&destinations_list()).unwrap()
}

/// `writ audit archive --agency SLUG` with exactly the given AWS environment (and the tests'
/// archive destinations unless `env` names others).
fn archive_cli(db: &TestDb, slug: &str, env: &[(&str, String)]) -> Output {
    let mut cmd = writ_command(&db.url, &db.master_key_file);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
        cmd.env_remove(k);
    }
    cmd.env("WRIT_ARCHIVE_DESTINATIONS", destinations_list());
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(["audit", "archive", "--agency", slug])
        .output()
        .expect("run writ audit archive")
}

/// Runs `writ-verify bundle` on a downloaded bundle; asserts it verifies the whole range.
fn assert_bundle_verifies(bundle: &Path, pem: &Path, from: u64, to: u64) {
    let out = writ_verify_bundle(bundle, pem);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    let n = to - from + 1;
    assert!(
        report.contains(&format!("{n}/{n} entries valid")),
        "{report}"
    );
    assert!(
        report.contains(&format!("Results found for seq {from} to {to}")),
        "{report}"
    );
}

/// Checks one recorded archive against the bytes downloaded for it and its checkpoint.
async fn assert_archive(
    db: &TestDb,
    agency: &Agency,
    archive: &Archive,
    bundle: &[u8],
    checkpoint: &[u8],
    dir: &Path,
) {
    assert_eq!(archive.bytes, bundle.len() as u64);
    assert_eq!(archive.sha256, sha256_hex(bundle));
    let file = dir.join(format!("{}-{}.tar.gz", archive.from, archive.to));
    std::fs::write(&file, bundle).unwrap();
    let pem = write_agency_pem(db, agency, dir).await;
    assert_bundle_verifies(&file, &pem, archive.from, archive.to);

    let note = SignedNote::parse(std::str::from_utf8(checkpoint).unwrap()).unwrap();
    let size = note.checkpoint().unwrap().size;
    assert!(
        size >= archive.to,
        "checkpoint {size} covers ..={}",
        archive.to
    );
    assert!(
        archive
            .checkpoint_path
            .ends_with(&format!("/{}/checkpoints/{size}.txt", agency.id))
    );
    let keys = writ_audit_log::verifier_keys(&db.pool, agency.id)
        .await
        .unwrap();
    verify_note(&note, &keys).unwrap();
}

// ---------------------------------------------------------------------------------------------
// moto's S3, over its plain REST API. moto checks no signatures, but it serves private objects
// only to requests that carry one.
// ---------------------------------------------------------------------------------------------

const MOTO_AUTH: &str = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, \
                         SignedHeaders=host, Signature=00";

async fn create_bucket(moto: &Moto, bucket: &str) {
    let status = reqwest::Client::new()
        .put(format!("{}/{bucket}", moto.endpoint))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "create bucket: {status}");
}

async fn s3_get(moto: &Moto, url: &str) -> Vec<u8> {
    let key = url.strip_prefix("s3://").expect("an s3:// URL");
    let res = reqwest::Client::new()
        .get(format!("{}/{key}", moto.endpoint))
        .header("authorization", MOTO_AUTH)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "GET {url}: {}", res.status());
    res.bytes().await.unwrap().to_vec()
}

async fn s3_keys(moto: &Moto, bucket: &str) -> Vec<String> {
    let body = reqwest::Client::new()
        .get(format!("{}/{bucket}?list-type=2", moto.endpoint))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_owned()))
        .collect()
}

#[tokio::test]
async fn s3_archives_upload_each_new_range_once_and_verify_offline() {
    let guard = Moto::exclusive().await;
    let moto = guard.moto;
    let env = moto.aws_env();
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    let dir = tempfile::tempdir().unwrap();
    create_bucket(moto, "agency-a-audit").await;
    set_archive_policy(&db, &a, json!({ "url": "s3://agency-a-audit/writ/audit" })).await;
    write_events(&db, &a, 5, "first").await;
    let first_size = tree_size(&db, &a).await;

    let out = archive_cli(&db, "agency-a", &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("archived seq 1..={first_size}")),
        "{}",
        text(&out)
    );
    let list = archives(&db, &a).await;
    assert_eq!(list.len(), 1);
    let first = &list[0];
    assert_eq!((first.from, first.to), (1, first_size));
    let prefix = format!("s3://agency-a-audit/writ/audit/{}/1-{first_size}-", a.id);
    assert!(
        first.path.starts_with(&prefix) && first.path.ends_with(".tar.gz"),
        "{}",
        first.path
    );
    let bundle = s3_get(moto, &first.path).await;
    let checkpoint = s3_get(moto, &first.checkpoint_path).await;
    assert_archive(&db, &a, first, &bundle, &checkpoint, dir.path()).await;

    // The run is in the chain, with where the bundle went, its range and its hash.
    let entries = archived_entries(&db, &a).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["path"], first.path.as_str());
    assert_eq!(entries[0]["fromSeq"], 1);
    assert_eq!(entries[0]["toSeq"], first_size);
    assert_eq!(entries[0]["sha256"], first.sha256.as_str());

    // More events: the next run uploads only what came after, its own entry included.
    write_events(&db, &a, 3, "second").await;
    let second_size = tree_size(&db, &a).await;
    let out = archive_cli(&db, "agency-a", &env);
    assert!(out.status.success(), "{}", text(&out));
    let list = archives(&db, &a).await;
    assert_eq!(list.len(), 2);
    let second = &list[1];
    assert_eq!((second.from, second.to), (first_size + 1, second_size));
    let bundle = s3_get(moto, &second.path).await;
    let checkpoint = s3_get(moto, &second.checkpoint_path).await;
    assert_archive(&db, &a, second, &bundle, &checkpoint, dir.path()).await;

    // Nothing new but the last run's own entry: nothing is uploaded or recorded.
    let before = s3_keys(moto, "agency-a-audit").await;
    let out = archive_cli(&db, "agency-a", &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("nothing new to archive"),
        "{}",
        text(&out)
    );
    assert_eq!(s3_keys(moto, "agency-a-audit").await, before);
    assert_eq!(
        before.iter().filter(|k| k.ends_with(".tar.gz")).count(),
        2,
        "{before:?}"
    );
    assert_eq!(archives(&db, &a).await.len(), 2);
    assert_eq!(archived_entries(&db, &a).await.len(), 2);
}

#[tokio::test]
async fn a_directory_destination_archives_the_same_way() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    let out_dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let url = format!("file://{}", out_dir.path().display());

    // Without a policy there is nowhere to archive to.
    let out = archive_cli(&db, "agency-a", &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no audit.archive policy"),
        "{}",
        text(&out)
    );

    set_archive_policy(&db, &a, json!({ "url": url, "everyHours": 2 })).await;
    write_events(&db, &a, 4, "w").await;
    let size = tree_size(&db, &a).await;
    let out = archive_cli(&db, "agency-a", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let list = archives(&db, &a).await;
    assert_eq!(list.len(), 1);
    let first = &list[0];
    assert_eq!((first.from, first.to), (1, size));
    let agency_dir = out_dir.path().join(a.id.to_string());
    let local = |url: &str| {
        let path = url.strip_prefix("file://").expect("a file:// URL");
        assert!(Path::new(path).starts_with(&agency_dir), "{path}");
        std::fs::read(path).unwrap()
    };
    assert_archive(
        &db,
        &a,
        first,
        &local(&first.path),
        &local(&first.checkpoint_path),
        work.path(),
    )
    .await;

    // The background archiver's schedule: due again only after `everyHours` since the last.
    let now = Utc::now();
    write_events(&db, &a, 2, "later").await;
    let due = |h: i64| writ_audit_log::archive_due(&db.pool, &a, now + Duration::hours(h));
    assert_eq!(due(1).await.unwrap(), Some(false));
    assert_eq!(due(2).await.unwrap(), Some(true));
    let second = match writ_audit_log::archive_agency(
        &db.pool,
        &db.keys,
        &a,
        now + Duration::hours(2),
        &destinations(),
    )
    .await
    .unwrap()
    {
        ArchiveOutcome::Archived(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(second.from_seq, first.to + 1);
    assert_eq!(second.to_seq, tree_size(&db, &a).await - 1);
    assert!(
        second
            .object_path
            .contains(&format!("/{}-{}-", second.from_seq, second.to_seq))
    );
    let second_row = &archives(&db, &a).await[1];
    assert_archive(
        &db,
        &a,
        second_row,
        &local(&second.object_path),
        &local(&second.checkpoint_path),
        work.path(),
    )
    .await;
    assert_eq!(due(3).await.unwrap(), Some(false));
    assert!(matches!(
        writ_audit_log::archive_agency(
            &db.pool,
            &db.keys,
            &a,
            now + Duration::hours(3),
            &destinations()
        )
        .await
        .unwrap(),
        ArchiveOutcome::NothingNew { .. }
    ));
    let files = std::fs::read_dir(&agency_dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_file())
        .count();
    assert_eq!(files, 2, "two bundles, nothing else beside the checkpoints");

    // A directory that is not there fails the run, naming it; nothing is recorded.
    set_archive_policy(&db, &a, json!({ "url": format!("{url}/missing") })).await;
    let out = archive_cli(&db, "agency-a", &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no such directory on this server"),
        "{}",
        text(&out)
    );
    assert_eq!(archives(&db, &a).await.len(), 2);
}

#[tokio::test]
async fn an_unreachable_store_fails_the_run_records_nothing_and_the_next_run_retries() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    set_archive_policy(&db, &a, json!({ "url": "s3://agency-a-audit/p" })).await;
    write_events(&db, &a, 3, "w").await;
    let size = tree_size(&db, &a).await;

    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = [
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
    ];
    let out = archive_cli(&db, "agency-a", &down);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("archive destination s3://agency-a-audit/p")
            && err.contains("nothing was archived"),
        "{err}"
    );
    assert!(archives(&db, &a).await.is_empty());
    assert!(
        !audit_actions(&db, &a)
            .await
            .contains(&"audit.archived".to_owned())
    );

    // The store is back: the next run archives the same range.
    let guard = Moto::exclusive().await;
    create_bucket(guard.moto, "agency-a-audit").await;
    let out = archive_cli(&db, "agency-a", &guard.moto.aws_env());
    assert!(out.status.success(), "{}", text(&out));
    let list = archives(&db, &a).await;
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].from, list[0].to), (1, size));
}

#[tokio::test]
async fn archive_policies_are_validated_where_admins_set_them() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    let admin = seed_user(&db, &a, "arch.admin", Role::AgencyAdmin).await;
    let server = TestServer::start_with(
        &db.url,
        &db.master_key_file,
        &[(
            "WRIT_ARCHIVE_DESTINATIONS",
            "s3://agency-audit/writ, file:///srv/agency-a",
        )],
    );
    let token = server.token(&admin).await;
    // A security policy: changed after step-up.
    server.step_up(&admin, &token).await;
    let put = |value: Value| {
        server.call(
            "PUT",
            "/v1/policies/audit.archive",
            &token,
            Some(json!({ "value": value })),
        )
    };
    for bad in [
        json!({ "url": "s3://agency-audit/p", "everyHours": 0 }),
        json!({ "url": "s3://agency-audit/p", "everyHours": 169 }),
        json!({ "url": "https://agency-audit.s3.amazonaws.com/p" }),
        json!({ "url": "ftp://agency-audit/p" }),
        json!({ "url": "file://relative/dir" }),
        json!({ "url": "file:///srv/../etc" }),
        json!({ "url": "s3://AKIAEXAMPLE:secret@agency-audit/p" }),
        json!({ "url": "s3://agency-audit/p", "secretAccessKey": "x" }),
        json!("s3://agency-audit/p"),
        // Well formed, but not where this server's operator lets archives go.
        json!({ "url": "s3://another-agency-audit/writ" }),
        json!({ "url": "s3://agency-audit" }),
        json!({ "url": "s3://agency-audit/writer" }),
        json!({ "url": "file:///etc" }),
        json!({ "url": "file:///srv/agency-a-b" }),
        json!({ "url": "file:///srv" }),
    ] {
        let (status, body) = put(bad.clone()).await;
        assert_eq!(status, 422, "{bad}");
        assert_eq!(body["type"], "urn:writ:problem:validation", "{body}");
    }
    let (_, body) = put(json!({ "url": "file:///etc" })).await;
    assert!(
        body.to_string()
            .contains("s3://agency-audit/writ, file:///srv/agency-a"),
        "names what is allowed: {body}"
    );
    for good in [
        json!({ "url": "s3://agency-audit/writ", "everyHours": 12 }),
        json!({ "url": "s3://agency-audit/writ/agency-a" }),
        json!({ "url": "file:///srv/agency-a" }),
        json!({ "url": "file:///srv/agency-a/audit" }),
    ] {
        let (status, body) = put(good.clone()).await;
        assert_eq!(status, 200, "{good}: {body}");
    }

    // A server whose operator named no destination takes none.
    drop(server);
    let server = TestServer::start(&db);
    let token = server.token(&admin).await;
    server.step_up(&admin, &token).await;
    let (status, body) = server
        .call(
            "PUT",
            "/v1/policies/audit.archive",
            &token,
            Some(json!({ "value": { "url": "s3://agency-audit/writ" } })),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.to_string().contains("WRIT_ARCHIVE_DESTINATIONS"),
        "{body}"
    );
}

/// The operator's list is checked at each run too: a destination set while allowed and removed
/// from the list since receives nothing.
#[tokio::test]
async fn a_destination_the_operator_no_longer_allows_receives_nothing() {
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    let out_dir = tempfile::tempdir().unwrap();
    set_archive_policy(
        &db,
        &a,
        json!({ "url": format!("file://{}", out_dir.path().display()) }),
    )
    .await;
    write_events(&db, &a, 3, "w").await;
    let out = archive_cli(
        &db,
        "agency-a",
        &[("WRIT_ARCHIVE_DESTINATIONS", "s3://agency-a-audit".into())],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("not among this server's archive destinations"),
        "{}",
        text(&out)
    );
    assert!(archives(&db, &a).await.is_empty());
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn pruning_never_removes_entries_that_were_not_archived() {
    use writ_audit_log::{PruneMode, prune_agency};
    let db = TestDb::new().await;
    let a = db.onboard("agency-a").await;
    let out_dir = tempfile::tempdir().unwrap();
    set_archive_policy(
        &db,
        &a,
        json!({ "url": format!("file://{}", out_dir.path().display()) }),
    )
    .await;
    write_events(&db, &a, 6, "w").await;
    sequence(&db, &a).await;
    let far = Utc::now() + Duration::days(4000);
    // Everything is past retention, but nothing is archived yet: nothing goes.
    let report = prune_agency(&db.pool, &db.keys, &a, far, PruneMode::Prune)
        .await
        .unwrap();
    assert_eq!(report.pruned, 0, "{report:?}");
    let writ_audit_log::ArchiveOutcome::Archived(archived) =
        writ_audit_log::archive_agency(&db.pool, &db.keys, &a, Utc::now(), &destinations())
            .await
            .unwrap()
    else {
        panic!("nothing archived");
    };
    write_events(&db, &a, 3, "after").await;
    sequence(&db, &a).await;
    // Now the archived range may go, and not one entry more.
    let report = prune_agency(&db.pool, &db.keys, &a, far, PruneMode::Prune)
        .await
        .unwrap();
    assert_eq!(report.minimum_index, archived.to_seq + 1, "{report:?}");
    assert!(report.tree_size > archived.to_seq);
}
