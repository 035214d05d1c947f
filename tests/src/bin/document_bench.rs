//! `make bench`: the encrypted document store's upload and download throughput over HTTP against
//! the raw AES-256-GCM throughput of the same crate (`aes-gcm`), measured in the same run on the
//! same machine (target: each direction at least 40% of raw AES-256-GCM), and the server's peak
//! memory at two document sizes (target: flat in the document size).
//!
//! The server is the real `writ serve` of this build (release under `make bench`) on a random
//! loopback port, once per document store: PostgreSQL (the default) and a directory
//! (`file://`, in a temporary directory); one officer uploads to their own warrant and downloads
//! it again. `DOCUMENT_BENCH_STORES` (`postgres,file` by default) chooses the stores. The client speaks HTTP/1.1 over a bare TCP connection: the upload is
//! generated as it is sent (1 MiB pieces, `Content-Length` given, nothing held whole) and the
//! download is hashed as it arrives (SHA-256 must equal the upload's, computed before the timed
//! run). The peak resident memory is the server's `VmHWM` (/proc/<pid>/status), read from a fresh
//! server per size after its upload and download.
//!
//! `DOCUMENT_BENCH_MIB` sets the large size (default 1024); the small one is an eighth of it (at
//! least 16 MiB). The raw baseline seals 256 MiB in 64 KiB chunks (the store's chunk size) with
//! `encrypt_in_place_detached` on one core.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use writ_auth_mfa::Role;
use writ_testkit::{TestDb, TestUser, owner_url, seed_user, server_url, serving_url};
use writ_warrant_workflow::presets::Preset;

const MIB: usize = 1024 * 1024;
const PIECE: usize = MIB;

/// Piece `i` of the generated document: deterministic, different per piece, starting like a PDF.
fn piece(buf: &mut [u8], i: usize) {
    buf[..8].copy_from_slice(&(i as u64).to_be_bytes());
    if i == 0 {
        buf[..9].copy_from_slice(b"%PDF-1.7\n");
    }
}

fn template() -> Vec<u8> {
    (0..PIECE)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0])
        .collect()
}

fn expected_sha256(mib: usize) -> String {
    let mut buf = template();
    let mut h = Sha256::new();
    for i in 0..mib {
        piece(&mut buf, i);
        h.update(&buf);
    }
    hex(&h.finalize())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// MB/s (10^6 bytes per second), as storage throughput is quoted.
fn mbps(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

fn raw_aes_gcm() -> f64 {
    let cipher = Aes256Gcm::new_from_slice(&[7u8; 32]).expect("key");
    let mut buf = vec![0x5au8; 64 * 1024];
    let total = 256 * MIB;
    // Warm up, then measure.
    for round in 0..2 {
        let start = Instant::now();
        for i in 0..(total / buf.len()) as u64 {
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&i.to_be_bytes());
            let tag = cipher
                .encrypt_in_place_detached(&Nonce::from(nonce), b"aad", &mut buf)
                .expect("encrypt");
            std::hint::black_box(&tag);
        }
        if round == 1 {
            return mbps(total, start.elapsed().as_secs_f64());
        }
    }
    unreachable!()
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM")
}

/// The `writ serve` of this build (the `writ` binary next to this one), on a random loopback
/// port, serving as `writ_app`; killed on drop.
struct Server {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(db: &TestDb, store: &str) -> Server {
        let exe = std::env::current_exe().expect("current exe");
        let bin = exe.with_file_name("writ");
        assert!(
            bin.is_file(),
            "{} not built (make bench builds it)",
            bin.display()
        );
        let mut child = Command::new(bin)
            .arg("serve")
            .env("DATABASE_URL", serving_url(&db.url))
            .env("WRIT_OWNER_DATABASE_URL", owner_url(&db.url))
            .env("WRIT_MASTER_KEY_FILE", &db.master_key_file)
            .env("WRIT_BIND", "127.0.0.1:0")
            .env("WRIT_WORKERS", "2")
            .env("WRIT_LOG", "error")
            .env("WRIT_ARGON2_MEMORY_KIB", "64")
            .env("WRIT_ARGON2_ITERATIONS", "1")
            .env("WRIT_DOCUMENT_STORE", store)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn writ serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut base = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("writ listening on ") {
                base = Some(url.to_owned());
                break;
            }
        }
        Server {
            child,
            base: base.expect("writ serve did not start listening"),
            http: reqwest::Client::new(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    async fn token(&self, user: &TestUser) -> String {
        let res = self
            .http
            .post(format!("{}/v1/auth/login", self.base))
            .json(&user.login_body())
            .send()
            .await
            .expect("login");
        let body: serde_json::Value = res.json().await.expect("login answer");
        body["accessToken"]
            .as_str()
            .expect("access token")
            .to_owned()
    }
}

fn host(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Reads an HTTP/1.1 response head; returns the status, the headers (lowercase names) and what
/// of the body came with it.
async fn read_head(conn: &mut TcpStream) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = conn.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let mut lines = head.split("\r\n");
            let status = lines
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok())
                .expect("status");
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            return (status, headers, buf[end + 4..].to_vec());
        }
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Uploads `mib` MiB; returns the document id and the seconds it took.
async fn upload(server: &Server, token: &str, warrant: &str, mib: usize) -> (String, f64) {
    let mut conn = TcpStream::connect(host(server)).await.expect("connect");
    conn.set_nodelay(true).ok();
    let head = format!(
        "POST /v1/warrants/{warrant}/documents?filename=bench.pdf HTTP/1.1\r\nHost: {}\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/pdf\r\n\
         Content-Length: {}\r\n\r\n",
        host(server),
        mib * MIB
    );
    let mut buf = template();
    let start = Instant::now();
    conn.write_all(head.as_bytes()).await.expect("write head");
    for i in 0..mib {
        piece(&mut buf, i);
        conn.write_all(&buf).await.expect("write body");
    }
    let (status, headers, mut body) = read_head(&mut conn).await;
    let len: usize = header(&headers, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while body.len() < len {
        let mut more = vec![0u8; len - body.len()];
        let n = conn.read(&mut more).await.expect("read");
        assert!(n > 0);
        body.extend_from_slice(&more[..n]);
    }
    let secs = start.elapsed().as_secs_f64();
    let doc: serde_json::Value = serde_json::from_slice(&body).expect("upload answer");
    assert_eq!(status, 201, "upload: {doc}");
    (doc["id"].as_str().expect("id").to_owned(), secs)
}

/// Downloads a document; returns its SHA-256, the server's `X-Writ-Document-Sha256`, its size and
/// the seconds it took.
async fn download(server: &Server, token: &str, id: &str) -> (String, String, usize, f64) {
    let mut conn = TcpStream::connect(host(server)).await.expect("connect");
    let head = format!(
        "GET /v1/documents/{id}/content HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n",
        host(server)
    );
    let start = Instant::now();
    conn.write_all(head.as_bytes()).await.expect("write");
    let (status, headers, first) = read_head(&mut conn).await;
    assert_eq!(status, 200, "download");
    let len: usize = header(&headers, "content-length")
        .and_then(|v| v.parse().ok())
        .expect("content-length");
    let claimed = header(&headers, "x-writ-document-sha256")
        .unwrap_or_default()
        .to_owned();
    let mut h = Sha256::new();
    h.update(&first);
    let mut got = first.len();
    let mut buf = vec![0u8; 256 * 1024];
    while got < len {
        let n = conn.read(&mut buf).await.expect("read body");
        assert!(n > 0, "body ended after {got} of {len} bytes");
        h.update(&buf[..n]);
        got += n;
    }
    let secs = start.elapsed().as_secs_f64();
    (hex(&h.finalize()), claimed, got, secs)
}

struct Run {
    mib: usize,
    up_secs: f64,
    down_secs: f64,
    hwm_after_upload_kib: u64,
    hwm_kib: u64,
}

async fn run(mib: usize, expected: &str, store: &str) -> Run {
    let db = TestDb::new().await;
    let agency = db.onboard("bench-docs").await;
    let officer = seed_user(&db, &agency, "officer.bench", Role::Officer).await;
    let admin = seed_user(&db, &agency, "admin.bench", Role::AgencyAdmin).await;
    let server = Server::start(&db, store);
    let admin_token = server.token(&admin).await;
    let (status, body) = server
        .call(
            reqwest::Method::POST,
            "/v1/auth/reauth",
            &admin_token,
            Some(json!({ "totp": admin.next_code() })),
        )
        .await;
    assert_eq!(status, 200, "step-up: {body}");
    let court = Preset::Federal.court(
        "d-minn",
        "U.S. District Court, D. Minn.",
        "America/Chicago".parse().expect("zone"),
    );
    for (name, value) in [
        ("warrant-types", json!({ "courts": [court] })),
        ("documents.max_bytes", json!({ "bytes": mib * MIB })),
    ] {
        let (status, body) = server
            .call(
                reqwest::Method::PUT,
                &format!("/v1/policies/{name}"),
                &admin_token,
                Some(json!({ "value": value })),
            )
            .await;
        assert_eq!(status, 200, "{name}: {body}");
    }
    let token = server.token(&officer).await;
    let (status, w) = server
        .call(
            reqwest::Method::POST,
            "/v1/warrants",
            &token,
            Some(json!({ "court": "d-minn", "type": "search", "content": {
                "place": "1200 Elm St", "itemsSought": ["phones"], "offense": "§ 609.11",
                "affidavit": "The affiant saw …" } })),
        )
        .await;
    assert_eq!(status, 201, "{w}");
    let warrant = w["id"].as_str().expect("warrant id").to_owned();

    let (id, up_secs) = upload(&server, &token, &warrant, mib).await;
    let hwm_after_upload_kib = vm_hwm_kib(server.pid());
    let (sha, claimed, size, down_secs) = download(&server, &token, &id).await;
    assert_eq!(size, mib * MIB, "downloaded size");
    assert_eq!(sha, expected, "downloaded SHA-256");
    assert_eq!(claimed, expected, "the stored documentHash");
    let hwm_kib = vm_hwm_kib(server.pid());
    drop(server);
    drop_database(db).await;
    Run {
        mib,
        up_secs,
        down_secs,
        hwm_after_upload_kib,
        hwm_kib,
    }
}

/// Drops the run's database: a gibibyte of ciphertext (and its WAL) should not outlive the run.
async fn drop_database(db: TestDb) {
    let name = db.url.rsplit('/').next().unwrap_or_default().to_owned();
    db.pool.close().await;
    let admin = sqlx::PgPool::connect(&server_url("postgres"))
        .await
        .expect("connect to the cluster");
    // The name was generated by TestDb (`t_<uuid>`), never input.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE \"{name}\" WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .expect("drop the benchmark database");
    sqlx::raw_sql("CHECKPOINT").execute(&admin).await.ok();
    admin.close().await;
}

#[tokio::main]
async fn main() {
    let large: usize = std::env::var("DOCUMENT_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let small = (large / 8).max(16).min(large);
    let stores = std::env::var("DOCUMENT_BENCH_STORES").unwrap_or_else(|_| "postgres,file".into());
    println!("document store benchmark: {small} MiB and {large} MiB");
    let raw = raw_aes_gcm();
    println!("raw AES-256-GCM (aes-gcm, one core, 64 KiB chunks): {raw:.0} MB/s");
    for kind in stores.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        // A directory store lives (and is removed) with the run.
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = match kind {
            "postgres" => "postgres".to_owned(),
            "file" => format!("file://{}", dir.path().join("documents").display()),
            other => panic!("DOCUMENT_BENCH_STORES: unknown store {other:?} (postgres, file)"),
        };
        println!("store: {kind}");
        let mut runs = Vec::new();
        for mib in [small, large] {
            let expected = expected_sha256(mib);
            let r = run(mib, &expected, &store).await;
            let bytes = r.mib * MIB;
            let up = mbps(bytes, r.up_secs);
            let down = mbps(bytes, r.down_secs);
            println!(
                "{:>5} MiB  upload {:>6.0} MB/s ({:>4.1}% of raw)  download {:>6.0} MB/s ({:>4.1}% of raw)  \
                 server peak RSS {:>4} MiB after upload, {:>4} MiB after download",
                r.mib,
                up,
                100.0 * up / raw,
                down,
                100.0 * down / raw,
                r.hwm_after_upload_kib / 1024,
                r.hwm_kib / 1024
            );
            runs.push(r);
        }
        let (a, b) = (&runs[0], &runs[1]);
        println!(
            "peak RSS growth from {} MiB to {} MiB of document: {:+} MiB",
            a.mib,
            b.mib,
            (b.hwm_kib as i64 - a.hwm_kib as i64) / 1024
        );
    }
}
