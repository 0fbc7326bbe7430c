//! How a subscription is shown: its settings, its health (circuit,
//! disabled reason, secret rotation) and, on `GET /subscriptions/{id}`, its
//! delivery stats.

use serde::Serialize;

use crate::delivery::dispatch::event_types;
use crate::domain::Timestamp;
use crate::storage::webhooks::{DeliveryCounts, Subscription};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionView {
    pub id: i64,
    /// `push` or `pull`.
    pub mode: String,
    pub topic: String,
    pub filter: Option<String>,
    /// Push only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Shown once, in the answer to the create request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub max_attempts: i32,
    pub min_backoff_ms: i64,
    pub max_backoff_ms: i64,
    /// Push only (a pull consumer has no timeout to set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<i64>,
    pub paused: bool,
    /// One delivery in flight per ordering key, in log order.
    pub ordered: bool,
    /// Only messages whose `event` is one of these (absent: every event).
    pub event_types: Option<Vec<String>>,
    /// Push only: deliveries per second, shared by every node (absent:
    /// unlimited).
    pub rate_limit: Option<i32>,
    /// Push only: `closed` (attempts go ahead), `open` (too many recent
    /// attempts failed: nothing is attempted until `circuit_until`) or
    /// `half_open` (one probe decides).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(closed|open|half_open)$")]
    pub circuit: Option<String>,
    /// While open: when the probe may go; while half open: until when the
    /// probe holds its lease (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit_until: Option<String>,
    /// Since when every attempt has failed (RFC 3339); absent while the
    /// last attempt succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<String>,
    /// Why herald paused it (it failed for `--webhook-disable-after`);
    /// `PATCH {"paused": false}` clears it.
    pub disabled_reason: Option<String>,
    /// After a secret rotation: until when the previous secret still signs
    /// deliveries too (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_valid_until: Option<String>,
    /// The last message id the dispatcher has looked at.
    pub cursor: i64,
    pub created: String,
    pub updated: String,
    /// When the token that created it expires (RFC 3339): nothing is
    /// delivered after that until its owner `PATCH`es it with a fresh one.
    /// Absent when it never expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_expires: Option<String>,
    /// Push only, on `GET /subscriptions/{id}` (a pull subscription shows
    /// its counters at the top level instead: `backlog`, `in_flight`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
    /// Pull only: the ack deadline (e.g. `"30s"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_deadline: Option<String>,
    /// Pull only, on `GET /subscriptions/{id}`: its ledger now.
    #[serde(flatten)]
    pub pull: crate::http::pull::PullStatsView,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Stats {
    pub delivered: i64,
    /// Waiting for a first attempt.
    pub pending: i64,
    /// Failed at least once, waiting for another attempt.
    pub retrying: i64,
    pub dead_lettered: i64,
    /// Dropped unsent because their message expired first (`?ttl=` or the
    /// topic's `message_ttl`); never dead letters.
    pub expired: i64,
}

pub(super) fn view(
    s: Subscription,
    secret: bool,
    counts: Option<DeliveryCounts>,
) -> SubscriptionView {
    SubscriptionView {
        stats: counts.filter(|_| !s.is_pull()).map(|c| Stats {
            delivered: s.delivered,
            pending: c.pending,
            retrying: c.retrying,
            dead_lettered: c.dead_lettered,
            expired: s.expired,
        }),
        secret: (secret && !s.is_pull()).then(|| s.secret.clone()),
        timeout_ms: (!s.is_pull()).then_some(s.timeout_ms),
        ack_deadline: s
            .is_pull()
            .then(|| crate::http::pull::show_duration(s.ack_deadline_ms)),
        pull: Default::default(),
        url: (!s.is_pull()).then(|| s.url.clone()),
        event_types: event_types(&s),
        rate_limit: s.rate_limit,
        circuit: (!s.is_pull()).then(|| s.circuit.clone()),
        circuit_until: s.circuit_until_us.map(|us| Timestamp(us).to_rfc3339()),
        failing_since: s.failing_since_us.map(|us| Timestamp(us).to_rfc3339()),
        disabled_reason: s.disabled_reason.clone(),
        previous_secret_valid_until: s
            .previous_secret_until_us
            .filter(|us| *us > Timestamp::now().0)
            .map(|us| Timestamp(us).to_rfc3339()),
        id: s.id,
        mode: s.mode,
        topic: s.topic,
        filter: s.filter,
        max_attempts: s.max_attempts,
        min_backoff_ms: s.min_backoff_ms,
        max_backoff_ms: s.max_backoff_ms,
        paused: s.paused,
        ordered: s.ordered,
        cursor: s.cursor,
        created: Timestamp(s.created_us).to_rfc3339(),
        updated: Timestamp(s.updated_us).to_rfc3339(),
        owner_expires: s.owner_expires_us.map(|us| Timestamp(us).to_rfc3339()),
    }
}
