//! Webhook subscriptions, pending deliveries (`retries`) and dead letters.
//!
//! The SQL is the same on both backends (numbered `$N` parameters work in
//! sqlx's SQLite driver too), so [`WebhookStore`] is implemented once, in
//! [`sql`], for every backend that says where its pools are
//! ([`super::SqlBackend`]). Postgres adds `FOR UPDATE SKIP LOCKED` to the
//! claim, which is what lets several nodes share the work without doing it
//! twice.

mod records;
pub use records::{Attempt, AttemptLog, AttemptQuery, DeadLetter, DeadLetterQuery, Failure};
mod dead_letters;
mod operations;
mod outcomes;
mod sql;

pub(crate) use dead_letters::{Burial, insert_dead_letter};

use crate::domain::{Message, Timestamp};

use super::StoreError;

/// A subscription's cursor is written when messages matched, or at least
/// this many were scanned without a match.
pub const CURSOR_WRITE_EVERY: usize = 100;

/// What a dispatch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatched {
    /// Queued what matched and moved the cursor past this many messages.
    Moved(usize),
    /// Read everything after the cursor (nothing new, or fewer than
    /// [`CURSOR_WRITE_EVERY`] messages and none matched): nothing to
    /// queue, and the cursor write is deferred.
    Unmatched,
    /// Another dispatch moved the cursor first, or the subscription is
    /// paused: nothing was queued, whatever matched.
    Lost,
}

/// A webhook subscription: herald itself attempts each delivery.
pub const MODE_PUSH: &str = "push";
/// A pull subscription: consumers lease, ack and nack its deliveries.
pub const MODE_PULL: &str = "pull";

/// Decides which messages a subscription wants.
pub type MessagePredicate = dyn for<'m> Fn(&'m Message) -> bool + Send + Sync;

/// Where a new subscription starts reading the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Only messages published after it is created.
    Head,
    /// Everything retained.
    Earliest,
    /// After this position.
    After(i64),
}

/// A subscription as created.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub topic: String,
    pub filter: Option<String>,
    pub url: String,
    pub secret: String,
    pub max_attempts: i32,
    pub min_backoff_ms: i64,
    pub max_backoff_ms: i64,
    pub timeout_ms: i64,
    pub paused: bool,
    /// Who created it (see [`crate::auth::Caller::owner`]).
    pub owner: Option<String>,
    /// When the creator's token expires: delivery stops then.
    pub owner_expires_us: Option<i64>,
    /// [`MODE_PUSH`] or [`MODE_PULL`].
    pub mode: String,
    /// How long a pull lease lasts unless extended.
    pub ack_deadline_ms: i64,
    /// One delivery in flight per ordering key, in log order.
    pub ordered: bool,
    /// Only messages with one of these events (a JSON array), if given.
    pub event_types: Option<String>,
    /// Deliveries per second, across nodes, if limited.
    pub rate_limit: Option<i32>,
}

/// A stored subscription.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Subscription {
    pub id: i64,
    pub topic: String,
    pub filter: Option<String>,
    pub url: String,
    pub secret: String,
    pub max_attempts: i32,
    pub min_backoff_ms: i64,
    pub max_backoff_ms: i64,
    pub timeout_ms: i64,
    pub paused: bool,
    pub cursor: i64,
    pub delivered: i64,
    pub created_us: i64,
    pub updated_us: i64,
    /// Pending deliveries dropped because their message expired first.
    pub expired: i64,
    /// Who created it (see [`crate::auth::Caller::owner`]).
    pub owner: Option<String>,
    /// When the creator's token expires: delivery stops then (a PATCH by
    /// the owner with a fresh token moves it).
    pub owner_expires_us: Option<i64>,
    /// [`MODE_PUSH`] (a webhook) or [`MODE_PULL`] (consumers lease its
    /// messages, see [`super::pull`]).
    pub mode: String,
    /// How long a pull lease lasts unless extended.
    pub ack_deadline_ms: i64,
    /// One delivery in flight per ordering key, in log order.
    pub ordered: bool,
    /// Only messages with one of these events (a JSON array), if given.
    pub event_types: Option<String>,
    /// Deliveries per second, across nodes, if limited.
    pub rate_limit: Option<i32>,
    /// The secret before the last rotation, which also signs deliveries
    /// until `previous_secret_until_us`.
    pub previous_secret: Option<String>,
    pub previous_secret_until_us: Option<i64>,
    /// [`CIRCUIT_CLOSED`], [`CIRCUIT_OPEN`] or [`CIRCUIT_HALF_OPEN`].
    pub circuit: String,
    /// Open: nothing is attempted before this. Half open: the probe's
    /// lease (another probe may go after it).
    pub circuit_until_us: Option<i64>,
    /// Since when every attempt has failed (None: the last one succeeded).
    pub failing_since_us: Option<i64>,
    /// Why herald paused it (it had failed for `--webhook-disable-after`).
    pub disabled_reason: Option<String>,
}

/// Attempts go ahead.
pub const CIRCUIT_CLOSED: &str = "closed";
/// Too many recent attempts failed: nothing is attempted until a cool-down
/// has passed.
pub const CIRCUIT_OPEN: &str = "open";
/// After the cool-down: one probe; its success closes the circuit.
pub const CIRCUIT_HALF_OPEN: &str = "half_open";

impl Subscription {
    /// Whether its owner's token has expired: nothing is delivered then.
    pub fn owner_expired(&self, now: Timestamp) -> bool {
        self.owner_expires_us.is_some_and(|e| e <= now.0)
    }

    /// Whether consumers pull its messages (no webhook is attempted).
    pub fn is_pull(&self) -> bool {
        self.mode == MODE_PULL
    }
}

/// Deliveries of a subscription by state.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct DeliveryCounts {
    /// Waiting for their first attempt.
    pub pending: i64,
    /// Failed at least once, waiting for another attempt.
    pub retrying: i64,
    pub dead_lettered: i64,
}

/// A delivery claimed for an attempt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub subscription_id: i64,
    pub position: i64,
    pub topic: String,
    /// Failed attempts so far.
    pub attempts: i32,
    /// A copy of the message's envelope, for a redriven dead letter whose
    /// message retention has since removed.
    pub envelope: Option<String>,
}

/// Webhook storage. Part of every [`super::Store`].
#[async_trait::async_trait]
pub trait WebhookStore: Send + Sync {
    async fn create_subscription(
        &self,
        s: NewSubscription,
        start: Start,
        now: Timestamp,
    ) -> Result<Subscription, StoreError>;
    /// Subscriptions with an id above `after`, by id.
    /// A page by id; only `owner`'s when given.
    async fn subscriptions(
        &self,
        after: i64,
        limit: u32,
        owner: Option<&str>,
    ) -> Result<Vec<Subscription>, StoreError>;
    async fn subscription(&self, id: i64) -> Result<Option<Subscription>, StoreError>;
    /// How many subscriptions `owner` has (None: those without an owner).
    async fn count_subscriptions(&self, owner: Option<&str>) -> Result<i64, StoreError>;
    async fn delivery_counts(&self, id: i64) -> Result<DeliveryCounts, StoreError>;
    /// Writes the settings of `s` (read, changed, written back); not its
    /// health (circuit, failing since, disabled reason), which delivery
    /// keeps (see [`WebhookOpsStore::reset_health`]).
    async fn update_subscription(
        &self,
        s: &Subscription,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Deletes the subscription with its pending deliveries and dead letters.
    async fn delete_subscription(&self, id: i64) -> Result<bool, StoreError>;
    async fn active_subscriptions(&self) -> Result<Vec<Subscription>, StoreError>;
    /// The active subscriptions among `ids`, by id.
    async fn active_subscriptions_in(&self, ids: &[i64]) -> Result<Vec<Subscription>, StoreError>;

    /// Queues the subscription's matching messages after `cursor` (at most
    /// `limit` read) and advances its cursor, in one transaction, if the
    /// cursor is still `cursor` (see [`Dispatched`]).
    #[allow(clippy::too_many_arguments)]
    async fn dispatch(
        &self,
        id: i64,
        cursor: i64,
        topics: Option<&[&str]>,
        limit: u32,
        matches: &MessagePredicate,
        now: Timestamp,
    ) -> Result<Dispatched, StoreError>;

    /// Deliveries waiting for an attempt, and dead letters, in all.
    async fn webhook_backlog(&self) -> Result<(i64, i64), StoreError>;

    /// Subscriptions that have deliveries due now.
    async fn due_subscriptions(&self, now: Timestamp) -> Result<Vec<i64>, StoreError>;

    /// Claims up to `limit` due deliveries of a subscription, leasing each
    /// until `lease_until`.
    async fn claim_due(
        &self,
        id: i64,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Due>, StoreError>;
    /// Ends a delivery that succeeded.
    async fn delivered(&self, due: &Due) -> Result<(), StoreError>;
    /// Reschedules a delivery whose attempt (at `now`) failed.
    async fn failed(
        &self,
        due: &Due,
        failure: &Failure,
        next: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Moves the delivery to the dead letters, with a copy of its message's
    /// envelope and why (`max_attempts`, `aborted` …). Returns the dead
    /// letter's id (None: it was gone already).
    async fn bury(
        &self,
        due: &Due,
        failure: &Failure,
        envelope: Option<&str>,
        reason: &'static str,
        now: Timestamp,
    ) -> Result<Option<i64>, StoreError>;
    /// Drops a pending delivery whose message has expired, counting it.
    async fn expire(&self, due: &Due) -> Result<(), StoreError>;
}

/// What dedicated webhook services add: the attempt log, the circuit
/// breaker, auto-disable, secret rotation and shared rate limits. Part of
/// every [`super::Store`].
#[async_trait::async_trait]
pub trait WebhookOpsStore: Send + Sync {
    /// Appends attempts to the log, in one statement.
    async fn log_attempts(&self, attempts: &[AttemptLog]) -> Result<(), StoreError>;
    /// A page of the attempt log, newest first.
    async fn attempts(&self, q: &AttemptQuery) -> Result<Vec<Attempt>, StoreError>;
    /// Deletes attempts logged before `before`; returns how many.
    async fn prune_attempts(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError>;
    /// Moves the circuit from `from` to `to` (open or half open until
    /// `until`), if it is still `from`: one node wins each transition.
    async fn set_circuit(
        &self,
        id: i64,
        from: &str,
        to: &str,
        until: Option<Timestamp>,
    ) -> Result<bool, StoreError>;
    /// Takes the half-open probe: moves the circuit from `from` to half
    /// open until `lease_until`, if it is still `from` and its time
    /// (cool-down, or the previous probe's lease) is over at `now`.
    async fn start_probe(
        &self,
        id: i64,
        from: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Notes that attempts fail since `since` (if not noted already), or
    /// with `None` that the last one succeeded.
    async fn set_failing_since(&self, id: i64, since: Option<Timestamp>) -> Result<(), StoreError>;
    /// Pauses an active subscription with a reason, if it has failed since
    /// `cutoff` or earlier (a success in between cleared that); false if
    /// not, or if it was paused.
    async fn disable(
        &self,
        id: i64,
        reason: &str,
        cutoff: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Forgets what paused a subscription and closes its circuit (it is
    /// being resumed).
    async fn reset_health(&self, id: i64) -> Result<(), StoreError>;
    /// Replaces the secret; the old one stays valid until `until`.
    async fn rotate_secret(
        &self,
        id: i64,
        secret: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Takes up to `want` tokens of `limit` per second from the window of
    /// second `second`, shared by every node; returns how many it got.
    async fn take_tokens(
        &self,
        id: i64,
        second: i64,
        want: u32,
        limit: u32,
    ) -> Result<u32, StoreError>;
    /// Gives back tokens taken in `second` and not used.
    async fn return_tokens(&self, id: i64, second: i64, unused: u32) -> Result<(), StoreError>;
}

/// Dead letters of webhooks and pull subscriptions: listed, shown,
/// deleted, redriven. Part of every [`super::Store`].
#[async_trait::async_trait]
pub trait DeadLetterStore: Send + Sync {
    async fn dead_letters(&self, q: &DeadLetterQuery) -> Result<Vec<DeadLetter>, StoreError>;
    async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, StoreError>;
    async fn delete_dead_letter(&self, id: i64) -> Result<bool, StoreError>;
    /// Puts the dead letter back in line for a fresh set of attempts.
    async fn redrive(&self, id: i64, now: Timestamp) -> Result<bool, StoreError>;
    /// Redrives a subscription's dead letters (of one topic, if given).
    async fn redrive_all(
        &self,
        subscription: i64,
        topic: Option<&str>,
        now: Timestamp,
    ) -> Result<u64, StoreError>;
}
