//! Consumers of pull subscriptions: lease what is due (dispatching new
//! messages first, with the deliverer's own [`super::dispatch`]), and wait
//! for more without polling: a wait ends on a commit that may match, on a
//! nack, ack, seek or redrive on any node ([`PullSignals`]), when the
//! subscription's next row becomes due (a lease runs out, a nack's delay
//! ends), at the caller's deadline, or at shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::domain::{AckId, Timestamp};
use crate::fanout::writer::Publisher;
use crate::fanout::{FilterRegistry, HubReceiver, Matcher, Missed};
use crate::storage::pull::{DeadLettered, Leased};
use crate::storage::webhooks::Subscription;
use crate::storage::{Store, StoreError};

pub use super::pull_signals::PullSignals;

/// Shortest wait for a row that the store says is due but that another
/// node's open transaction holds: enough for it to commit.
const MIN_DUE_WAIT: Duration = Duration::from_millis(10);

/// Pages of the log a pull dispatches between two leases, when it finds
/// fewer messages ready than it asked for.
const CATCH_UP_PAGES: usize = 4;

/// Why a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// Something may be ready: look again.
    Maybe,
    /// The caller's deadline passed.
    Deadline,
    /// herald is shutting down.
    Shutdown,
}

/// One consumer of one pull subscription.
pub struct Consumer {
    store: Arc<dyn Store>,
    sub: Subscription,
    matcher: Matcher,
    /// For `$herald.delivery.dead_lettered`.
    publisher: Publisher,
}

impl Consumer {
    pub fn new(
        store: Arc<dyn Store>,
        filters: &FilterRegistry,
        publisher: Publisher,
        sub: Subscription,
    ) -> anyhow::Result<Self> {
        let matcher = super::dispatch::matcher(filters, &sub)?;
        Ok(Self {
            store,
            sub,
            matcher,
            publisher,
        })
    }

    pub fn subscription(&self) -> &Subscription {
        &self.sub
    }

    /// Acks `acks` and leases up to `n` due rows for the ack deadline, in
    /// one transaction, and returns the leases and the acks that took.
    ///
    /// The log's newest messages, up to the head as stored (everything
    /// committed before this lease, on any node: the hub may not have
    /// seen the last commits yet), are moved into the ledger first, if
    /// the deliverer has not yet: at most a page, so that a new message
    /// of higher priority is among those ready. A
    /// deeper backlog (a subscription that started at `earliest`) is moved
    /// only when the ledger runs short, a few pages at a time, leasing
    /// after each: most pulls of a busy queue are then one transaction,
    /// not a read of the log and a write that loses the cursor's
    /// compare-and-set to another consumer's.
    pub async fn lease(
        &self,
        n: u32,
        acks: &[AckId],
    ) -> Result<(Vec<Leased>, Vec<AckId>), StoreError> {
        let head = self.store.head().await?.0;
        // The cursor as loaded with the subscription says whether to look
        // (a busy queue's pulls then cost no read of it); the cursor as
        // stored now is where to dispatch from: another consumer or the
        // deliverer may have moved it.
        let behind = head - self.sub.cursor;
        if behind > 0
            && behind <= i64::from(super::dispatch::DISPATCH_PAGE)
            && let Some(fresh) = self.store.subscription(self.sub.id).await?
        {
            super::dispatch::catch_up_to(&*self.store, &fresh, &self.matcher, head).await?;
        }
        let (mut leased, acked) = self.lease_ready(n, acks).await?;
        if leased.len() < n as usize
            && let Err(e) = self.top_up(n, &mut leased).await
        {
            // What is leased and acked has committed: answer with it.
            if leased.is_empty() && acked.is_empty() {
                return Err(e);
            }
            tracing::warn!(subscription = self.sub.id, error = %e, "answering a pull with what it had leased before an error");
        }
        let again = leased.iter().filter(|l| l.ack_id.attempt > 1).count();
        let first = leased.len() - again;
        let counter = crate::telemetry::PULL_MESSAGES;
        metrics::counter!(counter, "event" => "leased").increment(first as u64);
        metrics::counter!(counter, "event" => "redelivered").increment(again as u64);
        metrics::counter!(counter, "event" => "acked").increment(acked.len() as u64);
        Ok((leased, acked))
    }

    /// Dispatches a few pages of the log and leases up to `n` in all,
    /// until something is leased or the log head is reached (a filter
    /// that skips most of a deep log reads on to the head before the
    /// consumer waits).
    async fn top_up(&self, n: u32, leased: &mut Vec<Leased>) -> Result<(), StoreError> {
        while leased.len() < n as usize {
            let Some(fresh) = self.store.subscription(self.sub.id).await? else {
                break;
            };
            let pages = Some(CATCH_UP_PAGES);
            let caught = super::dispatch::catch_up(&*self.store, &fresh, &self.matcher, pages);
            let more = caught.await? == super::dispatch::CatchUp::Stopped;
            // Even when this read nothing: it may have lost the cursor to
            // the deliverer's or another consumer's dispatch, committed by
            // now.
            let short = n - leased.len() as u32;
            leased.extend(self.lease_ready(short, &[]).await?.0);
            if !more || !leased.is_empty() {
                break;
            }
        }
        Ok(())
    }

    /// [`Consumer::lease`] of the rows in the ledger now: leases again
    /// while all it claimed were dropped (expired or gone).
    async fn lease_ready(
        &self,
        n: u32,
        acks: &[AckId],
    ) -> Result<(Vec<Leased>, Vec<AckId>), StoreError> {
        let (mut acks, mut acked) = (acks, Vec::new());
        loop {
            let now = Timestamp::now();
            let until = Timestamp(now.0 + self.sub.ack_deadline_ms.max(1) * 1000);
            let max_attempts = self.sub.max_attempts.max(1);
            let mut outcome = self
                .store
                .lease(self.sub.id, now, until, n, max_attempts, acks)
                .await?;
            announce(&self.publisher, self.sub.id, &outcome.dead_lettered).await;
            // Acked once: a second pass (after dropped rows) leases only.
            acked.append(&mut outcome.acked);
            acks = &[];
            if !outcome.leased.is_empty() || outcome.dropped == 0 {
                return Ok((outcome.leased, acked));
            }
        }
    }

    /// Waits until something may be ready (see the module docs), or
    /// `deadline`.
    pub async fn wait(
        &self,
        hub: &mut HubReceiver,
        signals: &mut watch::Receiver<u64>,
        deadline: Instant,
        shutdown: &CancellationToken,
    ) -> Result<Woken, StoreError> {
        let _waiting = Waiting::new(self.sub.id);
        let due = match self.store.next_due(self.sub.id).await? {
            Some(t) => {
                let wait = (t.0 - Timestamp::now().0).max(0) as u64;
                Instant::now() + Duration::from_micros(wait).max(MIN_DUE_WAIT)
            }
            None => deadline,
        };
        let until = due.min(deadline);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(Woken::Shutdown),
                _ = tokio::time::sleep_until(until) => {
                    return Ok(if until >= deadline { Woken::Deadline } else { Woken::Maybe });
                }
                r = signals.changed() => {
                    if r.is_err() {
                        return Ok(Woken::Shutdown);
                    }
                    return Ok(Woken::Maybe);
                }
                r = hub.recv() => match r {
                    Ok(batch) if batch.iter().any(|m| self.matcher.selector.matches(m.topic.as_str())) => {
                        return Ok(Woken::Maybe);
                    }
                    Ok(_) => {}
                    Err(Missed::Lagged { .. }) => return Ok(Woken::Maybe),
                    Err(Missed::Closed) => return Ok(Woken::Shutdown),
                    Err(Missed::Empty) => {}
                },
            }
        }
    }
}

/// Buries the due deliveries of a pull subscription whose attempts are
/// used up (the last lease ran out, or was nacked), as its next lease
/// would: the deliverer's passes do it, so that the dead letters show
/// them while no consumer pulls. Any node may; each row is buried once.
pub async fn bury_exhausted(
    store: &dyn Store,
    publisher: &Publisher,
    sub: &Subscription,
) -> Result<(), StoreError> {
    let max_attempts = sub.max_attempts.max(1);
    let buried = store
        .bury_exhausted(sub.id, Timestamp::now(), max_attempts)
        .await?;
    announce(publisher, sub.id, &buried).await;
    Ok(())
}

/// `$herald.delivery.dead_lettered` for what a lease or a pass buried.
async fn announce(publisher: &Publisher, sub: i64, buried: &[DeadLettered]) {
    for d in buried {
        let event = super::events::DeadLettered {
            subscription_id: sub,
            dead_letter_id: d.id,
            message_id: d.position,
            topic: &d.topic,
            reason: d.reason,
            attempts: d.attempts,
            status: None,
            error: Some(&d.error),
        };
        super::events::dead_lettered(publisher, &event).await;
    }
}

/// Counts a wait in [`crate::telemetry::PULL_WAITING`] while it lasts
/// (however it ends: a client that goes away drops it).
struct Waiting(metrics::Gauge);

impl Waiting {
    fn new(sub: i64) -> Self {
        let labels = [("subscription", sub.to_string())];
        let gauge = metrics::gauge!(crate::telemetry::PULL_WAITING, &labels);
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
