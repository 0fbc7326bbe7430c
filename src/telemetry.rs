//! Prometheus metrics: their names, the process-wide recorder, and the text
//! `GET /metrics` answers. Labels stay few and fixed (no per-topic labels:
//! per-topic figures are in `GET /topics/{topic}`).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::storage::webhooks::{CIRCUIT_CLOSED, CIRCUIT_HALF_OPEN, CIRCUIT_OPEN};

pub const MESSAGES_PUBLISHED: &str = "herald_messages_published_total";
pub const PUBLISH_SECONDS: &str = "herald_publish_duration_seconds";
pub const PUBLISH_REJECTED: &str = "herald_publish_rejected_total";
pub const SCHEDULED_APPENDED: &str = "herald_scheduled_appended_total";
pub const COMMIT_BATCH: &str = "herald_commit_batch_messages";
pub const SSE_CONNECTIONS: &str = "herald_sse_connections";
pub const SSE_EVENTS: &str = "herald_sse_events_delivered_total";
pub const SSE_CATCHUPS: &str = "herald_sse_catchups_total";
pub const SSE_CATCHING_UP: &str = "herald_sse_catching_up";
pub const SSE_SLOW_DISCONNECTS: &str = "herald_sse_slow_disconnects_total";
pub const HUB_BYTES: &str = "herald_hub_bytes";
pub const WEBHOOK_ATTEMPTS: &str = "herald_webhook_attempts_total";
pub const WEBHOOK_PENDING: &str = "herald_webhook_deliveries_pending";
pub const DEAD_LETTERS: &str = "herald_dead_letters";
pub const WEBHOOK_CIRCUIT: &str = "herald_webhook_circuit_transitions_total";
pub const WEBHOOK_DISABLED: &str = "herald_webhook_disabled_total";
pub const SUBSCRIPTION_CIRCUIT: &str = "herald_subscription_circuit";
pub const PULL_MESSAGES: &str = "herald_pull_messages_total";
pub const PULL_WAITING: &str = "herald_pull_consumers_waiting";
pub const SUBSCRIPTION_BACKLOG: &str = "herald_subscription_backlog";
pub const SUBSCRIPTION_IN_FLIGHT: &str = "herald_subscription_in_flight";
pub const SUBSCRIPTION_OLDEST_AGE: &str = "herald_subscription_oldest_unacked_age_seconds";
pub const DB_CONNECTIONS: &str = "herald_db_connections";
pub const MESSAGES_PRUNED: &str = "herald_messages_pruned_total";
pub const RATE_LIMITED: &str = "herald_rate_limited_total";
pub const AUTH_REFUSED: &str = "herald_auth_refused_total";
pub const STREAMS_ENDED_BY_AUTH: &str = "herald_streams_ended_by_auth_total";
pub const LOG_LINES_DROPPED: &str = "herald_log_lines_dropped_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How many log lines the log writer dropped (its buffer was full: stderr
/// stalled), once logging is set up.
static LOG_DROPS: OnceLock<Box<dyn Fn() -> u64 + Send + Sync>> = OnceLock::new();

/// Names the count of dropped log lines, for [`record_log_drops`].
pub fn watch_log_drops(count: impl Fn() -> u64 + Send + Sync + 'static) {
    let _ = LOG_DROPS.set(Box::new(count));
}

/// Copies the count of dropped log lines into its counter (at each scrape).
pub fn record_log_drops() {
    let dropped = LOG_DROPS.get().map_or(0, |count| count());
    metrics::counter!(LOG_LINES_DROPPED).absolute(dropped);
}

/// Installs the recorder once per process (tests build several apps) and
/// returns the handle that renders it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(PUBLISH_SECONDS.into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0,
                    ],
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(COMMIT_BATCH.into()),
                        &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0],
                    )
                })
                .expect("bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if something else installed a recorder first.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

/// Sets the per-subscription gauges from storage (at each scrape):
/// subscriptions are few, so a `subscription` label is affordable.
pub async fn record_subscriptions(
    store: &dyn crate::storage::Store,
) -> Result<(), crate::storage::StoreError> {
    let now = crate::domain::Timestamp::now();
    let mut after = 0;
    loop {
        let page = store.subscriptions(after, 500, None).await?;
        for s in &page {
            let stats = store.pull_stats(s.id, now).await?;
            let labels = [("subscription", s.id.to_string()), ("mode", s.mode.clone())];
            metrics::gauge!(SUBSCRIPTION_BACKLOG, &labels).set(stats.backlog as f64);
            metrics::gauge!(SUBSCRIPTION_IN_FLIGHT, &labels).set(stats.in_flight as f64);
            let age = stats
                .oldest_us
                .map_or(0.0, |t| (now.0 - t).max(0) as f64 / 1e6);
            metrics::gauge!(SUBSCRIPTION_OLDEST_AGE, &labels).set(age);
            if !s.is_pull() {
                // One series per state, 1 for the current one.
                for state in [CIRCUIT_CLOSED, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN] {
                    let labels = [("subscription", s.id.to_string()), ("state", state.into())];
                    let now = f64::from(u8::from(s.circuit == state));
                    metrics::gauge!(SUBSCRIPTION_CIRCUIT, &labels).set(now);
                }
            }
        }
        match page.last() {
            Some(last) if page.len() == 500 => after = last.id,
            _ => return Ok(()),
        }
    }
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        WEBHOOK_CIRCUIT,
        "Webhook circuit transitions made by this node (to=open|half_open|closed)"
    );
    describe_counter!(
        WEBHOOK_DISABLED,
        "Webhook subscriptions paused by this node after failing for --webhook-disable-after"
    );
    describe_gauge!(
        SUBSCRIPTION_CIRCUIT,
        "Per webhook subscription: 1 for its circuit's state (state=closed|open|half_open), 0 for the others"
    );
    describe_counter!(MESSAGES_PUBLISHED, "Messages committed by this node");
    describe_histogram!(PUBLISH_SECONDS, Unit::Seconds, "Publish request to commit");
    describe_histogram!(COMMIT_BATCH, "Messages per group commit");
    describe_counter!(
        PUBLISH_REJECTED,
        "Publishes refused at once because --max-pending-publishes messages already waited for the writer (reason=overloaded)"
    );
    describe_counter!(
        SCHEDULED_APPENDED,
        "Scheduled messages appended to the log by this node at their time"
    );
    describe_gauge!(SSE_CONNECTIONS, "Open SSE streams");
    describe_counter!(
        LOG_LINES_DROPPED,
        "Log lines dropped because the log buffer was full (stderr not read fast enough)"
    );
    describe_gauge!(
        SUBSCRIPTION_BACKLOG,
        "Per subscription: deliveries waiting (not leased or in an attempt now)"
    );
    describe_gauge!(
        SUBSCRIPTION_IN_FLIGHT,
        "Per subscription: deliveries leased by pull consumers now (0 for webhooks)"
    );
    describe_gauge!(
        SUBSCRIPTION_OLDEST_AGE,
        "Per subscription: age of the oldest message not yet acknowledged or delivered (0 when none)"
    );
    describe_counter!(SSE_EVENTS, "Events written to SSE streams");
    describe_counter!(
        SSE_CATCHUPS,
        "Times a stream read from storage (resume or lag)"
    );
    describe_gauge!(SSE_CATCHING_UP, "Streams reading from storage right now");
    describe_counter!(
        SSE_SLOW_DISCONNECTS,
        "Connections closed because nothing could be written to them for --sse-write-timeout (stalled subscribers)"
    );
    describe_gauge!(
        HUB_BYTES,
        "Estimated bytes of messages the hub holds for subscribers that have not read them"
    );
    describe_counter!(WEBHOOK_ATTEMPTS, "Webhook attempts by outcome");
    describe_gauge!(WEBHOOK_PENDING, "Webhook deliveries waiting for an attempt");
    describe_gauge!(DEAD_LETTERS, "Dead letters stored");
    describe_gauge!(
        PULL_WAITING,
        "Per subscription: long polls and streaming pulls on this node waiting for a message now"
    );
    describe_counter!(
        PULL_MESSAGES,
        "Messages of pull subscriptions by event: leased (first delivery), redelivered, acked, nacked"
    );
    describe_counter!(
        MESSAGES_PRUNED,
        "Messages removed by retention or because they expired, by reason"
    );
    describe_counter!(
        RATE_LIMITED,
        "Requests refused with 429 by a per-client limit, by limit (publish, streams)"
    );
    describe_counter!(
        AUTH_REFUSED,
        "Requests refused by access control, by status (401, 403)"
    );
    describe_counter!(
        STREAMS_ENDED_BY_AUTH,
        "Streams ended because their token expired or was revoked"
    );
    describe_gauge!(
        DB_CONNECTIONS,
        "Database pool connections by pool and state"
    );
}
