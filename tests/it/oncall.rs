//! On-call rosters and routing through the real server: roster resolution across midnight and
//! both DST changes (the arithmetic itself is unit-tested in writ-warrant-workflow), roster
//! validation, escalation from the primary to the backup to the presiding judge driven by an
//! injected clock, routine requests waiting for the morning, opening a warrant stopping the
//! chain (and a warrant queued again after a return for revision starting a new one), and an
//! audit entry for every hop.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::notifications::{env, id};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn on_call(v: &Value) -> (Value, Value) {
    (
        v["onCall"]["primary"].clone(),
        v["onCall"]["backup"].clone(),
    )
}

#[tokio::test]
async fn a_roster_resolves_on_call_across_midnight_and_both_dst_changes() {
    let e = env().await;
    let (p, b, pres) = (e.primary.user.id, e.backup.user.id, e.presiding.user.id);
    let shifts = json!([
        // Overnight across midnight, then a day shift.
        {"judgeId": p, "role": "primary", "start": "2026-01-15T17:00", "end": "2026-01-16T08:00"},
        {"judgeId": b, "role": "primary", "start": "2026-01-16T08:00", "end": "2026-01-16T17:00"},
        // The spring-forward night (8 March 2026, Chicago), handing over inside the gap.
        {"judgeId": p, "role": "primary", "start": "2026-03-07T20:00", "end": "2026-03-08T02:30"},
        {"judgeId": b, "role": "primary", "start": "2026-03-08T02:30", "end": "2026-03-08T08:00"},
        // The fall-back night (1 November 2026), handing over inside the repeated hour.
        {"judgeId": p, "role": "primary", "start": "2026-10-31T20:00", "end": "2026-11-01T01:30"},
        {"judgeId": b, "role": "primary", "start": "2026-11-01T01:30", "end": "2026-11-01T08:00"},
        {"judgeId": pres, "role": "backup", "start": "2026-10-31T20:00", "end": "2026-11-01T08:00"},
    ]);
    let (status, r) = e
        .call(
            &e.admin,
            "PUT",
            "/v1/courts/d-minn/roster",
            Some(json!({ "presidingJudgeId": pres, "shifts": shifts })),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["timeZone"], "America/Chicago");
    assert_eq!(r["version"], 1);
    assert_eq!(r["shifts"][2]["start"], "2026-03-07T20:00");
    // 02:30 does not exist on 8 March: the handover is at 03:00 CDT (08:00 UTC).
    assert_eq!(r["shifts"][2]["endsAt"], "2026-03-08T08:00:00Z");
    assert_eq!(r["shifts"][3]["startsAt"], "2026-03-08T08:00:00Z");
    // 01:30 happens twice on 1 November: the first one (CDT, 06:30 UTC).
    assert_eq!(r["shifts"][4]["endsAt"], "2026-11-01T06:30:00Z");
    assert_eq!(r["shifts"][5]["startsAt"], "2026-11-01T06:30:00Z");

    for (at, primary, backup) in [
        ("2026-01-16T05:59:00Z", Some(p), None),       // 23:59 local
        ("2026-01-16T06:01:00Z", Some(p), None),       // 00:01 local, next day
        ("2026-01-16T13:59:00Z", Some(p), None),       // 07:59
        ("2026-01-16T14:00:00Z", Some(b), None),       // 08:00: handover
        ("2026-01-16T23:00:00Z", None, None),          // 17:00: nobody but the presiding judge
        ("2026-03-08T07:59:00Z", Some(p), None),       // 01:59 CST
        ("2026-03-08T08:00:00Z", Some(b), None),       // 03:00 CDT
        ("2026-11-01T06:29:00Z", Some(p), Some(pres)), // 01:29 CDT
        ("2026-11-01T06:30:00Z", Some(b), Some(pres)), // 01:30 CDT
        ("2026-11-01T07:15:00Z", Some(b), Some(pres)), // 01:15 CST, the repeated hour
        ("2026-11-01T13:59:00Z", Some(b), Some(pres)), // 07:59 CST
        ("2026-11-01T14:00:00Z", None, None),          // 08:00 CST
    ] {
        let (status, v) = e
            .call(
                &e.presiding,
                "GET",
                &format!("/v1/courts/d-minn/roster?at={at}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(on_call(&v), (json!(primary), json!(backup)), "at {at}");
        assert_eq!(v["onCall"]["presiding"], json!(pres));
    }

    let audit = e.entries().await;
    let updates: Vec<&Value> = audit
        .iter()
        .filter(|x| x["action"] == "court.roster.updated")
        .collect();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["resource"]["court"], "d-minn");
    assert_eq!(updates[0]["detail"]["shifts"], 7);
}

#[tokio::test]
async fn a_roster_is_validated_and_only_admins_set_it() {
    let e = env().await;
    let (p, b, pres) = (e.primary.user.id, e.backup.user.id, e.presiding.user.id);
    for (body, field) in [
        (
            json!({"presidingJudgeId": pres, "shifts": [
                {"judgeId": p, "role": "primary", "start": "2026-01-15T08:00", "end": "2026-01-15T18:00"},
                {"judgeId": b, "role": "primary", "start": "2026-01-15T17:00", "end": "2026-01-16T08:00"}]}),
            "shifts[1]",
        ),
        (
            json!({"presidingJudgeId": pres, "shifts": [
                {"judgeId": p, "role": "primary", "start": "2026-01-15T08:00", "end": "2026-01-15T07:00"}]}),
            "shifts[0].end",
        ),
        (
            json!({"presidingJudgeId": e.officer.user.id, "shifts": []}),
            "presidingJudgeId",
        ),
        (
            json!({"presidingJudgeId": pres, "shifts": [
                {"judgeId": e.admin.user.id, "role": "backup", "start": "2026-01-15T08:00", "end": "2026-01-15T18:00"}]}),
            "shifts[0].judgeId",
        ),
        (
            json!({"presidingJudgeId": pres, "shifts": [
                {"judgeId": p, "role": "standby", "start": "2026-01-15T08:00", "end": "2026-01-15T18:00"}]}),
            "shifts[0].role",
        ),
        (
            json!({"presidingJudgeId": pres, "shifts": [
                {"judgeId": p, "role": "primary", "start": "2026-01-15T08:00Z", "end": "2026-01-15T18:00"}]}),
            "shifts[0].start",
        ),
        // Years chrono reads but PostgreSQL cannot store.
        (
            json!({"presidingJudgeId": pres, "shifts": [
                {"judgeId": p, "role": "primary", "start": "-5000-01-01T00:00", "end": "-5000-01-01T08:00"}]}),
            "shifts[0].start",
        ),
        (
            json!({"presidingJudgeId": pres, "shifts": [
                {"judgeId": p, "role": "primary", "start": "2026-01-15T08:00", "end": "300000-01-01T08:00"}]}),
            "shifts[0].end",
        ),
    ] {
        let (status, problem) = e
            .call(&e.admin, "PUT", "/v1/courts/d-minn/roster", Some(body))
            .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    // Nothing was stored by the refused requests.
    let (status, _) = e
        .call(&e.admin, "GET", "/v1/courts/d-minn/roster", None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = e
        .call(
            &e.admin,
            "PUT",
            "/v1/courts/no-such-court/roster",
            Some(json!({"presidingJudgeId": pres})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = e
        .call(
            &e.presiding,
            "PUT",
            "/v1/courts/d-minn/roster",
            Some(json!({"presidingJudgeId": pres})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = e
        .call(&e.officer, "GET", "/v1/courts/d-minn/roster", None)
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn an_unopened_exigent_warrant_escalates_to_the_backup_then_the_presiding_judge() {
    let e = env().await;
    e.roster(vec![]).await;
    let w = e.queued("exigent").await;
    let t0 = Utc::now();
    e.route(t0).await;
    let r = e.routing(&e.officer, &w).await;
    assert_eq!(r["holder"]["judgeId"], json!(e.primary.user.id), "{r}");
    assert_eq!(r["holder"]["as"], "primary");
    let channels: Vec<&str> = r["hops"][0]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["sms", "voice", "email"]);

    // Within the acknowledgement time (5 minutes): nothing more.
    e.route(t0 + Duration::minutes(4)).await;
    assert_eq!(
        e.routing(&e.officer, &w).await["hops"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    e.route(t0 + Duration::minutes(5) + Duration::seconds(1))
        .await;
    let r = e.routing(&e.officer, &w).await;
    assert_eq!(r["hops"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r["holder"]["judgeId"], json!(e.backup.user.id));
    assert_eq!(r["holder"]["as"], "backup");
    // Five minutes after the backup's alert, the presiding judge; then the chain ends.
    e.route(t0 + Duration::minutes(9)).await;
    assert_eq!(
        e.routing(&e.officer, &w).await["hops"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    e.route(t0 + Duration::minutes(11)).await;
    e.route(t0 + Duration::minutes(60)).await;
    let r = e.routing(&e.officer, &w).await;
    let hops = r["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 3, "{r}");
    let levels: Vec<&str> = hops.iter().map(|h| h["level"].as_str().unwrap()).collect();
    assert_eq!(levels, ["primary", "backup", "presiding"]);
    assert_eq!(r["holder"]["judgeId"], json!(e.presiding.user.id));
    assert!(r["nextEscalationAt"].is_null(), "{r}");
    assert!(
        hops[1]["reason"].as_str().unwrap().contains("5 minutes"),
        "{r}"
    );

    // Every judge got a call, a text and an e-mail, none with the warrant's content.
    e.settled().await;
    let calls: Vec<String> = e
        .sms
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/Calls.json"))
        .map(|r| r.get("To").to_owned())
        .collect();
    assert_eq!(calls, ["+16125550101", "+16125550102", "+16125550103"]);
    let call = e
        .sms
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/Calls.json"))
        .unwrap();
    assert!(call.get("Twiml").starts_with("<Response><Say>"), "{call:?}");
    assert!(call.get("Twiml").contains(w["number"].as_str().unwrap()));
    let mut mailed: Vec<String> = e.smtp.mails().into_iter().flat_map(|m| m.to).collect();
    mailed.sort();
    assert_eq!(
        mailed,
        [
            "backup@court.test",
            "presiding@court.test",
            "primary@court.test"
        ]
    );
    e.assert_no_cji();

    // One audit entry per hop, by the system, naming the judge and the alerts.
    let audit = e.entries().await;
    let hops: Vec<&Value> = audit
        .iter()
        .filter(|x| {
            x["resource"]["warrantId"] == id(&w)
                && matches!(
                    x["action"].as_str(),
                    Some("warrant.routed" | "warrant.escalated")
                )
        })
        .collect();
    let codes: Vec<&str> = hops.iter().map(|x| x["action"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        ["warrant.routed", "warrant.escalated", "warrant.escalated"]
    );
    let judges: Vec<&Value> = hops.iter().map(|x| &x["detail"]["judgeId"]).collect();
    assert_eq!(
        judges,
        [
            &json!(e.primary.user.id),
            &json!(e.backup.user.id),
            &json!(e.presiding.user.id)
        ]
    );
    for h in &hops {
        assert_eq!(h["actor"]["role"], "system");
        assert_eq!(h["detail"]["notificationIds"].as_array().unwrap().len(), 3);
        assert_eq!(h["resource"]["number"], w["number"]);
    }
    assert_eq!(
        audit
            .iter()
            .filter(|x| x["action"] == "notification.sent")
            .count(),
        9
    );
}

/// A judge whose account was deactivated holds no shift: the first alert goes to the backup at
/// once instead of waiting out the primary's acknowledgement time.
#[tokio::test]
async fn a_deactivated_primary_is_skipped_at_once() {
    let e = env().await;
    e.roster(vec![]).await;
    e.server.step_up(&e.admin.user, &e.admin.token).await;
    let (status, body) = e
        .call(
            &e.admin,
            "POST",
            &format!("/v1/users/{}/deactivate", e.primary.user.id),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let w = e.queued("exigent").await;
    e.route(Utc::now()).await;
    let r = e.routing(&e.officer, &w).await;
    let hops = r["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 1, "{r}");
    assert_eq!(hops[0]["level"], "backup", "{r}");
    assert_eq!(r["holder"]["judgeId"], json!(e.backup.user.id), "{r}");
    assert!(
        hops[0]["reason"]
            .as_str()
            .unwrap()
            .contains("skipped primary"),
        "{r}"
    );
}

#[tokio::test]
async fn opening_the_warrant_stops_the_escalation() {
    let e = env().await;
    e.roster(vec![]).await;
    // The court answers urgent requests within 2 minutes (the `on-call` policy).
    let (status, body) = e
        .call(
            &e.admin,
            "PUT",
            "/v1/policies/on-call",
            Some(json!({ "value": { "courts": { "d-minn": { "urgentAckMinutes": 2 } } } })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = e
        .call(
            &e.admin,
            "PUT",
            "/v1/policies/on-call",
            Some(json!({ "value": { "courts": { "d-minn": { "urgentAckMinutes": 0 } } } })),
        )
        .await;
    assert_eq!(status, 422);
    let w = e.queued("urgent").await;
    let t0 = Utc::now();
    e.route(t0).await;
    let r = e.routing(&e.officer, &w).await;
    let at = utc(r["hops"][0]["at"].as_str().unwrap());
    assert_eq!(
        utc(r["nextEscalationAt"].as_str().unwrap()),
        at + Duration::minutes(2),
        "{r}"
    );
    // A judge of another court reads it: not this court's review, the escalation goes on.
    let outsider = crate::notifications::who(
        &e.db,
        &e.agency,
        &e.server,
        "judge.elsewhere",
        writ_auth_mfa::Role::Judge,
    )
    .await;
    let (status, _) = e
        .call(&outsider, "GET", &format!("/v1/warrants/{}", id(&w)), None)
        .await;
    assert_eq!(status, 200);
    let r = e.routing(&e.officer, &w).await;
    assert!(r["openedAt"].is_null(), "{r}");
    assert!(r["nextEscalationAt"].is_string(), "{r}");
    // Nor does a judge whose shift on this court's roster starts tomorrow.
    let tomorrow = crate::notifications::who(
        &e.db,
        &e.agency,
        &e.server,
        "judge.tomorrow",
        writ_auth_mfa::Role::Judge,
    )
    .await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {}.roster_shifts (agency_id, id, court, position, judge_id, role, \
           starts_local, ends_local, starts_at, ends_at) \
         VALUES ($1, gen_random_uuid(), 'd-minn', 99, $2, 'backup', \
           now()::timestamp + interval '1 day', now()::timestamp + interval '2 days', \
           now() + interval '1 day', now() + interval '2 days')",
        e.agency.ident.quoted()
    )))
    .bind(e.agency.id)
    .bind(tomorrow.user.id)
    .execute(&e.db.pool)
    .await
    .unwrap();
    let (status, _) = e
        .call(&tomorrow, "GET", &format!("/v1/warrants/{}", id(&w)), None)
        .await;
    assert_eq!(status, 200);
    let r = e.routing(&e.officer, &w).await;
    assert!(r["openedAt"].is_null(), "{r}");
    // The primary judge reads it: opened.
    let (status, _) = e
        .call(&e.primary, "GET", &format!("/v1/warrants/{}", id(&w)), None)
        .await;
    assert_eq!(status, 200);
    e.route(t0 + Duration::minutes(30)).await;
    let r = e.routing(&e.officer, &w).await;
    assert_eq!(r["hops"].as_array().unwrap().len(), 1, "{r}");
    assert!(r["firstOpenedAt"].is_string());
    assert!(r["nextEscalationAt"].is_null());
    // Claimed: the holder is the claiming judge.
    e.step(&e.backup, &w, "claim", json!({})).await;
    let r = e.routing(&e.officer, &w).await;
    assert_eq!(r["holder"]["judgeId"], json!(e.backup.user.id), "{r}");
    assert_eq!(r["holder"]["as"], "claimed");
    assert!(r["openedAt"].is_string(), "{r}");
    // Returned for revision and queued again: a new chain, offered to the primary judge again
    // and escalated unless opened this time.
    let first_opened = r["firstOpenedAt"].clone();
    let w = e
        .step(
            &e.backup,
            &w,
            "return-for-revision",
            json!({"reason": "name the apartment's unit"}),
        )
        .await;
    e.step(&e.officer, &w, "submit", json!({})).await;
    e.step(&e.supervisor, &w, "supervisor-approve", json!({}))
        .await;
    let w = e
        .step(&e.prosecutor, &w, "prosecutor-approve", json!({}))
        .await;
    assert_eq!(w["state"], "pending_judge", "{w}");
    assert!(w["openedAt"].is_null(), "{w}");
    let t1 = Utc::now();
    e.route(t1).await;
    let r = e.routing(&e.officer, &w).await;
    let hops = r["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 2, "{r}");
    assert_eq!(hops[1]["level"], "primary", "{r}");
    assert_eq!(hops[1]["queuedAt"], w["queuedAt"], "{r}");
    assert_eq!(r["holder"]["judgeId"], json!(e.primary.user.id), "{r}");
    assert_eq!(r["holder"]["as"], "primary");
    assert_eq!(r["firstOpenedAt"], first_opened, "{r}");
    assert!(r["openedAt"].is_null(), "{r}");
    assert!(r["nextEscalationAt"].is_string(), "{r}");
    e.route(t1 + Duration::minutes(3)).await;
    let r = e.routing(&e.officer, &w).await;
    assert_eq!(r["hops"].as_array().unwrap().len(), 3, "{r}");
    assert_eq!(r["holder"]["as"], "backup", "{r}");
    // Opened again by a judge: this chain stops too.
    let (status, _) = e
        .call(
            &e.presiding,
            "GET",
            &format!("/v1/warrants/{}", id(&w)),
            None,
        )
        .await;
    assert_eq!(status, 200);
    e.route(t1 + Duration::minutes(30)).await;
    let r = e.routing(&e.officer, &w).await;
    assert_eq!(r["hops"].as_array().unwrap().len(), 3, "{r}");
    assert!(r["openedAt"].is_string(), "{r}");
    assert_eq!(r["firstOpenedAt"], first_opened, "{r}");
    assert!(r["nextEscalationAt"].is_null(), "{r}");
    // The routing of an unknown warrant is 404, like the warrant.
    let (status, _) = e
        .call(
            &e.admin,
            "GET",
            "/v1/warrants/00000000-0000-0000-0000-000000000000/routing",
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn routine_requests_never_wake_a_judge_at_night() {
    let e = env().await;
    // The week of 12 January 2026 (Chicago), besides the roster around today.
    let (p, b) = (e.primary.user.id, e.backup.user.id);
    e.roster(vec![
        json!({"judgeId": p, "role": "primary", "start": "2026-01-12T00:00", "end": "2026-01-17T00:00"}),
        json!({"judgeId": b, "role": "backup", "start": "2026-01-12T00:00", "end": "2026-01-17T00:00"}),
    ])
    .await;
    let w = e.queued("routine").await;
    // Queued on Wednesday at 23:00 CST.
    let queued = utc("2026-01-15T05:00:00Z");
    e.set(&w, "queued_at = $2", queued).await;
    e.route(queued + Duration::minutes(1)).await;
    e.route(utc("2026-01-15T12:59:00Z")).await; // 06:59
    let r = e.routing(&e.officer, &w).await;
    assert!(r["hops"].as_array().unwrap().is_empty(), "{r}");
    assert!(e.notifications("").await.is_empty());
    e.route(utc("2026-01-15T13:00:00Z")).await; // 07:00: the quiet hours end
    let r = e.routing(&e.officer, &w).await;
    assert_eq!(r["hops"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["hops"][0]["judgeId"], json!(p));
    let channels: Vec<&str> = r["hops"][0]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["email"]);
    // Not opened: escalated at 08:00 on the next business day (Friday 16 January).
    assert_eq!(r["nextEscalationAt"], "2026-01-16T14:00:00Z");
    e.route(utc("2026-01-16T13:59:00Z")).await;
    assert_eq!(
        e.routing(&e.officer, &w).await["hops"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    e.route(utc("2026-01-16T14:00:00Z")).await;
    let r = e.routing(&e.officer, &w).await;
    assert_eq!(r["hops"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r["hops"][1]["judgeId"], json!(b));
    e.settled().await;
    assert!(e.sms.requests().is_empty(), "routine never texts or calls");
}
