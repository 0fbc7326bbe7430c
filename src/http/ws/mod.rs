//! `GET /ws`: one WebSocket for subscribing, publishing and pulling, with
//! JSON text frames (see docs/subscribing.md, "WebSocket").
//!
//! Each subscription in a socket is the same subscriber stream as an SSE
//! connection ([`crate::fanout::subscriber`]), written as `message` and
//! `gap` frames: resume, gaps, filters and catch-up from storage are
//! identical. The streams feed one bounded queue that the socket drains;
//! a socket that stops reading holds its streams back (they then catch up
//! from storage), so it is never dropped for being slow and never loses a
//! message.
//!
//! A bad frame is answered with an `error` frame and the socket stays
//! open. Only protocol violations close it: a frame beyond four times
//! `--ws-max-frame-bytes` (1009), or a peer that does not answer pings
//! (found within twice `--ws-ping-interval`).
//!
//! - [`frames`]: parsing client frames, building server frames.
//! - [`ops`]: what each op does.
//! - [`relay`]: `publish`, `pull`, `ack`, `nack` through the HTTP handlers.

pub mod frames;
pub mod ops;
pub mod relay;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::QueryPairs;
use crate::auth::Caller;
use crate::auth::limits::Rate;

/// Hand-overs queued for one socket at most (a frame, or a burst).
const QUEUE: usize = 256;
/// Bytes of frames queued for one socket at most, whatever their number:
/// beyond, its subscriptions stop reading (live messages then wait in
/// storage, as for a slow SSE client) and its replies wait. A socket that
/// does not read is closed once a write has been blocked for
/// `--sse-write-timeout`.
pub const QUEUE_BYTES: usize = 256 * 1024;
/// Bytes read from a socket at a time.
const READ_BUFFER: usize = 4 * 1024;
/// Bytes a socket gathers before it writes (it also writes at each flush,
/// after every burst of frames).
const WRITE_BUFFER: usize = 16 * 1024;

/// WebSocket limits and heartbeats (flags `--ws-…`).
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// Larger text frames get an `error` frame; four times this closes.
    pub max_frame_bytes: usize,
    pub max_subscriptions: usize,
    pub publish_rate: Rate,
    pub ping_interval: Duration,
}

/// Upgrades to a WebSocket. The caller's token (header, `?access_token=`
/// or cookie) and `?client=` apply to the whole socket.
#[utoipa::path(
    get, path = "/ws", tag = "streams",
    summary = "WebSocket: subscribe, publish, pull over one socket",
    description = "JSON text frames. Client ops: `subscribe` {sub, topics, filter?, last_event_id?, presence?}, `unsubscribe` {sub}, `publish` {ref?, topic, data | text, event?, priority?, key?, ttl?, delay?, at?, idempotency_key?} (answered `published`), `pull` {ref?, subscription, max_messages?, wait?, ack_ids?} (answered `pulled`), `ack` / `nack` {ref?, subscription, ack_ids, delay?} (answered `acked` / `nacked`), `ping` {ref?} (answered `pong`). Server frames: `subscribed` {sub, connection, start_after: the id the subscription starts after}, `unsubscribed`, `message` (the SSE envelope plus `sub`), `gap`, `join`, `leave`, `published`, `pulled`, `acked`, `nacked`, `pong`, `error` (a problem object plus `ref`/`sub` when known). A `subscribe` or `pull` starts once every `publish` sent before it on the socket is stored; publishes run side by side and are answered as they commit (match them by `ref`). A client's Close frame is answered with its code; herald stopping closes with 1001. docs/subscribing.md describes each frame.",
    params(("client" = Option<String>, Query, description = "A label for presence when the caller has no token subject (at most 64 characters)", max_length = 64)),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade, or an invalid `client`", content_type = "application/problem+json", body = Problem),
        (status = 401, description = "No valid token (access control on)", content_type = "application/problem+json", body = Problem),
        (status = 429, description = "This client has as many streams open as --max-streams-per-client allows", content_type = "application/problem+json", body = Problem),
    )
)]
pub async fn upgrade(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryPairs,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    // Every op needs some right: a caller without any (`--anonymous none`
    // and no token) is refused before the upgrade, not after it.
    if caller.grants.nothing() {
        return Err(caller.refuse("opening a WebSocket".into()));
    }
    let (mut parts, _) = request.into_parts();
    let ws = WebSocketUpgrade::from_request_parts(&mut parts, &state)
        .await
        .map_err(|e| {
            ApiError::bad_request("not-websocket", "Not a WebSocket upgrade", e.body_text())
        })?;
    let client = super::presence::client_label(&caller, query.one("client")?)?;
    let (slot, stop) = super::events::open_slot(&state, &caller)?;
    let hard = state.settings.ws.max_frame_bytes.saturating_mul(4);
    // Small buffers: tungstenite's defaults (128 KiB each) would cost every
    // idle socket far more than an SSE stream; they grow while busy.
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(hard)
        .max_frame_size(hard)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            let _open = state.sockets.token();
            run(socket, state, caller, client, stop).await;
        }))
}

/// What goes to the socket's writer.
#[derive(Debug)]
pub enum Out {
    /// JSON text frames, in order (one reply, or a subscription's burst),
    /// holding their bytes of [`QUEUE_BYTES`] until written.
    Frames(Vec<Bytes>, OwnedSemaphorePermit),
    /// A close frame; then the writer ends.
    Close(u16, &'static str),
}

/// The socket's queue to its writer, bounded in hand-overs and in bytes.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Out>,
    bytes: Arc<Semaphore>,
}

impl Outbox {
    fn new(tx: mpsc::Sender<Out>) -> Self {
        Outbox {
            tx,
            bytes: Arc::new(Semaphore::new(QUEUE_BYTES)),
        }
    }

    /// Queues one frame; `false` once the socket is gone.
    pub async fn frame(&self, frame: Bytes) -> bool {
        self.frames(vec![frame]).await
    }

    /// Queues frames in order once their bytes fit (a burst larger than
    /// the whole budget waits for all of it); `false` once the socket is
    /// gone.
    pub async fn frames(&self, frames: Vec<Bytes>) -> bool {
        let size: usize = frames.iter().map(Bytes::len).sum();
        let n = u32::try_from(size.clamp(1, QUEUE_BYTES)).unwrap_or(u32::MAX);
        let Ok(permit) = self.bytes.clone().acquire_many_owned(n).await else {
            return false;
        };
        self.tx.send(Out::Frames(frames, permit)).await.is_ok()
    }

    async fn close(&self, code: u16, reason: &'static str) {
        let _ = self.tx.send(Out::Close(code, reason)).await;
    }
}

/// Why the socket closes: a close code and reason, or `None` when there is
/// nobody left to tell.
pub type Reason = Option<(u16, &'static str)>;

/// Serves one socket until it closes, its peer dies, or herald stops. A
/// writer task of its own writes the frames, so a reader that waits for
/// room in the queue can never wait for itself.
async fn run(
    socket: WebSocket,
    state: AppState,
    caller: Caller,
    client: String,
    stop: tokio_util::sync::CancellationToken,
) {
    let (sink, mut incoming) = socket.split();
    let (tx, rx) = mpsc::channel::<Out>(QUEUE);
    let out = Outbox::new(tx);
    let alive = Arc::new(AtomicBool::new(true));
    let dead = tokio_util::sync::CancellationToken::new();
    let interval = state.settings.ws.ping_interval;
    state
        .sockets
        .spawn(writer(sink, rx, interval, alive.clone(), dead.clone()));
    let mut conn = ops::Conn::new(state, caller, client, stop.clone(), out.clone());
    let close = loop {
        tokio::select! {
            _ = stop.cancelled() => break End::Send(1001, "herald is stopping or the token ended"),
            _ = dead.cancelled() => break End::Gone,
            frame = incoming.next() => match frame {
                Some(Ok(Message::Close(_))) => break End::Answer,
                Some(Ok(m)) => {
                    alive.store(true, Ordering::Relaxed);
                    if let Some(reason) = conn.receive(m).await {
                        break reason.map_or(End::Gone, |(code, why)| End::Send(code, why));
                    }
                }
                Some(Err(e)) => break violation(&e).map_or(End::Gone, |(c, why)| End::Send(c, why)),
                None => break End::Gone,
            },
        }
    };
    drop(conn); // ends the subscriptions: their leaves go out
    // A closing handshake (RFC 6455, 5.5.1) is answered and awaited for a
    // moment at most: a peer that is gone does not hold the socket.
    let peer_closes = async { while let Some(Ok(_)) = incoming.next().await {} };
    match close {
        End::Send(code, reason) => {
            out.close(code, reason).await;
            let _ = tokio::time::timeout(CLOSE_WAIT, peer_closes).await;
        }
        End::Answer => {
            // The library queued the answer (the peer's code echoed); the
            // next read writes it and ends the stream.
            let _ = tokio::time::timeout(CLOSE_WAIT, peer_closes).await;
            dead.cancel();
        }
        End::Gone => dead.cancel(),
    }
}

/// How a socket ends.
enum End {
    /// herald closes: a close frame with this code and reason.
    Send(u16, &'static str),
    /// The peer sent a close frame: answer it.
    Answer,
    /// The connection is gone: nobody to tell.
    Gone,
}

/// How long a closing socket waits for its peer's part of the handshake.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Writes queued frames (several per flush when they pile up) and pings
/// every `interval`; a peer that sent nothing since the last ping, not
/// even its pong, is dead: closed with 1011.
async fn writer(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Out>,
    interval: Duration,
    alive: Arc<AtomicBool>,
    dead: tokio_util::sync::CancellationToken,
) {
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    let close = loop {
        tokio::select! {
            _ = dead.cancelled() => break None,
            out = rx.recv() => match out {
                Some(first @ Out::Frames(..)) => {
                    if write(&mut sink, first, &mut rx).await.is_err() {
                        break None;
                    }
                }
                Some(Out::Close(code, reason)) => break Some((code, reason)),
                None => break None,
            },
            _ = ping.tick() => {
                if !alive.swap(false, Ordering::Relaxed) {
                    break Some((1011, "no pong within the ping interval"));
                }
                if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                    break None;
                }
            }
        }
    };
    dead.cancel();
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            sink.send(Message::Close(Some(frame))),
        )
        .await;
    }
}

/// Writes `first` and whatever else is queued (a close stays queued for
/// the caller's next receive), then flushes once.
async fn write(
    sink: &mut SplitSink<WebSocket, Message>,
    first: Out,
    rx: &mut mpsc::Receiver<Out>,
) -> Result<(), axum::Error> {
    let mut next = Some(first);
    let mut taken = 0;
    // Bytes go back to the queue once flushed.
    let mut written = Vec::new();
    while let Some(out) = next.take() {
        match out {
            Out::Frames(fs, permit) => {
                for f in fs {
                    sink.feed(text(f)).await?;
                }
                written.push(permit);
            }
            Out::Close(code, reason) => {
                sink.flush().await?;
                let frame = CloseFrame {
                    code,
                    reason: Utf8Bytes::from_static(reason),
                };
                sink.send(Message::Close(Some(frame))).await?;
                return Err(axum::Error::new("closed"));
            }
        }
        taken += 1;
        if taken < QUEUE {
            next = rx.try_recv().ok();
        }
    }
    sink.flush().await?;
    drop(written);
    Ok(())
}

fn text(bytes: Bytes) -> Message {
    // Every frame herald builds is JSON text, so this never fails; an
    // empty frame would only mean a bug.
    Message::Text(Utf8Bytes::try_from(bytes).unwrap_or_default())
}

/// A read error: an oversized frame closes with 1009, text that is not
/// UTF-8 with 1007, anything else without a close frame (the connection
/// is gone or broken).
fn violation(e: &axum::Error) -> Reason {
    let text = e.to_string();
    if text.contains("too long") || text.contains("Space limit") {
        Some((
            1009,
            "frame larger than the hard limit (4 x --ws-max-frame-bytes)",
        ))
    } else if text.contains("UTF-8") {
        Some((1007, "a text frame that is not UTF-8"))
    } else {
        tracing::debug!(error = %e, "websocket read failed");
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[tokio::test]
    async fn a_socket_queue_holds_frames_up_to_its_bytes_not_its_count() {
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let out = Outbox::new(tx);
        let frame = Bytes::from(vec![b'x'; 64 * 1024]);
        for _ in 0..QUEUE_BYTES / frame.len() {
            assert!(out.frame(frame.clone()).now_or_never().is_some());
        }
        // The queue holds 4 of its 256 hand-overs, and all of its bytes.
        assert!(out.frame(frame.clone()).now_or_never().is_none());
        let written = rx.recv().await.expect("a queued frame");
        drop(written); // as the writer does once it has flushed
        assert!(out.frame(frame).now_or_never().is_some());
    }
}
