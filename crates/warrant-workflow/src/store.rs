//! Warrants in the agency's database: create, list, read, edit drafts, and [`apply`] — the one
//! function every transition goes through. Each takes the caller's [`TenantTx`] and writes the
//! change and its audit entry in it, so both commit or neither does. The rules are the core's
//! ([`transition`], [`check_completeness`], [`check_execution`], [`may_read_warrant`]); this
//! module only loads what they need and stores what they decide.

use chrono::{DateTime, Datelike, SubsecRound, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;
use writ_auth_mfa::Role;
use writ_tenancy::TenantTx;

use crate::caller::{Caller, role_of};
use crate::completeness::check_completeness;
use crate::deadline::{
    TrackingPeriod, TrackingUseError, check_execution, execution_deadline, is_past_deadline,
    tracking_use_end,
};
use crate::error::WarrantError;
use crate::fields::{Urgency, WarrantContent};
use crate::number::WarrantNumber;
use crate::seal::{Seal, may_read_warrant, may_see_sealed};
use crate::service_copy::{IssuedWarrant, render_pdf};
use crate::state::{
    Action, ActionInput, ApprovalBy, Approvals, Mover, ReturnKind, ReviewRoute, Transition,
    TransitionContext, WarrantState, allowed_actions, transition,
};
use crate::types::{
    DEFAULT_REMINDER_LEAD_HOURS, WARRANT_TYPES_POLICY, WarrantType, WarrantTypesPolicy,
};
use crate::versions::{
    AffidavitVersion, AiDraft, VersionDiff, VersionReason, diff_versions, sha256_hex,
};

/// Longest affidavit text (characters): a long affidavit runs to a few dozen pages.
pub const MAX_AFFIDAVIT_CHARS: usize = 200_000;
/// Longest other text field (characters).
pub const MAX_FIELD_CHARS: usize = 10_000;
/// Most entries of a list field (items sought, accounts, inventory).
pub const MAX_LIST_ENTRIES: usize = 500;
pub const MAX_REASON_CHARS: usize = 2_000;
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

// ---------------------------------------------------------------------------------------------
// What callers send

/// An AI tool's part in the affidavit: its name and the draft it produced, kept for ever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AiAssistance {
    pub tool: String,
    pub draft: String,
}

/// A new application (officer).
#[derive(Debug, Clone)]
pub struct NewWarrant {
    pub court: String,
    pub type_key: String,
    pub urgency: Urgency,
    pub content: WarrantContent,
    pub ai: Option<AiAssistance>,
    /// `None`: the type's sealing default.
    pub sealing_requested: Option<bool>,
}

/// A change to a draft: members present replace the stored ones. An AI assistance once declared
/// cannot be taken back (the draft is evidence of how the affidavit was written).
#[derive(Debug, Clone, Default)]
pub struct WarrantPatch {
    pub court: Option<String>,
    pub type_key: Option<String>,
    pub urgency: Option<Urgency>,
    pub content: Option<WarrantContent>,
    pub ai: Option<AiAssistance>,
    pub sealing_requested: Option<bool>,
}

/// A filed return: what was seized (possibly nothing), or that the warrant was not executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnFiling {
    Inventory(Vec<String>),
    NotExecuted { note: Option<String> },
}

impl ReturnFiling {
    fn kind(&self) -> ReturnKind {
        match self {
            ReturnFiling::Inventory(_) => ReturnKind::Inventory,
            ReturnFiling::NotExecuted { .. } => ReturnKind::NotExecuted,
        }
    }
}

/// What an action request carries besides the action.
#[derive(Debug, Clone, Default)]
pub struct ActionRequest {
    pub reason: Option<String>,
    /// The supervisor's choice where prosecutor review is optional.
    pub route: Option<ReviewRoute>,
    /// The caller passed the step-up check for this request.
    pub stepped_up: bool,
    /// Issue: the judge authorizes execution outside the daytime window.
    pub night_service: bool,
    /// Issue of a tracking-device warrant: the days the device may be used (default: the most
    /// the type allows).
    pub tracking_use_days: Option<u32>,
    /// Execute: when (default: now).
    pub executed_at: Option<DateTime<Utc>>,
    pub filing: Option<ReturnFiling>,
}

// ---------------------------------------------------------------------------------------------
// What is stored and shown

/// A warrant as the caller may see it, with the actions the caller may take now.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Warrant {
    pub id: Uuid,
    pub number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<Uuid>,
    pub court: String,
    #[serde(rename = "type")]
    pub type_key: String,
    pub time_zone: String,
    pub urgency: Urgency,
    pub state: WarrantState,
    pub version: i32,
    pub content: WarrantContent,
    pub ai_assisted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ai_draft: Option<AiDraft>,
    pub author_id: Uuid,
    pub approvals: ApprovalsView,
    pub revisions: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<Uuid>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub queued_at: Option<DateTime<Utc>>,
    /// When a judge first opened or claimed the warrant, ever (review statistics).
    pub first_opened_at: Option<DateTime<Utc>>,
    /// When a judge first opened or claimed it since it was last queued (on-call escalation
    /// stops here).
    pub opened_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<Uuid>,
    pub issued_at: Option<DateTime<Utc>>,
    pub execution_deadline: Option<DateTime<Utc>>,
    /// Tracking devices: when the authorised use ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_use_ends_at: Option<DateTime<Utc>>,
    pub night_service: bool,
    pub reminder_sent_at: Option<DateTime<Utc>>,
    pub executed_at: Option<DateTime<Utc>>,
    pub executed_by: Option<Uuid>,
    #[serde(rename = "return", skip_serializing_if = "Option::is_none")]
    pub filed_return: Option<ReturnView>,
    pub sealing_requested: bool,
    pub sealed: bool,
    /// The seal order and its history, for the roles that may see sealed warrants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal: Option<Seal>,
    /// The transitions the caller may take now.
    pub allowed_actions: Vec<Action>,
    /// The seal steps ([`SEAL_STEPS`]) the caller may take now: a judge's `seal` of an unsealed
    /// warrant, `renew-seal` and `unseal` of a sealed one; empty for everyone else.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seal_actions: Vec<&'static str>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// At issue: the affidavit version the judge issued on (the last one sworn, with any sworn
    /// amendment) and its SHA-256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sworn_affidavit: Option<SwornAffidavit>,
    /// An oath session of this warrant ended without the provider delivering its recording.
    pub oath_recording_missing: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SwornAffidavit {
    pub version: i32,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalsView {
    pub supervisor: Option<Approval>,
    pub prosecutor: Option<Approval>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReturnView {
    pub kind: ReturnKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub filed_at: Option<DateTime<Utc>>,
    pub filed_by: Option<Uuid>,
}

/// The outcome of [`apply`]: the warrant as it now is, the transition written, and the
/// extension request an `extend` created.
#[derive(Debug, Clone)]
pub struct Applied {
    pub warrant: Warrant,
    pub transition: Transition,
    pub child: Option<Warrant>,
}

/// One stored affidavit version.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredVersion {
    #[serde(flatten)]
    pub version: AffidavitVersion,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// Filters of [`list`]; all optional.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub state: Option<WarrantState>,
    pub type_key: Option<String>,
    pub author: Option<Uuid>,
    pub court: Option<String>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
}

/// A warrant in a listing or the judge queue: where it stands and who acts on it, without what
/// it says (content, AI draft, reasons, return, seal order). Reading those is an access to CJI,
/// recorded per warrant (`GET /v1/warrants/{id}`); a listing is not recorded per row.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WarrantSummary {
    pub id: Uuid,
    pub number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<Uuid>,
    pub court: String,
    #[serde(rename = "type")]
    pub type_key: String,
    pub time_zone: String,
    pub urgency: Urgency,
    pub state: WarrantState,
    pub version: i32,
    pub ai_assisted: bool,
    pub author_id: Uuid,
    pub approvals: ApprovalsView,
    pub revisions: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<Uuid>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub queued_at: Option<DateTime<Utc>>,
    pub first_opened_at: Option<DateTime<Utc>>,
    pub opened_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<Uuid>,
    pub issued_at: Option<DateTime<Utc>>,
    pub execution_deadline: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_use_ends_at: Option<DateTime<Utc>>,
    pub night_service: bool,
    pub executed_at: Option<DateTime<Utc>>,
    pub executed_by: Option<Uuid>,
    pub sealing_requested: bool,
    pub sealed: bool,
    pub allowed_actions: Vec<Action>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seal_actions: Vec<&'static str>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub oath_recording_missing: bool,
}

impl From<Warrant> for WarrantSummary {
    fn from(w: Warrant) -> Self {
        WarrantSummary {
            id: w.id,
            number: w.number,
            parent_id: w.parent_id,
            court: w.court,
            type_key: w.type_key,
            time_zone: w.time_zone,
            urgency: w.urgency,
            state: w.state,
            version: w.version,
            ai_assisted: w.ai_assisted,
            author_id: w.author_id,
            approvals: w.approvals,
            revisions: w.revisions,
            claimed_by: w.claimed_by,
            submitted_at: w.submitted_at,
            queued_at: w.queued_at,
            first_opened_at: w.first_opened_at,
            opened_at: w.opened_at,
            decided_at: w.decided_at,
            decided_by: w.decided_by,
            issued_at: w.issued_at,
            execution_deadline: w.execution_deadline,
            tracking_use_ends_at: w.tracking_use_ends_at,
            night_service: w.night_service,
            executed_at: w.executed_at,
            executed_by: w.executed_by,
            sealing_requested: w.sealing_requested,
            sealed: w.sealed,
            allowed_actions: w.allowed_actions,
            seal_actions: w.seal_actions,
            created_at: w.created_at,
            updated_at: w.updated_at,
            oath_recording_missing: w.oath_recording_missing,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WarrantPage {
    pub items: Vec<WarrantSummary>,
    /// Pass as `cursor` for the next page; `None` after the last.
    pub next_cursor: Option<String>,
}

/// The row, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Row {
    pub id: Uuid,
    pub number: String,
    pub parent_id: Option<Uuid>,
    pub court: String,
    pub type_key: String,
    pub type_rules: Value,
    pub time_zone: String,
    pub urgency: String,
    pub content: Value,
    pub ai_assisted: bool,
    pub ai_tool: Option<String>,
    pub ai_draft: Option<String>,
    pub author_id: Uuid,
    pub state: String,
    pub version: i32,
    pub supervisor_approved_by: Option<Uuid>,
    pub supervisor_approved_at: Option<DateTime<Utc>>,
    pub prosecutor_approved_by: Option<Uuid>,
    pub prosecutor_approved_at: Option<DateTime<Utc>>,
    pub revisions: i32,
    pub last_reason: Option<String>,
    pub claimed_by: Option<Uuid>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub queued_at: Option<DateTime<Utc>>,
    pub first_opened_at: Option<DateTime<Utc>>,
    pub opened_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<Uuid>,
    pub issued_at: Option<DateTime<Utc>>,
    pub execution_deadline: Option<DateTime<Utc>>,
    pub tracking_use_ends_at: Option<DateTime<Utc>>,
    pub night_service: bool,
    pub reminder_sent_at: Option<DateTime<Utc>>,
    pub executed_at: Option<DateTime<Utc>>,
    pub executed_by: Option<Uuid>,
    pub return_kind: Option<String>,
    pub return_inventory: Option<Value>,
    pub return_note: Option<String>,
    pub returned_at: Option<DateTime<Utc>>,
    pub returned_by: Option<Uuid>,
    pub sealing_requested: bool,
    pub sealed: bool,
    pub seal_expires_at: Option<DateTime<Utc>>,
    pub seal: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sworn_affidavit_version: Option<i32>,
    pub sworn_affidavit_sha256: Option<String>,
    pub oath_recording_missing: bool,
}

macro_rules! columns {
    () => {
        "id, number, parent_id, court, type_key, type_rules, time_zone, urgency, content, \
         ai_assisted, ai_tool, ai_draft, author_id, state, version, supervisor_approved_by, \
         supervisor_approved_at, prosecutor_approved_by, prosecutor_approved_at, revisions, \
         last_reason, claimed_by, submitted_at, queued_at, first_opened_at, decided_at, \
         decided_by, issued_at, execution_deadline, night_service, reminder_sent_at, executed_at, \
         executed_by, return_kind, return_inventory, return_note, returned_at, returned_by, \
         sealing_requested, sealed, seal_expires_at, seal, created_at, updated_at, \
         sworn_affidavit_version, sworn_affidavit_sha256, oath_recording_missing, \
         tracking_use_ends_at, opened_at"
    };
}
pub(crate) use columns;

pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    what: &str,
    value: Value,
) -> Result<T, WarrantError> {
    serde_json::from_value(value).map_err(|e| WarrantError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Value, WarrantError> {
    serde_json::to_value(value).map_err(|e| WarrantError::Corrupt(e.to_string()))
}

impl Row {
    pub(crate) fn state(&self) -> Result<WarrantState, WarrantError> {
        parse("state", json!(self.state))
    }

    pub(crate) fn rules(&self) -> Result<(WarrantType, Tz), WarrantError> {
        let ty: WarrantType = parse("type_rules", self.type_rules.clone())?;
        let tz: Tz = self
            .time_zone
            .parse()
            .map_err(|e| WarrantError::Corrupt(format!("time_zone: {e}")))?;
        Ok((ty, tz))
    }

    pub(crate) fn content(&self) -> Result<WarrantContent, WarrantError> {
        parse("content", self.content.clone())
    }

    fn seal_order(&self) -> Result<Option<Seal>, WarrantError> {
        self.seal.clone().map(|s| parse("seal", s)).transpose()
    }

    /// Sealed at `now`: ordered, not lifted, not lapsed (the expiry job records the lapse
    /// later; visibility does not wait for it).
    pub(crate) fn sealed_at(&self, now: DateTime<Utc>) -> bool {
        self.sealed && self.seal_expires_at.is_none_or(|e| now < e)
    }

    fn approvals(&self) -> Approvals {
        Approvals {
            supervisor: self.supervisor_approved_by.is_some(),
            prosecutor: self.prosecutor_approved_by.is_some(),
        }
    }

    fn ai(&self) -> Option<AiDraft> {
        match (&self.ai_tool, &self.ai_draft) {
            (Some(tool), Some(draft)) if self.ai_assisted => Some(AiDraft::new(tool, draft)),
            _ => None,
        }
    }

    fn mover(&self, caller: &Caller) -> Mover {
        match (caller.user_id(), role_of(caller)) {
            (Some(id), Some(role)) => Mover::User {
                role,
                is_author: id == self.author_id,
                is_claimant: self.claimed_by == Some(id),
            },
            _ => Mover::System,
        }
    }

    fn context(
        &self,
        caller: &Caller,
        ty: &WarrantType,
        now: DateTime<Utc>,
        input: ActionInput,
    ) -> Result<TransitionContext, WarrantError> {
        Ok(TransitionContext {
            state: self.state()?,
            mover: self.mover(caller),
            prosecutor_review: ty.prosecutor_review,
            ai_assisted: self.ai_assisted,
            approvals: self.approvals(),
            window_elapsed: is_past_deadline(self.execution_deadline, now),
            tracking_use_open: ty.tracking.is_some()
                && self.tracking_use_ends_at.is_some_and(|end| now < end),
            input,
        })
    }

    fn view(&self, caller: &Caller, now: DateTime<Utc>) -> Result<Warrant, WarrantError> {
        let (ty, _) = self.rules()?;
        let state = self.state()?;
        let ctx = self.context(caller, &ty, now, ActionInput::default())?;
        let sees_seal = sees_sealed(caller);
        let approval = |by: Option<Uuid>, at: Option<DateTime<Utc>>| match (by, at) {
            (Some(by), Some(at)) => Some(Approval { by, at }),
            _ => None,
        };
        let filed_return = match self.return_kind.as_deref() {
            None => None,
            Some(kind) => Some(ReturnView {
                kind: parse("return_kind", json!(kind))?,
                inventory: self
                    .return_inventory
                    .clone()
                    .map(|v| parse("return_inventory", v))
                    .transpose()?,
                note: self.return_note.clone(),
                filed_at: self.returned_at,
                filed_by: self.returned_by,
            }),
        };
        Ok(Warrant {
            id: self.id,
            number: self.number.clone(),
            parent_id: self.parent_id,
            court: self.court.clone(),
            type_key: self.type_key.clone(),
            time_zone: self.time_zone.clone(),
            urgency: parse("urgency", json!(self.urgency))?,
            state,
            version: self.version,
            content: self.content()?,
            ai_assisted: self.ai_assisted,
            ai_draft: self.ai(),
            author_id: self.author_id,
            approvals: ApprovalsView {
                supervisor: approval(self.supervisor_approved_by, self.supervisor_approved_at),
                prosecutor: approval(self.prosecutor_approved_by, self.prosecutor_approved_at),
            },
            revisions: self.revisions,
            last_reason: self.last_reason.clone(),
            claimed_by: self.claimed_by,
            submitted_at: self.submitted_at,
            queued_at: self.queued_at,
            first_opened_at: self.first_opened_at,
            opened_at: self.opened_at,
            decided_at: self.decided_at,
            decided_by: self.decided_by,
            issued_at: self.issued_at,
            execution_deadline: self.execution_deadline,
            tracking_use_ends_at: self.tracking_use_ends_at,
            night_service: self.night_service,
            reminder_sent_at: self.reminder_sent_at,
            executed_at: self.executed_at,
            executed_by: self.executed_by,
            filed_return,
            sealing_requested: self.sealing_requested,
            sealed: self.sealed_at(now),
            seal: if sees_seal { self.seal_order()? } else { None },
            allowed_actions: if caller.user_id().is_some() {
                allowed_actions(&ctx)
            } else {
                Vec::new()
            },
            seal_actions: match role_of(caller).is_some_and(crate::seal::may_seal) {
                true if self.sealed_at(now) => SEAL_STEPS[1..].to_vec(),
                true => SEAL_STEPS[..1].to_vec(),
                false => Vec::new(),
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
            sworn_affidavit: match (self.sworn_affidavit_version, &self.sworn_affidavit_sha256) {
                (Some(version), Some(sha256)) => Some(SwornAffidavit {
                    version,
                    sha256: sha256.clone(),
                }),
                _ => None,
            },
            oath_recording_missing: self.oath_recording_missing,
        })
    }
}

/// The clock at millisecond precision: what is stored (PostgreSQL keeps microseconds), shown,
/// audited and put into the issued document is then one and the same instant.
pub(crate) fn now_ms() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

// ---------------------------------------------------------------------------------------------
// Reading rows

/// The system, judges, prosecutors and agency_admin.
fn sees_sealed(caller: &Caller) -> bool {
    caller.user_id().is_none() || role_of(caller).is_some_and(may_see_sealed)
}

/// Whether the caller may see this row now; a sealed warrant is 404 for everyone but judges,
/// prosecutors and agency_admin (the system sees everything).
fn visible(caller: &Caller, row: &Row, now: DateTime<Utc>) -> bool {
    match (caller.user_id(), role_of(caller)) {
        (None, _) => true,
        (Some(_), Some(role)) => may_read_warrant(role, row.sealed_at(now)),
        (Some(_), None) => false,
    }
}

pub(crate) async fn load(
    tx: &mut TenantTx,
    id: Uuid,
    for_update: bool,
) -> Result<Option<Row>, WarrantError> {
    let sql = if for_update {
        concat!(
            "SELECT ",
            columns!(),
            " FROM warrants WHERE id = $1 FOR UPDATE"
        )
    } else {
        concat!("SELECT ", columns!(), " FROM warrants WHERE id = $1")
    };
    Ok(sqlx::query_as::<_, Row>(sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?)
}

pub(crate) async fn load_visible(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
    for_update: bool,
    now: DateTime<Utc>,
) -> Result<Row, WarrantError> {
    load_where(tx, id, for_update, |row| visible(caller, row, now)).await
}

/// The warrant when `may` allows the caller it; 404 otherwise, like a missing one.
async fn load_where(
    tx: &mut TenantTx,
    id: Uuid,
    for_update: bool,
    may: impl Fn(&Row) -> bool,
) -> Result<Row, WarrantError> {
    match load(tx, id, for_update).await? {
        Some(row) if may(&row) => Ok(row),
        _ => Err(WarrantError::NotFound),
    }
}

/// [`load_visible`], except that the warrant's affiant takes part in the oath of their own
/// application under review even when a judge has sealed it meanwhile: joining the session,
/// swearing an amendment. The seal hides the warrant from everyone else as before.
pub(crate) async fn load_for_oath(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
    for_update: bool,
    now: DateTime<Utc>,
) -> Result<Row, WarrantError> {
    load_where(tx, id, for_update, |row| {
        visible(caller, row, now)
            || (caller.user_id() == Some(row.author_id)
                && row.state == WarrantState::JudgeReview.as_str())
    })
    .await
}

/// The agency's `warrant-types` policy (no court until it is set).
pub async fn warrant_types(tx: &mut TenantTx) -> Result<WarrantTypesPolicy, WarrantError> {
    match writ_tenancy::policy_value(tx, WARRANT_TYPES_POLICY).await? {
        None => Ok(WarrantTypesPolicy::default()),
        Some(value) => WarrantTypesPolicy::from_value(&value).map_err(WarrantError::Policy),
    }
}

/// The court's rules for a type now, or 422 naming `court` or `type`.
async fn resolve_type(
    tx: &mut TenantTx,
    court: &str,
    type_key: &str,
) -> Result<(WarrantType, Tz), WarrantError> {
    let policy = warrant_types(tx).await?;
    let Some(c) = policy.court(court) else {
        return Err(WarrantError::invalid(
            "court",
            format!("no court {court:?} in the agency's warrant-types policy"),
        ));
    };
    let Some(ty) = c.get(type_key) else {
        return Err(WarrantError::invalid(
            "type",
            format!("court {court:?} has no warrant type {type_key:?}"),
        ));
    };
    Ok((ty.clone(), c.time_zone))
}

/// The court's reminder lead time, from the policy in force (the default when the court is gone).
pub(crate) fn reminder_lead(policy: &WarrantTypesPolicy, court: &str) -> chrono::Duration {
    policy.court(court).map_or_else(
        || chrono::Duration::hours(i64::from(DEFAULT_REMINDER_LEAD_HOURS)),
        |c| c.reminder_lead(),
    )
}

// ---------------------------------------------------------------------------------------------
// Checks of what callers send

pub(crate) fn check_text(field: &str, text: &str, max: usize) -> Result<(), WarrantError> {
    if text.chars().count() > max {
        return Err(WarrantError::invalid(
            field,
            format!("at most {max} characters"),
        ));
    }
    Ok(())
}

fn check_list(field: &str, items: &[String]) -> Result<(), WarrantError> {
    if items.len() > MAX_LIST_ENTRIES {
        return Err(WarrantError::invalid(
            field,
            format!("at most {MAX_LIST_ENTRIES} entries"),
        ));
    }
    for (i, item) in items.iter().enumerate() {
        check_text(&format!("{field}[{i}]"), item, MAX_FIELD_CHARS)?;
    }
    Ok(())
}

fn check_content(c: &WarrantContent) -> Result<(), WarrantError> {
    let texts = [
        ("content.subject", &c.subject),
        ("content.place", &c.place),
        ("content.offense", &c.offense),
        ("content.trackedObject", &c.tracked_object),
        ("content.recordsHolder", &c.records_holder),
        ("content.timeRange", &c.time_range),
    ];
    for (field, text) in texts {
        if let Some(t) = text {
            check_text(field, t, MAX_FIELD_CHARS)?;
        }
    }
    if let Some(a) = &c.affidavit {
        check_text("content.affidavit", a, MAX_AFFIDAVIT_CHARS)?;
    }
    check_list("content.itemsSought", &c.items_sought)?;
    check_list("content.accounts", &c.accounts)?;
    Ok(())
}

fn check_ai(ai: &AiAssistance) -> Result<(), WarrantError> {
    if ai.tool.trim().is_empty() {
        return Err(WarrantError::invalid(
            "aiAssistance.tool",
            "name the tool that drafted the affidavit",
        ));
    }
    check_text("aiAssistance.tool", &ai.tool, 200)?;
    check_text("aiAssistance.draft", &ai.draft, MAX_AFFIDAVIT_CHARS)
}

fn check_reason(reason: Option<&str>) -> Result<(), WarrantError> {
    match reason {
        Some(r) => check_text("reason", r, MAX_REASON_CHARS),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// The next number of the agency for `year` (the counter row is locked until commit).
async fn next_number(tx: &mut TenantTx, year: i32) -> Result<WarrantNumber, WarrantError> {
    let last: i32 = sqlx::query_scalar(
        "INSERT INTO warrant_counters (year, last) VALUES ($1, 1) \
         ON CONFLICT (agency_id, year) DO UPDATE SET last = warrant_counters.last + 1 \
         RETURNING last",
    )
    .bind(year)
    .fetch_one(tx.conn())
    .await?;
    let sequence = u32::try_from(last).map_err(|_| WarrantError::NumbersExhausted(year))?;
    WarrantNumber::new(year, sequence).map_err(|_| WarrantError::NumbersExhausted(year))
}

struct Insert<'a> {
    id: Uuid,
    number: &'a str,
    parent_id: Option<Uuid>,
    court: &'a str,
    type_key: &'a str,
    type_rules: Value,
    time_zone: &'a str,
    urgency: Urgency,
    content: Value,
    ai: Option<&'a AiAssistance>,
    author_id: Uuid,
    sealing_requested: bool,
    now: DateTime<Utc>,
}

async fn insert(tx: &mut TenantTx, w: Insert<'_>) -> Result<Row, WarrantError> {
    Ok(sqlx::query_as::<_, Row>(concat!(
        "INSERT INTO warrants (id, number, parent_id, court, type_key, type_rules, time_zone, \
         urgency, content, ai_assisted, ai_tool, ai_draft, author_id, sealing_requested, \
         created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) \
         RETURNING ",
        columns!()
    ))
    .bind(w.id)
    .bind(w.number)
    .bind(w.parent_id)
    .bind(w.court)
    .bind(w.type_key)
    .bind(w.type_rules)
    .bind(w.time_zone)
    .bind(
        to_json(&w.urgency)?
            .as_str()
            .unwrap_or("routine")
            .to_owned(),
    )
    .bind(w.content)
    .bind(w.ai.is_some())
    .bind(w.ai.map(|a| a.tool.clone()))
    .bind(w.ai.map(|a| a.draft.clone()))
    .bind(w.author_id)
    .bind(w.sealing_requested)
    .bind(w.now)
    .fetch_one(tx.conn())
    .await?)
}

/// Writes every column a transition or an edit may change.
async fn save(tx: &mut TenantTx, r: &Row) -> Result<(), WarrantError> {
    sqlx::query(
        "UPDATE warrants SET court = $2, type_key = $3, type_rules = $4, time_zone = $5, \
         urgency = $6, content = $7, ai_assisted = $8, ai_tool = $9, ai_draft = $10, state = $11, \
         version = $12, supervisor_approved_by = $13, supervisor_approved_at = $14, \
         prosecutor_approved_by = $15, prosecutor_approved_at = $16, revisions = $17, \
         last_reason = $18, claimed_by = $19, submitted_at = $20, queued_at = $21, \
         first_opened_at = $22, decided_at = $23, decided_by = $24, issued_at = $25, \
         execution_deadline = $26, night_service = $27, reminder_sent_at = $28, executed_at = $29, \
         executed_by = $30, return_kind = $31, return_inventory = $32, return_note = $33, \
         returned_at = $34, returned_by = $35, sealing_requested = $36, sealed = $37, \
         seal_expires_at = $38, seal = $39, updated_at = $40, tracking_use_ends_at = $41, \
         opened_at = $42 WHERE id = $1",
    )
    .bind(r.id)
    .bind(&r.court)
    .bind(&r.type_key)
    .bind(&r.type_rules)
    .bind(&r.time_zone)
    .bind(&r.urgency)
    .bind(&r.content)
    .bind(r.ai_assisted)
    .bind(&r.ai_tool)
    .bind(&r.ai_draft)
    .bind(&r.state)
    .bind(r.version)
    .bind(r.supervisor_approved_by)
    .bind(r.supervisor_approved_at)
    .bind(r.prosecutor_approved_by)
    .bind(r.prosecutor_approved_at)
    .bind(r.revisions)
    .bind(&r.last_reason)
    .bind(r.claimed_by)
    .bind(r.submitted_at)
    .bind(r.queued_at)
    .bind(r.first_opened_at)
    .bind(r.decided_at)
    .bind(r.decided_by)
    .bind(r.issued_at)
    .bind(r.execution_deadline)
    .bind(r.night_service)
    .bind(r.reminder_sent_at)
    .bind(r.executed_at)
    .bind(r.executed_by)
    .bind(&r.return_kind)
    .bind(&r.return_inventory)
    .bind(&r.return_note)
    .bind(r.returned_at)
    .bind(r.returned_by)
    .bind(r.sealing_requested)
    .bind(r.sealed)
    .bind(r.seal_expires_at)
    .bind(&r.seal)
    .bind(r.updated_at)
    .bind(r.tracking_use_ends_at)
    .bind(r.opened_at)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Records one audit entry about `row` (resource `{warrantId, number}` plus `extra`).
pub(crate) async fn audit(
    tx: &mut TenantTx,
    caller: &Caller,
    action: &str,
    row: &Row,
    extra: &[(&str, Value)],
    detail: Value,
) -> Result<(), WarrantError> {
    let mut event = caller
        .event(action)
        .detail(detail)
        .resource("warrantId", row.id.to_string())
        .resource("number", row.number.clone());
    for (k, v) in extra {
        event = event.resource(k, v.clone());
    }
    writ_audit_log::record(tx, &event).await?;
    Ok(())
}

pub(crate) fn user_of(caller: &Caller) -> Result<(Uuid, Role), WarrantError> {
    match (caller.user_id(), role_of(caller)) {
        (Some(id), Some(role)) => Ok((id, role)),
        // Only the expiry job acts as the system, and never through these functions.
        _ => Err(WarrantError::Corrupt(
            "a user operation was called as the system".into(),
        )),
    }
}

fn check_version(row: &Row, expected: Option<i32>) -> Result<(), WarrantError> {
    match expected {
        Some(v) if v != row.version => Err(WarrantError::StaleVersion {
            expected: v,
            current: row.version,
        }),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// The operations

/// Opens an application in draft (officers; the route checks the permission). Recorded as
/// `warrant.created`.
pub async fn create(
    tx: &mut TenantTx,
    caller: &Caller,
    new: &NewWarrant,
) -> Result<Warrant, WarrantError> {
    let (author_id, _) = user_of(caller)?;
    check_content(&new.content)?;
    if let Some(ai) = &new.ai {
        check_ai(ai)?;
    }
    let (ty, tz) = resolve_type(tx, &new.court, &new.type_key).await?;
    let now = now_ms();
    let number = next_number(tx, now.year()).await?.to_string();
    let row = insert(
        tx,
        Insert {
            id: Uuid::now_v7(),
            number: &number,
            parent_id: None,
            court: &new.court,
            type_key: &new.type_key,
            type_rules: to_json(&ty)?,
            time_zone: tz.name(),
            urgency: new.urgency,
            content: to_json(&new.content)?,
            ai: new.ai.as_ref(),
            author_id,
            sealing_requested: new
                .sealing_requested
                .unwrap_or(ty.sealing.sealed_by_default),
            now,
        },
    )
    .await?;
    audit(
        tx,
        caller,
        crate::state::audit::CREATED,
        &row,
        &[],
        json!({ "court": row.court, "type": row.type_key, "aiAssisted": row.ai_assisted }),
    )
    .await?;
    row.view(caller, now)
}

/// One warrant, or 404 (also for a sealed one the caller may not see).
pub async fn get(tx: &mut TenantTx, caller: &Caller, id: Uuid) -> Result<Warrant, WarrantError> {
    let now = now_ms();
    let mut row = load_visible(tx, caller, id, false, now).await?;
    if row.state == WarrantState::PendingJudge.as_str()
        && row.opened_at.is_none()
        && role_of(caller) == Some(Role::Judge)
        && reviews_for(tx, &row.court, caller.user_id()).await?
    {
        // One of the court's judges reading a queued warrant has opened it: the queue's "time to
        // first view" and on-call escalation both stop counting here. Not a change of the
        // warrant (no version).
        (row.first_opened_at, row.opened_at) = sqlx::query_as(
            "UPDATE warrants SET first_opened_at = coalesce(first_opened_at, $2), \
             opened_at = coalesce(opened_at, $2) WHERE id = $1 \
             RETURNING first_opened_at, opened_at",
        )
        .bind(id)
        .bind(now)
        .fetch_one(tx.conn())
        .await?;
    }
    record_view(tx, caller, &row, "warrant").await?;
    row.view(caller, now)
}

/// Whether a judge's read opens a queued warrant of `court`: the court's presiding judge, or one
/// on a shift of its roster now (one whose shift is over or yet to come is not the one the
/// escalation is waiting for). Another judge reading it (from the agency-wide queue) has not
/// taken up the court's review, and the escalation to the court's judges goes on. A court
/// without a roster escalates nothing, and any judge's read opens its warrants.
async fn reviews_for(
    tx: &mut TenantTx,
    court: &str,
    judge: Option<Uuid>,
) -> Result<bool, WarrantError> {
    Ok(sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM court_rosters WHERE court = $1) \
             OR EXISTS (SELECT 1 FROM court_rosters WHERE court = $1 AND presiding_judge_id = $2) \
             OR EXISTS (SELECT 1 FROM roster_shifts WHERE court = $1 AND judge_id = $2 \
                          AND starts_at <= now() AND ends_at > now())",
    )
    .bind(court)
    .bind(judge)
    .fetch_one(tx.conn())
    .await?)
}

/// Reading a warrant's content is an access to CJI: each read is one `warrant.viewed` entry
/// naming what was read (listings and the queue show summaries and are not recorded).
pub(crate) async fn record_view(
    tx: &mut TenantTx,
    caller: &Caller,
    row: &Row,
    what: &str,
) -> Result<(), WarrantError> {
    audit(
        tx,
        caller,
        "warrant.viewed",
        row,
        &[],
        json!({ "read": what }),
    )
    .await
}

/// A page of warrants, newest first, without those the caller may not see.
pub async fn list(
    tx: &mut TenantTx,
    caller: &Caller,
    filter: &ListFilter,
    cursor: Option<Uuid>,
    limit: u32,
) -> Result<WarrantPage, WarrantError> {
    let now = now_ms();
    let limit = limit.clamp(1, MAX_PAGE);
    let sees_sealed = sees_sealed(caller);
    let state = filter.state.map(|s| s.as_str());
    let rows = sqlx::query_as::<_, Row>(concat!(
        "SELECT ",
        columns!(),
        " FROM warrants \
         WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR type_key = $2) \
           AND ($3::uuid IS NULL OR author_id = $3) AND ($4::text IS NULL OR court = $4) \
           AND ($5::timestamptz IS NULL OR created_at >= $5) \
           AND ($6::timestamptz IS NULL OR created_at < $6) \
           AND ($7::uuid IS NULL OR id < $7) \
           AND ($8 OR NOT (sealed AND (seal_expires_at IS NULL OR seal_expires_at > $9))) \
         ORDER BY id DESC LIMIT $10"
    ))
    .bind(state)
    .bind(filter.type_key.as_deref())
    .bind(filter.author)
    .bind(filter.court.as_deref())
    .bind(filter.from)
    .bind(filter.to)
    .bind(cursor)
    .bind(sees_sealed)
    .bind(now)
    .bind(i64::from(limit) + 1)
    .fetch_all(tx.conn())
    .await?;
    let more = rows.len() > limit as usize;
    let mut items: Vec<WarrantSummary> = Vec::with_capacity(rows.len());
    for row in rows.iter().take(limit as usize) {
        items.push(row.view(caller, now)?.into());
    }
    let next_cursor = if more {
        items.last().map(|w| w.id.to_string())
    } else {
        None
    };
    Ok(WarrantPage { items, next_cursor })
}

/// Edits a draft (its author only). `expected_version` must be the stored one (409 otherwise).
/// Recorded as `warrant.updated` with the members changed.
pub async fn patch(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
    changes: &WarrantPatch,
    expected_version: i32,
) -> Result<Warrant, WarrantError> {
    let (user_id, _) = user_of(caller)?;
    let now = now_ms();
    let mut row = load_visible(tx, caller, id, true, now).await?;
    if row.author_id != user_id {
        return Err(WarrantError::NotAuthor);
    }
    let state = row.state()?;
    if state != WarrantState::Draft {
        return Err(WarrantError::NotDraft(state));
    }
    check_version(&row, Some(expected_version))?;
    let mut replaced_ai = None;
    if let Some(ai) = &changes.ai {
        check_ai(ai)?;
        let declared = row.ai();
        if declared
            .as_ref()
            .is_some_and(|d| d.tool != ai.tool || d.text != ai.draft)
        {
            // The earlier AI draft is kept, with the affidavit as it stood, before it goes.
            let kept = snapshot(tx, caller, &row, VersionReason::AiDraftReplaced, now).await?;
            replaced_ai = declared.map(|d| (kept.number, d.sha256));
        }
    }
    let mut changed = Vec::new();
    if changes.court.is_some() || changes.type_key.is_some() {
        let court = changes.court.clone().unwrap_or_else(|| row.court.clone());
        let key = changes
            .type_key
            .clone()
            .unwrap_or_else(|| row.type_key.clone());
        let (ty, tz) = resolve_type(tx, &court, &key).await?;
        if court != row.court {
            changed.push("court");
        }
        if key != row.type_key {
            changed.push("type");
        }
        row.court = court;
        row.type_key = key;
        row.type_rules = to_json(&ty)?;
        row.time_zone = tz.name().to_owned();
    }
    if let Some(u) = changes.urgency {
        row.urgency = to_json(&u)?.as_str().unwrap_or("routine").to_owned();
        changed.push("urgency");
    }
    if let Some(c) = &changes.content {
        check_content(c)?;
        row.content = to_json(c)?;
        changed.push("content");
    }
    if let Some(ai) = &changes.ai {
        row.ai_assisted = true;
        row.ai_tool = Some(ai.tool.clone());
        row.ai_draft = Some(ai.draft.clone());
        changed.push("aiAssistance");
    }
    if let Some(s) = changes.sealing_requested {
        row.sealing_requested = s;
        changed.push("sealingRequested");
    }
    row.version += 1;
    row.updated_at = now;
    save(tx, &row).await?;
    audit(
        tx,
        caller,
        "warrant.updated",
        &row,
        &[],
        match replaced_ai {
            Some((kept, sha256)) => json!({
                "changed": changed,
                "version": row.version,
                "replacedAiDraft": { "sha256": sha256, "keptAsVersion": kept },
            }),
            None => json!({ "changed": changed, "version": row.version }),
        },
    )
    .await?;
    row.view(caller, now)
}

/// `NotFound` unless the caller may read warrant `id` (sealed ones included, by the rule of
/// [`may_read_warrant`]). Records nothing: for reads of what hangs off a warrant (its signatures,
/// requests), which record themselves.
pub async fn check_readable(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
) -> Result<(), WarrantError> {
    load_visible(tx, caller, id, false, now_ms())
        .await
        .map(|_| ())
}

/// Every transition: loads the warrant for update, asks the core whether `action` is allowed
/// for this caller now, writes what the [`Transition`] says (affidavit version, approvals, the
/// extension request) and records exactly one audit entry with its `audit_action`.
pub async fn apply(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
    action: Action,
    input: &ActionRequest,
    expected_version: Option<i32>,
) -> Result<Applied, WarrantError> {
    apply_at(tx, caller, id, action, input, expected_version, now_ms()).await
}

/// [`apply`] as of `now` (the expiry job's clock).
pub async fn apply_at(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
    action: Action,
    input: &ActionRequest,
    expected_version: Option<i32>,
    now: DateTime<Utc>,
) -> Result<Applied, WarrantError> {
    let now = now.trunc_subsecs(3);
    check_reason(input.reason.as_deref())?;
    let mut row = load_visible(tx, caller, id, true, now).await?;
    check_version(&row, expected_version)?;
    let (mut ty, mut tz) = row.rules()?;
    let core_input = ActionInput {
        reason: input.reason.clone(),
        route: input.route,
        stepped_up: input.stepped_up,
        return_kind: input.filing.as_ref().map(ReturnFiling::kind),
    };
    let mut ctx = row.context(caller, &ty, now, core_input)?;
    if action == Action::Execute
        && let Some(at) = input.executed_at
    {
        // Executed in time and recorded late is an execution, not a warrant "not executed":
        // the window is judged at the time of execution (`check_execution` below checks it
        // against the issue time, the deadline and the daytime hours).
        ctx.window_elapsed = is_past_deadline(row.execution_deadline, at.trunc_subsecs(3));
    }
    let t = transition(&ctx, action)?;
    let actor = caller.user_id();
    let reason = input
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    let mut detail = json!({
        "action": action.as_str(),
        "from": t.from.as_str(),
        "to": t.to.as_str(),
    });

    // What the action itself needs checked, before anything is written.
    let mut executed_at = None;
    let mut judge_signature = None;
    match action {
        Action::Submit => {
            // Reviewed under the rules in force when submitted.
            (ty, tz) = resolve_type(tx, &row.court, &row.type_key).await?;
            check_completeness(&ty.required_fields, &row.content()?)?;
            let signature = crate::signing::require_affidavit_signature(tx, &row).await?;
            detail["affidavitSignatureId"] = json!(signature);
        }
        Action::Execute => {
            let at = input.executed_at.map_or(now, |at| at.trunc_subsecs(3));
            // A clock a little ahead on the officer's device is not a lie; minutes are.
            if at > now + chrono::Duration::minutes(2) {
                return Err(WarrantError::invalid(
                    "executedAt",
                    "must not be in the future",
                ));
            }
            let issued_at = row.issued_at.ok_or_else(|| {
                WarrantError::Corrupt("an issued warrant without issue time".into())
            })?;
            check_execution(&ty, tz, issued_at, at, row.night_service)?;
            executed_at = Some(at);
        }
        Action::Issue => {
            check_parent_extendable(tx, &row, now).await?;
            // No unsworn amendment, and the oath where the court requires one.
            let (sworn, oath_at) = crate::video::oath::issue_check(tx, &row, &ty).await?;
            row.sworn_affidavit_version = sworn.as_ref().map(|s| s.version);
            row.sworn_affidavit_sha256 = sworn.map(|s| s.sha256);
            // The judge signed the warrant as it stands, sworn version included.
            let terms = crate::signing::IssueTerms {
                night_service: input.night_service,
                tracking_use_days: input.tracking_use_days,
            };
            let signature =
                crate::signing::require_judge_signature(tx, caller, &row, terms).await?;
            // The judge signs on the sworn affidavit: a signature made before the oath is not.
            if let Some(oath_at) = oath_at
                && signature.signed_at < oath_at
            {
                return Err(WarrantError::Unsigned {
                    slug: crate::signing::slug::JUDGE_SIGNATURE_REQUIRED,
                    detail: format!(
                        "the judge signed the warrant at {} but administered the oath at {}: \
                         the warrant is signed on the sworn affidavit; request a signature on it \
                         again and sign it now",
                        signature
                            .signed_at
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        oath_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    ),
                });
            }
            detail["judgeSignatureId"] = json!(signature.id);
            judge_signature = Some(signature);
        }
        Action::FileReturn => {
            if let Some(ReturnFiling::Inventory(items)) = &input.filing {
                check_list("inventory", items)?;
            }
            if let Some(ReturnFiling::NotExecuted { note: Some(n) }) = &input.filing {
                check_text("note", n, MAX_REASON_CHARS)?;
            }
        }
        _ => {}
    }

    if t.creates_child {
        let child = extend(tx, caller, &row, now).await?;
        audit(
            tx,
            caller,
            t.audit_action,
            &child,
            &[
                ("parentWarrantId", json!(row.id.to_string())),
                ("parentNumber", json!(row.number)),
            ],
            // The entry is the child's: it starts as a draft at version 1; the parent is unchanged.
            json!({
                "action": action.as_str(),
                "state": WarrantState::Draft.as_str(),
                "version": child.version,
                "extends": row.number,
                "parentState": row.state,
            }),
        )
        .await?;
        return Ok(Applied {
            warrant: row.view(caller, now)?,
            child: Some(child.view(caller, now)?),
            transition: t,
        });
    }

    if let Some(reason) = t.version {
        let v = snapshot(tx, caller, &row, reason, now).await?;
        detail["affidavitVersion"] = json!(v.number);
        detail["affidavitSha256"] = json!(v.sha256);
    }
    if t.clears_approvals {
        row.supervisor_approved_by = None;
        row.supervisor_approved_at = None;
        row.prosecutor_approved_by = None;
        row.prosecutor_approved_at = None;
        row.claimed_by = None;
    }
    match t.approval {
        Some(ApprovalBy::Supervisor) => {
            row.supervisor_approved_by = actor;
            row.supervisor_approved_at = Some(now);
        }
        Some(ApprovalBy::Prosecutor) => {
            row.prosecutor_approved_by = actor;
            row.prosecutor_approved_at = Some(now);
        }
        None => {}
    }
    if t.to == WarrantState::PendingJudge {
        // Queued again: a new routing chain, which stops when a judge opens it this time.
        row.queued_at = Some(now);
        row.opened_at = None;
    }
    match action {
        Action::Submit => {
            row.submitted_at = row.submitted_at.or(Some(now));
            row.type_rules = to_json(&ty)?;
            row.time_zone = tz.name().to_owned();
        }
        Action::ReturnForRevision => {
            row.revisions += 1;
            row.last_reason = reason.clone();
        }
        Action::Claim => {
            row.claimed_by = actor;
            row.first_opened_at = row.first_opened_at.or(Some(now));
            row.opened_at = row.opened_at.or(Some(now));
        }
        Action::Issue => {
            row.issued_at = Some(now);
            row.decided_at = Some(now);
            row.decided_by = actor;
            row.execution_deadline = execution_deadline(&ty, tz, now);
            let period = tracking_period(tx, &row).await?;
            row.tracking_use_ends_at = tracking_use(&ty, tz, now, input.tracking_use_days, period)?;
            if let Some(use_ends) = row.tracking_use_ends_at {
                detail["trackingUseEndsAt"] = json!(use_ends);
                // A device is not installed once its authorised use is over.
                row.execution_deadline = row.execution_deadline.map(|d| d.min(use_ends));
            }
            if let TrackingPeriod::Extension {
                previous_end: Some(previous_end),
            } = period
                && ty.tracking.is_some()
            {
                detail["extendsTrackingUseEndingAt"] = json!(previous_end);
            }
            // A night authority the type does not allow does not count (the core's rule).
            row.night_service = ty.night_authority_effective(input.night_service);
            detail["executionDeadline"] = json!(row.execution_deadline);
            detail["nightService"] = json!(row.night_service);
        }
        Action::Reject => {
            row.decided_at = Some(now);
            row.decided_by = actor;
            row.last_reason = reason.clone();
        }
        Action::Execute => {
            row.executed_at = executed_at;
            row.executed_by = actor;
            detail["executedAt"] = json!(executed_at);
        }
        Action::FileReturn => {
            match &input.filing {
                Some(ReturnFiling::Inventory(items)) => {
                    row.return_inventory = Some(to_json(items)?);
                    row.return_note = None;
                    detail["inventoryItems"] = json!(items.len());
                }
                Some(ReturnFiling::NotExecuted { note }) => {
                    row.return_inventory = None;
                    row.return_note = note.clone();
                }
                // The core refuses a return without a filing.
                None => {}
            }
            row.return_kind = Some(
                to_json(&core_return_kind(input))?
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
            row.returned_at = Some(now);
            row.returned_by = actor;
        }
        Action::Withdraw => {
            row.last_reason = reason.clone();
        }
        Action::SupervisorApprove | Action::ProsecutorApprove | Action::Extend | Action::Expire => {
        }
    }
    if let Some(r) = &reason {
        detail["reason"] = json!(r);
    }
    row.state = t.to.as_str().to_owned();
    row.version += 1;
    row.updated_at = now;
    detail["version"] = json!(row.version);
    save(tx, &row).await?;
    if action == Action::Issue {
        let sha256 = fix_issued_document(tx, &row, &ty, tz, judge_signature.as_ref()).await?;
        detail["documentHash"] = json!(format!("sha256:{sha256}"));
        sqlx::query(
            "UPDATE warrants SET sworn_affidavit_version = $2, sworn_affidavit_sha256 = $3 \
             WHERE id = $1",
        )
        .bind(row.id)
        .bind(row.sworn_affidavit_version)
        .bind(&row.sworn_affidavit_sha256)
        .execute(tx.conn())
        .await?;
        if let Some(v) = row.sworn_affidavit_version {
            detail["swornAffidavitVersion"] = json!(v);
            detail["swornAffidavitSha256"] = json!(row.sworn_affidavit_sha256);
        }
    }
    audit(tx, caller, t.audit_action, &row, &[], detail).await?;
    if action == Action::Issue {
        seal_if_extending_a_sealed_warrant(tx, caller, &mut row, now).await?;
    }
    Ok(Applied {
        warrant: row.view(caller, now)?,
        transition: t,
        child: None,
    })
}

/// An extension issued while the warrant it extends is sealed carries sealed content: it is
/// sealed under the same order at once, as one issued before the order was.
async fn seal_if_extending_a_sealed_warrant(
    tx: &mut TenantTx,
    caller: &Caller,
    row: &mut Row,
    now: DateTime<Utc>,
) -> Result<(), WarrantError> {
    let Some(parent_id) = row.parent_id else {
        return Ok(());
    };
    let Some(parent) = load(tx, parent_id, false).await? else {
        return Ok(());
    };
    if !parent.sealed_at(now) || row.sealed_at(now) {
        return Ok(());
    }
    match parent.seal_order()? {
        Some(order) => cover(tx, caller, row, &parent, &order, now).await,
        None => Ok(()),
    }
}

/// Fixes the canonical issued document and its service copy (see [`crate::service_copy`]);
/// returns the document's SHA-256.
async fn fix_issued_document(
    tx: &mut TenantTx,
    row: &Row,
    ty: &WarrantType,
    tz: Tz,
    judge_signature: Option<&crate::signing::JudgeSignature>,
) -> Result<String, WarrantError> {
    let (Some(issued_at), Some(issued_by)) = (row.issued_at, row.decided_by) else {
        return Err(WarrantError::Corrupt(
            "issued without issue time or judge".into(),
        ));
    };
    let content = row.content()?;
    let policy = warrant_types(tx).await?;
    let court_name = policy.court(&row.court).map(|c| c.name.clone());
    let affiant: Option<crate::service_copy::Person> = sqlx::query_as(
        "SELECT display_name AS name, badge_or_judicial_id AS badge FROM users WHERE id = $1",
    )
    .bind(row.author_id)
    .fetch_optional(tx.conn())
    .await?;
    let issued = IssuedWarrant {
        agency_id: tx.agency_id(),
        warrant_id: row.id,
        number: &row.number,
        parent_warrant_id: row.parent_id,
        court: &row.court,
        warrant_type: ty,
        time_zone: tz,
        content: &content,
        ai_tool: if row.ai_assisted {
            row.ai_tool.as_deref()
        } else {
            None
        },
        issued_at,
        issued_by,
        execution_deadline: row.execution_deadline,
        night_service: row.night_service,
        tracking_use_ends_at: row.tracking_use_ends_at,
        judge_signature,
        court_name: court_name.as_deref(),
        affiant: affiant.as_ref(),
    };
    let canonical = issued
        .canonical()
        .map_err(|e| WarrantError::Corrupt(e.to_string()))?;
    let sha256 = crate::service_copy::sha256_hex(&canonical);
    let pdf = render_pdf(&issued, &canonical);
    sqlx::query(
        "UPDATE warrants SET issued_document = $2, issued_document_sha256 = $3, service_copy = $4 \
         WHERE id = $1",
    )
    .bind(row.id)
    .bind(&canonical)
    .bind(&sha256)
    .bind(&pdf)
    .execute(tx.conn())
    .await?;
    Ok(sha256)
}

/// The service copy of an issued warrant.
#[derive(Debug, Clone)]
pub struct ServiceCopy {
    pub number: String,
    pub pdf: Vec<u8>,
    /// SHA-256 (hex) of the canonical issued document embedded in the PDF.
    pub document_sha256: String,
}

/// The service copy, byte for byte as made at issue; recorded as `document.download`.
pub async fn service_copy(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
) -> Result<ServiceCopy, WarrantError> {
    let row = load_visible(tx, caller, id, false, now_ms()).await?;
    let stored: Option<(Option<Vec<u8>>, Option<String>)> =
        sqlx::query_as("SELECT service_copy, issued_document_sha256 FROM warrants WHERE id = $1")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?;
    let Some((Some(pdf), Some(document_sha256))) = stored else {
        return Err(WarrantError::NotIssued);
    };
    audit(
        tx,
        caller,
        "document.download",
        &row,
        &[("documentHash", json!(format!("sha256:{document_sha256}")))],
        json!({ "document": "service-copy", "bytes": pdf.len() }),
    )
    .await?;
    Ok(ServiceCopy {
        number: row.number,
        pdf,
        document_sha256,
    })
}

/// The end of a tracking device's use period at issue: the days asked for (default the most the
/// type allows), never more; `None` for every other type, which may not ask for one.
fn tracking_use(
    ty: &WarrantType,
    tz: Tz,
    issued_at: DateTime<Utc>,
    asked: Option<u32>,
    period: TrackingPeriod,
) -> Result<Option<DateTime<Utc>>, WarrantError> {
    let extension = matches!(period, TrackingPeriod::Extension { .. });
    let Some(days) = tracking_use_days(ty, asked, extension)? else {
        return Ok(None);
    };
    tracking_use_end(ty, tz, issued_at, days, period)
        .map(Some)
        .map_err(tracking_invalid)
}

/// Whether `row` is the extension of another warrant (`extend` makes one): its tracking use
/// is then an extension of that warrant's.
pub(crate) fn is_extension(row: &Row) -> bool {
    row.parent_id.is_some()
}

/// The use period issuing `row` authorises: an extension (as its signed terms state, see
/// [`is_extension`]), continuing from where its parent's use ends if it had one; else the first.
/// An extension issues only while the warrant it extends may still be extended, as when it was
/// asked for: issued and in its window, or a tracking device executed and still in use. Not once
/// that warrant was returned, withdrawn, expired or its use ended meanwhile.
async fn check_parent_extendable(
    tx: &mut TenantTx,
    row: &Row,
    now: DateTime<Utc>,
) -> Result<(), WarrantError> {
    let Some(parent) = row.parent_id else {
        return Ok(());
    };
    let (number, state, deadline, use_ends): (
        String,
        String,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    ) = sqlx::query_as(
        "SELECT number, state, execution_deadline, tracking_use_ends_at FROM warrants \
         WHERE id = $1",
    )
    .bind(parent)
    .fetch_one(tx.conn())
    .await?;
    let extendable = match parse::<WarrantState>("state", json!(state))? {
        WarrantState::Issued => !is_past_deadline(deadline, now),
        WarrantState::Executed => use_ends.is_some_and(|end| now < end),
        _ => false,
    };
    if extendable {
        Ok(())
    } else {
        Err(WarrantError::ParentNotExtendable { number, state })
    }
}

async fn tracking_period(tx: &mut TenantTx, row: &Row) -> Result<TrackingPeriod, WarrantError> {
    let Some(parent) = row.parent_id else {
        return Ok(TrackingPeriod::Initial);
    };
    let previous_end: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT tracking_use_ends_at FROM warrants WHERE id = $1")
            .bind(parent)
            .fetch_optional(tx.conn())
            .await?
            .flatten();
    Ok(TrackingPeriod::Extension { previous_end })
}

fn tracking_invalid(e: TrackingUseError) -> WarrantError {
    WarrantError::invalid("trackingUseDays", e.to_string())
}

/// The days of use issuing grants a tracking device: those asked, else the type's maximum (of
/// an extension, for an extension);
/// `None` for a type without tracking (where asking is refused), as issuing checks them.
pub(crate) fn tracking_use_days(
    ty: &WarrantType,
    asked: Option<u32>,
    extension: bool,
) -> Result<Option<u32>, WarrantError> {
    let Some(rules) = ty.tracking else {
        return match asked {
            None => Ok(None),
            Some(_) => Err(tracking_invalid(TrackingUseError::NotTracking {
                key: ty.key.clone(),
            })),
        };
    };
    let Some(days) = asked.or(rules.max_days(extension)) else {
        return Err(WarrantError::invalid(
            "trackingUseDays",
            "the court's rules set no maximum use period: the judge names the days",
        ));
    };
    crate::deadline::check_tracking_use_days(ty, days, extension).map_err(tracking_invalid)?;
    Ok(Some(days))
}

fn core_return_kind(input: &ActionRequest) -> ReturnKind {
    input
        .filing
        .as_ref()
        .map_or(ReturnKind::NotExecuted, ReturnFiling::kind)
}

/// The extension request: a new draft by the same author, linked to the original and inheriting
/// its court, type, urgency, content, AI provenance and sealing request.
async fn extend(
    tx: &mut TenantTx,
    caller: &Caller,
    parent: &Row,
    now: DateTime<Utc>,
) -> Result<Row, WarrantError> {
    let (author_id, _) = user_of(caller)?;
    let number = next_number(tx, now.year()).await?.to_string();
    let ai = match (&parent.ai_tool, &parent.ai_draft) {
        (Some(tool), Some(draft)) if parent.ai_assisted => Some(AiAssistance {
            tool: tool.clone(),
            draft: draft.clone(),
        }),
        _ => None,
    };
    insert(
        tx,
        Insert {
            id: Uuid::now_v7(),
            number: &number,
            parent_id: Some(parent.id),
            court: &parent.court,
            type_key: &parent.type_key,
            type_rules: parent.type_rules.clone(),
            time_zone: &parent.time_zone,
            urgency: parse("urgency", json!(parent.urgency))?,
            content: parent.content.clone(),
            ai: ai.as_ref(),
            author_id,
            sealing_requested: parent.sealing_requested,
            now,
        },
    )
    .await
}

/// Keeps the current affidavit as the next immutable version.
pub(crate) async fn snapshot(
    tx: &mut TenantTx,
    caller: &Caller,
    row: &Row,
    reason: VersionReason,
    now: DateTime<Utc>,
) -> Result<AffidavitVersion, WarrantError> {
    let text = row.content()?.affidavit.unwrap_or_default();
    let last: Option<i32> =
        sqlx::query_scalar("SELECT max(number) FROM affidavit_versions WHERE warrant_id = $1")
            .bind(row.id)
            .fetch_one(tx.conn())
            .await?;
    let number = u32::try_from(last.unwrap_or(0))
        .ok()
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| WarrantError::Corrupt("affidavit version numbers exhausted".into()))?;
    let version = AffidavitVersion {
        number,
        sha256: sha256_hex(&text),
        text,
        reason,
        ai_draft: row.ai(),
    };
    sqlx::query(
        "INSERT INTO affidavit_versions (warrant_id, number, text, sha256, reason, ai_draft, \
         created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(row.id)
    .bind(i32::try_from(number).map_err(|e| WarrantError::Corrupt(e.to_string()))?)
    .bind(&version.text)
    .bind(&version.sha256)
    .bind(to_json(&reason)?.as_str().unwrap_or_default().to_owned())
    .bind(version.ai_draft.as_ref().map(to_json).transpose()?)
    .bind(caller.user_id())
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(version)
}

/// Every kept affidavit version of a warrant, oldest first; each is checked against its hash.
pub async fn versions(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
) -> Result<Vec<StoredVersion>, WarrantError> {
    let row = load_visible(tx, caller, id, false, now_ms()).await?;
    record_view(tx, caller, &row, "versions").await?;
    let rows = sqlx::query_as::<_, VersionRow>(
        "SELECT number, text, sha256, reason, ai_draft, created_by, created_at \
         FROM affidavit_versions WHERE warrant_id = $1 ORDER BY number",
    )
    .bind(id)
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter()
        .map(|r| {
            let number = r.number;
            let version = AffidavitVersion {
                number: u32::try_from(number).map_err(|e| WarrantError::Corrupt(e.to_string()))?,
                text: r.text,
                sha256: r.sha256,
                reason: parse("reason", json!(r.reason))?,
                ai_draft: r.ai_draft.map(|d| parse("ai_draft", d)).transpose()?,
            };
            if !version.verify() {
                return Err(WarrantError::Corrupt(format!(
                    "affidavit version {number} of {id} does not match its SHA-256"
                )));
            }
            Ok(StoredVersion {
                version,
                created_by: r.created_by,
                created_at: r.created_at,
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    number: i32,
    text: String,
    sha256: String,
    reason: String,
    ai_draft: Option<Value>,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
}

/// The line diff between two kept versions (either order); 404 for a version that does not exist.
pub async fn diff(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
    from: u32,
    to: u32,
) -> Result<VersionDiff, WarrantError> {
    let all = versions(tx, caller, id).await?;
    let find = |n: u32| {
        all.iter()
            .find(|v| v.version.number == n)
            .map(|v| &v.version)
            .ok_or(WarrantError::NotFound)
    };
    Ok(diff_versions(find(from)?, find(to)?))
}

/// The judge queue: pending_judge warrants, exigent first, then urgent, then oldest in the queue.
pub async fn queue(
    tx: &mut TenantTx,
    caller: &Caller,
    limit: u32,
) -> Result<Vec<WarrantSummary>, WarrantError> {
    let now = now_ms();
    let rows = sqlx::query_as::<_, Row>(concat!(
        "SELECT ",
        columns!(),
        " FROM warrants WHERE state = 'pending_judge' \
         ORDER BY CASE urgency WHEN 'exigent' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END, \
                  queued_at, id LIMIT $1"
    ))
    .bind(i64::from(limit.clamp(1, MAX_PAGE)))
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .filter(|r| visible(caller, r, now))
        .map(|r| r.view(caller, now).map(WarrantSummary::from))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Seals

/// A judge's seal order.
#[derive(Debug, Clone, Default)]
pub struct SealOrder {
    pub order_reference: String,
    pub reason: String,
    /// `None`: the type's `sealMonths` from today, or until unsealed.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What a judge does to a seal.
#[derive(Debug, Clone)]
pub enum SealAction {
    Seal(SealOrder),
    /// A later expiry (`None`: the type's `sealMonths` past the current expiry).
    Renew {
        order_reference: String,
        expires_at: Option<DateTime<Utc>>,
    },
    Unseal {
        order_reference: String,
        reason: String,
    },
}

impl SealAction {
    pub fn audit_action(&self) -> &'static str {
        match self {
            SealAction::Seal(_) => SEALED,
            SealAction::Renew { .. } => SEAL_RENEWED,
            SealAction::Unseal { .. } => UNSEALED,
        }
    }
}

/// The seal steps, taken like transitions (`POST …/actions/{step}`): `seal` an unsealed warrant,
/// `renew-seal` or `unseal` a sealed one (judges).
pub const SEAL_STEPS: [&str; 3] = ["seal", "renew-seal", "unseal"];

pub const SEALED: &str = "warrant.sealed";
pub const SEAL_RENEWED: &str = "warrant.seal_renewed";
pub const UNSEALED: &str = "warrant.unsealed";

/// Seals, renews or unseals a warrant (judges; the core refuses anyone else) and records
/// `warrant.sealed`, `warrant.seal_renewed` or `warrant.unsealed`.
pub async fn seal(
    tx: &mut TenantTx,
    caller: &Caller,
    id: Uuid,
    what: &SealAction,
    expected_version: Option<i32>,
) -> Result<Warrant, WarrantError> {
    let (_, role) = user_of(caller)?;
    let now = now_ms();
    let mut row = load_visible(tx, caller, id, true, now).await?;
    check_version(&row, expected_version)?;
    let (ty, tz) = row.rules()?;
    let current = if row.sealed_at(now) {
        row.seal_order()?
    } else {
        None
    };
    let mut detail = json!({});
    let order = match (what, current) {
        (SealAction::Seal(order), None) => {
            let origin = if row.sealing_requested {
                crate::seal::SealOrigin::Application
            } else {
                crate::seal::SealOrigin::Motion
            };
            let expires_at = order
                .expires_at
                .or_else(|| crate::seal::default_expiry(&ty.sealing, now, tz));
            let seal = Seal::order(
                role,
                &order.order_reference,
                &order.reason,
                origin,
                now,
                expires_at,
            )?;
            detail["orderReference"] = json!(seal.order_reference);
            detail["origin"] = json!(seal.origin);
            follow_earlier_seals(tx, &mut row, seal).await?
        }
        (SealAction::Seal(_), Some(_)) => return Err(WarrantError::AlreadySealed),
        (_, None) => {
            // A judge is told the seal is gone; anyone else that only judges act on seals.
            if !crate::seal::may_seal(role) {
                return Err(crate::seal::SealError::NotAJudge(role).into());
            }
            return Err(WarrantError::NotSealed);
        }
        (
            SealAction::Renew {
                order_reference,
                expires_at,
            },
            Some(mut seal),
        ) => {
            let until = match (expires_at, seal.expires_at, ty.sealing.seal_months) {
                (Some(e), _, _) => *e,
                (None, Some(current), Some(months)) => {
                    crate::seal::renewal_expiry(current, months, tz)
                }
                _ => {
                    return Err(WarrantError::invalid(
                        "expiresAt",
                        "name the new expiry: the type sets no seal period",
                    ));
                }
            };
            seal.renew(role, now, order_reference, until)?;
            detail["orderReference"] = json!(order_reference.trim());
            seal
        }
        (
            SealAction::Unseal {
                order_reference,
                reason,
            },
            Some(mut seal),
        ) => {
            seal.unseal(role, now, order_reference, reason)?;
            detail["orderReference"] = json!(order_reference.trim());
            seal
        }
    };
    apply_seal(
        tx,
        caller,
        &mut row,
        &order,
        what.audit_action(),
        detail,
        now,
    )
    .await?;
    match what {
        SealAction::Seal(_) => seal_extensions(tx, caller, &row, &order, now).await?,
        SealAction::Renew { .. } | SealAction::Unseal { .. } => {
            follow_covered_extensions(tx, caller, &row, &order, what, role, now).await?;
        }
    }
    row.view(caller, now)
}

/// The issued extensions of `parent` (and theirs), oldest first.
async fn issued_extensions(tx: &mut TenantTx, parent: Uuid) -> Result<Vec<Uuid>, WarrantError> {
    Ok(sqlx::query_scalar(
        "WITH RECURSIVE family (id) AS ( \
             SELECT id FROM warrants WHERE parent_id = $1 \
             UNION SELECT w.id FROM warrants w JOIN family f ON w.parent_id = f.id) \
         SELECT w.id FROM family JOIN warrants w USING (id) \
         WHERE w.state IN ('issued', 'executed', 'returned', 'expired') ORDER BY w.id",
    )
    .bind(parent)
    .fetch_all(tx.conn())
    .await?)
}

/// A renewal or lifting of the seal of `parent` applies as well to the extensions its order
/// covers (sealed under the same order reference, still sealed), each recorded on its own with
/// `coveredBy`; an extension whose seal already runs as long is left as it is.
#[allow(clippy::too_many_arguments)]
async fn follow_covered_extensions(
    tx: &mut TenantTx,
    caller: &Caller,
    parent: &Row,
    order: &Seal,
    what: &SealAction,
    role: Role,
    now: DateTime<Utc>,
) -> Result<(), WarrantError> {
    for id in issued_extensions(tx, parent.id).await? {
        let Some(mut row) = load(tx, id, true).await? else {
            continue;
        };
        if !row.sealed_at(now) {
            continue;
        }
        let Some(mut seal) = row.seal_order()? else {
            continue;
        };
        if seal.order_reference != order.order_reference {
            continue;
        }
        let mut detail = json!({ "coveredBy": parent.id, "coveredByNumber": parent.number });
        match what {
            SealAction::Renew {
                order_reference, ..
            } => {
                let Some(until) = order.expires_at else {
                    continue;
                };
                if seal.expires_at.is_none_or(|e| e >= until) {
                    continue;
                }
                seal.renew(role, now, order_reference, until)?;
                detail["orderReference"] = json!(order_reference.trim());
            }
            SealAction::Unseal {
                order_reference,
                reason,
            } => {
                seal.unseal(role, now, order_reference, reason)?;
                detail["orderReference"] = json!(order_reference.trim());
            }
            SealAction::Seal(_) => continue,
        }
        apply_seal(
            tx,
            caller,
            &mut row,
            &seal,
            what.audit_action(),
            detail,
            now,
        )
        .await?;
    }
    Ok(())
}

/// A new seal of `row` keeps the orders before it. A seal that lapsed without the expiry job
/// recording it yet is recorded lapsed first, as the job would have, so the chain never shows a
/// seal following a seal.
async fn follow_earlier_seals(
    tx: &mut TenantTx,
    row: &mut Row,
    mut seal: Seal,
) -> Result<Seal, WarrantError> {
    if row.sealed {
        row.version += 1;
        let lapse = json!({
            "reason": "expired",
            "expiredAt": row.seal_expires_at,
            "version": row.version,
        });
        audit(tx, &Caller::system(), UNSEALED, row, &[], lapse).await?;
    }
    if let Some(mut before) = row.seal_order()? {
        seal.earlier = std::mem::take(&mut before.earlier);
        seal.earlier.push(before);
    }
    Ok(seal)
}

/// Stores `order` as the row's seal and records `action` with `detail`.
async fn apply_seal(
    tx: &mut TenantTx,
    caller: &Caller,
    row: &mut Row,
    order: &Seal,
    action: &str,
    mut detail: Value,
    now: DateTime<Utc>,
) -> Result<(), WarrantError> {
    row.sealed = order.unsealed.is_none();
    row.seal_expires_at = order.expires_at;
    row.seal = Some(to_json(order)?);
    row.version += 1;
    row.updated_at = now;
    detail["expiresAt"] = json!(order.expires_at);
    detail["version"] = json!(row.version);
    save(tx, row).await?;
    audit(tx, caller, action, row, &[], detail).await
}

/// A sealing order covers the extensions issued from the warrant, which carry its content: each
/// one (and theirs) not under a seal of its own is sealed under the same order and expiry, each
/// recorded as `warrant.sealed` with `coveredBy` naming the warrant the order was made for. An
/// extension still being applied for stays with its author (who could no longer see it sealed);
/// the judge who issues it decides its seal.
async fn seal_extensions(
    tx: &mut TenantTx,
    caller: &Caller,
    parent: &Row,
    order: &Seal,
    now: DateTime<Utc>,
) -> Result<(), WarrantError> {
    for id in issued_extensions(tx, parent.id).await? {
        let Some(mut row) = load(tx, id, true).await? else {
            continue;
        };
        if row.sealed_at(now) {
            continue;
        }
        cover(tx, caller, &mut row, parent, order, now).await?;
    }
    Ok(())
}

/// Seals `row` under `parent`'s order, recorded as `warrant.sealed` with `coveredBy`.
async fn cover(
    tx: &mut TenantTx,
    caller: &Caller,
    row: &mut Row,
    parent: &Row,
    order: &Seal,
    now: DateTime<Utc>,
) -> Result<(), WarrantError> {
    let mut seal = order.clone();
    seal.earlier = Vec::new();
    seal.origin = crate::seal::SealOrigin::Motion;
    let seal = follow_earlier_seals(tx, row, seal).await?;
    let detail = json!({
        "orderReference": seal.order_reference,
        "origin": seal.origin,
        "coveredBy": parent.id,
        "coveredByNumber": parent.number,
    });
    apply_seal(tx, caller, row, &seal, SEALED, detail, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_text_is_refused_naming_its_field() {
        let content = WarrantContent {
            items_sought: vec!["ok".into(), "x".repeat(MAX_FIELD_CHARS + 1)],
            ..Default::default()
        };
        match check_content(&content) {
            Err(WarrantError::Invalid { field, .. }) => assert_eq!(field, "content.itemsSought[1]"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_ai_assistance_names_its_tool() {
        let ai = AiAssistance {
            tool: " ".into(),
            draft: "d".into(),
        };
        assert!(matches!(check_ai(&ai), Err(WarrantError::Invalid { .. })));
    }
}
