//! The one place errors become HTTP: every failure leaves as RFC 9457 `application/problem+json`
//! with a stable `type`. A domain error says only what kind of failure it is
//! ([`writ_error_kind::Classify`]); [`ApiError::from_domain`] turns the kind into an `ApiError`,
//! and [`ApiError::status_and_slug`] decides every status and problem type in one match. Internal
//! details are logged with the request id, never returned.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use writ_agency_keys::{KeyLifecycleError, SealError, SignatureError};
use writ_audit_log::{AuditError, RetentionError};
use writ_auth_mfa::{AuthError, BANNER_ACKNOWLEDGEMENT_REQUIRED};
use writ_error_kind::{Classify, Dependency, ErrorKind};
use writ_keys::KeyError;
use writ_tenancy::TenancyError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem document (RFC 9457). Extension members are flattened in.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A stable URI naming the kind of problem, e.g. `urn:writ:problem:not-found`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(flatten, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(value_type = Object)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, detail: Option<String>) -> Self {
        Self {
            kind: format!("urn:writ:problem:{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            instance: None,
            request_id: None,
            extensions: serde_json::Map::new(),
        }
    }

    pub fn to_response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
            .body(body)
    }
}

/// The problem slug and default detail for a bare status (routing misses, framework errors).
pub fn slug_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad-request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not-found",
        405 => "method-not-allowed",
        409 => "conflict",
        413 => "payload-too-large",
        415 => "unsupported-media-type",
        422 => "validation",
        429 => "rate-limited",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "error",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be taken as it stands; `slug` names why: `bad-request` (malformed
    /// JSON or query string) or `banner-acknowledgement-required` (login without acknowledging the
    /// system-use banner, CJIS AC-8; the problem carries the banner).
    #[error("{detail}")]
    BadRequest { slug: &'static str, detail: String },
    /// 422: well-formed but invalid; names the field.
    #[error("{field}: {reason}")]
    Validation { field: String, reason: String },
    /// 401: not authenticated; `slug` names why (`invalid-credentials`, `account-locked`,
    /// `invalid-token`, `reauthentication-required`, `session-revoked`, `step-up-required`,
    /// `invalid-code`).
    #[error("{detail}")]
    Unauthorized { slug: &'static str, detail: String },
    /// 403: authenticated, but the role lacks the permission (the denial is audited).
    #[error("{0}")]
    Forbidden(String),
    /// 429: over the caller's rate limit; `Retry-After` says when to come back.
    #[error("rate limit of {limit} requests per minute exceeded; retry in {retry_after_secs} s")]
    TooManyRequests {
        limit: u32,
        retry_after_secs: u64,
        reset_secs: u64,
    },
    /// 429 `rate-limited`: the caller has as many of `what` (event streams, uploads streaming)
    /// open at once as allowed.
    #[error("at most {limit} {what} may be open per user at once; retry when one has ended")]
    TooManyAtOnce { what: &'static str, limit: usize },
    /// 408: the request's body did not arrive within the server's deadline.
    #[error("the request body did not arrive within {secs} s")]
    RequestTimeout { secs: u64 },
    /// 404: missing, or belonging to another agency (indistinguishable on purpose).
    #[error("not found")]
    NotFound,
    /// 409: conflicts with the current state; `slug` names the conflict: `conflict`, or
    /// `key-disabled` (what was asked for is protected by a revoked key version).
    #[error("{detail}")]
    Conflict { slug: &'static str, detail: String },
    /// 410: existed and is gone for good; `slug` names how (`erased`).
    #[error("{detail}")]
    Gone { slug: &'static str, detail: String },
    /// 413: body over the configured limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 415: not the content type this route reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 416: the `Range` names no byte of the content, `size` bytes long (`Content-Range:
    /// bytes */size` tells the client what there is).
    #[error("the range asked for is outside the content's {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    /// 503 with `Retry-After`: a dependency is unreachable; retry later. `key-provider-unavailable`
    /// for the key provider, `unavailable` otherwise. The detail is logged, not returned.
    #[error("{detail}")]
    Unavailable {
        dependency: Dependency,
        detail: String,
    },
    /// 500: a bug or an unexpected state; the detail is logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    /// 400 `bad-request`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest {
            slug: "bad-request",
            detail: detail.into(),
        }
    }

    /// 409 `conflict`.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Conflict {
            slug: writ_error_kind::CONFLICT,
            detail: detail.into(),
        }
    }

    /// 503; `detail` is logged only.
    pub fn unavailable(dependency: Dependency, detail: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            dependency,
            detail: detail.to_string(),
        }
    }

    /// The one way a domain error becomes an answer: by its kind. The error's own text (with
    /// what it wraps) is kept only where it is logged — for an unavailable dependency and for an
    /// internal error.
    pub fn from_domain<E: Classify + std::error::Error>(error: &E) -> Self {
        match error.kind() {
            ErrorKind::NotFound => ApiError::NotFound,
            ErrorKind::Invalid { field, reason } => ApiError::Validation { field, reason },
            ErrorKind::BadRequest { slug, detail } => ApiError::BadRequest { slug, detail },
            ErrorKind::Conflict { slug, detail } => ApiError::Conflict { slug, detail },
            ErrorKind::Gone { slug, detail } => ApiError::Gone { slug, detail },
            ErrorKind::TooLarge { limit } => ApiError::PayloadTooLarge {
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            },
            ErrorKind::UnsupportedMedia { detail } => ApiError::UnsupportedMediaType(detail),
            ErrorKind::RangeNotSatisfiable { size } => ApiError::RangeNotSatisfiable { size },
            ErrorKind::Forbidden { detail } => ApiError::Forbidden(detail),
            ErrorKind::Unauthorized { slug, detail } => ApiError::Unauthorized { slug, detail },
            ErrorKind::Unavailable { dependency } => ApiError::Unavailable {
                dependency,
                detail: error_chain(error),
            },
            ErrorKind::Internal => ApiError::Internal(error_chain(error)),
        }
    }

    pub fn problem(&self) -> Problem {
        let (status, slug) = self.status_and_slug();
        let detail = match self {
            ApiError::Internal(_) => None,
            ApiError::Unavailable {
                dependency: Dependency::KeyProvider,
                ..
            } => Some("the agency's key provider is unavailable; retry shortly".to_owned()),
            ApiError::Unavailable { .. } => {
                Some("a dependency is unavailable; retry shortly".to_owned())
            }
            other => Some(other.to_string()),
        };
        let mut p = Problem::new(status, slug, detail);
        match self {
            ApiError::Validation { field, reason } => {
                p.extensions.insert(
                    "errors".into(),
                    serde_json::json!([{ "field": field, "reason": reason }]),
                );
            }
            ApiError::BadRequest {
                slug: BANNER_ACKNOWLEDGEMENT_REQUIRED,
                ..
            } => {
                p.extensions
                    .insert("banner".into(), writ_auth_mfa::SYSTEM_USE_BANNER.into());
            }
            _ => {}
        }
        p
    }

    /// Every status and problem slug, decided here and nowhere else.
    pub fn status_and_slug(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { slug, .. } => (StatusCode::BAD_REQUEST, slug),
            ApiError::Validation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            ApiError::Unauthorized { slug, .. } => (StatusCode::UNAUTHORIZED, slug),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate-limited"),
            // A limit on concurrency, not on rate, but the same answer: come back later.
            ApiError::TooManyAtOnce { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate-limited"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not-found"),
            ApiError::RequestTimeout { .. } => (StatusCode::REQUEST_TIMEOUT, "request-timeout"),
            ApiError::Conflict { slug, .. } => (StatusCode::CONFLICT, slug),
            ApiError::Gone { slug, .. } => (StatusCode::GONE, slug),
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large")
            }
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type")
            }
            ApiError::RangeNotSatisfiable { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "range-not-satisfiable")
            }
            ApiError::Unavailable { dependency, .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                match dependency {
                    Dependency::KeyProvider => "key-provider-unavailable",
                    Dependency::Database | Dependency::Storage | Dependency::TimestampAuthority => {
                        "unavailable"
                    }
                },
            ),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// An error's text followed by what it wraps, for the log: a wrapper's own words can hide the
/// cause (`reading the input stream`). A source already at the end of the text is not repeated.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status_and_slug().0
    }

    fn error_response(&self) -> HttpResponse {
        self.response_with(serde_json::Map::new())
    }
}

impl ApiError {
    /// The answer to this error with extension members added to its problem: for a request
    /// that did part of what it asked before failing, what was done.
    pub fn response_with(
        &self,
        extensions: serde_json::Map<String, serde_json::Value>,
    ) -> HttpResponse {
        match self {
            ApiError::Internal(detail) => tracing::error!(error = %detail, "internal error"),
            ApiError::Unavailable { dependency, detail } => {
                tracing::warn!(%dependency, error = %detail, "dependency unavailable")
            }
            _ => {}
        }
        let mut problem = self.problem();
        problem.extensions.extend(extensions);
        let mut res = problem.to_response();
        match self {
            ApiError::Unavailable { .. } => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            // A stream just closed by the client is noticed at its next heartbeat; an upload
            // takes a while.
            ApiError::TooManyAtOnce { .. } => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("15"));
            }
            ApiError::TooManyRequests {
                limit,
                retry_after_secs,
                reset_secs,
            } => {
                let h = res.headers_mut();
                h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
                crate::ratelimit::insert_headers(h, *limit, 0, *reset_secs);
            }
            ApiError::Unauthorized { .. } => insert_www_authenticate(&mut res),
            ApiError::RangeNotSatisfiable { size } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    res.headers_mut().insert(header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        res
    }
}

fn insert_www_authenticate(res: &mut HttpResponse) {
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"writ\""),
    );
}

/// `From` for each domain error: by its kind, through [`ApiError::from_domain`], so `?` works in
/// handlers and no error is mapped twice.
macro_rules! from_domain_errors {
    ($($error:ty),+ $(,)?) => {$(
        impl From<$error> for ApiError {
            fn from(e: $error) -> Self {
                ApiError::from_domain(&e)
            }
        }
    )+};
}

from_domain_errors!(
    sqlx::Error,
    KeyError,
    TenancyError,
    AuditError,
    RetentionError,
    AuthError,
    KeyLifecycleError,
    SealError,
    SignatureError,
    writ_warrant_workflow::WarrantError,
    writ_notify::NotifyError,
    writ_documents::DocumentError,
    writ_esign::EsignError,
);

/// Turns actix's JSON extractor failures into problems: 413 over the limit, 415 wrong type,
/// 400 unreadable, 422 readable but wrong shape.
pub fn json_error(err: actix_web::error::JsonPayloadError, limit: usize) -> ApiError {
    use actix_web::error::JsonPayloadError as J;
    match err {
        J::Overflow { .. } | J::OverflowKnownLength { .. } => ApiError::PayloadTooLarge { limit },
        J::ContentType => {
            ApiError::UnsupportedMediaType("expected Content-Type: application/json".into())
        }
        J::Deserialize(e) if e.is_data() => ApiError::Validation {
            field: "body".into(),
            reason: e.to_string(),
        },
        J::Deserialize(e) => ApiError::bad_request(format!("malformed JSON: {e}")),
        other => ApiError::bad_request(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem_of(e: impl Into<ApiError>) -> Problem {
        e.into().problem()
    }

    /// A domain error of any kind, whose own text is internal and must never be answered.
    #[derive(Debug, thiserror::Error)]
    #[error("secret internal text")]
    struct OfKind(ErrorKind);

    impl Classify for OfKind {
        fn kind(&self) -> ErrorKind {
            self.0.clone()
        }
    }

    const SECRET: &str = "secret internal text";

    #[test]
    fn each_kind_has_one_status_and_type() {
        let rows = [
            (ErrorKind::NotFound, 404, "not-found"),
            (ErrorKind::invalid("name", "too long"), 422, "validation"),
            (
                ErrorKind::BadRequest {
                    slug: "bad-request",
                    detail: "d".into(),
                },
                400,
                "bad-request",
            ),
            (ErrorKind::conflict("taken"), 409, "conflict"),
            (
                ErrorKind::Conflict {
                    slug: "key-disabled",
                    detail: "d".into(),
                },
                409,
                "key-disabled",
            ),
            (
                ErrorKind::Forbidden { detail: "d".into() },
                403,
                "forbidden",
            ),
            (
                ErrorKind::Unauthorized {
                    slug: "invalid-token",
                    detail: "d".into(),
                },
                401,
                "invalid-token",
            ),
            (
                ErrorKind::unavailable(Dependency::Database),
                503,
                "unavailable",
            ),
            (
                ErrorKind::unavailable(Dependency::Storage),
                503,
                "unavailable",
            ),
            (
                ErrorKind::unavailable(Dependency::KeyProvider),
                503,
                "key-provider-unavailable",
            ),
            (ErrorKind::Internal, 500, "internal"),
        ];
        for (kind, status, slug) in rows {
            let api = ApiError::from_domain(&OfKind(kind.clone()));
            let p = api.problem();
            assert_eq!(p.status, status, "{kind:?}");
            assert_eq!(p.kind, format!("urn:writ:problem:{slug}"), "{kind:?}");
            assert_eq!(api.status_code().as_u16(), status, "{kind:?}");
            let res = api.error_response();
            assert_eq!(res.status().as_u16(), status, "{kind:?}");
            assert_eq!(
                res.headers().contains_key(header::RETRY_AFTER),
                status == 503,
                "Retry-After on every unavailable, and only there: {kind:?}"
            );
            assert_eq!(
                res.headers().contains_key(header::WWW_AUTHENTICATE),
                status == 401,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn internal_and_unavailable_details_are_logged_never_returned() {
        for kind in [
            ErrorKind::Internal,
            ErrorKind::unavailable(Dependency::Database),
            ErrorKind::unavailable(Dependency::KeyProvider),
        ] {
            let api = ApiError::from_domain(&OfKind(kind.clone()));
            // Kept for the log...
            match &api {
                ApiError::Internal(detail) | ApiError::Unavailable { detail, .. } => {
                    assert_eq!(detail, SECRET)
                }
                other => panic!("{kind:?} became {other:?}"),
            }
            // ...and nowhere in the answer.
            let body = serde_json::to_string(&api.problem()).unwrap();
            assert!(!body.contains("secret"), "{body}");
        }
        assert!(ApiError::internal("x").problem().detail.is_none());
        // A database error's text (a query, a constraint) stays in the log.
        let p = problem_of(sqlx::Error::ColumnNotFound("ssn".into()));
        assert_eq!(p.status, 500);
        assert!(p.detail.is_none());
    }

    #[test]
    fn the_log_keeps_what_a_wrapper_hides() {
        #[derive(Debug, thiserror::Error)]
        #[error("reading the input stream")]
        struct Wrapper(#[source] std::io::Error);
        impl Classify for Wrapper {
            fn kind(&self) -> ErrorKind {
                ErrorKind::Internal
            }
        }
        let e = Wrapper(std::io::Error::other("connection reset by peer"));
        match ApiError::from_domain(&e) {
            ApiError::Internal(detail) => {
                assert_eq!(detail, "reading the input stream: connection reset by peer")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn validation_names_the_field_and_the_banner_problem_carries_the_banner() {
        let p = problem_of(AuthError::Invalid {
            field: "username",
            reason: "too long".into(),
        });
        assert_eq!(
            p.extensions["errors"],
            serde_json::json!([{ "field": "username", "reason": "too long" }])
        );
        assert_eq!(p.detail.as_deref(), Some("username: too long"));

        let p = problem_of(AuthError::BannerNotAcknowledged);
        assert_eq!(p.status, 400);
        assert_eq!(p.kind, "urn:writ:problem:banner-acknowledgement-required");
        assert_eq!(
            p.extensions["banner"].as_str(),
            Some(writ_auth_mfa::SYSTEM_USE_BANNER)
        );
        // No other 400 carries it.
        assert!(
            !ApiError::bad_request("x")
                .problem()
                .extensions
                .contains_key("banner")
        );
    }

    #[test]
    fn a_key_error_maps_the_same_wherever_it_is_nested() {
        let disabled = || KeyError::Disabled("arn:aws:kms:…:key/1".into());
        let outage = || KeyError::Unavailable("connect timeout".into());
        let alone = (problem_of(disabled()), problem_of(outage()));
        assert_eq!(alone.0.kind, "urn:writ:problem:key-disabled");
        assert_eq!(alone.0.status, 409);
        assert_eq!(alone.1.kind, "urn:writ:problem:key-provider-unavailable");
        assert_eq!(alone.1.status, 503);
        let nested: Vec<(Problem, Problem)> = vec![
            (
                problem_of(TenancyError::Keys(disabled())),
                problem_of(TenancyError::Keys(outage())),
            ),
            (
                problem_of(AuditError::Keys(disabled())),
                problem_of(AuditError::Keys(outage())),
            ),
            (
                problem_of(AuditError::Tenancy(TenancyError::Keys(disabled()))),
                problem_of(AuditError::Tenancy(TenancyError::Keys(outage()))),
            ),
            (
                problem_of(KeyLifecycleError::Audit(AuditError::Keys(disabled()))),
                problem_of(KeyLifecycleError::Audit(AuditError::Keys(outage()))),
            ),
            (
                problem_of(AuthError::Audit(AuditError::Keys(disabled()))),
                problem_of(AuthError::Audit(AuditError::Keys(outage()))),
            ),
            (
                problem_of(SealError::Key(KeyLifecycleError::Keys(disabled()))),
                problem_of(SealError::Key(KeyLifecycleError::Keys(outage()))),
            ),
            (
                problem_of(RetentionError::Audit(AuditError::Keys(disabled()))),
                problem_of(RetentionError::Audit(AuditError::Keys(outage()))),
            ),
        ];
        for (d, o) in nested {
            assert_eq!(
                (d.status, &d.kind, &d.detail),
                (409, &alone.0.kind, &alone.0.detail)
            );
            assert_eq!(
                (o.status, &o.kind, &o.detail),
                (503, &alone.1.kind, &alone.1.detail)
            );
        }
    }

    /// One test per domain error: every variant with the status and problem type it must
    /// become. The rows also build a `match` with no wildcard, so a new variant does not compile
    /// until it has a row — it cannot silently become a 500.
    macro_rules! every_variant {
        ($test:ident: $error:ty { $($variant:pat = $sample:expr => $status:literal $slug:literal),+ $(,)? }) => {
            #[test]
            fn $test() {
                fn has_a_row(e: &$error) -> &'static str {
                    match e {
                        $($variant => stringify!($variant)),+
                    }
                }
                $(
                    let sample: $error = $sample;
                    assert!(matches!(&sample, $variant), "{} is not {}", stringify!($sample), stringify!($variant));
                    let row = has_a_row(&sample);
                    let p = ApiError::from(sample).problem();
                    assert_eq!(
                        (p.status, p.kind.as_str()),
                        ($status, concat!("urn:writ:problem:", $slug)),
                        "{row}"
                    );
                )+
            }
        };
    }

    fn db_down() -> sqlx::Error {
        sqlx::Error::PoolTimedOut
    }

    every_variant!(every_key_error: KeyError {
        KeyError::MasterKey { .. } = KeyError::MasterKey { path: "p".into(), reason: "r".into() } => 500 "internal",
        KeyError::MalformedRef(_) = KeyError::MalformedRef("r".into()) => 500 "internal",
        KeyError::Decrypt = KeyError::Decrypt => 500 "internal",
        KeyError::Disabled(_) = KeyError::Disabled("k".into()) => 409 "key-disabled",
        KeyError::NotFound(_) = KeyError::NotFound("k".into()) => 500 "internal",
        KeyError::NotConfigured(_) = KeyError::NotConfigured("azure-keyvault".into()) => 503 "key-provider-unavailable",
        KeyError::Unavailable(_) = KeyError::Unavailable("timeout".into()) => 503 "key-provider-unavailable",
        KeyError::Refused(_) = KeyError::Refused("no such spec".into()) => 500 "internal",
        KeyError::InvalidSettings(_) = KeyError::InvalidSettings("no such provider".into()) => 422 "validation",
    });

    every_variant!(every_tenancy_error: TenancyError {
        TenancyError::Invalid { .. } = TenancyError::Invalid { field: "slug", reason: "r".into() } => 422 "validation",
        TenancyError::SlugTaken(_) = TenancyError::SlugTaken("s".into()) => 409 "conflict",
        TenancyError::NoSuchAgency(_) = TenancyError::NoSuchAgency("s".into()) => 404 "not-found",
        TenancyError::Conflict(_) = TenancyError::Conflict("agency x is offboarded".into()) => 409 "conflict",
        TenancyError::MigrationEdited { .. } = TenancyError::MigrationEdited { version: 1, name: "n".into() } => 500 "internal",
        TenancyError::TableWithoutAgencyId(_) = TenancyError::TableWithoutAgencyId("t".into()) => 500 "internal",
        TenancyError::CommitUnknown(_) = TenancyError::CommitUnknown("connection reset".into()) => 503 "unavailable",
        TenancyError::Keys(_) = TenancyError::Keys(KeyError::Unavailable("x".into())) => 503 "key-provider-unavailable",
        TenancyError::Database(_) = TenancyError::Database(db_down()) => 503 "unavailable",
    });

    every_variant!(every_audit_error: AuditError {
        AuditError::InvalidEvent(_) = AuditError::InvalidEvent("e".into()) => 500 "internal",
        AuditError::EventTooLarge { .. } = AuditError::EventTooLarge { bytes: 2, limit: 1 } => 413 "payload-too-large",
        AuditError::Corrupt { .. } = AuditError::Corrupt { agency: "a".into(), reason: "r".into() } => 500 "internal",
        AuditError::ReceiptTimeout(_) = AuditError::ReceiptTimeout(uuid::Uuid::nil()) => 500 "internal",
        AuditError::InvalidRequest(_) = AuditError::InvalidRequest("r".into()) => 422 "validation",
        AuditError::Io(_) = AuditError::Io("disk full".into()) => 500 "internal",
        AuditError::NotFound = AuditError::NotFound => 404 "not-found",
        AuditError::Keys(_) = AuditError::Keys(KeyError::Disabled("k".into())) => 409 "key-disabled",
        AuditError::Tenancy(_) = AuditError::Tenancy(TenancyError::NoSuchAgency("a".into())) => 404 "not-found",
        AuditError::Database(_) = AuditError::Database(sqlx::Error::RowNotFound) => 500 "internal",
    });

    every_variant!(every_retention_error: RetentionError {
        RetentionError::LegalHold(_) = RetentionError::LegalHold(2) => 409 "conflict",
        RetentionError::InvalidPolicy(_) = RetentionError::InvalidPolicy("r".into()) => 422 "validation",
        RetentionError::Invalid { .. } = RetentionError::Invalid { field: "reason", reason: "r".into() } => 422 "validation",
        RetentionError::HoldNotFound = RetentionError::HoldNotFound => 404 "not-found",
        RetentionError::HoldAlreadyReleased = RetentionError::HoldAlreadyReleased => 409 "conflict",
        RetentionError::Archive(_) = RetentionError::Archive("a".into()) => 500 "internal",
        RetentionError::Audit(_) = RetentionError::Audit(AuditError::Database(db_down())) => 503 "unavailable",
    });

    every_variant!(every_auth_error: AuthError {
        AuthError::BannerNotAcknowledged = AuthError::BannerNotAcknowledged => 400 "banner-acknowledgement-required",
        AuthError::InvalidCredentials = AuthError::InvalidCredentials => 401 "invalid-credentials",
        AuthError::AccountLocked = AuthError::AccountLocked => 401 "account-locked",
        AuthError::InvalidToken(_) = AuthError::InvalidToken("t".into()) => 401 "invalid-token",
        AuthError::ReauthenticationRequired(_) = AuthError::ReauthenticationRequired("r".into()) => 401 "reauthentication-required",
        AuthError::SessionRevoked = AuthError::SessionRevoked => 401 "session-revoked",
        AuthError::StepUpRequired = AuthError::StepUpRequired => 401 "step-up-required",
        AuthError::InvalidCode = AuthError::InvalidCode => 401 "invalid-code",
        AuthError::Forbidden(_) = AuthError::Forbidden("f".into()) => 403 "forbidden",
        AuthError::NotFound = AuthError::NotFound => 404 "not-found",
        AuthError::Conflict(_) = AuthError::Conflict("c".into()) => 409 "conflict",
        AuthError::Invalid { .. } = AuthError::Invalid { field: "password", reason: "r".into() } => 422 "validation",
        AuthError::Internal(_) = AuthError::Internal("i".into()) => 500 "internal",
        AuthError::Tenancy(_) = AuthError::Tenancy(TenancyError::SlugTaken("s".into())) => 409 "conflict",
        AuthError::Audit(_) = AuthError::Audit(AuditError::NotFound) => 404 "not-found",
        AuthError::Database(_) = AuthError::Database(db_down()) => 503 "unavailable",
    });

    every_variant!(every_key_lifecycle_error: KeyLifecycleError {
        KeyLifecycleError::Keys(_) = KeyLifecycleError::Keys(KeyError::NotConfigured("aws-kms".into())) => 503 "key-provider-unavailable",
        KeyLifecycleError::Tenancy(_) = KeyLifecycleError::Tenancy(TenancyError::Database(db_down())) => 503 "unavailable",
        KeyLifecycleError::Audit(_) = KeyLifecycleError::Audit(AuditError::InvalidRequest("r".into())) => 422 "validation",
        KeyLifecycleError::Database(_) = KeyLifecycleError::Database(db_down()) => 503 "unavailable",
        KeyLifecycleError::NotFound = KeyLifecycleError::NotFound => 404 "not-found",
        KeyLifecycleError::Conflict(_) = KeyLifecycleError::Conflict("current version".into()) => 409 "conflict",
        KeyLifecycleError::Invalid { .. } = KeyLifecycleError::Invalid { field: "reason", reason: "r".into() } => 422 "validation",
        KeyLifecycleError::NoCurrentKey { .. } = KeyLifecycleError::NoCurrentKey { agency: uuid::Uuid::nil(), purpose: "signing" } => 500 "internal",
    });

    every_variant!(every_seal_error: SealError {
        SealError::Key(_) = SealError::Key(KeyLifecycleError::NotFound) => 404 "not-found",
        SealError::AlreadySealed(_) = SealError::AlreadySealed(uuid::Uuid::nil()) => 409 "conflict",
        SealError::Label(_) = SealError::Label("1 to 64 bytes") => 422 "validation",
        SealError::TooLarge = SealError::TooLarge => 422 "validation",
        SealError::Header(_) = SealError::Header("no WRITSEAL magic") => 500 "internal",
        SealError::Corrupt { .. } = SealError::Corrupt { chunk: 3 } => 500 "internal",
        SealError::Truncated { .. } = SealError::Truncated { chunks: 3 } => 500 "internal",
        SealError::DigestMismatch = SealError::DigestMismatch => 500 "internal",
        SealError::Failed = SealError::Failed => 500 "internal",
        SealError::HashingStopped = SealError::HashingStopped => 500 "internal",
    });

    every_variant!(every_signature_error: SignatureError {
        SignatureError::Key(_) = SignatureError::Key(KeyLifecycleError::Keys(KeyError::Unavailable("x".into()))) => 503 "key-provider-unavailable",
        SignatureError::Algorithm(_) = SignatureError::Algorithm("rsa".into()) => 422 "validation",
        SignatureError::UnknownKey(_) = SignatureError::UnknownKey(9) => 422 "validation",
        SignatureError::KeyRevoked(_) = SignatureError::KeyRevoked(1) => 422 "validation",
        SignatureError::Invalid = SignatureError::Invalid => 422 "validation",
    });

    #[test]
    fn database_errors_are_judged_once() {
        assert_eq!(problem_of(db_down()).kind, "urn:writ:problem:unavailable");
        assert_eq!(problem_of(sqlx::Error::PoolClosed).status, 503);
        assert_eq!(problem_of(sqlx::Error::RowNotFound).status, 500);
    }
}
