//! Per-connection timeouts: `--http-header-timeout` (a request head must
//! arrive whole within it) and `--http-idle-timeout` (a keep-alive
//! connection between requests). hyper's own `header_read_timeout` cannot
//! tell a connection that is idle between requests from one that is
//! trickling a head, and herald wants both; so each connection has a
//! [`ConnState`] that the socket ([`Watched`]) and the service (a
//! [`Busy`] guard per request, held by the response body) keep up to date,
//! and [`expired`] watches it. While a request is being answered — an SSE
//! stream for hours — neither timeout runs.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// This many requests are being answered.
    Busy(u32),
    /// Nothing to do since this instant (the last response's end).
    Idle(Instant),
    /// A request head started arriving (or the connection opened) then.
    Head(Instant),
}

/// The two limits (`None` is no limit), and the pressure that shortens
/// both.
#[derive(Debug, Clone)]
pub struct Timeouts {
    pub header: Option<Duration>,
    pub idle: Option<Duration>,
    pub pressure: Arc<Pressure>,
}

/// How long a connection may be idle or sending a head while herald is
/// short of descriptors.
pub const PRESSURE_GRACE: Duration = Duration::from_secs(1);

/// On while more connections are open than the budget allows: every
/// connection that is not answering a request — idle, or still sending its
/// head, as a slowloris client does forever — gets [`PRESSURE_GRACE`]
/// instead of its timeouts, so that descriptors come back within a second
/// instead of after the header timeout. Streams are never shed.
#[derive(Debug, Default)]
pub struct Pressure {
    on: AtomicBool,
    started: Notify,
}

impl Pressure {
    pub fn set(&self, on: bool) {
        if self.on.swap(on, Ordering::Relaxed) != on && on {
            tracing::warn!(
                "connection budget reached: closing idle and slow connections after 1 s"
            );
            self.started.notify_waiters();
        }
    }

    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }
}

/// Why a connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    Header,
    Idle,
}

/// One connection's phase, shared by its socket, its service and its
/// watchdog.
#[derive(Debug)]
pub struct ConnState {
    phase: Mutex<Phase>,
    /// Woken when the last request in flight ends.
    ended: Notify,
}

impl ConnState {
    /// A new connection: the clock for its first head starts now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            phase: Mutex::new(Phase::Head(Instant::now())),
            ended: Notify::new(),
        })
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request was dispatched; answered when the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> Busy {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        };
        Busy(self.clone())
    }

    fn read_some(&self) {
        let mut phase = self.phase();
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
        }
    }
}

/// A request in flight. Dropped with its response body: when the last
/// byte of the answer has been handed to hyper, or the stream ends.
#[derive(Debug)]
pub struct Busy(Arc<ConnState>);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut phase = self.0.phase();
        *phase = match *phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        };
        drop(phase);
        self.0.ended.notify_one();
    }
}

/// Completes when the connection has been idle, or trickling a head, for
/// longer than allowed. Sleeps on a notification while requests are in
/// flight, so an open stream costs no timer wake-ups.
pub async fn expired(state: &ConnState, limits: &Timeouts) -> Expired {
    loop {
        let ended = state.ended.notified();
        let pressed = limits.pressure.started.notified();
        tokio::pin!(ended, pressed);
        ended.as_mut().enable();
        pressed.as_mut().enable();
        let shed = limits.pressure.is_on().then_some(PRESSURE_GRACE);
        let limit = |d: Option<Duration>| match (d, shed) {
            (Some(d), Some(g)) => Some(d.min(g)),
            (d, g) => d.or(g),
        };
        let due = match *state.phase() {
            Phase::Busy(_) => None,
            Phase::Idle(since) => limit(limits.idle).map(|d| (since + d, Expired::Idle)),
            Phase::Head(since) => limit(limits.header).map(|d| (since + d, Expired::Header)),
        };
        match due {
            Some((at, why)) if at <= Instant::now() => return why,
            Some((at, _)) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = &mut ended => {}
                    () = &mut pressed => {}
                }
            }
            None => {
                tokio::select! {
                    () = &mut ended => {}
                    () = &mut pressed => {}
                }
            }
        }
    }
}

/// A socket that tells its [`ConnState`] when bytes arrive.
pub struct Watched<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, state: Arc<ConnState>) -> Self {
        Self { inner, state }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.state.read_some();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A response body that holds what must live as long as the answer: the
/// [`Busy`] guard, and a per-client place when one was taken per request.
pub struct Guarded<G> {
    inner: Body,
    _guard: G,
}

impl<G: Send + Unpin + 'static> Guarded<G> {
    pub fn wrap(inner: Body, guard: G) -> Body {
        Body::new(Guarded {
            inner,
            _guard: guard,
        })
    }
}

impl<G: Unpin> HttpBody for Guarded<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Timeouts {
        Timeouts {
            header: Some(Duration::from_secs(10)),
            idle: Some(Duration::from_secs(60)),
            pressure: Arc::default(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_nothing_expires_after_the_header_timeout() {
        let state = ConnState::new();
        let start = Instant::now();
        assert_eq!(expired(&state, &limits()).await, Expired::Header);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_stops_the_clocks_and_its_end_starts_the_idle_one() {
        let state = ConnState::new();
        let busy = state.begin();
        let watch = tokio::spawn({
            let state = state.clone();
            async move { expired(&state, &limits()).await }
        });
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!watch.is_finished(), "a long answer is not idle");
        let ended = Instant::now();
        drop(busy);
        assert_eq!(watch.await.unwrap(), Expired::Idle);
        assert_eq!(ended.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_that_starts_while_idle_gets_the_header_timeout_from_then() {
        let state = ConnState::new();
        drop(state.begin());
        tokio::time::sleep(Duration::from_secs(50)).await;
        state.read_some();
        let start = Instant::now();
        assert_eq!(expired(&state, &limits()).await, Expired::Header);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn under_pressure_slow_and_idle_connections_go_after_a_second_and_streams_stay() {
        let limits = limits();
        let slow = ConnState::new();
        let streaming = ConnState::new();
        let _busy = streaming.begin();
        let watch_slow = tokio::spawn({
            let (slow, limits) = (slow.clone(), limits.clone());
            async move { expired(&slow, &limits).await }
        });
        let watch_stream = tokio::spawn({
            let (streaming, limits) = (streaming.clone(), limits.clone());
            async move { expired(&streaming, &limits).await }
        });
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!watch_slow.is_finished());
        let pressed = Instant::now();
        limits.pressure.set(true);
        assert_eq!(watch_slow.await.unwrap(), Expired::Header);
        assert_eq!(pressed.elapsed(), Duration::ZERO, "already past the grace");
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!watch_stream.is_finished(), "a stream is never shed");
    }
}
