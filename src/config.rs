//! Command line and environment: every flag has a `HERALD_*` variable.

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::domain::Cidr;
use crate::domain::HumanDuration;

mod realtime;
pub mod reference;
mod settings;
mod webhooks;

pub use realtime::RealtimeFlags;
pub use webhooks::WebhookFlags;

#[derive(Debug, Parser)]
#[command(
    name = "herald",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `serve`, the default command.
    #[command(flatten)]
    pub serve: ServeConfig,
}

// Parsed once at start-up: the size of the `Serve` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeConfig),
    /// Print the OpenAPI 3.1 document (what `GET /openapi.json` serves).
    Openapi(OpenapiArgs),
    /// Manage API tokens directly in the database (the first admin token).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Publish one message to a running herald (`HERALD_URL`).
    Publish(crate::cli::publish::PublishArgs),
    /// Print a running herald's messages as they arrive, resuming exactly
    /// after a lost connection.
    Subscribe(crate::cli::subscribe::SubscribeArgs),
    /// Exit 0 when a running herald answers `GET /healthz` (for container
    /// health checks).
    Health(crate::cli::Server),
    /// Print the configuration reference of the documentation (Markdown).
    #[command(hide = true)]
    ConfigReference,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (it is shown only this once).
    Create(TokenCreateArgs),
    /// List tokens that are not revoked (never their secrets).
    List(DatabaseArg),
    /// Revoke a token by id.
    Revoke {
        id: i64,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[derive(Debug, Args)]
pub struct DatabaseArg {
    /// The database herald uses (`sqlite://FILE` or `postgres://…`).
    #[arg(
        long,
        env = "HERALD_DATABASE_URL",
        default_value = "sqlite://herald.db"
    )]
    pub database_url: String,
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// Topic pattern it may publish to (repeat for several; `{sub}` is its
    /// subject).
    #[arg(long)]
    pub publish: Vec<String>,
    /// Topic pattern it may read (repeat for several).
    #[arg(long)]
    pub subscribe: Vec<String>,
    /// May do everything, including managing tokens.
    #[arg(long)]
    pub admin: bool,
    /// Who holds it (fills `{sub}`).
    #[arg(long)]
    pub subject: Option<String>,
    /// A duration from now (`90d`) or an RFC 3339 time.
    #[arg(long)]
    pub expires: Option<String>,
    #[command(flatten)]
    pub database: DatabaseArg,
}

#[derive(Debug, Args)]
pub struct OpenapiArgs {
    /// Write the document to this file instead of printing it. The file is
    /// replaced atomically: on any failure the old one stays as it was.
    #[arg(long, value_name = "FILE")]
    pub write: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqliteSync {
    /// fsync every commit: nothing acknowledged is lost on power failure.
    Full,
    /// fsync at checkpoints: survives a crash of herald, not of the machine.
    Normal,
}

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "HERALD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// `sqlite://FILE` (created if missing) or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "HERALD_DATABASE_URL",
        default_value = "sqlite://herald.db"
    )]
    pub database_url: String,

    #[command(flatten)]
    pub log: crate::logging::LogArgs,

    /// PEM certificate chain: serve HTTPS (HTTP/2 and HTTP/1.1 through
    /// ALPN). Needs --tls-key. Both files are read again on SIGHUP.
    #[arg(
        long,
        env = "HERALD_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<std::path::PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(
        long,
        env = "HERALD_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<std::path::PathBuf>,

    /// Largest message body accepted, in bytes.
    #[arg(long, env = "HERALD_MAX_MESSAGE_BYTES", default_value_t = 1024 * 1024)]
    pub max_message_bytes: usize,

    /// Most messages in one batch publish (`POST /topics/{topic}/batch`).
    #[arg(long, env = "HERALD_BATCH_MAX_MESSAGES", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch_max_messages: u64,

    /// Largest batch publish body, in bytes.
    #[arg(long, env = "HERALD_BATCH_MAX_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub batch_max_bytes: usize,

    /// Interval of the SSE heartbeat comment, in milliseconds.
    #[arg(long, env = "HERALD_HEARTBEAT_MS", default_value_t = 15_000, value_parser = clap::value_parser!(u64).range(10..))]
    pub heartbeat_ms: u64,

    /// The `retry:` reconnection delay sent to SSE clients, in milliseconds.
    #[arg(long, env = "HERALD_SSE_RETRY_MS", default_value_t = 2_000)]
    pub sse_retry_ms: u64,

    /// Close each SSE stream after this long, in milliseconds (0: never).
    /// Clients reconnect and resume exactly; this spreads long-lived
    /// connections across nodes behind a load balancer.
    #[arg(long, env = "HERALD_SSE_MAX_DURATION_MS", default_value_t = 0)]
    pub sse_max_duration_ms: u64,

    /// Committed batches a subscriber may lag behind before it catches up
    /// from storage.
    #[arg(long, env = "HERALD_HUB_CAPACITY", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub hub_capacity: u64,

    /// Most messages committed in one transaction (group commit).
    #[arg(long, env = "HERALD_MAX_BATCH", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_batch: u64,

    /// Most messages that may wait for the writer; past it a publish gets
    /// `503` with `Retry-After` at once (counted in
    /// `herald_publish_rejected_total`), so memory stays bounded when the
    /// database is slow.
    #[arg(long, env = "HERALD_MAX_PENDING_PUBLISHES", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_pending_publishes: u64,

    /// How long an `Idempotency-Key` is remembered per topic, e.g. `24h`.
    #[arg(long, env = "HERALD_IDEMPOTENCY_WINDOW", default_value = "24h")]
    pub idempotency_window: HumanDuration,

    /// The furthest ahead a publish may be scheduled (`?delay=`, `?at=`).
    #[arg(long, env = "HERALD_SCHEDULE_MAX_DELAY", default_value = "30d")]
    pub schedule_max_delay: HumanDuration,

    /// How long to wait for the database (connection, lock, commit) before
    /// answering 503, in milliseconds.
    #[arg(long, env = "HERALD_DB_TIMEOUT_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub db_timeout_ms: u64,

    /// Database connections (readers, on SQLite).
    #[arg(long, env = "HERALD_DB_MAX_CONNECTIONS", default_value_t = 8)]
    pub db_max_connections: u32,

    /// SQLite durability.
    #[arg(long, env = "HERALD_SQLITE_SYNCHRONOUS", value_enum, default_value_t = SqliteSync::Full)]
    pub sqlite_synchronous: SqliteSync,

    /// Largest `limit` of the history endpoint.
    #[arg(long, env = "HERALD_HISTORY_MAX_LIMIT", default_value_t = 1000)]
    pub history_max_limit: u32,

    /// Webhook delivery.
    #[command(flatten)]
    pub webhooks: WebhookFlags,

    /// Origins allowed to call herald from a browser on another site
    /// (comma separated, e.g. `https://app.example.com`), or `*` for any.
    /// Default: none (same origin only).
    #[arg(long, env = "HERALD_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Hosts a request may name in `Host` (comma separated names or
    /// addresses; `.example.com` for a domain and its subdomains; `*` for
    /// any). Others get 421, against DNS rebinding. Default: loopback
    /// names when herald listens on loopback, else any.
    #[arg(long, env = "HERALD_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// At shutdown, how long to wait for open requests before exiting, in
    /// milliseconds.
    #[arg(long, env = "HERALD_SHUTDOWN_GRACE_MS", default_value_t = 10_000)]
    pub shutdown_grace_ms: u64,

    /// Keep messages this long unless their topic says otherwise (`0`:
    /// forever), e.g. `7d`, `24h`.
    #[arg(long, env = "HERALD_RETENTION_MAX_AGE", default_value = "7d")]
    pub retention_max_age: HumanDuration,

    /// Keep at most this many of each topic's newest messages unless the
    /// topic says otherwise (`0`: no limit).
    #[arg(long, env = "HERALD_RETENTION_MAX_MESSAGES", default_value_t = 0)]
    pub retention_max_messages: u64,

    /// How often the pruner removes what retention no longer keeps and
    /// what has expired.
    #[arg(long, env = "HERALD_PRUNE_INTERVAL", default_value = "30s", value_parser = positive_duration)]
    pub prune_interval: HumanDuration,

    /// How long a client may take to send a whole request head, from its
    /// first byte (or from connecting), before the connection is closed
    /// (`0`: no limit). Guards against slowloris clients.
    #[arg(long, env = "HERALD_HTTP_HEADER_TIMEOUT", default_value = "10s")]
    pub http_header_timeout: HumanDuration,

    /// How long a keep-alive connection may sit idle between requests
    /// before it is closed (`0`: no limit). Open SSE streams are not idle.
    #[arg(long, env = "HERALD_HTTP_IDLE_TIMEOUT", default_value = "60s")]
    pub http_idle_timeout: HumanDuration,

    /// How long a request body may go without a byte arriving before the
    /// request is answered 408 and its connection closed (`0`: no limit).
    /// Each byte restarts the clock, so slow uploads that keep sending are
    /// not cut.
    #[arg(long, env = "HERALD_HTTP_BODY_TIMEOUT", default_value = "30s")]
    pub http_body_timeout: HumanDuration,

    /// Largest request head (request line and headers), in bytes; larger
    /// heads are answered 431.
    #[arg(long, env = "HERALD_HTTP_MAX_HEADER_BYTES", default_value_t = 16 * 1024, value_parser = clap::value_parser!(u64).range(1024..=1024 * 1024))]
    pub http_max_header_bytes: u64,

    /// Most open connections from one client address (IPv6: one /64);
    /// more are refused with a 429 (`0`: no limit).
    #[arg(long, env = "HERALD_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: u32,

    /// Proxies whose `X-Forwarded-For` (or `Forwarded`) header names the
    /// client, as addresses or CIDRs, comma separated (e.g.
    /// `10.0.0.0/8,127.0.0.1`). From any other peer these headers are
    /// ignored, so that clients cannot spoof their address.
    #[arg(long, env = "HERALD_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<Cidr>,

    /// Most memory the hub may hold for subscribers that have not read it
    /// yet (`32MiB`, `512KiB`, or bytes). A subscriber further behind reads
    /// from storage instead, and loses nothing.
    #[arg(long, env = "HERALD_HUB_MAX_BYTES", default_value = "32MiB", value_parser = crate::domain::units::parse_bytes)]
    pub hub_max_bytes: usize,

    /// Close a connection that could not write anything for this long (a
    /// stalled SSE client: it reconnects and resumes exactly). `0`: never.
    #[arg(long, env = "HERALD_SSE_WRITE_TIMEOUT", default_value = "60s")]
    pub sse_write_timeout: HumanDuration,

    /// Socket send buffer of each connection (`SO_SNDBUF`, e.g. `128KiB`;
    /// Linux doubles it). It bounds the kernel memory a client that stops
    /// reading can pin. `0`: the kernel's autotuning (up to 4 MiB each).
    #[arg(long, env = "HERALD_TCP_SEND_BUFFER", default_value = "128KiB", value_parser = crate::domain::units::parse_bytes)]
    pub tcp_send_buffer: usize,

    /// HS256 secret for JWTs (at least 32 bytes). Turns access control on.
    #[arg(long, env = "HERALD_AUTH_JWT_SECRET", hide_env_values = true)]
    pub auth_jwt_secret: Option<String>,

    /// PEM public key file for RS256, ES256 or EdDSA JWTs (repeat, or
    /// separate with commas, for several). Turns access control on.
    #[arg(
        long,
        env = "HERALD_AUTH_JWT_KEY",
        value_delimiter = ',',
        value_name = "FILE"
    )]
    pub auth_jwt_key: Vec<std::path::PathBuf>,

    /// The `aud` every JWT must carry (not checked when unset).
    #[arg(long, env = "HERALD_AUTH_JWT_AUDIENCE")]
    pub auth_jwt_audience: Option<String>,

    /// What a request without a token may do. Giving this flag turns
    /// access control on (with API tokens only, if no JWT key is set);
    /// once it is on, the default is `none`.
    #[arg(long, env = "HERALD_ANONYMOUS", value_enum)]
    pub anonymous: Option<crate::auth::Anonymous>,

    /// How often each node reads revoked API tokens from the database;
    /// a revoked token's open streams end within this.
    #[arg(long, env = "HERALD_AUTH_REVOCATION_POLL", default_value = "5s", value_parser = positive_duration)]
    pub auth_revocation_poll: HumanDuration,

    /// Publishes per token (or per address, without one), e.g. `100/s`,
    /// `6000/m`. Unset: no limit.
    #[arg(long, env = "HERALD_RATE_LIMIT_PUBLISH")]
    pub rate_limit_publish: Option<crate::auth::limits::Rate>,

    /// Publishes a client may make at once before the rate applies
    /// (default: the rate's count).
    #[arg(long, env = "HERALD_RATE_LIMIT_PUBLISH_BURST")]
    pub rate_limit_publish_burst: Option<u32>,

    /// Most open streams per token (or per address, without one); `0`: no
    /// limit.
    #[arg(long, env = "HERALD_MAX_STREAMS_PER_CLIENT", default_value_t = 0)]
    pub max_streams_per_client: u32,

    /// Presence and WebSocket.
    #[command(flatten)]
    pub realtime: RealtimeFlags,

    /// Test hook, hidden: the most pages the SQLite file may hold (`PRAGMA
    /// max_page_count` on the writer), past which writes fail with
    /// SQLITE_FULL as on a full disk, without a small file system.
    #[arg(long, env = "HERALD_SQLITE_MAX_PAGE_COUNT", hide = true)]
    pub sqlite_max_page_count: Option<u32>,
}

/// A duration flag that cannot be `0`.
fn positive_duration(s: &str) -> Result<HumanDuration, String> {
    match HumanDuration::parse(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be longer than 0".into()),
        Err(e) => Err(e.to_string()),
    }
}

impl ServeConfig {
    /// The configuration from defaults and `HERALD_*` variables, with
    /// `args` (flags, without the program name) on top.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            serve: ServeConfig,
        }
        let argv = std::iter::once(std::ffi::OsString::from("herald"))
            .chain(args.into_iter().map(Into::into));
        Only::try_parse_from(argv).map(|o| o.serve)
    }
}
