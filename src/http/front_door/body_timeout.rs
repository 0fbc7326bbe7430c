//! `--http-body-timeout`: a request body that makes no progress for this
//! long fails, and the request is answered `408` and its connection closed.
//!
//! Without it, a `Content-Length` larger than the body sent, or a chunked
//! body without its final chunk, held a connection and a handler forever
//! (hyper has no body read timeout). The clock runs only while the
//! handler waits for body bytes and restarts at every frame, so a slow
//! upload that keeps sending is never cut; a body already received whole
//! costs no timer.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::http::error::ApiError;

/// A request body with a progress deadline.
pub struct TimedBody {
    inner: Incoming,
    timeout: Duration,
    /// Made on the first wait only; re-armed after each frame.
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
    expired: Arc<AtomicBool>,
}

/// Set once the body timed out: the answer is then a `408`.
#[derive(Debug, Clone, Default)]
pub struct Expired(Arc<AtomicBool>);

impl Expired {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no part of the request body arrived for {0:?} (--http-body-timeout)")]
pub struct BodyTimedOut(Duration);

impl TimedBody {
    pub fn wrap(inner: Incoming, timeout: Duration, expired: &Expired) -> Body {
        Body::new(TimedBody {
            inner,
            timeout,
            sleep: None,
            armed: false,
            expired: expired.0.clone(),
        })
    }
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.armed = false;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = Instant::now() + this.timeout;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !this.armed {
            sleep.as_mut().reset(deadline);
            this.armed = true;
        }
        ready!(sleep.as_mut().poll(cx));
        this.expired.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(BodyTimedOut(this.timeout).into())))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The answer to a request whose body timed out, whatever its handler
/// made of the failed read: `408`, and the connection is closed.
pub fn timed_out(timeout: Duration) -> Response {
    let mut response = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body-timeout",
        "Request body timed out",
        format!(
            "no part of the request body arrived for {timeout:?} (--http-body-timeout); send the whole body that Content-Length or chunked encoding announces"
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
