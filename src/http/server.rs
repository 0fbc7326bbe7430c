//! The accept loop: `axum::serve` with the connection settings herald
//! needs, which `axum::serve` does not expose. Plain connections speak
//! HTTP/1.1; with TLS ([`super::tls`]) ALPN picks HTTP/2 or HTTP/1.1.
//!
//! - `TCP_NODELAY`: an SSE event is one small write; with Nagle's algorithm
//!   it can wait for the peer's delayed ACK (up to 40 ms on Linux).
//! - The front door ([`super::front_door`]): per-client caps, request-head
//!   size and timeouts, idle keep-alive timeout, the connection budget.
//! - A small `max_buf_size`: hyper queues this much of a response for a
//!   client that does not read (400 KiB by default, per connection), and
//!   stops asking the SSE stream for more once it is reached.
//! - A write timeout ([`super::write_timeout`]): a connection that could not
//!   write a byte for that long is closed.
//! - A fixed socket send buffer: Linux grows it up to `tcp_wmem`'s maximum
//!   (4 MiB here) for a client that does not read, so 10,000 stalled
//!   clients would pin gigabytes of kernel memory and push every socket on
//!   the machine into TCP memory pressure.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::front_door::protocol_errors::ProblemAnswers;
use super::front_door::watchdog::{self, ConnState, Watched};
use super::front_door::{FrontDoor, service};
use super::write_timeout::WriteTimeout;

/// Bytes hyper buffers per connection, each way: unsent response bytes
/// (plus the chunk that crossed the line; at most 16 chunks), and a
/// request's head, which must fit: the longest valid stream URL (64
/// patterns of 128 characters and a 1 KiB filter) is about 9.5 KiB. Never
/// less than `--http-max-header-bytes`, so the head limit is the one that
/// answers.
pub const MAX_BUF_BYTES: usize = 16 * 1024;

/// Most concurrent streams on one HTTP/2 connection: as many as the
/// connections one address may hold over HTTP/1.1 by default.
pub const MAX_H2_STREAMS: u32 = 256;

/// Per-connection settings from the configuration.
#[derive(Clone, Default)]
pub struct ConnSettings {
    /// Close a connection that could not write anything for this long.
    pub write_timeout: Option<Duration>,
    /// `SO_SNDBUF` for every connection (`None`: the kernel's autotuning).
    pub send_buffer: Option<usize>,
    /// HTTPS: every connection is TLS, HTTP/2 or HTTP/1.1 through ALPN.
    pub tls: Option<TlsAcceptor>,
}

/// What serving one connection needs besides its socket.
#[derive(Clone)]
struct Protocols {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    tls: Option<TlsAcceptor>,
    /// How long a TLS handshake may take (the request-head timeout).
    handshake: Duration,
}

/// Serves `app` until `shutdown`, then stops accepting and waits for open
/// connections to finish (streams end on the same token).
pub async fn serve(
    listener: TcpListener,
    app: crate::http::App,
    door: Arc<FrontDoor>,
    settings: ConnSettings,
    shutdown: CancellationToken,
) {
    // One copy for every connection: a connection's requests clone it
    // while they run, an idle one holds only this pointer.
    let app = Arc::new(app);
    let max_head = door.limits().max_header_bytes;
    let graceful = Drain::new();
    let protocols = Arc::new(protocols(&door, &settings));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tokio::select! {
                        () = accept_error(e) => continue,
                        _ = shutdown.cancelled() => break,
                    }
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let Some(admitted) = door.admit(peer) else {
            door.refuse(stream);
            continue;
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        if let Some(size) = settings.send_buffer {
            set_send_buffer(&stream, size);
        }
        let state = ConnState::new();
        let service = service::service(service::Connection {
            app: app.clone(),
            door: door.clone(),
            admitted,
            state: state.clone(),
        });
        let timeouts = door.timeouts();
        let protocols = protocols.clone();
        let watcher = graceful.watcher();
        let write_timeout = settings.write_timeout;
        tokio::spawn(async move {
            if protocols.tls.is_some() && super::tls_hint::plain_http(&stream).await {
                return super::tls_hint::answer(stream).await;
            }
            let stream = WriteTimeout::new(stream, write_timeout);
            let stream = Watched::new(stream, state.clone());
            tokio::select! {
                () = protocols.serve(stream, service, max_head, watcher) => {}
                why = watchdog::expired(&state, &timeouts) => {
                    tracing::debug!(?why, %peer, "closing a connection that timed out");
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The HTTP/1.1 and HTTP/2 settings of every connection.
fn protocols(door: &FrontDoor, settings: &ConnSettings) -> Protocols {
    let max_head = door.limits().max_header_bytes;
    let mut http1 = http1::Builder::new();
    http1.max_header_size(max_head);
    http1.max_buf_size(MAX_BUF_BYTES.max(max_head));
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_H2_STREAMS)
        .max_header_list_size(u32::try_from(max_head).unwrap_or(u32::MAX))
        // As `max_buf_size` for HTTP/1.1: what hyper queues for a stream
        // whose client does not read.
        .max_send_buf_size(MAX_BUF_BYTES);
    Protocols {
        http1,
        http2,
        tls: settings.tls.clone(),
        handshake: door.timeouts().header.unwrap_or(Duration::from_secs(10)),
    }
}

impl Protocols {
    /// Serves one connection to its end: plain HTTP/1.1, or TLS then the
    /// protocol ALPN chose. The TLS part is boxed: a task's future is as
    /// large as its largest state, and an HTTP/2 connection's would make
    /// every plain connection pay for it (about 3.5 KiB each).
    async fn serve<S>(
        self: Arc<Self>,
        stream: S,
        service: service::ConnService,
        max_head: usize,
        graceful: Watcher,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Some(acceptor) = self.tls.clone() else {
            let io = TokioIo::new(ProblemAnswers::new(stream, max_head));
            // Upgrades: `GET /ws` takes the connection over.
            let connection = self.http1.serve_connection(io, service).with_upgrades();
            return log_end(watch(connection, graceful).await);
        };
        Box::pin(self.serve_tls(acceptor, stream, service, max_head, graceful)).await;
    }

    /// The TLS handshake, then HTTP/2 or HTTP/1.1 as ALPN chose.
    async fn serve_tls<S>(
        &self,
        acceptor: TlsAcceptor,
        stream: S,
        service: service::ConnService,
        max_head: usize,
        graceful: Watcher,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let tls = match tokio::time::timeout(self.handshake, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
            Err(_) => return tracing::debug!("TLS handshake timed out"),
        };
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(ProblemAnswers::new(tls, max_head));
        if h2 {
            let connection = self.http2.serve_connection(io, service);
            log_end(watch(connection, graceful).await);
        } else {
            let connection = self.http1.serve_connection(io, service).with_upgrades();
            log_end(watch(connection, graceful).await);
        }
    }
}

/// Tells connections to finish at shutdown and waits until they have
/// (hyper-util's `GracefulShutdown` cannot watch a connection that allows
/// upgrades, which `GET /ws` needs).
struct Drain(tokio::sync::watch::Sender<()>);

/// One connection's end of a [`Drain`].
type Watcher = tokio::sync::watch::Receiver<()>;

impl Drain {
    fn new() -> Self {
        Drain(tokio::sync::watch::channel(()).0)
    }

    fn watcher(&self) -> Watcher {
        self.0.subscribe()
    }

    /// Asks every connection to finish, and waits until each has.
    async fn shutdown(self) {
        let _ = self.0.send(());
        self.0.closed().await;
    }
}

/// A connection that can be asked to finish its requests and close.
trait Graceful: std::future::Future {
    fn graceful(self: std::pin::Pin<&mut Self>);
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<I, B, S> Graceful for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<BoxError>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<BoxError>,
{
    fn graceful(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, B, S, E> Graceful for hyper::server::conn::http2::Connection<I, S, E>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<BoxError>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<BoxError>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn graceful(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Serves `conn` to its end; at shutdown, asks it to finish first. The
/// watcher is held until the end, which is what [`Drain::shutdown`] waits
/// for.
async fn watch<C: Graceful>(conn: C, mut watcher: Watcher) -> C::Output {
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        out = conn.as_mut() => return out,
        _ = watcher.changed() => conn.as_mut().graceful(),
    }
    conn.await
}

fn log_end(ended: Result<(), hyper::Error>) {
    if let Err(e) = ended {
        tracing::trace!(error = %e, "connection ended with an error");
    }
}

/// Sets `SO_SNDBUF` (Linux doubles it for its bookkeeping, and stops
/// autotuning it).
fn set_send_buffer(stream: &tokio::net::TcpStream, size: usize) {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    // SAFETY: a valid socket descriptor, and a pointer to an int that
    // outlives the call, with its size.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "could not set SO_SNDBUF");
    }
}

/// Errors on one connection (reset before accept) are the client's; others
/// (too many open files) would spin the loop: back off for a moment.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
