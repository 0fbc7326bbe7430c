//! The circuit breaker's arithmetic: each node keeps, per subscription,
//! the outcomes of its recent attempts in time buckets, and says when the
//! failures among them cross the threshold. The circuit's state itself is
//! stored (see [`crate::storage::webhooks::WebhookOpsStore::set_circuit`]),
//! so an open circuit holds on every node.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When a circuit opens, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BreakerSettings {
    /// Opens when at least this share of the recent attempts failed …
    pub failure_ratio: f64,
    /// … and there were at least this many …
    pub min_attempts: u32,
    /// … within this window.
    pub window: Duration,
    /// How long an open circuit waits before its half-open probe.
    pub cooldown: Duration,
}

/// Buckets per window: outcomes age out a thirtieth of a window at a time.
const BUCKETS: u32 = 30;

#[derive(Default)]
struct Window {
    /// (bucket number, succeeded, failed), oldest first.
    buckets: VecDeque<(u64, u32, u32)>,
}

/// Recent outcomes per subscription, on this node.
pub struct Breaker {
    settings: BreakerSettings,
    started: Instant,
    windows: Mutex<HashMap<i64, Window>>,
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            started: Instant::now(),
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub fn settings(&self) -> &BreakerSettings {
        &self.settings
    }

    fn slice(&self) -> Duration {
        (self.settings.window / BUCKETS).max(Duration::from_millis(1))
    }

    /// Counts one outcome; true when the circuit should open now. The
    /// subscription's window starts afresh then.
    pub fn record(&self, subscription: i64, succeeded: bool, at: Instant) -> bool {
        let bucket = (at.saturating_duration_since(self.started).as_nanos()
            / self.slice().as_nanos()) as u64;
        let oldest = bucket.saturating_sub(u64::from(BUCKETS) - 1);
        let mut windows = self.windows.lock().expect("poisoned");
        let w = windows.entry(subscription).or_default();
        while w.buckets.front().is_some_and(|b| b.0 < oldest) {
            w.buckets.pop_front();
        }
        match w.buckets.back_mut() {
            Some(b) if b.0 == bucket => {}
            _ => w.buckets.push_back((bucket, 0, 0)),
        }
        let last = w.buckets.back_mut().expect("just pushed");
        if succeeded {
            last.1 += 1;
        } else {
            last.2 += 1;
        }
        let (ok, failed) = w
            .buckets
            .iter()
            .fold((0u32, 0u32), |(o, f), b| (o + b.1, f + b.2));
        let total = ok + failed;
        let trips = total >= self.settings.min_attempts.max(1)
            && f64::from(failed) >= self.settings.failure_ratio * f64::from(total);
        if trips {
            windows.remove(&subscription);
        }
        trips
    }

    /// Forgets a subscription's outcomes (its circuit closed again).
    pub fn reset(&self, subscription: i64) {
        self.windows.lock().expect("poisoned").remove(&subscription);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerSettings {
            failure_ratio: 0.9,
            min_attempts: 20,
            window: Duration::from_secs(300),
            cooldown: Duration::from_secs(30),
        })
    }

    #[test]
    fn opens_only_past_both_the_count_and_the_ratio() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..19 {
            assert!(!b.record(1, false, t), "19 attempts are too few");
        }
        assert!(b.record(1, false, t), "the 20th failure opens it");
        // A fresh window: 18 failures and 2 successes is exactly 90 %.
        for _ in 0..2 {
            assert!(!b.record(1, true, t));
        }
        for _ in 0..17 {
            assert!(!b.record(1, false, t));
        }
        assert!(b.record(1, false, t));
    }

    #[test]
    fn enough_successes_keep_it_closed_and_old_outcomes_age_out() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..5 {
            b.record(2, true, t);
        }
        for _ in 0..40 {
            assert!(!b.record(2, false, t), "5 of 45 succeeded: 88.9 %");
        }
        // Ten minutes later the window holds none of them.
        let later = t + Duration::from_secs(600);
        for _ in 0..19 {
            assert!(!b.record(2, false, later));
        }
        assert!(b.record(2, false, later));
        assert!(!b.record(3, false, later), "windows are per subscription");
    }
}
