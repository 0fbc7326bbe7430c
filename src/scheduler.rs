//! The scheduler: appends scheduled publishes to the log when they fall
//! due, and forgets idempotency keys past their window.
//!
//! Each pass appends due messages in pages, each page one transaction
//! that also deletes their schedules ([`Store::publish_due`]), so a
//! schedule is appended exactly once whichever node (or restart) gets to
//! it. Between passes it sleeps until the next due time, a local
//! schedule's wake-up, or [`POLL`] (other nodes' schedules).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::domain::Timestamp;
use crate::fanout::Feed;
use crate::storage::Store;

/// The longest sleep between looks at the schedule table: the bound on
/// lateness for a schedule made on another node.
pub const POLL: Duration = Duration::from_millis(500);
/// Messages appended per transaction.
const PAGE: u32 = 5000;
/// How often idempotency keys past the window are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

pub struct Scheduler {
    pub store: Arc<dyn Store>,
    pub feed: mpsc::Sender<Feed>,
    pub wake: Arc<Notify>,
    /// `--db-timeout-ms`: how long one append may wait for the database.
    pub timeout: Duration,
    /// `--idempotency-window`.
    pub idempotency_window: Duration,
}

impl Scheduler {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut pruned = tokio::time::Instant::now();
        while !shutdown.is_cancelled() {
            let failed = !self.append_due().await;
            if pruned.elapsed() >= PRUNE_EVERY {
                pruned = tokio::time::Instant::now();
                self.prune_keys().await;
            }
            let wait = if failed {
                POLL
            } else {
                self.until_next().await
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Appends everything due now; false if storage failed.
    async fn append_due(&self) -> bool {
        loop {
            match self
                .store
                .publish_due(Timestamp::now(), PAGE, self.timeout)
                .await
            {
                Ok(messages) if messages.is_empty() => return true,
                Ok(messages) => {
                    let n = messages.len();
                    metrics::counter!(crate::telemetry::MESSAGES_PUBLISHED).increment(n as u64);
                    metrics::counter!(crate::telemetry::SCHEDULED_APPENDED).increment(n as u64);
                    // Fan out after the commit; the sequencer orders it
                    // among the writer's commits.
                    let _ = self.feed.send(Feed::Committed(messages)).await;
                    if n < PAGE as usize {
                        return true;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot append due scheduled messages; retrying");
                    return false;
                }
            }
        }
    }

    async fn until_next(&self) -> Duration {
        match self.store.next_schedule_due().await {
            Ok(Some(at)) => {
                let micros = (at.0 - Timestamp::now().0).max(0) as u64;
                Duration::from_micros(micros).min(POLL)
            }
            Ok(None) => POLL,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the next scheduled time");
                POLL
            }
        }
    }

    async fn prune_keys(&self) {
        let before = Timestamp(Timestamp::now().0 - self.idempotency_window.as_micros() as i64);
        match self.store.prune_keys(before).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(keys = n, "pruned idempotency keys past the window"),
            Err(e) => tracing::warn!(error = %e, "cannot prune idempotency keys"),
        }
    }
}
