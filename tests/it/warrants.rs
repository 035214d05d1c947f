//! Warrants through the real server, one user per role: the whole life from draft to returned,
//! every illegal step 409 with the actions allowed, wrong roles 403 (audited), separation of
//! duties, two judges claiming at once, stale versions, the completeness check, the expiry job
//! and reminders (driven "as of" a time, no sleeps), sealed visibility and seal lapses,
//! extensions, the judge queue and statistics — and exactly one audit entry per transition, with
//! the chain verifying afterwards.

use chrono::{Duration, SubsecRound, Utc};
use serde_json::{Value, json};
use writ_auth_mfa::Role;
use writ_tenancy::{Agency, TenantTx};
use writ_testkit::esign::sign_before;
use writ_testkit::{TestDb, TestServer, TestUser, ok, seed_user};
use writ_warrant_workflow::jobs::run_due;
use writ_warrant_workflow::presets::Preset;

/// A user and a live access token.
pub(crate) struct Who {
    pub(crate) user: TestUser,
    pub(crate) token: String,
}

pub(crate) struct Env {
    pub(crate) db: TestDb,
    pub(crate) agency: Agency,
    pub(crate) server: TestServer,
    pub(crate) officer: Who,
    pub(crate) officer2: Who,
    pub(crate) supervisor: Who,
    pub(crate) prosecutor: Who,
    pub(crate) judge: Who,
    pub(crate) judge2: Who,
    pub(crate) admin: Who,
    pub(crate) auditor: Who,
}

async fn who(db: &TestDb, agency: &Agency, server: &TestServer, name: &str, role: Role) -> Who {
    let user = seed_user(db, agency, name, role).await;
    let token = server.token(&user).await;
    Who { user, token }
}

/// The federal court of Minnesota (prosecutor review required) and a Kansas court (optional).
/// The federal preset requires an oath record before issue (FRCrP 4.1); these tests issue
/// without a video session (tests/it/video.rs holds the oath), so this court asks for none.
fn policy() -> Value {
    let mut federal = Preset::Federal.court(
        "d-minn",
        "U.S. District Court, D. Minn.",
        "America/Chicago".parse().unwrap(),
    );
    for t in &mut federal.types {
        t.oath = Default::default();
    }
    json!({ "courts": [
        federal,
        Preset::Kansas.court("ks-sedgwick", "Sedgwick County District Court", "America/Chicago".parse().unwrap()),
    ]})
}

pub(crate) async fn env() -> Env {
    let db = TestDb::new().await;
    let agency = db.onboard("metro-pd").await;
    let server = TestServer::start(&db);
    let officer = who(&db, &agency, &server, "officer.one", Role::Officer).await;
    let officer2 = who(&db, &agency, &server, "officer.two", Role::Officer).await;
    let supervisor = who(&db, &agency, &server, "sgt.super", Role::Supervisor).await;
    let prosecutor = who(&db, &agency, &server, "ada.pros", Role::Prosecutor).await;
    let judge = who(&db, &agency, &server, "judge.one", Role::Judge).await;
    let judge2 = who(&db, &agency, &server, "judge.two", Role::Judge).await;
    let admin = who(&db, &agency, &server, "admin.one", Role::AgencyAdmin).await;
    let auditor = who(&db, &agency, &server, "audit.one", Role::Auditor).await;
    server.step_up(&admin.user, &admin.token).await;
    let (status, body) = server
        .call(
            "PUT",
            "/v1/policies/warrant-types",
            &admin.token,
            Some(json!({ "value": policy() })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    Env {
        db,
        agency,
        server,
        officer,
        officer2,
        supervisor,
        prosecutor,
        judge,
        judge2,
        admin,
        auditor,
    }
}

fn search_content() -> Value {
    json!({
        "place": "1200 Elm St, Apt 3, Minneapolis",
        "itemsSought": ["handgun, black, 9 mm", "cell phones"],
        "offense": "Minn. Stat. § 609.11",
        "affidavit": "On 2 March 2026 at 21:40 the affiant saw …\nA witness reported …\n",
    })
}

impl Env {
    async fn call(&self, who: &Who, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.server.call(method, path, &who.token, body).await
    }

    /// A new federal search warrant application by `who`; its body.
    pub(crate) async fn create(&self, who: &Who, extra: Value) -> Value {
        let mut body = json!({ "court": "d-minn", "type": "search", "content": search_content() });
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        let (status, w) = self.call(who, "POST", "/v1/warrants", Some(body)).await;
        assert_eq!(status, 201, "{w}");
        w
    }

    /// `action` by `who`, after signing what it needs when `who` signs it (the affidavit
    /// before submitting, the warrant before issuing).
    async fn act(&self, who: &Who, w: &Value, action: &str, body: Value) -> (u16, Value) {
        sign_before(&self.server, &who.user, &who.token, w, action, &body).await;
        self.act_unsigned(who, w, action, body).await
    }

    pub(crate) async fn act_unsigned(
        &self,
        who: &Who,
        w: &Value,
        action: &str,
        body: Value,
    ) -> (u16, Value) {
        let path = format!("/v1/warrants/{}/actions/{action}", id(w));
        self.call(who, "POST", &path, Some(body)).await
    }

    /// `action` must succeed; the warrant after it.
    pub(crate) async fn step(&self, who: &Who, w: &Value, action: &str, body: Value) -> Value {
        let (status, after) = self.act(who, w, action, body).await;
        assert!(
            status == 200 || status == 201,
            "{action} by {}: {status} {after}",
            who.user.username
        );
        after
    }

    async fn get(&self, who: &Who, w: &Value) -> (u16, Value) {
        self.call(who, "GET", &format!("/v1/warrants/{}", id(w)), None)
            .await
    }

    /// A federal search warrant by `officer`, taken to pending_judge.
    pub(crate) async fn queued(&self, extra: Value) -> Value {
        let w = self.create(&self.officer, extra).await;
        self.to_judge(&w).await
    }

    /// Draft `w` of the officer, submitted and approved by the supervisor and the prosecutor:
    /// before the judge.
    pub(crate) async fn to_judge(&self, w: &Value) -> Value {
        self.step(&self.officer, w, "submit", json!({})).await;
        self.step(&self.supervisor, w, "supervisor-approve", json!({}))
            .await;
        self.step(&self.prosecutor, w, "prosecutor-approve", json!({}))
            .await
    }

    /// A federal search warrant, issued by `judge` (stepped up) with night service.
    pub(crate) async fn issued(&self) -> Value {
        let w = self.queued(json!({})).await;
        self.step(&self.judge, &w, "claim", json!({})).await;
        self.server
            .step_up(&self.judge.user, &self.judge.token)
            .await;
        self.step(&self.judge, &w, "issue", json!({ "nightService": true }))
            .await
    }

    /// `w`, issued, moved two days back and executed by its officer at noon yesterday in
    /// Chicago (18:00 UTC: inside every daytime window of these courts).
    async fn executed_yesterday_noon(&self, w: &Value) {
        self.set(w, "issued_at = $2", Utc::now() - Duration::days(2))
            .await;
        let noon = (Utc::now() - Duration::days(1))
            .date_naive()
            .and_hms_opt(18, 0, 0)
            .unwrap()
            .and_utc();
        self.step(
            &self.officer,
            w,
            "execute",
            json!({ "executedAt": noon.to_rfc3339() }),
        )
        .await;
    }

    /// A federal tracking-device warrant, claimed by the judge (stepped up to issue it).
    async fn tracking_device_claimed(&self) -> Value {
        let content = json!({
            "trackedObject": "2019 grey Honda Civic, MN plate ABC-123",
            "offense": "21 U.S.C. § 841",
            "affidavit": "The affiant observed the vehicle at three controlled buys …\n",
        });
        let w = self
            .create(
                &self.officer,
                json!({ "type": "tracking-device", "content": content }),
            )
            .await;
        self.to_judge(&w).await;
        self.step(&self.judge, &w, "claim", json!({})).await;
        self.server
            .step_up(&self.judge.user, &self.judge.token)
            .await;
        w
    }

    /// An extension of `w` asked for by its author, reviewed and issued like `issued` (right after it).
    async fn issued_extension(&self, w: &Value) -> Value {
        let (status, child) = self.act(&self.officer, w, "extend", json!({})).await;
        assert_eq!(status, 201, "{child}");
        let child = self.to_judge(&child).await;
        self.step(&self.judge, &child, "claim", json!({})).await;
        // The judge stepped up for `w` moments ago.
        self.step(
            &self.judge,
            &child,
            "issue",
            json!({ "nightService": true }),
        )
        .await
    }

    /// Runs the warrant jobs for the agency as of `at`.
    async fn jobs(&self, at: chrono::DateTime<Utc>) {
        let mut tx = TenantTx::begin(&self.db.pool, &self.agency).await.unwrap();
        run_due(&mut tx, at).await.unwrap();
        tx.commit().await.unwrap();
    }

    /// Sets columns of a warrant directly (the clock of these tests).
    async fn set(&self, w: &Value, assignment: &str, at: chrono::DateTime<Utc>) {
        // The schema name is validated (AgencyIdent) and `assignment` a literal of this file.
        let sql = format!(
            "UPDATE {}.warrants SET {assignment} WHERE id = $1",
            self.agency.ident.quoted()
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid::Uuid::parse_str(id(w)).unwrap())
            .bind(at)
            .execute(&self.db.pool)
            .await
            .unwrap();
    }

    /// Sequenced audit entries of the agency, as exported.
    pub(crate) async fn entries(&self) -> Vec<Value> {
        writ_testkit::audit::entries(&self.db, &self.agency).await
    }

    /// The entries that record a change of the warrant itself (reads, `warrant.viewed`, and
    /// the entries of its documents and signatures are left out).
    async fn entries_of(&self, w: &Value) -> Vec<Value> {
        self.all_entries_of(w)
            .await
            .into_iter()
            .filter(|e| {
                e["action"] != "warrant.viewed"
                    && e["action"]
                        .as_str()
                        .is_some_and(|a| a.starts_with("warrant."))
            })
            .collect()
    }

    async fn all_entries_of(&self, w: &Value) -> Vec<Value> {
        let wid = id(w).to_owned();
        self.entries()
            .await
            .into_iter()
            .filter(|e| e["resource"]["warrantId"] == json!(wid))
            .collect()
    }

    async fn denials(&self) -> usize {
        self.entries()
            .await
            .iter()
            .filter(|e| e["action"] == "authz.denied")
            .count()
    }
}

fn id(w: &Value) -> &str {
    w["id"].as_str().unwrap_or_else(|| panic!("no id in {w}"))
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect()
}

fn allowed(body: &Value) -> Vec<&str> {
    body["allowedActions"]
        .as_array()
        .unwrap_or_else(|| panic!("no allowedActions in {body}"))
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

#[tokio::test]
async fn a_warrant_goes_from_draft_to_returned_with_one_audit_entry_per_step() {
    let e = env().await;
    let w = e.create(&e.officer, json!({ "urgency": "urgent" })).await;
    let year = Utc::now().format("%Y").to_string();
    assert_eq!(w["number"], format!("W-{year}-000001"));
    assert_eq!(w["state"], "draft");
    assert_eq!(w["version"], 1);
    assert_eq!(allowed(&w), ["submit", "withdraw"]);

    let steps: [(&Who, &str, Value, &str, &str); 7] = [
        (
            &e.officer,
            "submit",
            json!({"version": 1}),
            "supervisor_review",
            "warrant.submitted",
        ),
        (
            &e.supervisor,
            "supervisor-approve",
            json!({}),
            "prosecutor_review",
            "warrant.reviewed",
        ),
        (
            &e.prosecutor,
            "prosecutor-approve",
            json!({}),
            "pending_judge",
            "warrant.queued",
        ),
        (
            &e.judge,
            "claim",
            json!({}),
            "judge_review",
            "warrant.claimed",
        ),
        (
            &e.judge,
            "issue",
            json!({"nightService": true}),
            "issued",
            "warrant.approved",
        ),
        (
            &e.officer2,
            "execute",
            json!({}),
            "executed",
            "warrant.executed",
        ),
        (
            &e.officer2,
            "file-return",
            json!({"return": {"kind": "inventory", "inventory": ["Glock 19, serial ABC123"]}}),
            "returned",
            "warrant.returned",
        ),
    ];
    let mut expected = vec![("warrant.created", e.officer.user.id)];
    for (who, action, body, state, code) in steps {
        if action == "issue" {
            e.server.step_up(&who.user, &who.token).await;
        }
        let after = e.step(who, &w, action, body).await;
        assert_eq!(after["state"], state, "{action}: {after}");
        expected.push((code, who.user.id));
    }
    let (status, done) = e.get(&e.officer, &w).await;
    assert_eq!(status, 200);
    assert_eq!(done["version"], 8);
    assert!(done["submittedAt"].is_string() && done["firstOpenedAt"].is_string());
    assert!(done["decidedAt"].is_string() && done["issuedAt"].is_string());
    assert_eq!(done["decidedBy"], json!(e.judge.user.id));
    // The deadline is the federal rule's, on the court's clock: the end of day 14.
    let instant = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("{done}")))
            .unwrap()
            .to_utc()
    };
    let search = Preset::Federal.types().remove(0);
    assert_eq!(
        Some(instant(&done["executionDeadline"])),
        writ_warrant_workflow::execution_deadline(
            &search,
            "America/Chicago".parse().unwrap(),
            instant(&done["issuedAt"])
        )
    );
    assert_eq!(done["executedBy"], json!(e.officer2.user.id));
    assert_eq!(done["return"]["kind"], "inventory");
    assert_eq!(
        done["return"]["inventory"],
        json!(["Glock 19, serial ABC123"])
    );
    assert_eq!(allowed(&done), Vec::<&str>::new());

    // The submitted affidavit was kept with its SHA-256.
    let (status, versions) = e
        .call(
            &e.officer,
            "GET",
            &format!("/v1/warrants/{}/versions", id(&w)),
            None,
        )
        .await;
    assert_eq!(status, 200, "{versions}");
    assert_eq!(versions.as_array().map(Vec::len), Some(1));
    assert_eq!(versions[0]["reason"], "submitted");
    assert_eq!(
        versions[0]["sha256"],
        writ_testkit::sha256_hex(search_content()["affidavit"].as_str().unwrap().as_bytes())
    );

    // Exactly one entry per step, with its code, the warrant and the actor.
    let entries = e.entries_of(&w).await;
    assert_eq!(entries.len(), expected.len(), "{entries:#?}");
    for (entry, (code, actor)) in entries.iter().zip(&expected) {
        assert_eq!(entry["action"], *code, "{entry}");
        assert_eq!(entry["actor"]["userId"], json!(actor), "{entry}");
        assert_eq!(entry["resource"]["number"], w["number"], "{entry}");
        assert_eq!(entry["outcome"], "success");
    }
    ok(e.db.writ(&["audit", "verify", "--agency", "metro-pd"]));
}

#[tokio::test]
async fn every_illegal_step_is_409_with_the_actions_allowed() {
    let e = env().await;
    let w = e.create(&e.officer, json!({})).await;
    e.server.step_up(&e.judge.user, &e.judge.token).await;
    // In draft, each of these roles may do something in general but not this, now.
    let tries: [(&Who, &str, Value); 8] = [
        (&e.judge, "claim", json!({})),
        (&e.judge, "issue", json!({})),
        (&e.judge, "reject", json!({"reason": "no probable cause"})),
        (&e.supervisor, "supervisor-approve", json!({})),
        (&e.prosecutor, "prosecutor-approve", json!({})),
        (&e.officer, "execute", json!({})),
        (&e.officer, "extend", json!({})),
        (
            &e.officer,
            "file-return",
            json!({"return": {"kind": "not_executed"}}),
        ),
    ];
    for (who, action, body) in tries {
        let (status, p) = e.act(who, &w, action, body).await;
        assert_eq!(status, 409, "{action}: {p}");
        assert_eq!(p["type"], "urn:writ:problem:illegal-transition", "{p}");
        let (_, seen) = e.get(who, &w).await;
        assert_eq!(
            allowed(&p),
            allowed(&seen),
            "{action}: the 409 lists what the caller may do"
        );
    }
    let (_, p) = e.act(&e.officer, &w, "execute", json!({})).await;
    assert_eq!(allowed(&p), ["submit", "withdraw"]);

    // Further on: a queued warrant cannot be issued before it is claimed, nor claimed twice.
    let q = e.queued(json!({})).await;
    let (status, p) = e.act(&e.judge, &q, "issue", json!({})).await;
    assert_eq!(status, 409, "{p}");
    assert_eq!(allowed(&p), ["claim"]);
    e.step(&e.judge, &q, "claim", json!({})).await;
    let (status, p) = e.act(&e.judge2, &q, "claim", json!({})).await;
    assert_eq!(status, 409, "{p}");
    // Only the claimant decides.
    e.server.step_up(&e.judge2.user, &e.judge2.token).await;
    let (status, p) = e.act(&e.judge2, &q, "issue", json!({})).await;
    assert_eq!(status, 409, "{p}");
    assert_eq!(p["type"], "urn:writ:problem:claimed-by-another-judge");
    // Refused for who the judge is: recorded as a denial naming the warrant and why.
    let denied = e
        .entries()
        .await
        .into_iter()
        .filter(|x| {
            x["action"] == "authz.denied" && x["actor"]["userId"] == json!(e.judge2.user.id)
        })
        .collect::<Vec<_>>();
    assert_eq!(denied.len(), 1, "{denied:#?}");
    assert_eq!(
        denied[0]["detail"]["route"],
        "POST /v1/warrants/{id}/actions/{action}"
    );
    assert_eq!(
        denied[0]["detail"]["path"],
        format!("/v1/warrants/{}/actions/issue", id(&q))
    );
    assert!(
        denied[0]["detail"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("claimed")),
        "{denied:#?}"
    );
    // A reason is required to reject.
    let (status, p) = e.act(&e.judge, &q, "reject", json!({})).await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(p["errors"][0]["field"], "reason");
    // Nothing of that was recorded as a transition.
    let codes = actions(&e.entries_of(&w).await).join(",");
    assert_eq!(codes, "warrant.created");
}

#[tokio::test]
async fn wrong_roles_are_refused_with_403_and_each_refusal_is_audited() {
    let e = env().await;
    let w = e.create(&e.officer, json!({})).await;
    e.step(&e.officer, &w, "submit", json!({})).await;
    let before = e.denials().await;
    let tries: [(&Who, &str); 6] = [
        (&e.officer, "supervisor-approve"),
        (&e.prosecutor, "supervisor-approve"),
        (&e.judge, "supervisor-approve"),
        (&e.officer2, "withdraw"),
        (&e.admin, "supervisor-approve"),
        (&e.auditor, "supervisor-approve"),
    ];
    for (who, action) in tries {
        let (status, p) = e.act(who, &w, action, json!({})).await;
        assert_eq!(status, 403, "{} {action}: {p}", who.user.username);
    }
    // Reading: auditors see no warrant content; creating: officers only.
    let (status, _) = e.get(&e.auditor, &w).await;
    assert_eq!(status, 403);
    let (status, _) = e
        .call(
            &e.judge,
            "POST",
            "/v1/warrants",
            Some(json!({"court": "d-minn", "type": "search"})),
        )
        .await;
    assert_eq!(status, 403);
    // Only the author edits the draft.
    let path = format!("/v1/warrants/{}", id(&w));
    let (status, _) = e
        .call(&e.officer2, "PATCH", &path, Some(json!({"version": 2})))
        .await;
    assert_eq!(status, 403);
    assert_eq!(e.denials().await - before, 9);
    let (_, now) = e.get(&e.officer, &w).await;
    assert_eq!(now["state"], "supervisor_review");
}

#[tokio::test]
async fn nobody_reviews_a_warrant_they_authored() {
    let e = env().await;
    let w = e.create(&e.officer, json!({})).await;
    e.step(&e.officer, &w, "submit", json!({})).await;
    // The author is promoted to supervisor, logs in again and tries to approve their own.
    let (status, body) = e
        .call(
            &e.admin,
            "PATCH",
            &format!("/v1/users/{}", e.officer.user.id),
            Some(json!({"role": "supervisor"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = e.server.token(&e.officer.user).await;
    let path = format!("/v1/warrants/{}/actions/supervisor-approve", id(&w));
    let (status, p) = e.server.call("POST", &path, &token, Some(json!({}))).await;
    assert_eq!(status, 403, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("separation of duties"),
        "{p}"
    );
    let (_, seen) = e
        .server
        .call("GET", &format!("/v1/warrants/{}", id(&w)), &token, None)
        .await;
    assert_eq!(allowed(&seen), Vec::<&str>::new());
    e.step(&e.supervisor, &w, "supervisor-approve", json!({}))
        .await;
}

#[tokio::test]
async fn two_judges_claiming_at_once_exactly_one_wins() {
    let e = env().await;
    let w = e.queued(json!({})).await;
    let (a, b) = tokio::join!(
        e.act(&e.judge, &w, "claim", json!({})),
        e.act(&e.judge2, &w, "claim", json!({}))
    );
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{} {}", a.1, b.1);
    let winner = if a.0 == 200 { &e.judge } else { &e.judge2 };
    let (_, now) = e.get(&e.judge, &w).await;
    assert_eq!(now["claimedBy"], json!(winner.user.id));
    let claims = e
        .entries_of(&w)
        .await
        .into_iter()
        .filter(|x| x["action"] == "warrant.claimed")
        .count();
    assert_eq!(claims, 1);
}

#[tokio::test]
async fn a_stale_version_is_409() {
    let e = env().await;
    let w = e.create(&e.officer, json!({})).await;
    let path = format!("/v1/warrants/{}", id(&w));
    let (status, edited) = e
        .call(
            &e.officer,
            "PATCH",
            &path,
            Some(json!({"version": 1, "urgency": "exigent"})),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["version"], 2);
    assert_eq!(edited["urgency"], "exigent");
    let (status, p) = e
        .call(
            &e.officer,
            "PATCH",
            &path,
            Some(json!({"version": 1, "urgency": "routine"})),
        )
        .await;
    assert_eq!(status, 409, "{p}");
    assert_eq!(p["type"], "urn:writ:problem:stale-version");
    let (status, p) = e.act(&e.officer, &w, "submit", json!({"version": 1})).await;
    assert_eq!(status, 409, "{p}");
    assert_eq!(p["type"], "urn:writ:problem:stale-version");
    e.step(&e.officer, &w, "submit", json!({"version": 2}))
        .await;
    // A submitted application is no draft any more.
    let (status, p) = e
        .call(&e.officer, "PATCH", &path, Some(json!({"version": 3})))
        .await;
    assert_eq!(status, 409, "{p}");
    let codes = actions(&e.entries_of(&w).await).join(",");
    assert_eq!(codes, "warrant.created,warrant.updated,warrant.submitted");
}

#[tokio::test]
async fn an_incomplete_application_is_422_listing_every_field() {
    let e = env().await;
    let w = e
        .create(
            &e.officer,
            json!({"content": {
                "offense": "Minn. Stat. § 609.11",
                "affidavit": "On [INSERT DATE] the affiant …",
                "itemsSought": ["cell phones", ""],
            }}),
        )
        .await;
    let (status, p) = e.act(&e.officer, &w, "submit", json!({})).await;
    assert_eq!(status, 422, "{p}");
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["field"].as_str())
        .collect();
    assert_eq!(fields, ["place", "itemsSought[1]", "affidavit"], "{p}");
    assert_eq!(p["errors"][0]["problem"], "missing");
    assert_eq!(p["errors"][2]["problem"], "placeholder");
    let (_, still) = e.get(&e.officer, &w).await;
    assert_eq!(still["state"], "draft");
    assert_eq!(still["version"], 1);
    let codes = actions(&e.entries_of(&w).await).join(",");
    assert_eq!(codes, "warrant.created");
}

/// One warrant the job cannot handle (its stored rules no longer read) is left for the next run;
/// the agency's other warrants still expire.
#[tokio::test]
async fn a_warrant_the_job_cannot_handle_does_not_stop_the_others() {
    let e = env().await;
    let broken = e.issued().await;
    let fine = e.issued().await;
    let past = Utc::now() - Duration::minutes(1);
    for w in [&broken, &fine] {
        e.set(w, "execution_deadline = $2", past).await;
    }
    let sql = format!(
        "UPDATE {}.warrants SET type_rules = '{{\"bogus\": true}}'::jsonb WHERE id = $1",
        e.agency.ident.quoted()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(uuid::Uuid::parse_str(id(&broken)).unwrap())
        .execute(&e.db.pool)
        .await
        .unwrap();
    let mut tx = TenantTx::begin(&e.db.pool, &e.agency).await.unwrap();
    let report = run_due(&mut tx, Utc::now()).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(report.expired, 1, "{report:?}");
    let (_, seen) = e.get(&e.officer, &fine).await;
    assert_eq!(seen["state"], "expired");
    let sql = format!(
        "SELECT state FROM {}.warrants WHERE id = $1",
        e.agency.ident.quoted()
    );
    let state: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(uuid::Uuid::parse_str(id(&broken)).unwrap())
        .fetch_one(&e.db.pool)
        .await
        .unwrap();
    assert_eq!(
        state, "issued",
        "left for the next run, nothing half-written"
    );
}

#[tokio::test]
async fn the_expiry_job_reminds_the_author_then_expires_the_warrant() {
    let e = env().await;
    let w = e.issued().await;
    let now = Utc::now();
    // Nothing is due while the deadline (14 days) is far.
    e.jobs(now).await;
    let (_, seen) = e.get(&e.officer, &w).await;
    assert!(seen["reminderSentAt"].is_null());
    assert_eq!(seen["state"], "issued");

    // Within the court's lead time (24 h): one reminder, however often the job runs.
    e.set(&w, "execution_deadline = $2", now + Duration::hours(5))
        .await;
    e.jobs(now).await;
    e.jobs(now + Duration::minutes(1)).await;
    let (_, seen) = e.get(&e.officer, &w).await;
    assert!(seen["reminderSentAt"].is_string(), "{seen}");
    let sql = format!(
        "SELECT recipient_id FROM {}.warrant_reminders WHERE warrant_id = $1",
        e.agency.ident.quoted()
    );
    let recipients: Vec<uuid::Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(uuid::Uuid::parse_str(id(&w)).unwrap())
        .fetch_all(&e.db.pool)
        .await
        .unwrap();
    assert_eq!(recipients, [e.officer.user.id]);

    // Past the deadline: expired, recorded once by the system; executing it is refused.
    e.jobs(now + Duration::hours(5)).await;
    e.jobs(now + Duration::hours(6)).await;
    let (_, seen) = e.get(&e.officer, &w).await;
    assert_eq!(seen["state"], "expired");
    // The job ran on a clock five hours ahead: the deadline is past for the server too.
    e.set(&w, "execution_deadline = $2", now - Duration::minutes(1))
        .await;
    let (status, p) = e.act(&e.officer, &w, "execute", json!({})).await;
    assert_eq!(status, 409, "{p}");
    assert_eq!(allowed(&p), ["file-return"]);
    let after = e
        .step(
            &e.officer,
            &w,
            "file-return",
            json!({"return": {"kind": "not_executed", "note": "suspect moved"}}),
        )
        .await;
    assert_eq!(after["state"], "returned");
    let entries = e.entries_of(&w).await;
    let expired: Vec<&Value> = entries
        .iter()
        .filter(|x| x["action"] == "warrant.expired")
        .collect();
    assert_eq!(expired.len(), 1, "{entries:#?}");
    assert_eq!(expired[0]["actor"]["role"], "system");
    assert!(expired[0]["actor"]["userId"].is_null());
}

/// Minn. R. 36.08: the executing officer enters the exact execution time. A search done inside
/// the window may be recorded after the deadline, even once the job has expired the warrant; an
/// execution time past the deadline is still refused.
#[tokio::test]
async fn an_execution_done_in_time_is_recorded_after_the_deadline_and_the_expiry() {
    let e = env().await;
    let w = e.issued().await;
    let now = Utc::now();
    e.set(&w, "issued_at = $2", now - Duration::days(3)).await;
    e.set(&w, "execution_deadline = $2", now - Duration::hours(1))
        .await;
    e.jobs(now).await;
    let (_, seen) = e.get(&e.officer, &w).await;
    assert_eq!(seen["state"], "expired", "{seen}");
    let late = (now - Duration::minutes(30)).to_rfc3339();
    let (status, p) = e
        .act(&e.officer, &w, "execute", json!({"executedAt": late}))
        .await;
    assert_eq!(status, 409, "{p}");
    assert_eq!(p["type"], "urn:writ:problem:execution-window-closed", "{p}");
    assert_eq!(allowed(&p), ["file-return"]);
    let in_time = now - Duration::days(2);
    let done = e
        .step(
            &e.officer,
            &w,
            "execute",
            json!({"executedAt": in_time.to_rfc3339()}),
        )
        .await;
    assert_eq!(done["state"], "executed", "{done}");
    assert_eq!(instant_of(&done["executedAt"]), in_time.trunc_subsecs(3));
    let entries = e.entries_of(&w).await;
    let executed = entries
        .iter()
        .find(|x| x["action"] == "warrant.executed")
        .unwrap();
    assert_eq!(executed["detail"]["from"], "expired", "{executed}");
    assert_eq!(
        instant_of(&executed["detail"]["executedAt"]),
        in_time.trunc_subsecs(3)
    );
}

#[tokio::test]
async fn execution_outside_the_window_or_the_daytime_is_refused() {
    let e = env().await;
    let w = e.issued().await;
    // Before the issue time.
    let issued_at = chrono::DateTime::parse_from_rfc3339(w["issuedAt"].as_str().unwrap())
        .unwrap()
        .to_utc();
    let before = (issued_at - Duration::hours(1)).to_rfc3339();
    let (status, p) = e
        .act(&e.officer, &w, "execute", json!({"executedAt": before}))
        .await;
    assert_eq!(status, 409, "{p}");
    assert_eq!(p["type"], "urn:writ:problem:execution-before-issue");
    assert_eq!(p["refusal"]["reason"], "before_issue");
    assert!(
        p["refusal"]["issuedAt"].is_string() && p["refusal"]["executedAt"].is_string(),
        "camelCase like every member: {p}"
    );
    // Past the deadline (moved into the past) but not yet expired by the job.
    e.set(
        &w,
        "execution_deadline = $2",
        Utc::now() - Duration::minutes(1),
    )
    .await;
    let (status, p) = e.act(&e.officer, &w, "execute", json!({})).await;
    assert_eq!(status, 409, "{p}");
    // The server's own expiry job may have expired it in the meantime: refused either way.
    assert!(
        p["type"] == "urn:writ:problem:execution-window-closed"
            || p["type"] == "urn:writ:problem:illegal-transition",
        "{p}"
    );
    assert_eq!(allowed(&p), ["file-return"]);

    // Issued without night service, three days ago: the last 09:30 UTC (03:30 or 04:30 in
    // Chicago) is outside the federal daytime window of 06:00-22:00.
    let q = e.queued(json!({})).await;
    e.step(&e.judge, &q, "claim", json!({})).await;
    e.step(&e.judge, &q, "issue", json!({})).await;
    e.set(&q, "issued_at = $2", Utc::now() - Duration::days(3))
        .await;
    let now = Utc::now();
    let mut night = now.date_naive().and_hms_opt(9, 30, 0).unwrap().and_utc();
    if night > now {
        night -= Duration::days(1);
    }
    let (status, p) = e
        .act(
            &e.officer,
            &q,
            "execute",
            json!({"executedAt": night.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 409, "{p}");
    assert_eq!(p["type"], "urn:writ:problem:outside-daytime-window");
    assert_eq!(p["refusal"]["reason"], "outside_daytime");
    // Noon in Chicago the day before is fine.
    let noon = night
        .date_naive()
        .pred_opt()
        .and_then(|d| d.and_hms_opt(18, 0, 0))
        .unwrap()
        .and_utc();
    let done = e
        .step(
            &e.officer,
            &q,
            "execute",
            json!({"executedAt": noon.to_rfc3339()}),
        )
        .await;
    assert_eq!(done["state"], "executed");
    assert_eq!(instant_of(&done["executedAt"]), noon);
}

fn instant_of(v: &Value) -> chrono::DateTime<Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("{v}")))
        .unwrap()
        .to_utc()
}

#[tokio::test]
async fn sealed_warrants_are_hidden_from_all_but_judges_prosecutors_and_admins_until_the_seal_ends()
{
    let e = env().await;
    let w = e.issued().await;
    // The judge is offered the seal; nobody else is.
    let (_, seen) = e.get(&e.judge, &w).await;
    assert_eq!(seen["sealActions"], json!(["seal"]), "{seen}");
    let (_, seen) = e.get(&e.officer, &w).await;
    assert!(seen.get("sealActions").is_none(), "{seen}");
    // An end past the calendar, or texts beyond any order's, are refused naming the field.
    for (body, field) in [
        (
            json!({"orderReference": "SO-1", "reason": "r", "expiresAt": "+262142-12-31T20:00:00Z"}),
            "expiresAt",
        ),
        (
            json!({"orderReference": "S".repeat(2001), "reason": "r"}),
            "orderReference",
        ),
    ] {
        let (status, p) = e.act(&e.judge, &w, "seal", body).await;
        assert_eq!(
            (status, p["errors"][0]["field"].as_str()),
            (422, Some(field)),
            "{p}"
        );
    }
    let expires = Utc::now() + Duration::days(180);
    let sealed = e
        .step(
            &e.judge,
            &w,
            "seal",
            json!({"orderReference": "SO-2026-14", "reason": "ongoing investigation",
                   "expiresAt": expires.to_rfc3339()}),
        )
        .await;
    assert_eq!(sealed["sealed"], true);
    assert_eq!(sealed["seal"]["orderReference"], "SO-2026-14");
    assert_eq!(sealed["sealActions"], json!(["renew-seal", "unseal"]));
    for who in [&e.officer, &e.officer2, &e.supervisor] {
        let (status, _) = e.get(who, &w).await;
        assert_eq!(status, 404, "{}", who.user.username);
        let (_, page) = e.call(who, "GET", "/v1/warrants", None).await;
        assert!(
            !page["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["id"] == w["id"]),
            "{}",
            who.user.username
        );
        let (status, _) = e.act(who, &w, "execute", json!({})).await;
        assert_eq!(status, 404);
    }
    for who in [&e.judge, &e.prosecutor, &e.admin] {
        let (status, seen) = e.get(who, &w).await;
        assert_eq!(status, 200, "{}", who.user.username);
        assert_eq!(seen["sealed"], true);
    }
    // Only judges seal; a second seal is a renewal.
    let (status, _) = e
        .act(
            &e.prosecutor,
            &w,
            "renew-seal",
            json!({"orderReference": "SO-2"}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, p) = e
        .act(
            &e.judge,
            &w,
            "seal",
            json!({"orderReference": "SO-2", "reason": "again"}),
        )
        .await;
    assert_eq!(status, 409, "{p}");
    let renewed = e
        .step(
            &e.judge,
            &w,
            "renew-seal",
            json!({"orderReference": "SO-2026-88", "expiresAt": (expires + Duration::days(180)).to_rfc3339()}),
        )
        .await;
    assert_eq!(
        renewed["seal"]["renewals"].as_array().map(Vec::len),
        Some(1)
    );

    // The seal lapses: visible again at once, and the job records the end.
    e.set(
        &w,
        "seal_expires_at = $2",
        Utc::now() - Duration::minutes(1),
    )
    .await;
    let (status, _) = e.get(&e.officer, &w).await;
    assert_eq!(status, 200);
    e.jobs(Utc::now()).await;
    let (_, seen) = e.get(&e.officer, &w).await;
    assert_eq!(seen["sealed"], false);
    let codes = actions(&e.entries_of(&w).await).join(",");
    assert!(
        codes.ends_with("warrant.sealed,warrant.seal_renewed,warrant.unsealed"),
        "{codes}"
    );
    let last = e.entries_of(&w).await.pop().unwrap();
    assert_eq!(last["actor"]["role"], "system");
    assert_eq!(last["detail"]["reason"], "expired");

    // Sealed again and unsealed by order.
    e.step(
        &e.judge,
        &w,
        "seal",
        json!({"orderReference": "SO-3", "reason": "new facts"}),
    )
    .await;
    let (status, _) = e.get(&e.officer, &w).await;
    assert_eq!(status, 404);
    let open = e
        .step(
            &e.judge,
            &w,
            "unseal",
            json!({"orderReference": "UO-1", "reason": "charges filed"}),
        )
        .await;
    assert_eq!(open["sealed"], false);
    let (status, _) = e.get(&e.officer, &w).await;
    assert_eq!(status, 200);

    // Sealed again; that seal lapses and a judge seals anew before the job ran: the lapse is
    // recorded first, and the order keeps the earlier ones.
    e.step(
        &e.judge,
        &w,
        "seal",
        json!({"orderReference": "SO-4", "reason": "a co-defendant at large",
            "expiresAt": (Utc::now() + Duration::days(30)).to_rfc3339()}),
    )
    .await;
    e.set(
        &w,
        "seal_expires_at = $2",
        Utc::now() - Duration::minutes(1),
    )
    .await;
    let resealed = e
        .step(
            &e.judge,
            &w,
            "seal",
            json!({"orderReference": "SO-5", "reason": "still at large"}),
        )
        .await;
    let earlier: Vec<&str> = resealed["seal"]["earlier"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderReference"].as_str().unwrap())
        .collect();
    assert_eq!(earlier, ["SO-2026-14", "SO-3", "SO-4"], "{resealed}");
    let codes = actions(&e.entries_of(&w).await).join(",");
    assert!(
        codes.ends_with("warrant.sealed,warrant.unsealed,warrant.sealed"),
        "{codes}"
    );
    let lapse = e.entries_of(&w).await;
    let lapse = &lapse[lapse.len() - 2];
    assert_eq!(lapse["actor"]["role"], "system", "{lapse}");
    assert_eq!(lapse["detail"]["reason"], "expired", "{lapse}");
    e.jobs(Utc::now()).await;
    assert_eq!(
        actions(&e.entries_of(&w).await).join(","),
        codes,
        "the job finds nothing more to record"
    );
    ok(e.db.writ(&["audit", "verify", "--agency", "metro-pd"]));
}

#[tokio::test]
async fn an_extension_is_a_linked_draft_inheriting_the_original() {
    let e = env().await;
    let w = e.issued().await;
    let (status, p) = e.act(&e.officer2, &w, "extend", json!({})).await;
    assert_eq!(status, 403, "only the author asks for an extension: {p}");
    let (status, child) = e.act(&e.officer, &w, "extend", json!({})).await;
    assert_eq!(status, 201, "{child}");
    assert_eq!(child["parentId"], w["id"]);
    assert_eq!(child["state"], "draft");
    assert_ne!(child["number"], w["number"]);
    for field in [
        "court",
        "type",
        "urgency",
        "content",
        "aiAssisted",
        "sealingRequested",
    ] {
        assert_eq!(child[field], w[field], "{field}");
    }
    assert_eq!(child["authorId"], json!(e.officer.user.id));
    let (_, parent) = e.get(&e.officer, &w).await;
    assert_eq!(parent["state"], "issued");
    let created: Vec<Value> = e
        .entries_of(&child)
        .await
        .into_iter()
        .filter(|x| x["action"] == "warrant.created")
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["resource"]["parentWarrantId"], w["id"]);
    assert_eq!(created[0]["resource"]["number"], child["number"]);
    // The extension goes through review like any application.
    e.step(&e.officer, &child, "submit", json!({})).await;
}

/// A sealing order covers the extensions issued from the warrant (they carry its content): each
/// is sealed with it, recorded on its own, and hidden as the original is; renewals and lifting
/// follow. An extension still being applied for stays with its author until it is issued; one
/// under a seal of its own keeps it.
#[tokio::test]
async fn sealing_a_warrant_seals_the_extensions_issued_from_it() {
    let e = env().await;
    let w = e.issued().await;
    let (status, draft) = e.act(&e.officer, &w, "extend", json!({})).await;
    assert_eq!(status, 201, "{draft}");
    let issued = e.issued_extension(&w).await;
    let grandchild = e.issued_extension(&issued).await;
    let own = e.issued_extension(&w).await;
    e.step(
        &e.judge,
        &own,
        "seal",
        json!({"orderReference": "SO-OWN", "reason": "its own order"}),
    )
    .await;
    let expires = Utc::now() + Duration::days(90);
    e.step(
        &e.judge,
        &w,
        "seal",
        json!({"orderReference": "SO-2026-31", "reason": "ongoing investigation",
               "expiresAt": expires.to_rfc3339()}),
    )
    .await;
    for covered in [&issued, &grandchild] {
        for who in [&e.officer, &e.officer2, &e.supervisor] {
            let (status, _) = e.get(who, covered).await;
            assert_eq!(status, 404, "{}", who.user.username);
        }
        let (status, seen) = e.get(&e.judge, covered).await;
        assert_eq!(status, 200, "{seen}");
        assert_eq!(seen["seal"]["orderReference"], "SO-2026-31");
        let sealed: Vec<Value> = e
            .entries_of(covered)
            .await
            .into_iter()
            .filter(|x| x["action"] == "warrant.sealed")
            .collect();
        assert_eq!(sealed.len(), 1, "{sealed:#?}");
        assert_eq!(sealed[0]["detail"]["coveredBy"], w["id"]);
    }
    let (_, seen) = e.get(&e.judge, &own).await;
    assert_eq!(seen["seal"]["orderReference"], "SO-OWN");
    let (status, seen) = e.get(&e.officer, &draft).await;
    assert_eq!(status, 200, "the author keeps the draft: {seen}");
    assert_eq!(seen["sealed"], false);
    // Issued while the original is sealed, it is sealed under the same order at once.
    let draft = e.to_judge(&draft).await;
    e.step(&e.judge, &draft, "claim", json!({})).await;
    let late = e
        .step(&e.judge, &draft, "issue", json!({ "nightService": true }))
        .await;
    assert_eq!(late["sealed"], true, "{late}");
    assert_eq!(late["seal"]["orderReference"], "SO-2026-31");
    let (status, _) = e.get(&e.officer, &late).await;
    assert_eq!(status, 404);

    // Renewing and lifting the order follow it to what it covers, and not to the others.
    let later = expires + Duration::days(180);
    let renewed = e
        .step(
            &e.judge,
            &w,
            "renew-seal",
            json!({"orderReference": "SO-2026-31-R1", "expiresAt": later.to_rfc3339()}),
        )
        .await;
    for covered in [&issued, &grandchild] {
        let (_, seen) = e.get(&e.judge, covered).await;
        assert_eq!(
            seen["seal"]["expiresAt"], renewed["seal"]["expiresAt"],
            "{seen}"
        );
    }
    e.step(
        &e.judge,
        &w,
        "unseal",
        json!({"orderReference": "SO-2026-31-U", "reason": "investigation closed"}),
    )
    .await;
    for covered in [&issued, &grandchild] {
        let (status, seen) = e.get(&e.officer, covered).await;
        assert_eq!(status, 200, "{seen}");
        let actions: Vec<Value> = e
            .entries_of(covered)
            .await
            .into_iter()
            .filter(|x| x["action"] == "warrant.unsealed")
            .collect();
        assert_eq!(actions.len(), 1, "{actions:#?}");
        assert_eq!(actions[0]["detail"]["coveredBy"], w["id"]);
    }
    let (status, _) = e.get(&e.officer, &own).await;
    assert_eq!(status, 404, "its own order still holds");
}

#[tokio::test]
async fn the_judge_queue_is_exigent_then_urgent_then_oldest_and_statistics_count_reviews() {
    let e = env().await;
    let routine = e.queued(json!({"urgency": "routine"})).await;
    let exigent = e.queued(json!({"urgency": "exigent"})).await;
    let urgent = e.queued(json!({"urgency": "urgent"})).await;
    let routine2 = e.queued(json!({"urgency": "routine"})).await;
    let (status, q) = e.call(&e.judge, "GET", "/v1/queue", None).await;
    assert_eq!(status, 200, "{q}");
    let order: Vec<&str> = q.as_array().unwrap().iter().map(id).collect();
    assert_eq!(
        order,
        [id(&exigent), id(&urgent), id(&routine), id(&routine2)]
    );
    // Summaries: what the warrants say is read one at a time, each read recorded; the queue
    // opens none of them.
    let viewed = || async {
        writ_testkit::audit::entries_with_action(&e.db, &e.agency, "warrant.viewed")
            .await
            .len()
    };
    let before = viewed().await;
    let (_, page) = e.call(&e.judge, "GET", "/v1/warrants", None).await;
    for item in q
        .as_array()
        .unwrap()
        .iter()
        .chain(page["items"].as_array().unwrap())
    {
        assert!(item.get("content").is_none(), "{item}");
        assert!(
            item["state"].is_string() && item["allowedActions"].is_array(),
            "{item}"
        );
    }
    assert!(
        q.as_array()
            .unwrap()
            .iter()
            .all(|w| w["openedAt"].is_null())
    );
    assert_eq!(viewed().await, before);
    let (status, _) = e.call(&e.officer, "GET", "/v1/queue", None).await;
    assert_eq!(status, 403);

    // A Kansas warrant the supervisor sends straight to the judge (optional prosecutor review).
    let ks = e
        .create(
            &e.officer,
            json!({"court": "ks-sedgwick", "type": "search"}),
        )
        .await;
    e.step(&e.officer, &ks, "submit", json!({})).await;
    let after = e
        .step(
            &e.supervisor,
            &ks,
            "supervisor-approve",
            json!({"route": "judge"}),
        )
        .await;
    assert_eq!(after["state"], "pending_judge");

    // Decisions: two issued (one after a revision), one rejected.
    e.server.step_up(&e.judge.user, &e.judge.token).await;
    e.step(&e.judge, &exigent, "claim", json!({})).await;
    e.step(&e.judge, &exigent, "issue", json!({})).await;
    e.step(&e.judge2, &urgent, "claim", json!({})).await;
    e.step(
        &e.judge2,
        &urgent,
        "reject",
        json!({"reason": "stale information"}),
    )
    .await;
    e.step(&e.judge, &routine, "claim", json!({})).await;
    let back = e
        .step(
            &e.judge,
            &routine,
            "return-for-revision",
            json!({"reason": "describe the phones"}),
        )
        .await;
    assert_eq!(back["state"], "draft");
    assert_eq!(back["approvals"]["supervisor"], Value::Null);
    let (_, versions) = e
        .call(
            &e.officer,
            "GET",
            &format!("/v1/warrants/{}/versions", id(&routine)),
            None,
        )
        .await;
    assert_eq!(versions.as_array().map(Vec::len), Some(2), "{versions}");
    let mut content = search_content();
    content["affidavit"] =
        json!("On 2 March 2026 at 21:40 the affiant saw …\nTwo black phones …\n");
    e.call(
        &e.officer,
        "PATCH",
        &format!("/v1/warrants/{}", id(&routine)),
        Some(json!({"version": back["version"], "content": content})),
    )
    .await;
    e.step(&e.officer, &routine, "submit", json!({})).await;
    let (status, diff) = e
        .call(
            &e.officer,
            "GET",
            &format!("/v1/warrants/{}/versions/1/diff/3", id(&routine)),
            None,
        )
        .await;
    assert_eq!(status, 200, "{diff}");
    assert_eq!(
        (diff["inserted"].as_u64(), diff["deleted"].as_u64()),
        (Some(1), Some(1))
    );
    e.step(&e.supervisor, &routine, "supervisor-approve", json!({}))
        .await;
    e.step(&e.prosecutor, &routine, "prosecutor-approve", json!({}))
        .await;
    e.step(&e.judge, &routine, "claim", json!({})).await;
    e.step(&e.judge, &routine, "issue", json!({})).await;

    let (status, stats) = e
        .call(&e.admin, "GET", "/v1/stats/warrants?court=d-minn", None)
        .await;
    assert_eq!(status, 200, "{stats}");
    let court = &stats[0];
    assert_eq!(court["court"], "d-minn");
    assert_eq!(court["submitted"], 4);
    assert_eq!(court["decided"], 3);
    assert_eq!(court["issued"], 2);
    assert_eq!(court["rejected"], 1);
    assert!((court["approvalRate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(court["firstPassRate"], 0.5);
    assert!(court["timeToDecision"]["p50Seconds"].as_f64().unwrap() >= 0.0);
    assert!(court["timeToFirstView"]["p95Seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(court["byType"][0]["type"], "search");
    let judges = court["byJudge"].as_array().unwrap();
    let of = |j: &Who| {
        judges
            .iter()
            .find(|x| x["judgeId"] == json!(j.user.id))
            .cloned()
    };
    assert_eq!(of(&e.judge).unwrap()["issued"], 2);
    assert_eq!(of(&e.judge2).unwrap()["rejected"], 1);
    let (status, _) = e.call(&e.officer, "GET", "/v1/stats/warrants", None).await;
    assert_eq!(status, 403);

    // A judge reads the figures of the courts they preside over, and only those.
    let (status, none) = e.call(&e.judge2, "GET", "/v1/stats/warrants", None).await;
    assert_eq!((status, none.clone()), (200, json!([])), "{none}");
    let (status, body) = e
        .call(
            &e.admin,
            "PUT",
            "/v1/courts/d-minn/roster",
            Some(json!({ "presidingJudgeId": e.judge2.user.id, "shifts": [] })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, mine) = e.call(&e.judge2, "GET", "/v1/stats/warrants", None).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "{mine}");
    assert_eq!(mine[0]["court"], "d-minn");
    assert_eq!(mine[0]["submitted"], 4);
    let (_, others) = e.call(&e.judge, "GET", "/v1/stats/warrants", None).await;
    assert_eq!(others, json!([]));
}

#[tokio::test]
async fn ai_assisted_affidavits_keep_their_draft_and_need_the_prosecutor() {
    let e = env().await;
    let w = e
        .create(
            &e.officer,
            json!({"court": "ks-sedgwick", "type": "search",
                   "aiAssistance": {"tool": "DraftOne 2.3", "draft": "On March 2 the affiant saw …"}}),
        )
        .await;
    assert_eq!(w["aiAssisted"], true);
    // A second draft from the tool replaces the first in the warrant; the first is kept as a
    // version. Declaring the same draft again keeps nothing more.
    let path = format!("/v1/warrants/{}", id(&w));
    let second = json!({"tool": "DraftOne 2.3", "draft": "On 2 March 2026 the affiant saw …"});
    for version in [1, 2] {
        let (status, body) = e
            .call(
                &e.officer,
                "PATCH",
                &path,
                Some(json!({"version": version, "aiAssistance": second})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    e.step(&e.officer, &w, "submit", json!({})).await;
    let (status, p) = e
        .act(
            &e.supervisor,
            &w,
            "supervisor-approve",
            json!({"route": "judge"}),
        )
        .await;
    assert_eq!(status, 422, "{p}");
    let after = e
        .step(&e.supervisor, &w, "supervisor-approve", json!({}))
        .await;
    assert_eq!(after["state"], "prosecutor_review");
    let (_, versions) = e
        .call(
            &e.prosecutor,
            "GET",
            &format!("/v1/warrants/{}/versions", id(&w)),
            None,
        )
        .await;
    let reasons: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["ai_draft_replaced", "submitted"], "{versions}");
    assert_eq!(versions[0]["aiDraft"]["tool"], "DraftOne 2.3");
    assert_eq!(
        versions[0]["aiDraft"]["text"],
        "On March 2 the affiant saw …"
    );
    assert_eq!(versions[1]["aiDraft"]["text"], second["draft"]);
    let updates: Vec<Value> = e
        .entries_of(&w)
        .await
        .into_iter()
        .filter(|x| x["action"] == "warrant.updated")
        .collect();
    assert_eq!(updates.len(), 2, "{updates:#?}");
    assert_eq!(
        updates[0]["detail"]["replacedAiDraft"]["keptAsVersion"], 1,
        "{updates:#?}"
    );
    assert_eq!(
        updates[0]["detail"]["replacedAiDraft"]["sha256"],
        versions[0]["aiDraft"]["sha256"]
    );
    assert!(updates[1]["detail"].get("replacedAiDraft").is_none());
}

#[tokio::test]
async fn warrants_list_by_filter_a_page_at_a_time() {
    let e = env().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(id(&e.create(&e.officer, json!({})).await).to_owned());
    }
    let other = e
        .create(
            &e.officer2,
            json!({"court": "ks-sedgwick", "type": "search"}),
        )
        .await;
    e.step(&e.officer2, &other, "submit", json!({})).await;
    let (status, page) = e
        .call(
            &e.supervisor,
            "GET",
            &format!("/v1/warrants?author={}&limit=2", e.officer.user.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let first: Vec<&str> = page["items"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(first, [ids[2].as_str(), ids[1].as_str()]);
    let cursor = page["nextCursor"].as_str().unwrap().to_owned();
    let (_, page) = e
        .call(
            &e.supervisor,
            "GET",
            &format!(
                "/v1/warrants?author={}&limit=2&cursor={cursor}",
                e.officer.user.id
            ),
            None,
        )
        .await;
    let rest: Vec<&str> = page["items"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(rest, [ids[0].as_str()]);
    assert!(page["nextCursor"].is_null());
    let (_, page) = e
        .call(
            &e.supervisor,
            "GET",
            "/v1/warrants?state=supervisor_review&court=ks-sedgwick",
            None,
        )
        .await;
    let found: Vec<&str> = page["items"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(found, [id(&other)]);
    let (status, p) = e
        .call(&e.supervisor, "GET", "/v1/warrants?state=lost", None)
        .await;
    assert_eq!(status, 422, "{p}");
    let (status, _) = e
        .call(&e.supervisor, "GET", "/v1/warrants?colour=red", None)
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn another_agencys_warrant_is_not_found_and_kept_versions_cannot_be_changed() {
    let e = env().await;
    let w = e.create(&e.officer, json!({})).await;
    e.step(&e.officer, &w, "submit", json!({})).await;
    let other = e.db.onboard("county-so").await;
    let stranger = who(&e.db, &other, &e.server, "deputy.one", Role::Officer).await;
    let (status, _) = e.get(&stranger, &w).await;
    assert_eq!(status, 404);
    let (status, _) = e.act(&stranger, &w, "withdraw", json!({})).await;
    assert_eq!(status, 404);
    let (_, page) = e.call(&stranger, "GET", "/v1/warrants", None).await;
    assert_eq!(page["items"], json!([]));

    // The agency role may only add versions, never change or remove one.
    for sql in [
        "UPDATE affidavit_versions SET text = 'changed'",
        "DELETE FROM affidavit_versions",
    ] {
        let mut tx = TenantTx::begin(&e.db.pool, &e.agency).await.unwrap();
        let err = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(tx.conn())
            .await
            .unwrap_err();
        assert_eq!(
            writ_testkit::sqlstate(&err).as_deref(),
            Some("42501"),
            "{sql}: {err}"
        );
        tx.rollback().await.unwrap();
    }
    let (_, versions) = e
        .call(
            &e.officer,
            "GET",
            &format!("/v1/warrants/{}/versions", id(&w)),
            None,
        )
        .await;
    assert_eq!(versions[0]["text"], search_content()["affidavit"]);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn the_service_copy_is_made_at_issue_and_served_byte_for_byte() {
    let e = env().await;
    let draft = e.create(&e.officer, json!({})).await;
    let path = |w: &Value| format!("/v1/warrants/{}/service-copy", id(w));
    let (status, p) = e.call(&e.officer, "GET", &path(&draft), None).await;
    assert_eq!(status, 409, "{p}");

    let w = e.issued().await;
    let download = || async {
        let res = e
            .server
            .http
            .get(e.server.url(&path(&w)))
            .bearer_auth(&e.officer2.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/pdf");
        let hash = res.headers()["x-writ-document-sha256"]
            .to_str()
            .unwrap()
            .to_owned();
        (hash, res.bytes().await.unwrap().to_vec())
    };
    let (hash, pdf) = download().await;
    assert!(pdf.starts_with(b"%PDF-"));
    let text = String::from_utf8_lossy(&pdf);
    assert!(text.contains(w["number"].as_str().unwrap()));
    assert!(text.contains(&hash), "the hash is printed on the copy");

    // The canonical document is inside, and it is what the hash is of.
    let at = find(&pdf, b"/Type /EmbeddedFile").unwrap();
    let start = at + find(&pdf[at..], b"stream\n").unwrap() + 7;
    let end = start + find(&pdf[start..], b"\nendstream").unwrap();
    let canonical = &pdf[start..end];
    assert_eq!(writ_testkit::sha256_hex(canonical), hash);
    let doc: Value = serde_json::from_slice(canonical).unwrap();
    assert_eq!(doc["number"], w["number"]);
    assert_eq!(doc["content"], w["content"]);
    assert_eq!(doc["issuedBy"], json!(e.judge.user.id));
    let instant = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .to_utc()
    };
    assert_eq!(instant(&doc["issuedAt"]), instant(&w["issuedAt"]));
    assert_eq!(
        instant(&doc["executionDeadline"]),
        instant(&w["executionDeadline"])
    );

    // The same bytes every time, each download audited.
    let (_, again) = download().await;
    assert_eq!(again, pdf);
    let entries = e.all_entries_of(&w).await;
    let downloads: Vec<&Value> = entries
        .iter()
        .filter(|x| x["action"] == "document.download")
        .collect();
    assert_eq!(downloads.len(), 2);
    assert_eq!(
        downloads[0]["resource"]["documentHash"],
        format!("sha256:{hash}")
    );
    assert_eq!(downloads[0]["actor"]["userId"], json!(e.officer2.user.id));
    let approved = entries
        .iter()
        .find(|x| x["action"] == "warrant.approved")
        .unwrap();
    assert_eq!(approved["detail"]["documentHash"], format!("sha256:{hash}"));
}

#[tokio::test]
async fn the_matrix_decides_who_reaches_each_warrant_route() {
    use writ_auth_mfa::{Permission, allows};
    let e = env().await;
    let w = e.create(&e.officer, json!({})).await;
    let wid = id(&w).to_owned();
    let routes: [(&str, String, Option<Value>, Permission); 6] = [
        ("GET", "/v1/warrants".into(), None, Permission::WarrantsRead),
        (
            "GET",
            format!("/v1/warrants/{wid}/versions"),
            None,
            Permission::WarrantsRead,
        ),
        (
            "POST",
            "/v1/warrants".into(),
            Some(json!({"court": "d-minn", "type": "search"})),
            Permission::WarrantsCreate,
        ),
        (
            "GET",
            "/v1/queue".into(),
            None,
            Permission::WarrantQueueRead,
        ),
        (
            "GET",
            "/v1/stats/warrants".into(),
            None,
            Permission::WarrantStatsRead,
        ),
        (
            "POST",
            format!("/v1/warrants/{wid}/actions/seal"),
            Some(json!({"orderReference": "SO-1", "reason": "r"})),
            Permission::WarrantsSeal,
        ),
    ];
    let people: [(&Who, Role); 6] = [
        (&e.officer2, Role::Officer),
        (&e.supervisor, Role::Supervisor),
        (&e.prosecutor, Role::Prosecutor),
        (&e.judge, Role::Judge),
        (&e.admin, Role::AgencyAdmin),
        (&e.auditor, Role::Auditor),
    ];
    for (method, path, body, permission) in &routes {
        for (who, role) in people {
            let (status, b) = e.call(who, method, path, body.clone()).await;
            assert_eq!(
                status == 403,
                !allows(role, *permission),
                "{role} {method} {path}: {status} {b}"
            );
            assert!(status < 500, "{role} {method} {path}: {status} {b}");
        }
    }
}

#[tokio::test]
async fn reading_a_warrant_is_recorded_and_a_judges_first_read_opens_it() {
    let e = env().await;
    let w = e.queued(json!({})).await;
    let (status, seen) = e.get(&e.officer, &w).await;
    assert_eq!(status, 200, "{seen}");
    assert!(
        seen["firstOpenedAt"].is_null(),
        "an officer's read opens nothing: {seen}"
    );

    // The judge's first read of a queued warrant is its first opening; a later one changes nothing.
    let (status, seen) = e.get(&e.judge, &w).await;
    assert_eq!(status, 200, "{seen}");
    let opened = seen["firstOpenedAt"].as_str().expect("opened").to_owned();
    assert_eq!(seen["version"], w["version"], "a read is not a change");
    let (_, again) = e.get(&e.judge2, &w).await;
    assert_eq!(again["firstOpenedAt"], opened.as_str());
    let (status, _) = e
        .call(
            &e.judge,
            "GET",
            &format!("/v1/warrants/{}/versions", id(&w)),
            None,
        )
        .await;
    assert_eq!(status, 200);

    let views: Vec<Value> = e
        .all_entries_of(&w)
        .await
        .into_iter()
        .filter(|x| x["action"] == "warrant.viewed")
        .collect();
    let by: Vec<(&str, &str)> = views
        .iter()
        .map(|v| {
            (
                v["actor"]["role"].as_str().unwrap_or_default(),
                v["detail"]["read"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        by,
        [
            ("officer", "warrant"),
            ("judge", "warrant"),
            ("judge", "warrant"),
            ("judge", "versions")
        ]
    );
    assert!(views.iter().all(|v| v["resource"]["number"] == w["number"]));

    // A caller without the permission is refused before anything is read: no view recorded.
    let before = e.all_entries_of(&w).await.len();
    let (status, _) = e.get(&e.auditor, &w).await;
    assert_eq!(status, 403);
    assert_eq!(e.all_entries_of(&w).await.len(), before);
}

/// An action that needs no parameters is a bare POST: no body, no Content-Type. A body that is
/// sent is still read (and refused when it is not JSON).
#[tokio::test]
async fn an_action_without_parameters_needs_no_body() {
    let e = env().await;
    let w = e.queued(json!({})).await;
    let url = e
        .server
        .url(&format!("/v1/warrants/{}/actions/claim", id(&w)));
    let sent = e
        .server
        .http
        .post(&url)
        .bearer_auth(&e.judge.token)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status().as_u16(), 415, "a body is read as it is sent");
    let bare = e
        .server
        .http
        .post(&url)
        .bearer_auth(&e.judge.token)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status().as_u16(), 200);
    let claimed: Value = bare.json().await.unwrap();
    assert_eq!(claimed["state"], "judge_review", "{claimed}");
}

/// An extension asked for while its warrant could be extended is not issued once that warrant
/// was executed (or returned, withdrawn, expired) meanwhile: there is nothing left to extend.
#[tokio::test]
async fn an_extension_is_not_issued_once_its_warrant_was_executed() {
    let e = env().await;
    let w = e.queued(json!({})).await;
    e.step(&e.judge, &w, "claim", json!({})).await;
    e.server.step_up(&e.judge.user, &e.judge.token).await;
    e.step(&e.judge, &w, "issue", json!({})).await;
    let (status, child) = e.act(&e.officer, &w, "extend", json!({})).await;
    assert_eq!(status, 201, "{child}");
    e.to_judge(&child).await;
    e.step(&e.judge, &child, "claim", json!({})).await;
    e.executed_yesterday_noon(&w).await;
    let (status, p) = e.act(&e.judge, &child, "issue", json!({})).await;
    assert_eq!(status, 409, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("is executed now"),
        "{p}"
    );
    let (_, still) = e.get(&e.judge, &child).await;
    assert_eq!(still["state"], "judge_review");
}

/// A use shorter than the installation window closes the window with it: no device is installed
/// for a use already over.
#[tokio::test]
async fn a_tracking_device_is_not_installed_after_its_use_has_ended() {
    let e = env().await;
    let w = e.tracking_device_claimed().await;
    let issued = e
        .step(&e.judge, &w, "issue", json!({ "trackingUseDays": 3 }))
        .await;
    // Federal: installed within 10 days, but used only 3: the window closes when the use does.
    let use_ends = instant_of(&issued["trackingUseEndsAt"]);
    assert_eq!(
        instant_of(&issued["executionDeadline"]),
        use_ends,
        "{issued}"
    );
    let entry = e
        .entries_of(&w)
        .await
        .into_iter()
        .find(|x| x["action"] == "warrant.approved")
        .expect("the issue entry");
    assert_eq!(
        entry["detail"]["executionDeadline"],
        issued["executionDeadline"]
    );

    // Four days on (the issue, the use's end and the window moved back as the clock would),
    // within the installation window's ten days but past the use: refused.
    let back = Duration::days(4);
    let issued_at = instant_of(&issued["issuedAt"]);
    e.set(&w, "issued_at = $2", issued_at - back).await;
    e.set(&w, "tracking_use_ends_at = $2", use_ends - back)
        .await;
    e.set(&w, "execution_deadline = $2", use_ends - back).await;
    let noon = (Utc::now() - Duration::hours(1)).to_rfc3339();
    let (status, p) = e
        .act(&e.officer, &w, "execute", json!({ "executedAt": noon }))
        .await;
    assert_eq!(status, 409, "{p}");
    assert_eq!(p["type"], "urn:writ:problem:execution-window-closed", "{p}");
    let (_, still) = e.get(&e.officer, &w).await;
    assert_eq!(still["state"], "issued");
}

#[tokio::test]
async fn a_tracking_device_warrant_carries_its_use_period_within_the_courts_limit() {
    let e = env().await;
    let w = e.tracking_device_claimed().await;

    // Federal: at most 45 days from issue; more is refused with nothing changed.
    let (status, problem) = e
        .act(&e.judge, &w, "issue", json!({ "trackingUseDays": 46 }))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["errors"][0]["field"], "trackingUseDays",
        "{problem}"
    );
    let (_, still) = e.get(&e.judge, &w).await;
    assert_eq!(still["state"], "judge_review");
    assert!(still["trackingUseEndsAt"].is_null());

    let issued = e
        .step(&e.judge, &w, "issue", json!({ "trackingUseDays": 30 }))
        .await;
    let issued_at = chrono::DateTime::parse_from_rfc3339(issued["issuedAt"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let ends = chrono::DateTime::parse_from_rfc3339(
        issued["trackingUseEndsAt"].as_str().expect("a use period"),
    )
    .unwrap()
    .with_timezone(&Utc);
    // Counted in days of the court's time zone, like the installation window: 30 to 31 days.
    let span = ends - issued_at;
    assert!(
        span > Duration::days(29) && span <= Duration::days(31),
        "{span:?}"
    );
    let entry = e
        .entries_of(&w)
        .await
        .into_iter()
        .find(|x| x["action"] == "warrant.approved")
        .expect("the issue entry");
    assert_eq!(
        entry["detail"]["trackingUseEndsAt"],
        issued["trackingUseEndsAt"]
    );

    // Installed (at noon in Chicago, a day after an issue moved two days back), then its use
    // extended: FRCrP 41(e)(2)(C), at most 45 days each, continuing from where the use ends.
    e.executed_yesterday_noon(&w).await;
    let (status, child) = e.act(&e.officer, &w, "extend", json!({})).await;
    assert_eq!(status, 201, "{child}");
    assert_eq!(child["parentId"], w["id"]);
    e.to_judge(&child).await;
    e.step(&e.judge, &child, "claim", json!({})).await;
    let (status, problem) = e
        .act(&e.judge, &child, "issue", json!({ "trackingUseDays": 46 }))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("an extension may add at most 45 days"),
        "{problem}"
    );
    let extended = e.step(&e.judge, &child, "issue", json!({})).await;
    let extended_ends = instant_of(&extended["trackingUseEndsAt"]);
    // The same time of day on the court's clock, 45 days on (one clock change at most between).
    let added = extended_ends - ends;
    assert!(
        added >= Duration::days(45) - Duration::hours(1)
            && added <= Duration::days(45) + Duration::hours(1),
        "{added:?}"
    );
    let entry = e
        .entries_of(&child)
        .await
        .into_iter()
        .find(|x| x["action"] == "warrant.approved")
        .expect("the extension's issue entry");
    assert_eq!(
        entry["detail"]["extendsTrackingUseEndingAt"],
        issued["trackingUseEndsAt"]
    );

    // Other types have no use period and may not be given one.
    let search = e.queued(json!({})).await;
    e.step(&e.judge, &search, "claim", json!({})).await;
    let (status, problem) = e
        .act(&e.judge, &search, "issue", json!({ "trackingUseDays": 10 }))
        .await;
    assert_eq!(status, 422, "{problem}");
    let issued = e.step(&e.judge, &search, "issue", json!({})).await;
    assert!(issued.get("trackingUseEndsAt").is_none(), "{issued}");
    // Nor is an executed search extended.
    e.executed_yesterday_noon(&search).await;
    let (status, p) = e.act(&e.officer, &search, "extend", json!({})).await;
    assert_eq!(status, 409, "{p}");
}
