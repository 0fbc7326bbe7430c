//! Revoked API tokens, as every node learns of them: a revocation on this
//! node takes effect at once; one on another node (they share Postgres) is
//! read by a poll every `--auth-revocation-poll`. Open streams of a
//! revoked token end; see [`Revocations::revoked`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::api_token::Cache;
use crate::domain::Timestamp;
use crate::storage::Store;

/// How far back each poll looks: wider than any clock difference between
/// nodes, so a revocation stamped by a node whose clock is behind is still
/// seen.
const LOOK_BACK: Duration = Duration::from_secs(3600);

/// The ids of tokens revoked while this node runs, and a signal that
/// changes whenever one is added.
pub struct Revocations {
    revoked: Mutex<HashSet<i64>>,
    changed: watch::Sender<u64>,
}

impl Default for Revocations {
    fn default() -> Self {
        Revocations {
            revoked: Mutex::default(),
            changed: watch::Sender::new(0),
        }
    }
}

impl Revocations {
    /// Records revoked ids; wakes streams if any is new.
    pub fn add(&self, ids: impl IntoIterator<Item = i64>, cache: &Cache) {
        let mut revoked = self.revoked.lock().expect("revocations");
        let mut new = false;
        for id in ids {
            if revoked.insert(id) {
                cache.forget(id);
                new = true;
            }
        }
        drop(revoked);
        if new {
            self.changed.send_modify(|n| *n += 1);
        }
    }

    pub fn is_revoked(&self, id: i64) -> bool {
        self.revoked.lock().expect("revocations").contains(&id)
    }

    /// Completes once token `id` is revoked.
    pub fn revoked(self: &Arc<Self>, id: i64) -> impl Future<Output = ()> + Send + 'static {
        let this = Arc::clone(self);
        let mut rx = self.changed.subscribe();
        async move {
            loop {
                if this.is_revoked(id) {
                    return;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// Polls the database for revocations until `shutdown`; also runs
/// `housekeeping` (rate-limiter cleanup) on each tick.
pub async fn poll(
    store: Arc<dyn Store>,
    revocations: Arc<Revocations>,
    cache: Arc<Cache>,
    every: Duration,
    housekeeping: impl Fn() + Send + 'static,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let since = Timestamp(Timestamp::now().0 - LOOK_BACK.as_micros() as i64);
        match store.revoked_since(since).await {
            Ok(ids) => revocations.add(ids, &cache),
            Err(e) => tracing::warn!(error = %e, "cannot read revoked API tokens; will retry"),
        }
        housekeeping();
    }
}
