//! Integration tests: each starts a real herald on port 0 with a fresh
//! database and talks HTTP to it. Tests that take a backend run twice, on
//! SQLite and on Postgres (`HERALD_TEST_POSTGRES_URL`).

mod helpers;
mod jwt;

mod auth;
mod auth_logs;
mod batch;
mod body_limits;
mod cli;
mod cluster;
mod cross_site;
mod errors;
mod expiry;
mod filters;
mod front_door;
mod hosts;
mod idempotency;
mod idempotency_groups;
mod idempotency_scope;
mod json_limits;
mod lifecycle;
mod lock_waits;
mod logs;
mod ordering;
mod presence;
mod presence_cluster;
mod protocol_errors;
mod pruner;
mod publish;
mod publish_options;
mod pull;
mod pull_cluster;
mod pull_faults;
mod pull_ledger;
mod pull_paused;
mod readiness;
mod receiver;
mod redrive;
mod refused_writes;
mod resume;
mod retention;
mod scheduled;
mod schemas;
mod slow;
mod startup;
mod streams;
mod subscription_limits;
mod tls;
mod tokens;
mod ui;
mod webhook_ops;
mod webhooks;
mod ws;
mod ws_limits;
