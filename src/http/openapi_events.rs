//! The payloads of herald's own events, for the OpenAPI document: herald
//! publishes them to the reserved topics `$herald.*`, read like any topic
//! (stream, history, webhook, pull). The SSE `event:` of each is the last
//! part of its topic (`circuit`, `disabled`, `dead_lettered`), so a browser
//! listens with `addEventListener("dead_lettered", …)`, not `onmessage`.

/// `data` of `$herald.subscription.circuit` (event `circuit`): a webhook's
/// circuit opened, went half open or closed.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: built with `json!`
#[schema(example = json!({"subscription_id": 3, "url": "https://example.com/hook",
    "topic": "orders.*", "circuit": "open", "time": "2026-12-01T09:00:00.000000Z"}))]
pub struct CircuitEvent {
    subscription_id: i64,
    url: String,
    /// The subscription's topic or pattern.
    topic: String,
    #[schema(pattern = "^(closed|open|half_open)$")]
    circuit: String,
    /// When herald published the event (RFC 3339).
    time: String,
}

/// `data` of `$herald.subscription.disabled` (event `disabled`): herald
/// paused a webhook that failed for `--webhook-disable-after`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: built with `json!`
#[schema(example = json!({"subscription_id": 3, "url": "https://example.com/hook",
    "topic": "orders.*", "reason": "every attempt has failed since …",
    "failing_since": "2026-11-28T09:00:00.000000Z", "time": "2026-12-01T09:00:00.000000Z"}))]
pub struct DisabledEvent {
    subscription_id: i64,
    url: String,
    topic: String,
    /// Also the subscription's `disabled_reason`.
    reason: String,
    failing_since: String,
    time: String,
}

/// `data` of `$herald.delivery.dead_lettered` (event `dead_lettered`): a
/// delivery (webhook or pull) became a dead letter. None is raised for
/// messages on `$herald.*` themselves.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: serialized from `delivery::events`
#[schema(example = json!({"subscription_id": 4, "dead_letter_id": 9, "message_id": 42,
    "topic": "jobs.email", "reason": "max_attempts", "attempts": 3, "status": null,
    "error": "nacked 3 times", "time": "2026-12-01T09:00:00.000000Z"}))]
pub struct DeadLetteredEvent {
    subscription_id: i64,
    dead_letter_id: i64,
    message_id: i64,
    /// The message's topic.
    topic: String,
    /// `max_attempts`, `retention`, `aborted`, `expired` …
    reason: String,
    attempts: i32,
    /// The endpoint's last HTTP status (webhooks only).
    status: Option<u16>,
    /// What happened: the endpoint's error, or for pull "nacked 3 times",
    /// "lease expired 3 times", "nacked once, lease expired 2 times".
    error: Option<String>,
    time: String,
}
