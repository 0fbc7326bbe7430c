//! Group commit: publish requests queue up for one writer task, which
//! commits everything that has queued as one transaction and then answers
//! every request in it. Throughput grows with load instead of being capped
//! at one fsync per message, and nothing is acknowledged before its commit.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Feed;
use crate::domain::{Message, NewMessage, Position};
use crate::storage::{Store, StoreError};
use std::sync::Arc;

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
    #[error("internal error")]
    Internal,
}

struct Request {
    messages: Vec<NewMessage>,
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
}

impl Publisher {
    /// Publishes one message; returns after it is committed.
    pub async fn publish(&self, message: NewMessage) -> Result<Ack, PublishError> {
        let mut acks = self.publish_all(vec![message]).await?;
        acks.pop().ok_or(PublishError::Internal)
    }

    /// Publishes messages all-or-nothing in one transaction, in order.
    pub async fn publish_all(&self, messages: Vec<NewMessage>) -> Result<Vec<Ack>, PublishError> {
        let (reply, answer) = oneshot::channel();
        let deadline = Instant::now() + self.timeout;
        let request = Request {
            messages,
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
    max_batch: usize,
    timeout: Duration,
    stop: CancellationToken,
) -> (Publisher, tokio::task::JoinHandle<()>) {
    // The queue holds a few batches' worth: beyond that, publishers wait
    // (back-pressure) rather than herald buffering without bound.
    let (tx, rx) = mpsc::channel(max_batch.max(1) * 4);
    let task = tokio::spawn(run(store, rx, feed, max_batch.max(1), stop));
    (Publisher { tx, timeout }, task)
}

async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Request>,
    feed: mpsc::Sender<Feed>,
    max_batch: usize,
    stop: CancellationToken,
) {
    let mut stopping = false;
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
        if let Err(requests) = commit(&*store, requests, &feed).await {
            // A permanent error in a group: commit each request alone so one
            // bad message cannot fail the publishes it was grouped with.
            for r in requests {
                if let Err(rest) = commit(&*store, vec![r], &feed).await {
                    fail(rest, PublishError::Internal);
                }
            }
        }
    }
}

fn timed_out() -> PublishError {
    PublishError::Unavailable("timed out waiting for the database; try again shortly".into())
}

fn fail(requests: Vec<Request>, answer: PublishError) {
    for r in requests {
        let _ = r.reply.send(Err(answer.clone()));
    }
}

/// Commits a group and answers it; a permanent error with more than one
/// request hands the requests back unanswered.
async fn commit(
    store: &dyn Store,
    requests: Vec<Request>,
    feed: &mpsc::Sender<Feed>,
) -> Result<(), Vec<Request>> {
    let sizes: Vec<usize> = requests.iter().map(|r| r.messages.len()).collect();
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
    match store.append(batch, within).await {
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
        Err(e) if requests.len() > 1 => {
            tracing::warn!(error = %e, requests = requests.len(), "group commit failed; retrying each publish alone");
            Err(requests)
        }
        Err(e) => {
            tracing::error!(error = %e, "publish failed");
            fail(requests, PublishError::Internal);
            Ok(())
        }
    }
}
