//! `make bench`: inclusion-proof latency at 10,000,000 entries (target: p99 under 5 ms), against
//! the cheapest database round trip there is — a single-row primary-key `SELECT` on `audit_log` —
//! measured in the same loop. Prints p50/p95/p99; results are recorded in docs/PERFORMANCE.md.
//!
//! Filling one agency through the sequencer takes 20 minutes or more here, so the rows are
//! generated in bulk: events are sealed with `PendingEvent::seal` and the Merkle nodes come from
//! `CompactRange::append` (the sequencer's own calls), every column is computed as the
//! sequencer's `INSERT` computes it, and the rows are streamed in with `COPY` while the tables'
//! indexes are dropped (and then rebuilt from their own definitions). Before that, a small log
//! is built both ways — by the real sequencer and by the generator — and the rows must be equal;
//! after it, every proof is checked against the generator's own entry hashes and root.
//!
//! `PROOF_BENCH_ENTRIES` overrides the size (e.g. for a quick run).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat};
use serde_json::{Map, Value};
use sqlx::postgres::{PgPoolCopyExt, PgPoolOptions};
use sqlx::{PgPool, Row};
use uuid::Uuid;
use writ_audit_chain::{CompactRange, Hash, leaf_hash};
use writ_tenancy::{Agency, TenantTx};
use writ_testkit::workload::{Mix, Workload};
use writ_testkit::{TestDb, own_cluster};

const DEFAULT_ENTRIES: u64 = 10_000_000;
/// Proofs measured (after a warm-up), at random seqs against the full tree.
const PROOFS: usize = 2_000;
const WARMUP: usize = 100;
/// The small log built both by the real sequencer and by the generator (more than one
/// sequencer batch of 5,000, and not a power of two).
const CHECK_ENTRIES: u64 = 5_003;
/// Entries per COPY chunk.
const CHUNK: u64 = 20_000;

// ---------------------------------------------------------------------------------------------
// The generator: the sequencer's rows, as COPY text
// ---------------------------------------------------------------------------------------------

/// COPY text format: backslash, newline, carriage return and tab are escaped.
fn copy_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
}

fn copy_bytea(out: &mut String, bytes: &[u8]) {
    out.push_str("\\\\x");
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// `ARRAY(SELECT value FROM jsonb_each_text(entry::jsonb -> 'resource'))`, as the sequencer
/// computes `resource_ids`: jsonb orders keys by length, then bytewise. Only string values are
/// generated (a number or object would be rendered by jsonb's own output rules).
fn resource_ids(resource: &Map<String, Value>) -> Vec<&str> {
    let mut members: Vec<(&String, &Value)> = resource.iter().collect();
    members.sort_by(|a, b| {
        a.0.len()
            .cmp(&b.0.len())
            .then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
    });
    members
        .into_iter()
        .map(|(_, v)| match v {
            Value::String(s) => s.as_str(),
            other => panic!("the generator only makes string resources, not {other}"),
        })
        .collect()
}

fn copy_text_array(out: &mut String, items: &[&str]) {
    let mut literal = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            literal.push(',');
        }
        literal.push('"');
        for c in item.chars() {
            if c == '"' || c == '\\' {
                literal.push('\\');
            }
            literal.push(c);
        }
        literal.push('"');
    }
    literal.push('}');
    copy_text(out, &literal);
}

/// Seals events one after the other and renders the rows the sequencer would insert.
struct Generator {
    agency_id: Uuid,
    work: Workload,
    range: CompactRange,
    prev: Hash,
    next_seq: u64,
    /// Entry hashes of the seqs that will be proved, kept to check the proofs.
    watched: HashMap<u64, Hash>,
}

impl Generator {
    fn new(agency_id: Uuid, watch: &[u64]) -> Generator {
        Generator {
            agency_id,
            work: Workload::new(agency_id),
            range: CompactRange::new(),
            prev: writ_audit_chain::genesis_hash(&agency_id.to_string()),
            next_seq: 1,
            watched: watch.iter().map(|s| (*s, Hash::default())).collect(),
        }
    }

    /// The next `count` entries as COPY text for `audit_log` and `audit_merkle_nodes`.
    fn chunk(&mut self, count: u64) -> (String, String) {
        let (mut log, mut nodes) = (
            String::with_capacity(count as usize * 700),
            String::with_capacity(count as usize * 160),
        );
        let agency = self.agency_id.to_string();
        for _ in 0..count {
            let seq = self.next_seq;
            let event = self.work.event(seq);
            let entry = event.seal(seq, self.prev).expect("seal");
            let line = entry.canonical_json().expect("canonical entry");
            let line = String::from_utf8(line).expect("utf-8 entry");
            let ts = DateTime::parse_from_rfc3339(&entry.timestamp).expect("timestamp");
            // agency_id, seq, id, ts, action, actor_user_id, resource_ids, entry, hash, prev_hash
            let _ = write!(log, "{agency}\t{seq}\t{}\t", entry.id);
            log.push_str(&ts.to_utc().to_rfc3339_opts(SecondsFormat::Micros, true));
            log.push('\t');
            copy_text(&mut log, &entry.action);
            log.push('\t');
            match entry
                .actor
                .user_id
                .as_deref()
                .and_then(|u| Uuid::parse_str(u).ok())
            {
                Some(u) => log.push_str(&u.to_string()),
                None => log.push_str("\\N"),
            }
            log.push('\t');
            copy_text_array(&mut log, &resource_ids(&entry.resource));
            log.push('\t');
            copy_text(&mut log, &line);
            log.push('\t');
            copy_bytea(&mut log, &entry.hash.0);
            log.push('\t');
            copy_bytea(&mut log, &self.prev.0);
            log.push('\n');
            for (node, hash) in self
                .range
                .append(leaf_hash(&entry.hash))
                .expect("append leaf")
            {
                let _ = write!(nodes, "{agency}\t{}\t{}\t", node.level, node.index);
                copy_bytea(&mut nodes, &hash.0);
                nodes.push('\n');
            }
            if let Some(h) = self.watched.get_mut(&seq) {
                *h = entry.hash;
            }
            self.prev = entry.hash;
            self.next_seq += 1;
        }
        (log, nodes)
    }
}

const LOG_COLUMNS: &str =
    "agency_id, seq, id, ts, action, actor_user_id, resource_ids, entry, hash, prev_hash";
const NODE_COLUMNS: &str = "agency_id, level, idx, hash";

/// Streams `n` generated entries into `log_table` and `node_table` (two COPYs side by side, the
/// generator on a thread of its own). Returns the generator (its root and watched hashes).
async fn copy_generated(
    pool: &PgPool,
    mut generator: Generator,
    n: u64,
    log_table: &str,
    node_table: &str,
) -> Generator {
    let (log_tx, mut log_rx) = tokio::sync::mpsc::channel::<String>(4);
    let (node_tx, mut node_rx) = tokio::sync::mpsc::channel::<String>(4);
    let producer = std::thread::spawn(move || {
        let mut done = 0;
        while done < n {
            let count = CHUNK.min(n - done);
            let (log, nodes) = generator.chunk(count);
            if log_tx.blocking_send(log).is_err() || node_tx.blocking_send(nodes).is_err() {
                panic!("a COPY stream stopped");
            }
            done += count;
        }
        generator
    });
    let mut log_copy = pool
        .copy_in_raw(&format!("COPY {log_table} ({LOG_COLUMNS}) FROM STDIN"))
        .await
        .expect("COPY audit_log");
    let mut node_copy = pool
        .copy_in_raw(&format!("COPY {node_table} ({NODE_COLUMNS}) FROM STDIN"))
        .await
        .expect("COPY audit_merkle_nodes");
    let logs = async {
        while let Some(chunk) = log_rx.recv().await {
            log_copy
                .send(chunk.into_bytes())
                .await
                .expect("send log rows");
        }
        log_copy.finish().await.expect("finish log COPY")
    };
    let nodes = async {
        while let Some(chunk) = node_rx.recv().await {
            node_copy
                .send(chunk.into_bytes())
                .await
                .expect("send node rows");
        }
        node_copy.finish().await.expect("finish node COPY")
    };
    let (rows, _) = tokio::join!(logs, nodes);
    assert_eq!(rows, n, "rows copied into {log_table}");
    producer.join().expect("generator thread")
}

// ---------------------------------------------------------------------------------------------
// Checking the generator against the real sequencer
// ---------------------------------------------------------------------------------------------

/// Builds a small log with the real sequencer (events into `audit_pending`, `sequence_agency`)
/// and the same log with the generator into temporary tables, and compares every row.
async fn check_generator(db: &TestDb) {
    let agency = db.onboard("proof-check").await;
    let schema = agency.ident.quoted();
    let mut work = Workload::new(agency.id);
    let (mut ids, mut times, mut events) = (Vec::new(), Vec::new(), Vec::new());
    for seq in 1..=CHECK_ENTRIES {
        let e = work.event(seq);
        ids.push(Uuid::parse_str(&e.id).expect("uuid"));
        times.push(work.start + chrono::Duration::microseconds(seq as i64));
        events.push(serde_json::to_value(&e).expect("event json"));
    }
    let mut tx = TenantTx::begin(&db.pool, &agency).await.expect("tenant tx");
    sqlx::query(
        "INSERT INTO audit_pending (id, recorded_at, event) \
         SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::jsonb[])",
    )
    .bind(&ids)
    .bind(&times)
    .bind(&events)
    .execute(tx.conn())
    .await
    .expect("pending events");
    tx.commit().await.expect("commit");
    let n = writ_audit_log::sequence_agency(&db.pool, agency.id, &agency.ident)
        .await
        .expect("sequence");
    assert_eq!(n as u64, CHECK_ENTRIES);

    // Temporary tables live on one connection: a pool of one.
    let one = PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TEMP TABLE gen_log (LIKE {schema}.audit_log INCLUDING DEFAULTS); \
         CREATE TEMP TABLE gen_nodes (LIKE {schema}.audit_merkle_nodes INCLUDING DEFAULTS)"
    )))
    .execute(&one)
    .await
    .expect("temp tables");
    // The pool of one holds its connection for the COPY; the producer is the only other party.
    let generator = copy_one_by_one(&one, Generator::new(agency.id, &[]), CHECK_ENTRIES).await;
    for (real, generated) in [
        ("audit_log", "gen_log"),
        ("audit_merkle_nodes", "gen_nodes"),
    ] {
        let q = format!(
            "SELECT (SELECT count(*) FROM {schema}.{real}), (SELECT count(*) FROM {generated}), \
                    (SELECT count(*) FROM (SELECT * FROM {schema}.{real} EXCEPT ALL SELECT * FROM {generated}) a), \
                    (SELECT count(*) FROM (SELECT * FROM {generated} EXCEPT ALL SELECT * FROM {schema}.{real}) b)"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(q))
            .fetch_one(&one)
            .await
            .expect("compare");
        let counts: (i64, i64, i64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
        assert!(
            counts.0 > 0 && counts.0 == counts.1 && counts.2 == 0 && counts.3 == 0,
            "{real}: the generator's rows differ from the sequencer's \
             (rows real/generated, only real, only generated): {counts:?}"
        );
        println!(
            "check: {real} of {CHECK_ENTRIES} entries, sequencer and generator: {} identical rows",
            counts.0
        );
    }
    let mut tx = TenantTx::begin(&db.pool, &agency).await.expect("tenant tx");
    let root = writ_audit_log::root_at(&mut tx, CHECK_ENTRIES)
        .await
        .expect("root");
    tx.rollback().await.expect("rollback");
    assert_eq!(root, generator.range.root(), "roots differ");
    one.close().await;
}

/// Like [`copy_generated`] for a pool of one connection: the two COPYs one after the other.
async fn copy_one_by_one(pool: &PgPool, mut generator: Generator, n: u64) -> Generator {
    let (log, nodes) = generator.chunk(n);
    for (table, columns, rows) in [
        ("gen_log", LOG_COLUMNS, log),
        ("gen_nodes", NODE_COLUMNS, nodes),
    ] {
        let mut copy = pool
            .copy_in_raw(&format!("COPY {table} ({columns}) FROM STDIN"))
            .await
            .expect("COPY");
        copy.send(rows.into_bytes()).await.expect("send rows");
        copy.finish().await.expect("finish COPY");
    }
    generator
}

// ---------------------------------------------------------------------------------------------
// The 10M-entry agency
// ---------------------------------------------------------------------------------------------

/// The indexes and unique/primary-key constraints of a table, as SQL that recreates them.
async fn index_definitions(pool: &PgPool, table: &str) -> Vec<(String, String)> {
    let rows = sqlx::query(
        "SELECT 'ALTER TABLE ' || $1::text || ' ADD CONSTRAINT ' || quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid), \
                'ALTER TABLE ' || $1::text || ' DROP CONSTRAINT ' || quote_ident(c.conname) \
         FROM pg_constraint c WHERE c.conrelid = $1::text::regclass AND c.contype IN ('p', 'u') \
         UNION ALL \
         SELECT pg_get_indexdef(i.indexrelid), 'DROP INDEX ' || i.indexrelid::regclass::text \
         FROM pg_index i WHERE i.indrelid = $1::text::regclass \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) \
         ORDER BY 1",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .expect("index definitions");
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// Fills the agency with `n` generated entries. Returns the generator (root, watched hashes).
async fn fill(db: &TestDb, agency: &Agency, n: u64, watch: &[u64]) -> Generator {
    let schema = agency.ident.quoted();
    let tables = [
        format!("{schema}.audit_log"),
        format!("{schema}.audit_merkle_nodes"),
    ];
    let mut definitions = Vec::new();
    for table in &tables {
        let defs = index_definitions(&db.pool, table).await;
        for (_, drop) in &defs {
            sqlx::raw_sql(sqlx::AssertSqlSafe(drop.clone()))
                .execute(&db.pool)
                .await
                .expect("drop index");
        }
        definitions.push(defs);
    }
    let started = Instant::now();
    let generator = copy_generated(
        &db.pool,
        Generator::new(agency.id, watch),
        n,
        &tables[0],
        &tables[1],
    )
    .await;
    let copied = started.elapsed();
    // Rebuild the indexes, two at a time (two cores), from their own definitions.
    let creates: Vec<String> = definitions
        .iter()
        .flatten()
        .map(|(create, _)| create.clone())
        .collect();
    let queue = std::sync::Arc::new(tokio::sync::Mutex::new(creates));
    let mut builders = Vec::new();
    for _ in 0..2 {
        let queue = queue.clone();
        let pool = db.pool.clone();
        builders.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await.expect("connection");
            sqlx::raw_sql("SET maintenance_work_mem = '1GB'")
                .execute(&mut *conn)
                .await
                .expect("set");
            loop {
                let Some(sql) = queue.lock().await.pop() else {
                    break;
                };
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *conn)
                    .await
                    .expect("create index");
            }
        }));
    }
    for b in builders {
        b.await.expect("index builder");
    }
    for (table, before) in tables.iter().zip(&definitions) {
        assert_eq!(
            &index_definitions(&db.pool, table).await,
            before,
            "{table}: indexes rebuilt differently"
        );
    }
    let indexed = started.elapsed();
    // What autovacuum would do next; done now so that it does not run during the measurement.
    for table in &tables {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}")))
            .execute(&db.pool)
            .await
            .expect("vacuum");
    }
    let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&db.pool)
        .await
        .expect("size");
    println!(
        "fill: {n} entries: generated and copied in {:.0} s, indexes rebuilt in {:.0} s, \
         vacuum analyze {:.0} s; database {:.1} GB",
        copied.as_secs_f64(),
        (indexed - copied).as_secs_f64(),
        (started.elapsed() - indexed).as_secs_f64(),
        size as f64 / 1e9
    );
    generator
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let i = (sorted.len() * p / 100).min(sorted.len() - 1);
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(label: &str, mut v: Vec<Duration>, baseline: Option<&[Duration]>) {
    v.sort();
    let (p50, p95, p99) = (percentile(&v, 50), percentile(&v, 95), percentile(&v, 99));
    let max = v[v.len() - 1];
    let ratio = baseline
        .map(|b| {
            format!(
                "  ({:.1}x / {:.1}x baseline)",
                ms(p50) / ms(percentile(b, 50)),
                ms(p99) / ms(percentile(b, 99))
            )
        })
        .unwrap_or_default();
    println!(
        "{label:<52} p50 {:>6.3} ms  p95 {:>6.3} ms  p99 {:>6.3} ms  max {:>7.3} ms{ratio}",
        ms(p50),
        ms(p95),
        ms(p99),
        ms(max)
    );
}

#[tokio::main]
async fn main() {
    let entries: u64 = std::env::var("PROOF_BENCH_ENTRIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_ENTRIES);
    let (_cluster_dir, mut cluster) = own_cluster();
    let db = TestDb::at(cluster.url("postgres")).await;

    check_generator(&db).await;

    let agency = db.onboard("proof-bench").await;
    let mut pick = Mix(0x9f00f);
    let seqs: Vec<u64> = (0..WARMUP + PROOFS)
        .map(|_| 1 + pick.below(entries))
        .collect();
    let baseline_seqs: Vec<u64> = (0..WARMUP + PROOFS)
        .map(|_| 1 + pick.below(entries))
        .collect();
    let generator = fill(&db, &agency, entries, &seqs).await;
    let root = generator.range.root();

    // One connection, as one request uses one.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .expect("connect");
    let (mut proofs, mut baseline, mut whole) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (&seq, &other)) in seqs.iter().zip(&baseline_seqs).enumerate() {
        let begun = Instant::now();
        let mut tx = TenantTx::begin(&pool, &agency).await.expect("tenant tx");
        // The cheapest round trip: one row by primary key (another random seq, so that it
        // does not warm the proof's pages).
        let t = Instant::now();
        let row = sqlx::query("SELECT hash FROM audit_log WHERE seq = $1")
            .bind(other as i64)
            .fetch_one(tx.conn())
            .await
            .expect("select");
        let select = t.elapsed();
        let _: Vec<u8> = row.get(0);
        let t = Instant::now();
        let proof = writ_audit_log::inclusion_proof(&mut tx, seq, entries)
            .await
            .expect("inclusion proof");
        let proved = t.elapsed();
        tx.rollback().await.expect("rollback");
        let total = begun.elapsed() - select;

        let expected = generator.watched[&seq];
        assert_eq!(proof.root_hash, root, "seq {seq}: root");
        proof
            .verify_entry_hash(&expected)
            .unwrap_or_else(|e| panic!("seq {seq}: proof does not verify: {e}"));
        if i >= WARMUP {
            proofs.push(proved);
            baseline.push(select);
            whole.push(total);
        }
    }
    let mut sorted_baseline = baseline.clone();
    sorted_baseline.sort();
    println!(
        "tree of {entries} entries, {PROOFS} proofs at random seqs (after {WARMUP} warm-up), \
         each verified against the generator's entry hash and root"
    );
    report("PK SELECT of one audit_log row (baseline)", baseline, None);
    report(
        "inclusion_proof(seq, treeSize)",
        proofs,
        Some(&sorted_baseline),
    );
    report(
        "TenantTx begin + inclusion_proof + rollback",
        whole,
        Some(&sorted_baseline),
    );

    pool.close().await;
    db.pool.close().await;
    cluster.stop();
}
