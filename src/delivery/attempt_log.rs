//! The attempt log's writer: attempts are queued as they end and written
//! in batches (one multi-row INSERT per batch), off the path that records
//! their outcome in the ledger. A delivery's outcome is durable when its
//! attempt ends; its log line follows within one batch (a crash can lose
//! the lines of the last moments, never a delivery).

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::storage::Store;
use crate::storage::webhooks::AttemptLog;

/// Lines waiting beyond this are dropped (and counted in the log): the
/// log never holds up deliveries or grows memory without bound.
const QUEUE: usize = 50_000;
/// Most lines per INSERT.
const BATCH: usize = 1_000;

/// Where attempts are handed to the writer task.
#[derive(Clone)]
pub struct AttemptLogger {
    tx: mpsc::Sender<AttemptLog>,
}

impl AttemptLogger {
    /// Starts the writer; it flushes what is queued and ends once `stop`
    /// is cancelled (await the handle).
    pub fn spawn(
        store: Arc<dyn Store>,
        stop: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write(store, rx, stop));
        (Self { tx }, task)
    }

    /// Queues one line; drops it if the queue is full.
    pub fn log(&self, line: AttemptLog) {
        if self.tx.try_send(line).is_err() {
            tracing::warn!("the attempt log is behind; an attempt was not logged");
        }
    }
}

async fn write(store: Arc<dyn Store>, mut rx: mpsc::Receiver<AttemptLog>, stop: CancellationToken) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n,
            _ = stop.cancelled() => {
                // What is queued still goes in.
                rx.close();
                while rx.recv_many(&mut batch, BATCH).await > 0 {
                    flush(&*store, &mut batch).await;
                }
                return;
            }
        };
        if n == 0 {
            return;
        }
        flush(&*store, &mut batch).await;
    }
}

async fn flush(store: &dyn Store, batch: &mut Vec<AttemptLog>) {
    if let Err(e) = store.log_attempts(batch).await {
        tracing::warn!(error = %e, lines = batch.len(), "cannot write the attempt log; these lines are lost");
    }
    batch.clear();
}
