//! Webhook delivery: at-least-once, durable, shared fairly between nodes.
//!
//! Each pass (after new messages reach the hub, when the attempts of a claim
//! that took every free slot end, and every `--webhook-poll-ms`):
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
//! A pass reads only the subscriptions that can have work (see [`index`]):
//! after a commit, those on its topics; on the poll, those not known to be
//! done up to the head and those with deliveries due; every active one
//! each [`index::FULL_PASS_EVERY`] and after a change on this node. So a
//! subscription that has nothing to do costs no query.
//!
//! A crash loses nothing: rows stay in `retries`, and a claimed row whose
//! node died is claimed again when its lease runs out. A slow endpoint
//! only fills its own subscription's slots.

mod attempt;
pub mod attempt_log;
pub mod circuit;
pub mod client;
pub mod dispatch;
pub mod events;
pub mod guard;
mod health;
mod index;
mod passes;
pub mod pull;
pub mod pull_signals;
pub mod special_ranges;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::domain::{Message, Timestamp};
use crate::fanout::writer::Publisher;
use crate::fanout::{FilterRegistry, Hub, Missed};
use crate::storage::webhooks::{CIRCUIT_CLOSED, Subscription};
use crate::storage::{Store, StoreError};
use circuit::{Breaker, BreakerSettings};
use client::WebhookClient;
use index::{Known, Matchers, Scanned, Scope};

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
    /// Whether every attempt is written to the attempt log.
    pub attempt_log: bool,
    pub breaker: BreakerSettings,
    /// Pause a subscription that has failed continuously this long (zero:
    /// never).
    pub disable_after: Duration,
}

/// Bumped by the API whenever a subscription is created, changed or
/// deleted on this node, so the deliverer's list of subscribed topics is
/// never stale here (another node's changes are seen within [`index::FULL_PASS_EVERY`]).
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

pub struct Deliverer {
    store: Arc<dyn Store>,
    changes: Arc<SubscriptionChanges>,
    client: WebhookClient,
    filters: Arc<FilterRegistry>,
    settings: DeliverySettings,
    in_flight: Mutex<HashMap<i64, usize>>,
    tasks: TaskTracker,
    breaker: Breaker,
    /// For herald's operational events (see [`events`]).
    publisher: Publisher,
    /// Where attempts go to the attempt log (None: no log is kept).
    attempt_log: Option<attempt_log::AttemptLogger>,
    /// Stops the attempt log's writer once attempts have ended.
    log_stop: CancellationToken,
    log_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Subscriptions whose failing-since this node noted after the pass
    /// read them (see [`health`]).
    failing: Mutex<HashSet<i64>>,
    /// Woken when attempts of a full claim end (a backlog drains at the
    /// endpoint's pace, not one claim per `--webhook-poll-ms`).
    more_due: tokio::sync::Notify,
    /// Where subscriptions' logs were read without a match (see [`index`]).
    scanned: Mutex<Scanned>,
    matchers: Mutex<Matchers>,
}

impl Deliverer {
    pub fn new(
        store: Arc<dyn Store>,
        changes: Arc<SubscriptionChanges>,
        filters: Arc<FilterRegistry>,
        publisher: Publisher,
        settings: DeliverySettings,
    ) -> anyhow::Result<Arc<Self>> {
        let log_stop = CancellationToken::new();
        let (attempt_log, log_task) = match settings.attempt_log {
            true => {
                let (logger, task) =
                    attempt_log::AttemptLogger::spawn(store.clone(), log_stop.clone());
                (Some(logger), Some(task))
            }
            false => (None, None),
        };
        Ok(Arc::new(Self {
            attempt_log,
            log_stop,
            log_task: Mutex::new(log_task),
            store,
            changes,
            client: WebhookClient::new(settings.allow_private)?,
            filters,
            breaker: Breaker::new(settings.breaker),
            publisher,
            more_due: tokio::sync::Notify::new(),
            scanned: Mutex::new(Scanned::default()),
            matchers: Mutex::new(Matchers::default()),
            failing: Mutex::new(HashSet::new()),
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
            // New messages wake only the subscriptions on their topics;
            // the tick, those that may be behind or have retries due.
            let scope = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = rx.recv() => match topics_of(&mut rx, r) {
                    Some(scope) => scope,
                    None => return,
                },
                _ = tick.tick() => {
                    self.record_backlog().await;
                    Scope::Behind
                }
                // Attempts of a claim that took every free slot ended:
                // there may be more due now, not only at the next tick.
                _ = self.more_due.notified() => Scope::Behind,
            };
            let current = known.as_ref().filter(|k| k.is_current(&self.changes));
            // Without a subscription on these topics, a pass would only
            // cost two queries per group commit.
            if let (Some(known), Scope::Topics(topics)) = (current, &scope)
                && known.on(topics).is_empty()
            {
                continue;
            }
            let changes = self.changes.current();
            match self.pass(&hub, &scope, current).await {
                Ok(Some(subs)) => known = Some(Known::new(changes, subs)),
                Ok(None) => {}
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
        self.log_stop.cancel();
        let log_task = self.log_task.lock().expect("poisoned").take();
        if let Some(task) = log_task {
            let _ = task.await;
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

    async fn attempt_due(self: &Arc<Self>, sub: Arc<Subscription>) -> Result<(), StoreError> {
        let busy = self
            .in_flight
            .lock()
            .expect("poisoned")
            .get(&sub.id)
            .copied()
            .unwrap_or(0);
        let mut free = self.settings.per_subscription.saturating_sub(busy) as u32;
        if free == 0 {
            return Ok(());
        }
        let now = Timestamp::now();
        let lease = Duration::from_millis(sub.timeout_ms.max(0) as u64) + LEASE_MARGIN;
        let lease_until = Timestamp(now.0 + lease.as_micros() as i64);
        // An open circuit attempts nothing; past its cool-down, one node
        // wins the half-open probe.
        let probe = sub.circuit != CIRCUIT_CLOSED;
        if probe {
            if sub.circuit_until_us.is_some_and(|until| until > now.0)
                || !self.half_open(&sub, now, lease_until).await?
            {
                return Ok(());
            }
            free = 1;
        }
        let second = now.0.div_euclid(1_000_000);
        if let Some(limit) = sub.rate_limit {
            free = self
                .store
                .take_tokens(sub.id, second, free, limit.max(0) as u32)
                .await?;
            if free == 0 {
                return Ok(());
            }
        }
        let due = self.store.claim_due(sub.id, now, lease_until, free).await?;
        if sub.rate_limit.is_some() && due.len() < free as usize {
            let unused = free - due.len() as u32;
            self.store.return_tokens(sub.id, second, unused).await?;
        }
        if due.is_empty() {
            return Ok(());
        }
        // A claim that filled every slot may have left more due behind.
        let more = due.len() == free as usize;
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
                this.attempt(&sub, d, message, probe).await;
                if let Some(n) = this.in_flight.lock().expect("poisoned").get_mut(&sub.id) {
                    *n = n.saturating_sub(1);
                }
                if more {
                    this.more_due.notify_one();
                }
            });
        }
        Ok(())
    }
}

/// The topics of what the hub sent, with everything queued meanwhile (one
/// pass covers it all); every subscription if some were missed; None once
/// the hub has closed.
fn topics_of(
    rx: &mut crate::fanout::HubReceiver,
    first: Result<crate::fanout::Batch, Missed>,
) -> Option<Scope> {
    let mut topics = HashSet::new();
    let mut next = first;
    loop {
        match next {
            Ok(batch) => topics.extend(batch.iter().map(|m| m.topic.to_string())),
            Err(Missed::Closed) => return None,
            Err(Missed::Lagged { .. }) => return Some(Scope::All),
            Err(Missed::Empty) => return Some(Scope::Topics(topics)),
        }
        next = rx.try_recv();
    }
}
