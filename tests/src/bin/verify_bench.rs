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

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;
use writ_audit_chain::{Actor, Outcome, PendingEvent};
use writ_keys::KeyPurpose;
use writ_tenancy::{Agency, TenantTx};
use writ_testkit::{TestDb, own_cluster};

const DEFAULT_ENTRIES: u64 = 1_000_000;
/// Timed runs of each command; the median is reported.
const RUNS: usize = 5;
/// Events per insert (and per sequencer call).
const CHUNK: u64 = 20_000;

/// A small deterministic generator (SplitMix64), so every run exports the same mix of events.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn uuid(&mut self) -> Uuid {
        let bytes = (u128::from(self.next()) << 64) | u128::from(self.next());
        uuid::Builder::from_random_bytes(bytes.to_be_bytes()).into_uuid()
    }
}

/// The mix of a busy agency: logins, warrant work, documents, denials, admin changes.
struct Workload {
    mix: Mix,
    agency_id: String,
    users: Vec<(Uuid, &'static str)>,
    warrants: Vec<Uuid>,
    start: DateTime<Utc>,
}

impl Workload {
    fn new(agency_id: Uuid) -> Workload {
        let mut mix = Mix(0x5eed);
        let roles = [
            "officer",
            "officer",
            "officer",
            "supervisor",
            "judge",
            "clerk",
        ];
        let users = (0..300)
            .map(|i| (mix.uuid(), roles[i % roles.len()]))
            .collect();
        let warrants = (0..5_000).map(|_| mix.uuid()).collect();
        Workload {
            mix,
            agency_id: agency_id.to_string(),
            users,
            warrants,
            start: DateTime::parse_from_rfc3339("2026-01-05T08:00:00Z")
                .map(|t| t.to_utc())
                .unwrap_or_default(),
        }
    }

    fn event(&mut self, n: u64) -> PendingEvent {
        let (user, role) = self.users[self.mix.below(self.users.len() as u64) as usize];
        let warrant =
            self.warrants[self.mix.below(self.warrants.len() as u64) as usize].to_string();
        let ip = format!(
            "10.{}.{}.{}",
            self.mix.below(8),
            self.mix.below(256),
            1 + self.mix.below(254)
        );
        let mut resource = Map::new();
        let mut outcome = Outcome::Success;
        let mut actor = Some(user);
        let (action, detail) = match self.mix.below(100) {
            0..=19 => ("auth.login", json!({"mfa": "totp"})),
            20..=24 => ("auth.logout", json!({})),
            25..=44 => {
                resource.insert("warrantId".into(), Value::String(warrant));
                ("warrant.viewed", json!({"version": 1 + self.mix.below(5)}))
            }
            45..=54 => {
                resource.insert("warrantId".into(), Value::String(warrant));
                (
                    "warrant.created",
                    json!({
                        "type": "search",
                        "court": format!("District {}", 1 + self.mix.below(9)),
                    }),
                )
            }
            55..=64 => {
                resource.insert("warrantId".into(), Value::String(warrant));
                (
                    "warrant.submitted",
                    json!({"version": 1 + self.mix.below(5)}),
                )
            }
            65..=79 => {
                let doc = self.mix.uuid();
                let digest: String = (0..4)
                    .map(|_| format!("{:016x}", self.mix.next()))
                    .collect();
                resource.insert("warrantId".into(), Value::String(warrant));
                resource.insert("documentId".into(), Value::String(doc.to_string()));
                resource.insert(
                    "documentHash".into(),
                    Value::String(format!("sha256:{digest}")),
                );
                (
                    "document.upload",
                    json!({
                        "bytes": 10_000 + self.mix.below(5_000_000),
                        "classification": "cji",
                        "mediaType": "application/pdf",
                    }),
                )
            }
            80..=87 => {
                resource.insert("warrantId".into(), Value::String(warrant));
                outcome = Outcome::Failure;
                (
                    "authz.denied",
                    json!({"reason": format!("role {role} may not approve warrants")}),
                )
            }
            88..=94 => {
                outcome = Outcome::Failure;
                actor = None;
                (
                    "auth.mfa.failure",
                    json!({"failedAttempts": 1 + self.mix.below(4)}),
                )
            }
            _ => {
                let target = self.users[self.mix.below(self.users.len() as u64) as usize].0;
                resource.insert("userId".into(), Value::String(target.to_string()));
                (
                    "admin.user.modified",
                    json!({"fields": ["role", "displayName"], "role": "supervisor"}),
                )
            }
        };
        let at = self.start + chrono::Duration::milliseconds(n as i64 * 211);
        PendingEvent {
            id: self.mix.uuid().to_string(),
            timestamp: at.to_rfc3339_opts(SecondsFormat::Millis, true),
            actor: Actor {
                user_id: actor.map(|u| u.to_string()),
                role: if actor.is_some() { role } else { "anonymous" }.to_owned(),
                agency_id: self.agency_id.clone(),
            },
            action: action.to_owned(),
            resource,
            outcome,
            source_ip: Some(ip),
            detail,
        }
    }
}

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
