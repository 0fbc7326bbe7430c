//! The flags of presence and the WebSocket transport.

use clap::Args;

use crate::domain::HumanDuration;

#[derive(Debug, Clone, Args)]
pub struct RealtimeFlags {
    /// How long a node's presence lasts without renewal (Postgres: it is
    /// renewed every third of this). A node that dies leaves every other
    /// node's presence within this plus a third.
    #[arg(long, env = "HERALD_PRESENCE_LEASE", default_value = "15s", value_parser = super::positive_duration)]
    pub presence_lease: HumanDuration,

    /// Largest WebSocket frame answered with an `error` frame; beyond four
    /// times this the socket is closed (1009, message too big).
    #[arg(long, env = "HERALD_WS_MAX_FRAME_BYTES", default_value = "1MiB", value_parser = crate::domain::units::parse_bytes)]
    pub ws_max_frame_bytes: usize,

    /// Most subscriptions one WebSocket may hold at once.
    #[arg(long, env = "HERALD_WS_MAX_SUBSCRIPTIONS", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub ws_max_subscriptions: u32,

    /// Publishes per WebSocket, e.g. `1000/s` (beyond: an `error` frame
    /// with status 429, the socket stays up).
    #[arg(long, env = "HERALD_WS_PUBLISH_RATE", default_value = "1000/s")]
    pub ws_publish_rate: crate::auth::limits::Rate,

    /// Interval of WebSocket pings; a peer that has not answered one by the
    /// next is closed, so a dead peer is found within twice this.
    #[arg(long, env = "HERALD_WS_PING_INTERVAL", default_value = "20s", value_parser = super::positive_duration)]
    pub ws_ping_interval: HumanDuration,
}
