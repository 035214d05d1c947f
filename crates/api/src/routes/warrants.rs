//! Warrants: applications, the transitions of their life (`POST …/actions/{action}`), affidavit
//! versions and diffs, seals, the judge queue and review statistics. The matrix says who may use
//! each route at all; which role may take which step, in which state, is the warrant workflow's
//! (`writ_warrant_workflow::transition`) and nothing here decides it. A step the workflow refuses
//! to the caller is audited as `authz.denied`; an illegal one answers 409 with the
//! `allowedActions`, an incomplete application 422 with every field in `errors`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, patch, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use writ_auth_mfa::{Permission, Role};
use writ_tenancy::TenantTx;
use writ_warrant_workflow::store::{
    self, ActionRequest, AiAssistance, ListFilter, NewWarrant, ReturnFiling, SealAction, SealOrder,
    WarrantPatch,
};
use writ_warrant_workflow::{
    Action, ReviewRoute, TransitionError, Urgency, WarrantContent, WarrantError, WarrantState,
    stats,
};

use crate::ApiError;
use crate::auth::AgencyUser;
use crate::error::Problem;
use crate::json::{Json, JsonOrEmpty, Path, query_pairs};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_warrant)
        .service(list_warrants)
        .service(get_warrant)
        .service(patch_warrant)
        .service(act_on_warrant)
        .service(list_versions)
        .service(diff_versions)
        .service(service_copy)
        .service(judge_queue)
        .service(warrant_stats);
}

/// What a failed domain call answers: a plain problem, or one with members of its own.
type Reply = Result<HttpResponse, ApiError>;

/// Commits the request's work, or gives it up and answers why. A step the workflow refuses to
/// this caller is a denial (audited); a refused transition carries the actions allowed instead,
/// an incomplete application every field.
async fn settle<T>(
    user: &AgencyUser,
    req: &HttpRequest,
    permission: Permission,
    tx: TenantTx,
    outcome: Result<T, WarrantError>,
) -> Result<T, Reply> {
    let e = match outcome {
        Ok(v) => {
            tx.commit().await.map_err(|e| Err(e.into()))?;
            return Ok(v);
        }
        Err(e) => e,
    };
    if let Err(rollback) = tx.rollback().await {
        return Err(Err(rollback.into()));
    }
    let api = ApiError::from_domain(&e);
    if let ApiError::Forbidden(reason) = api {
        return Err(Err(user.refuse(permission, reason).await));
    }
    // Acting on a warrant another judge holds is refused for who the caller is: recorded as a
    // denial, answered as the conflict it also is (the holder may release it).
    if let WarrantError::Transition(t @ TransitionError::ClaimedByAnotherJudge { .. }) = &e {
        let refused = user.refuse(permission, t.to_string()).await;
        if !matches!(refused, ApiError::Forbidden(_)) {
            return Err(Err(refused));
        }
    }
    let mut extensions = Map::new();
    match &e {
        WarrantError::Transition(t) => {
            if let Some(allowed) = t.allowed_actions() {
                extensions.insert("allowedActions".into(), json!(allowed));
            }
        }
        WarrantError::Incomplete(i) => {
            let errors: Vec<Value> = i
                .problems
                .iter()
                .map(|p| json!({ "field": p.path(), "reason": p.to_string(), "problem": p.reason }))
                .collect();
            extensions.insert("errors".into(), Value::Array(errors));
        }
        WarrantError::Execution(refusal) => {
            extensions.insert("refusal".into(), json!(refusal));
        }
        _ => {}
    }
    if extensions.is_empty() {
        return Err(Err(api));
    }
    let mut problem = api.problem();
    problem.extensions.extend(extensions);
    problem.instance = Some(req.path().to_owned());
    problem.request_id = crate::auth::request_id(req);
    Err(Ok(problem.to_response()))
}

/// Runs `$call` in the request's transaction and settles it; returns from the handler on failure.
macro_rules! settled {
    ($user:expr, $req:expr, $permission:expr, |$tx:ident| $call:expr) => {{
        let mut $tx = $user.begin().await?;
        let outcome = $call.await;
        match settle(&$user, &$req, $permission, $tx, outcome).await {
            Ok(v) => v,
            Err(reply) => return reply,
        }
    }};
}

fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
    ApiError::Validation {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Query parameters: known names only, each at most once.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(req: &HttpRequest, known: &[&str]) -> Result<Self, ApiError> {
        let pairs = query_pairs(req)?;
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {name:?}; known: {}",
                    known.join(", ")
                )));
            }
            if pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(ApiError::bad_request(format!(
                    "query parameter {name:?} given twice"
                )));
            }
        }
        Ok(Self(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.get(name)
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.to_utc())
                    .map_err(|_| {
                        invalid(name, "must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z")
                    })
            })
            .transpose()
    }

    fn uuid(&self, name: &str) -> Result<Option<Uuid>, ApiError> {
        self.get(name)
            .map(|v| Uuid::parse_str(v).map_err(|_| invalid(name, "must be a UUID")))
            .transpose()
    }

    fn limit(&self) -> Result<u32, ApiError> {
        match self.get("limit") {
            None => Ok(store::DEFAULT_PAGE),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=store::MAX_PAGE).contains(&n) => Ok(n),
                _ => Err(invalid(
                    "limit",
                    format!("must be an integer from 1 to {}", store::MAX_PAGE),
                )),
            },
        }
    }
}

/// A wire enum value (`snake_case` / `kebab-case` as serde names it), or 422 naming `field`.
fn wire<T: serde::de::DeserializeOwned>(field: &str, value: &str) -> Result<T, ApiError> {
    serde_json::from_value(json!(value)).map_err(|e| invalid(field, e.to_string()))
}

const WARRANT_EXAMPLE: fn() -> Value = || {
    json!({
        "id": "0190f4d2-6c1e-7a3b-9d4f-1e2a3b4c5d6e",
        "number": "W-2026-000847",
        "court": "d-minn",
        "type": "search",
        "timeZone": "America/Chicago",
        "urgency": "urgent",
        "state": "pending_judge",
        "version": 4,
        "content": {
            "place": "1200 Elm St, Apt 3, Minneapolis",
            "itemsSought": ["handgun, black, 9 mm", "cell phones"],
            "offense": "Minn. Stat. § 609.11",
            "affidavit": "On 2 March 2026 at 21:40 …"
        },
        "aiAssisted": false,
        "authorId": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e01",
        "approvals": {
            "supervisor": {"by": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e02", "at": "2026-03-02T21:52:10Z"},
            "prosecutor": {"by": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e03", "at": "2026-03-02T21:58:41Z"}
        },
        "revisions": 0,
        "submittedAt": "2026-03-02T21:47:03Z",
        "queuedAt": "2026-03-02T21:58:41Z",
        "firstOpenedAt": null,
        "openedAt": null,
        "decidedAt": null,
        "decidedBy": null,
        "issuedAt": null,
        "executionDeadline": null,
        "nightService": false,
        "reminderSentAt": null,
        "executedAt": null,
        "executedBy": null,
        "sealingRequested": false,
        "sealed": false,
        "allowedActions": ["claim"],
        "createdAt": "2026-03-02T21:40:12Z",
        "updatedAt": "2026-03-02T21:58:41Z"
    })
};

/// A warrant as listings and the queue show it: no content.
const WARRANT_SUMMARY_EXAMPLE: fn() -> Value = || {
    let mut w = WARRANT_EXAMPLE();
    if let Some(fields) = w.as_object_mut() {
        fields.remove("content");
    }
    w
};

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AiAssistanceRequest {
    /// The tool's name (and version, where known).
    tool: String,
    /// The draft the tool produced, kept with every affidavit version.
    draft: String,
}

impl From<&AiAssistanceRequest> for AiAssistance {
    fn from(a: &AiAssistanceRequest) -> Self {
        AiAssistance {
            tool: a.tool.clone(),
            draft: a.draft.clone(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWarrantRequest {
    /// A court of the agency's `warrant-types` policy.
    court: String,
    /// One of the court's warrant types, e.g. `search`, `blood-draw`.
    #[serde(rename = "type")]
    type_key: String,
    /// `routine` (default), `urgent` or `exigent`: the judge queue's order.
    #[schema(value_type = Option<String>)]
    urgency: Option<Urgency>,
    /// `subject`, `place`, `itemsSought`, `offense`, `affidavit`, `trackedObject`,
    /// `recordsHolder`, `accounts`, `timeRange`; which are required depends on the type.
    #[schema(value_type = Object)]
    #[serde(default)]
    content: WarrantContent,
    /// Present when an AI tool drafted the affidavit.
    ai_assistance: Option<AiAssistanceRequest>,
    /// Ask the judge to seal the warrant; the type's default when absent.
    sealing_requested: Option<bool>,
}

/// Open an application
///
/// A new warrant application in draft (officer), numbered per agency (`W-2026-000847`); audited
/// as `warrant.created`. Court and type must be in the agency's `warrant-types` policy.
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    request_body(content = CreateWarrantRequest, example = json!({
        "court": "d-minn", "type": "search", "urgency": "urgent",
        "content": {"place": "1200 Elm St, Apt 3, Minneapolis", "itemsSought": ["handgun, black, 9 mm"],
            "offense": "Minn. Stat. § 609.11", "affidavit": "On 2 March 2026 at 21:40 …"},
        "aiAssistance": {"tool": "DraftOne 2.3", "draft": "On March 2 …"}})),
    responses((status = 201, description = "The application, in draft", body = serde_json::Value,
            example = WARRANT_EXAMPLE),
        (status = 422, description = "Unknown court or type, a field too long (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[post("/v1/warrants")]
pub async fn create_warrant(
    user: AgencyUser,
    req: HttpRequest,
    body: Json<CreateWarrantRequest>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::WarrantsCreate).await?;
    let new = NewWarrant {
        court: body.court.clone(),
        type_key: body.type_key.clone(),
        urgency: body.urgency.unwrap_or_default(),
        content: body.content.clone(),
        ai: body.ai_assistance.as_ref().map(AiAssistance::from),
        sealing_requested: body.sealing_requested,
    };
    let w = settled!(user, req, Permission::WarrantsCreate, |tx| store::create(
        &mut tx,
        user.caller(),
        &new
    ));
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/warrants/{}", w.id)))
        .json(w))
}

/// List warrants
///
/// The agency's warrants, newest first, a page at a time, without the sealed ones the caller may
/// not see (officer, supervisor, prosecutor, judge, agency_admin). Each is a summary: where it
/// stands and who acts on it, without its content, AI draft, reasons, return or seal order, which
/// `GET /v1/warrants/{id}` reads (and records).
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(
        ("state" = Option<String>, Query, description = "e.g. draft, pending_judge, issued"),
        ("type" = Option<String>, Query, description = "A warrant type key, e.g. search"),
        ("author" = Option<Uuid>, Query, description = "The author's user id"),
        ("court" = Option<String>, Query, description = "A court key"),
        ("from" = Option<DateTime<Utc>>, Query, description = "Created at or after (RFC 3339)"),
        ("to" = Option<DateTime<Utc>>, Query, description = "Created before (RFC 3339)"),
        ("cursor" = Option<String>, Query, description = "Opaque: the nextCursor of the previous page"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Per page (default 50)"),
    ),
    responses((status = 200, description = "One page: `items` and `nextCursor`", body = serde_json::Value,
            example = json!({"items": [WARRANT_SUMMARY_EXAMPLE()], "nextCursor": null})),
        (status = 400, description = "An unknown or repeated query parameter (`bad-request`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "A parameter's value is invalid (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/warrants")]
pub async fn list_warrants(user: AgencyUser, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    user.require(Permission::WarrantsRead).await?;
    let p = Params::parse(
        &req,
        &[
            "state", "type", "author", "court", "from", "to", "cursor", "limit",
        ],
    )?;
    let filter = ListFilter {
        state: p
            .get("state")
            .map(|s| wire::<WarrantState>("state", s))
            .transpose()?,
        type_key: p.get("type").map(str::to_owned),
        author: p.uuid("author")?,
        court: p.get("court").map(str::to_owned),
        from: p.time("from")?,
        to: p.time("to")?,
    };
    let cursor = p
        .get("cursor")
        .map(|c| {
            Uuid::parse_str(c).map_err(|_| invalid("cursor", "not a cursor this API returned"))
        })
        .transpose()?;
    let limit = p.limit()?;
    let page = settled!(user, req, Permission::WarrantsRead, |tx| store::list(
        &mut tx,
        user.caller(),
        &filter,
        cursor,
        limit
    ));
    Ok(HttpResponse::Ok().json(page))
}

/// Read a warrant
///
/// One warrant with the actions the caller may take now (`allowedActions`). A sealed warrant is
/// 404 for everyone but judges, prosecutors and agency_admin.
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The warrant")),
    responses((status = 200, description = "The warrant", body = serde_json::Value, example = WARRANT_EXAMPLE),
        (status = 404, description = "No such warrant, or sealed (`not-found`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/warrants/{id}")]
pub async fn get_warrant(
    user: AgencyUser,
    req: HttpRequest,
    id: Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::WarrantsRead).await?;
    let w = settled!(user, req, Permission::WarrantsRead, |tx| store::get(
        &mut tx,
        user.caller(),
        *id
    ));
    Ok(HttpResponse::Ok().json(w))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchWarrantRequest {
    /// The version the change is based on; another is 409 `stale-version`.
    version: i32,
    court: Option<String>,
    #[serde(rename = "type")]
    type_key: Option<String>,
    #[schema(value_type = Option<String>)]
    urgency: Option<Urgency>,
    /// Replaces the whole content.
    #[schema(value_type = Option<Object>)]
    content: Option<WarrantContent>,
    /// Declares (never withdraws) an AI tool's part.
    ai_assistance: Option<AiAssistanceRequest>,
    sealing_requested: Option<bool>,
}

/// Edit a draft
///
/// Changes a draft (its author only), audited as `warrant.updated`. `version` must be the
/// warrant's current one.
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The warrant")),
    request_body(content = PatchWarrantRequest, example = json!({"version": 1,
        "content": {"place": "1200 Elm St, Apt 3", "itemsSought": ["handgun"], "offense": "§ 609.11",
            "affidavit": "On 2 March 2026 …"}})),
    responses((status = 200, description = "The draft as changed", body = serde_json::Value, example = WARRANT_EXAMPLE),
        (status = 404, description = "No such warrant (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Not a draft (`conflict`), or an older version (`stale-version`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Unknown court or type, a field too long (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[patch("/v1/warrants/{id}")]
pub async fn patch_warrant(
    user: AgencyUser,
    req: HttpRequest,
    id: Path<Uuid>,
    body: Json<PatchWarrantRequest>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::WarrantsCreate).await?;
    let changes = WarrantPatch {
        court: body.court.clone(),
        type_key: body.type_key.clone(),
        urgency: body.urgency,
        content: body.content.clone(),
        ai: body.ai_assistance.as_ref().map(AiAssistance::from),
        sealing_requested: body.sealing_requested,
    };
    let w = settled!(user, req, Permission::WarrantsCreate, |tx| store::patch(
        &mut tx,
        user.caller(),
        *id,
        &changes,
        body.version
    ));
    Ok(HttpResponse::Ok().json(w))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReturnRequest {
    /// `inventory` or `not_executed`.
    kind: String,
    /// What was seized (`inventory`; may be empty).
    #[serde(default)]
    inventory: Vec<String>,
    /// Why it was not executed (`not_executed`).
    note: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionRequestBody {
    /// The version the caller acts on; another is 409 `stale-version`.
    version: Option<i32>,
    /// Required for `return-for-revision` and `reject`; kept for `withdraw`.
    reason: Option<String>,
    /// `supervisor-approve` where prosecutor review is optional: `prosecutor` (default) or `judge`.
    route: Option<String>,
    /// `issue`: the judge authorizes execution outside the daytime window.
    #[serde(default)]
    night_service: bool,
    /// `issue` of a tracking-device warrant: the days the device may be used, at most the type's
    /// limit (federal 45); default that limit. Refused for other types.
    tracking_use_days: Option<u32>,
    /// `execute`: when (default now).
    executed_at: Option<DateTime<Utc>>,
    /// `file-return`.
    #[serde(rename = "return")]
    filing: Option<ReturnRequest>,
    /// `seal`, `renew-seal`, `unseal`: the court order.
    order_reference: Option<String>,
    /// `seal`, `renew-seal`: when the seal ends (default: the type's seal period, or never).
    expires_at: Option<DateTime<Utc>>,
}

fn filing(r: &ReturnRequest) -> Result<ReturnFiling, ApiError> {
    match r.kind.as_str() {
        "inventory" => Ok(ReturnFiling::Inventory(r.inventory.clone())),
        "not_executed" if r.inventory.is_empty() => Ok(ReturnFiling::NotExecuted {
            note: r.note.clone(),
        }),
        "not_executed" => Err(invalid(
            "return.inventory",
            "a return of a warrant not executed lists no inventory",
        )),
        _ => Err(invalid("return.kind", "must be inventory or not_executed")),
    }
}

/// Act on a warrant
///
/// One step of the warrant's life, in one transaction with its audit entry: `submit`,
/// `supervisor-approve`, `prosecutor-approve`, `return-for-revision` (reason), `claim` (judge),
/// `reject` (reason), `issue` (judge, step-up), `execute` (`executedAt`), `file-return`
/// (`return`), `withdraw`, `extend` (answers the new linked draft, 201), and the judge's `seal`,
/// `renew-seal`, `unseal` (`orderReference`, `reason`, `expiresAt`). Nobody reviews, claims or
/// issues a warrant they authored.
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The warrant"),
        ("action" = String, Path, description = "e.g. submit, claim, issue, execute, file-return, seal")),
    request_body(content = Option<ActionRequestBody>, description = "The action's parameters; \
        may be left out when it takes none (then no `version` check)",
        example = json!({"version": 5, "nightService": false})),
    responses((status = 200, description = "The warrant after the step", body = serde_json::Value, example = WARRANT_EXAMPLE),
        (status = 201, description = "`extend`: the extension request, a draft linked to the original",
            body = serde_json::Value),
        (status = 404, description = "No such warrant, or sealed (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Not allowed now; `allowedActions` lists what is (`illegal-transition`, \
            `claimed-by-another-judge`, `approvals-missing`, `execution-window-closed`, `execution-window-open`, \
            `warrant-expired`, `outside-daytime-window`, `execution-before-issue`, `stale-version`, `conflict`)",
            body = Problem, content_type = "application/problem+json",
            example = json!({"type": "urn:writ:problem:illegal-transition", "title": "Conflict", "status": 409,
                "detail": "claim is not allowed while the warrant is draft; allowed: none",
                "instance": "/v1/warrants/0190f4d2-6c1e-7a3b-9d4f-1e2a3b4c5d6e/actions/claim",
                "requestId": "4f7c2a9e-1d3b-4c5a-8e6f-7a8b9c0d1e2f", "allowedActions": []})),
        (status = 422, description = "A missing reason, return or seal order; an incomplete application lists every \
            field in `errors` (`validation`)", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "urn:writ:problem:validation", "title": "Unprocessable Entity", "status": 422,
                "detail": "place: place is required",
                "errors": [{"field": "place", "reason": "place is required", "problem": "missing"},
                    {"field": "affidavit", "reason": "affidavit still holds the placeholder \"[INSERT FACTS]\"",
                     "problem": "placeholder"}]}))))]
#[post("/v1/warrants/{id}/actions/{action}")]
pub async fn act_on_warrant(
    user: AgencyUser,
    req: HttpRequest,
    path: Path<(Uuid, String)>,
    body: JsonOrEmpty<ActionRequestBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, name) = path.into_inner();
    if store::SEAL_STEPS.contains(&name.as_str()) {
        return seal_action(user, req, id, &name, body.into_inner()).await;
    }
    let action: Action = serde_json::from_value(json!(name)).map_err(|_| {
        invalid(
            "action",
            format!(
                "unknown action {name:?}; one of {}, {}",
                Action::ALL.map(Action::as_str).join(", "),
                store::SEAL_STEPS.join(", ")
            ),
        )
    })?;
    let permission = if action == Action::Issue {
        Permission::WarrantsIssue
    } else {
        Permission::WarrantsAct
    };
    user.require(permission).await?;
    let body = body.into_inner();
    let input = ActionRequest {
        reason: body.reason.clone(),
        route: body
            .route
            .as_deref()
            .map(|r| wire::<ReviewRoute>("route", r))
            .transpose()?,
        // The matrix demands the step-up for issuing; having passed it is what the core asks.
        stepped_up: permission.needs_step_up(),
        night_service: body.night_service,
        tracking_use_days: body.tracking_use_days,
        executed_at: body.executed_at,
        filing: body.filing.as_ref().map(filing).transpose()?,
    };
    let applied = settled!(user, req, permission, |tx| store::apply(
        &mut tx,
        user.caller(),
        id,
        action,
        &input,
        body.version
    ));
    Ok(match applied.child {
        Some(child) => HttpResponse::Created()
            .insert_header((header::LOCATION, format!("/v1/warrants/{}", child.id)))
            .json(child),
        None => HttpResponse::Ok().json(applied.warrant),
    })
}

async fn seal_action(
    user: AgencyUser,
    req: HttpRequest,
    id: Uuid,
    name: &str,
    body: ActionRequestBody,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::WarrantsSeal).await?;
    let order_reference = body.order_reference.clone().unwrap_or_default();
    let what = match name {
        "seal" => SealAction::Seal(SealOrder {
            order_reference,
            reason: body.reason.clone().unwrap_or_default(),
            expires_at: body.expires_at,
        }),
        "renew-seal" => SealAction::Renew {
            order_reference,
            expires_at: body.expires_at,
        },
        _ => SealAction::Unseal {
            order_reference,
            reason: body.reason.clone().unwrap_or_default(),
        },
    };
    let w = settled!(user, req, Permission::WarrantsSeal, |tx| store::seal(
        &mut tx,
        user.caller(),
        id,
        &what,
        body.version
    ));
    Ok(HttpResponse::Ok().json(w))
}

/// List affidavit versions
///
/// Every submitted or returned-for-revision affidavit of the warrant, oldest first, with its
/// SHA-256 (and the AI draft it was built on, when there was one).
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The warrant")),
    responses((status = 200, description = "The versions", body = serde_json::Value,
            example = json!([{"number": 1, "text": "On 2 March 2026 …",
                "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "reason": "submitted", "createdBy": "0190f4a0-1b2c-7d3e-8f40-5a6b7c8d9e01",
                "createdAt": "2026-03-02T21:47:03Z"}])),
        (status = 404, description = "No such warrant, or sealed (`not-found`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/warrants/{id}/versions")]
pub async fn list_versions(
    user: AgencyUser,
    req: HttpRequest,
    id: Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::WarrantsRead).await?;
    let v = settled!(user, req, Permission::WarrantsRead, |tx| store::versions(
        &mut tx,
        user.caller(),
        *id
    ));
    Ok(HttpResponse::Ok().json(v))
}

/// Diff two affidavit versions
///
/// The line diff from version `a` to version `b` (either order): unified text and every line.
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The warrant"),
        ("a" = u32, Path, description = "From version"), ("b" = u32, Path, description = "To version")),
    responses((status = 200, description = "The diff", body = serde_json::Value,
            example = json!({"fromVersion": 1, "toVersion": 2, "fromSha256": "9f86d0…", "toSha256": "60303a…",
                "unified": "--- v1\n+++ v2\n@@ -1 +1 @@\n-at 21:40\n+at 21:45\n",
                "lines": [{"op": "delete", "oldLine": 1, "text": "at 21:40"},
                    {"op": "insert", "newLine": 1, "text": "at 21:45"}],
                "inserted": 1, "deleted": 1})),
        (status = 404, description = "No such warrant or version (`not-found`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/warrants/{id}/versions/{a}/diff/{b}")]
pub async fn diff_versions(
    user: AgencyUser,
    req: HttpRequest,
    path: Path<(Uuid, u32, u32)>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::WarrantsRead).await?;
    let (id, a, b) = path.into_inner();
    let d = settled!(user, req, Permission::WarrantsRead, |tx| store::diff(
        &mut tx,
        user.caller(),
        id,
        a,
        b
    ));
    Ok(HttpResponse::Ok().json(d))
}

/// The judge queue
///
/// Warrants waiting for a judge: exigent first, then urgent, then the longest waiting (judge).
/// Summaries, as in the listing: opening one (`GET /v1/warrants/{id}`) reads its content, is
/// recorded, and stops its on-call escalation.
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "At most (default 50)")),
    responses((status = 200, description = "The queue, first to review first", body = serde_json::Value,
            example = json!([WARRANT_SUMMARY_EXAMPLE()])),
        (status = 400, description = "An unknown or repeated query parameter (`bad-request`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/queue")]
pub async fn judge_queue(user: AgencyUser, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    user.require(Permission::WarrantQueueRead).await?;
    let limit = Params::parse(&req, &["limit"])?.limit()?;
    let q = settled!(user, req, Permission::WarrantQueueRead, |tx| store::queue(
        &mut tx,
        user.caller(),
        limit
    ));
    Ok(HttpResponse::Ok().json(q))
}

/// Review statistics
///
/// Per court: volume, time to first view and to decision (p50/p95 seconds from the first
/// submission), approval and first-pass rates, by type and by deciding judge. agency_admin reads
/// every court; a judge the courts whose on-call roster names them presiding judge (none
/// otherwise). Counts warrants first submitted in [`from`, `to`).
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(
        ("court" = Option<String>, Query, description = "One court; all when absent"),
        ("from" = Option<DateTime<Utc>>, Query, description = "Submitted at or after (RFC 3339)"),
        ("to" = Option<DateTime<Utc>>, Query, description = "Submitted before (RFC 3339)"),
    ),
    responses((status = 200, description = "One entry per court", body = serde_json::Value,
            example = json!([{"court": "d-minn", "submitted": 41, "opened": 40, "decided": 39, "issued": 37,
                "rejected": 2, "timeToFirstView": {"p50Seconds": 95.0, "p95Seconds": 1260.0},
                "timeToDecision": {"p50Seconds": 290.0, "p95Seconds": 2410.5},
                "approvalRate": 0.9487, "firstPassRate": 0.9189, "byType": [], "byJudge": []}])),
        (status = 400, description = "An unknown or repeated query parameter (`bad-request`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "A parameter's value is invalid (`validation`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/stats/warrants")]
pub async fn warrant_stats(user: AgencyUser, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    user.require(Permission::WarrantStatsRead).await?;
    let p = Params::parse(&req, &["court", "from", "to"])?;
    let filter = stats::StatsFilter {
        court: p.get("court").map(str::to_owned),
        from: p.time("from")?,
        to: p.time("to")?,
        presided_by: (user.principal().role == Role::Judge).then_some(user.principal().user_id),
    };
    let s = settled!(user, req, Permission::WarrantStatsRead, |tx| {
        stats::warrant_stats(&mut tx, &filter)
    });
    Ok(HttpResponse::Ok().json(s))
}

/// The service copy
///
/// The PDF to leave at the premises, made once at issue from the canonical issued document:
/// warrant number, issue time, execution deadline (court time and UTC), execution hours, the
/// document's SHA-256 on every page, and the canonical document embedded
/// (`issued-warrant.json`). Every download is the same bytes; each is audited as
/// `document.download`.
#[utoipa::path(tag = "warrants", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The warrant")),
    responses((status = 200, description = "The PDF; `X-Writ-Document-Sha256` is the SHA-256 of the embedded \
            canonical document", body = Vec<u8>, content_type = "application/pdf"),
        (status = 404, description = "No such warrant, or sealed (`not-found`)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "Not issued (`conflict`)", body = Problem,
            content_type = "application/problem+json")))]
#[get("/v1/warrants/{id}/service-copy")]
pub async fn service_copy(
    user: AgencyUser,
    req: HttpRequest,
    id: Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(Permission::WarrantsRead).await?;
    let copy = settled!(user, req, Permission::WarrantsRead, |tx| {
        store::service_copy(&mut tx, user.caller(), *id)
    });
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{}.pdf\"", copy.number),
        ))
        .insert_header(("x-writ-document-sha256", copy.document_sha256))
        .body(copy.pdf))
}
