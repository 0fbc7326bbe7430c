//! A body that `Content-Length` says is larger than the route takes is
//! refused with `413` before its handler runs, and the connection is then
//! closed. First, as nginx's lingering close does, herald reads and drops
//! what the client sends, up to [`LINGER_BYTES`] and for [`LINGER_TIME`]
//! at most, while it keeps arriving ([`LINGER_IDLE`]): a client still writing its body would otherwise have its
//! connection reset under it and never read the `413` (Python's
//! `http.client` saw a broken pipe in 12 of 20 tries).
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

/// Bytes of a refused body read and dropped at most before the `413`.
pub const LINGER_BYTES: u64 = 8 * 1024 * 1024;
/// How long herald reads a refused body at most before the `413`.
pub const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a refused body may pause before herald stops reading it.
pub const LINGER_IDLE: std::time::Duration = std::time::Duration::from_millis(200);

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
            if length <= LINGER_BYTES {
                let _ = tokio::time::timeout(LINGER_TIME, drain(req.into_body())).await;
            }
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

/// Reads a body to its end (or its first error), keeping none of it, and
/// gives up once nothing arrived for [`LINGER_IDLE`]: a client that
/// announced a body and sends none is answered at once.
async fn drain(body: axum::body::Body) {
    use futures_util::StreamExt;
    let mut data = body.into_data_stream();
    while let Ok(Some(Ok(_))) = tokio::time::timeout(LINGER_IDLE, data.next()).await {}
}
