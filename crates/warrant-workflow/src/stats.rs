//! Review telemetry per court for presiding judges and admins (DOMAIN: Utah's submitted, opened
//! and decided times, from which the press computed a 3-minute median review): volume, time to
//! first view and to decision (p50/p95, `percentile_cont`), approval and first-pass rates — for the
//! court, by warrant type and by deciding judge. Counts warrants first submitted in the period;
//! times are measured from that first submission.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;
use writ_tenancy::TenantTx;

use crate::error::WarrantError;

#[derive(Debug, Clone, Default)]
pub struct StatsFilter {
    pub court: Option<String>,
    /// First submitted at or after.
    pub from: Option<DateTime<Utc>>,
    /// First submitted before.
    pub to: Option<DateTime<Utc>>,
    /// Only the courts this judge presides over (their roster's presiding judge): a judge reads
    /// the figures of their own bench, not of every colleague; agency_admin reads all.
    pub presided_by: Option<Uuid>,
}

/// p50 and p95 in seconds; `None` without any sample.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Percentiles {
    pub p50_seconds: Option<f64>,
    pub p95_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    /// Submitted in the period.
    pub submitted: i64,
    /// Opened by a judge (claimed).
    pub opened: i64,
    /// Issued or rejected.
    pub decided: i64,
    pub issued: i64,
    pub rejected: i64,
    pub time_to_first_view: Percentiles,
    pub time_to_decision: Percentiles,
    /// Issued / decided.
    pub approval_rate: Option<f64>,
    /// Issued without ever going back for revision / issued.
    pub first_pass_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TypeStats {
    #[serde(rename = "type")]
    pub type_key: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JudgeStats {
    pub judge_id: Uuid,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CourtStats {
    pub court: String,
    #[serde(flatten)]
    pub figures: Figures,
    pub by_type: Vec<TypeStats>,
    pub by_judge: Vec<JudgeStats>,
}

#[derive(sqlx::FromRow)]
struct Line {
    court: String,
    type_key: Option<String>,
    decided_by: Option<Uuid>,
    by_type: i32,
    by_judge: i32,
    submitted: i64,
    opened: i64,
    decided: i64,
    issued: i64,
    first_pass: i64,
    view_p50: Option<f64>,
    view_p95: Option<f64>,
    decision_p50: Option<f64>,
    decision_p95: Option<f64>,
}

impl Line {
    fn figures(&self) -> Figures {
        let rate = |n: i64, d: i64| (d > 0).then(|| n as f64 / d as f64);
        Figures {
            submitted: self.submitted,
            opened: self.opened,
            decided: self.decided,
            issued: self.issued,
            rejected: self.decided - self.issued,
            time_to_first_view: Percentiles {
                p50_seconds: self.view_p50,
                p95_seconds: self.view_p95,
            },
            time_to_decision: Percentiles {
                p50_seconds: self.decision_p50,
                p95_seconds: self.decision_p95,
            },
            approval_rate: rate(self.issued, self.decided),
            first_pass_rate: rate(self.first_pass, self.issued),
        }
    }
}

/// The figures of every court (or one), by type and by judge.
pub async fn warrant_stats(
    tx: &mut TenantTx,
    filter: &StatsFilter,
) -> Result<Vec<CourtStats>, WarrantError> {
    // One scan, three groupings: the court, the court and type, the court and deciding judge.
    let lines = sqlx::query_as::<_, Line>(
        "SELECT court, type_key, decided_by, \
                GROUPING(type_key)::int AS by_type, GROUPING(decided_by)::int AS by_judge, \
                count(*) AS submitted, \
                count(first_opened_at) AS opened, \
                count(decided_at) AS decided, \
                count(issued_at) AS issued, \
                count(issued_at) FILTER (WHERE revisions = 0) AS first_pass, \
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_opened_at - submitted_at)::float8) \
                    FILTER (WHERE first_opened_at IS NOT NULL) AS view_p50, \
                percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM first_opened_at - submitted_at)::float8) \
                    FILTER (WHERE first_opened_at IS NOT NULL) AS view_p95, \
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM decided_at - submitted_at)::float8) \
                    FILTER (WHERE decided_at IS NOT NULL) AS decision_p50, \
                percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM decided_at - submitted_at)::float8) \
                    FILTER (WHERE decided_at IS NOT NULL) AS decision_p95 \
         FROM warrants \
         WHERE submitted_at IS NOT NULL AND ($1::text IS NULL OR court = $1) \
           AND ($2::timestamptz IS NULL OR submitted_at >= $2) \
           AND ($3::timestamptz IS NULL OR submitted_at < $3) \
           AND ($4::uuid IS NULL OR court IN \
                (SELECT court FROM court_rosters WHERE presiding_judge_id = $4)) \
         GROUP BY GROUPING SETS ((court), (court, type_key), (court, decided_by)) \
         ORDER BY court, type_key NULLS FIRST, decided_by NULLS FIRST",
    )
    .bind(filter.court.as_deref())
    .bind(filter.from)
    .bind(filter.to)
    .bind(filter.presided_by)
    .fetch_all(tx.conn())
    .await?;
    let mut courts: Vec<CourtStats> = Vec::new();
    for line in lines {
        let figures = line.figures();
        if courts.last().is_none_or(|c| c.court != line.court) {
            courts.push(CourtStats {
                court: line.court.clone(),
                figures: Figures {
                    submitted: 0,
                    opened: 0,
                    decided: 0,
                    issued: 0,
                    rejected: 0,
                    time_to_first_view: Percentiles {
                        p50_seconds: None,
                        p95_seconds: None,
                    },
                    time_to_decision: Percentiles {
                        p50_seconds: None,
                        p95_seconds: None,
                    },
                    approval_rate: None,
                    first_pass_rate: None,
                },
                by_type: Vec::new(),
                by_judge: Vec::new(),
            });
        }
        let Some(court) = courts.last_mut() else {
            continue;
        };
        match (line.by_type, line.by_judge, &line.type_key, line.decided_by) {
            // Grouped by court alone.
            (1, 1, _, _) => court.figures = figures,
            (0, _, Some(key), _) => court.by_type.push(TypeStats {
                type_key: key.clone(),
                figures,
            }),
            // Undecided warrants have no judge: they are in the court's and type's figures.
            (_, 0, _, Some(judge)) => court.by_judge.push(JudgeStats {
                judge_id: judge,
                figures,
            }),
            _ => {}
        }
    }
    Ok(courts)
}
