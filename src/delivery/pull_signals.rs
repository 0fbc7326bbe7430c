//! Wakes for consumers of pull subscriptions that no commit to the log
//! brings: a nack, a seek or a redrive may make rows due at once, and an
//! ack frees a stream's `max_in_flight`. Each node wakes its own waiting
//! consumers at once; where several nodes share the database, a task also
//! announces the change to the others (one NOTIFY for any number of
//! changes made while the last one was being sent) and wakes this node's
//! consumers on theirs.

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::storage::{Notice, Store};

/// Tells waiting consumers that something may be ready for them.
#[derive(Debug)]
pub struct PullSignals {
    local: watch::Sender<u64>,
    /// Where other nodes share the database: what [`sync`] announces.
    remote: Option<Arc<Notify>>,
}

impl Default for PullSignals {
    /// Signals for this process alone.
    fn default() -> Self {
        Self {
            local: watch::channel(0).0,
            remote: None,
        }
    }
}

impl PullSignals {
    /// Signals that [`sync`] also announces to other nodes: give it the
    /// [`Notify`] returned here.
    pub fn shared() -> (Self, Arc<Notify>) {
        let remote = Arc::new(Notify::new());
        let signals = Self {
            remote: Some(remote.clone()),
            ..Self::default()
        };
        (signals, remote)
    }

    /// Something changed here: wakes this node's consumers, and announces
    /// it to the other nodes, if any.
    pub fn changed(&self) {
        self.wake_local();
        if let Some(remote) = &self.remote {
            remote.notify_one();
        }
    }

    fn wake_local(&self) {
        self.local.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that has seen every change so far.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.local.subscribe()
    }
}

/// Announces this node's changes as `node` and wakes this node's consumers
/// on the other nodes' announcements (and after a lost connection, since
/// some may have been missed), until `shutdown`. The two run apart, so a
/// slow NOTIFY never holds up the wakes.
pub async fn sync(
    signals: Arc<PullSignals>,
    announce: Arc<Notify>,
    store: Arc<dyn Store>,
    node: String,
    mut notices: BoxStream<'static, Notice>,
    shutdown: CancellationToken,
) {
    let announcer = {
        let (node, shutdown) = (node.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = announce.notified() => {
                        if let Err(e) = store.announce_pull(&node).await {
                            tracing::warn!(error = %e, "cannot tell other nodes of a pull change; they see it when its rows come due");
                        }
                    }
                }
            }
        })
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            notice = notices.next() => match notice {
                Some(Notice::Payload(from)) if from == node => {}
                Some(_) => signals.wake_local(),
                None => break,
            },
        }
    }
    let _ = announcer.await;
}
