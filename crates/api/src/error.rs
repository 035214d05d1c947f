//! The one place errors become HTTP: every failure leaves as RFC 9457 `application/problem+json`
//! with a stable `type`. Internal details are logged with the request id, never returned.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
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
    /// 400: the request could not be read (malformed JSON, bad query).
    #[error("{0}")]
    BadRequest(String),
    /// 422: well-formed but invalid; names the field.
    #[error("{field}: {reason}")]
    Validation { field: String, reason: String },
    /// 400: login without acknowledging the system-use banner (CJIS AC-8); carries the banner.
    #[error("acknowledge the system-use banner (bannerAck: true) to log in")]
    BannerRequired,
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
    /// 404: missing, or belonging to another agency (indistinguishable on purpose).
    #[error("not found")]
    NotFound,
    /// 409: conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 413: body over the configured limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 415: not the content type this route reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 503: a dependency (database, key provider) is unreachable; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// 409 `key-disabled`: what was asked for is protected by a revoked key version.
    #[error("key {0} is disabled: what it protects cannot be read or signed")]
    KeyDisabled(String),
    /// 500: a bug or an unexpected state; the detail is logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        match self {
            ApiError::Validation { field, reason } => {
                let mut p = Problem::new(status, "validation", Some(format!("{field}: {reason}")));
                p.extensions.insert(
                    "errors".into(),
                    serde_json::json!([{ "field": field, "reason": reason }]),
                );
                p
            }
            ApiError::Internal(_) => Problem::new(status, "internal", None),
            ApiError::BannerRequired => {
                let mut p = Problem::new(
                    status,
                    "banner-acknowledgement-required",
                    Some(self.to_string()),
                );
                p.extensions
                    .insert("banner".into(), writ_auth_mfa::SYSTEM_USE_BANNER.into());
                p
            }
            ApiError::Unauthorized { slug, detail } => {
                Problem::new(status, slug, Some(detail.clone()))
            }
            ApiError::Unavailable(detail) if detail.starts_with("key provider") => Problem::new(
                status,
                "key-provider-unavailable",
                Some("the agency's key provider is unavailable; retry shortly".into()),
            ),
            ApiError::Unavailable(_) => Problem::new(
                status,
                "unavailable",
                Some("a dependency is unavailable; retry shortly".into()),
            ),
            ApiError::KeyDisabled(_) => {
                Problem::new(status, "key-disabled", Some(self.to_string()))
            }
            other => Problem::new(status, slug_for_status(status), Some(other.to_string())),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::BannerRequired => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::KeyDisabled(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(detail) => tracing::error!(error = %detail, "internal error"),
            ApiError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "dependency unavailable")
            }
            _ => {}
        }
        let mut res = self.problem().to_response();
        if matches!(self, ApiError::Unavailable(_)) {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let ApiError::TooManyRequests {
            limit,
            retry_after_secs,
            reset_secs,
        } = self
        {
            let h = res.headers_mut();
            h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            crate::ratelimit::insert_headers(h, *limit, 0, *reset_secs);
        }
        if let ApiError::Unauthorized { .. } = self {
            insert_www_authenticate(&mut res);
        }
        res
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => ApiError::Unavailable(format!("database: {e}")),
            sqlx::Error::Database(ref db) if is_unavailable_sqlstate(db.code().as_deref()) => {
                ApiError::Unavailable(format!("database: {e}"))
            }
            other => ApiError::Internal(format!("database: {other}")),
        }
    }
}

/// Connection failures, shutdowns and resource exhaustion (SQLSTATE classes 08, 53, 57P).
fn is_unavailable_sqlstate(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.starts_with("08") || c.starts_with("53") || c.starts_with("57P"))
}

impl From<TenancyError> for ApiError {
    fn from(e: TenancyError) -> Self {
        match e {
            TenancyError::Invalid { field, reason } => ApiError::Validation {
                field: field.into(),
                reason,
            },
            TenancyError::SlugTaken(s) => {
                ApiError::Conflict(format!("an agency with slug {s:?} already exists"))
            }
            TenancyError::NoSuchAgency(_) => ApiError::NotFound,
            TenancyError::Database(db) => db.into(),
            TenancyError::Keys(k) => k.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<writ_audit_log::AuditError> for ApiError {
    fn from(e: writ_audit_log::AuditError) -> Self {
        use writ_audit_log::AuditError as A;
        match e {
            A::InvalidRequest(reason) => ApiError::Validation {
                field: "request".into(),
                reason,
            },
            A::NotFound => ApiError::NotFound,
            A::Database(d) => d.into(),
            A::Tenancy(t) => t.into(),
            A::Keys(k) => k.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

fn insert_www_authenticate(res: &mut HttpResponse) {
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"writ\""),
    );
}

impl From<writ_auth_mfa::AuthError> for ApiError {
    fn from(e: writ_auth_mfa::AuthError) -> Self {
        use writ_auth_mfa::AuthError as A;
        let unauthorized = |slug: &'static str, e: &A| ApiError::Unauthorized {
            slug,
            detail: e.to_string(),
        };
        match e {
            A::BannerNotAcknowledged => ApiError::BannerRequired,
            A::InvalidCredentials => unauthorized("invalid-credentials", &e),
            A::AccountLocked => unauthorized("account-locked", &e),
            A::InvalidToken(_) => unauthorized("invalid-token", &e),
            A::ReauthenticationRequired(_) => unauthorized("reauthentication-required", &e),
            A::SessionRevoked => unauthorized("session-revoked", &e),
            A::StepUpRequired => unauthorized("step-up-required", &e),
            A::InvalidCode => unauthorized("invalid-code", &e),
            A::Forbidden(m) => ApiError::Forbidden(m),
            A::NotFound => ApiError::NotFound,
            A::Conflict(m) => ApiError::Conflict(m),
            A::Invalid { field, reason } => ApiError::Validation {
                field: field.into(),
                reason,
            },
            A::Internal(m) => ApiError::Internal(m),
            A::Tenancy(t) => t.into(),
            A::Database(d) => d.into(),
            A::Audit(a) => a.into(),
        }
    }
}

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
        J::Deserialize(e) => ApiError::BadRequest(format!("malformed JSON: {e}")),
        other => ApiError::BadRequest(other.to_string()),
    }
}

impl From<writ_keys::KeyError> for ApiError {
    fn from(e: writ_keys::KeyError) -> Self {
        use writ_keys::KeyError as K;
        match e {
            K::Unavailable(m) => ApiError::Unavailable(format!("key provider: {m}")),
            K::NotConfigured(p) => {
                ApiError::Unavailable(format!("key provider {p} is not configured"))
            }
            K::Disabled(k) => ApiError::KeyDisabled(k),
            K::Refused(m) => ApiError::Validation {
                field: "keys".into(),
                reason: m,
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<writ_agency_keys::KeyLifecycleError> for ApiError {
    fn from(e: writ_agency_keys::KeyLifecycleError) -> Self {
        use writ_agency_keys::KeyLifecycleError as L;
        match e {
            L::Keys(k) => k.into(),
            L::Tenancy(t) => t.into(),
            L::Audit(a) => a.into(),
            L::Database(d) => d.into(),
            L::NotFound => ApiError::NotFound,
            L::Conflict(m) => ApiError::Conflict(m),
            L::Invalid { field, reason } => ApiError::Validation {
                field: field.into(),
                reason,
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem_of(e: impl Into<ApiError>) -> Problem {
        e.into().problem()
    }

    #[test]
    fn key_errors_map_to_their_problem_types() {
        use writ_keys::KeyError as K;
        let disabled = problem_of(K::Disabled("arn:aws:kms:…:key/1".into()));
        assert_eq!(disabled.status, 409);
        assert_eq!(disabled.kind, "urn:writ:problem:key-disabled");
        for outage in [
            K::Unavailable("connect timeout".into()),
            K::NotConfigured("azure-keyvault".into()),
        ] {
            let p = problem_of(outage);
            assert_eq!(p.status, 503);
            assert_eq!(p.kind, "urn:writ:problem:key-provider-unavailable");
        }
        // A key error inside a lifecycle, tenancy or audit error maps the same way.
        let nested = problem_of(writ_agency_keys::KeyLifecycleError::Keys(K::Disabled(
            "k".into(),
        )));
        assert_eq!(nested.kind, "urn:writ:problem:key-disabled");
        let nested = problem_of(writ_audit_log::AuditError::Keys(K::Unavailable("x".into())));
        assert_eq!(nested.status, 503);
        // Never the provider's detail in the answer of an internal error.
        let internal = problem_of(K::Decrypt);
        assert_eq!(internal.status, 500);
        assert!(internal.detail.is_none());
    }
}
