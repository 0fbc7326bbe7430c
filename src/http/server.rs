//! The HTTP/1.1 accept loop: `axum::serve` with the connection settings
//! herald needs, which `axum::serve` does not expose.
//!
//! - `TCP_NODELAY`: an SSE event is one small write; with Nagle's algorithm
//!   it can wait for the peer's delayed ACK (up to 40 ms on Linux).
//! - The front door ([`super::front_door`]): per-client caps, request-head
//!   size and timeouts, idle keep-alive timeout, the connection budget.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::front_door::watchdog::{self, ConnState, Watched};
use super::front_door::{FrontDoor, service};

/// Serves `app` until `shutdown`, then stops accepting and waits for open
/// connections to finish (streams end on the same token).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    door: Arc<FrontDoor>,
    shutdown: CancellationToken,
) {
    // Resolve the router's state once, not per connection (serving a
    // `Router` as a make-service re-resolves it for every connection: about
    // 20 KiB that an idle SSE connection would keep for its lifetime).
    let app: Router = app.with_state(());
    let mut builder = http1::Builder::new();
    builder.max_header_size(door.limits().max_header_bytes);
    let graceful = GracefulShutdown::new();
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
        let state = ConnState::new();
        let io = TokioIo::new(Watched::new(stream, state.clone()));
        let service = service::service(service::Connection {
            app: app.clone(),
            door: door.clone(),
            admitted,
            state: state.clone(),
        });
        let connection = graceful.watch(builder.serve_connection(io, service));
        let timeouts = door.timeouts();
        tokio::spawn(async move {
            tokio::select! {
                ended = connection => if let Err(e) = ended {
                    tracing::trace!(error = %e, "connection ended with an error");
                },
                why = watchdog::expired(&state, &timeouts) => {
                    tracing::debug!(?why, %peer, "closing a connection that timed out");
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
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
