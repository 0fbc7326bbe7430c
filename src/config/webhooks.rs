//! The flags of webhook delivery: SSRF, polling, concurrency, the attempt
//! log, the circuit breaker, auto-disable and secret rotation.

use std::time::Duration;

use clap::Args;

use crate::delivery::circuit::BreakerSettings;
use crate::domain::HumanDuration;

#[derive(Debug, Clone, Args)]
pub struct WebhookFlags {
    /// Allow webhook URLs that resolve to loopback, private, link-local or
    /// unspecified addresses (refused by default against SSRF). The
    /// variable takes `1/0`, `true/false`, `yes/no` or `on/off`.
    #[arg(long, env = "HERALD_WEBHOOK_ALLOW_PRIVATE", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub webhook_allow_private: bool,

    /// How often webhook delivery looks for due retries, in milliseconds
    /// (new messages are dispatched as soon as they are committed).
    #[arg(long, env = "HERALD_WEBHOOK_POLL_MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_poll_ms: u64,

    /// Webhook attempts in flight per subscription.
    #[arg(long, env = "HERALD_WEBHOOK_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub webhook_concurrency: u64,

    /// How long every webhook attempt stays in the attempt log
    /// (`GET /subscriptions/{id}/attempts`); `0` keeps no log.
    #[arg(long, env = "HERALD_ATTEMPT_LOG_MAX_AGE", default_value = "7d")]
    pub attempt_log_max_age: HumanDuration,

    /// A subscription's circuit opens when at least this share of its
    /// recent attempts failed (0.0 to 1.0) …
    #[arg(long, env = "HERALD_WEBHOOK_CIRCUIT_FAILURE_RATIO", default_value_t = 0.9, value_parser = ratio)]
    pub webhook_circuit_failure_ratio: f64,

    /// … out of at least this many attempts …
    #[arg(long, env = "HERALD_WEBHOOK_CIRCUIT_MIN_ATTEMPTS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub webhook_circuit_min_attempts: u32,

    /// … within this window (per node).
    #[arg(long, env = "HERALD_WEBHOOK_CIRCUIT_WINDOW", default_value = "5m")]
    pub webhook_circuit_window: HumanDuration,

    /// How long an open circuit attempts nothing before one probe.
    #[arg(long, env = "HERALD_WEBHOOK_CIRCUIT_COOLDOWN", default_value = "1m")]
    pub webhook_circuit_cooldown: HumanDuration,

    /// Pause a subscription whose every attempt has failed for this long
    /// (`0`: never). `PATCH {"paused": false}` resumes it.
    #[arg(long, env = "HERALD_WEBHOOK_DISABLE_AFTER", default_value = "5d")]
    pub webhook_disable_after: HumanDuration,

    /// After `POST /subscriptions/{id}/rotate-secret`, how long the old
    /// secret still signs deliveries (beside the new one).
    #[arg(long, env = "HERALD_WEBHOOK_SECRET_OVERLAP", default_value = "24h")]
    pub webhook_secret_overlap: HumanDuration,

    /// The most subscriptions (push and pull) one owner may have: a
    /// token's owner, a JWT subject, or (with access control off) all
    /// anonymous callers together. Past it, creating one answers `429`
    /// `too-many-subscriptions`.
    #[arg(long, env = "HERALD_MAX_SUBSCRIPTIONS_PER_OWNER", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_subscriptions_per_owner: u32,
}

impl WebhookFlags {
    pub fn breaker(&self) -> BreakerSettings {
        BreakerSettings {
            failure_ratio: self.webhook_circuit_failure_ratio,
            min_attempts: self.webhook_circuit_min_attempts,
            window: self.webhook_circuit_window.0.max(Duration::from_millis(30)),
            cooldown: self.webhook_circuit_cooldown.0,
        }
    }
}

fn ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a ratio from 0.0 to 1.0")),
    }
}
