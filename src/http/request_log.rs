//! Request logs and request ids. Every request gets an `x-request-id`
//! (the client's, or a new UUID), echoed on the answer and in every
//! problem+json body as `request_id`. [`TraceLayer`] logs one line per
//! request when its answer starts: method, path (never the query: it may
//! carry `access_token`), status, latency and body bytes (absent for
//! streams, which log their own open and close lines: [`StreamLog`]).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Request, Response, header};
use axum::middleware::Next;
use bytes::Bytes;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{OnResponse, TraceLayer};

use super::error::PROBLEM_JSON;

/// The target of the request log's lines (one per answer), so that
/// `RUST_LOG` can pick them out: `RUST_LOG=info,herald::access=off`.
pub const ACCESS: &str = "herald::access";

/// Marks an answer whose line is logged at debug when it succeeds: health
/// checks and metrics scrapes, polled every few seconds.
#[derive(Debug, Clone, Copy)]
pub struct Quiet;

/// The header that carries a request's id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a client; a longer one is replaced.
const MAX_REQUEST_ID: usize = 128;

/// Largest problem body the id is added to (they are a few hundred bytes).
const MAX_PROBLEM_BYTES: usize = 64 * 1024;

/// Sets `x-request-id` on requests that have none.
pub fn set_request_id() -> SetRequestIdLayer<MakeRequestUuid> {
    SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid)
}

/// Drops a client's `x-request-id` that is empty, longer than 128 bytes or
/// not visible ASCII, so that [`set_request_id`] makes a new one: ids end
/// up in log lines and answers.
pub fn drop_bad_request_id(mut req: Request<Body>) -> Request<Body> {
    let bad = req.headers().get(&REQUEST_ID).is_some_and(|v| {
        let v = v.as_bytes();
        v.is_empty() || v.len() > MAX_REQUEST_ID || !v.iter().all(|b| b.is_ascii_graphic())
    });
    if bad {
        req.headers_mut().remove(&REQUEST_ID);
    }
    req
}

/// Copies the request's id onto its answer.
pub fn propagate_request_id() -> PropagateRequestIdLayer {
    PropagateRequestIdLayer::new(REQUEST_ID)
}

/// The request log layer: spans from [`span`], lines from [`LogResponse`].
pub type RequestTrace = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    fn(&Request<Body>) -> tracing::Span,
    (),
    LogResponse,
    (),
    (),
    (),
>;

/// The request log: a span per request, one line per answer.
pub fn trace_layer() -> RequestTrace {
    TraceLayer::new_for_http()
        .make_span_with(span as fn(&Request<Body>) -> tracing::Span)
        .on_request(())
        .on_response(LogResponse)
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

/// The span of one request: its id, method and path, never the query.
fn span(req: &Request<Body>) -> tracing::Span {
    let id = req
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
}

/// Logs one line per answer, inside the request's span.
#[derive(Debug, Clone, Copy)]
pub struct LogResponse;

impl<B: http_body::Body> OnResponse<B> for LogResponse {
    fn on_response(self, response: &Response<B>, latency: Duration, _span: &tracing::Span) {
        let status = response.status().as_u16();
        let latency_ms = latency.as_secs_f64() * 1000.0;
        let bytes = http_body::Body::size_hint(response.body()).exact();
        if response.extensions().get::<Quiet>().is_some() && response.status().is_success() {
            tracing::debug!(target: ACCESS, status, latency_ms, bytes, "request");
            return;
        }
        match bytes {
            Some(bytes) => tracing::info!(target: ACCESS, status, latency_ms, bytes, "request"),
            None => tracing::info!(target: ACCESS, status, latency_ms, "request (streamed)"),
        }
    }
}

/// Adds the request's id to problem+json answers as `request_id`, so a
/// client can quote it and an operator find the request's log lines.
pub async fn problem_request_id(req: Request<Body>, next: Next) -> Response<Body> {
    let id = req.headers().get(&REQUEST_ID).cloned();
    let response = next.run(req).await;
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    match id {
        Some(id) if is_problem => with_request_id(response, &id).await,
        _ => response,
    }
}

async fn with_request_id(response: Response<Body>, id: &HeaderValue) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PROBLEM_BYTES).await else {
        return Response::from_parts(parts, Body::empty());
    };
    // Spliced in as the last member, so the others keep their order.
    let doc = std::str::from_utf8(&bytes).map(str::trim_end);
    let Some(open) = doc.ok().and_then(|d| d.strip_suffix('}')) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let id = serde_json::Value::String(String::from_utf8_lossy(id.as_bytes()).into_owned());
    let body = format!("{open},\"request_id\":{id}}}\n");
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Logs a stream's open and close: how long it was open, the events and
/// bytes it sent. Counts what passes through [`StreamLog::count`]; logs
/// the close when dropped (the client left, the server ended it).
pub struct StreamLog {
    /// The request's span: the close is logged in it too.
    span: tracing::Span,
    opened: Instant,
    events: u64,
    bytes: u64,
}

impl StreamLog {
    /// Logs the open; `topics` names what the stream reads.
    pub fn open(topics: &str, resumed: bool) -> Self {
        tracing::info!(topics, resumed, "stream opened");
        Self {
            span: tracing::Span::current(),
            opened: Instant::now(),
            events: 0,
            bytes: 0,
        }
    }

    /// Counts one written frame (one or more events, or a comment).
    pub fn count(&mut self, frame: &Bytes) {
        self.bytes += frame.len() as u64;
        // Every event has exactly one `data:` line; comments have none.
        let events = frame.windows(7).filter(|w| w == b"\ndata: ").count();
        self.events += events as u64 + u64::from(frame.starts_with(b"data: "));
    }
}

impl Drop for StreamLog {
    fn drop(&mut self) {
        let _entered = self.span.enter();
        tracing::info!(
            duration_ms = self.opened.elapsed().as_millis() as u64,
            events = self.events,
            bytes = self.bytes,
            "stream closed"
        );
    }
}
