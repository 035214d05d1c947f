//! `make bench`: `writ-verify bundle` on a 1,000,000-entry export against `sha256sum` of the same
//! `log.jsonl`, timed in the same run on the same file (target: writ-verify at least half of
//! sha256sum's throughput). Prints MB/s for both and the ratio; results are recorded in
//! docs/PERFORMANCE.md.
//!
//! The export is real: events go into the agency's `audit_pending` in bulk, the real sequencer
//! seals them, the checkpointer signs with the agency's key and `writ_audit_log::export_bundle`
//! writes the bundle. The database is stopped before anything is timed.
//!
//! `VERIFY_BENCH_ENTRIES` overrides the number of entries (e.g. for a quick profile);
//! `VERIFY_BENCH_KEEP=DIR` keeps the bundle and the public key in DIR.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use uuid::Uuid;
use writ_keys::KeyPurpose;
use writ_tenancy::{Agency, TenantTx};
use writ_testkit::workload::Workload;
use writ_testkit::{TestDb, own_cluster};

const DEFAULT_ENTRIES: u64 = 1_000_000;
/// Timed runs of each command; the median is reported.
const RUNS: usize = 5;
/// Events per insert (and per sequencer call).
const CHUNK: u64 = 20_000;

/// Records `n` events straight into `audit_pending` (in bulk, as the agency's role) and lets the
/// real sequencer seal them.
async fn fill(db: &TestDb, agency: &Agency, n: u64) {
    let mut work = Workload::new(agency.id);
    let mut done = 0;
    while done < n {
        let count = CHUNK.min(n - done);
        let (mut ids, mut times, mut events) = (Vec::new(), Vec::new(), Vec::new());
        for i in done..done + count {
            let e = work.event(i);
            e.validate().expect("a valid event");
            ids.push(Uuid::parse_str(&e.id).expect("uuid"));
            times.push(work.start + chrono::Duration::microseconds(i as i64));
            events.push(serde_json::to_value(&e).expect("event json"));
        }
        let mut tx = TenantTx::begin(&db.pool, agency).await.expect("tenant tx");
        sqlx::query(
            "INSERT INTO audit_pending (id, recorded_at, event) \
             SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::jsonb[])",
        )
        .bind(&ids)
        .bind(&times)
        .bind(&events)
        .execute(tx.conn())
        .await
        .expect("insert pending events");
        tx.commit().await.expect("commit");
        let sequenced = writ_audit_log::sequence_agency(&db.pool, agency.id, &agency.ident)
            .await
            .expect("sequence");
        assert_eq!(sequenced as u64, count);
        done += count;
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// `target/release/writ-verify`, beside this benchmark's own binary.
fn writ_verify_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe.with_file_name("writ-verify");
    assert!(
        bin.is_file(),
        "{} not built: run `cargo build --release --bins` first (make bench does)",
        bin.display()
    );
    bin
}

fn run_sha256sum(log: &Path) -> (Duration, String) {
    let started = Instant::now();
    let out = Command::new("sha256sum")
        .arg(log)
        .output()
        .expect("run sha256sum");
    let elapsed = started.elapsed();
    assert!(out.status.success(), "sha256sum failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let digest = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    (elapsed, digest)
}

fn run_writ_verify(bin: &Path, bundle: &Path, pem: &Path) -> (Duration, String) {
    let started = Instant::now();
    let out = Command::new(bin)
        .arg("bundle")
        .arg(bundle)
        .arg("--public-key")
        .arg(pem)
        .output()
        .expect("run writ-verify");
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "writ-verify failed:\n{text}");
    (elapsed, text)
}

#[tokio::main]
async fn main() {
    let entries: u64 = std::env::var("VERIFY_BENCH_ENTRIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_ENTRIES);
    let verify = writ_verify_bin();
    let work = tempfile::Builder::new()
        .prefix("writ-verify-bench-")
        .tempdir()
        .expect("temp dir");
    let bundle = work.path().join("bundle");
    let pem = work.path().join("agency.pem");

    // Build the export with the real server code, then stop the database before timing.
    let started = Instant::now();
    {
        let (_cluster_dir, mut cluster) = own_cluster();
        let db = TestDb::at(cluster.url("postgres")).await;
        let agency = db.onboard("bench-verify").await;
        fill(&db, &agency, entries).await;
        let filled = started.elapsed();
        writ_audit_log::export_bundle(&db.pool, &db.keys, &agency, None, None, &bundle)
            .await
            .expect("export");
        // The auditor's copy of the public key, obtained out of band.
        let key = writ_tenancy::agency_keys(&db.pool, agency.id, KeyPurpose::Signing)
            .await
            .expect("agency keys")
            .into_iter()
            .find(|k| k.valid_to.is_none())
            .and_then(|k| k.public_key_pem)
            .expect("signing key");
        std::fs::write(&pem, key).expect("write pem");
        println!(
            "setup: {entries} events sequenced in {:.0} s, exported in {:.0} s",
            filled.as_secs_f64(),
            (started.elapsed() - filled).as_secs_f64()
        );
        db.pool.close().await;
        cluster.stop();
    }

    let log = bundle.join("log.jsonl");
    let bytes = std::fs::metadata(&log).expect("log.jsonl").len();
    // Both read the file from the page cache: read it once before timing.
    std::fs::read(&log).expect("read log.jsonl");
    let expected_valid = format!("{entries}/{entries} entries valid");

    let (mut sha_times, mut verify_times) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (t, digest) = run_sha256sum(&log);
        sha_times.push(t);
        let (t, report) = run_writ_verify(&verify, &bundle, &pem);
        verify_times.push(t);
        assert!(report.contains(&expected_valid), "{report}");
        assert!(report.contains("All checks passed."), "{report}");
        assert!(
            report.contains(&format!("log.jsonl SHA-256: {digest} ")),
            "writ-verify and sha256sum disagree on the digest:\n{report}"
        );
    }
    let sha = median(sha_times);
    let writ = median(verify_times);
    let (sha_rate, writ_rate) = (mb_per_s(bytes, sha), mb_per_s(bytes, writ));
    println!(
        "log.jsonl: {entries} entries, {:.1} MB ({} bytes/entry); median of {RUNS} runs each",
        bytes as f64 / 1e6,
        bytes / entries.max(1)
    );
    println!(
        "sha256sum log.jsonl (baseline):      {:>7.3} s  {sha_rate:>7.1} MB/s",
        sha.as_secs_f64()
    );
    println!(
        "writ-verify bundle DIR --public-key: {:>7.3} s  {writ_rate:>7.1} MB/s  ({:.2}x sha256sum; {:.0} entries/s)",
        writ.as_secs_f64(),
        writ_rate / sha_rate,
        entries as f64 / writ.as_secs_f64()
    );

    if let Ok(keep) = std::env::var("VERIFY_BENCH_KEEP") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).expect("keep dir");
        std::fs::rename(&bundle, keep.join("bundle")).expect("keep bundle");
        std::fs::rename(&pem, keep.join("agency.pem")).expect("keep pem");
        println!("bundle kept in {}", keep.display());
    }
}
