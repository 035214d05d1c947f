//! `make bench`: audit append throughput into one agency and spread over 16 agencies, against the
//! naive baseline (a `SELECT … FOR UPDATE` on a chain head per append) measured in the same run
//! on the same cluster. Prints ratios; results are recorded in docs/PERFORMANCE.md.

use std::time::{Duration, Instant};

use writ_audit_log::{Actor, Event, record};
use writ_tenancy::{Agency, TenantTx};
use writ_testkit::TestDb;

const WRITERS: usize = 32;
const RUN: Duration = Duration::from_secs(8);

async fn appends(db: &TestDb, agencies: &[Agency]) -> f64 {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(WRITERS as u32 + 4)
        .connect(&db.url)
        .await
        .unwrap();
    // Sequencers as a server runs them, one per process here.
    let seq_pool = pool.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seq_stop = stop.clone();
    let list = agencies.to_vec();
    let sequencer = tokio::spawn(async move {
        while !seq_stop.load(std::sync::atomic::Ordering::Relaxed) {
            for a in &list {
                writ_audit_log::sequence_agency(&seq_pool, a.id, &a.ident)
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let pool = pool.clone();
        let a = agencies[w % agencies.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < RUN {
                let mut tx = TenantTx::begin(&pool, &a).await.unwrap();
                record(
                    &mut tx,
                    &Event::new("warrant.created", Actor::system())
                        .resource("warrantId", n.to_string()),
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sequencer.await.unwrap();
    // Count only what reached the chain.
    for a in agencies {
        writ_audit_log::sequence_agency(&pool, a.id, &a.ident)
            .await
            .unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    total as f64 / elapsed
}

async fn naive_baseline(db: &TestDb) -> f64 {
    sqlx::raw_sql("CREATE TABLE bench_head (id int PRIMARY KEY, seq bigint NOT NULL); INSERT INTO bench_head VALUES (1, 0); \
                   CREATE TABLE bench_log (seq bigint PRIMARY KEY, body text)")
        .execute(&db.pool)
        .await
        .unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(WRITERS as u32)
        .connect(&db.url)
        .await
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < RUN {
                let mut tx = pool.begin().await.unwrap();
                let seq: i64 =
                    sqlx::query_scalar("SELECT seq + 1 FROM bench_head WHERE id = 1 FOR UPDATE")
                        .fetch_one(&mut *tx)
                        .await
                        .unwrap();
                sqlx::query("INSERT INTO bench_log VALUES ($1, 'x')")
                    .bind(seq)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                sqlx::query("UPDATE bench_head SET seq = $1 WHERE id = 1")
                    .bind(seq)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let db = TestDb::new().await;
    let one = vec![db.onboard("bench-one").await];
    let mut many = Vec::new();
    for i in 0..16 {
        many.push(db.onboard(&format!("bench-{i:02}")).await);
    }
    let baseline = naive_baseline(&db).await;
    let single = appends(&db, &one).await;
    let spread = appends(&db, &many).await;
    println!("writers: {WRITERS}, {}s each run", RUN.as_secs());
    println!("naive FOR UPDATE chain head (baseline): {baseline:>8.0} appends/s");
    println!(
        "writ, one agency:                       {single:>8.0} appends/s  ({:.2}x baseline)",
        single / baseline
    );
    println!(
        "writ, spread over 16 agencies:          {spread:>8.0} appends/s  ({:.2}x baseline)",
        spread / baseline
    );
    for a in one.iter().chain(&many) {
        let r = writ_audit_log::verify_live(&db.pool, a).await.unwrap();
        assert!(r.is_valid(), "{}: {:?}", a.slug, r.failure);
    }
    println!("every chain verifies after the run");
}
