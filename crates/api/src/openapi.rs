//! The OpenAPI document. Its paths are not listed here: `routes::configure` registers each handler
//! together with its `#[utoipa::path]` operation, so what is served and what is documented are
//! one list. This module adds what no single route says: the info, tags and security scheme, the
//! problem types, and the error responses every operation shares ([`CommonResponses`]).

use actix_web::App;
use serde_json::{Value, json};
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, Schema};
use utoipa::{Modify, OpenApi};

use crate::error::PROBLEM_JSON;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Writ API",
        description = "Electronic-warrant lifecycle for law-enforcement agencies.\n\n\
                       Authenticate with `POST /v1/auth/login` and send the access token as \
                       `Authorization: Bearer <token>`. Every error is RFC 9457 \
                       `application/problem+json` with a stable `type` \
                       (`urn:writ:problem:<slug>`); the `Problem` schema lists every type.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    components(schemas(crate::error::Problem)),
    tags(
        (name = "operations", description = "Health and readiness"),
        (name = "auth", description = "Login (password + TOTP), enrollment, sessions, step-up"),
        (name = "users", description = "The agency's users (agency_admin)"),
        (name = "platform", description = "Platform operators: agency onboarding"),
        (name = "policies", description = "Agency policies (agency_admin)"),
        (name = "warrants", description = "Warrant applications and their lifecycle: review, the judge queue, issue, execution, returns, seals, affidavit versions, statistics"),
        (name = "keys", description = "The agency's keys: versions, rotation, revocation, re-wrap progress"),
        (name = "on-call", description = "On-call rosters per court and the routing of queued warrants to the judge on call, with escalation"),
        (name = "notifications", description = "The alert outbox: e-mail, text and voice alerts and their delivery (agency_admin)"),
        (name = "documents", description = "Encrypted documents of warrants: streamed upload and download, legal holds, two-person erasure with signed certificates of deletion"),
        (name = "audit", description = "The agency's audit chain: entries, checkpoints, proofs, signed exports, signing keys, legal holds (auditor, agency_admin)")
    )
)]
pub struct ApiDoc;

/// Declares the bearer access token (ES256 JWT from `/v1/auth/login`).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// One problem type: `urn:writ:problem:<slug>`, its status, and what it means.
pub struct ProblemType {
    pub slug: &'static str,
    /// The status code, or `4xx` for the catch-all.
    pub status: &'static str,
    pub meaning: &'static str,
}

const fn problem(slug: &'static str, status: &'static str, meaning: &'static str) -> ProblemType {
    ProblemType {
        slug,
        status,
        meaning,
    }
}

/// Every problem type the server answers with (crates/api/src/error.rs and the domain crates'
/// error kinds). A test fails when the code names a slug that is missing here.
pub const PROBLEM_TYPES: &[ProblemType] = &[
    problem(
        "bad-request",
        "400",
        "The request could not be read: malformed JSON or query string, an unknown or repeated \
         query parameter.",
    ),
    problem(
        "banner-acknowledgement-required",
        "400",
        "Login without `bannerAck: true`; the `banner` member carries the system-use banner to \
         show.",
    ),
    problem("unauthorized", "401", "No bearer token was sent."),
    problem(
        "invalid-credentials",
        "401",
        "Wrong agency, username, password or TOTP code at login; never says which.",
    ),
    problem(
        "account-locked",
        "401",
        "Locked after five failed logins in 15 minutes; an administrator unlocks it, or the \
         agency's `auth.lockout` period ends it.",
    ),
    problem(
        "invalid-token",
        "401",
        "The access, refresh or enrollment token is malformed, expired, not signed by this \
         server, unknown or already used.",
    ),
    problem(
        "reauthentication-required",
        "401",
        "The session ended (idle for 30 minutes, or 12 hours old): log in again.",
    ),
    problem(
        "session-revoked",
        "401",
        "The session was revoked: logout, a spent refresh token presented again, deactivation or \
         a role change.",
    ),
    problem(
        "step-up-required",
        "401",
        "The operation needs a TOTP re-entry (`POST /v1/auth/reauth`) within the last 5 minutes.",
    ),
    problem(
        "invalid-code",
        "401",
        "The TOTP code is wrong; it counts towards the lockout.",
    ),
    problem(
        "forbidden",
        "403",
        "Authenticated, but the role lacks the permission (or the operation is refused for this \
         caller); the denial is audited.",
    ),
    problem(
        "not-found",
        "404",
        "No such resource, or one that belongs to another agency: the two are not told apart.",
    ),
    problem(
        "request-timeout",
        "408",
        "The request's body did not arrive within the server's deadline (30 seconds unless \
         configured otherwise); nothing was done.",
    ),
    problem(
        "method-not-allowed",
        "405",
        "The path exists, but not with this method; `Allow` lists the methods it takes.",
    ),
    problem(
        "conflict",
        "409",
        "The request conflicts with the current state.",
    ),
    problem(
        "stale-version",
        "409",
        "The request names an older version of the warrant: reload it and try again.",
    ),
    problem(
        "illegal-transition",
        "409",
        "The warrant action is not allowed in the warrant's current state; `allowedActions` lists \
         what is.",
    ),
    problem(
        "claimed-by-another-judge",
        "409",
        "Another judge has claimed the warrant; `allowedActions` lists what is left to the caller.",
    ),
    problem(
        "approvals-missing",
        "409",
        "The judge may not see the warrant before the approvals its type requires; \
         `allowedActions` lists what is allowed.",
    ),
    problem(
        "execution-window-closed",
        "409",
        "The warrant's execution window has closed: the action is no longer possible.",
    ),
    problem(
        "execution-window-open",
        "409",
        "The warrant's execution window is still open: the action is not possible yet.",
    ),
    problem(
        "execution-before-issue",
        "409",
        "The execution time is before the warrant was issued; `refusal` gives the times.",
    ),
    problem(
        "warrant-expired",
        "409",
        "The warrant expired before the execution time: executing it would be a warrantless \
         search; `refusal` gives the times.",
    ),
    problem(
        "outside-daytime-window",
        "409",
        "The execution time is outside the daytime window and the warrant carries no \
         night-service authority; `refusal` gives the window.",
    ),
    problem(
        "key-disabled",
        "409",
        "What was asked for is protected by a revoked key version: it cannot be read or signed.",
    ),
    problem(
        "warrant-not-in-review",
        "409",
        "A video oath session is opened only by the judge who claimed the warrant, in review.",
    ),
    problem(
        "video-not-configured",
        "409",
        "This server has no media provider (`WRIT_VIDEO_WEBHOOK_SECRET`): no session could connect.",
    ),
    problem(
        "session-open",
        "409",
        "The warrant already has an open video session.",
    ),
    problem(
        "session-superseded",
        "409",
        "The oath session belongs to an earlier review of the warrant: its judge no longer holds \
         it, or it was queued again since. The judge who holds it opens a new session.",
    ),
    problem(
        "session-not-connected",
        "409",
        "The oath, or swearing an amendment, needs the video session connected.",
    ),
    problem(
        "participant-absent",
        "409",
        "The oath is administered only while both the judge and the affiant have joined the \
         session (`/join`) and neither has left.",
    ),
    problem(
        "session-ended",
        "409",
        "The video session has ended (terminated or timed out).",
    ),
    problem(
        "oath-already-administered",
        "409",
        "The session already holds an oath record.",
    ),
    problem(
        "oath-missing",
        "409",
        "The step needs the oath administered first in this session.",
    ),
    problem(
        "oath-required",
        "409",
        "The court's rules require an oath record made after the last submission before issue.",
    ),
    problem(
        "judge-outside-jurisdiction",
        "409",
        "The court requires the judge to be within its jurisdiction when administering the oath.",
    ),
    problem(
        "amendment-not-pending",
        "409",
        "The amendment has already been sworn or withdrawn.",
    ),
    problem(
        "amendment-unsworn",
        "409",
        "An amendment entered during the oath session has not been sworn: the warrant cannot issue.",
    ),
    problem(
        "affidavit-unsigned",
        "409",
        "The affiant has not signed the affidavit as it stands (or edited it after signing): \
         request a signature on document `affidavit` and sign it before submitting.",
    ),
    problem(
        "judge-signature-required",
        "409",
        "The issuing judge has not signed the warrant as it stands (after any sworn amendment): \
         request a signature on document `warrant` and sign it before issuing.",
    ),
    problem(
        "not-signable-now",
        "409",
        "The affidavit is signed while the warrant is a draft, the warrant while it is before \
         the judge.",
    ),
    problem(
        "signature-request-not-pending",
        "409",
        "The signature request was signed or cancelled already.",
    ),
    problem(
        "document-outdated",
        "409",
        "The warrant changed after the signature was requested: the document made then is no \
         longer the warrant's; request a signature on it as it stands.",
    ),
    problem(
        "document-unavailable",
        "409",
        "The document to sign was erased.",
    ),
    problem(
        "document-in-signing-record",
        "409",
        "The document is signed or awaiting a signature, so it is not hidden: signatures stay \
         verifiable against the bytes signed. Cancel a pending request first.",
    ),
    problem(
        "certificate-unavailable",
        "409",
        "No signed audit checkpoint covers the warrant's events yet; retry in a moment.",
    ),
    problem(
        "recording-missing",
        "409",
        "The step needs the session's recording, which the provider has not delivered.",
    ),
    problem(
        "transcript-already-certified",
        "409",
        "The session's transcript has already been certified.",
    ),
    problem(
        "webhook-signature-invalid",
        "401",
        "A media-provider delivery whose HMAC-SHA256 signature does not verify; nothing changed.",
    ),
    problem(
        "webhook-timestamp-invalid",
        "401",
        "A media-provider delivery whose timestamp is missing or more than 5 minutes off; nothing \
         changed.",
    ),
    problem(
        "webhook-replayed",
        "401",
        "A media-provider delivery reusing the event id of one already taken, with another body; \
         nothing changed (the same body again is answered 200 `duplicate`).",
    ),
    problem(
        "payload-too-large",
        "413",
        "The body is over `WRIT_MAX_BODY_BYTES` (1 MiB by default).",
    ),
    problem(
        "unsupported-media-type",
        "415",
        "The body is not `application/json`; for a document upload, the content is not an \
         accepted type (PDF, PNG, JPEG, MP4, DOCX, plain text), judged from its bytes.",
    ),
    problem(
        "legal-hold",
        "409",
        "The document is under a legal hold: it cannot be erased until the hold is released.",
    ),
    problem(
        "range-not-satisfiable",
        "416",
        "The `Range` asked for names no byte of the document; `Content-Range: bytes */size` says \
         how long it is.",
    ),
    problem(
        "upload-stalled",
        "400",
        "The upload's body came too slowly (less than 16 KiB in `WRIT_UPLOAD_STALL_SECS`, 30 s by \
         default) and was ended; nothing was stored. Send it again.",
    ),
    problem(
        "erased",
        "410",
        "The document was crypto-erased: its key and ciphertext no longer exist.",
    ),
    problem(
        "export-expired",
        "410",
        "The export's bundle was removed after the server's retention period \
         (`WRIT_EXPORT_RETENTION_DAYS`); request a new export.",
    ),
    problem(
        "validation",
        "422",
        "Well-formed but invalid: `errors` names the field (a JSON path, a path or query \
         parameter) and the reason.",
    ),
    problem(
        "rate-limited",
        "429",
        "Over the caller's requests per minute; `Retry-After` says when to come back.",
    ),
    problem(
        "internal",
        "500",
        "A bug or an unexpected state; the detail is logged with the request id, never returned.",
    ),
    problem(
        "unavailable",
        "503",
        "A dependency (the database) is unavailable or briefly contended; retry after \
         `Retry-After` seconds.",
    ),
    problem(
        "key-provider-unavailable",
        "503",
        "The agency's key provider (AWS KMS, Azure Key Vault) is unavailable or not configured \
         on this server; retry after `Retry-After` seconds.",
    ),
    problem(
        "error",
        "4xx",
        "Any other 4xx status the HTTP framework answers with (rare); `status` is the real one.",
    ),
];

/// The problem document, as written by `Problem::to_response`: the RFC 9457 members, the request
/// id, and the extension members some types carry. Written out here because the struct flattens
/// its extensions into one map, which a derived schema can only call an object.
fn problem_schema() -> Schema {
    let string = |description: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
    };
    let field_error = ObjectBuilder::new()
        .property(
            "field",
            string("The field, as the caller wrote it: a JSON path (`value.days`, `items[2].name`, `body` for the whole document), a path or a query parameter.")
                .examples(["role"]),
        )
        .property(
            "reason",
            string("What is wrong with it, and what is expected.")
                .examples(["one of officer, supervisor, prosecutor, judge, agency_admin, auditor"]),
        )
        .property(
            "problem",
            string("An incomplete warrant application only: `missing` or `placeholder`."),
        )
        .required("field")
        .required("reason");
    let mut table = String::from(
        "An RFC 9457 problem document: every error response is one, as \
         `application/problem+json`.\n\nProblem types (`type` is `urn:writ:problem:<slug>`):\n\n\
         | slug | status | meaning |\n|---|---|---|\n",
    );
    for t in PROBLEM_TYPES {
        table.push_str(&format!(
            "| `{}` | {} | {} |\n",
            t.slug, t.status, t.meaning
        ));
    }
    let types: Vec<Value> = PROBLEM_TYPES
        .iter()
        .map(|t| {
            json!({
                "type": format!("urn:writ:problem:{}", t.slug),
                "status": t.status,
                "meaning": t.meaning,
            })
        })
        .collect();
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(table))
        .property(
            "type",
            string("`urn:writ:problem:<slug>`: the kind of problem, stable; one of the types listed above.")
                .examples(["urn:writ:problem:validation"]),
        )
        .property(
            "title",
            string("The status's reason phrase.").examples(["Unprocessable Entity"]),
        )
        .property(
            "status",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .description(Some("The HTTP status code."))
                .examples([422]),
        )
        .property(
            "detail",
            string("What went wrong in this occurrence, for a person; absent for `internal`.")
                .examples(["role: one of officer, supervisor, prosecutor, judge, agency_admin, auditor"]),
        )
        .property(
            "instance",
            string("The request's path.").examples(["/v1/users"]),
        )
        .property(
            "requestId",
            string("The request's `X-Request-Id` (echoed, or minted); quote it to operators.")
                .examples(["4f7c2a9e-1d3b-4c5a-8e6f-7a8b9c0d1e2f"]),
        )
        .property(
            "errors",
            ArrayBuilder::new()
                .items(field_error)
                .description(Some("`validation` only: the invalid field and why.")),
        )
        .property(
            "banner",
            string("`banner-acknowledgement-required` only: the system-use banner to show before login."),
        )
        .property(
            "allowedActions",
            ArrayBuilder::new()
                .items(ObjectBuilder::new().schema_type(Type::String))
                .description(Some(
                    "A refused warrant action (`illegal-transition`, `claimed-by-another-judge`, \
                     `approvals-missing`, `execution-window-closed`, `execution-window-open`): the \
                     actions the caller may take on the warrant now.",
                )),
        )
        .property(
            "refusal",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some(
                    "A refused execution (`execution-before-issue`, `warrant-expired`, \
                     `outside-daytime-window`): `reason` (`before_issue`, `expired`, \
                     `outside_daytime`) and the times or window that decided it.",
                )),
        )
        .required("type")
        .required("title")
        .required("status")
        .extensions(Some(
            ExtensionsBuilder::new()
                .add("x-problem-types", Value::Array(types))
                .build(),
        ))
        .into()
}

fn problem_example(slug: &str, status: u16, title: &str, detail: Option<&str>) -> Value {
    let mut example = json!({
        "type": format!("urn:writ:problem:{slug}"),
        "title": title,
        "status": status,
        "instance": "/v1/users",
        "requestId": "4f7c2a9e-1d3b-4c5a-8e6f-7a8b9c0d1e2f",
    });
    if let (Some(detail), Some(map)) = (detail, example.as_object_mut()) {
        map.insert("detail".into(), detail.into());
    }
    example
}

fn header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(description))
        .build()
}

/// A shared error response: problem+json with an example.
fn problem_response(description: &str, example: Value) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .example(Some(example))
            .build(),
    )
}

/// The shared error responses, by component name.
fn shared_responses() -> Vec<(&'static str, Response)> {
    let retry_after = || header("Seconds to wait before retrying.");
    vec![
        (
            "Unauthorized",
            problem_response(
                "Not authenticated: no bearer token (`unauthorized`), an invalid or expired one \
                 (`invalid-token`), or a session that ended (`reauthentication-required`, \
                 `session-revoked`)",
                problem_example(
                    "unauthorized",
                    401,
                    "Unauthorized",
                    Some("log in and send the access token as `Authorization: Bearer <token>`"),
                ),
            )
            .header("WWW-Authenticate", header("`Bearer realm=\"writ\"`"))
            .build(),
        ),
        (
            "Forbidden",
            problem_response(
                "The caller's role lacks the permission (`forbidden`); the denial is audited",
                problem_example(
                    "forbidden",
                    403,
                    "Forbidden",
                    Some("the role officer may not do this (usersRead)"),
                ),
            )
            .build(),
        ),
        (
            "TooManyRequests",
            problem_response(
                "Over the caller's rate limit (`rate-limited`): per user by role, or per source IP \
                 without a valid token",
                problem_example(
                    "rate-limited",
                    429,
                    "Too Many Requests",
                    Some("rate limit of 500 requests per minute exceeded; retry in 7 s"),
                ),
            )
            .header("Retry-After", retry_after())
            .header("RateLimit-Limit", header("Requests per minute allowed."))
            .header("RateLimit-Remaining", header("Requests left in the window."))
            .header("RateLimit-Reset", header("Seconds until the window resets."))
            .build(),
        ),
        (
            "InternalError",
            problem_response(
                "An unexpected error (`internal`); the detail is logged with the request id",
                problem_example("internal", 500, "Internal Server Error", None),
            )
            .build(),
        ),
        (
            "Unavailable",
            problem_response(
                "A dependency is unavailable: the database (`unavailable`) or the agency's key \
                 provider (`key-provider-unavailable`); retry later",
                problem_example(
                    "unavailable",
                    503,
                    "Service Unavailable",
                    Some("a dependency is unavailable; retry shortly"),
                ),
            )
            .header("Retry-After", retry_after())
            .build(),
        ),
        (
            "BadRequest",
            problem_response(
                "The body or query string could not be read (`bad-request`)",
                problem_example(
                    "bad-request",
                    400,
                    "Bad Request",
                    Some("malformed JSON: EOF while parsing a value at line 1 column 12"),
                ),
            )
            .build(),
        ),
        (
            "PayloadTooLarge",
            problem_response(
                "The body is over the configured limit (`payload-too-large`)",
                problem_example(
                    "payload-too-large",
                    413,
                    "Payload Too Large",
                    Some("request body exceeds the limit of 1048576 bytes"),
                ),
            )
            .build(),
        ),
        (
            "UnsupportedMediaType",
            problem_response(
                "The body is not `application/json` (`unsupported-media-type`)",
                problem_example(
                    "unsupported-media-type",
                    415,
                    "Unsupported Media Type",
                    Some("expected Content-Type: application/json"),
                ),
            )
            .build(),
        ),
        (
            "ValidationFailed",
            problem_response(
                "Well-formed but invalid (`validation`): `errors` names the field and the reason",
                json!({
                    "type": "urn:writ:problem:validation",
                    "title": "Unprocessable Entity",
                    "status": 422,
                    "detail": "role: one of officer, supervisor, prosecutor, judge, agency_admin, auditor",
                    "instance": "/v1/users",
                    "requestId": "4f7c2a9e-1d3b-4c5a-8e6f-7a8b9c0d1e2f",
                    "errors": [{
                        "field": "role",
                        "reason": "one of officer, supervisor, prosecutor, judge, agency_admin, auditor"
                    }]
                }),
            )
            .build(),
        ),
    ]
}

/// Liveness touches nothing that can be down.
const NEVER_UNAVAILABLE: &[&str] = &["/healthz"];

/// Adds, in one place, the error responses operations share: 401 and 403 to every secured one,
/// 429 to every one the rate limiter counts, 503 and 500 to every one (but liveness), and
/// 400/413/415/422 to those that read a body (422 also to those with path parameters). A response
/// an operation documents itself is kept; a secured operation's own 401 gets the token problems
/// added to its description.
pub struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .schemas
            .insert("Problem".into(), RefOr::T(problem_schema()));
        let shared = shared_responses();
        let unauthorized = shared
            .iter()
            .find(|(name, _)| *name == "Unauthorized")
            .map(|(_, r)| r.description.clone())
            .unwrap_or_default();
        for (name, response) in shared {
            components.responses.insert(name.into(), RefOr::T(response));
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_common(path, op, &unauthorized);
            }
        }
    }
}

fn add_common(path: &str, op: &mut Operation, unauthorized: &str) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = op.request_body.is_some();
    let has_path_params = path.contains('{');
    let responses = &mut op.responses.responses;
    let mut add = |status: &str, name: &str| {
        responses
            .entry(status.into())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    };
    if secured {
        add("401", "Unauthorized");
        add("403", "Forbidden");
    }
    if has_body {
        add("400", "BadRequest");
        add("413", "PayloadTooLarge");
        add("415", "UnsupportedMediaType");
    }
    if has_body || has_path_params {
        add("422", "ValidationFailed");
    }
    if !crate::ratelimit::exempt(path) {
        add("429", "TooManyRequests");
    }
    if !NEVER_UNAVAILABLE.contains(&path) {
        add("503", "Unavailable");
    }
    add("500", "InternalError");
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(own) = response {
            add_example(path, status, own);
        }
    }
    if secured && let Some(RefOr::T(own)) = responses.get_mut("401") {
        own.description = format!("{unauthorized}; or {}", own.description);
    }
}

/// The detail the server answers with for types whose detail never varies.
fn fixed_detail(slug: &str) -> Option<&'static str> {
    Some(match slug {
        "not-found" => "not found",
        "step-up-required" => {
            "this action needs a recent second-factor confirmation: POST /v1/auth/reauth"
        }
        "invalid-code" => "the one-time code is not correct or was already used",
        "invalid-credentials" => "the agency, username, password or one-time code is not correct",
        "key-provider-unavailable" => "the agency's key provider is unavailable; retry shortly",
        "unavailable" => "a dependency is unavailable; retry shortly",
        _ => return None,
    })
}

/// Gives an operation's own problem response an example of the first problem type its
/// description names, so the example shows that type rather than one made up from the schema.
/// `validation` is left to the schema's example: its `errors` would have to be invented.
fn add_example(path: &str, status: &str, response: &mut Response) {
    let Some(content) = response.content.get_mut(PROBLEM_JSON) else {
        return;
    };
    if content.example.is_some() {
        return;
    }
    let Some(slug) = response
        .description
        .split('`')
        .skip(1)
        .step_by(2)
        .find(|s| PROBLEM_TYPES.iter().any(|t| t.slug == *s))
    else {
        return;
    };
    let (Ok(code), true) = (status.parse::<u16>(), slug != "validation") else {
        return;
    };
    let title = actix_web::http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let mut example = problem_example(slug, code, title, fixed_detail(slug));
    if let Some(map) = example.as_object_mut() {
        map.insert("instance".into(), path.into());
    }
    content.example = Some(example);
}

/// Completes the document collected from the routes (`routes::mount`).
pub fn finish(mut openapi: Document) -> Document {
    CommonResponses.modify(&mut openapi);
    openapi
}

/// The OpenAPI document of the routes `writ serve` mounts, without a server: `writ openapi`.
pub fn document() -> Document {
    crate::routes::mount(App::new()).1
}

/// The OpenAPI document as served and as committed to openapi/openapi.json.
pub fn document_json() -> String {
    let mut json = document().to_pretty_json().unwrap_or_else(|_| "{}".into());
    json.push('\n');
    json
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::*;

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    fn source(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The string literal at the start of `s` (after whitespace), if there is one.
    fn literal(s: &str) -> Option<&str> {
        let rest = s.trim_start().strip_prefix('"')?;
        rest.find('"').map(|end| &rest[..end])
    }

    fn documented() -> BTreeSet<(String, String)> {
        let doc = document();
        let mut ops = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                ("get", &item.get),
                ("put", &item.put),
                ("post", &item.post),
                ("delete", &item.delete),
                ("patch", &item.patch),
                ("head", &item.head),
                ("options", &item.options),
                ("trace", &item.trace),
            ] {
                if op.is_some() {
                    ops.insert((method.to_owned(), path.clone()));
                }
            }
        }
        ops
    }

    /// Routes come only from the route macros in routes/*.rs, registered through
    /// `routes::configure`; the few routes outside it (app.rs: /metrics, /openapi.json,
    /// /docs/{_:.*}, the default service, and the 405 resources `routes::mount` adds per path)
    /// are not API operations. So the macros and the document must list the same operations.
    #[test]
    fn every_routed_operation_is_documented_and_every_documented_one_routed() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&dir, &mut files);
        let mut routed = BTreeSet::new();
        for file in &files {
            let text = source(file);
            // This file names them in the check itself.
            if file.ends_with("openapi.rs") {
                continue;
            }
            for bypass in [
                "web::resource(\"",
                "web::scope(\"",
                ".route(\"",
                "web::route(",
            ] {
                assert!(
                    !text.contains(bypass),
                    "{}: routes are registered with a route macro and `routes::configure`, \
                     which documents them; `{bypass}` would serve a route the OpenAPI document \
                     does not list",
                    file.display()
                );
            }
            for line in text.lines() {
                let line = line.trim_start();
                for method in ["get", "post", "put", "patch", "delete"] {
                    if let Some(rest) = line.strip_prefix(&format!("#[{method}(")) {
                        let path = literal(rest).unwrap_or_else(|| panic!("{line}"));
                        routed.insert((method.to_owned(), path.to_owned()));
                    }
                }
            }
        }
        assert!(routed.len() > 30, "the scan found only {routed:?}");
        assert_eq!(routed, documented());
    }

    /// The slugs the code can answer with, wherever a problem type is named: `slug: "…"` (or a
    /// constant) in an `Unauthorized`, `Conflict` or `BadRequest` error, `unauthorized("…")`,
    /// `Problem::new(status, "…", …)`, the literals of `slug_for_status` and `status_and_slug`,
    /// and `urn:writ:problem:…`. Test modules are left out: they make up slugs of their own.
    fn slugs_in_code() -> BTreeSet<String> {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&crates).into_iter().flatten().flatten() {
            rust_files(&entry.path().join("src"), &mut files);
        }
        let texts: Vec<String> = files
            .iter()
            .filter(|f| !f.ends_with("openapi.rs") && !f.ends_with("tests.rs"))
            .map(|f| {
                let text = source(f);
                match text.find("#[cfg(test)]") {
                    Some(i) => text[..i].to_owned(),
                    None => text,
                }
            })
            .collect();
        let constant = |name: &str| {
            let decl = format!("const {name}: &str =");
            texts.iter().find_map(|t| {
                t.find(&decl)
                    .and_then(|i| literal(&t[i + decl.len()..]))
                    .map(str::to_owned)
            })
        };
        // A literal, or a constant's value.
        let named = |rest: &str, slugs: &mut BTreeSet<String>| {
            if let Some(s) = literal(rest) {
                slugs.insert(s.to_owned());
                return;
            }
            let path: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let name = path.rsplit("::").next().unwrap_or_default();
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                let value =
                    constant(name).unwrap_or_else(|| panic!("slug constant {name} not found"));
                slugs.insert(value);
            }
        };
        // Functions and closures whose first parameter is the slug: `fn conflict(slug: &str, …)`,
        // `let unauthorized = |slug: &'static str, …|` (or without the type, as auth-mfa has it).
        let mut slug_takers = BTreeSet::from(["unauthorized".to_owned()]);
        for text in &texts {
            for pattern in ["(slug: &", "|slug: &"] {
                for (i, _) in text.match_indices(pattern) {
                    let before = text[..i].trim_end_matches([' ', '=']);
                    let name: String = before
                        .chars()
                        .rev()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    if !name.is_empty() && name != "new" {
                        slug_takers.insert(name);
                    }
                }
            }
        }
        let mut slugs = BTreeSet::new();
        for text in &texts {
            for (i, _) in text.match_indices("slug: ") {
                let before = &text[i.saturating_sub(120)..i];
                let in_error = ["Unauthorized {", "Conflict {", "BadRequest {", "Gone {"]
                    .iter()
                    .any(|v| before.contains(v));
                if in_error {
                    named(&text[i + "slug: ".len()..], &mut slugs);
                }
            }
            for name in &slug_takers {
                let call = format!("{name}(");
                for (i, _) in text.match_indices(&call) {
                    let whole_name = !text[..i]
                        .ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':');
                    if whole_name {
                        named(&text[i + call.len()..], &mut slugs);
                    }
                }
            }
            for (i, _) in text.match_indices("Problem::new(") {
                let args = &text[i + "Problem::new(".len()..];
                if let Some(s) = args.find(',').and_then(|c| literal(&args[c + 1..])) {
                    slugs.insert(s.to_owned());
                }
            }
            // `mod slug {` holds a domain module's slug constants.
            for f in ["fn slug_for_status(", "fn status_and_slug(", "mod slug {"] {
                let Some(i) = text.find(f) else { continue };
                // The function ends at the first closing brace at its own indentation.
                let line = text[..i].rfind('\n').map_or(0, |n| n + 1);
                let indent: String = text[line..i].chars().take_while(|c| *c == ' ').collect();
                let body = &text[i..];
                let body = &body[..body.find(&format!("\n{indent}}}")).unwrap_or(body.len())];
                for piece in body.split('"').skip(1).step_by(2) {
                    if !piece.is_empty()
                        && piece.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                    {
                        slugs.insert(piece.to_owned());
                    }
                }
            }
            for (i, _) in text.match_indices("urn:writ:problem:") {
                let s: String = text[i + "urn:writ:problem:".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                    .collect();
                if !s.is_empty() {
                    slugs.insert(s);
                }
            }
        }
        slugs
    }

    #[test]
    fn the_problem_types_listed_are_those_the_code_answers_with() {
        let listed: BTreeSet<String> = PROBLEM_TYPES.iter().map(|t| t.slug.to_owned()).collect();
        let found = slugs_in_code();
        for known in [
            "validation",
            "invalid-token",
            "step-up-required",
            "key-disabled",
            "error",
        ] {
            assert!(found.contains(known), "the scan missed {known}: {found:?}");
        }
        let missing: Vec<_> = found.difference(&listed).collect();
        assert!(
            missing.is_empty(),
            "problem types answered but not documented in PROBLEM_TYPES: {missing:?}"
        );
        let stale: Vec<_> = listed.difference(&found).collect();
        assert!(
            stale.is_empty(),
            "problem types documented that nothing answers with: {stale:?}"
        );
    }

    #[test]
    fn every_operation_has_a_summary_and_the_shared_error_responses() {
        let doc = serde_json::to_value(document()).unwrap_or_default();
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        assert!(!paths.is_empty());
        for (path, item) in &paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                let summary = op["summary"].as_str().unwrap_or_default();
                assert!(
                    !summary.is_empty() && summary.len() <= 40 && !summary.contains('\n'),
                    "{method} {path}: summary {summary:?}"
                );
                assert!(
                    op["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{method} {path}: no description"
                );
                let responses = op["responses"].as_object().cloned().unwrap_or_default();
                let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
                let mut expected = vec!["500"];
                if path != "/healthz" {
                    expected.push("503");
                }
                if path != "/healthz" && path != "/readyz" {
                    expected.push("429");
                }
                if secured {
                    expected.extend(["401", "403"]);
                }
                for status in expected {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path}: no {status}"
                    );
                }
                for (status, response) in &responses {
                    let described = response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty())
                        || response["$ref"].is_string();
                    assert!(described, "{method} {path} {status}: no description");
                }
            }
        }
    }
}
