//! Per-client limits: publishes per second (`--rate-limit-publish`, a
//! token bucket per token, or per address for anonymous callers) and open
//! streams (`--max-streams-per-client`). Past either: `429` with
//! `Retry-After`, counted in `herald_rate_limited_total`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// `N/s`, `N/m` or `N/h`: a rate as the flag takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub per: Duration,
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a rate: use N/s, N/m or N/h, e.g. 100/s");
        let (n, unit) = s.trim().split_once('/').ok_or_else(bad)?;
        let count = n.trim().parse::<NonZeroU32>().map_err(|_| bad())?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        Ok(Rate { count, per })
    }
}

/// What a limit refused: retry after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_secs: u32,
    pub limit: &'static str,
    /// More at once than this burst: waiting never helps.
    pub never: Option<u32>,
}

/// The limits of one node.
pub struct Limits {
    publish: Option<(DefaultKeyedRateLimiter<String>, NonZeroU32)>,
    streams: Arc<StreamCounts>,
}

impl Limits {
    pub fn new(publish: Option<Rate>, burst: Option<u32>, max_streams: u32) -> Self {
        let publish = publish.map(|rate| {
            let burst = burst.and_then(NonZeroU32::new).unwrap_or(rate.count);
            let period = rate.per / rate.count.get();
            let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
                .expect("a positive period")
                .allow_burst(burst);
            (governor::RateLimiter::keyed(quota), burst)
        });
        Limits {
            publish,
            streams: Arc::new(StreamCounts {
                max: max_streams,
                open: Mutex::default(),
            }),
        }
    }

    /// Takes `n` publishes from `client`'s bucket.
    pub fn publish(&self, client: &str, n: usize) -> Result<(), Limited> {
        let Some((limiter, burst)) = &self.publish else {
            return Ok(());
        };
        let n = NonZeroU32::new(n.clamp(1, u32::MAX as usize) as u32).expect("n >= 1");
        match limiter.check_key_n(&client.to_owned(), n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(refused(
                "publish",
                not_until.wait_time_from(DefaultClock::default().now()),
            )),
            // More than the whole burst at once: it can never pass.
            Err(_) => Err(Limited {
                never: Some(burst.get()),
                ..refused("publish", Duration::ZERO)
            }),
        }
    }

    /// A slot for one more open stream of `client`, held until dropped.
    pub fn open_stream(&self, client: &str) -> Result<StreamSlot, Limited> {
        self.streams.acquire(client)
    }

    /// Forgets idle clients' buckets (called now and then).
    pub fn housekeeping(&self) {
        if let Some((limiter, _)) = &self.publish {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

fn refused(limit: &'static str, wait: Duration) -> Limited {
    metrics::counter!(crate::telemetry::RATE_LIMITED, "limit" => limit).increment(1);
    Limited {
        retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u32,
        limit,
        never: None,
    }
}

/// Open streams per client.
struct StreamCounts {
    max: u32,
    open: Mutex<HashMap<String, u32>>,
}

impl StreamCounts {
    fn acquire(self: &Arc<Self>, client: &str) -> Result<StreamSlot, Limited> {
        if self.max == 0 {
            return Ok(StreamSlot(None));
        }
        let mut open = self.open.lock().expect("stream counts");
        let n = open.entry(client.to_owned()).or_insert(0);
        if *n >= self.max {
            drop(open);
            return Err(refused("streams", Duration::from_secs(5)));
        }
        *n += 1;
        Ok(StreamSlot(Some((Arc::clone(self), client.to_owned()))))
    }
}

/// One open stream, counted until dropped.
pub struct StreamSlot(Option<(Arc<StreamCounts>, String)>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Some((counts, client)) = self.0.take() {
            let mut open = counts.open.lock().expect("stream counts");
            if let Some(n) = open.get_mut(&client) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&client);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        let r: Rate = "100/s".parse().unwrap();
        assert_eq!((r.count.get(), r.per), (100, Duration::from_secs(1)));
        let r: Rate = "6000/m".parse().unwrap();
        assert_eq!(r.per, Duration::from_secs(60));
        for bad in ["100", "0/s", "x/s", "10/d", "/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bucket_refuses_past_its_burst_and_names_a_wait() {
        let limits = Limits::new(Some("10/s".parse().unwrap()), Some(5), 0);
        for _ in 0..5 {
            limits.publish("a", 1).unwrap();
        }
        let refused = limits.publish("a", 1).unwrap_err();
        assert_eq!(refused.retry_after_secs, 1);
        // Another client has a bucket of its own.
        limits.publish("b", 5).unwrap();
        // A batch larger than the burst can never pass, and says so.
        assert_eq!(limits.publish("c", 6).unwrap_err().never, Some(5));
    }

    #[test]
    fn stream_slots_are_given_back_when_dropped() {
        let limits = Limits::new(None, None, 2);
        let a = limits.open_stream("x").unwrap();
        let _b = limits.open_stream("x").unwrap();
        assert!(limits.open_stream("x").is_err());
        assert!(limits.open_stream("y").is_ok());
        drop(a);
        assert!(limits.open_stream("x").is_ok());
    }
}
