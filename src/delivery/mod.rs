//! Webhook delivery: at-least-once, durable, shared fairly between nodes.
//!
//! Each pass (after new messages reach the hub, and every `--webhook-poll-ms`):
//! 1. **Dispatch.** For every active subscription behind the log head, move
//!    its matching messages into `retries` and advance its cursor, in one
//!    transaction (on Postgres, one node at a time per subscription).
//!    Pull subscriptions are dispatched the same way (see [`dispatch`]).
//! 2. **Attempt** (push subscriptions only; consumers lease the rows of
//!    pull subscriptions, see [`pull`]). Claim due rows of each
//!    subscription with a lease, up to its free concurrency slots, and
//!    `POST` each in its own task. Success deletes the row; failure
//!    reschedules it with backoff; the last allowed failure moves it to
//!    `dead_letters`.
//!
//! A crash loses nothing: rows stay in `retries`, and a claimed row whose
//! node died is claimed again when its lease runs out. A slow endpoint
//! only fills its own subscription's slots.

pub mod client;
pub mod dispatch;
pub mod guard;
pub mod pull;
pub mod special_ranges;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::domain::webhook::Backoff;
use crate::domain::{Message, Timestamp, TopicSelector};
use crate::fanout::{FilterRegistry, Hub, Matcher, Missed};
use crate::storage::webhooks::{Due, Failure, Subscription};
use crate::storage::{Store, StoreError};
use client::WebhookClient;

/// How long past its timeout a claimed delivery stays leased: enough to
/// record the outcome. A node that dies mid-attempt leaves its deliveries
/// to be claimed again this long after their timeout.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub poll: Duration,
    /// Attempts in flight per subscription.
    pub per_subscription: usize,
    pub allow_private: bool,
    /// How long shutdown waits for attempts in flight.
    pub grace: Duration,
}

/// Bumped by the API whenever a subscription is created, changed or
/// deleted on this node, so the deliverer's list of subscribed topics is
/// never stale here (another node's changes are seen within one poll).
#[derive(Debug, Default)]
pub struct SubscriptionChanges(std::sync::atomic::AtomicU64);

impl SubscriptionChanges {
    pub fn bump(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn current(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// What the last pass saw: each active subscription's topic selector, and
/// the [`SubscriptionChanges`] count then.
struct Known {
    changes: u64,
    selectors: Vec<TopicSelector>,
}

impl Known {
    /// Whether a pass for messages on `topics` could find work: no when no
    /// subscription (as of the last pass, with nothing changed since)
    /// matches them. Due retries are the timer's, not these passes'.
    fn may_match(&self, changes: &SubscriptionChanges, topics: &HashSet<String>) -> bool {
        self.changes != changes.current()
            || self
                .selectors
                .iter()
                .any(|s| topics.iter().any(|t| s.matches(t)))
    }
}

pub struct Deliverer {
    store: Arc<dyn Store>,
    changes: Arc<SubscriptionChanges>,
    client: WebhookClient,
    filters: Arc<FilterRegistry>,
    settings: DeliverySettings,
    in_flight: Mutex<HashMap<i64, usize>>,
    tasks: TaskTracker,
}

impl Deliverer {
    pub fn new(
        store: Arc<dyn Store>,
        changes: Arc<SubscriptionChanges>,
        filters: Arc<FilterRegistry>,
        settings: DeliverySettings,
    ) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            store,
            changes,
            client: WebhookClient::new(settings.allow_private)?,
            filters,
            settings,
            in_flight: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
        }))
    }

    /// Runs passes until `shutdown`, then waits (within the grace period)
    /// for attempts in flight so their outcome is recorded.
    pub async fn run(self: Arc<Self>, hub: Arc<Hub>, shutdown: CancellationToken) {
        let (mut rx, _) = hub.subscribe();
        let mut tick = tokio::time::interval(self.settings.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut known: Option<Known> = None;
        loop {
            // New messages wake only the subscriptions whose topics they
            // are on; the tick looks at every subscription.
            let new_topics = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = rx.recv() => {
                    let mut topics = HashSet::new();
                    let mut next = r;
                    // One pass covers everything queued meanwhile.
                    loop {
                        match next {
                            Ok(batch) => topics.extend(batch.iter().map(|m| m.topic.to_string())),
                            Err(Missed::Closed) => return,
                            // Lagged: some topics unknown, look at all.
                            Err(Missed::Lagged { .. }) => break None,
                            Err(Missed::Empty) => break Some(topics),
                        }
                        next = rx.try_recv();
                    }
                }
                _ = tick.tick() => {
                    self.record_backlog().await;
                    None
                }
            };
            // Without a subscription on these topics, a pass would only
            // cost two queries per group commit.
            if let (Some(known), Some(topics)) = (&known, &new_topics)
                && !known.may_match(&self.changes, topics)
            {
                continue;
            }
            let changes = self.changes.current();
            match self.pass(&hub, new_topics.as_ref()).await {
                Ok(selectors) => known = Some(Known { changes, selectors }),
                Err(e) => {
                    known = None;
                    tracing::warn!(error = %e, "webhook pass failed; retrying on the next one");
                }
            }
        }
        self.tasks.close();
        if tokio::time::timeout(self.settings.grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("webhook attempts still running at shutdown; they will be retried");
        }
    }

    /// Pending deliveries and dead letters, for the metrics.
    async fn record_backlog(&self) {
        match self.store.webhook_backlog().await {
            Ok((pending, dead)) => {
                metrics::gauge!(crate::telemetry::WEBHOOK_PENDING).set(pending as f64);
                metrics::gauge!(crate::telemetry::DEAD_LETTERS).set(dead as f64);
            }
            Err(e) => tracing::debug!(error = %e, "cannot count the webhook backlog"),
        }
    }

    async fn pass(
        self: &Arc<Self>,
        hub: &Hub,
        new_topics: Option<&HashSet<String>>,
    ) -> Result<Vec<TopicSelector>, StoreError> {
        let head = hub.head().0;
        let mut selectors = Vec::new();
        // One indexed read finds the subscriptions with work; only those
        // take write locks to claim it.
        let due: std::collections::HashSet<i64> = self
            .store
            .due_subscriptions(Timestamp::now())
            .await?
            .into_iter()
            .collect();
        let now = Timestamp::now();
        for sub in self.store.active_subscriptions().await? {
            // Its creator's token has expired: it waits (a PATCH with a
            // fresh token resumes it), like a stream that ended.
            if sub.owner_expired(now) {
                continue;
            }
            let matcher = match self.matcher(&sub) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(subscription = sub.id, error = %e, "subscription cannot be matched; skipping it");
                    continue;
                }
            };
            selectors.push(matcher.selector.clone());
            let woken =
                new_topics.is_none_or(|t| t.iter().any(|topic| matcher.selector.matches(topic)));
            if woken && sub.cursor < head {
                dispatch::catch_up(&*self.store, &sub, &matcher).await?;
            } else if !due.contains(&sub.id) {
                continue;
            }
            // Consumers lease a pull subscription's deliveries.
            if sub.is_pull() {
                continue;
            }
            self.attempt_due(Arc::new(sub)).await?;
        }
        Ok(selectors)
    }

    fn matcher(&self, sub: &Subscription) -> anyhow::Result<Matcher> {
        dispatch::matcher(&self.filters, sub)
    }

    async fn attempt_due(self: &Arc<Self>, sub: Arc<Subscription>) -> Result<(), StoreError> {
        let busy = self
            .in_flight
            .lock()
            .expect("poisoned")
            .get(&sub.id)
            .copied()
            .unwrap_or(0);
        let free = self.settings.per_subscription.saturating_sub(busy);
        if free == 0 {
            return Ok(());
        }
        let now = Timestamp::now();
        let lease = Duration::from_millis(sub.timeout_ms.max(0) as u64) + LEASE_MARGIN;
        let lease_until = Timestamp(now.0 + lease.as_micros() as i64);
        let due = self
            .store
            .claim_due(sub.id, now, lease_until, free as u32)
            .await?;
        if due.is_empty() {
            return Ok(());
        }
        let positions: Vec<i64> = due.iter().map(|d| d.position).collect();
        let mut messages: HashMap<i64, Arc<Message>> = self
            .store
            .messages_at(&positions)
            .await?
            .into_iter()
            .map(|m| (m.position.0, Arc::new(m)))
            .collect();
        *self
            .in_flight
            .lock()
            .expect("poisoned")
            .entry(sub.id)
            .or_default() += due.len();
        for d in due {
            let this = Arc::clone(self);
            let sub = Arc::clone(&sub);
            let message = messages.remove(&d.position);
            self.tasks.spawn(async move {
                this.attempt(&sub, d, message).await;
                if let Some(n) = this.in_flight.lock().expect("poisoned").get_mut(&sub.id) {
                    *n = n.saturating_sub(1);
                }
            });
        }
        Ok(())
    }

    async fn attempt(&self, sub: &Subscription, due: Due, message: Option<Arc<Message>>) {
        if message
            .as_ref()
            .is_some_and(|m| m.is_expired(Timestamp::now()))
        {
            // Expired before it could be delivered: dropped, never sent,
            // counted, and not a dead letter.
            metrics::counter!(crate::telemetry::WEBHOOK_ATTEMPTS, "outcome" => "expired")
                .increment(1);
            if let Err(e) = self.store.expire(&due).await {
                tracing::warn!(subscription = sub.id, position = due.position, error = %e,
                    "cannot drop an expired delivery; it is looked at again when its lease ends");
            }
            return;
        }
        // The message, or the copy of its envelope that a redriven dead
        // letter brought back once retention had removed the message.
        let body: Option<Bytes> = message
            .as_ref()
            .map(|m| m.envelope())
            .or_else(|| due.envelope.clone().map(Bytes::from));
        let outcome = match &body {
            Some(b) => self
                .client
                .attempt(sub, due.position, b.clone())
                .await
                .map(drop),
            None => Err(client::AttemptError {
                failure: Failure {
                    status: None,
                    error: "the message is no longer retained".into(),
                },
                retry_after: None,
            }),
        };
        let now = Timestamp::now();
        let recorded = match outcome {
            Ok(()) => {
                metrics::counter!(crate::telemetry::WEBHOOK_ATTEMPTS, "outcome" => "success")
                    .increment(1);
                self.store.delivered(sub.id, due.position).await
            }
            Err(e) => {
                let failures = (due.attempts + 1) as u32;
                tracing::debug!(subscription = sub.id, position = due.position, failures, error = %e.failure.error, "webhook attempt failed");
                if body.is_none() || failures >= sub.max_attempts.max(1) as u32 {
                    metrics::counter!(crate::telemetry::WEBHOOK_ATTEMPTS, "outcome" => "dead_letter").increment(1);
                    let envelope = body.as_deref().and_then(|b| std::str::from_utf8(b).ok());
                    self.store.bury(&due, &e.failure, envelope, now).await
                } else {
                    metrics::counter!(crate::telemetry::WEBHOOK_ATTEMPTS, "outcome" => "retry")
                        .increment(1);
                    let backoff = Backoff {
                        min: Duration::from_millis(sub.min_backoff_ms.max(0) as u64),
                        max: Duration::from_millis(sub.max_backoff_ms.max(0) as u64),
                    };
                    let delay = backoff.delay(failures, e.retry_after, rand::random());
                    let next = Timestamp(now.0 + delay.as_micros() as i64);
                    self.store.failed(&due, &e.failure, next, now).await
                }
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(subscription = sub.id, position = due.position, error = %e,
                "cannot record a webhook outcome; the delivery is retried when its lease ends");
        }
    }
}
