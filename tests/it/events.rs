//! The live event stream (`GET /v1/events`) through the real server: a judge sees a warrant enter
//! the queue, officers only their own warrants, a sealed warrant's later events reach nobody who
//! may not read it, a reconnect with `Last-Event-ID` replays exactly what was missed (and a resync
//! when that is impossible), events carry no CJI, and a stream ends on logout, on token expiry and
//! on shutdown — never keeping `writ serve` from exiting. Every wait is bounded.

use std::time::Duration;

use serde_json::{Value, json};
use writ_auth_mfa::Role;
use writ_testkit::{TestDb, TestServer, seed_user, sequence};

use crate::warrants::{Env, env};

/// How long any expected frame may take: the sequencer is woken at commit and streams poll every
/// second, so this is generous.
const WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Default)]
struct Frame {
    id: Option<String>,
    event: Option<String>,
    data: String,
    retry: Option<String>,
    comment: bool,
}

impl Frame {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }

    fn seq(&self) -> u64 {
        self.id
            .as_deref()
            .and_then(|i| i.parse().ok())
            .expect("an id")
    }

    fn is(&self, event: &str, warrant: &Value) -> bool {
        self.event.as_deref() == Some(event) && self.json()["warrantId"] == warrant["id"]
    }
}

enum Next {
    Frame(Frame),
    Closed,
    Quiet,
}

/// A client of one stream, reading frames as they arrive.
struct Sse {
    res: reqwest::Response,
    buf: String,
    /// Everything received, for checks on the raw bytes.
    raw: String,
}

fn client() -> reqwest::Client {
    // No overall timeout: a stream lives long; each read is bounded instead.
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn request(
    server: &TestServer,
    token: Option<&str>,
    last_id: Option<&str>,
    query: &str,
) -> reqwest::Response {
    let mut r = client().get(server.url(&format!("/v1/events{query}")));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(id) = last_id {
        r = r.header("Last-Event-ID", id);
    }
    tokio::time::timeout(WAIT, r.send())
        .await
        .expect("the stream answers in time")
        .unwrap()
}

impl Sse {
    async fn open(server: &TestServer, token: &str, last_id: Option<&str>) -> Self {
        Self::open_with(server, token, last_id, "").await
    }

    async fn open_with(
        server: &TestServer,
        token: &str,
        last_id: Option<&str>,
        query: &str,
    ) -> Self {
        let res = request(server, Some(token), last_id, query).await;
        assert_eq!(res.status(), 200);
        let h = res.headers();
        assert_eq!(h["content-type"], "text/event-stream");
        assert_eq!(h["cache-control"], "no-cache");
        assert_eq!(h["x-accel-buffering"], "no");
        Self {
            res,
            buf: String::new(),
            raw: String::new(),
        }
    }

    /// The next frame within `wait`.
    async fn next(&mut self, wait: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut f = Frame::default();
                for line in block.lines() {
                    if line.starts_with(':') {
                        f.comment = true;
                    } else if let Some((k, v)) = line.split_once(':') {
                        let v = v.strip_prefix(' ').unwrap_or(v).to_owned();
                        match k {
                            "id" => f.id = Some(v),
                            "event" => f.event = Some(v),
                            "data" => f.data.push_str(&v),
                            "retry" => f.retry = Some(v),
                            other => panic!("unknown field {other:?} in {block:?}"),
                        }
                    }
                }
                return Next::Frame(f);
            }
            match tokio::time::timeout_at(deadline, self.res.chunk()).await {
                Err(_) => return Next::Quiet,
                Ok(Ok(Some(bytes))) => {
                    let text = std::str::from_utf8(&bytes).expect("utf-8").to_owned();
                    self.raw.push_str(&text);
                    self.buf.push_str(&text);
                }
                Ok(Ok(None)) | Ok(Err(_)) => return Next::Closed,
            }
        }
    }

    /// The frames with an event, up to and including the first that `until` accepts.
    async fn events_until(&mut self, until: impl Fn(&Frame) -> bool) -> Vec<Frame> {
        let mut seen = Vec::new();
        loop {
            match self.next(WAIT).await {
                Next::Frame(f) if f.event.is_some() => {
                    let done = until(&f);
                    seen.push(f);
                    if done {
                        return seen;
                    }
                }
                Next::Frame(_) => {}
                Next::Closed => panic!("the stream closed; events so far: {seen:?}"),
                Next::Quiet => panic!("the awaited event never came; events so far: {seen:?}"),
            }
        }
    }

    /// The first frame: `retry:` and the starting id.
    async fn start(&mut self) -> Frame {
        match self.next(WAIT).await {
            Next::Frame(f) => {
                assert_eq!(f.retry.as_deref(), Some("3000"), "{f:?}");
                assert!(f.id.is_some(), "{f:?}");
                f
            }
            _ => panic!("no first frame"),
        }
    }

    /// The `end` event's reason, then the stream must close.
    async fn end_reason(&mut self) -> String {
        let frames = self
            .events_until(|f| f.event.as_deref() == Some("end"))
            .await;
        let end = frames.last().expect("end").json();
        assert!(
            matches!(self.next(WAIT).await, Next::Closed),
            "open after end"
        );
        end["reason"].as_str().expect("reason").to_owned()
    }
}

/// What an event may hold, and nothing of the warrant's content.
fn assert_minimal(s: &Sse, frames: &[Frame]) {
    for f in frames {
        if f.event
            .as_deref()
            .is_some_and(|e| e.starts_with("warrant."))
        {
            let v = f.json();
            for key in v.as_object().expect("object").keys() {
                assert!(
                    [
                        "seq",
                        "type",
                        "warrantId",
                        "number",
                        "state",
                        "version",
                        "at",
                        "queue"
                    ]
                    .contains(&key.as_str()),
                    "{key} in {v}"
                );
            }
            assert_eq!(v["seq"].as_u64(), Some(f.seq()));
            assert_eq!(v["type"].as_str(), f.event.as_deref());
        }
    }
    for cji in [
        "affiant",
        "1200 Elm St",
        "handgun",
        "609.11",
        "ongoing investigation",
        "ABC123",
    ] {
        assert!(!s.raw.contains(cji), "{cji:?} in the stream");
    }
}

#[tokio::test]
async fn a_judge_sees_the_queue_and_officers_only_their_own_unsealed_warrants() {
    let e = env().await;
    let mut judge = Sse::open(&e.server, &e.judge.token, None).await;
    let mut officer = Sse::open(&e.server, &e.officer.token, None).await;
    let mut officer2 = Sse::open(&e.server, &e.officer2.token, None).await;
    for s in [&mut judge, &mut officer, &mut officer2] {
        s.start().await;
    }

    let mine = e.queued(json!({})).await;
    let theirs = e.create(&e.officer2, json!({})).await;

    // The judge: every step, the queue entry marked.
    let seen = judge
        .events_until(|f| f.is("warrant.created", &theirs))
        .await;
    let queued = seen
        .iter()
        .find(|f| f.is("warrant.queued", &mine))
        .expect("the judge sees the warrant enter the queue");
    let q = queued.json();
    assert_eq!(q["queue"], "entered");
    assert_eq!(q["state"], "pending_judge");
    assert_eq!(q["number"], mine["number"]);
    assert_eq!(q["version"], mine["version"]);
    let kinds: Vec<_> = seen
        .iter()
        .filter(|f| f.json()["warrantId"] == mine["id"])
        .map(|f| f.event.clone().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "warrant.created",
            "warrant.submitted",
            "warrant.reviewed",
            "warrant.queued"
        ]
    );
    // Ids increase strictly: they are the audit seqs.
    assert!(seen.windows(2).all(|w| w[0].seq() < w[1].seq()));

    // Each officer: their own warrant only. A later warrant of their own is the barrier: events
    // arrive in seq order, so anything about the other's warrant would have come first.
    let barrier = e.create(&e.officer, json!({})).await;
    let seen = officer
        .events_until(|f| f.is("warrant.created", &barrier))
        .await;
    assert!(seen.iter().any(|f| f.is("warrant.queued", &mine)));
    assert!(
        seen.iter().all(|f| f.json()["warrantId"] != theirs["id"]),
        "{seen:?}"
    );
    let barrier2 = e.create(&e.officer2, json!({})).await;
    let seen2 = officer2
        .events_until(|f| f.is("warrant.created", &barrier2))
        .await;
    assert!(seen2.iter().any(|f| f.is("warrant.created", &theirs)));
    assert!(
        seen2.iter().all(|f| f.json()["warrantId"] != mine["id"]),
        "{seen2:?}"
    );

    // A judge claiming takes the warrant out of the queue.
    e.step(&e.judge, &mine, "claim", json!({})).await;
    let claimed = judge.events_until(|f| f.is("warrant.claimed", &mine)).await;
    let c = claimed.last().unwrap().json();
    assert_eq!(c["queue"], "left");
    assert_eq!(c["state"], "judge_review");

    // Sealed: the officer who wrote it hears nothing more of it; the judge does.
    let issued = e.issued().await;
    e.step(
        &e.judge,
        &issued,
        "seal",
        json!({"orderReference": "SO-2026-14", "reason": "ongoing investigation"}),
    )
    .await;
    let seen = judge
        .events_until(|f| f.is("warrant.sealed", &issued))
        .await;
    let sealed_at = seen.last().unwrap().seq();
    let barrier3 = e.create(&e.officer, json!({})).await;
    let after = officer
        .events_until(|f| f.is("warrant.created", &barrier3))
        .await;
    assert!(
        after
            .iter()
            .filter(|f| f.json()["warrantId"] == issued["id"])
            .all(|f| f.seq() < sealed_at),
        "{after:?}"
    );
    assert!(!after.iter().any(|f| f.is("warrant.sealed", &issued)));

    assert_minimal(&judge, &[]);
    assert_minimal(&officer, &after);
    assert_minimal(&officer2, &seen2);
}

#[tokio::test]
async fn every_step_of_a_warrant_reaches_its_author_and_the_judge_in_order() {
    let e = env().await;
    let mut officer = Sse::open(&e.server, &e.officer.token, None).await;
    let mut judge = Sse::open(&e.server, &e.judge.token, None).await;
    let start = officer.start().await.seq();
    judge.start().await;
    let w = e.create(&e.officer, json!({})).await;
    let steps = [
        (&e.officer, "submit", json!({})),
        (&e.supervisor, "supervisor-approve", json!({})),
        (&e.prosecutor, "prosecutor-approve", json!({})),
        (&e.judge, "claim", json!({})),
        (&e.judge, "issue", json!({"nightService": true})),
        (&e.officer2, "execute", json!({})),
        (
            &e.officer2,
            "file-return",
            json!({"return": {"kind": "inventory", "inventory": ["Glock 19, serial ABC123"]}}),
        ),
    ];
    // What each step answered: the state and version each event must carry.
    let mut after = vec![(w["state"].clone(), w["version"].clone())];
    for (who, action, body) in steps {
        if action == "issue" {
            e.server.step_up(&who.user, &who.token).await;
        }
        let v = e.step(who, &w, action, body).await;
        after.push((v["state"].clone(), v["version"].clone()));
    }
    let logged = logged_after(&e, &w, start).await;
    assert_eq!(logged.len(), 8, "{logged:?}");
    for s in [&mut officer, &mut judge] {
        let seen = s.events_until(|f| f.is("warrant.returned", &w)).await;
        let seen: Vec<_> = seen
            .into_iter()
            .filter(|f| f.json()["warrantId"] == w["id"])
            .collect();
        assert_eq!(ids_and_kinds(&seen), logged);
        let carried: Vec<_> = seen
            .iter()
            .map(|f| (f.json()["state"].clone(), f.json()["version"].clone()))
            .collect();
        assert_eq!(carried, after);
        assert_minimal(s, &seen);
    }
}

/// The warrant-change entries of `w` after `seq`, from the audit log itself.
async fn logged_after(e: &Env, w: &Value, seq: u64) -> Vec<(u64, String)> {
    e.entries()
        .await
        .iter()
        .filter(|x| x["resource"]["warrantId"] == w["id"])
        // Changes of the warrant itself: not reads, nor its documents' and signatures' entries.
        .filter(|x| x["action"] != "warrant.viewed")
        .filter(|x| {
            x["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("warrant."))
        })
        .map(|x| {
            (
                x["seq"].as_u64().unwrap(),
                x["action"].as_str().unwrap().to_owned(),
            )
        })
        .filter(|(s, _)| *s > seq)
        .collect()
}

fn ids_and_kinds(frames: &[Frame]) -> Vec<(u64, String)> {
    frames
        .iter()
        .map(|f| (f.seq(), f.event.clone().unwrap()))
        .collect()
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_replays_exactly_what_was_missed() {
    let e = env().await;
    let w = e.create(&e.officer, json!({})).await;
    // Sequenced before connecting, so the stream's head is past it.
    sequence(&e.db, &e.agency).await;
    let mut s = Sse::open(&e.server, &e.officer.token, None).await;
    let first = s.start().await;
    // Started at the head: the creation before connecting is not replayed.
    e.step(&e.officer, &w, "submit", json!({})).await;
    let seen = s.events_until(|f| f.is("warrant.submitted", &w)).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].seq() > first.seq());
    let last = seen[0].seq();
    drop(s);

    // Missed while away: three steps of the officer's warrant, and a colleague's warrant.
    e.step(&e.supervisor, &w, "supervisor-approve", json!({}))
        .await;
    e.create(&e.officer2, json!({})).await;
    e.step(&e.prosecutor, &w, "prosecutor-approve", json!({}))
        .await;
    let expected = logged_after(&e, &w, last).await;
    assert_eq!(
        expected.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>(),
        ["warrant.reviewed", "warrant.queued"]
    );

    let mut s = Sse::open(&e.server, &e.officer.token, Some(&last.to_string())).await;
    assert_eq!(s.start().await.seq(), last);
    let replay = s.events_until(|f| f.is("warrant.queued", &w)).await;
    assert_eq!(ids_and_kinds(&replay), expected);
    assert_eq!(replay[1].json()["version"], 4);
    // Nothing twice, nothing else: the next event is the next change.
    e.step(&e.judge, &w, "claim", json!({})).await;
    let next = s.events_until(|f| f.is("warrant.claimed", &w)).await;
    assert_eq!(next.len(), 1, "{next:?}");
    assert!(next[0].seq() > replay[1].seq());
    assert_minimal(&s, &replay);
    drop(s);

    // The same through the query parameter; the header wins over it.
    let mut q = Sse::open_with(
        &e.server,
        &e.officer.token,
        None,
        &format!("?lastEventId={last}"),
    )
    .await;
    q.start().await;
    let again = q.events_until(|f| f.is("warrant.claimed", &w)).await;
    assert_eq!(ids_and_kinds(&again[..2]), expected);
    let latest = again.last().unwrap().seq();
    drop(q);
    let mut h = Sse::open_with(
        &e.server,
        &e.officer.token,
        Some(&latest.to_string()),
        &format!("?lastEventId={last}"),
    )
    .await;
    assert_eq!(h.start().await.seq(), latest);
    assert!(
        !matches!(h.next(Duration::from_secs(3)).await, Next::Frame(f) if f.event.is_some()),
        "nothing after the header's id"
    );
    drop(h);

    // An id this log never gave out: resync at the head.
    let mut r = Sse::open(&e.server, &e.officer.token, Some("999999999")).await;
    let f = r.start().await;
    assert_eq!(f.event.as_deref(), Some("resync"));
    assert_eq!(f.json()["reason"], "unknown-id");
    assert_eq!(f.json()["head"].as_u64(), Some(f.seq()));
    drop(r);

    // Not a number: 422.
    let res = request(&e.server, Some(&e.officer.token), Some("abc"), "").await;
    assert_eq!(res.status(), 422);
    let res = request(&e.server, Some(&e.officer.token), None, "?since=1").await;
    assert_eq!(res.status(), 400);

    // Entries pruned after the client's id: a resync, never a silent gap. The statement in
    // force is what the stream reads; pruning itself is tested with the audit log.
    let sql = format!(
        "INSERT INTO {}.audit_minimum_index (agency_id, minimum_index, prev_hash, tree_size, root, \
         note, signed_at, pruned, retention_days) VALUES ($1, $2, $3, $2, $3, 'test', now(), 0, 365)",
        e.agency.ident.quoted()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(e.agency.id)
        .bind(i64::try_from(last + 2).unwrap())
        .bind(vec![0u8; 32])
        .execute(&e.db.pool)
        .await
        .unwrap();
    let mut p = Sse::open(&e.server, &e.officer.token, Some(&last.to_string())).await;
    let f = p.start().await;
    assert_eq!(f.event.as_deref(), Some("resync"), "{f:?}");
    assert_eq!(f.json()["reason"], "pruned");
    // From the client's id onward the stream is still exact.
    let mut ok = Sse::open(&e.server, &e.officer.token, Some(&(last + 1).to_string())).await;
    assert_eq!(ok.start().await.event, None);
}

/// More missed events than one read takes: the replay continues across reads, in order, whole.
#[tokio::test]
async fn a_long_replay_crosses_reads_without_a_gap() {
    let e = env().await;
    let w = e.create(&e.officer, json!({})).await;
    sequence(&e.db, &e.agency).await;
    let mut s = Sse::open(&e.server, &e.officer.token, None).await;
    let from = s.start().await.seq();
    drop(s);
    let edits = 230;
    for v in 1..=edits {
        let urgency = if v % 2 == 1 { "urgent" } else { "routine" };
        let (status, body) = e
            .server
            .call(
                "PATCH",
                &format!("/v1/warrants/{}", w["id"].as_str().unwrap()),
                &e.officer.token,
                Some(json!({"version": v, "urgency": urgency})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let mut s = Sse::open(&e.server, &e.officer.token, Some(&from.to_string())).await;
    s.start().await;
    let seen = s
        .events_until(|f| f.json()["version"] == json!(edits + 1))
        .await;
    let versions: Vec<_> = seen.iter().map(|f| f.json()["version"].clone()).collect();
    let expected: Vec<_> = (2..=edits + 1).map(|v| json!(v)).collect();
    assert_eq!(versions, expected);
    assert!(
        seen.iter()
            .all(|f| f.event.as_deref() == Some("warrant.updated"))
    );
    assert_eq!(ids_and_kinds(&seen), logged_after(&e, &w, from).await);
}

#[tokio::test]
async fn who_may_stream_how_many_and_a_logout_ends_the_stream() {
    let e = env().await;
    for who in [&e.officer, &e.supervisor, &e.prosecutor, &e.judge, &e.admin] {
        let res = request(&e.server, Some(&who.token), None, "").await;
        assert_eq!(res.status(), 200, "{}", who.user.username);
    }
    let res = request(&e.server, Some(&e.auditor.token), None, "").await;
    assert_eq!(res.status(), 403);
    let res = request(&e.server, None, None, "").await;
    assert_eq!(res.status(), 401);
    let denied: Vec<Value> = e
        .entries()
        .await
        .into_iter()
        .filter(|x| {
            x["action"] == "authz.denied" && x["actor"]["userId"] == json!(e.auditor.user.id)
        })
        .collect();
    assert_eq!(denied.len(), 1, "the auditor's refusal is audited");

    // Five streams per user; the sixth is refused until one closes.
    let mut open = Vec::new();
    for _ in 0..5 {
        open.push(Sse::open(&e.server, &e.officer.token, None).await);
    }
    let res = request(&e.server, Some(&e.officer.token), None, "").await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let other = Sse::open(&e.server, &e.officer2.token, None).await;
    drop(open.pop());
    // A closed connection is found out when written to: a request finding every slot taken
    // makes the user's streams write at once, so a client reconnecting is not refused.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let res = request(&e.server, Some(&e.officer.token), None, "").await;
        if res.status() == 200 {
            break;
        }
        assert_eq!(res.status(), 429);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(other);

    // Logging out ends the stream at its next poll.
    let mut s = Sse::open(&e.server, &e.supervisor.token, None).await;
    s.start().await;
    let (status, _) = e
        .server
        .call("POST", "/v1/auth/logout", &e.supervisor.token, None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(s.end_reason().await, "session-ended");
    let res = request(&e.server, Some(&e.supervisor.token), None, "").await;
    assert_eq!(res.status(), 401);
    drop(open);
}

#[tokio::test]
async fn a_stream_ends_when_its_token_expires_and_never_holds_up_shutdown() {
    let db = TestDb::new().await;
    let agency = db.onboard("live-pd").await;
    let server = TestServer::start_with(
        &db.url,
        &db.master_key_file,
        &[("WRIT_ACCESS_TOKEN_SECS", "4")],
    );
    let officer = seed_user(&db, &agency, "officer.live", Role::Officer).await;

    let token = server.token(&officer).await;
    let mut s = Sse::open(&server, &token, None).await;
    s.start().await;
    let opened = std::time::Instant::now();
    assert_eq!(s.end_reason().await, "token-expired");
    assert!(opened.elapsed() < Duration::from_secs(10));

    // SIGTERM with a stream open: the stream is told and closed, and the server exits at once
    // (its shutdown timeout is 30 s).
    let token = server.token(&officer).await;
    let mut s = Sse::open(&server, &token, None).await;
    s.start().await;
    let pid = server.pid() as libc::pid_t;
    // SAFETY: signalling our own child, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let stopping = std::time::Instant::now();
    assert_eq!(s.end_reason().await, "shutdown");
    let status = loop {
        let mut status = 0;
        // SAFETY: reaping our own child; TestServer's drop then finds it gone, which it ignores.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(15),
            "writ serve did not exit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
}
