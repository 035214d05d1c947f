//! `make bench`: authenticated requests over HTTP against pgbench's single-row `INSERT` on the same
//! PostgreSQL cluster, measured in the same run at the same client counts (16 and 64). Prints
//! requests per second, latency percentiles and the ratios; results are recorded in
//! docs/PERFORMANCE.md (target: the audited write at least 25% of pgbench's INSERT TPS).
//!
//! The server is the real `writ serve` of this build (release under `make bench`) on a random
//! loopback port, with the production defaults except the rate limits, which are raised so that
//! the buckets never answer 429. Every caller is a real session: 64 officers and 64 agency
//! administrators seeded in one agency, each logged in through `POST /v1/auth/login` with password
//! and TOTP. The load generator is wrk-like: one keep-alive HTTP/1.1 connection per client, each
//! sending its next request as soon as the previous answer is read, for a fixed time; client `i`
//! uses session `i`.
//!
//! Scenarios: `GET /healthz` (no database: the ceiling), `GET /v1/auth/session` (an authenticated
//! read: token, session row, idle and lifetime checks) and `PATCH /v1/users/{id}` with a new
//! display name (the cheapest audited write: an administrator changes officer `i`'s name, the row
//! and its `admin.user.modified` entry in one transaction; each client its own officer, so
//! clients do not queue on one row). Every answer must be 200, and every write must be in the
//! agency's audit log when the run ends.
//!
//! Beside them, the write's own SQL without HTTP or the server: pgbench sends the statements the
//! server sends for the write (`BEGIN`, agency + enter, session, user, audit `INSERT`, `COMMIT`,
//! with the same values: client `i` as administrator `i` changing officer `i`), once one round
//! trip per statement as the server's driver does, once pipelined in a single round trip (after
//! one lookup of the client's ids and its event in both). The running server sequences those
//! events too (at its sweep). These rows are the floor under the HTTP write: what the database
//! work alone reaches on this cluster, whatever the server and its driver did.
//!
//! `HTTP_BENCH_SECS` overrides the duration of each run (default 8); `HTTP_BENCH_ONLY=read` or
//! `=write` runs that scenario alone (at both client counts, no baseline), e.g. under a profiler;
//! `HTTP_BENCH_ONLY=floor` runs the write's SQL through pgbench beside pgbench's `INSERT` only;
//! `HTTP_BENCH_ONLY=statements` sends one read and one write and prints the SQL the server ran for
//! each (`log_statement = all` on the benchmark database).
//! `HTTP_BENCH_NOTIFY_EACH_WRITE=1` puts back a trigger that notifies on every audited commit, as
//! the server did before it woke its own sequencer: for comparing the two.
//!
//! After the writes it prints how PostgreSQL scanned the agency's audit tables meanwhile
//! (`pg_stat_user_tables`: sequential scans there would grow with the log). For finding such a
//! plan, `HTTP_BENCH_EXPLAIN_MS=N` logs the plan of every statement of the server's connections
//! that ran N ms or longer (auto_explain; 0 for all) to the cluster's `postgres.log`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use sqlx::Connection;
use writ_auth_mfa::Role;
use writ_tenancy::Agency;
use writ_testkit::{TestDb, TestUser, owner_url, seed_user, serving_url};

const CLIENTS: [usize; 2] = [16, 64];
const SESSIONS: usize = 64;
const WARMUP: Duration = Duration::from_secs(2);

/// What one client sends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Healthz,
    SessionRead,
    UserWrite,
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Scenario::Healthz => "GET /healthz (no database)",
            Scenario::SessionRead => "GET /v1/auth/session (authenticated read)",
            Scenario::UserWrite => "PATCH /v1/users/{id} (audited write)",
        }
    }
}

/// Requests per second and latency of one run.
struct Outcome {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    ok: u64,
}

fn run_secs() -> Duration {
    let secs = std::env::var("HTTP_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    Duration::from_secs(secs)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

/// One client: a keep-alive connection sending requests back to back until `until`. Returns the
/// latencies (µs) of the answers that started after `measure_from`, and how many of them were 200.
async fn client(
    addr: SocketAddr,
    scenario: Scenario,
    token: String,
    target: String,
    measure_from: Instant,
    until: Instant,
) -> (Vec<u32>, u64) {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to writ");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(conn);
    let host = addr.to_string();
    let bearer = format!("Bearer {token}");
    let mut latencies = Vec::with_capacity(65_536);
    let mut ok = 0u64;
    let mut n = 0u64;
    loop {
        let started = Instant::now();
        if started >= until {
            break;
        }
        let builder = Request::builder().header(HOST, &host);
        let request = match scenario {
            Scenario::Healthz => builder
                .method(Method::GET)
                .uri("/healthz")
                .body(Full::new(Bytes::new())),
            Scenario::SessionRead => builder
                .method(Method::GET)
                .uri("/v1/auth/session")
                .header(AUTHORIZATION, &bearer)
                .body(Full::new(Bytes::new())),
            Scenario::UserWrite => builder
                .method(Method::PATCH)
                .uri(&target)
                .header(AUTHORIZATION, &bearer)
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(format!(
                    "{{\"displayName\":\"Officer {n}\"}}"
                )))),
        }
        .expect("request");
        sender.ready().await.expect("connection ready");
        let response = sender.send_request(request).await.expect("response");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("response body")
            .to_bytes();
        n += 1;
        if started < measure_from {
            continue;
        }
        if status.as_u16() == 200 {
            ok += 1;
        } else {
            eprintln!(
                "{} answered {status}: {}",
                scenario.label(),
                String::from_utf8_lossy(&body)
            );
        }
        latencies.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    (latencies, ok)
}

/// Runs `clients` connections for the warm-up and then the measured time; client `i` uses
/// session `i` and, for writes, changes officer `i`.
async fn drive(
    addr: SocketAddr,
    scenario: Scenario,
    tokens: &Arc<Vec<String>>,
    officers: &[TestUser],
    clients: usize,
) -> Outcome {
    let measure_from = Instant::now() + WARMUP;
    let until = measure_from + run_secs();
    eprintln!("{}, {clients} clients…", scenario.label());
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let token = tokens[i % tokens.len()].clone();
            let target = format!("/v1/users/{}", officers[i % officers.len()].id);
            tokio::spawn(client(addr, scenario, token, target, measure_from, until))
        })
        .collect();
    let mut all = Vec::new();
    let mut ok = 0;
    for t in tasks {
        let (lat, n) = t.await.expect("client task");
        all.extend(lat);
        ok += n;
    }
    all.sort_unstable();
    let total = all.len() as u64;
    assert_eq!(
        ok,
        total,
        "{}: {} of {total} answers were not 200",
        scenario.label(),
        total - ok
    );
    Outcome {
        rps: total as f64 / run_secs().as_secs_f64(),
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
        ok,
    }
}

fn pgbench_bin() -> std::path::PathBuf {
    let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("/usr/lib/postgresql")
        .flatten()
        .map(|e| e.path().join("bin/pgbench"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found
        .pop()
        .expect("pgbench under /usr/lib/postgresql/*/bin")
}

/// pgbench's single-row `INSERT` (autocommit, prepared) at `clients` connections: its TPS.
fn pgbench_insert(url: &str, script: &std::path::Path, clients: usize) -> f64 {
    pgbench_script(url, script, clients, &[]).0
}

/// pgbench running `script` at `clients` connections, with `vars` defined: its TPS and the
/// number of transactions it completed.
fn pgbench_script(
    url: &str,
    script: &std::path::Path,
    clients: usize,
    vars: &[(&str, String)],
) -> (f64, usize) {
    let mut cmd = Command::new(pgbench_bin());
    cmd.args(["-n", "-M", "prepared", "-j", "2"])
        .arg("-c")
        .arg(clients.to_string())
        .arg("-T")
        .arg(run_secs().as_secs().to_string());
    for (name, value) in vars {
        cmd.arg("-D").arg(format!("{name}={value}"));
    }
    let out = cmd
        .arg("-f")
        .arg(script)
        .arg(url)
        .output()
        .expect("run pgbench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let processed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no transaction count in pgbench's output: {stdout}"));
    let tps = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .filter(|_| l.contains("without initial connection time"))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or_else(|| panic!("no TPS in pgbench's output: {stdout}"));
    (tps, processed)
}

/// The audited write's statements for pgbench, as `HTTP_BENCH_ONLY=statements` shows the server
/// sending them; `pipelined` sends them in one round trip. Client `n` looks up its session,
/// administrator and officer in `public.bench_writers` and has the database make its audit event
/// (an id ordered by time, as the server's are) in that same first round trip. pgbench takes
/// every `:name`, quoted or not, for a variable: the time format spells its colons `chr(58)`.
/// The values the server binds are pgbench variables too, but for its absent fields (`NULL`,
/// `false`: pgbench has no null variable), which are literals here.
/// A pipeline prepares its statements before the first of them sets the role and search path,
/// so tables are named with their schema (`schema`, quoted) and pgbench connects as the
/// cluster's superuser, who may name them; the statements run as the agency's role all the same.
fn write_sql_script(pipelined: bool, schema: &str) -> String {
    let (start, end) = if pipelined {
        ("\\startpipeline\n", "\\endpipeline\n")
    } else {
        ("", "")
    };
    format!(
        "SELECT w.session_id AS sid, w.admin_id AS aid, w.officer_id AS oid, e.id AS eid, \
           json_build_object('id', e.id, \
             'timestamp', to_char(now() AT TIME ZONE 'UTC', \
               'YYYY-MM-DD\"T\"HH24' || chr(58) || 'MI' || chr(58) || 'SS.MS\"Z\"'), \
             'actor', json_build_object('userId', w.admin_id, 'role', 'agency_admin', 'agencyId', :agency::text), \
             'action', 'admin.user.modified', 'resource', json_build_object('userId', w.officer_id), \
             'outcome', 'success', 'sourceIp', '127.0.0.1', \
             'detail', json_build_object('displayName', 'Officer', 'previousRole', NULL, 'role', NULL, \
               'status', NULL, 'requestId', e.id))::text AS event \
         FROM public.bench_writers w, (SELECT (lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') \
           || substr(md5(random()::text), 1, 20))::uuid AS id) e \
         WHERE w.n = :client_id::int % {SESSIONS} \\gset\n\
         {start}\
         BEGIN;\n\
         SELECT id, slug, name, schema_name, key_provider, status, created_at, set_config('role', :ident, true), \
           set_config('search_path', :path, true), set_config('writ.agency_id', :agency, true) \
           FROM control.agencies WHERE id = :agency AND schema_name = :ident AND status = 'active';\n\
         WITH cur AS (SELECT s.user_id, u.role, u.status, s.created_at, s.last_seen_at, s.stepped_up_until, \
             s.revoked_at, s.revoke_reason FROM {schema}.sessions s JOIN {schema}.users u ON u.id = s.user_id WHERE s.id = :sid), \
           touched AS (UPDATE {schema}.sessions SET last_seen_at = now() WHERE id = (SELECT id FROM {schema}.sessions \
             WHERE id = :sid AND user_id = :aid AND revoked_at IS NULL \
             AND last_seen_at < now() - make_interval(secs => :touch) \
             AND last_seen_at >= now() - make_interval(secs => :idle) \
             AND created_at >= now() - make_interval(secs => :lifetime) FOR UPDATE SKIP LOCKED) \
             AND EXISTS (SELECT 1 FROM cur WHERE cur.status = 'active') RETURNING id) \
           SELECT cur.*, now() AS now FROM cur;\n\
         WITH before AS (SELECT id, role, status, badge_or_judicial_id AS previous_badge FROM {schema}.users \
             WHERE id = :oid FOR UPDATE), \
           changed AS (UPDATE {schema}.users u SET display_name = coalesce(:display, u.display_name), \
             role = coalesce(NULL, u.role), status = coalesce(NULL, u.status), \
             badge_or_judicial_id = CASE WHEN false THEN NULL ELSE u.badge_or_judicial_id END, \
             last_login_at = CASE WHEN NULL = 'active' AND u.status = 'disabled' THEN now() ELSE u.last_login_at END, \
             updated_at = now() FROM before WHERE u.id = :oid AND u.id = before.id \
             AND before.status <> 'deactivated' AND NOT (NULL IS NOT NULL AND before.status = 'pending') \
             RETURNING u.id, u.username, u.display_name, u.role, u.status, u.locked_at, u.created_at, \
             u.last_login_at, u.badge_or_judicial_id AS badge_or_judicial_id, u.email, u.phone) \
           SELECT before.role AS previous_role, before.status AS previous_status, before.previous_badge, changed.* \
           FROM before LEFT JOIN changed ON true;\n\
         INSERT INTO {schema}.audit_pending (id, event) VALUES (:eid, :event);\n\
         COMMIT;\n\
         {end}"
    )
}

/// The write's SQL through pgbench (see [`write_sql_script`]): the scripts and what they need.
struct FloorScripts {
    url: String,
    one_by_one: PathBuf,
    pipelined: PathBuf,
    vars: Vec<(&'static str, String)>,
}

impl FloorScripts {
    async fn new(
        db: &TestDb,
        agency: &Agency,
        admins: &[TestUser],
        officers: &[TestUser],
        dir: &std::path::Path,
    ) -> Self {
        sqlx::raw_sql(
            "CREATE TABLE public.bench_writers (n int PRIMARY KEY, session_id uuid NOT NULL, \
             admin_id uuid NOT NULL, officer_id uuid NOT NULL); \
             GRANT SELECT ON public.bench_writers TO PUBLIC",
        )
        .execute(&db.pool)
        .await
        .expect("bench_writers");
        let sessions = format!(
            "SELECT id FROM {}.sessions WHERE user_id = $1 AND revoked_at IS NULL \
             ORDER BY created_at DESC LIMIT 1",
            agency.ident.quoted()
        );
        for (n, (admin, officer)) in admins.iter().zip(officers).enumerate() {
            let session: uuid::Uuid = sqlx::query_scalar(sqlx::AssertSqlSafe(sessions.clone()))
                .bind(admin.id)
                .fetch_one(&db.pool)
                .await
                .expect("the administrator's session");
            sqlx::query("INSERT INTO public.bench_writers VALUES ($1, $2, $3, $4)")
                .bind(i32::try_from(n).expect("client number"))
                .bind(session)
                .bind(admin.id)
                .bind(officer.id)
                .execute(&db.pool)
                .await
                .expect("bench_writers row");
        }
        let one_by_one = dir.join("write-one-by-one.sql");
        let pipelined = dir.join("write-pipelined.sql");
        std::fs::write(&one_by_one, write_sql_script(false, &agency.ident.quoted()))
            .expect("pgbench script");
        std::fs::write(&pipelined, write_sql_script(true, &agency.ident.quoted()))
            .expect("pgbench script");
        Self {
            url: db.url.clone(),
            one_by_one,
            pipelined,
            vars: vec![
                ("agency", agency.id.to_string()),
                ("ident", agency.ident.as_str().to_owned()),
                ("path", agency.ident.quoted()),
                ("display", "Officer".to_owned()),
                // The session timing the server binds by default (touch, idle, lifetime).
                ("touch", "60".to_owned()),
                ("idle", "1800".to_owned()),
                ("lifetime", "43200".to_owned()),
            ],
        }
    }

    /// TPS of the write's SQL at `clients` connections, one round trip per statement and
    /// pipelined; every transaction's audit event is in the chain afterwards.
    async fn run(&self, db: &TestDb, agency: &Agency, clients: usize) -> (f64, f64) {
        let mut tps = [0.0; 2];
        for (i, script) in [&self.one_by_one, &self.pipelined].into_iter().enumerate() {
            wait_sequenced(db, agency).await;
            let before = audited_writes(db, agency).await;
            let processed;
            (tps[i], processed) = pgbench_script(&self.url, script, clients, &self.vars);
            wait_sequenced(db, agency).await;
            let done = audited_writes(db, agency).await - before;
            // A client stopped at the deadline may have committed a transaction it did not count.
            assert!(
                (processed..=processed + clients).contains(&done),
                "{done} audited writes from pgbench's {processed} transactions"
            );
        }
        (tps[0], tps[1])
    }
}

/// Waits (at most a minute) until the sequencer has taken every pending audit event.
async fn wait_sequenced(db: &TestDb, agency: &Agency) {
    let sql = format!(
        "SELECT count(*) FROM {}.audit_pending",
        agency.ident.quoted()
    );
    for _ in 0..600 {
        let pending: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_one(&db.pool)
            .await
            .expect("audit_pending");
        if pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("audit events still pending after a minute");
}

/// `writ serve` of this build: the `writ` beside this binary (`target/release/` under `make
/// bench`), on a random loopback port with the production defaults (two workers: one per core,
/// argon2 at full cost); killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    http: reqwest::Client,
}

impl Server {
    fn start(db: &TestDb, env: &[(&str, &str)]) -> Server {
        let exe = std::env::current_exe().expect("current exe");
        let bin: PathBuf = exe.with_file_name("writ");
        assert!(
            bin.is_file(),
            "{} not built: run `cargo build --release --bins` first (make bench does)",
            bin.display()
        );
        let mut child = Command::new(&bin)
            .arg("serve")
            // As a deployment runs it: serving as writ_app, writ_owner for onboarding and pruning.
            .env("DATABASE_URL", serving_url(&db.url))
            .env("WRIT_OWNER_DATABASE_URL", owner_url(&db.url))
            .env("WRIT_MASTER_KEY_FILE", &db.master_key_file)
            .env("WRIT_BIND", "127.0.0.1:0")
            .env("WRIT_WORKERS", "2")
            .env("WRIT_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn writ serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("writ listening on http://") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("writ serve did not start listening")
            .parse()
            .expect("server address");
        Server {
            child,
            addr,
            http: reqwest::Client::new(),
        }
    }

    /// Logs `user` in (password and TOTP) and returns the access token.
    async fn token(&self, user: &TestUser) -> String {
        let res = self
            .http
            .post(format!("http://{}/v1/auth/login", self.addr))
            .json(&user.login_body())
            .send()
            .await
            .expect("login request");
        let status = res.status();
        let body: serde_json::Value = res.json().await.expect("login body");
        assert_eq!(status, 200, "login of {} failed: {body}", user.username);
        body["accessToken"]
            .as_str()
            .expect("access token")
            .to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn seed(db: &TestDb, agency: &Agency, prefix: &str, role: Role) -> Vec<TestUser> {
    let mut users = Vec::new();
    for i in 0..SESSIONS {
        users.push(seed_user(db, agency, &format!("{prefix}.{i:02}"), role).await);
    }
    users
}

async fn tokens(server: &Server, users: &[TestUser]) -> Arc<Vec<String>> {
    let mut out = Vec::new();
    for u in users {
        out.push(server.token(u).await);
    }
    Arc::new(out)
}

fn db_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// One read and one write, each between two marker statements, and the server's statements in
/// between as PostgreSQL logged them (background work such as the audit sequencer included; its
/// lines carry another process id).
async fn print_statements(
    db: &TestDb,
    server: &Server,
    read_tokens: &[String],
    write_tokens: &[String],
    officers: &[TestUser],
) {
    let mut marker = sqlx::postgres::PgConnection::connect(&db.url)
        .await
        .expect("marker connection");
    let dir: String = sqlx::query_scalar("SELECT current_setting('data_directory')")
        .fetch_one(&mut marker)
        .await
        .expect("data directory");
    let log = std::path::Path::new(&dir)
        .parent()
        .expect("cluster directory")
        .join("postgres.log");
    let mark = |m: &'static str| sqlx::query(sqlx::AssertSqlSafe(format!("SELECT '{m}'")));
    let base = format!("http://{}", server.addr);
    // Twice each, so that the second shows a warm connection (statements already prepared).
    for round in 0..2 {
        mark("http-bench read begins")
            .execute(&mut marker)
            .await
            .expect("marker");
        let res = server
            .http
            .get(format!("{base}/v1/auth/session"))
            .bearer_auth(&read_tokens[round])
            .send()
            .await
            .expect("read");
        assert_eq!(res.status(), 200);
        mark("http-bench write begins")
            .execute(&mut marker)
            .await
            .expect("marker");
        let res = server
            .http
            .patch(format!("{base}/v1/users/{}", officers[round].id))
            .bearer_auth(&write_tokens[round])
            .json(&serde_json::json!({ "displayName": "Officer" }))
            .send()
            .await
            .expect("write");
        assert_eq!(res.status(), 200);
        mark("http-bench done")
            .execute(&mut marker)
            .await
            .expect("marker");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = std::fs::read_to_string(&log).expect("postgres.log");
    let mut on = false;
    for line in text.lines() {
        if line.contains("SELECT 'http-bench") {
            on = !line.contains("http-bench done");
            println!("---- {}", line.rsplit("SELECT ").next().unwrap_or(line));
            continue;
        }
        if on && (line.contains("statement: ") || line.contains("execute ")) {
            println!("{line}");
        }
    }
}

async fn audited_writes(db: &TestDb, agency: &Agency) -> usize {
    writ_testkit::audit_actions(db, agency)
        .await
        .iter()
        .filter(|a| *a == "admin.user.modified")
        .count()
}

/// Sequential scans, tuples they read and index scans of the agency's audit tables so far, as
/// PostgreSQL counts them (`pg_stat_user_tables`).
async fn audit_scans(db: &TestDb, agency: &Agency) -> Vec<(String, i64, i64, i64)> {
    sqlx::query_as(
        "SELECT relname::text, seq_scan, seq_tup_read, coalesce(idx_scan, 0) \
         FROM pg_stat_user_tables WHERE schemaname = $1 \
         AND relname IN ('audit_log', 'audit_merkle_nodes', 'audit_pending') ORDER BY relname",
    )
    .bind(agency.ident.as_str())
    .fetch_all(&db.pool)
    .await
    .expect("pg_stat_user_tables")
}

/// Prints what the audit tables were scanned with since `before`. Backends report their counts
/// when idle, at most once a second and at the latest 10 s later: wait that out first.
async fn print_audit_scans(db: &TestDb, agency: &Agency, before: &[(String, i64, i64, i64)]) {
    tokio::time::sleep(Duration::from_secs(11)).await;
    let after = audit_scans(db, agency).await;
    let entries: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {}.audit_log",
        agency.ident.quoted()
    )))
    .fetch_one(&db.pool)
    .await
    .expect("audit_log size");
    println!("audit tables while measuring ({entries} entries in the log at the end):");
    for (table, seq, tup, idx) in after {
        let (s0, t0, i0) = before
            .iter()
            .find(|b| b.0 == table)
            .map_or((0, 0, 0), |b| (b.1, b.2, b.3));
        println!(
            "  {table}: {} sequential scans ({} tuples read), {} index scans",
            seq - s0,
            tup - t0,
            idx - i0
        );
    }
}

#[tokio::main]
async fn main() {
    let db = TestDb::new().await;
    let agency = db.onboard("bench-http").await;
    let officers = seed(&db, &agency, "officer", Role::Officer).await;
    let admins = seed(&db, &agency, "admin", Role::AgencyAdmin).await;
    let statements = std::env::var("HTTP_BENCH_ONLY").as_deref() == Ok("statements");
    if statements {
        // Only connections opened from now on (the server's) log their statements.
        let sql = format!(
            "ALTER DATABASE \"{}\" SET log_statement = 'all'",
            db_name(&db.url)
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&db.pool)
            .await
            .expect("log_statement");
    }
    if let Ok(ms) = std::env::var("HTTP_BENCH_EXPLAIN_MS") {
        // The plan of every statement of the server's connections slower than this, in
        // postgres.log (auto_explain; a number only, so the value is safe to splice).
        let ms: u32 = ms.parse().expect("HTTP_BENCH_EXPLAIN_MS: milliseconds");
        let name = db_name(&db.url);
        for sql in [
            format!("ALTER DATABASE \"{name}\" SET session_preload_libraries = 'auto_explain'"),
            format!("ALTER DATABASE \"{name}\" SET auto_explain.log_min_duration = '{ms}ms'"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&db.pool)
                .await
                .expect("auto_explain");
        }
    }
    if std::env::var("HTTP_BENCH_NOTIFY_EACH_WRITE").is_ok() {
        // The wake-up as it was before the server woke its own sequencer: a trigger notifying on
        // every audited commit. For comparison only.
        let schema = agency.ident.quoted();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE FUNCTION {schema}.bench_notify() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN PERFORM pg_notify('writ_audit_pending', current_setting('writ.agency_id')); \
             RETURN NULL; END $$; \
             CREATE TRIGGER bench_notify AFTER INSERT ON {schema}.audit_pending \
             FOR EACH STATEMENT EXECUTE FUNCTION {schema}.bench_notify()"
        )))
        .execute(&db.pool)
        .await
        .expect("notify trigger");
    }
    let limit = "1000000";
    let server = Server::start(
        &db,
        &[
            ("WRIT_RATE_LIMIT_ADMIN", limit),
            ("WRIT_RATE_LIMIT_STAFF", limit),
            ("WRIT_RATE_LIMIT_ANONYMOUS", limit),
        ],
    );
    let addr = server.addr;
    let read_tokens = tokens(&server, &officers).await;
    let write_tokens = tokens(&server, &admins).await;

    let scratch = tempfile::tempdir().expect("temp dir");
    let script = scratch.path().join("insert.sql");
    std::fs::write(&script, "INSERT INTO bench_insert (body) VALUES ('x');\n")
        .expect("pgbench script");
    sqlx::raw_sql(
        "CREATE TABLE bench_insert (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
         body text NOT NULL, at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&db.pool)
    .await
    .expect("pgbench table");
    let floor = FloorScripts::new(&db, &agency, &admins, &officers, scratch.path()).await;

    let secs = run_secs().as_secs();
    println!(
        "{} s per run after {} s of warm-up; {SESSIONS} sessions per role; writ serve with {} workers",
        secs,
        WARMUP.as_secs(),
        2
    );
    if statements {
        print_statements(&db, &server, &read_tokens, &write_tokens, &officers).await;
        return;
    }
    match std::env::var("HTTP_BENCH_ONLY").as_deref() {
        Ok("read") | Ok("write") => {
            let write = std::env::var("HTTP_BENCH_ONLY").as_deref() == Ok("write");
            let (scenario, tokens) = if write {
                (Scenario::UserWrite, &write_tokens)
            } else {
                (Scenario::SessionRead, &read_tokens)
            };
            let scans = audit_scans(&db, &agency).await;
            for clients in CLIENTS {
                let o = drive(addr, scenario, tokens, &officers, clients).await;
                println!(
                    "{clients} clients, {}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
                    scenario.label(),
                    o.rps,
                    o.p50_ms,
                    o.p99_ms
                );
            }
            if write {
                print_audit_scans(&db, &agency, &scans).await;
            }
            return;
        }
        Ok("floor") => {
            for clients in CLIENTS {
                let insert = pgbench_insert(&db.url, &script, clients);
                let (one_by_one, pipelined) = floor.run(&db, &agency, clients).await;
                println!(
                    "{clients} clients: pgbench INSERT {insert:.0}, the write's SQL {one_by_one:.0} \
                     ({:.1}%), pipelined {pipelined:.0} ({:.1}%)",
                    100.0 * one_by_one / insert,
                    100.0 * pipelined / insert
                );
            }
            return;
        }
        Ok(other) => panic!("HTTP_BENCH_ONLY: {other:?} is none of read, write, floor, statements"),
        Err(_) => {}
    }
    let mut rows = Vec::new();
    let mut writes_before = audited_writes(&db, &agency).await;
    let scans = audit_scans(&db, &agency).await;
    for clients in CLIENTS {
        let insert = pgbench_insert(&db.url, &script, clients);
        let healthz = drive(addr, Scenario::Healthz, &read_tokens, &officers, clients).await;
        let read = drive(
            addr,
            Scenario::SessionRead,
            &read_tokens,
            &officers,
            clients,
        )
        .await;
        let write = drive(addr, Scenario::UserWrite, &write_tokens, &officers, clients).await;
        // Every acknowledged write left its audit entry (warm-up writes included).
        let writes_after = audited_writes(&db, &agency).await;
        assert!(
            writes_after - writes_before >= write.ok as usize,
            "{} audited writes for {} acknowledged",
            writes_after - writes_before,
            write.ok
        );
        let sql = floor.run(&db, &agency, clients).await;
        // The floor's entries have the same action: count from after them.
        writes_before = audited_writes(&db, &agency).await;
        rows.push((clients, insert, healthz, read, write, sql));
    }

    println!();
    println!(
        "| clients | scenario | req/s | p50 ms | p99 ms | vs pgbench INSERT |\n|---|---|---|---|---|---|"
    );
    for (clients, insert, healthz, read, write, (one_by_one, pipelined)) in &rows {
        println!("| {clients} | pgbench single-row INSERT (baseline) | {insert:.0} | | | 1.00 |");
        for (label, tps) in [
            (
                "the write's SQL through pgbench, a round trip per statement",
                one_by_one,
            ),
            ("the write's SQL through pgbench, pipelined", pipelined),
        ] {
            println!(
                "| {clients} | {label} | {tps:.0} | | | {:.3} ({:.1}%) |",
                tps / insert,
                100.0 * tps / insert
            );
        }
        for (s, o) in [
            (Scenario::Healthz, healthz),
            (Scenario::SessionRead, read),
            (Scenario::UserWrite, write),
        ] {
            println!(
                "| {clients} | {} | {:.0} | {:.2} | {:.2} | {:.3} ({:.1}%) |",
                s.label(),
                o.rps,
                o.p50_ms,
                o.p99_ms,
                o.rps / insert,
                100.0 * o.rps / insert
            );
        }
    }
    println!();
    print_audit_scans(&db, &agency, &scans).await;
    drop(server);
}
