//! Alerts through real transports: an SMTP server and a Twilio-compatible SMS/voice endpoint that
//! these tests start on loopback, the real `writ` server delivering to them. Deliveries, retries
//! with backoff, permanent failures visible at `GET /v1/notifications`, deadline reminders sent by
//! e-mail, and no criminal-justice information in any message. The fakes and the environment are
//! shared with the on-call tests (`oncall.rs`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use writ_auth_mfa::Role;
use writ_tenancy::{Agency, TenantTx};
use writ_testkit::{TestDb, TestServer, TestUser, seed_user};
use writ_warrant_workflow::presets::Preset;

// ---------------------------------------------------------------------------------------------
// An SMTP server: accepts every message and keeps it.

#[derive(Debug, Clone)]
pub(crate) struct Mail {
    pub to: Vec<String>,
    pub data: String,
}

#[derive(Clone)]
pub(crate) struct SmtpSink {
    pub port: u16,
    pub mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
        let kept = mails.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                    let mut to = Vec::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") {
                            b"250-sink\r\n250 8BITMIME\r\n"
                        } else if upper.starts_with("RCPT TO:") {
                            to.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                            b"250 OK\r\n"
                        } else if upper.starts_with("DATA") {
                            let _ = write.write_all(b"354 go on\r\n").await;
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(&l);
                                data.push('\n');
                            }
                            kept.lock().unwrap().push(Mail {
                                to: std::mem::take(&mut to),
                                data,
                            });
                            b"250 queued\r\n"
                        } else if upper.starts_with("QUIT") {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        } else {
                            // HELO, MAIL FROM, RSET, NOOP
                            b"250 OK\r\n"
                        };
                        if write.write_all(reply).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Self { port, mails }
    }

    pub(crate) fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------------------------
// A Twilio-compatible endpoint: records every request; can be told to fail.

#[derive(Debug, Clone)]
pub(crate) struct ProviderRequest {
    pub path: String,
    pub authorization: String,
    pub form: Vec<(String, String)>,
    pub at: Instant,
}

impl ProviderRequest {
    pub(crate) fn get(&self, name: &str) -> &str {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

#[derive(Clone)]
pub(crate) struct FakeTwilio {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<ProviderRequest>>>,
    /// Requests still to answer 503.
    pub failures: Arc<Mutex<u32>>,
}

fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(v)) => {
                out.push(v);
                i += 2;
            }
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl FakeTwilio {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests: Arc<Mutex<Vec<ProviderRequest>>> = Arc::default();
        let failures: Arc<Mutex<u32>> = Arc::default();
        let (kept, failing) = (requests.clone(), failures.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (kept, failing) = (kept.clone(), failing.clone());
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut reader = BufReader::new(read);
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).await.is_err() {
                        return;
                    }
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("")
                        .to_owned();
                    let (mut length, mut authorization) = (0usize, String::new());
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            match k.trim().to_ascii_lowercase().as_str() {
                                "content-length" => length = v.trim().parse().unwrap_or(0),
                                "authorization" => authorization = v.trim().to_owned(),
                                _ => {}
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let form = String::from_utf8_lossy(&body)
                        .split('&')
                        .filter_map(|p| p.split_once('='))
                        .map(|(k, v)| (form_decode(k), form_decode(v)))
                        .collect();
                    kept.lock().unwrap().push(ProviderRequest {
                        path,
                        authorization,
                        form,
                        at: Instant::now(),
                    });
                    let fail = {
                        let mut f = failing.lock().unwrap();
                        let fail = *f > 0;
                        *f = f.saturating_sub(1);
                        fail
                    };
                    let (status, answer) = if fail {
                        (
                            "503 Service Unavailable",
                            r#"{"message":"try again later"}"#,
                        )
                    } else {
                        ("201 Created", r#"{"sid":"SM0001","status":"queued"}"#)
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = write.write_all(response.as_bytes()).await;
                    let _ = write.shutdown().await;
                });
            }
        });
        Self {
            port,
            requests,
            failures,
        }
    }

    pub(crate) fn fail_next(&self, n: u32) {
        *self.failures.lock().unwrap() = n;
    }

    pub(crate) fn requests(&self) -> Vec<ProviderRequest> {
        self.requests.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------------------------
// The environment: an agency with a federal court in Chicago and a Kansas court, three judges
// with contacts, and the server delivering to the fakes.

pub(crate) struct Who {
    pub user: TestUser,
    pub token: String,
}

pub(crate) struct Env {
    pub db: TestDb,
    pub agency: Agency,
    pub server: TestServer,
    pub smtp: SmtpSink,
    pub sms: FakeTwilio,
    pub officer: Who,
    pub supervisor: Who,
    pub prosecutor: Who,
    pub primary: Who,
    pub backup: Who,
    pub presiding: Who,
    pub admin: Who,
}

pub(crate) const PLACE: &str = "1200 Elm St, Apt 3, Minneapolis";
pub(crate) const AFFIDAVIT: &str =
    "On 2 March 2026 at 21:40 the affiant saw Jordan Q. Example carry";
pub(crate) const SUBJECT: &str = "Jordan Q. Example";
pub(crate) const OFFENSE: &str = "Minn. Stat. § 609.11";
pub(crate) const PUBLIC_URL: &str = "https://writ.test";

pub(crate) async fn who(
    db: &TestDb,
    agency: &Agency,
    server: &TestServer,
    name: &str,
    role: Role,
) -> Who {
    let user = seed_user(db, agency, name, role).await;
    let token = server.token(&user).await;
    Who { user, token }
}

pub(crate) async fn env() -> Env {
    env_with(&[]).await
}

/// `extra` env for the server overrides the defaults below.
pub(crate) async fn env_with(extra: &[(&str, &str)]) -> Env {
    let db = TestDb::new().await;
    let agency = db.onboard("alert-pd").await;
    let smtp = SmtpSink::start().await;
    let sms = FakeTwilio::start().await;
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let sms_url = format!("http://127.0.0.1:{}", sms.port);
    let mut vars: Vec<(&str, &str)> = vec![
        ("WRIT_PUBLIC_URL", PUBLIC_URL),
        ("WRIT_SMTP_URL", &smtp_url),
        ("WRIT_SMTP_FROM", "Writ <alerts@writ.test>"),
        ("WRIT_SMS_URL", &sms_url),
        ("WRIT_SMS_ACCOUNT_SID", "AC0123456789"),
        ("WRIT_SMS_AUTH_TOKEN", "test-token"),
        ("WRIT_SMS_FROM", "+15005550006"),
        ("WRIT_NOTIFY_POLL_MS", "100"),
        ("WRIT_NOTIFY_BACKOFF_MS", "300"),
        ("WRIT_NOTIFY_BACKOFF_MAX_SECS", "5"),
        ("WRIT_NOTIFY_MAX_ATTEMPTS", "3"),
        // The tests drive routing with their own clock; the server's loop runs once at start.
        ("WRIT_ROUTING_INTERVAL_SECS", "86400"),
    ];
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        if !v.is_empty() {
            vars.push((k, v));
        }
    }
    let server = TestServer::start_with(&db.url, &db.master_key_file, &vars);
    let officer = who(&db, &agency, &server, "officer.alert", Role::Officer).await;
    let supervisor = who(&db, &agency, &server, "sgt.alert", Role::Supervisor).await;
    let prosecutor = who(&db, &agency, &server, "ada.alert", Role::Prosecutor).await;
    let primary = who(&db, &agency, &server, "judge.primary", Role::Judge).await;
    let backup = who(&db, &agency, &server, "judge.backup", Role::Judge).await;
    let presiding = who(&db, &agency, &server, "judge.presiding", Role::Judge).await;
    let admin = who(&db, &agency, &server, "admin.alert", Role::AgencyAdmin).await;
    server.step_up(&admin.user, &admin.token).await;
    let (status, body) = server
        .call(
            "PUT",
            "/v1/policies/warrant-types",
            &admin.token,
            Some(json!({ "value": { "courts": [
                Preset::Federal.court("d-minn", "U.S. District Court, D. Minn.", "America/Chicago".parse().unwrap()),
                Preset::Kansas.court("ks-sedgwick", "Sedgwick County District Court", "America/Chicago".parse().unwrap()),
            ]}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let e = Env {
        db,
        agency,
        server,
        smtp,
        sms,
        officer,
        supervisor,
        prosecutor,
        primary,
        backup,
        presiding,
        admin,
    };
    for (w, email, phone) in [
        (&e.primary, "primary@court.test", "+16125550101"),
        (&e.backup, "backup@court.test", "+16125550102"),
        (&e.presiding, "presiding@court.test", "+16125550103"),
        (&e.officer, "officer@pd.test", "+16125550104"),
    ] {
        let (status, body) = e
            .call(
                &e.admin,
                "PATCH",
                &format!("/v1/users/{}", w.user.id),
                Some(json!({ "email": email, "phone": phone })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["email"], email);
    }
    e
}

impl Env {
    pub(crate) async fn call(
        &self,
        who: &Who,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.server.call(method, path, &who.token, body).await
    }

    pub(crate) async fn step(&self, who: &Who, w: &Value, action: &str, body: Value) -> Value {
        let (status, after) =
            writ_testkit::esign::act(&self.server, &who.user, &who.token, w, action, body).await;
        assert!(status == 200 || status == 201, "{action}: {status} {after}");
        after
    }

    /// A federal search warrant of `urgency`, taken to the judge queue.
    pub(crate) async fn queued(&self, urgency: &str) -> Value {
        let (status, w) = self
            .call(
                &self.officer,
                "POST",
                "/v1/warrants",
                Some(
                    json!({ "court": "d-minn", "type": "search", "urgency": urgency, "content": {
                        "subject": SUBJECT,
                        "place": PLACE,
                        "itemsSought": ["handgun, black, 9 mm"],
                        "offense": OFFENSE,
                        "affidavit": AFFIDAVIT,
                    }}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{w}");
        self.step(&self.officer, &w, "submit", json!({})).await;
        self.step(&self.supervisor, &w, "supervisor-approve", json!({}))
            .await;
        let w = self
            .step(&self.prosecutor, &w, "prosecutor-approve", json!({}))
            .await;
        assert_eq!(w["state"], "pending_judge", "{w}");
        w
    }

    /// A roster for d-minn: primary, backup and presiding judges, on call from two days ago for
    /// five days, plus `extra` shifts.
    pub(crate) async fn roster(&self, extra: Vec<Value>) -> Value {
        let from = (Utc::now() - chrono::Duration::days(2))
            .format("%Y-%m-%dT00:00")
            .to_string();
        let to = (Utc::now() + chrono::Duration::days(3))
            .format("%Y-%m-%dT00:00")
            .to_string();
        let mut shifts = vec![
            json!({"judgeId": self.primary.user.id, "role": "primary", "start": from, "end": to}),
            json!({"judgeId": self.backup.user.id, "role": "backup", "start": from, "end": to}),
        ];
        shifts.extend(extra);
        let (status, body) = self
            .call(
                &self.admin,
                "PUT",
                "/v1/courts/d-minn/roster",
                Some(json!({ "presidingJudgeId": self.presiding.user.id, "shifts": shifts })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Runs the on-call routing job for the agency as of `at`.
    pub(crate) async fn route(&self, at: chrono::DateTime<Utc>) {
        let mut tx = TenantTx::begin(&self.db.pool, &self.agency).await.unwrap();
        writ_warrant_workflow::oncall::run_routing(&mut tx, at)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    pub(crate) async fn routing(&self, who: &Who, w: &Value) -> Value {
        let (status, body) = self
            .call(who, "GET", &format!("/v1/warrants/{}/routing", id(w)), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub(crate) async fn notifications(&self, query: &str) -> Vec<Value> {
        let (status, body) = self
            .call(
                &self.admin,
                "GET",
                &format!("/v1/notifications{query}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    }

    /// Waits (at most 20 s) until no notification is pending; returns them all.
    pub(crate) async fn settled(&self) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let all = self.notifications("").await;
            if all.iter().all(|n| n["state"] != "pending") {
                return all;
            }
            assert!(Instant::now() < deadline, "still pending: {all:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sequenced audit entries of the agency.
    pub(crate) async fn entries(&self) -> Vec<Value> {
        writ_testkit::audit::entries(&self.db, &self.agency).await
    }

    /// Sets columns of a warrant directly (the clock of these tests).
    pub(crate) async fn set(&self, w: &Value, assignment: &str, at: chrono::DateTime<Utc>) {
        // The schema name is validated (AgencyIdent) and `assignment` a literal of the tests.
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

    /// No message that left the server carries the warrant's content.
    pub(crate) fn assert_no_cji(&self) {
        let mut bodies: Vec<String> = self.smtp.mails().into_iter().map(|m| m.data).collect();
        bodies.extend(
            self.sms
                .requests()
                .into_iter()
                .map(|r| format!("{:?}", r.form)),
        );
        assert!(!bodies.is_empty());
        for b in &bodies {
            for secret in [
                PLACE, "Elm St", AFFIDAVIT, SUBJECT, "Jordan", OFFENSE, "handgun",
            ] {
                assert!(!b.contains(secret), "{secret:?} leaked into {b}");
            }
        }
    }
}

pub(crate) fn id(w: &Value) -> &str {
    w["id"].as_str().unwrap_or_else(|| panic!("no id in {w}"))
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_urgent_offer_reaches_the_judge_by_text_and_email_without_cji() {
    let e = env().await;
    e.roster(vec![]).await;
    let w = e.queued("urgent").await;
    e.route(Utc::now()).await;
    let all = e.settled().await;
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(
        all.iter()
            .all(|n| n["state"] == "sent" && n["attempts"] == 1),
        "{all:#?}"
    );

    let mails = e.smtp.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["primary@court.test"]);
    let number = w["number"].as_str().unwrap();
    let link = format!("{PUBLIC_URL}/warrants/{}", id(&w));
    assert!(mails[0].data.contains(number), "{}", mails[0].data);
    assert!(mails[0].data.contains(&link), "{}", mails[0].data);
    assert!(
        mails[0].data.contains("From: Writ <alerts@writ.test>"),
        "{}",
        mails[0].data
    );

    let texts = e.sms.requests();
    assert_eq!(texts.len(), 1);
    let t = &texts[0];
    assert_eq!(t.path, "/2010-04-01/Accounts/AC0123456789/Messages.json");
    assert_eq!(t.get("To"), "+16125550101");
    assert_eq!(t.get("From"), "+15005550006");
    assert!(
        t.get("Body").contains(number) && t.get("Body").contains(&link),
        "{t:?}"
    );
    // HTTP basic authentication with the account SID and the token.
    assert_eq!(t.authorization, "Basic QUMwMTIzNDU2Nzg5OnRlc3QtdG9rZW4=");
    e.assert_no_cji();

    let sent: Vec<Value> = e
        .entries()
        .await
        .into_iter()
        .filter(|x| x["action"] == "notification.sent")
        .collect();
    assert_eq!(sent.len(), 2);
    for s in &sent {
        assert_eq!(s["resource"]["warrantId"], id(&w));
        assert_eq!(s["actor"]["role"], "system");
        assert!(!s.to_string().contains("Elm St"));
    }
}

#[tokio::test]
async fn failed_texts_are_retried_with_backoff_then_sent() {
    let e = env().await;
    e.roster(vec![]).await;
    e.sms.fail_next(2);
    let w = e.queued("urgent").await;
    e.route(Utc::now()).await;
    let all = e.settled().await;
    let sms: Vec<&Value> = all.iter().filter(|n| n["channel"] == "sms").collect();
    assert_eq!(sms[0]["state"], "sent", "{all:#?}");
    assert_eq!(sms[0]["attempts"], 3);
    let tries: Vec<Instant> = e.sms.requests().iter().map(|r| r.at).collect();
    assert_eq!(tries.len(), 3);
    // 300 ms after the first failure, 600 ms after the second (the poll adds up to 100 ms). The
    // backoff counts from when an attempt was made; its request reaches the fake provider a
    // little later on a busy machine, so arrivals may be closer than the backoff by that much.
    assert!(
        tries[1] - tries[0] >= Duration::from_millis(200),
        "{:?}",
        tries[1] - tries[0]
    );
    assert!(
        tries[2] - tries[1] >= Duration::from_millis(500),
        "{:?}",
        tries[2] - tries[1]
    );
    let routing = e.routing(&e.officer, &w).await;
    let alerts = routing["hops"][0]["alerts"].as_array().unwrap();
    assert!(alerts.iter().all(|a| a["state"] == "sent"), "{routing}");
    // Reading the routing is reading the warrant: audited.
    let entries = e.entries().await;
    assert!(
        entries.iter().any(|x| x["action"] == "warrant.viewed"
            && x["detail"]["read"] == "routing"
            && x["resource"]["warrantId"] == w["id"]
            && x["actor"]["userId"] == json!(e.officer.user.id)),
        "no routing read among {} entries",
        entries.len()
    );
}

/// An alert whose warrant a judge has claimed by the time its retry comes is not sent: nobody is
/// called about a warrant already taken.
#[tokio::test]
async fn an_alert_for_a_warrant_claimed_meanwhile_is_cancelled_not_sent() {
    // The first text fails; its retry would come a minute later.
    let e = env_with(&[("WRIT_NOTIFY_BACKOFF_MS", "60000")]).await;
    e.roster(vec![]).await;
    e.sms.fail_next(1);
    let w = e.queued("urgent").await;
    e.route(Utc::now()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while e.sms.requests().is_empty() {
        assert!(Instant::now() < deadline, "the text was never tried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    e.step(&e.primary, &w, "claim", json!({})).await;
    // The retry is due now.
    let sql = format!(
        "UPDATE {}.notifications SET next_attempt_at = now() WHERE state = 'pending'",
        e.agency.ident.quoted()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&e.db.pool)
        .await
        .unwrap();
    let all = e.settled().await;
    let text = all.iter().find(|n| n["channel"] == "sms").unwrap();
    assert_eq!(text["state"], "cancelled", "{all:#?}");
    assert!(text["cancelledAt"].is_string(), "{text}");
    assert!(
        text["lastError"].as_str().unwrap().contains("judge queue"),
        "{text}"
    );
    assert_eq!(e.sms.requests().len(), 1, "no second text");
    assert_eq!(e.notifications("?state=cancelled").await.len(), 1);
    let entries = e.entries().await;
    let cancelled: Vec<&Value> = entries
        .iter()
        .filter(|x| x["action"] == "notification.cancelled")
        .collect();
    assert_eq!(cancelled.len(), 1, "{entries:#?}");
    assert_eq!(cancelled[0]["resource"]["warrantId"], w["id"]);
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_is_visible_as_failed() {
    let e = env().await;
    e.roster(vec![]).await;
    e.sms.fail_next(1000);
    // The backup has no phone: its text fails at once, without a retry.
    let (status, body) = e
        .call(
            &e.admin,
            "PATCH",
            &format!("/v1/users/{}", e.backup.user.id),
            Some(json!({ "phone": null })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("phone").is_none(), "{body}");
    let w = e.queued("urgent").await;
    let now = Utc::now();
    e.route(now).await;
    e.route(now + chrono::Duration::minutes(10)).await;
    let all = e.settled().await;
    let failed = e.notifications("?state=failed").await;
    assert_eq!(failed.len(), 2, "{all:#?}");
    let to_primary = failed
        .iter()
        .find(|n| n["recipientId"] == json!(e.primary.user.id))
        .unwrap();
    assert_eq!(to_primary["attempts"], 3);
    assert!(
        to_primary["lastError"].as_str().unwrap().contains("503"),
        "{to_primary}"
    );
    let to_backup = failed
        .iter()
        .find(|n| n["recipientId"] == json!(e.backup.user.id))
        .unwrap();
    assert_eq!(to_backup["attempts"], 1);
    assert_eq!(
        to_backup["lastError"],
        "the recipient has no phone number on file"
    );
    // E-mails still went out; the author sees which alert failed.
    assert_eq!(e.notifications("?state=sent").await.len(), 2);
    let routing = e.routing(&e.officer, &w).await;
    assert_eq!(
        routing["hops"][1]["alerts"][0]["state"], "failed",
        "{routing}"
    );
    // Not why: the provider's words can quote the judge's number.
    assert!(
        routing["hops"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|h| h["alerts"].as_array().unwrap())
            .all(|a| a.get("lastError").is_none()),
        "{routing}"
    );
    let audit = e.entries().await;
    let failures: Vec<&Value> = audit
        .iter()
        .filter(|x| x["action"] == "notification.failed")
        .collect();
    assert_eq!(failures.len(), 2);
    assert!(failures.iter().all(|f| f["outcome"] == "failure"));
    let mut classes: Vec<&str> = failures
        .iter()
        .map(|f| f["detail"]["error"].as_str().unwrap())
        .collect();
    classes.sort();
    assert_eq!(classes, ["recipient_unreachable", "unavailable"]);
    assert!(!failures.iter().any(|f| f.to_string().contains("+1612")));
    // Filters and their validation.
    assert_eq!(
        e.notifications(&format!("?warrant={}&state=sent", id(&w)))
            .await
            .len(),
        2
    );
    let (status, _) = e
        .call(&e.admin, "GET", "/v1/notifications?state=lost", None)
        .await;
    assert_eq!(status, 422);
    let (status, _) = e.call(&e.officer, "GET", "/v1/notifications", None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn without_a_transport_an_alert_fails_visibly() {
    let e = env_with(&[("WRIT_SMS_URL", ""), ("WRIT_SMTP_URL", "")]).await;
    e.roster(vec![]).await;
    e.queued("routine").await;
    // Routine: e-mail only; routed at 10:00 Chicago time on a weekday.
    e.route(
        chrono::DateTime::parse_from_rfc3339("2027-01-13T16:00:00Z")
            .unwrap()
            .to_utc(),
    )
    .await;
    let all = e.settled().await;
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["state"], "failed");
    assert_eq!(all[0]["lastError"], "no transport configured for email");
}

#[tokio::test]
async fn contacts_are_validated_and_nothing_is_written_on_a_bad_one() {
    let e = env().await;
    let path = format!("/v1/users/{}", e.officer.user.id);
    for (body, field) in [
        (json!({ "phone": "612-555-0101" }), "phone"),
        (json!({ "email": "not-an-address" }), "email"),
        (json!({ "displayName": "Renamed", "phone": "+0" }), "phone"),
    ] {
        let (status, p) = e.call(&e.admin, "PATCH", &path, Some(body)).await;
        assert_eq!(status, 422, "{p}");
        assert_eq!(p["errors"][0]["field"], field, "{p}");
    }
    let (_, u) = e.call(&e.admin, "GET", &path, None).await;
    assert_ne!(u["displayName"], "Renamed", "{u}");
    assert_eq!(u["phone"], "+16125550104");
    let (status, created) = e
        .call(
            &e.admin,
            "POST",
            "/v1/users",
            Some(
                json!({ "username": "judge.new", "displayName": "Hon. New", "role": "judge",
                "email": "new@court.test", "phone": "+1 612 555 0199" }),
            ),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["user"]["phone"], "+16125550199");
}

#[tokio::test]
async fn deadline_reminders_are_delivered_by_email() {
    let e = env().await;
    // Kansas: prosecutor review optional, no oath required; the judge issues.
    let (status, w) = e
        .call(
            &e.officer,
            "POST",
            "/v1/warrants",
            Some(json!({ "court": "ks-sedgwick", "type": "search", "content": {
                "place": PLACE, "itemsSought": ["handgun"], "offense": OFFENSE, "affidavit": AFFIDAVIT }})),
        )
        .await;
    assert_eq!(status, 201, "{w}");
    e.step(&e.officer, &w, "submit", json!({})).await;
    e.step(
        &e.supervisor,
        &w,
        "supervisor-approve",
        json!({ "route": "judge" }),
    )
    .await;
    e.step(&e.primary, &w, "claim", json!({})).await;
    e.server.step_up(&e.primary.user, &e.primary.token).await;
    let w = e.step(&e.primary, &w, "issue", json!({})).await;
    assert_eq!(w["state"], "issued", "{w}");
    let now = Utc::now();
    e.set(
        &w,
        "execution_deadline = $2",
        now + chrono::Duration::hours(5),
    )
    .await;
    let mut tx = TenantTx::begin(&e.db.pool, &e.agency).await.unwrap();
    writ_warrant_workflow::jobs::run_due(&mut tx, now)
        .await
        .unwrap();
    writ_warrant_workflow::jobs::run_due(&mut tx, now + chrono::Duration::minutes(1))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let all = e.settled().await;
    assert_eq!(
        all.len(),
        1,
        "one reminder, however often the job runs: {all:#?}"
    );
    assert_eq!(all[0]["kind"], "warrant.deadline_reminder");
    assert_eq!(all[0]["state"], "sent");
    let mails = e.smtp.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["officer@pd.test"]);
    assert!(mails[0].data.contains(w["number"].as_str().unwrap()));
    assert!(
        mails[0].data.contains("must be executed by"),
        "{}",
        mails[0].data
    );
    e.assert_no_cji();
    let sql = format!(
        "SELECT delivered_at IS NOT NULL FROM {}.warrant_reminders WHERE warrant_id = $1",
        e.agency.ident.quoted()
    );
    let delivered: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(uuid::Uuid::parse_str(id(&w)).unwrap())
        .fetch_one(&e.db.pool)
        .await
        .unwrap();
    assert!(delivered);
}
