//! The `slow` scenario: herald's memory beside SSE subscribers that stop
//! reading. Stalled clients (a 4 KiB receive buffer, never read) and one
//! reading subscriber; a publisher sends 1 KiB messages in batches. The
//! figures: RSS before the subscribers connect, once they are connected, its
//! peak during the load, and how it falls once every connection is closed.
//! Checks: the reading subscriber gets every message once, in order; with
//! one stalled subscriber, that one too, when it reads again (resuming with
//! Last-Event-ID if the write timeout closed it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::server::rss_bytes;
use crate::sse::{Sse, addr, connect_from, local_ip};

/// One run's shape.
pub struct Case {
    pub stalled: usize,
    pub messages: u64,
    pub batch: usize,
    /// Seconds to watch RSS after the close.
    pub watch: usize,
}

/// What one run measured (bytes, and seconds after the close).
pub struct Figures {
    pub before: u64,
    pub connected: u64,
    /// Peak RSS while the messages were published and the reader read them.
    pub peak: u64,
    /// Peak RSS while the one stalled subscriber read again (catch-up).
    pub peak_resume: Option<u64>,
    /// RSS every second after every connection closed (index = seconds).
    pub after_close: Vec<u64>,
    pub publish_rate: f64,
}

const MIB: f64 = 1024.0 * 1024.0;

pub async fn run(base: &str, pid: u32, case: &Case) -> anyhow::Result<Figures> {
    let before = settle(pid).await;
    let stalled = open_stalled(base, case.stalled).await?;
    let (reader, received) = reading_subscriber(base, case.messages).await?;
    let connected = rss_bytes(pid).unwrap_or_default();

    let peak = Arc::new(AtomicU64::new(connected));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(sample_peak(pid, peak.clone(), done.clone()));
    let started = Instant::now();
    publish(base, case).await?;
    let publish_rate = case.messages as f64 / started.elapsed().as_secs_f64();
    let reader_ok = reader.await?;
    anyhow::ensure!(
        reader_ok,
        "the reading subscriber got {} of {} messages, or out of order",
        received.load(Ordering::Relaxed),
        case.messages
    );
    let during_load = peak.swap(0, Ordering::Relaxed);
    let mut stalled_verified = false;
    let mut stalled = stalled;
    if case.stalled == 1 {
        let one = stalled.pop().expect("one stalled subscriber");
        verify_resumes(base, one, case.messages).await?;
        stalled_verified = true;
    }
    let peak_resume = stalled_verified.then(|| peak.load(Ordering::Relaxed));
    done.store(true, Ordering::Relaxed);
    sampler.await?;
    drop(stalled);
    let mut after_close = Vec::new();
    for _ in 0..=case.watch {
        after_close.push(rss_bytes(pid).unwrap_or_default());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(Figures {
        before,
        connected,
        peak: during_load,
        peak_resume,
        after_close,
        publish_rate,
    })
}

impl Figures {
    pub fn growth_mib(&self) -> f64 {
        self.peak.saturating_sub(self.before) as f64 / MIB
    }

    pub fn note(&self) -> String {
        let mib = |b: u64| b as f64 / MIB;
        let at = |s: usize| {
            self.after_close
                .get(s)
                .map_or("-".to_owned(), |r| format!("{:.1}", mib(*r)))
        };
        let near = self.before + 16 * 1024 * 1024;
        let back = self
            .after_close
            .iter()
            .position(|r| *r <= near)
            .map_or("not within 20 s".to_owned(), |s| format!("after {s} s"));
        format!(
            "RSS {:.1} MiB before, {:.1} connected, peak {:.1}; after close: {} (1 s), {} (5 s), {} (20 s); back within 16 MiB of before: {back}; publish {:.0} msgs/s{}",
            mib(self.before),
            mib(self.connected),
            mib(self.peak),
            at(1),
            at(5),
            at(20),
            self.publish_rate,
            self.peak_resume.map_or(String::new(), |p| format!(
                "; the stalled subscriber then read again and got every message once, in order (peak RSS meanwhile {:.1} MiB)",
                mib(p)
            ))
        )
    }
}

/// RSS once it has stopped moving (start-up frees memory for a moment).
async fn settle(pid: u32) -> u64 {
    tokio::time::sleep(Duration::from_millis(500)).await;
    rss_bytes(pid).unwrap_or_default()
}

async fn sample_peak(pid: u32, peak: Arc<AtomicU64>, done: Arc<AtomicBool>) {
    while !done.load(Ordering::Relaxed) {
        peak.fetch_max(rss_bytes(pid).unwrap_or_default(), Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` subscribers with a 4 KiB receive buffer that read nothing after the
/// response head.
async fn open_stalled(base: &str, n: usize) -> anyhow::Result<Vec<Sse>> {
    let addr = addr(base)?;
    let mut conns = Vec::with_capacity(n);
    for start in (0..n).step_by(256) {
        let batch = (start..(start + 256).min(n)).map(|k| async move {
            let stream = connect_from(addr, Some(local_ip(k)), Some(4096)).await?;
            Sse::open(stream, "/topics/slow/events", "").await
        });
        for c in futures_util::future::join_all(batch).await {
            conns.push(c?);
        }
    }
    Ok(conns)
}

/// A subscriber that reads everything; its task answers whether it got
/// ids 1..=n once each, in order.
async fn reading_subscriber(
    base: &str,
    n: u64,
) -> anyhow::Result<(tokio::task::JoinHandle<bool>, Arc<AtomicU64>)> {
    let mut sse = Sse::connect(addr(base)?, None, "/topics/slow/events").await?;
    let received = Arc::new(AtomicU64::new(0));
    let count = received.clone();
    let task = tokio::spawn(async move {
        let (mut last, mut ok) = (0i64, true);
        while last < n as i64 {
            let read = tokio::time::timeout(
                Duration::from_secs(120),
                sse.read(|id, _| {
                    ok &= id == last + 1;
                    last = id;
                    count.fetch_add(1, Ordering::Relaxed);
                }),
            )
            .await;
            if !matches!(read, Ok(Ok(true))) {
                return false;
            }
        }
        ok
    });
    Ok((task, received))
}

/// Batch publishes of 1 KiB messages, four requests in flight.
async fn publish(base: &str, case: &Case) -> anyhow::Result<()> {
    let pad = "x".repeat(1000);
    let one = format!(r#"{{"pad":"{pad}"}}"#);
    let body: Arc<str> = Arc::from(format!("[{}]", vec![one; case.batch].join(",")));
    let http = reqwest::Client::new();
    let requests = case.messages.div_ceil(case.batch as u64);
    let url = format!("{base}/topics/slow/batch");
    let mut sent = 0;
    while sent < requests {
        let k = (requests - sent).min(4);
        let reqs = (0..k).map(|_| {
            http.post(&url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
        });
        for r in futures_util::future::join_all(reqs).await {
            let r = r?;
            if r.status() != 201 {
                let status = r.status();
                anyhow::bail!("publish failed: {status} {}", r.text().await?);
            }
        }
        sent += k;
    }
    Ok(())
}

/// The stalled subscriber reads again: it must get ids 1..=n once each, in
/// order, reconnecting with Last-Event-ID if the server closed it.
async fn verify_resumes(base: &str, mut sse: Sse, n: u64) -> anyhow::Result<()> {
    let (mut last, mut bad) = (0i64, 0u64);
    while last < n as i64 {
        let open = tokio::time::timeout(
            Duration::from_secs(60),
            sse.read(|id, _| {
                if id != last + 1 {
                    bad += 1;
                }
                last = id;
            }),
        )
        .await??;
        if !open {
            let stream = connect_from(addr(base)?, None, None).await?;
            let header = format!("Last-Event-ID: {last}\r\n");
            sse = Sse::open(stream, "/topics/slow/events", &header).await?;
        }
    }
    anyhow::ensure!(
        bad == 0,
        "the stalled subscriber got {bad} events out of order or twice"
    );
    Ok(())
}

/// The scenario: one stalled subscriber (1,000,000 messages in batches of
/// 1,000), then 10,000 (100,000 messages in batches of 100), each on a
/// fresh server, beside a run with none as the baseline.
pub async fn scenario(cx: &mut crate::Ctx) -> anyhow::Result<()> {
    let cases = if cx.args.smoke {
        vec![(0, 2_000, 100), (1, 2_000, 100), (20, 2_000, 100)]
    } else {
        vec![
            (0, 1_000_000, 1000),
            (1, 1_000_000, 1000),
            (10_000, 100_000, 100),
        ]
    };
    let mut baseline = None;
    for (stalled, messages, batch) in cases {
        let case = Case {
            stalled,
            messages,
            batch,
            watch: if cx.args.smoke { 2 } else { 20 },
        };
        let (server, db) = cx.server(&[]).await?;
        let Some(pid) = server.pid() else {
            anyhow::bail!("slow needs a server this harness started (no --url)");
        };
        eprintln!("slow: {stalled} stalled, {messages} messages in batches of {batch}");
        let figures = run(&server.url, pid, &case).await?;
        server.stop().await;
        if let Some(db) = db {
            db.cleanup().await;
        }
        let label =
            format!("slow, {stalled} stalled, {messages} msgs of 1 KiB in batches of {batch}");
        let mut row = crate::stats::Row::new(
            &label,
            cx.backend,
            "RSS growth",
            figures.growth_mib(),
            "MiB",
        )
        .note(figures.note());
        if stalled == 0 {
            baseline = Some(figures.growth_mib());
        } else if let Some(b) = baseline {
            row = row.baseline("no stalled subscriber (first row)", b);
        }
        row = match stalled {
            0 => row,
            1 => row.target("≤ 96 MiB"),
            _ => row.target("≤ 256 MiB"),
        };
        cx.rows.push(row);
    }
    Ok(())
}
