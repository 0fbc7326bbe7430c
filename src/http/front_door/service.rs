//! The per-request part of the front door, around the router: names the
//! client ([`ClientIp`]), applies the per-client cap per request behind a
//! trusted proxy, answers only health checks on connections past the
//! connection budget, and ties each answer to the connection's
//! [`ConnState`] so the watchdog knows when the connection is idle.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use tower::ServiceExt;

use super::body_timeout::{self, Expired, TimedBody};
use super::watchdog::{ConnState, Guarded};
use super::{Admitted, FrontDoor, forwarded};
use crate::http::App;
use crate::http::error::ApiError;

/// The client's address as herald counts and limits it: the peer, or the
/// address a trusted proxy reports. In every request's extensions, for
/// whatever limits clients (rate limits use this, never the raw headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// What each request of one connection shares.
pub struct Connection {
    pub app: Arc<crate::http::App>,
    pub door: Arc<FrontDoor>,
    pub admitted: Admitted,
    pub state: Arc<ConnState>,
}

/// The hyper service of one connection.
pub fn service(conn: Connection) -> ConnService {
    ConnService(Arc::new(conn))
}

#[derive(Clone)]
pub struct ConnService(Arc<Connection>);

type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, req: Request<Incoming>) -> Answer {
        Box::pin(handle(self.0.clone(), req))
    }
}

async fn handle(
    conn: Arc<Connection>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let busy = conn.state.begin();
    let expired = Expired::default();
    let timeout = conn.door.limits.body_timeout;
    let mut req = match timeout {
        Some(t) => req.map(|body| TimedBody::wrap(body, t, &expired)),
        None => req.map(Body::new),
    };
    let peer = conn.admitted.peer;
    let client = if conn.admitted.proxied {
        forwarded::client_ip(peer.ip(), req.headers(), &conn.door.limits.trusted_proxies)
    } else {
        peer.ip().to_canonical()
    };
    req.extensions_mut().insert(ClientIp(client));
    req.extensions_mut().insert(ConnectInfo(peer));
    // Behind a proxy, a client's requests in flight stand in for its
    // connections (an SSE stream is one of each).
    let slot = if conn.admitted.proxied {
        match conn.door.per_ip.acquire(client) {
            Some(slot) => slot,
            None => return Ok(too_many_connections().map(|b| Guarded::wrap(b, busy))),
        }
    } else {
        None
    };
    if conn.admitted.overflow {
        return Ok(overflow(&conn.app, req)
            .await
            .map(|b| Guarded::wrap(b, busy)));
    }
    let mut response = match App::clone(&conn.app).oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if let Some(t) = timeout
        && expired.is_set()
    {
        response = body_timeout::timed_out(t);
    }
    Ok(response.map(|body| Guarded::wrap(body, (busy, slot))))
}

/// Past the connection budget (descriptors nearly exhausted): `/healthz`
/// is answered, `/readyz` says not ready, anything else gets 503; every
/// such connection is closed after its answer.
async fn overflow(app: &App, req: Request<Body>) -> Response<Body> {
    let mut response = match req.uri().path() {
        "/healthz" => match app.clone().oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        _ => ApiError::unavailable(
            "herald is at its connection limit; try again shortly or another node",
        )
        .into_response(),
    };
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn too_many_connections() -> Response<Body> {
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-connections",
        "Too many connections",
        "this client address has too many requests open",
    );
    error.retry_after = Some(1);
    error.into_response()
}
