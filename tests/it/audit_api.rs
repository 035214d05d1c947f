//! The audit HTTP API through the real server: filtered listing with cursor pagination (each read
//! itself recorded), the
//! signed checkpoint and the key history, proofs fetched over HTTP that verify (in-process and
//! with `writ-verify`), export jobs whose bundles verify offline, and the refusals: roles without
//! the permission, another agency's job, malformed parameters.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;
use writ_audit_chain::{
    AuditKey, ConsistencyProof, Entry, InclusionProof, SignedNote, VerifierKey, verify_note,
};
use writ_audit_log::{Actor, Event, record};
use writ_auth_mfa::Role;
use writ_tenancy::{Agency, TenantTx};
use writ_testkit::{
    TestDb, TestServer, audit_actions, seed_user, sha256_hex, text, writ_verify_bin,
};

struct Ctx {
    db: TestDb,
    agency: Agency,
    server: TestServer,
    /// An auditor's access token.
    token: String,
    dir: tempfile::TempDir,
}

/// A database with one agency, a server exporting into a temporary directory (with a rate limit
/// the listing loops stay under), and a logged-in auditor.
async fn start(slug: &str) -> Ctx {
    let db = TestDb::new().await;
    let agency = db.onboard(slug).await;
    let auditor = seed_user(&db, &agency, "audit.reader", Role::Auditor).await;
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("exports");
    let server = TestServer::start_with(
        &db.url,
        &db.master_key_file,
        &[
            ("WRIT_EXPORT_DIR", exports.to_str().unwrap()),
            ("WRIT_RATE_LIMIT_AUDITOR", "100000"),
        ],
    );
    let token = server.token(&auditor).await;
    Ctx {
        db,
        agency,
        server,
        token,
        dir,
    }
}

/// `n` events: actions alternate created/submitted, actors alternate in pairs between two users,
/// each about its own warrant `w-<tag>-<i>`.
async fn write_events(db: &TestDb, agency: &Agency, tag: &str, n: usize, actors: [Uuid; 2]) {
    for i in 0..n {
        let mut tx = TenantTx::begin(&db.pool, agency).await.unwrap();
        let action = if i % 2 == 0 {
            "warrant.created"
        } else {
            "warrant.submitted"
        };
        let event = Event::new(action, Actor::user(actors[(i / 2) % 2], "officer"))
            .resource("warrantId", format!("w-{tag}-{i}"));
        record(&mut tx, &event).await.unwrap();
        tx.commit().await.unwrap();
        if i % 7 == 3 {
            // Spread the timestamps, so a time range has something to cut.
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    }
}

async fn get(ctx: &Ctx, path: &str, query: &[(&str, String)]) -> reqwest::Response {
    ctx.server
        .http
        .get(ctx.server.url(path))
        .query(query)
        .bearer_auth(&ctx.token)
        .send()
        .await
        .unwrap()
}

async fn get_json(ctx: &Ctx, path: &str, query: &[(&str, String)]) -> (u16, Value) {
    let res = get(ctx, path, query).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Every entry matching `query`, following `nextCursor` with pages of `limit`; asserts each page
/// is at most `limit` long.
async fn all_pages(ctx: &Ctx, query: &[(&str, String)], limit: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = query.to_vec();
        q.push(("limit", limit.to_string()));
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let (status, body) = get_json(ctx, "/v1/audit/events", &q).await;
        assert_eq!(status, 200, "{body}");
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize);
        out.extend(items.iter().cloned());
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => {
                assert!(body["nextCursor"].is_null(), "{body}");
                return out;
            }
        }
    }
}

fn seqs(items: &[Value]) -> Vec<u64> {
    items.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

/// Waits until the log lists at least `n` of the events `write_events` wrote; returns every entry.
async fn wait_for_entries(ctx: &Ctx, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all = all_pages(ctx, &[], 1000).await;
        // Count only what `write_events` wrote: the log also holds the server's own entries
        // (logins, key access), which may be sequenced before the last of ours.
        let ours = all
            .iter()
            .filter(|e| {
                e["action"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("warrant."))
            })
            .count();
        if ours >= n {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "only {ours} of {n} entries sequenced"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for a signed checkpoint of at least `size` entries; returns its text.
async fn wait_for_checkpoint(ctx: &Ctx, size: u64) -> (String, SignedNote) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let res = get(ctx, "/v1/audit/checkpoint", &[]).await;
        if res.status() == 200 {
            assert_eq!(
                res.headers()["content-type"].to_str().unwrap(),
                "text/plain; charset=utf-8"
            );
            let text = res.text().await.unwrap();
            let note = SignedNote::parse(&text).unwrap();
            if note.checkpoint().unwrap().size >= size {
                return (text, note);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of {size} entries signed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The agency's signing keys as the keys API serves them, as note verifiers.
async fn verifier_keys(ctx: &Ctx) -> (Vec<VerifierKey>, Value) {
    let (status, keys) = get_json(ctx, "/v1/audit/keys", &[]).await;
    assert_eq!(status, 200, "{keys}");
    let verifiers = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let key = AuditKey::from_pem(k["publicKeyPem"].as_str().unwrap()).unwrap();
            assert_eq!(key.key_id().to_string(), k["keyId"].as_str().unwrap());
            VerifierKey::new(k["keyName"].as_str().unwrap(), key).unwrap()
        })
        .collect();
    (verifiers, keys)
}

fn run_verify(args: &[&str]) -> String {
    let out = Command::new(writ_verify_bin()).args(args).output().unwrap();
    let report = text(&out);
    assert!(out.status.success(), "writ-verify {args:?}:\n{report}");
    report
}

fn content_type(res: &reqwest::Response) -> String {
    res.headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn listing_filters_by_each_field_and_pages_without_gaps_or_duplicates() {
    let ctx = start("list-pd").await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    write_events(&ctx.db, &ctx.agency, "x", 30, [a, b]).await;
    // Entries the server writes by itself (key.access, …) may land while the test runs: every
    // query below is bounded by the snapshot taken here.
    let all = wait_for_entries(&ctx, 30).await;
    let n = all.len() as u64;
    let upto = |query: &[(&'static str, String)]| {
        let mut q = query.to_vec();
        q.push(("toSeq", n.to_string()));
        q
    };
    assert_eq!(seqs(&all), (1..=n).collect::<Vec<_>>());
    for item in &all {
        let entry = Entry::from_json(item.to_string().as_bytes()).unwrap();
        assert!(entry.hash_is_valid(), "served entry {} hashes", entry.seq);
    }

    // Pages of 7: contiguous, no duplicate, no gap, the last page's cursor null.
    assert_eq!(seqs(&all_pages(&ctx, &upto(&[]), 7).await), seqs(&all));
    let (_, first) = get_json(&ctx, "/v1/audit/events", &upto(&[("limit", "7".into())])).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 7);
    assert!(first["nextCursor"].is_string());
    let (_, default) = get_json(&ctx, "/v1/audit/events", &upto(&[])).await;
    assert_eq!(
        default["items"].as_array().unwrap().len() as u64,
        n.min(100)
    );

    let expect = |pred: &dyn Fn(&Value) -> bool| -> Vec<u64> {
        all.iter()
            .filter(|e| pred(e))
            .map(|e| e["seq"].as_u64().unwrap())
            .collect()
    };

    let by_action =
        seqs(&all_pages(&ctx, &upto(&[("action", "warrant.submitted".into())]), 4).await);
    assert_eq!(by_action, expect(&|e| e["action"] == "warrant.submitted"));
    assert_eq!(by_action.len(), 15);

    let by_actor = seqs(&all_pages(&ctx, &upto(&[("actor", b.to_string())]), 3).await);
    assert_eq!(by_actor, expect(&|e| e["actor"]["userId"] == b.to_string()));
    assert!(!by_actor.is_empty());

    let by_resource = seqs(&all_pages(&ctx, &upto(&[("resource", "w-x-17".into())]), 5).await);
    assert_eq!(
        by_resource,
        expect(&|e| e["resource"]["warrantId"] == "w-x-17")
    );
    assert_eq!(by_resource.len(), 1);

    let by_seq =
        seqs(&all_pages(&ctx, &[("fromSeq", "5".into()), ("toSeq", "19".into())], 4).await);
    assert_eq!(by_seq, (5..=19).collect::<Vec<_>>());

    let (from, to) = (
        all[8]["timestamp"].as_str().unwrap().to_owned(),
        all[21]["timestamp"].as_str().unwrap().to_owned(),
    );
    let by_time = seqs(
        &all_pages(
            &ctx,
            &upto(&[("from", from.clone()), ("to", to.clone())]),
            6,
        )
        .await,
    );
    let in_range = |e: &Value| {
        let t = e["timestamp"].as_str().unwrap();
        t >= from.as_str() && t <= to.as_str()
    };
    assert_eq!(by_time, expect(&in_range));
    assert!(by_time.contains(&9) && by_time.contains(&22));
    assert!(by_time.len() < all.len());

    // Filters combine, and the cursor carries across pages of the combination.
    let combined = seqs(
        &all_pages(
            &ctx,
            &upto(&[
                ("action", "warrant.created".into()),
                ("actor", a.to_string()),
                ("fromSeq", "3".into()),
            ]),
            2,
        )
        .await,
    );
    assert_eq!(
        combined,
        expect(&|e| e["action"] == "warrant.created"
            && e["actor"]["userId"] == a.to_string()
            && e["seq"].as_u64().unwrap() >= 3)
    );

    // Every page read is itself recorded, by the auditor, with its filters and what it returned.
    let reads =
        writ_testkit::audit::entries_with_action(&ctx.db, &ctx.agency, "admin.audit.read").await;
    assert!(reads.len() >= 10, "{}", reads.len());
    assert!(reads.iter().all(|r| r["actor"]["role"] == "auditor"));
    let first_page = reads
        .iter()
        .find(|r| r["detail"]["limit"] == 7 && r["detail"]["start"] == 1)
        .unwrap_or_else(|| panic!("{reads:#?}"));
    assert_eq!(first_page["detail"]["returned"], 7, "{first_page}");
    assert_eq!(first_page["detail"]["lastSeq"], 7, "{first_page}");
    assert_eq!(first_page["detail"]["toSeq"], n, "{first_page}");
    assert!(first_page["detail"].get("action").is_none(), "{first_page}");
    assert!(
        reads
            .iter()
            .any(|r| r["detail"]["resource"] == "w-x-17" && r["detail"]["returned"] == 1),
        "{reads:#?}"
    );
}

#[tokio::test]
async fn the_checkpoint_verifies_with_the_key_from_the_keys_api() {
    let ctx = start("checkpoint-pd").await;
    write_events(
        &ctx.db,
        &ctx.agency,
        "c",
        5,
        [Uuid::new_v4(), Uuid::new_v4()],
    )
    .await;
    let (_, note) = wait_for_checkpoint(&ctx, 5).await;
    let (verifiers, keys) = verifier_keys(&ctx).await;
    let key = &keys[0];
    assert_eq!(key["version"], 1);
    assert_eq!(key["state"], "enabled");
    assert!(key["validTo"].is_null());
    assert!(key["validFrom"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        key["keyName"],
        format!("writ/audit/{}", ctx.agency.id).as_str()
    );
    let verified = verify_note(&note, &verifiers).unwrap();
    assert_eq!(
        verified.verified[0].1.to_string(),
        key["keyId"].as_str().unwrap()
    );
    assert_eq!(
        note.checkpoint().unwrap().origin,
        key["keyName"].as_str().unwrap()
    );
}

#[tokio::test]
async fn proofs_fetched_over_http_verify_in_process_and_with_writ_verify() {
    let ctx = start("proofs-pd").await;
    let actors = [Uuid::new_v4(), Uuid::new_v4()];
    write_events(&ctx.db, &ctx.agency, "p", 9, actors).await;
    let (old_text, old_note) = wait_for_checkpoint(&ctx, 9).await;
    let old = old_note.checkpoint().unwrap();
    let entries = all_pages(&ctx, &[("toSeq", old.size.to_string())], 1000).await;
    assert_eq!(entries.len() as u64, old.size);

    for entry in &entries {
        let seq = entry["seq"].as_u64().unwrap();
        let res = get(
            &ctx,
            "/v1/audit/proofs/inclusion",
            &[("seq", seq.to_string()), ("treeSize", old.size.to_string())],
        )
        .await;
        assert_eq!(res.status(), 200);
        let proof = InclusionProof::from_json(&res.bytes().await.unwrap()).unwrap();
        let entry = Entry::from_json(entry.to_string().as_bytes()).unwrap();
        proof.verify_entry_hash(&entry.hash).unwrap();
        assert_eq!(proof.root_hash, old.root, "seq {seq}");
    }

    // The same files an auditor would save, through writ-verify.
    let (_, keys) = verifier_keys(&ctx).await;
    let d = ctx.dir.path();
    let pem = d.join("agency.pem");
    std::fs::write(&pem, keys[0]["publicKeyPem"].as_str().unwrap()).unwrap();
    std::fs::write(d.join("old.checkpoint"), &old_text).unwrap();
    std::fs::write(d.join("entry.json"), entries[3].to_string()).unwrap();
    let proof = get(
        &ctx,
        "/v1/audit/proofs/inclusion",
        &[("seq", "4".into()), ("treeSize", old.size.to_string())],
    )
    .await
    .bytes()
    .await
    .unwrap();
    std::fs::write(d.join("inclusion.json"), &proof).unwrap();
    let p = |name: &str| d.join(name).to_str().unwrap().to_owned();
    let text = run_verify(&[
        "inclusion",
        "--entry",
        &p("entry.json"),
        "--proof",
        &p("inclusion.json"),
        "--checkpoint",
        &p("old.checkpoint"),
        "--public-key",
        &p("agency.pem"),
    ]);
    assert!(text.contains("All checks passed"), "{text}");

    // The log grows; the newer checkpoint extends the older one.
    write_events(&ctx.db, &ctx.agency, "q", 6, actors).await;
    let (new_text, new_note) = wait_for_checkpoint(&ctx, old.size + 6).await;
    let new = new_note.checkpoint().unwrap();
    for from in [1, old.size, new.size] {
        let res = get(
            &ctx,
            "/v1/audit/proofs/consistency",
            &[("from", from.to_string()), ("to", new.size.to_string())],
        )
        .await;
        assert_eq!(res.status(), 200);
        let proof = ConsistencyProof::from_json(&res.bytes().await.unwrap()).unwrap();
        proof.verify().unwrap();
        assert_eq!(proof.to_root, new.root);
        if from == old.size {
            assert_eq!(proof.from_root, old.root);
        }
    }
    std::fs::write(d.join("new.checkpoint"), &new_text).unwrap();
    let proof = get(
        &ctx,
        "/v1/audit/proofs/consistency",
        &[("from", old.size.to_string()), ("to", new.size.to_string())],
    )
    .await
    .bytes()
    .await
    .unwrap();
    std::fs::write(d.join("consistency.json"), &proof).unwrap();
    let text = run_verify(&[
        "consistency",
        "--proof",
        &p("consistency.json"),
        "--old-checkpoint",
        &p("old.checkpoint"),
        "--new-checkpoint",
        &p("new.checkpoint"),
        "--public-key",
        &p("agency.pem"),
    ]);
    assert!(text.contains("All checks passed"), "{text}");
}

/// Polls the job at `location` until it leaves queued/running.
async fn wait_for_job(ctx: &Ctx, location: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, job) = get_json(ctx, location, &[]).await;
        assert_eq!(status, 200, "{job}");
        if job["status"] == "done" || job["status"] == "failed" {
            return job;
        }
        assert!(
            job["status"] == "queued" || job["status"] == "running",
            "{job}"
        );
        assert!(Instant::now() < deadline, "export still {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn request_export(ctx: &Ctx, token: &str, body: Value) -> (u16, Option<String>, Value) {
    let res = ctx
        .server
        .http
        .post(ctx.server.url("/v1/audit/exports"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (status, location, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_export_job_runs_and_its_bundle_verifies_with_writ_verify() {
    let ctx = start("export-pd").await;
    write_events(
        &ctx.db,
        &ctx.agency,
        "e",
        12,
        [Uuid::new_v4(), Uuid::new_v4()],
    )
    .await;
    wait_for_entries(&ctx, 12).await;

    let (status, location, job) = request_export(&ctx, &ctx.token, json!({})).await;
    assert_eq!(status, 202, "{job}");
    let location = location.unwrap();
    assert_eq!(
        location,
        format!("/v1/audit/exports/{}", job["id"].as_str().unwrap())
    );
    assert!(
        job["status"] == "queued" || job["status"] == "running",
        "{job}"
    );
    let job = wait_for_job(&ctx, &location).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["firstSeq"], 1);
    let last = job["lastSeq"].as_u64().unwrap();
    assert!(last >= 13, "the whole log, with the request itself: {job}");
    assert_eq!(job["entryCount"].as_u64().unwrap(), last);
    assert_eq!(job["bundle"], format!("{location}/bundle").as_str());

    let res = get(&ctx, &format!("{location}/bundle"), &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/gzip");
    let bytes = res.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, job["sizeBytes"].as_u64().unwrap());
    assert_eq!(sha256_hex(&bytes), job["sha256"].as_str().unwrap());

    let (_, keys) = verifier_keys(&ctx).await;
    let pem = ctx.dir.path().join("agency.pem");
    std::fs::write(&pem, keys[0]["publicKeyPem"].as_str().unwrap()).unwrap();
    let tgz = ctx.dir.path().join("bundle.tar.gz");
    std::fs::write(&tgz, &bytes).unwrap();
    let text = run_verify(&[
        "bundle",
        tgz.to_str().unwrap(),
        "--public-key",
        pem.to_str().unwrap(),
    ]);
    assert!(text.contains(&format!("{last}/{last}")), "{text}");

    // A range.
    let (status, location, _) =
        request_export(&ctx, &ctx.token, json!({ "fromSeq": 3, "toSeq": 8 })).await;
    assert_eq!(status, 202);
    let location = location.unwrap();
    let job = wait_for_job(&ctx, &location).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(
        (job["firstSeq"].clone(), job["lastSeq"].clone()),
        (json!(3), json!(8))
    );
    let bytes = get(&ctx, &format!("{location}/bundle"), &[])
        .await
        .bytes()
        .await
        .unwrap();
    std::fs::write(&tgz, &bytes).unwrap();
    let text = run_verify(&[
        "bundle",
        tgz.to_str().unwrap(),
        "--public-key",
        pem.to_str().unwrap(),
    ]);
    assert!(text.contains("6/6"), "{text}");

    // Requesting and downloading are in the chain (the requests sequenced before their exports
    // ran), naming the job.
    let entries = wait_for_entries(&ctx, 0).await;
    let requested: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "admin.export.requested")
        .collect();
    assert_eq!(requested.len(), 2);
    let job_id = job["id"].as_str().unwrap();
    assert!(
        requested
            .iter()
            .any(|e| e["resource"]["exportId"] == job_id)
    );
    assert_eq!(requested[0]["actor"]["role"], "auditor");
    let actions = audit_actions(&ctx.db, &ctx.agency).await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "admin.export.downloaded")
            .count(),
        2,
        "{actions:?}"
    );

    // Past the retention period the bundles are removed; the jobs stay as the record.
    assert!(job["expiresAt"].is_string(), "{job}");
    let bundles = ctx
        .dir
        .path()
        .join("exports")
        .join(ctx.agency.id.to_string());
    let files = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    // Two bundles and nothing else: no staging directory, no partial file.
    assert_eq!(files(&bundles).len(), 2, "{:?}", files(&bundles));
    assert_eq!(
        writ_audit_log::expire_exports(&ctx.db.pool, &ctx.agency)
            .await
            .unwrap(),
        0,
        "none is due yet"
    );
    let mut tx = TenantTx::begin(&ctx.db.pool, &ctx.agency).await.unwrap();
    sqlx::query("UPDATE audit_exports SET expires_at = now() - interval '1 second'")
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        writ_audit_log::expire_exports(&ctx.db.pool, &ctx.agency)
            .await
            .unwrap(),
        2
    );
    assert!(files(&bundles).is_empty(), "{:?}", files(&bundles));
    let (_, job) = get_json(&ctx, &location, &[]).await;
    assert_eq!(job["status"], "expired", "{job}");
    assert!(job["bundle"].is_null(), "{job}");
    let res = get(&ctx, &format!("{location}/bundle"), &[]).await;
    assert_eq!(res.status(), 410);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(
        problem["type"], "urn:writ:problem:export-expired",
        "{problem}"
    );
    let actions = audit_actions(&ctx.db, &ctx.agency).await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "admin.export.expired")
            .count(),
        2,
        "{actions:?}"
    );
}

#[tokio::test]
async fn an_officer_is_refused_and_the_denial_is_audited() {
    let ctx = start("deny-pd").await;
    let officer = seed_user(&ctx.db, &ctx.agency, "street.officer", Role::Officer).await;
    let token = ctx.server.token(&officer).await;
    for path in [
        "/v1/audit/events",
        "/v1/audit/checkpoint",
        "/v1/audit/keys",
        "/v1/audit/proofs/inclusion?seq=1&treeSize=1",
        "/v1/audit/proofs/consistency?from=1&to=1",
    ] {
        let res = ctx
            .server
            .http
            .get(ctx.server.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{path}");
        assert!(content_type(&res).starts_with("application/problem+json"));
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["type"], "urn:writ:problem:forbidden", "{body}");
    }
    let (status, _, body) = request_export(&ctx, &token, json!({})).await;
    assert_eq!(status, 403, "{body}");
    let actions = audit_actions(&ctx.db, &ctx.agency).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "authz.denied").count(),
        6,
        "{actions:?}"
    );
    assert!(!actions.iter().any(|a| a == "admin.export.requested"));
}

#[tokio::test]
async fn another_agencys_export_job_is_not_found() {
    let ctx = start("owner-pd").await;
    let other = ctx.db.onboard("other-pd").await;
    let outsider = seed_user(&ctx.db, &other, "other.auditor", Role::Auditor).await;
    let outsider_token = ctx.server.token(&outsider).await;
    let (status, location, _) = request_export(&ctx, &ctx.token, json!({})).await;
    assert_eq!(status, 202);
    let location = location.unwrap();
    let job = wait_for_job(&ctx, &location).await;
    assert_eq!(job["status"], "done", "{job}");
    for path in [location.clone(), format!("{location}/bundle")] {
        let res = ctx
            .server
            .http
            .get(ctx.server.url(&path))
            .bearer_auth(&outsider_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["type"], "urn:writ:problem:not-found");
    }
    // A job id nobody has is the same 404.
    let (status, body) =
        get_json(&ctx, &format!("/v1/audit/exports/{}", Uuid::new_v4()), &[]).await;
    assert_eq!(status, 404, "{body}");
    let actions = audit_actions(&ctx.db, &other).await;
    assert!(
        !actions.iter().any(|a| a.starts_with("audit.export")),
        "{actions:?}"
    );
}

#[tokio::test]
async fn malformed_parameters_are_problems_and_never_panics() {
    let ctx = start("params-pd").await;
    write_events(
        &ctx.db,
        &ctx.agency,
        "m",
        4,
        [Uuid::new_v4(), Uuid::new_v4()],
    )
    .await;
    let all = wait_for_entries(&ctx, 4).await;
    let size = all.len();
    let cases: Vec<(String, u16, Option<&str>)> = vec![
        ("/v1/audit/events?fromSeq=abc".into(), 422, Some("fromSeq")),
        ("/v1/audit/events?fromSeq=0".into(), 422, Some("fromSeq")),
        ("/v1/audit/events?toSeq=-3".into(), 422, Some("toSeq")),
        (
            "/v1/audit/events?fromSeq=9&toSeq=2".into(),
            422,
            Some("toSeq"),
        ),
        ("/v1/audit/events?limit=0".into(), 422, Some("limit")),
        ("/v1/audit/events?limit=1001".into(), 422, Some("limit")),
        ("/v1/audit/events?limit=ten".into(), 422, Some("limit")),
        ("/v1/audit/events?from=yesterday".into(), 422, Some("from")),
        (
            "/v1/audit/events?to=2025-13-01T00:00:00Z".into(),
            422,
            Some("to"),
        ),
        (
            "/v1/audit/events?from=2025-02-01T00:00:00Z&to=2025-01-01T00:00:00Z".into(),
            422,
            Some("to"),
        ),
        ("/v1/audit/events?actor=somebody".into(), 422, Some("actor")),
        ("/v1/audit/events?action=".into(), 422, Some("action")),
        ("/v1/audit/events?cursor=abc".into(), 422, Some("cursor")),
        (
            "/v1/audit/events?cursor=99999999999999999999".into(),
            422,
            Some("cursor"),
        ),
        (
            "/v1/audit/events?toSeq=9007199254740992".into(),
            422,
            Some("toSeq"),
        ),
        (
            "/v1/audit/events?toSeq=9223372036854775807".into(),
            422,
            Some("toSeq"),
        ),
        (
            "/v1/audit/events?cursor=9007199254740992".into(),
            422,
            Some("cursor"),
        ),
        ("/v1/audit/events?bogus=1".into(), 400, None),
        ("/v1/audit/events?limit=5&limit=6".into(), 400, None),
        (
            "/v1/audit/proofs/inclusion?seq=1".into(),
            422,
            Some("treeSize"),
        ),
        (
            "/v1/audit/proofs/inclusion?seq=0&treeSize=1".into(),
            422,
            Some("seq"),
        ),
        (
            "/v1/audit/proofs/inclusion?seq=3&treeSize=2".into(),
            422,
            Some("seq"),
        ),
        (
            format!(
                "/v1/audit/proofs/inclusion?seq=1&treeSize={}",
                size + 100_000
            ),
            422,
            Some("treeSize"),
        ),
        (
            "/v1/audit/proofs/inclusion?seq=1&treeSize=18446744073709551615".into(),
            422,
            Some("treeSize"),
        ),
        (
            "/v1/audit/proofs/inclusion?seq=1&treeSize=1e3".into(),
            422,
            Some("treeSize"),
        ),
        (
            "/v1/audit/proofs/consistency?from=0&to=1".into(),
            422,
            Some("from"),
        ),
        (
            "/v1/audit/proofs/consistency?from=3&to=2".into(),
            422,
            Some("from"),
        ),
        (
            format!("/v1/audit/proofs/consistency?from=1&to={}", size + 100_000),
            422,
            Some("to"),
        ),
        (
            "/v1/audit/proofs/consistency?to=2".into(),
            422,
            Some("from"),
        ),
        ("/v1/audit/exports/not-a-uuid".into(), 404, None),
    ];
    // The largest seq there can be is a valid bound: nothing past the log's end, not an error.
    let res = ctx
        .server
        .http
        .get(ctx.server.url("/v1/audit/events?toSeq=9007199254740991"))
        .bearer_auth(&ctx.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    for (path, want, field) in cases {
        let res = ctx
            .server
            .http
            .get(ctx.server.url(&path))
            .bearer_auth(&ctx.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), want, "{path}");
        assert!(
            content_type(&res).starts_with("application/problem+json"),
            "{path}"
        );
        let body: Value = res.json().await.unwrap();
        if let Some(field) = field {
            assert_eq!(
                body["type"], "urn:writ:problem:validation",
                "{path}: {body}"
            );
            assert_eq!(body["errors"][0]["field"], field, "{path}: {body}");
        }
    }

    let bodies = [
        (json!({ "fromSeq": 0 }), "fromSeq"),
        (json!({ "toSeq": 0 }), "toSeq"),
        (json!({ "fromSeq": 4, "toSeq": 2 }), "toSeq"),
        (json!({ "fromSeq": 100000 }), "fromSeq"),
        (json!({ "toSeq": 9007199254740993_u64 }), "toSeq"),
        (json!({ "fromSeq": -1 }), "body"),
        (json!({ "fromSeq": "1" }), "body"),
        (json!({ "since": 1 }), "body"),
    ];
    for (body, field) in bodies {
        let (status, _, problem) = request_export(&ctx, &ctx.token, body.clone()).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    let actions = audit_actions(&ctx.db, &ctx.agency).await;
    assert!(
        !actions.iter().any(|a| a == "admin.export.requested"),
        "{actions:?}"
    );

    // A job's bundle before the job is done is a conflict, not a half-written file.
    let (status, location, _) = request_export(&ctx, &ctx.token, json!({})).await;
    assert_eq!(status, 202);
    let location = location.unwrap();
    let res = get(&ctx, &format!("{location}/bundle"), &[]).await;
    let status = res.status().as_u16();
    assert!(status == 409 || status == 200, "{status}");
    if status == 409 {
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["type"], "urn:writ:problem:conflict");
    }
}

#[tokio::test]
async fn two_replicas_share_the_export_queue() {
    let ctx = start("replicas-pd").await;
    let exports = ctx.dir.path().join("exports");
    let second = TestServer::start_with(
        &ctx.db.url,
        &ctx.db.master_key_file,
        &[("WRIT_EXPORT_DIR", exports.to_str().unwrap())],
    );
    write_events(
        &ctx.db,
        &ctx.agency,
        "r",
        5,
        [Uuid::new_v4(), Uuid::new_v4()],
    )
    .await;
    let mut locations = Vec::new();
    for _ in 0..4 {
        let (status, location, job) = request_export(&ctx, &ctx.token, json!({})).await;
        assert_eq!(status, 202, "{job}");
        locations.push(location.unwrap());
    }
    for location in &locations {
        let job = wait_for_job(&ctx, location).await;
        assert_eq!(job["status"], "done", "{job}");
        // Either replica serves the bundle from the shared directory.
        let res = second
            .http
            .get(second.url(&format!("{location}/bundle")))
            .bearer_auth(&ctx.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let bytes = res.bytes().await.unwrap();
        assert_eq!(sha256_hex(&bytes), job["sha256"].as_str().unwrap());
    }
}

/// Marks `job` as claimed by a worker that died, on its `attempts`-th try.
async fn abandon(db: &TestDb, agency: &Agency, job: Uuid, attempts: i32, lease: &str) {
    // Schema name generated and validated (AgencyIdent); the test connects as a superuser.
    let sql = format!(
        "UPDATE {}.audit_exports SET status = 'running', claim = gen_random_uuid(), \
         started_at = now(), attempts = $2, lease_until = now() + $3::interval WHERE id = $1",
        agency.ident.quoted()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(job)
        .bind(attempts)
        .bind(lease)
        .execute(&db.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_interrupted_job_is_taken_over_and_given_up_after_three_tries() {
    let db = TestDb::new().await;
    let agency = db.onboard("lease-pd").await;
    write_events(&db, &agency, "l", 3, [Uuid::new_v4(), Uuid::new_v4()]).await;
    let mut tx = TenantTx::begin(&db.pool, &agency).await.unwrap();
    let mut jobs = Vec::new();
    for _ in 0..3 {
        let job =
            writ_audit_log::request_export(&mut tx, &writ_audit_log::Caller::system(), None, None)
                .await
                .unwrap();
        jobs.push(job.id);
    }
    tx.commit().await.unwrap();
    // Workers died holding the first (first try) and the second (third try); the third job's
    // worker is alive and renewing.
    abandon(&db, &agency, jobs[0], 1, "-1 second").await;
    abandon(
        &db,
        &agency,
        jobs[1],
        writ_audit_log::MAX_ATTEMPTS,
        "-1 second",
    )
    .await;
    abandon(&db, &agency, jobs[2], 1, "1 hour").await;

    let dir = tempfile::tempdir().unwrap();
    let config = writ_audit_log::ExportWorkerConfig::new(dir.path().join("exports"));
    let ran = writ_audit_log::run_agency_jobs(&db.pool, &db.keys, &agency, &config)
        .await
        .unwrap();
    assert_eq!(ran, 1);

    let mut tx = TenantTx::begin(&db.pool, &agency).await.unwrap();
    let taken_over = writ_audit_log::get_export(&mut tx, jobs[0]).await.unwrap();
    assert_eq!(taken_over.status, writ_audit_log::ExportStatus::Done);
    let path = taken_over.file_path.unwrap();
    assert!(path.is_absolute() && path.is_file(), "{}", path.display());
    let given_up = writ_audit_log::get_export(&mut tx, jobs[1]).await.unwrap();
    assert_eq!(given_up.status, writ_audit_log::ExportStatus::Failed);
    assert!(
        given_up
            .error
            .as_deref()
            .unwrap()
            .contains("interrupted 3 times"),
        "{:?}",
        given_up.error
    );
    let alive = writ_audit_log::get_export(&mut tx, jobs[2]).await.unwrap();
    assert_eq!(alive.status, writ_audit_log::ExportStatus::Running);
    tx.rollback().await.unwrap();
}
