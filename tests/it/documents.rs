//! The encrypted document store through the real server: byte-exact round trips of small and
//! multi-chunk documents (hash as `sha256sum` computes it), altered, reordered and truncated
//! ciphertext that never releases bad plaintext, another agency (404, and its key cannot open the
//! copied ciphertext), wrong types (415) and oversize bodies (413) with nothing stored, soft
//! delete, legal holds, two-person erasure with a signed certificate naming its audit entry,
//! retention per tier, and the S3 store on moto.

use base64::Engine as _;
use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePublicKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use writ_auth_mfa::Role;
use writ_tenancy::{Agency, TenantTx};
use writ_testkit::audit::as_attacker;
use writ_testkit::{Moto, TestDb, TestServer, TestUser, audit_actions, seed_user, sequence};
use writ_warrant_workflow::presets::Preset;

const CHUNK: usize = 64 * 1024;

struct Who {
    user: TestUser,
    token: String,
}

struct Env {
    db: TestDb,
    agency: Agency,
    server: TestServer,
    officer: Who,
    officer2: Who,
    prosecutor: Who,
    prosecutor2: Who,
    admin: Who,
    auditor: Who,
    warrant: String,
}

async fn who(db: &TestDb, agency: &Agency, server: &TestServer, name: &str, role: Role) -> Who {
    let user = seed_user(db, agency, name, role).await;
    let token = server.token(&user).await;
    Who { user, token }
}

async fn env_with(slug: &str, server_env: &[(&str, &str)]) -> Env {
    let db = TestDb::new().await;
    let agency = db.onboard(slug).await;
    let server = TestServer::start_with(&db.url, &db.master_key_file, server_env);
    let officer = who(&db, &agency, &server, "officer.one", Role::Officer).await;
    let officer2 = who(&db, &agency, &server, "officer.two", Role::Officer).await;
    let prosecutor = who(&db, &agency, &server, "ada.one", Role::Prosecutor).await;
    let prosecutor2 = who(&db, &agency, &server, "ada.two", Role::Prosecutor).await;
    let admin = who(&db, &agency, &server, "admin.one", Role::AgencyAdmin).await;
    let auditor = who(&db, &agency, &server, "audit.one", Role::Auditor).await;
    server.step_up(&admin.user, &admin.token).await;
    let court = Preset::Federal.court(
        "d-minn",
        "U.S. District Court, D. Minn.",
        "America/Chicago".parse().unwrap(),
    );
    let (status, body) = server
        .call(
            "PUT",
            "/v1/policies/warrant-types",
            &admin.token,
            Some(json!({ "value": { "courts": [court] } })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let warrant = create_warrant(&server, &officer).await;
    Env {
        db,
        agency,
        server,
        officer,
        officer2,
        prosecutor,
        prosecutor2,
        admin,
        auditor,
        warrant,
    }
}

async fn env(slug: &str) -> Env {
    env_with(slug, &[]).await
}

async fn create_warrant(server: &TestServer, officer: &Who) -> String {
    let body = json!({ "court": "d-minn", "type": "search", "content": {
        "place": "1200 Elm St, Apt 3, Minneapolis",
        "itemsSought": ["cell phones"],
        "offense": "Minn. Stat. § 609.11",
        "affidavit": "On 2 March 2026 at 21:40 the affiant saw …\n",
    }});
    let (status, w) = server
        .call("POST", "/v1/warrants", &officer.token, Some(body))
        .await;
    assert_eq!(status, 201, "{w}");
    w["id"].as_str().unwrap().to_owned()
}

/// Deterministic bytes that differ at every offset, starting with a PDF header.
fn pdf(len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0])
        .collect();
    let head = b"%PDF-1.7\n";
    let n = head.len().min(len);
    v[..n].copy_from_slice(&head[..n]);
    v
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What `sha256sum` prints for `bytes`.
fn sha256sum(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doc");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("sha256sum")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

impl Env {
    async fn call(&self, who: &Who, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.server.call(method, path, &who.token, body).await
    }

    /// Uploads `bytes` to the env's warrant as `who`; `query` is appended to the path.
    async fn upload_as(
        &self,
        who: &Who,
        warrant: &str,
        bytes: Vec<u8>,
        query: &str,
        content_type: Option<&str>,
    ) -> (u16, Value) {
        let mut r = self
            .server
            .http
            .post(
                self.server
                    .url(&format!("/v1/warrants/{warrant}/documents{query}")),
            )
            .bearer_auth(&who.token)
            .body(bytes);
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        let res = r.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn upload(&self, bytes: Vec<u8>, query: &str) -> Value {
        let (status, doc) = self
            .upload_as(&self.officer, &self.warrant, bytes, query, None)
            .await;
        assert_eq!(status, 201, "{doc}");
        doc
    }

    /// GET content: the status, the bytes released before the body ended, and whether it
    /// ended cleanly.
    /// The status, the body as far as it came, and whether it ended cleanly. A download that
    /// fails before its first byte (a tampered chunk right after the one withheld) closes the
    /// connection without a response: status 0.
    async fn download(&self, who: &Who, id: &str) -> (u16, Vec<u8>, bool) {
        self.download_range(who, id, None).await
    }

    /// The status, the body received and whether it ended cleanly, for a `Range` when given.
    async fn download_range(
        &self,
        who: &Who,
        id: &str,
        range: Option<&str>,
    ) -> (u16, Vec<u8>, bool) {
        let mut request = self
            .server
            .http
            .get(self.server.url(&format!("/v1/documents/{id}/content")))
            .bearer_auth(&who.token);
        if let Some(range) = range {
            request = request.header("range", range);
        }
        let sent = request.send().await;
        let Ok(mut res) = sent else {
            return (0, Vec::new(), false);
        };
        let status = res.status().as_u16();
        let mut body = Vec::new();
        loop {
            match res.chunk().await {
                Ok(Some(b)) => body.extend_from_slice(&b),
                Ok(None) => return (status, body, true),
                Err(_) => return (status, body, false),
            }
        }
    }

    fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.agency.ident.quoted())
    }

    async fn count(&self, table: &str, filter: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {} {filter}",
            self.table(table)
        )))
        .fetch_one(&self.db.pool)
        .await
        .unwrap()
    }

    async fn chunk_rows(&self, doc: &str) -> i64 {
        self.count("document_chunks", &format!("WHERE document_id = '{doc}'"))
            .await
    }

    async fn has_key(&self, doc: &str) -> bool {
        self.count("data_keys", &format!("WHERE id = '{doc}'"))
            .await
            == 1
    }

    /// The sequenced audit entries with `action`.
    /// Erasure of `doc_id` by two people: requested by the admin, approved (stepped up) by a
    /// prosecutor; the approval's answer.
    async fn erase(&self, doc_id: &str) -> Value {
        let (status, request) = self
            .call(
                &self.admin,
                "POST",
                &format!("/v1/documents/{doc_id}/erasure-requests"),
                Some(json!({"reason": "duplicate upload"})),
            )
            .await;
        assert_eq!(status, 201, "{request}");
        self.server
            .step_up(&self.prosecutor.user, &self.prosecutor.token)
            .await;
        let (status, done) = self
            .call(
                &self.prosecutor,
                "POST",
                &format!("/v1/erasure-requests/{}/approve", id(&request)),
                None,
            )
            .await;
        assert_eq!(status, 200, "{done}");
        done
    }

    async fn entries(&self, action: &str) -> Vec<Value> {
        writ_testkit::audit::entries_with_action(&self.db, &self.agency, action).await
    }

    /// The failed `document.decrypt` entries (recorded off the request's path).
    async fn integrity_failures(&self) -> usize {
        self.entries("document.decrypt")
            .await
            .iter()
            .filter(|e| e["outcome"] == "failure")
            .count()
    }

    /// Waits until more than `before` integrity failures are recorded.
    async fn integrity_failure_recorded_after(&self, before: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.integrity_failures().await <= before {
            assert!(
                std::time::Instant::now() < deadline,
                "no integrity failure recorded"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn small_and_multi_chunk_documents_round_trip_byte_exact() {
    let env = env("docs-round").await;
    let text = "Exhibit A: statement of the witness, 2 March 2026.\nÜberstunden – café.\n"
        .repeat(20)
        .into_bytes();
    let small = env
        .upload(text.clone(), "?classification=2&filename=exhibit-a.txt")
        .await;
    assert_eq!(small["contentType"], "text/plain");
    assert_eq!(small["classification"], 2);
    assert_eq!(small["filename"], "exhibit-a.txt");
    assert_eq!(small["size"], text.len());
    assert_eq!(small["chunks"], 1);
    assert_eq!(small["storage"], "postgres");
    assert_eq!(
        small["documentHash"],
        format!("sha256:{}", sha256sum(&text))
    );

    // Three full chunks and a partial one.
    let big = pdf(3 * CHUNK + 12_345);
    let doc = env.upload(big.clone(), "").await;
    assert_eq!(doc["contentType"], "application/pdf");
    assert_eq!(doc["classification"], 4, "CJI unless said otherwise");
    assert_eq!(doc["chunks"], 4);
    assert_eq!(doc["documentHash"], format!("sha256:{}", sha256sum(&big)));
    assert_eq!(env.chunk_rows(&id(&doc)).await, 4);
    assert!(env.has_key(&id(&doc)).await);

    // No plaintext in the database: the PDF's bytes appear in no stored record.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT bytes FROM {} WHERE document_id = $1 ORDER BY idx",
        env.table("document_chunks")
    )))
    .bind(uuid::Uuid::parse_str(&id(&doc)).unwrap())
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(stored[0].len(), CHUNK + 16);
    assert_eq!(stored[3].len(), 12_345 + 16);
    assert!(
        stored
            .iter()
            .all(|r| r.windows(64).all(|w| w != &big[1000..1064]))
    );

    for (doc, plain) in [(&small, &text), (&doc, &big)] {
        let res = env
            .server
            .http
            .get(
                env.server
                    .url(&format!("/v1/documents/{}/content", id(doc))),
            )
            .bearer_auth(&env.prosecutor.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers()["x-writ-document-sha256"].to_str().unwrap(),
            sha256_hex(plain)
        );
        assert_eq!(
            res.headers()["content-length"].to_str().unwrap(),
            plain.len().to_string()
        );
        let body = res.bytes().await.unwrap();
        assert!(body[..] == plain[..], "byte-exact");
        assert_eq!(sha256_hex(&body), sha256sum(plain));
    }

    let (status, meta) = env
        .call(
            &env.officer,
            "GET",
            &format!("/v1/documents/{}", id(&doc)),
            None,
        )
        .await;
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["documentHash"], doc["documentHash"]);
    let (status, list) = env
        .call(
            &env.officer2,
            "GET",
            &format!("/v1/warrants/{}/documents", env.warrant),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);

    // Only the warrant's author uploads; auditors read no documents.
    let (status, _) = env
        .upload_as(&env.officer2, &env.warrant, text.clone(), "", None)
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = env.download(&env.auditor, &id(&doc)).await;
    assert_eq!(status, 403);
    let (status, body) = env
        .upload_as(&env.officer, &env.warrant, text, "?classification=5", None)
        .await;
    assert_eq!(status, 422, "{body}");

    // A sealed warrant's documents are 404 for those who may not see the warrant (its own
    // author included), like the warrant itself.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {} SET sealed = true WHERE id = '{}'",
        env.table("warrants"),
        env.warrant
    )))
    .execute(&env.db.pool)
    .await
    .unwrap();
    for path in [
        format!("/v1/documents/{}", id(&doc)),
        format!("/v1/documents/{}/content", id(&doc)),
        format!("/v1/warrants/{}/documents", env.warrant),
    ] {
        let (status, _) = env.call(&env.officer, "GET", &path, None).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _, clean) = env.download(&env.prosecutor, &id(&doc)).await;
    assert!(status == 200 && clean, "prosecutors see sealed warrants");

    let actions = audit_actions(&env.db, &env.agency).await;
    for a in [
        "document.upload",
        "document.encrypt",
        "document.view",
        "document.download",
        "document.decrypt",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} missing: {actions:?}");
    }
    let uploads = env.entries("document.upload").await;
    assert_eq!(uploads.len(), 2);
    assert_eq!(uploads[1]["resource"]["documentId"], doc["id"]);
    assert_eq!(uploads[1]["resource"]["documentHash"], doc["documentHash"]);
    assert_eq!(env.entries("document.download").await.len(), 3);
}

#[tokio::test]
async fn altered_reordered_and_truncated_chunks_never_release_bad_plaintext() {
    let env = env("docs-tamper").await;
    let plain = pdf(4 * CHUNK + 1000);
    let doc = env.upload(plain.clone(), "").await;
    let doc_id = id(&doc);
    let chunks = env.table("document_chunks");
    let (status, body, clean) = env.download(&env.officer, &doc_id).await;
    assert!(status == 200 && clean && body == plain);

    // One bit of chunk 2 flipped.
    let flip = |idx: i32| {
        format!(
            "UPDATE {chunks} SET bytes = overlay(bytes placing \
             set_byte(substring(bytes from 11 for 1), 0, get_byte(bytes, 10) # 1) from 11 for 1) \
             WHERE document_id = '{doc_id}' AND idx = {idx}"
        )
    };
    as_attacker(&env.db, &flip(2)).await;
    let (status, released, clean) = env.download(&env.officer, &doc_id).await;
    assert_eq!(status, 200);
    assert!(!clean, "the body must end in an error");
    assert!(
        released.len() <= 2 * CHUNK,
        "{} bytes released",
        released.len()
    );
    assert!(
        released[..] == plain[..released.len()],
        "only authenticated plaintext"
    );
    as_attacker(&env.db, &flip(2)).await;
    let (_, body, clean) = env.download(&env.officer, &doc_id).await;
    assert!(clean && body == plain, "restored");

    // Chunks 1 and 3 swapped.
    let swap = format!(
        "UPDATE {chunks} c SET bytes = o.bytes FROM {chunks} o \
         WHERE c.document_id = '{doc_id}' AND o.document_id = c.document_id \
           AND ((c.idx = 1 AND o.idx = 3) OR (c.idx = 3 AND o.idx = 1))"
    );
    as_attacker(&env.db, &swap).await;
    let (_, released, clean) = env.download(&env.officer, &doc_id).await;
    assert!(!clean);
    assert!(released.len() <= CHUNK, "{} bytes released", released.len());
    assert!(released[..] == plain[..released.len()]);
    // A range is read from its own chunk on: one in chunk 3 finds chunk 1's record there, one
    // past it reads neither.
    let (_, released, clean) = env
        .download_range(
            &env.officer,
            &doc_id,
            Some(&format!("bytes={}-", 3 * CHUNK + 5)),
        )
        .await;
    assert!(!clean && released.is_empty());
    let (status, tail, clean) = env
        .download_range(
            &env.officer,
            &doc_id,
            Some(&format!("bytes={}-", 4 * CHUNK)),
        )
        .await;
    assert!(status == 206 && clean && tail == plain[4 * CHUNK..]);
    as_attacker(&env.db, &swap).await;

    // The recorded hash rewritten: every chunk authenticates, but the final one is withheld and
    // the stream fails, so no reader gets a file whose hash differs from the one shown.
    let documents = env.table("documents");
    let rewrite =
        |hash: &str| format!("UPDATE {documents} SET sha256 = '{hash}' WHERE id = '{doc_id}'");
    let recorded = doc["documentHash"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    as_attacker(&env.db, &rewrite(&"0".repeat(64))).await;
    let (status, released, clean) = env.download(&env.officer, &doc_id).await;
    assert_eq!(status, 200);
    assert!(!clean, "a changed recorded hash never ends cleanly");
    assert_eq!(released.len(), 3 * CHUNK, "all but the last two chunks");
    assert!(released[..] == plain[..released.len()]);
    as_attacker(&env.db, &rewrite(&recorded)).await;
    let (_, body, clean) = env.download(&env.officer, &doc_id).await;
    assert!(clean && body == plain, "restored");

    // The final record removed: the stream ends after full records, which is truncation.
    as_attacker(
        &env.db,
        &format!("DELETE FROM {chunks} WHERE document_id = '{doc_id}' AND idx = 4"),
    )
    .await;
    let (_, released, clean) = env.download(&env.officer, &doc_id).await;
    assert!(!clean, "a truncated document never ends cleanly");
    assert!(released.len() <= 4 * CHUNK);
    assert!(released[..] == plain[..released.len()]);

    // Each failed download is on the record as a failed decryption of this document (written
    // after the response ended, so waited for).
    let failed = |entries: Vec<Value>| -> Vec<Value> {
        entries
            .into_iter()
            .filter(|e| e["outcome"] == "failure")
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut failures = failed(env.entries("document.decrypt").await);
    while failures.len() < 5 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        failures = failed(env.entries("document.decrypt").await);
    }
    assert_eq!(failures.len(), 5, "{failures:#?}");
    for f in &failures {
        assert_eq!(f["resource"]["documentId"], json!(doc_id));
        assert_eq!(f["detail"]["integrity"], "failed");
        assert_eq!(f["actor"]["role"], "officer");
    }
}

/// A download the document's erasure cuts short fails, as it must (the records are gone), but is
/// no evidence of tampering: only a real alteration is recorded as a failed decryption.
#[tokio::test]
async fn a_download_cut_short_by_an_erasure_is_not_recorded_as_tampering() {
    let env = env("erase-mid").await;
    // Larger than what the server reads ahead and the sockets hold.
    let doc_id = id(&env.upload(pdf(300 * CHUNK), "").await);
    let mut res = env
        .server
        .http
        .get(env.server.url(&format!("/v1/documents/{doc_id}/content")))
        .bearer_auth(&env.officer.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.chunk().await.unwrap().is_some());
    env.erase(&doc_id).await;
    let clean = loop {
        match res.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    assert!(!clean, "the erasure ends the download");

    let tampered = id(&env.upload(pdf(2 * CHUNK + 1), "").await);
    as_attacker(
        &env.db,
        &format!(
            "UPDATE {} SET bytes = overlay(bytes placing '\\x00'::bytea from 11 for 1) \
             WHERE document_id = '{tampered}' AND idx = 1",
            env.table("document_chunks")
        ),
    )
    .await;
    let (_, _, clean) = env.download(&env.officer, &tampered).await;
    assert!(!clean);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let failures = loop {
        let failures: Vec<Value> = env
            .entries("document.decrypt")
            .await
            .into_iter()
            .filter(|e| e["outcome"] == "failure")
            .collect();
        if !failures.is_empty() || std::time::Instant::now() > deadline {
            break failures;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert_eq!(failures[0]["resource"]["documentId"], json!(tampered));
}

#[tokio::test]
async fn another_agency_sees_404_and_its_key_cannot_open_the_ciphertext() {
    let env = env("docs-a").await;
    let plain = pdf(CHUNK + 77);
    let doc = env.upload(plain.clone(), "").await;
    let doc_id = id(&doc);

    let other = env.db.onboard("docs-b").await;
    let b_officer = who(&env.db, &other, &env.server, "officer.b", Role::Officer).await;
    let b_admin = who(&env.db, &other, &env.server, "admin.b", Role::AgencyAdmin).await;
    for path in [
        format!("/v1/documents/{doc_id}"),
        format!("/v1/documents/{doc_id}/content"),
        format!("/v1/warrants/{}/documents", env.warrant),
    ] {
        let (status, body) = env.call(&b_officer, "GET", &path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let (status, _) = env
        .call(
            &b_admin,
            "PUT",
            &format!("/v1/documents/{doc_id}/legal-hold"),
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(status, 404);

    // Agency B's database holding A's ciphertext and wrapped key, on a warrant of B's: B's keys
    // cannot unwrap the key (bound to A), and no plaintext comes out.
    env.server.step_up(&b_admin.user, &b_admin.token).await;
    let court = Preset::Federal.court("d-minn", "D. Minn.", "America/Chicago".parse().unwrap());
    let (status, _) = env
        .call(
            &b_admin,
            "PUT",
            "/v1/policies/warrant-types",
            Some(json!({ "value": { "courts": [court] } })),
        )
        .await;
    assert_eq!(status, 200);
    let b_warrant = create_warrant(&env.server, &b_officer).await;
    let (a, b) = (env.agency.ident.quoted(), other.ident.quoted());
    let b_id = other.id;
    let copies = [
        format!(
            "INSERT INTO {b}.data_keys (agency_id, id, kek_version, wrapped) \
             SELECT '{b_id}', id, kek_version, wrapped FROM {a}.data_keys WHERE id = '{doc_id}'"
        ),
        format!(
            "INSERT INTO {b}.documents (agency_id, id, warrant_id, content_type, classification, \
               size, sha256, chunks, sealed_size, storage, seal_header, uploaded_by, uploaded_at) \
             SELECT '{b_id}', id, '{b_warrant}', content_type, classification, size, sha256, \
               chunks, sealed_size, storage, seal_header, '{}', uploaded_at \
             FROM {a}.documents WHERE id = '{doc_id}'",
            b_officer.user.id
        ),
        format!(
            "INSERT INTO {b}.document_chunks (agency_id, document_id, idx, bytes) \
             SELECT '{b_id}', document_id, idx, bytes FROM {a}.document_chunks \
             WHERE document_id = '{doc_id}'"
        ),
    ];
    for sql in &copies {
        as_attacker(&env.db, sql).await;
    }
    let (status, released, _) = env.download(&b_officer, &doc_id).await;
    // The key's wrap is bound to agency A: B's key-encryption key cannot unwrap it (500, logged
    // as an integrity failure), so no byte of the ciphertext is ever opened in B.
    assert_eq!(status, 500, "agency B must not open A's document");
    assert!(
        released.windows(64).all(|w| w != &plain[100..164]),
        "no plaintext"
    );
    // And A's own copy still opens.
    let (status, body, clean) = env.download(&env.officer, &doc_id).await;
    assert!(status == 200 && clean && body == plain);
}

/// Sends a chunked upload (no `Content-Length`) over a raw connection; returns the status.
async fn chunked_upload(env: &Env, bytes: &[u8]) -> u16 {
    let addr = env.server.base.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/warrants/{}/documents HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
        env.warrant, env.officer.token
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    for piece in bytes.chunks(10_000) {
        let framed = [format!("{:x}\r\n", piece.len()).as_bytes(), piece, b"\r\n"].concat();
        if conn.write_all(&framed).await.is_err() {
            break; // the server answered and closed early
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = vec![0u8; 512];
    let n = conn.read(&mut answer).await.unwrap();
    let line = String::from_utf8_lossy(&answer[..n]).to_string();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn wrong_types_are_415_and_oversize_bodies_413_with_nothing_stored() {
    let env = env("docs-limits").await;
    let before = (
        env.count("documents", "").await,
        env.count("document_chunks", "").await,
        env.count("data_keys", "").await,
    );
    let elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".repeat(100);
    let (status, body) = env
        .upload_as(&env.officer, &env.warrant, elf, "", None)
        .await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(body["type"], "urn:writ:problem:unsupported-media-type");
    // An empty body is no document (it would have passed as empty text).
    let (status, body) = env
        .upload_as(&env.officer, &env.warrant, Vec::new(), "", None)
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "body", "{body}");
    // A ZIP that is not a DOCX, and a PDF declared as plain text.
    let mut zip =
        b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0\0\0\0\0\x05\0\0\0\x05\0\0\0\x0a\0\0\0".to_vec();
    zip.extend_from_slice(b"xl/a.xmlxxhello");
    let (status, _) = env
        .upload_as(&env.officer, &env.warrant, zip, "", None)
        .await;
    assert_eq!(status, 415);
    let (status, _) = env
        .upload_as(&env.officer, &env.warrant, pdf(500), "", Some("text/plain"))
        .await;
    assert_eq!(status, 415);
    let (status, _) = env
        .upload_as(
            &env.officer,
            &env.warrant,
            pdf(500),
            "",
            Some("application/pdf"),
        )
        .await;
    assert_eq!(status, 201, "the declared type agrees with the bytes");
    let before = (before.0 + 1, before.1 + 1, before.2 + 1);

    let (status, body) = env
        .call(
            &env.admin,
            "PUT",
            "/v1/policies/documents.max_bytes",
            Some(json!({ "value": { "bytes": 3 * CHUNK } })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Refused on Content-Length at once, and counted while streaming when it is chunked.
    let (status, body) = env
        .upload_as(&env.officer, &env.warrant, pdf(3 * CHUNK + 1), "", None)
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["type"], "urn:writ:problem:payload-too-large");
    assert_eq!(chunked_upload(&env, &pdf(5 * CHUNK)).await, 413);
    assert_eq!(
        chunked_upload(&env, &pdf(3 * CHUNK)).await,
        201,
        "at the limit"
    );
    let after = (
        env.count("documents", "").await,
        env.count("document_chunks", "").await,
        env.count("data_keys", "").await,
    );
    assert_eq!(
        after,
        (before.0 + 1, before.1 + 4, before.2 + 1),
        "nothing stored by the refusals"
    );
}

#[tokio::test]
async fn soft_deleted_documents_are_invisible_but_retained() {
    let env = env("docs-delete").await;
    let doc = env.upload(pdf(2 * CHUNK), "").await;
    let doc_id = id(&doc);
    let (status, _) = env
        .call(
            &env.officer2,
            "DELETE",
            &format!("/v1/documents/{doc_id}"),
            None,
        )
        .await;
    assert_eq!(status, 403, "not the author's warrant");
    let (status, _) = env
        .call(
            &env.officer,
            "DELETE",
            &format!("/v1/documents/{doc_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    for path in [
        format!("/v1/documents/{doc_id}"),
        format!("/v1/documents/{doc_id}/content"),
    ] {
        let (status, _) = env.call(&env.admin, "GET", &path, None).await;
        assert_eq!(status, 404, "{path}");
    }
    let (_, list) = env
        .call(
            &env.officer,
            "GET",
            &format!("/v1/warrants/{}/documents", env.warrant),
            None,
        )
        .await;
    assert_eq!(list, json!([]));
    assert_eq!(
        env.count(
            "documents",
            &format!("WHERE id = '{doc_id}' AND deleted_at IS NOT NULL")
        )
        .await,
        1
    );
    assert_eq!(env.chunk_rows(&doc_id).await, 3);
    assert!(env.has_key(&doc_id).await);
    // Still there to be preserved or destroyed, by id.
    let (status, held) = env
        .call(
            &env.admin,
            "PUT",
            &format!("/v1/documents/{doc_id}/legal-hold"),
            Some(json!({"reason": "subpoena"})),
        )
        .await;
    assert_eq!(status, 200, "{held}");
    let (status, _) = env
        .call(
            &env.admin,
            "DELETE",
            &format!("/v1/documents/{doc_id}/legal-hold"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, request) = env
        .call(
            &env.prosecutor,
            "POST",
            &format!("/v1/documents/{doc_id}/erasure-requests"),
            Some(json!({"reason": "uploaded by mistake"})),
        )
        .await;
    assert_eq!(status, 201, "{request}");
    let deletes = env.entries("document.delete").await;
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0]["resource"]["documentId"], doc_id);
    // The agency role cannot remove the ciphertext or the key of a document not erased.
    for sql in [
        format!(
            "DELETE FROM {} WHERE document_id = '{doc_id}'",
            env.table("document_chunks")
        ),
        format!(
            "DELETE FROM {} WHERE id = '{doc_id}'",
            env.table("data_keys")
        ),
    ] {
        let mut tx = TenantTx::begin(&env.db.pool, &env.agency).await.unwrap();
        let e = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(tx.conn())
            .await
            .unwrap_err();
        assert_eq!(
            writ_testkit::audit::sqlstate(&e).as_deref(),
            Some("42501"),
            "{e}"
        );
    }
}

async fn verify_certificate(env: &Env, signed: &Value) {
    let (status, keys) = env.call(&env.auditor, "GET", "/v1/audit/keys", None).await;
    assert_eq!(status, 200, "{keys}");
    let sig = &signed["signature"];
    assert_eq!(sig["algorithm"], "ecdsa-p256-sha256");
    let key = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["keyId"] == sig["keyId"])
        .expect("the signing key is published");
    let vk = p256::ecdsa::VerifyingKey::from_public_key_pem(key["publicKeyPem"].as_str().unwrap())
        .unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(sig["signature"].as_str().unwrap())
        .unwrap();
    let signature = p256::ecdsa::Signature::from_der(&der).unwrap();
    let message = writ_audit_chain::canonicalize(&signed["certificate"]).unwrap();
    vk.verify(&message, &signature)
        .expect("the certificate verifies with the agency's key");
    let mut forged = signed["certificate"].clone();
    forged["size"] = json!(1);
    let forged = writ_audit_chain::canonicalize(&forged).unwrap();
    assert!(vk.verify(&forged, &signature).is_err());
}

#[tokio::test]
async fn erasure_takes_two_people_no_legal_hold_and_yields_a_signed_certificate() {
    let env = env("docs-erase").await;
    let plain = pdf(2 * CHUNK + 5);
    let doc = env.upload(plain.clone(), "").await;
    let doc_id = id(&doc);
    let hash = doc["documentHash"].clone();

    let (status, _) = env
        .call(
            &env.officer,
            "POST",
            &format!("/v1/documents/{doc_id}/erasure-requests"),
            Some(json!({"reason": "wrong warrant"})),
        )
        .await;
    assert_eq!(status, 403, "officers do not request erasure");
    let (status, request) = env
        .call(
            &env.prosecutor,
            "POST",
            &format!("/v1/documents/{doc_id}/erasure-requests"),
            Some(json!({"reason": "uploaded to the wrong warrant"})),
        )
        .await;
    assert_eq!(status, 201, "{request}");
    assert_eq!(request["status"], "pending");
    let erasure = id(&request);
    let approve = format!("/v1/erasure-requests/{erasure}/approve");
    let certificate = format!("/v1/erasure-requests/{erasure}/certificate");

    let (status, body) = env.call(&env.prosecutor2, "POST", &approve, None).await;
    assert_eq!(status, 401, "approval needs step-up: {body}");
    assert_eq!(body["type"], "urn:writ:problem:step-up-required");
    // The same person twice: refused, and the refusal is audited.
    env.server
        .step_up(&env.prosecutor.user, &env.prosecutor.token)
        .await;
    let (status, body) = env.call(&env.prosecutor, "POST", &approve, None).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        audit_actions(&env.db, &env.agency)
            .await
            .iter()
            .any(|a| a == "authz.denied")
    );
    // The second person is a prosecutor: an administrator, even stepped up, does not approve.
    env.server.step_up(&env.admin.user, &env.admin.token).await;
    let (status, body) = env.call(&env.admin, "POST", &approve, None).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = env.call(&env.auditor, "GET", &certificate, None).await;
    assert_eq!(status, 409, "no certificate before the erasure");

    // A legal hold blocks the erasure, and a new request.
    let (status, held) = env
        .call(
            &env.admin,
            "PUT",
            &format!("/v1/documents/{doc_id}/legal-hold"),
            Some(json!({"reason": "Preservation order 2026-CR-0193"})),
        )
        .await;
    assert_eq!(status, 200, "{held}");
    assert_eq!(
        held["legalHold"]["reason"],
        "Preservation order 2026-CR-0193"
    );
    env.server
        .step_up(&env.prosecutor2.user, &env.prosecutor2.token)
        .await;
    let (status, body) = env.call(&env.prosecutor2, "POST", &approve, None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "urn:writ:problem:legal-hold");
    assert!(env.has_key(&doc_id).await);
    let (status, _) = env
        .call(
            &env.prosecutor,
            "DELETE",
            &format!("/v1/documents/{doc_id}/legal-hold"),
            None,
        )
        .await;
    assert_eq!(status, 200, "released (the prosecutor is stepped up)");

    let (status, done) = env.call(&env.prosecutor2, "POST", &approve, None).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["request"]["status"], "erased");
    assert_eq!(
        done["request"]["approvedBy"],
        env.prosecutor2.user.id.to_string()
    );
    let (status, again) = env.call(&env.prosecutor2, "POST", &approve, None).await;
    assert_eq!(status, 409, "{again}");

    // Gone: content 410, key and ciphertext destroyed, metadata kept.
    let (status, released, _) = env.download(&env.officer, &doc_id).await;
    assert_eq!(status, 410);
    let problem: Value = serde_json::from_slice(&released).unwrap();
    assert_eq!(problem["type"], "urn:writ:problem:erased");
    assert_eq!(env.chunk_rows(&doc_id).await, 0);
    assert!(!env.has_key(&doc_id).await);
    let (status, meta) = env
        .call(
            &env.officer,
            "GET",
            &format!("/v1/documents/{doc_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(meta["erasedAt"].is_string());
    assert_eq!(meta["documentHash"], hash);

    // The certificate verifies and names the document.erase entry that recorded the erasure.
    let (status, signed) = env.call(&env.auditor, "GET", &certificate, None).await;
    assert_eq!(status, 200, "{signed}");
    assert_eq!(signed, done["certificate"], "signed once, served as stored");
    let cert = &signed["certificate"];
    assert_eq!(cert["format"], "writ-document-erasure/1");
    assert_eq!(cert["documentId"], doc_id);
    assert_eq!(cert["documentHash"], hash);
    assert_eq!(cert["size"], plain.len());
    assert_eq!(cert["requestedBy"], env.prosecutor.user.id.to_string());
    assert_eq!(cert["approvedBy"], env.prosecutor2.user.id.to_string());
    verify_certificate(&env, &signed).await;
    sequence(&env.db, &env.agency).await;
    let entry: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT entry::jsonb FROM {} WHERE seq = $1",
        env.table("audit_log")
    )))
    .bind(cert["auditSeq"].as_i64().unwrap())
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(entry["action"], "document.erase");
    assert_eq!(entry["detail"]["step"], "erased");
    assert_eq!(entry["resource"]["documentId"], doc_id);
    assert_eq!(entry["hash"], cert["auditEntryHash"]);
    let holds = env.entries("document.legal_hold").await;
    assert_eq!(holds.len(), 2);
}

#[tokio::test]
async fn retention_erases_due_tiers_but_never_cji_or_held_documents() {
    let env = env("docs-retain").await;
    let tier3 = env.upload(pdf(1000), "?classification=3").await;
    let held = env.upload(pdf(1000), "?classification=3").await;
    let cji = env.upload(pdf(1000), "?classification=4").await;
    let (status, _) = env
        .call(
            &env.admin,
            "PUT",
            &format!("/v1/documents/{}/legal-hold", id(&held)),
            Some(json!({"reason": "litigation"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = env
        .call(
            &env.admin,
            "PUT",
            "/v1/policies/documents.retention",
            Some(json!({ "value": { "tier3Days": 30 } })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = env
        .call(
            &env.admin,
            "PUT",
            "/v1/policies/documents.retention",
            Some(json!({ "value": { "tier4Days": 30 } })),
        )
        .await;
    assert_eq!(status, 422, "CJI is never erased automatically");

    let run = |days: i64| {
        let env = &env;
        async move {
            let mut tx = TenantTx::begin(&env.db.pool, &env.agency).await.unwrap();
            let report = writ_documents::retention::run_due(
                &mut tx,
                chrono::Utc::now() + chrono::Duration::days(days),
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
            report
        }
    };
    assert_eq!(run(29).await.erased, 0, "not yet due");
    // An erasure asked for meanwhile, still waiting for its second person.
    let (status, asked) = env
        .call(
            &env.admin,
            "POST",
            &format!("/v1/documents/{}/erasure-requests", id(&tier3)),
            Some(json!({"reason": "duplicate upload"})),
        )
        .await;
    assert_eq!(status, 201, "{asked}");
    let report = run(31).await;
    assert_eq!((report.erased, report.held), (1, 1));
    // Retention erased the document: the request leaves the pending list, superseded.
    let (_, pending) = env
        .call(&env.admin, "GET", "/v1/erasure-requests", None)
        .await;
    assert_eq!(pending, json!([]), "{pending}");
    let (_, asked) = env
        .call(
            &env.admin,
            "GET",
            &format!("/v1/erasure-requests/{}", id(&asked)),
            None,
        )
        .await;
    assert_eq!(asked["status"], "superseded", "{asked}");
    let (status, _, _) = env.download(&env.officer, &id(&tier3)).await;
    assert_eq!(status, 410);
    for kept in [&held, &cji] {
        let (status, _, clean) = env.download(&env.officer, &id(kept)).await;
        assert!(status == 200 && clean);
    }
    let entries: Vec<Value> = env
        .entries("document.erase")
        .await
        .into_iter()
        .filter(|e| e["detail"]["step"] == "erased")
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["actor"]["role"], "system");
    assert_eq!(entries[0]["detail"]["kind"], "retention");
    assert_eq!(
        entries[0]["detail"]["supersededRequests"],
        json!([asked["id"]])
    );
    let (_, meta) = env
        .call(
            &env.officer,
            "GET",
            &format!("/v1/documents/{}", id(&tier3)),
            None,
        )
        .await;
    let erasure = meta["erasureId"].as_str().unwrap();
    let (status, signed) = env
        .call(
            &env.admin,
            "GET",
            &format!("/v1/erasure-requests/{erasure}/certificate"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{signed}");
    assert_eq!(signed["certificate"]["kind"], "retention");
    assert_eq!(signed["certificate"]["approvedBy"], Value::Null);
    verify_certificate(&env, &signed).await;
}

// moto's S3, over its plain REST API (moto serves private objects only to signed-looking requests).
const MOTO_AUTH: &str = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, \
                         SignedHeaders=host, Signature=00";

/// What a range reads in a store that holds `sealed` (a document of 3 chunks and a bit), whose
/// bytes `write` replaces: from the chunk holding its first byte on, each chunk still at its own
/// position. `sealed` is written back at the end.
async fn a_range_reads_from_its_own_chunk(
    env: &Env,
    doc_id: &str,
    plain: &[u8],
    sealed: &[u8],
    write: impl AsyncFn(Vec<u8>),
) {
    const RECORD: usize = CHUNK + 16;
    let record = |i: usize| 25 + i * RECORD..25 + (i + 1) * RECORD;
    let from = 2 * CHUNK + 10;
    let range = format!("bytes={from}-");
    // Chunks 0 and 1 are garbage: a range from chunk 2 does not read them.
    let mut bad = sealed.to_vec();
    bad[record(0)].fill(0);
    bad[record(1)].fill(0);
    write(bad).await;
    let (status, body, clean) = env.download_range(&env.officer, doc_id, Some(&range)).await;
    assert!(
        status == 206 && clean && body == plain[from..],
        "{status} {clean}"
    );
    // (Failing at its first chunk, the whole document's download may end before its head.)
    let (_, _, clean) = env.download(&env.officer, doc_id).await;
    assert!(!clean, "the whole document fails");
    // Chunk 1's record where chunk 2's belongs does not open there; nothing is released.
    let mut moved = sealed.to_vec();
    moved.copy_within(record(1), record(2).start);
    write(moved).await;
    let (_, body, clean) = env.download_range(&env.officer, doc_id, Some(&range)).await;
    assert!(!clean && body.is_empty());
    // Without its final chunk a range to the end fails; one that ends before it is served.
    write(sealed[..record(3).start].to_vec()).await;
    let (_, body, clean) = env.download_range(&env.officer, doc_id, Some(&range)).await;
    assert!(!clean && body.len() <= CHUNK, "{}", body.len());
    let (status, body, clean) = env
        .download_range(&env.officer, doc_id, Some("bytes=70000-80000"))
        .await;
    assert!(status == 206 && clean && body == plain[70_000..=80_000]);
    // Cut short before the range: the download fails as truncated and is recorded as the
    // tampering it is, not answered as a store outage.
    let before = env.integrity_failures().await;
    write(sealed[..record(1).start].to_vec()).await;
    let (_, body, clean) = env.download_range(&env.officer, doc_id, Some(&range)).await;
    assert!(!clean && body.is_empty());
    env.integrity_failure_recorded_after(before).await;
    write(sealed.to_vec()).await;
}

#[tokio::test]
async fn the_s3_store_round_trips_detects_tampering_and_erases_the_object() {
    let guard = Moto::exclusive().await;
    let moto = guard.moto;
    let http = reqwest::Client::new();
    let status = http
        .put(format!("{}/writ-docs", moto.endpoint))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());
    let aws = moto.aws_env();
    let mut vars: Vec<(&str, &str)> = aws.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.push(("WRIT_DOCUMENT_STORE", "s3://writ-docs/documents"));
    let env = env_with("docs-s3", &vars).await;
    let plain = pdf(3 * CHUNK + 999);
    let doc = env.upload(plain.clone(), "").await;
    let doc_id = id(&doc);
    assert_eq!(doc["storage"], "s3");
    assert_eq!(env.chunk_rows(&doc_id).await, 0, "nothing in PostgreSQL");
    let (status, body, clean) = env.download(&env.officer, &doc_id).await;
    assert!(status == 200 && clean && body == plain);

    let object = format!(
        "{}/writ-docs/documents/{}/{doc_id}.sealed",
        moto.endpoint, env.agency.id
    );
    let sealed = http
        .get(&object)
        .header("authorization", MOTO_AUTH)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    assert_eq!(sealed.len(), 25 + plain.len() + 4 * 16);
    assert_eq!(&sealed[..8], b"WRITSEAL");
    assert!(
        sealed.windows(64).all(|w| w != &plain[2000..2064]),
        "no plaintext"
    );
    let mut bad = sealed.clone();
    bad[25 + CHUNK + 16 + 100] ^= 0x40;
    let put = |body: Vec<u8>| {
        http.put(&object)
            .header("authorization", MOTO_AUTH)
            .body(body)
            .send()
    };
    assert!(put(bad).await.unwrap().status().is_success());
    let (_, released, clean) = env.download(&env.officer, &doc_id).await;
    assert!(!clean);
    assert!(released.len() <= CHUNK && released[..] == plain[..released.len()]);
    a_range_reads_from_its_own_chunk(&env, &doc_id, &plain, &sealed, async |bytes| {
        assert!(put(bytes).await.unwrap().status().is_success());
    })
    .await;
    // The object taken from under the server, the document not erased: recorded, not an outage.
    let before = env.integrity_failures().await;
    let deleted = http
        .delete(&object)
        .header("authorization", MOTO_AUTH)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    let (status, _, _) = env.download(&env.officer, &doc_id).await;
    assert_eq!(status, 500);
    env.integrity_failure_recorded_after(before).await;
    assert!(put(sealed.clone()).await.unwrap().status().is_success());

    let done = env.erase(&doc_id).await;
    assert!(done["certificate"]["signature"].is_object());
    let gone = http
        .get(&object)
        .header("authorization", MOTO_AUTH)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(gone, 404, "the object is deleted");
    let (status, _, _) = env.download(&env.officer, &doc_id).await;
    assert_eq!(status, 410);
}

#[tokio::test]
async fn the_directory_store_keeps_only_ciphertext_files_detects_tampering_and_erases_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("documents");
    let url = format!("file://{}", root.display());
    let env = env_with("docs-dir", &[("WRIT_DOCUMENT_STORE", url.as_str())]).await;
    let plain = pdf(3 * CHUNK + 999);
    let doc = env.upload(plain.clone(), "").await;
    let doc_id = id(&doc);
    assert_eq!(doc["storage"], "file");
    assert_eq!(env.chunk_rows(&doc_id).await, 0, "nothing in PostgreSQL");
    let (status, body, clean) = env.download(&env.officer, &doc_id).await;
    assert!(status == 200 && clean && body == plain);

    // The directory is the server's alone, and the file holds ciphertext only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&root).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let file = root
        .join(env.agency.id.to_string())
        .join(format!("{doc_id}.sealed"));
    let sealed = std::fs::read(&file).unwrap();
    assert_eq!(sealed.len(), 25 + plain.len() + 4 * 16);
    assert_eq!(&sealed[..8], b"WRITSEAL");
    assert!(
        sealed.windows(64).all(|w| w != &plain[2000..2064]),
        "no plaintext"
    );
    let mut bad = sealed.clone();
    bad[25 + CHUNK + 16 + 100] ^= 0x40;
    std::fs::write(&file, &bad).unwrap();
    let (_, released, clean) = env.download(&env.officer, &doc_id).await;
    assert!(!clean);
    assert!(released.len() <= CHUNK && released[..] == plain[..released.len()]);
    a_range_reads_from_its_own_chunk(&env, &doc_id, &plain, &sealed, async |bytes| {
        std::fs::write(&file, bytes).unwrap();
    })
    .await;
    // The file taken from under the server, the document not erased: recorded, not an outage.
    let before = env.integrity_failures().await;
    std::fs::remove_file(&file).unwrap();
    let (status, _, _) = env.download(&env.officer, &doc_id).await;
    assert_eq!(status, 500);
    env.integrity_failure_recorded_after(before).await;
    std::fs::write(&file, &sealed).unwrap();

    env.erase(&doc_id).await;
    assert!(!file.exists(), "the file is deleted");
    let (status, _, _) = env.download(&env.officer, &doc_id).await;
    assert_eq!(status, 410);

    // An upload whose row fails at commit leaves no file behind.
    let documents = env.table("documents");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE FUNCTION public.refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'refused at commit'; END $$; \
         CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON {documents} \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.refuse_at_commit();"
    )))
    .execute(&env.db.pool)
    .await
    .unwrap();
    let (status, p) = env
        .upload_as(&env.officer, &env.warrant, pdf(CHUNK + 5), "", None)
        .await;
    assert!(status >= 500, "{status} {p}");
    let left = std::fs::read_dir(root.join(env.agency.id.to_string()))
        .unwrap()
        .count();
    assert_eq!(left, 0, "no file of an upload that did not commit");
}

/// An upload holds a database transaction while its body streams: a client that stalls is cut
/// off (400 `upload-stalled`, nothing stored), and only a quarter of the pool may stream uploads
/// at once (503 beyond), so stalled uploads never take the connections other requests need.
#[tokio::test]
async fn a_stalled_upload_is_ended_and_uploads_never_take_the_whole_pool() {
    let e = env_with(
        "stall-pd",
        &[
            ("WRIT_UPLOAD_STALL_SECS", "4"),
            // One upload slot (a quarter of four connections), and a short wait for it.
            ("WRIT_DB_MAX_CONNECTIONS", "4"),
            ("WRIT_DB_ACQUIRE_TIMEOUT_MS", "500"),
        ],
    )
    .await;
    let addr = e.server.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/warrants/{}/documents?filename=slow.pdf HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/pdf\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        e.warrant, e.officer.token
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let first = pdf(64 * 1024);
    slow.write_all(format!("{:x}\r\n", first.len()).as_bytes())
        .await
        .unwrap();
    slow.write_all(&first).await.unwrap();
    slow.write_all(b"\r\n").await.unwrap();
    // Then nothing more. While it holds the only slot, another upload is refused at once ...
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (status, p) = e
        .upload_as(&e.officer, &e.warrant, pdf(1000), "?filename=b.pdf", None)
        .await;
    assert_eq!(status, 503, "{p}");
    // ... and other requests still get their connections.
    let (status, _) = e
        .server
        .call("GET", "/v1/auth/session", &e.officer.token, None)
        .await;
    assert_eq!(status, 200);
    // The stalled upload is answered once its window passes with too little.
    let read = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        // Up to the problem's end: the connection may stay open after it.
        while !answer.ends_with(b"}") {
            let n = slow.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        answer
    })
    .await;
    let answer = read.expect("the stalled upload was never ended");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("urn:writ:problem:upload-stalled"),
        "{answer}"
    );
    // Nothing was stored, and the slot is free again.
    let (_, listed) = e
        .server
        .call(
            "GET",
            &format!("/v1/warrants/{}/documents", e.warrant),
            &e.officer.token,
            None,
        )
        .await;
    assert_eq!(listed, json!([]), "{listed}");
    e.upload(pdf(1000), "?filename=c.pdf").await;
}

/// A download resumes with one byte range: 206 with `Content-Range`, the exact bytes, every
/// chunk still authenticated; `If-Range` with another version, several ranges or a malformed
/// one get the whole document; a range past the end is 416 naming the size. The audit entry
/// names the range served.
#[tokio::test]
async fn a_download_resumes_with_a_byte_range() {
    let e = env("range-pd").await;
    let bytes = pdf(200_000);
    let doc = e.upload(bytes.clone(), "?filename=long.pdf").await;
    let path = format!("/v1/documents/{}/content", doc["id"].as_str().unwrap());
    let get = |headers: Vec<(&'static str, String)>| {
        let mut r = e
            .server
            .http
            .get(e.server.url(&path))
            .bearer_auth(&e.officer.token);
        for (name, value) in headers {
            r = r.header(name, value);
        }
        r.send()
    };
    let whole = get(vec![]).await.unwrap();
    assert_eq!(whole.status().as_u16(), 200);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let etag = whole.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", sha256_hex(&bytes)));
    assert_eq!(whole.bytes().await.unwrap(), bytes);

    for (range, start, end) in [
        ("bytes=70000-140000", 70_000, 140_000),
        ("bytes=-100", 199_900, 199_999),
        ("bytes=199999-", 199_999, 199_999),
        ("bytes=65536-999999", 65_536, 199_999),
    ] {
        let res = get(vec![("range", range.into())]).await.unwrap();
        assert_eq!(res.status().as_u16(), 206, "{range}");
        assert_eq!(
            res.headers()["content-range"],
            format!("bytes {start}-{end}/200000").as_str(),
            "{range}"
        );
        assert_eq!(
            res.headers()["content-length"],
            (end - start + 1).to_string().as_str()
        );
        let body = res.bytes().await.unwrap();
        assert_eq!(body, &bytes[start..=end], "{range}");
    }
    // If-Range: this version resumes; another gets the whole document.
    let res = get(vec![
        ("range", "bytes=100-".into()),
        ("if-range", etag.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(res.status().as_u16(), 206);
    for headers in [
        vec![
            ("range", "bytes=100-".into()),
            ("if-range", "\"0000\"".into()),
        ],
        vec![("range", "bytes=0-1,5-9".into())],
        vec![("range", "bytes=9-1".into())],
        vec![("range", "pages=1-2".into())],
    ] {
        let res = get(headers.clone()).await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "{headers:?}");
        assert_eq!(res.bytes().await.unwrap().len(), bytes.len());
    }
    // Past the end.
    let res = get(vec![("range", "bytes=200000-".into())]).await.unwrap();
    assert_eq!(res.status().as_u16(), 416);
    assert_eq!(res.headers()["content-range"], "bytes */200000");
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["type"], "urn:writ:problem:range-not-satisfiable");

    let downloads: Vec<Value> =
        writ_testkit::audit::entries_with_action(&e.db, &e.agency, "document.download").await;
    assert!(
        downloads
            .iter()
            .any(|d| d["detail"]["range"] == "70000-140000" && d["detail"]["bytes"] == 70_001),
        "{downloads:#?}"
    );
}

/// Reading a document for a signature locks it against being hidden until that transaction
/// ends: a soft delete waits, and then finds the signing record (or, with nothing signed, goes
/// through). Without the lock a signature could commit on a document hidden meanwhile.
#[tokio::test]
async fn a_delete_waits_for_a_signature_in_progress_on_the_document() {
    let e = env("sign-lock-pd").await;
    let doc = e.upload(pdf(1000), "?filename=exhibit.pdf").await;
    let id = uuid::Uuid::parse_str(doc["id"].as_str().unwrap()).unwrap();
    let caller =
        writ_audit_log::Caller::user(e.officer.user.id, "officer", Some(e.agency.id), None, None);
    let mut signing = TenantTx::begin(&e.db.pool, &e.agency).await.unwrap();
    writ_documents::store::for_signing(&mut signing, &caller, id)
        .await
        .unwrap();
    let path = format!("/v1/documents/{id}");
    let delete = e.server.call("DELETE", &path, &e.officer.token, None);
    tokio::pin!(delete);
    // Held while the signing transaction is open (it may take any time: it never completes).
    assert!(
        tokio::time::timeout(std::time::Duration::from_secs(1), &mut delete)
            .await
            .is_err(),
        "the delete did not wait for the signing transaction"
    );
    signing.commit().await.unwrap();
    let (status, body) = delete.await;
    assert_eq!(status, 204, "{body}");
}

/// A pending erasure request is withdrawn by its requester or declined by a prosecutor, with a
/// reason: it leaves the pending list, cannot be approved, the document stays readable, and a
/// new request may be made. Officers cannot withdraw, another agency cannot see it, and a request
/// that is not pending stays as it is.
#[tokio::test]
async fn an_erasure_request_is_withdrawn_or_declined_and_the_document_stays() {
    let env = env("erase-withdraw").await;
    let plain = pdf(CHUNK + 7);
    let doc_id = id(&env.upload(plain.clone(), "").await);
    async fn ask(env: &Env, who: &Who, doc_id: &str) -> String {
        let (status, request) = env
            .call(
                who,
                "POST",
                &format!("/v1/documents/{doc_id}/erasure-requests"),
                Some(json!({"reason": "duplicate upload"})),
            )
            .await;
        assert_eq!(status, 201, "{request}");
        id(&request).to_owned()
    }
    async fn withdraw(env: &Env, who: &Who, request: &str, body: Value) -> (u16, Value) {
        env.call(
            who,
            "POST",
            &format!("/v1/erasure-requests/{request}/withdraw"),
            Some(body),
        )
        .await
    }
    let reason = json!({"reason": "the exhibit belongs to this warrant after all"});

    let first = ask(&env, &env.admin, &doc_id).await;
    let (status, _) = withdraw(&env, &env.officer, &first, reason.clone()).await;
    assert_eq!(status, 403, "officers do not take part in erasures");
    let (status, body) = withdraw(&env, &env.admin, &first, json!({"reason": "  "})).await;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (422, Some("reason")),
        "{body}"
    );
    let (status, withdrawn) = withdraw(&env, &env.admin, &first, reason.clone()).await;
    assert_eq!(status, 200, "{withdrawn}");
    assert_eq!(withdrawn["status"], "withdrawn");
    assert_eq!(withdrawn["withdrawnBy"], json!(env.admin.user.id));
    assert_eq!(withdrawn["withdrawReason"], reason["reason"]);
    let (_, pending) = env
        .call(&env.admin, "GET", "/v1/erasure-requests", None)
        .await;
    assert_eq!(pending, json!([]));
    env.server
        .step_up(&env.prosecutor.user, &env.prosecutor.token)
        .await;
    let (status, _) = env
        .call(
            &env.prosecutor,
            "POST",
            &format!("/v1/erasure-requests/{first}/approve"),
            None,
        )
        .await;
    assert_eq!(status, 409, "a withdrawn request is not approved");
    let (status, _) = withdraw(&env, &env.admin, &first, reason.clone()).await;
    assert_eq!(status, 409);
    let (status, body, clean) = env.download(&env.officer, &doc_id).await;
    assert!(status == 200 && clean && body == plain);

    // Asked again by a prosecutor: an administrator who did not ask cannot withdraw it.
    let asked = ask(&env, &env.prosecutor, &doc_id).await;
    let (status, body) = withdraw(&env, &env.admin, &asked, reason.clone()).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = withdraw(&env, &env.prosecutor, &asked, reason.clone()).await;
    assert_eq!(status, 200);

    // Asked again, and declined by a prosecutor, the second person.
    let second = ask(&env, &env.admin, &doc_id).await;
    let (status, declined) = withdraw(&env, &env.prosecutor, &second, reason.clone()).await;
    assert_eq!(status, 200, "{declined}");
    assert_eq!(declined["withdrawnBy"], json!(env.prosecutor.user.id));

    // Another agency's people do not find it.
    let elsewhere = env.db.onboard("erase-withdraw-other").await;
    let stranger = who(
        &env.db,
        &elsewhere,
        &env.server,
        "other.admin",
        Role::AgencyAdmin,
    )
    .await;
    let third = ask(&env, &env.admin, &doc_id).await;
    let (status, _) = withdraw(&env, &stranger, &third, reason.clone()).await;
    assert_eq!(status, 404);

    let steps: Vec<(String, bool)> = env
        .entries("document.erase")
        .await
        .iter()
        .filter(|e| e["detail"]["step"] == "withdrawn")
        .map(|e| {
            (
                e["detail"]["erasureId"].as_str().unwrap().to_owned(),
                e["detail"]["byRequester"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(steps, [(first, true), (asked, true), (second, false)]);
}
