//! herald: a durable notification service. Publishers `POST` messages to
//! topics; herald stores each one with a position in one commit-ordered log
//! and a per-topic seq, then fans it out to Server-Sent Events subscribers,
//! who resume exactly from `Last-Event-ID`.
//!
//! # Layout
//! - [`auth`]: access control: the caller extractor, JWTs, API tokens,
//!   revocation and per-client limits.
//! - [`domain`]: topic names and patterns, positions and cursors, messages
//!   and their wire encoding (plain Rust).
//! - [`storage`]: the [`storage::Store`] trait, SQLite and Postgres.
//! - [`fanout`]: the group-commit writer, the hub and sequencer, and the
//!   per-connection subscriber streams.
//! - [`http`]: the router, one module per resource, problem+json errors;
//!   the WebSocket transport (`/ws`); the accept loop (HTTP/1.1, or TLS
//!   with HTTP/2 through ALPN, its certificate reloaded on SIGHUP),
//!   request logs and request ids.
//! - [`delivery`]: one ledger of deliveries for every subscription: webhook
//!   attempts with retries, dead letters and the attempt log, each
//!   endpoint's health (circuit breaker, auto-disable, rate limit), herald's
//!   own `$herald.*` events, and the consumers of pull subscriptions
//!   (leases, long polls).
//! - [`presence`]: who is listening: each stream's connection id and
//!   client label, join and leave events, and (on a shared database)
//!   every node's streams, kept with node leases.
//! - [`topics`]: each topic's configuration while herald runs (its schema
//!   compiled); [`retention`]: retention policies and the pruner task;
//!   [`scheduler`]: appends scheduled publishes when due, and prunes
//!   idempotency keys past their window.
//! - [`telemetry`]: Prometheus metrics; [`logging`]: log lines as text or
//!   JSON.
//! - [`cli`]: the command-line client (`herald publish`, `herald
//!   subscribe`, `herald health`) of a running herald.
//! - [`config`]: flags and environment; [`startup`]: wiring and shutdown.

pub mod auth;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod fanout;
pub mod http;
pub mod logging;
pub mod presence;
pub mod retention;
pub mod scheduler;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod topics;
