//! One SSE stream: what it selects ([`Matcher`]), where it starts (a
//! cursor, or live), and the loop that writes its frames.
//!
//! Hand-over from storage to live, which is where resume usually loses or
//! duplicates messages: the stream subscribes to the hub *before* it reads
//! storage, reads storage after its cursor to the end, then drains the hub
//! skipping every position it has already passed. A stream that lags behind
//! the hub's buffer goes back to storage the same way, so it loses nothing.
//!
//! Memory: a stream hands its connection small events copied together in
//! writes of at most [`WRITE_CHUNK`], and larger events as they are (shared
//! by every subscriber, not copied); the connection takes no more while its
//! socket is full (`max_buf_size` in [`crate::http::server`]).
//! So a client that stops reading holds the stream at a `yield`: it no
//! longer pulls from the hub, and costs one chunk, one hub entry or one
//! catch-up page of at most [`CATCH_UP_BYTES`]. When it reads again, it has
//! lagged and catches up from storage, or the write timeout has closed it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio_util::sync::CancellationToken;

use super::{Hub, Matcher, Missed, gaps};
use crate::domain::{Cursor, Position};
use crate::storage::{Store, StoreError};

/// Stream settings from the configuration.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Comment line sent this often so proxies keep the connection open.
    pub heartbeat: Duration,
    /// The `retry:` hint for reconnecting clients.
    pub retry: Duration,
    /// Rows per storage read while catching up.
    pub page: u32,
    /// End the stream after this long (clients reconnect and resume).
    pub max_duration: Option<Duration>,
}

/// Largest write a stream hands its connection (several events coalesced
/// into one buffer): one write for many events costs the server and the
/// client far less, but a stalled client keeps the last one queued.
pub const WRITE_CHUNK: usize = 8 * 1024;

/// Smallest frame written as it is rather than copied into a chunk.
const SHARE_MIN: usize = 512;

/// A catch-up page holds about this many bytes of messages (estimated; its
/// row count adapts to the sizes seen): a stream whose client stops reading
/// in the middle of a page keeps that page until it resumes or is closed.
pub const CATCH_UP_BYTES: usize = 256 * 1024;

/// Rows of the first catch-up page, before any message size is known.
const FIRST_PAGE_ROWS: u32 = 64;

/// How a stream's frames are written: SSE text, or WebSocket JSON frames.
/// The stream's logic (resume, catch-up, gaps, filters) is the same.
pub trait Format: Send + Sync + 'static {
    /// Whether frames may be written together (SSE); otherwise each item
    /// of the stream is one frame (a WebSocket text frame).
    const COALESCE: bool;
    /// A message's frame.
    fn message(&self, m: &crate::domain::Message) -> Bytes;
    /// A gap: topics that lost messages after `after`.
    fn lost(&self, after: Position, lost: &[(String, i64)]) -> Bytes;
    /// A gap: the cursor is past the end of the log.
    fn beyond_head(&self, after: Position, head: Position) -> Bytes;
    /// Written first, if anything.
    fn opening(&self, settings: &StreamSettings) -> Option<Bytes>;
    /// Written every `heartbeat` of the settings, if anything.
    fn heartbeat(&self) -> Option<Bytes>;
}

/// Server-Sent Events: `id:`, `event:`, `data:` lines.
pub struct Sse;

impl Format for Sse {
    const COALESCE: bool = true;

    fn message(&self, m: &crate::domain::Message) -> Bytes {
        m.sse_frame()
    }

    fn lost(&self, after: Position, lost: &[(String, i64)]) -> Bytes {
        gaps::lost_frame(after, lost)
    }

    fn beyond_head(&self, after: Position, head: Position) -> Bytes {
        gaps::beyond_head_frame(after, head)
    }

    fn opening(&self, settings: &StreamSettings) -> Option<Bytes> {
        Some(Bytes::from(format!(
            "retry: {}\n\n",
            settings.retry.as_millis()
        )))
    }

    fn heartbeat(&self) -> Option<Bytes> {
        Some(Bytes::from_static(b": keep-alive\n\n"))
    }
}

/// Opens a stream of frames in `format`. It is subscribed to the hub when this
/// returns, so a message committed after it is never missed.
///
/// A live-only stream starts at the committed head read from storage (after
/// subscribing), not at the hub's head: a publish acknowledged before the
/// stream opened may not have reached the hub yet, and must not be sent.
///
/// Also returns where the stream starts: every message after that position
/// (that the matcher takes) is sent, so a client that got nothing yet
/// resumes exactly from it (`Herald-Start-After`, WebSocket `start_after`).
pub async fn open<F: Format>(
    hub: &Arc<Hub>,
    store: Arc<dyn Store>,
    matcher: Matcher,
    cursor: Option<Cursor>,
    settings: StreamSettings,
    shutdown: CancellationToken,
    format: F,
) -> Result<
    (
        Position,
        impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
    ),
    StoreError,
> {
    let (mut rx, _) = hub.subscribe();
    let live_head = match cursor {
        None => store.head().await?,
        Some(_) => Position::ZERO,
    };
    let guard = hub.register(&matcher.selector);
    let hub = Arc::clone(hub);
    let exact: Option<Vec<String>> = matcher
        .selector
        .exact_names()
        .map(|names| names.into_iter().map(str::to_owned).collect());
    // Where we are in the log: every position up to `pos` has been sent or
    // skipped. `catch_up` says storage must be read past it first.
    let (mut pos, mut catch_up) = match cursor {
        None => (live_head, false),
        Some(c) => (c.after(), true),
    };
    // `earliest` asks for whatever is retained: no gap to report then.
    let mut report_gaps = cursor != Some(Cursor::Earliest);
    // Topics whose losses this stream has told its client of, with how far.
    let mut reported = gaps::Reported::default();
    let start_after = pos;

    let stream = async_stream::stream! {
        let _guard = guard;
        if let Some(opening) = format.opening(&settings) {
            yield Ok(opening);
        }
        let beats = format.heartbeat();
        let mut heartbeat = tokio::time::interval_at(
            tokio::time::Instant::now() + settings.heartbeat,
            settings.heartbeat,
        );
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut frames = Frames { coalesce: F::COALESCE, ..Frames::default() };
        let ends = settings.max_duration.map(|d| tokio::time::Instant::now() + d);
        // Made once, not per event: each `cancelled()` would register with
        // the token every subscriber shares, and each `sleep_until` with the
        // timer wheel.
        let cancelled = shutdown.clone().cancelled_owned();
        tokio::pin!(cancelled);
        let deadline = tokio::time::sleep_until(ends.unwrap_or_else(far_future));
        tokio::pin!(deadline);
        'stream: loop {
            if catch_up {
                metrics::counter!(crate::telemetry::SSE_CATCHUPS).increment(1);
                let _catching_up = CatchingUp::start();
                if report_gaps {
                    match gaps::check(&*store, pos, &matcher.selector, &mut reported).await {
                        Ok(gaps::Found::BeyondHead(head)) => {
                            // A cursor from another log (a recreated
                            // database): say so, continue from this end.
                            yield Ok(format.beyond_head(pos, head));
                            pos = head;
                        }
                        Ok(gaps::Found::Lost(lost)) => yield Ok(format.lost(pos, &lost)),
                        Ok(gaps::Found::Nothing) => {}
                        Err(e) => {
                            // End the stream: the client reconnects with its
                            // Last-Event-ID and resumes exactly.
                            tracing::warn!(error = %e, "catch-up failed; closing the stream");
                            break 'stream;
                        }
                    }
                }
                let caught_up_from = pos;
                let mut rows = FIRST_PAGE_ROWS.min(settings.page);
                loop {
                    let names: Option<Vec<&str>> =
                        exact.as_ref().map(|v| v.iter().map(String::as_str).collect());
                    let page = match store.read(pos, names.as_deref(), rows).await {
                        Ok(page) => page,
                        Err(e) => {
                            tracing::warn!(error = %e, "catch-up failed; closing the stream");
                            break 'stream;
                        }
                    };
                    let full = page.len() == rows as usize;
                    rows = page_rows(&page, settings.page);
                    for m in &page {
                        if matcher.matches(m) {
                            for bytes in frames.push(format.message(m)).into_iter().flatten() {
                                yield Ok(bytes);
                            }
                        }
                    }
                    if let Some(last) = page.last() {
                        pos = last.position;
                    }
                    drop(page);
                    if let Some(bytes) = frames.take() {
                        yield Ok(bytes);
                    }
                    if !full || shutdown.is_cancelled() {
                        break;
                    }
                }
                // Retention may have removed messages while the pages were
                // read: say so now rather than never.
                if report_gaps {
                    match gaps::check(&*store, caught_up_from, &matcher.selector, &mut reported).await {
                        Ok(gaps::Found::Lost(lost)) => yield Ok(format.lost(caught_up_from, &lost)),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "catch-up failed; closing the stream");
                            break 'stream;
                        }
                    }
                }
                catch_up = false;
                report_gaps = true;
            }

            tokio::select! {
                biased;
                _ = &mut cancelled => break 'stream,
                _ = &mut deadline, if ends.is_some() => break 'stream,
                received = rx.recv() => {
                    let mut next = received;
                    // Take every batch already queued: one write for many
                    // events costs the server and the client far less.
                    loop {
                        match next {
                            Ok(batch) => {
                                for m in batch.iter().filter(|m| m.position > pos) {
                                    if matcher.matches(m) {
                                        for bytes in frames.push(format.message(m)).into_iter().flatten() {
                                            yield Ok(bytes);
                                        }
                                    }
                                }
                                if let Some(last) = batch.last() {
                                    pos = pos.max(last.position);
                                }
                            }
                            // Messages the hub let go that this stream had
                            // already passed: nothing is lost.
                            Err(Missed::Lagged { through }) if through <= pos => {}
                            Err(Missed::Lagged { .. }) => {
                                hub.note_lag();
                                catch_up = true;
                                break;
                            }
                            Err(Missed::Closed) => {
                                if let Some(bytes) = frames.take() {
                                    yield Ok(bytes);
                                }
                                break 'stream;
                            }
                            Err(Missed::Empty) => break,
                        }
                        next = rx.try_recv();
                    }
                    if let Some(bytes) = frames.take() {
                        yield Ok(bytes);
                    }
                }
                _ = heartbeat.tick(), if beats.is_some() => {
                    if let Some(beat) = &beats {
                        yield Ok(beat.clone());
                    }
                }
            }
        }
    };
    Ok((start_after, stream))
}

/// Rows for the next catch-up page: about [`CATCH_UP_BYTES`] of messages
/// the size of those in `page`, at most `max`.
fn page_rows(page: &[crate::domain::Message], max: u32) -> u32 {
    let bytes: usize = page.iter().map(|m| m.estimated_bytes()).sum();
    if page.is_empty() || bytes == 0 {
        return max.min(FIRST_PAGE_ROWS);
    }
    let rows = CATCH_UP_BYTES * page.len() / bytes;
    u32::try_from(rows).unwrap_or(u32::MAX).clamp(1, max.max(1))
}

/// A deadline that never comes (about 30 years away, as tokio's own).
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86400 * 365 * 30)
}

/// Frames waiting to be written: one shared `Bytes` when there is a single
/// frame (no copy), a buffer when several small ones are coalesced. Frames
/// of [`SHARE_MIN`] bytes or more are written as they are: shared by every
/// subscriber, they cost a stalled connection nothing of its own (hyper
/// writes them with the others in one vectored write).
#[derive(Default)]
struct Frames {
    /// False: every frame is written on its own (WebSocket frames).
    coalesce: bool,
    single: Option<Bytes>,
    buf: BytesMut,
    /// Frames since the last `take`, for the delivered-events counter.
    count: u64,
}

impl Frames {
    /// Queues `frame`; returns what must be written now, in order: what
    /// was queued before it when the two would pass [`WRITE_CHUNK`], and a
    /// frame too large to copy.
    fn push(&mut self, frame: Bytes) -> [Option<Bytes>; 2] {
        if frame.len() >= SHARE_MIN || !self.coalesce {
            let before = self.take();
            self.count += 1; // counted at the next `take`
            return [before, Some(frame)];
        }
        let full = self.len() > 0 && self.len() + frame.len() > WRITE_CHUNK;
        let before = if full { self.take() } else { None };
        self.add(frame);
        [before, None]
    }

    fn add(&mut self, frame: Bytes) {
        self.count += 1;
        if self.single.is_none() && self.buf.is_empty() {
            self.single = Some(frame);
            return;
        }
        if let Some(first) = self.single.take() {
            self.buf.extend_from_slice(&first);
        }
        self.buf.extend_from_slice(&frame);
    }

    fn len(&self) -> usize {
        self.single.as_ref().map_or(self.buf.len(), Bytes::len)
    }

    fn take(&mut self) -> Option<Bytes> {
        if self.count > 0 {
            metrics::counter!(crate::telemetry::SSE_EVENTS).increment(self.count);
            self.count = 0;
        }
        if let Some(single) = self.single.take() {
            return Some(single);
        }
        (!self.buf.is_empty()).then(|| self.buf.split().freeze())
    }
}

/// Counts a stream in the catching-up gauge while it reads storage.
struct CatchingUp;

impl CatchingUp {
    fn start() -> Self {
        metrics::gauge!(crate::telemetry::SSE_CATCHING_UP).increment(1.0);
        CatchingUp
    }
}

impl Drop for CatchingUp {
    fn drop(&mut self) {
        metrics::gauge!(crate::telemetry::SSE_CATCHING_UP).decrement(1.0);
    }
}
