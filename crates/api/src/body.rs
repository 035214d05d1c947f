//! Request bodies are read whole before a request's database work. Authentication opens the
//! request's transaction (and takes the agency's lock, shared) as soon as the headers are in;
//! a client that then sends its body slowly, or never, would hold a pooled connection for as
//! long as it liked, and a handful of such requests would leave every agency without one. Read
//! here first, within a deadline (`WRIT_BODY_TIMEOUT_SECS`, 30 s: a megabyte at about 35 KB/s,
//! far below a working mobile link), a body costs the server nothing but its bytes while it
//! arrives. Document uploads stream instead (their bodies are large), under their own pace rule
//! and slots ([`crate::upload_pace`]).
//!
//! Only a caller the server will serve gets its body held: one whose access token verified (the
//! rate limiter checks it first), or one on a route that takes no token (login, refresh,
//! enrollment, the video webhook), whose bodies are small and held to [`ANONYMOUS_BODY_LIMIT`].
//! Any other request goes on unread, to be refused for its token before anything reads its body.

use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::BytesMut;
use futures_util::StreamExt;

use crate::ApiError;
use crate::auth::VerifiedClaims;

/// The routes whose bodies stream into the handler.
const STREAMED: &[&str] = &["/v1/warrants/{id}/documents"];

/// The most a request without a token may have held for it: credentials, a refresh or
/// enrollment token, a provider's report.
pub const ANONYMOUS_BODY_LIMIT: usize = 64 * 1024;

/// Middleware: reads the body (at most `limit` bytes, within `deadline`) before the route's
/// extractors run.
pub async fn read_first(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    limit: usize,
    deadline: Duration,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let pass = async |req: ServiceRequest| Ok(next.call(req).await?.map_into_boxed_body());
    // Answered here, the refusal still goes out through the outer middleware (request id, log).
    let refuse = |req: ServiceRequest, e: ApiError| Ok(req.error_response(e));
    let streamed = req
        .match_pattern()
        .is_some_and(|p| STREAMED.contains(&p.as_str()));
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let limit = if crate::ratelimit::anonymous_route(req.path()) {
        let limit = limit.min(ANONYMOUS_BODY_LIMIT);
        if declared.is_some_and(|n| n > limit) {
            return refuse(req, ApiError::PayloadTooLarge { limit });
        }
        limit
    } else if req.extensions().get::<VerifiedClaims>().is_some() {
        limit
    } else {
        // No token the server accepts: the route's authentication answers 401 unread.
        return pass(req).await;
    };
    // An oversized declared body is refused by the extractor without being read.
    if streamed || declared.is_some_and(|n| n > limit) {
        return pass(req).await;
    }
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    let read = tokio::time::timeout(deadline, async {
        while let Some(piece) = payload.next().await {
            let piece =
                piece.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
            if body.len() + piece.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            body.extend_from_slice(&piece);
        }
        Ok(())
    })
    .await;
    match read {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return refuse(req, e),
        Err(_) => {
            let secs = deadline.as_secs();
            return refuse(req, ApiError::RequestTimeout { secs });
        }
    }
    req.set_payload(Payload::from(body.freeze()));
    pass(req).await
}
