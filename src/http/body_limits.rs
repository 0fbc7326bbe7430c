//! A body that `Content-Length` says is larger than the route takes is
//! refused with `413` at once, before a byte of it is read, and the
//! connection is closed (the unread body cannot be skipped cheaply).
//! Without this the limit (`--max-message-bytes`, `--batch-max-bytes` for
//! batches) applied only while reading, so a client announcing 10 GB and
//! sending nothing held the request until the body timeout. Chunked bodies
//! are still counted as they arrive.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The route whose bodies are batches.
pub const BATCH_ROUTE: &str = "/topics/{topic}/batch";

/// Largest bodies, by route.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Every route but batches (`--max-message-bytes`).
    pub message: usize,
    /// [`BATCH_ROUTE`] (`--batch-max-bytes`).
    pub batch: usize,
}

/// Middleware (after routing, so the route is known).
pub async fn refuse_oversized(
    State(limits): State<BodyLimits>,
    req: Request,
    next: Next,
) -> Response {
    let batch = req
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| p.as_str() == BATCH_ROUTE);
    let (limit, what) = if batch {
        (limits.batch, "a batch body")
    } else {
        (limits.message, "a message body")
    };
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match announced {
        Some(length) if length > limit as u64 => {
            let mut response = ApiError::too_large(format!(
                "{what} may be at most {limit} bytes; Content-Length announces {length}"
            ))
            .into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        _ => next.run(req).await,
    }
}
