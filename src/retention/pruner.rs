//! The pruner: a background task that, every `--prune-interval`, removes
//! what retention no longer keeps and what has expired. Each step deletes
//! at most [`PRUNE_BATCH`] rows in its own short transaction (and records
//! the topic's mark in it, for exact gaps), then rests nine times as long
//! as the step took, so publishes never wait long behind it. With several nodes on
//! one Postgres each node prunes; steps are idempotent, so that is safe.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{Defaults, Policy};
use crate::domain::{Timestamp, TopicConfig};
use crate::storage::topics::{PRUNE_BATCH, PruneBounds, PruneCandidate};
use crate::storage::{Store, StoreError};

/// Between two full steps the pruner rests this many times the step's
/// duration: it takes at most a tenth of the database's write time. (At 3,
/// publishes during a 1,000,000-message prune ran at 0.70 of their rate
/// without it.)
const REST: u32 = 9;

/// What one pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub retention: u64,
    pub expired: u64,
    /// Webhook attempts past `--attempt-log-max-age`.
    pub attempts: u64,
}

/// Runs passes every `interval` until `shutdown`.
pub async fn run(
    store: Arc<dyn Store>,
    defaults: Defaults,
    interval: Duration,
    shutdown: CancellationToken,
) {
    // The first pass one interval after start-up, not at once: a restart
    // does not begin with a burst of deletes.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let pass = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = pass(&*store, defaults, Timestamp::now()) => r,
        };
        match pass {
            Ok(p) if p != Pruned::default() => {
                tracing::debug!(retention = p.retention, expired = p.expired, "pruned");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning failed; trying again next interval"),
        }
    }
}

/// One pass: every topic whose oldest message retention no longer keeps,
/// then expired messages, then some free pages back to the file system.
pub async fn pass(
    store: &dyn Store,
    defaults: Defaults,
    now: Timestamp,
) -> Result<Pruned, StoreError> {
    let mut pruned = Pruned::default();
    for c in store.prune_candidates().await? {
        let Some(bounds) = bounds(&c, defaults, now) else {
            continue;
        };
        loop {
            let started = Instant::now();
            let n = store.prune_topic(&c.name, bounds).await?;
            pruned.retention += n;
            metrics::counter!(crate::telemetry::MESSAGES_PRUNED, "reason" => "retention")
                .increment(n);
            if n < u64::from(PRUNE_BATCH) {
                break;
            }
            pace(started).await;
        }
    }
    loop {
        let started = Instant::now();
        let n = store.prune_expired(now).await?;
        pruned.expired += n;
        metrics::counter!(crate::telemetry::MESSAGES_PRUNED, "reason" => "expired").increment(n);
        if n < u64::from(PRUNE_BATCH) {
            break;
        }
        pace(started).await;
    }
    if let Some(age) = defaults.attempt_log_max_age {
        let before = Timestamp(now.0.saturating_sub(age.as_micros() as i64));
        loop {
            let started = Instant::now();
            let n = store.prune_attempts(before, PRUNE_BATCH).await?;
            pruned.attempts += n;
            if n < u64::from(PRUNE_BATCH) {
                break;
            }
            pace(started).await;
        }
    }
    // Every pass, not only those that deleted: a large prune frees more
    // pages than one reclaim gives back.
    store.reclaim_space().await?;
    Ok(pruned)
}

/// Rests [`REST`] times as long as the step that began at `started` took,
/// so that a large backlog is removed in the background: the writer (on
/// SQLite, the one connection every publish needs) stays free most of the
/// time.
async fn pace(started: Instant) {
    tokio::time::sleep(started.elapsed() * REST).await;
}

/// What retention removes of this topic now, or `None` when its oldest
/// message is still kept (then nothing after it goes either).
fn bounds(c: &PruneCandidate, defaults: Defaults, now: Timestamp) -> Option<PruneBounds> {
    let config: TopicConfig = c
        .config
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let policy = Policy::of(&config, defaults);
    let bounds = PruneBounds {
        before: policy
            .max_age
            .map(|age| Timestamp(now.0.saturating_sub(age.as_micros() as i64))),
        through_seq: policy
            .max_messages
            .map(|keep| c.last_seq.saturating_sub(keep as i64))
            .filter(|s| *s > 0),
    };
    let old = c
        .oldest_us
        .zip(bounds.before)
        .is_some_and(|(t, before)| t < before.0);
    let many = c
        .oldest_seq
        .zip(bounds.through_seq)
        .is_some_and(|(s, through)| s <= through);
    (old || many).then_some(bounds)
}
