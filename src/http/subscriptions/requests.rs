//! The bodies of `POST /subscriptions` and `PATCH /subscriptions/{id}`.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"topic": "orders.*", "url": "https://example.com/hook", "filter": "data.total > 100"}))]
pub struct CreateSubscription {
    /// `push` (the default: herald POSTs each message to `url`) or `pull`
    /// (consumers lease messages with `POST /subscriptions/{id}/pull`).
    #[schema(value_type = Option<String>, pattern = "^(push|pull)$", example = "push")]
    pub mode: Option<String>,
    /// A topic name or pattern.
    #[schema(
        pattern = r"^((\*|[A-Za-z0-9_-]+)\.)*(\*\*|\*|[A-Za-z0-9_-]+)$",
        min_length = 1,
        max_length = 128
    )]
    pub topic: String,
    /// An http or https URL; required for push, refused for pull.
    #[schema(pattern = r"^https?://", example = "https://example.com/hook")]
    pub url: Option<String>,
    /// A filter expression.
    #[schema(max_length = 1024)]
    pub filter: Option<String>,
    /// `whsec_` and base64 of 24-64 bytes; generated when absent.
    #[schema(pattern = r"^whsec_([A-Za-z0-9+/]{4}){8,16}$")]
    pub secret: Option<String>,
    #[schema(minimum = 1, maximum = 100)]
    pub max_attempts: Option<i32>,
    /// The first retry's delay in milliseconds (default 1000); or set
    /// `min_backoff` as a duration string.
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub min_backoff_ms: Option<i64>,
    /// `min_backoff_ms` as a duration string, `"1ms"` to `"1d"`.
    #[schema(example = "1s")]
    pub min_backoff: Option<String>,
    /// At least `min_backoff_ms` (default 600000); or set `max_backoff`.
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub max_backoff_ms: Option<i64>,
    /// `max_backoff_ms` as a duration string, up to `"1d"`.
    #[schema(example = "10m")]
    pub max_backoff: Option<String>,
    /// Push only: how long herald waits for the endpoint's answer, in
    /// milliseconds (default 15000); or set `timeout`.
    #[schema(minimum = 1, maximum = 300_000)]
    pub timeout_ms: Option<i64>,
    /// Push only: `timeout_ms` as a duration string, up to `"5m"`.
    #[schema(example = "15s")]
    pub timeout: Option<String>,
    #[serde(default)]
    pub paused: bool,
    /// `"head"` (default), `"earliest"`, or a message id to start after.
    #[schema(value_type = Option<Object>, example = "earliest")]
    pub start: Option<Value>,
    /// Pull only: how long a lease lasts before the message is handed to
    /// another consumer, `"1s"` to `"10m"` (default `"30s"`).
    #[schema(example = "30s")]
    pub ack_deadline: Option<String>,
    /// Deliver the messages of one ordering key (`?key=` on publish) one
    /// at a time, in log order: the next is leased (or pushed) once the
    /// previous one is acked (delivered) or dead-lettered. Messages without
    /// a key, and different keys, go in parallel. Set at creation.
    pub ordered: Option<bool>,
    /// Only messages whose `event` is one of these (1 to 64 event names;
    /// a message published without an event has `message`).
    #[schema(min_items = 1, max_items = 64, example = json!(["order.created"]))]
    pub event_types: Option<Vec<String>>,
    /// Push only: at most this many deliveries per second (1 to 10000),
    /// shared by every node.
    #[schema(minimum = 1, maximum = 10_000)]
    pub rate_limit: Option<i32>,
}

/// Every field optional; `"filter": null` removes the filter.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSubscription {
    #[schema(pattern = r"^https?://")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 1024)]
    pub filter: Option<Option<String>>,
    pub paused: Option<bool>,
    #[schema(minimum = 1, maximum = 100)]
    pub max_attempts: Option<i32>,
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub min_backoff_ms: Option<i64>,
    /// `min_backoff_ms` as a duration string (`"1s"`).
    pub min_backoff: Option<String>,
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub max_backoff_ms: Option<i64>,
    /// `max_backoff_ms` as a duration string (`"10m"`).
    pub max_backoff: Option<String>,
    /// Push only.
    #[schema(minimum = 1, maximum = 300_000)]
    pub timeout_ms: Option<i64>,
    /// Push only: `timeout_ms` as a duration string (`"15s"`).
    pub timeout: Option<String>,
    /// Pull only: `"1s"` to `"10m"`.
    pub ack_deadline: Option<String>,
    /// `null` delivers every event again.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>, min_items = 1, max_items = 64)]
    pub event_types: Option<Option<Vec<String>>>,
    /// Push only; `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 10_000)]
    pub rate_limit: Option<Option<i32>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
