//! Remote oath through the real server: a session from creation to the recorded oath, with the
//! provider's webhooks signed as docs/VIDEO-OATH.md says (HMAC-SHA256 computed here from SHA-256,
//! independently of the server's code); bad, stale and replayed deliveries refused with nothing
//! changed; timeouts driven "as of" a time; the oath's rules; four corners (an unsworn amendment
//! blocks issue, the sworn version is what is issued); and one audit entry per step.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use writ_auth_mfa::Role;
use writ_tenancy::{Agency, TenantTx};
use writ_testkit::{TestDb, TestServer, TestUser, ok, seed_user, sequence};
use writ_warrant_workflow::presets::Preset;

const SECRET: &str = "test-video-provider-secret-0123456789abcdef";

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
    supervisor: Who,
    prosecutor: Who,
    judge: Who,
    judge2: Who,
}

async fn who(db: &TestDb, agency: &Agency, server: &TestServer, name: &str, role: Role) -> Who {
    let user = seed_user(db, agency, name, role).await;
    let token = server.token(&user).await;
    Who { user, token }
}

/// The federal court of Minnesota: its preset requires the oath before issue.
async fn env() -> Env {
    let db = TestDb::new().await;
    let agency = db.onboard("metro-pd").await;
    let server = TestServer::start_with(
        &db.url,
        &db.master_key_file,
        &[("WRIT_VIDEO_WEBHOOK_SECRET", SECRET)],
    );
    let admin = who(&db, &agency, &server, "admin.one", Role::AgencyAdmin).await;
    server.step_up(&admin.user, &admin.token).await;
    let policy = json!({ "courts": [Preset::Federal.court(
        "d-minn", "U.S. District Court, D. Minn.", "America/Chicago".parse().unwrap())] });
    assert_eq!(policy["courts"][0]["types"][0]["oath"]["required"], true);
    let (status, body) = server
        .call(
            "PUT",
            "/v1/policies/warrant-types",
            &admin.token,
            Some(json!({ "value": policy })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    Env {
        officer: who(&db, &agency, &server, "officer.one", Role::Officer).await,
        officer2: who(&db, &agency, &server, "officer.two", Role::Officer).await,
        supervisor: who(&db, &agency, &server, "sgt.super", Role::Supervisor).await,
        prosecutor: who(&db, &agency, &server, "ada.pros", Role::Prosecutor).await,
        judge: who(&db, &agency, &server, "judge.one", Role::Judge).await,
        judge2: who(&db, &agency, &server, "judge.two", Role::Judge).await,
        db,
        agency,
        server,
    }
}

/// HMAC-SHA256 (RFC 2104) from SHA-256, so the test does not share the server's HMAC code.
fn hmac_sha256(key: &[u8], message: &[u8]) -> String {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_test_hmac_is_hmac() {
    // RFC 4231, test case 2.
    assert_eq!(
        hmac_sha256(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}"))
}

fn oath_body() -> Value {
    json!({
        "affiantIdentity": {"method": "agency_credential_on_video", "note": "badge 4471 shown on video"},
        "judgeLocation": {"jurisdiction": "Minnesota", "inJurisdiction": true},
        "oathText": "Do you swear or affirm that the statements in your affidavit are true?",
    })
}

impl Env {
    async fn call(&self, who: &Who, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.server.call(method, path, &who.token, body).await
    }

    async fn ok(&self, who: &Who, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(who, method, path, body).await;
        assert!(
            status == 200 || status == 201,
            "{method} {path} by {}: {status} {v}",
            who.user.username
        );
        v
    }

    async fn act(&self, who: &Who, w: &Value, action: &str) -> (u16, Value) {
        writ_testkit::esign::act(&self.server, &who.user, &who.token, w, action, json!({})).await
    }

    /// A federal search warrant by `officer`, claimed by `judge`: in judge_review.
    async fn in_review(&self) -> Value {
        let body = json!({ "court": "d-minn", "type": "search", "content": {
            "place": "1200 Elm St, Apt 3, Minneapolis",
            "itemsSought": ["handgun, black, 9 mm"],
            "offense": "Minn. Stat. § 609.11",
            "affidavit": "On 2 March 2026 at 21:40 the affiant saw …\n",
        }});
        let w = self
            .ok(&self.officer, "POST", "/v1/warrants", Some(body))
            .await;
        for (who, action) in [
            (&self.officer, "submit"),
            (&self.supervisor, "supervisor-approve"),
            (&self.prosecutor, "prosecutor-approve"),
            (&self.judge, "claim"),
        ] {
            let (status, after) = self.act(who, &w, action).await;
            assert_eq!(status, 200, "{action}: {after}");
        }
        w
    }

    async fn open_session(&self, w: &Value) -> Value {
        let path = format!("/v1/warrants/{}/video-sessions", id(w));
        let s = self.ok(&self.judge, "POST", &path, None).await;
        assert_eq!(s["state"], "initiated");
        s
    }

    async fn session(&self, s: &Value) -> Value {
        self.ok(
            &self.judge,
            "GET",
            &format!("/v1/video-sessions/{}", id(s)),
            None,
        )
        .await
    }

    async fn warrant(&self, w: &Value) -> Value {
        self.ok(&self.judge, "GET", &format!("/v1/warrants/{}", id(w)), None)
            .await
    }

    /// Posts a delivery signed at `signed_at` with `secret`; the status and body.
    async fn deliver_with(
        &self,
        body: &Value,
        signed_at: DateTime<Utc>,
        secret: &str,
    ) -> (u16, Value) {
        let raw = serde_json::to_vec(body).unwrap();
        self.deliver_raw(&raw, signed_at, secret).await
    }

    async fn deliver_raw(
        &self,
        raw: &[u8],
        signed_at: DateTime<Utc>,
        secret: &str,
    ) -> (u16, Value) {
        let ts = signed_at.timestamp().to_string();
        let mut signed = ts.as_bytes().to_vec();
        signed.push(b'.');
        signed.extend_from_slice(raw);
        let signature = format!("v1={}", hmac_sha256(secret.as_bytes(), &signed));
        let res = self
            .server
            .http
            .post(self.server.url("/v1/webhooks/video"))
            .header("Content-Type", "application/json")
            .header("Writ-Webhook-Timestamp", ts)
            .header("Writ-Webhook-Signature", signature)
            .body(raw.to_vec())
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// A correctly signed delivery of `kind` about session `s`, now.
    async fn deliver(&self, s: &Value, kind: &str, extra: Value) -> (u16, Value) {
        let mut body = json!({
            "eventId": format!("evt-{}", uuid::Uuid::now_v7()),
            "type": kind,
            "room": s["room"],
            "occurredAt": Utc::now(),
        });
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        self.deliver_with(&body, Utc::now(), SECRET).await
    }

    async fn provider(&self, s: &Value, kind: &str, extra: Value) {
        let (status, body) = self.deliver(s, kind, extra).await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert_eq!(body["outcome"], "applied", "{kind}: {body}");
    }

    /// Runs the session timeouts of the agency as of `at`.
    async fn jobs(&self, at: DateTime<Utc>) -> usize {
        let mut tx = TenantTx::begin(&self.db.pool, &self.agency).await.unwrap();
        let n = writ_warrant_workflow::video::store::run_due(&mut tx, at)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        n
    }

    /// The sequenced audit entries about warrant `w`, reads and the entries of its documents
    /// and signatures (tests/it/esign.rs) left out.
    async fn entries_of(&self, w: &Value) -> Vec<Value> {
        writ_testkit::audit::entries(&self.db, &self.agency)
            .await
            .into_iter()
            .filter(|e| e["resource"]["warrantId"] == json!(id(w)))
            .filter(|e| e["action"] != "warrant.viewed")
            .filter(|e| {
                e["action"]
                    .as_str()
                    .is_some_and(|a| !a.starts_with("document.") && !a.starts_with("esign."))
            })
            .collect()
    }

    async fn denials(&self) -> usize {
        sequence(&self.db, &self.agency).await;
        let sql = format!(
            "SELECT count(*) FROM {}.audit_log WHERE entry::jsonb ->> 'action' = 'authz.denied'",
            self.agency.ident.quoted()
        );
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&self.db.pool)
            .await
            .unwrap();
        n as usize
    }
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect()
}

#[tokio::test]
async fn an_oath_session_runs_from_creation_to_the_issued_sworn_version_one_entry_per_step() {
    let e = env().await;
    let w = e.in_review().await;
    let s = e.open_session(&w).await;
    let sid = id(&s).to_owned();
    assert_eq!(
        s["room"],
        format!("{}.{sid}", e.agency.id),
        "the room names agency and session"
    );
    assert_eq!(s["affiantId"], json!(e.officer.user.id));
    // A second session while this one is open is refused.
    let path = format!("/v1/warrants/{}/video-sessions", id(&w));
    let (status, p) = e.call(&e.judge, "POST", &path, None).await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:session-open"))
    );

    let join = |who: &'static str| format!("/v1/video-sessions/{sid}/{who}");
    e.ok(&e.judge, "POST", &join("join"), None).await;
    let joined = e.ok(&e.officer, "POST", &join("join"), None).await;
    assert_eq!(joined["participants"].as_array().unwrap().len(), 2);
    e.provider(&s, "session.connected", json!({})).await;
    assert_eq!(e.session(&s).await["state"], "connected");

    // The oath, by the session's judge.
    let oath_path = format!("/v1/video-sessions/{sid}/oath");
    let sworn = e.ok(&e.judge, "POST", &oath_path, Some(oath_body())).await;
    let oath = &sworn["oath"];
    assert_eq!(oath["identityMethod"], "agency_credential_on_video");
    assert_eq!(oath["judgeLocation"], "Minnesota");
    assert_eq!(oath["judgeInJurisdiction"], true);
    assert_eq!(oath["affidavitVersion"], 1);
    assert!(oath["administeredAt"].is_string());
    let (status, p) = e
        .call(&e.judge, "POST", &oath_path, Some(oath_body()))
        .await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:oath-already-administered"))
    );

    // Four corners: facts beyond the affidavit, entered by the judge.
    let facts = "The affiant adds that the witness saw the handgun in the kitchen at 21:30.";
    let a = e
        .ok(
            &e.judge,
            "POST",
            &format!("/v1/warrants/{}/amendments", id(&w)),
            Some(json!({ "facts": facts })),
        )
        .await;
    assert_eq!(a["state"], "pending");
    e.server.step_up(&e.judge.user, &e.judge.token).await;
    let (status, p) = e.act(&e.judge, &w, "issue").await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:amendment-unsworn")),
        "{p}"
    );
    assert_eq!(e.warrant(&w).await["state"], "judge_review");

    // The affiant swears to it, stepped up; not another officer.
    let swear = format!("/v1/warrants/{}/amendments/{}/swear", id(&w), id(&a));
    // (A session of its own: the one that signed the affidavit is stepped up still.)
    let fresh = e.server.token(&e.officer.user).await;
    let (status, p) = e.server.call("POST", &swear, &fresh, None).await;
    assert_eq!(
        (status, p["type"].as_str()),
        (401, Some("urn:writ:problem:step-up-required"))
    );
    e.server.step_up(&e.officer2.user, &e.officer2.token).await;
    let denials = e.denials().await;
    let (status, _) = e.call(&e.officer2, "POST", &swear, None).await;
    assert_eq!(status, 403);
    assert_eq!(e.denials().await, denials + 1, "the refusal is audited");
    e.server.step_up(&e.officer.user, &e.officer.token).await;
    let sworn_a = e.ok(&e.officer, "POST", &swear, None).await;
    assert_eq!(sworn_a["state"], "sworn");
    assert_eq!(sworn_a["affidavitVersion"], 2);
    let versions = e
        .ok(
            &e.judge,
            "GET",
            &format!("/v1/warrants/{}/versions", id(&w)),
            None,
        )
        .await;
    let v2 = &versions[1];
    assert_eq!(v2["reason"], "amended");
    assert!(v2["text"].as_str().unwrap().contains(facts));
    assert_eq!(
        v2["sha256"],
        sha256_hex(v2["text"].as_str().unwrap().as_bytes())
    );
    assert_eq!(sworn_a["affidavitSha256"], v2["sha256"]);

    // Now the judge may issue, and the warrant names the sworn version.
    let (status, issued) = e.act(&e.judge, &w, "issue").await;
    assert_eq!(status, 200, "{issued}");
    assert_eq!(issued["state"], "issued");
    assert_eq!(issued["swornAffidavit"]["version"], 2);
    assert_eq!(issued["swornAffidavit"]["sha256"], v2["sha256"]);
    assert!(
        issued["content"]["affidavit"]
            .as_str()
            .unwrap()
            .contains(facts)
    );

    // The provider ends the room; the recording is not there yet: the warrant says so.
    e.ok(&e.officer, "POST", &join("leave"), None).await;
    e.provider(&s, "session.ended", json!({})).await;
    let ended = e.session(&s).await;
    assert_eq!(ended["state"], "terminated");
    assert_eq!(ended["endReason"], "ended");
    assert_eq!(ended["recordingMissing"], true);
    assert_eq!(e.warrant(&w).await["oathRecordingMissing"], true);
    let (status, _) = e.call(&e.officer, "POST", &join("join"), None).await;
    assert_eq!(status, 409, "an ended session is not joined");

    // Transcript certification waits for the recording.
    let cert = format!("/v1/video-sessions/{sid}/transcript-certification");
    let transcript = sha256_hex(b"THE COURT: Do you swear ...");
    let (status, p) = e
        .call(
            &e.judge,
            "POST",
            &cert,
            Some(json!({ "transcriptSha256": transcript })),
        )
        .await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:recording-missing"))
    );

    // The recording arrives: its hash is on the record, in the court's custody.
    let recording = sha256_hex(b"recording bytes");
    let (status, p) = e
        .deliver(
            &s,
            "recording.ready",
            json!({ "recording": { "reference": "rec-1", "sha256": "XYZ" } }),
        )
        .await;
    assert_eq!(status, 422, "{p}");
    e.provider(
        &s,
        "recording.ready",
        json!({ "recording": { "reference": "court-media://rec/8841", "sha256": recording } }),
    )
    .await;
    // Another recording for the same session is not taken (and the refusal is recorded).
    let (status, body) = e
        .deliver(
            &s,
            "recording.ready",
            json!({ "recording": { "reference": "court-media://rec/9999", "sha256": sha256_hex(b"other") } }),
        )
        .await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("ignored")));
    let done = e.session(&s).await;
    assert_eq!(done["recording"]["sha256"], recording);
    assert_eq!(done["recording"]["custody"], "court");
    assert_eq!(done["recordingMissing"], false);
    assert_eq!(e.warrant(&w).await["oathRecordingMissing"], false);
    // Only the judge who took the testimony certifies its transcript.
    e.server.step_up(&e.judge2.user, &e.judge2.token).await;
    let denied = e.denials().await;
    let (status, p) = e
        .call(
            &e.judge2,
            "POST",
            &cert,
            Some(json!({ "transcriptSha256": transcript })),
        )
        .await;
    assert_eq!(status, 403, "{p}");
    assert_eq!(e.denials().await, denied + 1);
    let certified = e
        .ok(
            &e.judge,
            "POST",
            &cert,
            Some(json!({ "transcriptSha256": transcript, "transcriptReference": "court://t/1" })),
        )
        .await;
    assert_eq!(certified["transcript"]["sha256"], transcript);
    assert_eq!(
        certified["transcript"]["certifiedBy"],
        json!(e.judge.user.id)
    );
    let (status, _) = e
        .call(
            &e.judge,
            "POST",
            &cert,
            Some(json!({ "transcriptSha256": transcript })),
        )
        .await;
    assert_eq!(status, 409);

    // Every step, exactly one entry, in order, each naming the session where it concerns it.
    let entries = e.entries_of(&w).await;
    let all = actions(&entries);
    let from = all
        .iter()
        .position(|a| *a == "video.session.initiated")
        .unwrap();
    assert_eq!(
        all[from..],
        [
            "video.session.initiated",
            "video.session.joined",
            "video.session.joined",
            "video.session.connected",
            "oath.administered",
            "warrant.amendment.entered",
            "warrant.amendment.sworn",
            "warrant.approved",
            "video.session.left",
            "video.session.terminated",
            "video.session.recording",
            "video.session.recording",
            "video.session.transcript_certified",
        ]
    );
    let recordings: Vec<&Value> = entries
        .iter()
        .filter(|x| x["action"] == "video.session.recording")
        .collect();
    assert_eq!(recordings[0]["outcome"], "success");
    assert_eq!(recordings[1]["outcome"], "failure");
    for entry in &entries[from..] {
        if entry["action"] != "warrant.approved" {
            assert_eq!(entry["resource"]["sessionId"], sid, "{entry}");
        }
    }
    let by = |action: &str| {
        entries
            .iter()
            .find(|x| x["action"] == action)
            .unwrap()
            .clone()
    };
    assert_eq!(by("video.session.connected")["actor"]["role"], "system");
    assert_eq!(
        by("video.session.terminated")["detail"]["recording"],
        "missing"
    );
    assert_eq!(
        by("video.session.recording")["resource"]["documentHash"],
        format!("sha256:{recording}")
    );
    assert_eq!(
        by("oath.administered")["actor"]["userId"],
        json!(e.judge.user.id)
    );
    assert_eq!(by("warrant.approved")["detail"]["swornAffidavitVersion"], 2);
    assert_eq!(
        by("warrant.amendment.sworn")["actor"]["userId"],
        json!(e.officer.user.id)
    );
    // And the chain that holds them verifies.
    ok(e.db.writ(&["audit", "verify", "--agency", "metro-pd"]));

    // The evidence certificate carries the oath as the court keeps it, and its PDF shows it.
    let path = format!("/v1/warrants/{}/certificate", id(&w));
    let cert = e.ok(&e.judge, "GET", &path, None).await;
    let record = &cert["certificate"]["oaths"][0]["record"];
    assert_eq!(record["oath"]["administeredAt"], oath["administeredAt"]);
    assert_eq!(record["recording"]["sha256"], recording);
    assert_eq!(record["transcript"]["sha256"], transcript);
    let pdf = e
        .server
        .http
        .get(e.server.url(&path))
        .bearer_auth(&e.judge.token)
        .header("accept", "application/pdf")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pdf_path = dir.path().join("certificate.pdf");
    std::fs::write(&pdf_path, &pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg(&pdf_path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils)");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).replace(['\n', ' '], "");
    for fact in [
        "affiantidentity:agency_credential_on_video",
        "judgelocation:Minnesota",
        "judgeinjurisdiction:yes",
        &format!("transcriptSHA-256:{transcript}"),
        &format!("recordingSHA-256:{recording}"),
    ] {
        assert!(text.contains(fact), "{fact} in {text}");
    }
    let administered = oath["administeredAt"].as_str().unwrap();
    assert!(
        text.contains(&format!("administered:{administered}")),
        "{text}"
    );
}

/// A judge sealing the application during review does not shut its affiant out of the oath: the
/// affiant still joins and swears; everyone else still sees nothing.
#[tokio::test]
async fn the_affiant_takes_the_oath_of_an_application_sealed_during_review() {
    let e = env().await;
    let w = e.in_review().await;
    let s = e.open_session(&w).await;
    let sealed = e
        .ok(
            &e.judge,
            "POST",
            &format!("/v1/warrants/{}/actions/seal", id(&w)),
            Some(json!({"orderReference": "SO-2026-77", "reason": "ongoing investigation"})),
        )
        .await;
    assert_eq!(sealed["sealed"], true);
    let join = format!("/v1/video-sessions/{}/join", id(&s));
    assert_eq!(e.call(&e.officer2, "POST", &join, None).await.0, 404);
    e.ok(&e.judge, "POST", &join, None).await;
    e.ok(&e.officer, "POST", &join, None).await;
    e.provider(&s, "session.connected", json!({})).await;
    let (status, sworn) = e.administer(&e.judge, &s).await;
    assert_eq!(status, 200, "{sworn}");
    let a = e
        .ok(
            &e.judge,
            "POST",
            &format!("/v1/warrants/{}/amendments", id(&w)),
            Some(json!({ "facts": "The back door is steel." })),
        )
        .await;
    // The affiant finds the session and reads the facts sworn to; another officer does not.
    let sessions = format!("/v1/warrants/{}/video-sessions", id(&w));
    let amendments = format!("/v1/warrants/{}/amendments", id(&w));
    let listed = e.ok(&e.officer, "GET", &sessions, None).await;
    assert_eq!(listed[0]["id"], s["id"]);
    let facts = e.ok(&e.officer, "GET", &amendments, None).await;
    assert_eq!(facts[0]["facts"], "The back door is steel.");
    assert_eq!(e.call(&e.officer2, "GET", &sessions, None).await.0, 404);
    assert_eq!(e.call(&e.officer2, "GET", &amendments, None).await.0, 404);
    e.server.step_up(&e.officer.user, &e.officer.token).await;
    let swear = format!("/v1/warrants/{}/amendments/{}/swear", id(&w), id(&a));
    let sworn_a = e.ok(&e.officer, "POST", &swear, None).await;
    assert_eq!(sworn_a["state"], "sworn");
    // The warrant itself stays hidden from its officer while sealed.
    let (status, _) = e
        .call(&e.officer, "GET", &format!("/v1/warrants/{}", id(&w)), None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_stale_and_replayed_deliveries_are_refused_and_change_nothing() {
    let e = env().await;
    let w = e.in_review().await;
    let s = e.open_session(&w).await;
    let event = |event_id: &str, kind: &str| json!({ "eventId": event_id, "type": kind, "room": s["room"] });
    let now = Utc::now();
    let refused = [
        // Signed with another secret.
        (
            event("e-1", "session.connected"),
            now,
            "not-the-provider-secret-0123456789abcdef",
            "webhook-signature-invalid",
        ),
        // Six minutes old, and six minutes ahead.
        (
            event("e-2", "session.connected"),
            now - Duration::minutes(6),
            SECRET,
            "webhook-timestamp-invalid",
        ),
        (
            event("e-3", "session.connected"),
            now + Duration::minutes(6),
            SECRET,
            "webhook-timestamp-invalid",
        ),
    ];
    for (body, at, secret, slug) in refused {
        let (status, p) = e.deliver_with(&body, at, secret).await;
        assert_eq!(status, 401, "{p}");
        assert_eq!(p["type"], format!("urn:writ:problem:{slug}"), "{p}");
    }
    // A body changed after signing.
    let raw = serde_json::to_vec(&event("e-4", "session.connected")).unwrap();
    let ts = now.timestamp().to_string();
    let mut signed = ts.as_bytes().to_vec();
    signed.push(b'.');
    signed.extend_from_slice(&raw);
    let signature = format!("v1={}", hmac_sha256(SECRET.as_bytes(), &signed));
    let tampered = serde_json::to_vec(&event("e-4", "session.ended")).unwrap();
    let res = e
        .server
        .http
        .post(e.server.url("/v1/webhooks/video"))
        .header("Writ-Webhook-Timestamp", ts)
        .header("Writ-Webhook-Signature", signature)
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    // Nothing moved, nothing was recorded.
    assert_eq!(e.session(&s).await["state"], "initiated");
    let before = e.entries_of(&w).await.len();

    // The genuine delivery, then the same delivery again, and its id with another event.
    let genuine = event("e-5", "session.connected");
    let at = Utc::now();
    let (status, body) = e.deliver_with(&genuine, at, SECRET).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("connected")),
        "{body}"
    );
    // The provider resending it (its answer lost, signed anew): taken already, not a forgery.
    let (status, again) = e.deliver_with(&genuine, Utc::now(), SECRET).await;
    assert_eq!(
        (status, again["outcome"].as_str(), again["state"].as_str()),
        (200, Some("duplicate"), Some("connected")),
        "{again}"
    );
    // Its id on another body is refused.
    let (status, p) = e
        .deliver_with(&event("e-5", "session.ended"), Utc::now(), SECRET)
        .await;
    assert_eq!(
        (status, p["type"].as_str()),
        (401, Some("urn:writ:problem:webhook-replayed")),
        "{p}"
    );
    assert_eq!(e.session(&s).await["state"], "connected");
    assert_eq!(
        actions(&e.entries_of(&w).await[before..]),
        ["video.session.connected"]
    );

    // A repeated report is taken and ignored; an unknown session 404; not JSON 400; an unknown
    // event 422 — each only after the signature verified.
    let (status, body) = e.deliver(&s, "session.connected", json!({})).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("ignored")));
    let stranger = json!({ "eventId": "e-6", "type": "session.ended",
        "room": format!("{}.{}", e.agency.id, uuid::Uuid::now_v7()) });
    assert_eq!(e.deliver_with(&stranger, Utc::now(), SECRET).await.0, 404);
    assert_eq!(e.deliver_raw(b"{not json", Utc::now(), SECRET).await.0, 400);
    assert_eq!(e.deliver(&s, "session.paused", json!({})).await.0, 422);
    assert_eq!(e.session(&s).await["state"], "connected");

    // A server without the provider's secret takes no deliveries and opens no session.
    let bare = TestServer::start(&e.db);
    let res = bare
        .http
        .post(bare.url("/v1/webhooks/video"))
        .header("Writ-Webhook-Timestamp", Utc::now().timestamp().to_string())
        .header("Writ-Webhook-Signature", "v1=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    let w2 = e.in_review().await;
    let (status, p) = bare
        .call(
            "POST",
            &format!("/v1/warrants/{}/video-sessions", id(&w2)),
            &e.judge.token,
            None,
        )
        .await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:video-not-configured"))
    );
}

#[tokio::test]
async fn sessions_time_out_unconnected_after_ten_minutes_and_idle_after_an_hour() {
    let e = env().await;
    let w = e.in_review().await;
    let s = e.open_session(&w).await;
    let created = DateTime::parse_from_rfc3339(s["createdAt"].as_str().unwrap())
        .unwrap()
        .to_utc();
    assert_eq!(e.jobs(created + Duration::minutes(9)).await, 0);
    assert_eq!(e.session(&s).await["state"], "initiated");
    assert_eq!(e.jobs(created + Duration::minutes(10)).await, 1);
    let out = e.session(&s).await;
    assert_eq!(
        (out["state"].as_str(), out["endReason"].as_str()),
        (Some("timed_out"), Some("no_connection"))
    );
    // Nobody connected: no recording was due.
    assert_eq!(out["recordingMissing"], false);
    assert_eq!(e.warrant(&w).await["oathRecordingMissing"], false);

    // A new session, connected, then idle.
    let s2 = e.open_session(&w).await;
    e.provider(&s2, "session.connected", json!({})).await;
    e.provider(&s2, "session.disconnected", json!({})).await;
    let last_activity = async || {
        DateTime::parse_from_rfc3339(e.session(&s2).await["lastActivityAt"].as_str().unwrap())
            .unwrap()
            .to_utc()
    };
    let reported = last_activity().await;
    // A report that changes nothing is still the provider seeing the session: activity.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (status, body) = e.deliver(&s2, "session.disconnected", json!({})).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("ignored")));
    let active = last_activity().await;
    assert!(active > reported, "{active} after {reported}");
    assert_eq!(e.jobs(active + Duration::minutes(59)).await, 0);
    assert_eq!(e.session(&s2).await["state"], "disconnected");
    assert_eq!(e.jobs(active + Duration::minutes(60)).await, 1);
    let idle = e.session(&s2).await;
    assert_eq!(
        (idle["state"].as_str(), idle["endReason"].as_str()),
        (Some("timed_out"), Some("idle"))
    );
    // It had connected and ended without a recording: flagged, never silent.
    assert_eq!(idle["recordingMissing"], true);
    assert_eq!(e.warrant(&w).await["oathRecordingMissing"], true);
    // Nothing moves a timed-out session any more.
    assert_eq!(e.jobs(active + Duration::hours(5)).await, 0);
    let (status, body) = e.deliver(&s2, "session.connected", json!({})).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("ignored")));

    let entries = e.entries_of(&w).await;
    let timeouts: Vec<&Value> = entries
        .iter()
        .filter(|x| x["action"] == "video.session.timed_out")
        .collect();
    assert_eq!(timeouts.len(), 2);
    assert_eq!(timeouts[0]["detail"]["event"], "no_connection");
    assert_eq!(timeouts[0]["actor"]["role"], "system");
    assert_eq!(timeouts[1]["detail"]["event"], "idle");
    assert_eq!(timeouts[1]["detail"]["recording"], "missing");
}

#[tokio::test]
async fn the_oath_needs_the_sessions_judge_a_connection_and_issue_needs_the_oath() {
    let e = env().await;
    let w = e.in_review().await;
    // A federal warrant is not issued without the oath.
    e.server.step_up(&e.judge.user, &e.judge.token).await;
    let (status, p) = e.act(&e.judge, &w, "issue").await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:oath-required")),
        "{p}"
    );

    // Only the claiming judge opens the session.
    let path = format!("/v1/warrants/{}/video-sessions", id(&w));
    assert_eq!(e.call(&e.judge2, "POST", &path, None).await.0, 403);
    assert_eq!(e.call(&e.officer, "POST", &path, None).await.0, 403);
    let s = e.open_session(&w).await;
    let oath_path = format!("/v1/video-sessions/{}/oath", id(&s));

    // Not connected yet.
    let (status, p) = e
        .call(&e.judge, "POST", &oath_path, Some(oath_body()))
        .await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:session-not-connected"))
    );
    let amend = format!("/v1/warrants/{}/amendments", id(&w));
    let (status, _) = e
        .call(&e.judge, "POST", &amend, Some(json!({ "facts": "more" })))
        .await;
    assert_eq!(status, 409);
    e.provider(&s, "session.connected", json!({})).await;

    // Not by an officer, nor by another judge; each refusal audited.
    let denials = e.denials().await;
    assert_eq!(
        e.call(&e.officer, "POST", &oath_path, Some(oath_body()))
            .await
            .0,
        403
    );
    assert_eq!(
        e.call(&e.judge2, "POST", &oath_path, Some(oath_body()))
            .await
            .0,
        403
    );
    assert_eq!(e.denials().await, denials + 2);
    // Participants only join.
    let join = format!("/v1/video-sessions/{}/join", id(&s));
    assert_eq!(e.call(&e.officer2, "POST", &join, None).await.0, 403);
    // An "other" identity method says what it was.
    let mut other = oath_body();
    other["affiantIdentity"] = json!({ "method": "other" });
    assert_eq!(
        e.call(&e.judge, "POST", &oath_path, Some(other)).await.0,
        422
    );
    // Swearing needs the oath first.
    let a = e
        .ok(
            &e.judge,
            "POST",
            &amend,
            Some(json!({ "facts": "The vehicle is a grey sedan." })),
        )
        .await;
    e.server.step_up(&e.officer.user, &e.officer.token).await;
    let swear = format!("/v1/warrants/{}/amendments/{}/swear", id(&w), id(&a));
    let (status, p) = e.call(&e.officer, "POST", &swear, None).await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:oath-missing"))
    );

    // The judge must see and hear the affiant: both joined, neither gone.
    let absent = |p: &Value| p["type"] == "urn:writ:problem:participant-absent";
    let (status, p) = e
        .call(&e.judge, "POST", &oath_path, Some(oath_body()))
        .await;
    assert!(status == 409 && absent(&p), "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("judge and the affiant"),
        "{p}"
    );
    e.ok(&e.judge, "POST", &join, None).await;
    e.ok(&e.officer, "POST", &join, None).await;
    let leave = format!("/v1/video-sessions/{}/leave", id(&s));
    e.ok(&e.officer, "POST", &leave, None).await;
    let (status, p) = e
        .call(&e.judge, "POST", &oath_path, Some(oath_body()))
        .await;
    assert!(status == 409 && absent(&p), "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("the affiant must"),
        "{p}"
    );
    assert!(e.session(&s).await["oath"].is_null());
    e.ok(&e.officer, "POST", &join, None).await;
    e.ok(&e.judge, "POST", &oath_path, Some(oath_body())).await;
    // The judge withdraws the amendment instead; then the oath suffices to issue.
    let withdraw = format!("/v1/warrants/{}/amendments/{}/withdraw", id(&w), id(&a));
    let withdrawn = e
        .ok(
            &e.judge,
            "POST",
            &withdraw,
            Some(json!({ "reason": "not relied on" })),
        )
        .await;
    assert_eq!(withdrawn["state"], "withdrawn");
    let (status, p) = e.call(&e.officer, "POST", &swear, None).await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:amendment-not-pending"))
    );
    // The judge signed the warrant before the oath (refused issue above): that signature is
    // not on the sworn affidavit, and issuing on it is refused until the judge signs again.
    let issue = format!("/v1/warrants/{}/actions/issue", id(&w));
    let (status, p) = e.call(&e.judge, "POST", &issue, Some(json!({}))).await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:judge-signature-required")),
        "{p}"
    );
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("administered the oath"),
        "{p}"
    );
    let (status, issued) = e.act(&e.judge, &w, "issue").await;
    assert_eq!(status, 200, "{issued}");
    assert_eq!(issued["swornAffidavit"]["version"], 1);
    let listed = e
        .ok(
            &e.officer,
            "GET",
            &format!("/v1/warrants/{}/video-sessions", id(&w)),
            None,
        )
        .await;
    assert_eq!(listed[0]["oath"]["judgeId"], json!(e.judge.user.id));

    // Another agency's judge sees no such session.
    let other_agency = e.db.onboard("county-so").await;
    let stranger = who(&e.db, &other_agency, &e.server, "judge.other", Role::Judge).await;
    let (status, _) = e
        .server
        .call(
            "GET",
            &format!("/v1/video-sessions/{}", id(&s)),
            &stranger.token,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = e.server.call("POST", &join, &stranger.token, None).await;
    assert_eq!(status, 404);
}

impl Env {
    /// `judge` administers the oath in session `s`, with the standard body.
    async fn administer(&self, judge: &Who, s: &Value) -> (u16, Value) {
        // Both take part first (a session that can take no oath may refuse the join: the oath's
        // own answer is what counts).
        let join = format!("/v1/video-sessions/{}/join", id(s));
        for who in [judge, &self.officer] {
            self.call(who, "POST", &join, None).await;
        }
        let path = format!("/v1/video-sessions/{}/oath", id(s));
        self.call(judge, "POST", &path, Some(oath_body())).await
    }

    /// Returns the warrant for revision (`judge`), then takes it through review again until
    /// `claimant` claims it.
    async fn returned_and_claimed_by(&self, w: &Value, judge: &Who, claimant: &Who) {
        let (status, after) = writ_testkit::esign::act(
            &self.server,
            &judge.user,
            &judge.token,
            w,
            "return-for-revision",
            json!({ "reason": "say when the informant saw the gun" }),
        )
        .await;
        assert_eq!(status, 200, "{after}");
        for (who, action) in [
            (&self.officer, "submit"),
            (&self.supervisor, "supervisor-approve"),
            (&self.prosecutor, "prosecutor-approve"),
            (claimant, "claim"),
        ] {
            let (status, after) = self.act(who, w, action).await;
            assert_eq!(status, 200, "{action}: {after}");
        }
    }
}

/// FRCrP 4.1: the judge who issues places the affiant under oath. A session of an earlier
/// review (another judge's, or from before the warrant was queued again) takes no oath or
/// amendment, and gives way, audited, when the judge who holds the warrant opens a new one.
#[tokio::test]
async fn the_oath_is_taken_by_the_judge_who_holds_the_warrant_in_a_session_of_this_review() {
    let e = env().await;
    // Another judge claims it after a return: the first judge's session is of no use.
    let w = e.in_review().await;
    let old = e.open_session(&w).await;
    e.provider(&old, "session.connected", json!({})).await;
    e.returned_and_claimed_by(&w, &e.judge, &e.judge2).await;
    let (status, p) = e.administer(&e.judge, &old).await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:session-superseded")),
        "{p}"
    );
    let amend = format!("/v1/warrants/{}/amendments", id(&w));
    let (status, p) = e
        .call(&e.judge, "POST", &amend, Some(json!({ "facts": "more" })))
        .await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:session-superseded")),
        "{p}"
    );
    let path = format!("/v1/warrants/{}/video-sessions", id(&w));
    let new = e.ok(&e.judge2, "POST", &path, None).await;
    let ended = e.session(&old).await;
    assert_eq!(ended["state"], "terminated", "{ended}");
    assert_eq!(ended["endReason"], "superseded", "{ended}");
    e.provider(&new, "session.connected", json!({})).await;
    let (status, sworn) = e.administer(&e.judge2, &new).await;
    assert!(status == 200 || status == 201, "{status} {sworn}");
    e.server.step_up(&e.judge2.user, &e.judge2.token).await;
    let (status, issued) = e.act(&e.judge2, &w, "issue").await;
    assert_eq!(status, 200, "{issued}");
    let entries = e.entries_of(&w).await;
    let superseded = entries
        .iter()
        .find(|x| x["action"] == "video.session.terminated" && x["detail"]["event"] == "superseded")
        .unwrap_or_else(|| panic!("{entries:#?}"));
    assert_eq!(superseded["actor"]["userId"], json!(e.judge2.user.id));
    assert_eq!(superseded["detail"]["supersededBy"], new["id"]);

    // The same judge after a return: the oath of the earlier review does not count, and its
    // session gives way to a new one for the new oath.
    let w = e.in_review().await;
    let old = e.open_session(&w).await;
    e.provider(&old, "session.connected", json!({})).await;
    let (status, sworn) = e.administer(&e.judge, &old).await;
    assert!(status == 200 || status == 201, "{status} {sworn}");
    e.returned_and_claimed_by(&w, &e.judge, &e.judge).await;
    e.server.step_up(&e.judge.user, &e.judge.token).await;
    let (status, p) = e.act(&e.judge, &w, "issue").await;
    assert_eq!(
        (status, p["type"].as_str()),
        (409, Some("urn:writ:problem:oath-required")),
        "{p}"
    );
    let new = e.open_session(&w).await;
    assert_eq!(e.session(&old).await["endReason"], "superseded");
    e.provider(&new, "session.connected", json!({})).await;
    let (status, sworn) = e.administer(&e.judge, &new).await;
    assert!(status == 200 || status == 201, "{status} {sworn}");
    let (status, issued) = e.act(&e.judge, &w, "issue").await;
    assert_eq!(status, 200, "{issued}");

    // Signature records name the oath of their own review only: the affidavit signed again after
    // the return names none (the earlier oath covered the earlier affidavit), the judge's
    // signature after the new oath names that one.
    let entries = e.entries_of(&w).await;
    let last = |action: &str, member: &str| {
        entries
            .iter()
            .rev()
            .find(|x| x["action"] == action)
            .and_then(|x| x["detail"][member].as_str())
            .unwrap_or_else(|| panic!("{action} {member}"))
            .to_owned()
    };
    let mut oaths = Vec::new();
    for id in [
        last("warrant.submitted", "affidavitSignatureId"),
        last("warrant.approved", "judgeSignatureId"),
    ] {
        let signature = e
            .ok(&e.judge, "GET", &format!("/v1/signatures/{id}"), None)
            .await;
        oaths.push(signature["record"]["record"]["oathReference"].clone());
    }
    assert!(oaths[0].is_null(), "{oaths:?}");
    assert_eq!(oaths[1], sworn["oath"]["id"], "{oaths:?}");
}

/// A provider's report arriving while an oath (or the timeout job) holds the warrant waits for it
/// and then goes through: it takes the warrant's lock before it touches the session, in the order
/// every change of a session does, so the two never deadlock.
#[tokio::test]
async fn a_report_during_a_change_of_the_session_waits_and_never_deadlocks() {
    let e = env().await;
    let w = e.in_review().await;
    let s = e.open_session(&w).await;
    e.provider(&s, "session.connected", json!({})).await;
    let warrant_id = uuid::Uuid::parse_str(id(&w)).unwrap();
    let session_id = uuid::Uuid::parse_str(s["id"].as_str().unwrap()).unwrap();
    // As an oath does: the warrant, then (a moment later) the session.
    let mut change = TenantTx::begin(&e.db.pool, &e.agency).await.unwrap();
    sqlx::query("SELECT 1 FROM warrants WHERE id = $1 FOR UPDATE")
        .bind(warrant_id)
        .execute(change.conn())
        .await
        .unwrap();
    let report = e.deliver(&s, "session.disconnected", json!({}));
    tokio::pin!(report);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(500), &mut report)
            .await
            .is_err(),
        "the report waits for the warrant"
    );
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        sqlx::query("SELECT 1 FROM video_sessions WHERE id = $1 FOR UPDATE")
            .bind(session_id)
            .execute(change.conn()),
    )
    .await
    .expect("the session is not held by the waiting report")
    .unwrap();
    change.commit().await.unwrap();
    let (status, body) = report.await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("applied")),
        "{body}"
    );
}
