//! The front door: what every connection passes before the router, in the
//! spirit of nginx's `client_header_timeout`, `keepalive_timeout`,
//! `large_client_header_buffers` and `limit_conn`.
//!
//! - [`watchdog`]: the request-head and idle keep-alive timeouts.
//! - [`per_ip`]: open connections per client address, and the 429 given
//!   past the cap before anything is parsed.
//! - [`forwarded`]: trusted proxies and the client address they report.
//! - [`fd`]: the open-files limit, and the descriptors kept back from
//!   client connections.
//! - [`body_timeout`]: `--http-body-timeout`, a deadline on request body
//!   progress (`408`).
//! - [`protocol_errors`]: hyper's own answers to unparseable requests,
//!   rewritten as problem+json.
//! - [`service`]: the per-request part (client address, per-request cap
//!   behind a proxy, health-only answers past the connection budget).
//!
//! The request-head size limit is hyper's `max_header_size` (see
//! [`Limits::max_header_bytes`]).

pub mod body_timeout;
pub mod fd;
pub mod forwarded;
pub mod per_ip;
pub mod protocol_errors;
pub mod service;
pub mod watchdog;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub use service::ClientIp;

use crate::domain::Cidr;
use per_ip::{PerIp, Slot};
use watchdog::{Pressure, Timeouts};

/// The front door's settings. `None` and `0` mean "no limit".
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    /// How long a request body may make no progress (`408` past it).
    pub body_timeout: Option<Duration>,
    /// Largest request head; hyper answers a larger one `431`.
    pub max_header_bytes: usize,
    pub max_connections_per_ip: u32,
    pub trusted_proxies: Vec<Cidr>,
    /// Connections served in full; past this, health checks only.
    pub connection_budget: Option<usize>,
    /// The open-files limit it comes from.
    pub open_files: Option<fd::OpenFiles>,
}

/// Shared by the accept loop and every connection.
#[derive(Debug)]
pub struct FrontDoor {
    limits: Limits,
    per_ip: Arc<PerIp>,
    open: Arc<Open>,
    /// Refused connections waiting for their client to read the 429.
    refusing: Arc<AtomicUsize>,
}

/// How an accepted connection is to be served.
#[derive(Debug)]
pub struct Admitted {
    pub peer: SocketAddr,
    /// The peer is a trusted proxy: the client is named per request.
    pub proxied: bool,
    /// Past the connection budget: health checks only, then close.
    pub overflow: bool,
    _slot: Option<Slot>,
    _open: OpenGuard,
}

/// Open connections against the budget.
#[derive(Debug, Default)]
struct Open {
    count: AtomicUsize,
    budget: Option<usize>,
    pressure: Arc<Pressure>,
}

/// One open connection in [`Open`].
#[derive(Debug)]
struct OpenGuard(Arc<Open>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let open = self.0.count.fetch_sub(1, Ordering::Relaxed) - 1;
        // Some room again (a tenth of the budget): stop shedding.
        if let Some(budget) = self.0.budget
            && open <= budget - budget / 10
            && self.0.pressure.is_on()
        {
            self.0.pressure.set(false);
        }
    }
}

impl FrontDoor {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            per_ip: PerIp::new(limits.max_connections_per_ip),
            open: Arc::new(Open {
                count: AtomicUsize::new(0),
                budget: limits.connection_budget,
                pressure: Arc::default(),
            }),
            limits,
            refusing: Arc::default(),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            header: self.limits.header_timeout,
            idle: self.limits.idle_timeout,
            pressure: self.open.pressure.clone(),
        }
    }

    /// Answers `429` on a connection that [`FrontDoor::admit`] refused.
    pub fn refuse(&self, stream: tokio::net::TcpStream) {
        per_ip::refuse(stream, &self.refusing);
    }

    /// Admits a new connection from `peer`, or `None` when the peer
    /// already has its share (refuse it with [`FrontDoor::refuse`]). A
    /// trusted proxy's connections are not counted against it: they carry
    /// many clients, who are counted per request instead.
    pub fn admit(&self, peer: SocketAddr) -> Option<Admitted> {
        let proxied = self.is_trusted(peer.ip());
        let slot = if proxied {
            None
        } else {
            self.per_ip.acquire(peer.ip())?
        };
        let open = self.open.count.fetch_add(1, Ordering::Relaxed) + 1;
        let overflow = self.limits.connection_budget.is_some_and(|b| open > b);
        if overflow {
            tracing::debug!(open, "past the connection budget: health checks only");
            self.open.pressure.set(true);
        }
        Some(Admitted {
            peer,
            proxied,
            overflow,
            _slot: slot,
            _open: OpenGuard(self.open.clone()),
        })
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.limits.trusted_proxies.iter().any(|c| c.contains(ip))
    }
}
