//! The hub: a `tokio::sync::broadcast` of committed batches, bounded in
//! bytes as well as in entries (see [`super::ring`]), and the sequencer task
//! that feeds it strictly in position order.
//!
//! The hub's `head` is the last position it has broadcast. A subscriber
//! subscribes first and reads `head` second, so every batch after that head
//! reaches it through its receiver (or, if it lags, through storage).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::ring::{self, Entry, HubReceiver, Ledger};
use crate::domain::{Message, Position, TopicSelector};
use crate::storage::{HeadNotice, Store};

/// What the sequencer is told.
#[derive(Debug)]
pub enum Feed {
    /// A batch this process just committed.
    Committed(Vec<Message>),
    /// A head change seen in storage (another node's commit).
    Notice(HeadNotice),
}

/// Rows the sequencer reads per query when it fills a gap from storage.
const FILL_PAGE: u32 = 1000;
/// How often a node on a shared database re-reads the head even without a
/// notification (a safety net for lost notifications).
const RESYNC_EVERY: Duration = Duration::from_secs(2);

pub struct Hub {
    tx: broadcast::Sender<Arc<Entry>>,
    ledger: Mutex<Ledger>,
    max_bytes: usize,
    head: AtomicI64,
    /// Live subscriptions grouped by selector: (selector, count).
    subscribers: Mutex<HashMap<String, (Arc<TopicSelector>, usize)>>,
    lag_recoveries: AtomicU64,
}

impl Hub {
    /// A subscriber may fall behind by `capacity` entries (a committed
    /// batch, or a piece of a large one) and by `max_bytes` of messages
    /// (estimated) before it must catch up from storage.
    pub fn new(capacity: usize, max_bytes: usize, head: Position) -> Arc<Self> {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Arc::new(Self {
            tx,
            ledger: Mutex::new(Ledger::default()),
            max_bytes,
            head: AtomicI64::new(head.0),
            subscribers: Mutex::new(HashMap::new()),
            lag_recoveries: AtomicU64::new(0),
        })
    }

    /// The last position broadcast.
    pub fn head(&self) -> Position {
        Position(self.head.load(Ordering::Acquire))
    }

    /// A receiver of every batch broadcast after the returned head.
    pub fn subscribe(&self) -> (HubReceiver, Position) {
        // Order matters: receiver first, head second (see module docs).
        let rx = HubReceiver::new(self.tx.subscribe());
        (rx, self.head())
    }

    fn broadcast(&self, batch: Vec<Message>) {
        let Some(last) = batch.last() else { return };
        // Head before send: a subscriber that reads this head has either
        // got this batch in its receiver or will skip it as already seen.
        self.head.store(last.position.0, Ordering::Release);
        let mut ledger = self.ledger.lock().expect("hub ledger poisoned");
        for (entry, size) in ring::split(batch) {
            // No receivers is fine: nobody is listening, nothing is kept.
            if self.tx.send(Arc::clone(&entry)).is_ok() {
                ledger.push(&entry, size, self.max_bytes);
            }
        }
        metrics::gauge!(crate::telemetry::HUB_BYTES).set(ledger.bytes() as f64);
    }

    /// Estimated bytes of messages the hub holds for receivers that have
    /// not read them yet (at most about `max_bytes`).
    pub fn held_bytes(&self) -> usize {
        self.ledger.lock().expect("hub ledger poisoned").bytes()
    }

    /// Counts a live stream until the guard is dropped.
    pub fn register(self: &Arc<Self>, selector: &TopicSelector) -> SubscriberGuard {
        let key = selector.key();
        metrics::gauge!(crate::telemetry::SSE_CONNECTIONS).increment(1.0);
        let mut subs = self
            .subscribers
            .lock()
            .expect("subscriber registry poisoned");
        subs.entry(key.clone())
            .or_insert_with(|| (Arc::new(selector.clone()), 0))
            .1 += 1;
        SubscriberGuard {
            hub: Arc::clone(self),
            key,
        }
    }

    /// Live streams whose topics include `topic`.
    pub fn subscribers_for(&self, topic: &str) -> usize {
        let subs = self
            .subscribers
            .lock()
            .expect("subscriber registry poisoned");
        subs.values()
            .filter(|(sel, _)| sel.matches(topic))
            .map(|(_, n)| n)
            .sum()
    }

    /// How many times a subscriber fell behind and caught up from storage.
    pub fn lag_recoveries(&self) -> u64 {
        self.lag_recoveries.load(Ordering::Relaxed)
    }

    pub(crate) fn note_lag(&self) {
        self.lag_recoveries.fetch_add(1, Ordering::Relaxed);
    }
}

/// Keeps a stream counted in [`Hub::subscribers_for`].
pub struct SubscriberGuard {
    hub: Arc<Hub>,
    key: String,
}

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        metrics::gauge!(crate::telemetry::SSE_CONNECTIONS).decrement(1.0);
        let mut subs = self
            .hub
            .subscribers
            .lock()
            .expect("subscriber registry poisoned");
        if let Some(entry) = subs.get_mut(&self.key) {
            entry.1 -= 1;
            if entry.1 == 0 {
                subs.remove(&self.key);
            }
        }
    }
}

/// Feeds the hub in position order until `shutdown`, or until both the
/// writer and the notifications are gone.
pub async fn run_sequencer(
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    mut feed: mpsc::Receiver<Feed>,
    notices: Option<BoxStream<'static, HeadNotice>>,
    shutdown: CancellationToken,
) {
    let shared = notices.is_some();
    let mut notices = notices.unwrap_or_else(|| futures_util::stream::pending().boxed());
    let mut resync = tokio::time::interval(RESYNC_EVERY);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let target = tokio::select! {
            _ = shutdown.cancelled() => return,
            item = feed.recv() => match item {
                Some(Feed::Committed(batch)) => {
                    let (Some(first), Some(last)) = (batch.first(), batch.last()) else { continue };
                    let (first, last) = (first.position, last.position);
                    let head = hub.head();
                    if first == head.next() {
                        hub.broadcast(batch);
                        continue;
                    }
                    if last <= head {
                        continue; // already read back from storage
                    }
                    last // other nodes committed in between: read them first
                }
                Some(Feed::Notice(n)) => match n {
                    HeadNotice::Head(p) => p,
                    HeadNotice::Resync => Position(i64::MAX),
                },
                None => return,
            },
            Some(n) = notices.next() => match n {
                HeadNotice::Head(p) => p,
                HeadNotice::Resync => Position(i64::MAX),
            },
            _ = resync.tick(), if shared => Position(i64::MAX),
        };
        if target > hub.head() {
            fill_from_storage(&hub, &*store, target, &shutdown).await;
        }
    }
}

/// Reads committed messages after the hub's head from storage and
/// broadcasts them, up to `target` or the end of the log.
async fn fill_from_storage(
    hub: &Hub,
    store: &dyn Store,
    target: Position,
    shutdown: &CancellationToken,
) {
    let mut backoff = Duration::from_millis(50);
    while hub.head() < target && !shutdown.is_cancelled() {
        let read = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = store.read(hub.head(), None, FILL_PAGE) => r,
        };
        match read {
            Ok(page) if page.is_empty() => return,
            Ok(page) => {
                let full = page.len() == FILL_PAGE as usize;
                hub.broadcast(page);
                if !full {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read new messages for the hub; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}
