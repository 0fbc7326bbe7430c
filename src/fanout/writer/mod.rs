//! Group commit: publish requests queue up for one writer task, which
//! commits everything that has queued as one transaction and then answers
//! every request in it. Throughput grows with load instead of being capped
//! at one fsync per message, and nothing is acknowledged before its commit.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

mod keys;

use super::Feed;
use crate::domain::idempotency::KeyClaim;
use crate::domain::{Message, NewMessage, Position};
use crate::storage::{Keyed, Store, StoreError};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// What a publisher is told once its message is committed.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 42, "topic": "orders", "seq": 7, "time": "2026-11-24T04:20:21.723484Z"}))]
pub struct Ack {
    /// Position in the global log: the SSE `id:` of this message.
    #[schema(value_type = i64)]
    pub id: Position,
    pub topic: String,
    pub seq: i64,
    pub time: String,
}

impl Ack {
    fn of(m: &Message) -> Self {
        Ack {
            id: m.position,
            topic: m.topic.to_string(),
            seq: m.seq,
            time: m.time.to_rfc3339(),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    /// The database is down, locked or slow: try again later.
    #[error("{0}")]
    Unavailable(String),
    #[error("herald is shutting down")]
    ShuttingDown,
    /// More publishes wait for the writer than `--max-pending-publishes`.
    #[error("herald is overloaded: too many publishes are waiting to be stored; try again shortly")]
    Overloaded,
    /// The request's Idempotency-Key was recorded first by another request.
    #[error("the idempotency key is already recorded")]
    DuplicateKey,
    #[error("internal error")]
    Internal,
}

pub(super) struct Request {
    messages: Vec<NewMessage>,
    pub(super) key: Option<KeyClaim>,
    reply: oneshot::Sender<Result<Vec<Ack>, PublishError>>,
    /// Answered by then (to [`ANSWER_MARGIN`]), committed or not.
    deadline: Instant,
}

/// How long after `--db-timeout-ms` a publish may be answered: the writer
/// gives each commit only what is left of its oldest request's time, and
/// the storage layer overshoots a lock wait by at most
/// [`crate::storage::LOCK_WAIT_SLACK`]; the rest is for the commit's own
/// work and the answer.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(250);

/// Past this, a publisher stops waiting even for a commit that has its
/// lock but stalls (a disk that hangs): it is told 503, although that
/// commit may still succeed.
const STALL_MARGIN: Duration = Duration::from_secs(1);

/// The handle request handlers publish through. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<Request>,
    timeout: Duration,
    /// One permit per message that may wait for the writer
    /// (`--max-pending-publishes`).
    pending: Arc<Semaphore>,
}

impl Publisher {
    /// Publishes one message; returns after it is committed.
    pub async fn publish(&self, message: NewMessage) -> Result<Ack, PublishError> {
        let mut acks = self.publish_all(vec![message]).await?;
        acks.pop().ok_or(PublishError::Internal)
    }

    /// Publishes messages all-or-nothing in one transaction, in order.
    pub async fn publish_all(&self, messages: Vec<NewMessage>) -> Result<Vec<Ack>, PublishError> {
        self.publish_keyed(messages, None).await
    }

    /// Publishes messages as [`Publisher::publish_all`] does, recording
    /// `key` with them in the same transaction ([`PublishError::DuplicateKey`]
    /// if it is recorded already). Refused at once with
    /// [`PublishError::Overloaded`] when too many messages wait already.
    pub async fn publish_keyed(
        &self,
        messages: Vec<NewMessage>,
        key: Option<KeyClaim>,
    ) -> Result<Vec<Ack>, PublishError> {
        let n = u32::try_from(messages.len()).unwrap_or(u32::MAX);
        let Ok(_permit) = Arc::clone(&self.pending).try_acquire_many_owned(n) else {
            metrics::counter!(crate::telemetry::PUBLISH_REJECTED, "reason" => "overloaded")
                .increment(1);
            return Err(PublishError::Overloaded);
        };
        let (reply, answer) = oneshot::channel();
        let deadline = Instant::now() + self.timeout;
        let request = Request {
            messages,
            key,
            reply,
            deadline,
        };
        // Bounded wait: a stuck database yields a 503, never a hung request.
        let outcome = tokio::time::timeout_at(deadline + STALL_MARGIN, async {
            self.tx
                .send(request)
                .await
                .map_err(|_| PublishError::ShuttingDown)?;
            answer.await.map_err(|_| PublishError::ShuttingDown)?
        })
        .await;
        outcome.unwrap_or_else(|_| {
            Err(PublishError::Unavailable(
                "timed out waiting for the commit".into(),
            ))
        })
    }
}

/// Starts the writer task. It stops after `stop` once every request already
/// queued has been committed and answered. Every publish is answered
/// within `timeout` (`--db-timeout-ms`) plus [`ANSWER_MARGIN`], however
/// many wait before it: a commit waits for the database only as long as
/// its oldest request has left.
pub fn spawn(
    store: Arc<dyn Store>,
    feed: mpsc::Sender<Feed>,
    limits: WriterLimits,
    stop: CancellationToken,
) -> (Publisher, tokio::task::JoinHandle<()>) {
    let max_batch = limits.max_batch.max(1);
    // The permits bound what waits; the channel only needs room for it.
    let pending = limits.max_pending.clamp(1, Semaphore::MAX_PERMITS);
    let (tx, rx) = mpsc::channel(pending.min(1 << 16));
    let task = tokio::spawn(run(store, rx, feed, max_batch, stop));
    let pending = Arc::new(Semaphore::new(pending));
    let publisher = Publisher {
        tx,
        timeout: limits.timeout,
        pending,
    };
    (publisher, task)
}

/// The writer's bounds.
#[derive(Debug, Clone, Copy)]
pub struct WriterLimits {
    /// Messages per transaction at most (`--max-batch`).
    pub max_batch: usize,
    /// Messages waiting for the writer at most (`--max-pending-publishes`);
    /// past it a publish is refused at once (503).
    pub max_pending: usize,
    /// How long a publish may wait for its commit (`--db-timeout-ms`).
    pub timeout: Duration,
}

async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Request>,
    feed: mpsc::Sender<Feed>,
    max_batch: usize,
    stop: CancellationToken,
) {
    let mut stopping = false;
    let mut recent = keys::RecentKeys::default();
    loop {
        let first = if stopping {
            rx.recv().await
        } else {
            tokio::select! {
                r = rx.recv() => r,
                _ = stop.cancelled() => {
                    // Refuse new requests, then drain what is queued.
                    stopping = true;
                    rx.close();
                    continue;
                }
            }
        };
        let Some(first) = first else { break };
        let mut count = first.messages.len();
        let mut requests = vec![first];
        while count < max_batch {
            match rx.try_recv() {
                Ok(r) => {
                    count += r.messages.len();
                    requests.push(r);
                }
                Err(_) => break,
            }
        }
        // A publisher that gave up (timed out, disconnected) was told its
        // message was not stored: keep that true. One whose time is up is
        // told so now, not after a commit that it could not wait for.
        requests.retain(|r| !r.reply.is_closed());
        let now = Instant::now();
        let (late, requests): (Vec<_>, Vec<_>) =
            requests.into_iter().partition(|r| r.deadline <= now);
        fail(late, timed_out());
        if requests.is_empty() {
            continue;
        }
        keys::commit_group(&*store, requests, &feed, &mut recent).await;
    }
}

/// A group that could not commit, handed back unanswered.
pub(super) enum Failed {
    /// A key in it is recorded already.
    DuplicateKey(Vec<Request>),
    Other(Vec<Request>),
}

fn timed_out() -> PublishError {
    PublishError::Unavailable("timed out waiting for the database; try again shortly".into())
}

pub(super) fn fail(requests: Vec<Request>, answer: PublishError) {
    for r in requests {
        let _ = r.reply.send(Err(answer.clone()));
    }
}

/// Commits a group and answers it; a permanent error with more than one
/// request hands the requests back unanswered.
pub(super) async fn commit(
    store: &dyn Store,
    requests: Vec<Request>,
    feed: &mpsc::Sender<Feed>,
) -> Result<(), Failed> {
    let sizes: Vec<usize> = requests.iter().map(|r| r.messages.len()).collect();
    let mut keys = Vec::new();
    let mut start = 0;
    for (r, n) in requests.iter().zip(&sizes) {
        if let Some(claim) = &r.key {
            keys.push(Keyed {
                claim: claim.clone(),
                range: start..start + n,
            });
        }
        start += n;
    }
    let batch: Vec<NewMessage> = requests
        .iter()
        .flat_map(|r| r.messages.iter().cloned())
        .collect();
    let within = requests
        .iter()
        .map(|r| r.deadline)
        .min()
        .map_or(Duration::ZERO, |d| {
            d.saturating_duration_since(Instant::now())
        });
    match store.append_keyed(batch, keys, within).await {
        Ok(messages) => {
            metrics::counter!(crate::telemetry::MESSAGES_PUBLISHED)
                .increment(messages.len() as u64);
            metrics::histogram!(crate::telemetry::COMMIT_BATCH).record(messages.len() as f64);
            let mut acks = messages.iter().map(Ack::of);
            for (r, n) in requests.into_iter().zip(sizes) {
                // A publisher that went away is fine: its message is stored.
                let _ = r.reply.send(Ok(acks.by_ref().take(n).collect()));
            }
            // Fan out after the commit; the sequencer keeps position order.
            let _ = feed.send(Feed::Committed(messages)).await;
            Ok(())
        }
        Err(StoreError::Unavailable(e)) => {
            tracing::warn!(error = %e, "publish failed: database unavailable");
            fail(
                requests,
                PublishError::Unavailable("the database is unavailable; try again shortly".into()),
            );
            Ok(())
        }
        Err(StoreError::DuplicateKey) if requests.len() == 1 => {
            fail(requests, PublishError::DuplicateKey);
            Ok(())
        }
        Err(StoreError::DuplicateKey) => Err(Failed::DuplicateKey(requests)),
        Err(e) if requests.len() > 1 => {
            tracing::warn!(error = %e, requests = requests.len(), "group commit failed; retrying each publish alone");
            Err(Failed::Other(requests))
        }
        Err(e) => {
            tracing::error!(error = %e, "publish failed");
            fail(requests, PublishError::Internal);
            Ok(())
        }
    }
}
