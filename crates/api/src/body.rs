//! Request bodies are read whole before a request's database work. Authentication opens the
//! request's transaction (and takes the agency's lock, shared) as soon as the headers are in;
//! a client that then sends its body slowly, or never, would hold a pooled connection for as
//! long as it liked, and a handful of such requests would leave every agency without one. Read
//! here first, within a deadline (`WRIT_BODY_TIMEOUT_SECS`, 30 s: a megabyte at about 35 KB/s,
//! far below a working mobile link), a body costs the server nothing but its bytes while it
//! arrives. Document uploads stream instead (their bodies are large), under their own pace rule
//! and slots ([`crate::upload_pace`]).

use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::BytesMut;
use futures_util::StreamExt;

use crate::ApiError;

/// The routes whose bodies stream into the handler.
const STREAMED: &[&str] = &["/v1/warrants/{id}/documents"];

/// Middleware: reads the body (at most `limit` bytes, within `deadline`) before the route's
/// extractors run.
pub async fn read_first(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
    limit: usize,
    deadline: Duration,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let streamed = req
        .match_pattern()
        .is_some_and(|p| STREAMED.contains(&p.as_str()));
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // An oversized declared body is refused by the extractor without being read.
    if streamed || declared.is_some_and(|n| n > limit) {
        return next.call(req).await;
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
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => {
            let secs = deadline.as_secs();
            return Err(ApiError::RequestTimeout { secs }.into());
        }
    }
    req.set_payload(Payload::from(body.freeze()));
    next.call(req).await
}
