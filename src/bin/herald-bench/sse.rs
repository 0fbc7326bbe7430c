//! SSE load: a lean raw-TCP SSE client (one read may carry many events;
//! no per-event allocation), and the fan-out, catch-up and idle scenarios.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::stats::Latencies;

/// One SSE connection.
pub struct Sse {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Sse {
    pub async fn connect(
        addr: SocketAddr,
        local: Option<IpAddr>,
        path: &str,
    ) -> anyhow::Result<Sse> {
        Self::open(connect_from(addr, local, None).await?, path, "").await
    }

    /// Sends the request on `stream` (with `headers`, each ending in CRLF)
    /// and reads the response head.
    pub async fn open(mut stream: TcpStream, path: &str, headers: &str) -> anyhow::Result<Sse> {
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n{headers}\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut buf = Vec::with_capacity(4096);
        loop {
            let mut chunk = [0u8; 2048];
            let n = stream.read(&mut chunk).await?;
            anyhow::ensure!(n > 0, "closed before the response headers");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                anyhow::ensure!(
                    buf.starts_with(b"HTTP/1.1 200"),
                    "{}",
                    String::from_utf8_lossy(&buf[..end])
                );
                buf.drain(..end + 4);
                return Ok(Sse { stream, buf });
            }
        }
    }

    /// Waits for data and calls `f(id, data_line)` for every complete event
    /// in it. `false` once the server closed the stream.
    pub async fn read(&mut self, mut f: impl FnMut(i64, &[u8])) -> anyhow::Result<bool> {
        // Read straight into the spare capacity: no per-read buffer to
        // allocate and zero (that cost the load generator a core's tenth).
        self.buf.reserve(16 * 1024);
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Ok(false);
        }
        let Some(end) = rfind(&self.buf, b"\n\n") else {
            return Ok(true);
        };
        let mut id = -1;
        // Chunked-encoding size lines never start with "id: " or "data: ".
        for line in self.buf[..end].split(|b| *b == b'\n') {
            if let Some(digits) = line.strip_prefix(b"id: ") {
                id = parse(digits);
            } else if let Some(data) = line.strip_prefix(b"data: ") {
                // Events without an id (presence's join and leave) are
                // not messages.
                if id >= 0 {
                    f(id, data);
                }
                id = -1;
            }
        }
        self.buf.drain(..end + 2);
        Ok(true)
    }
}

/// A TCP connection to `addr`, from the source address `local` and with a
/// receive buffer of `rcvbuf` bytes if given.
pub async fn connect_from(
    addr: SocketAddr,
    local: Option<IpAddr>,
    rcvbuf: Option<u32>,
) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = local {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size)?;
    }
    Ok(socket.connect(addr).await?)
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

pub fn parse(digits: &[u8]) -> i64 {
    digits
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0, |n, d| n * 10 + i64::from(d - b'0'))
}

/// The publish time a bench message carries (`"t":<µs since epoch>`).
fn sent_micros(data: &[u8]) -> Option<i64> {
    let at = find(data, b"\"t\":")?;
    Some(parse(&data[at + 4..]))
}

pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

pub fn addr(base: &str) -> anyhow::Result<SocketAddr> {
    Ok(base.trim_start_matches("http://").parse()?)
}

/// Source addresses 127.0.0.2 … 127.0.0.101 in turn: each has its own
/// ephemeral ports, so tens of thousands of connections (and the
/// TIME_WAIT of the previous run) never run out of them.
pub fn local_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % 100) as u8))
}

/// Opens `n` connections, 256 at a time.
pub async fn open_many(base: &str, path: &str, n: usize) -> anyhow::Result<Vec<Sse>> {
    let addr = addr(base)?;
    let mut conns = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let batch: Vec<_> = (i..(i + 256).min(n))
            .map(|k| Sse::connect(addr, Some(local_ip(k)), path))
            .collect();
        for c in futures_util::future::join_all(batch).await {
            conns.push(c?);
        }
        i += 256;
    }
    Ok(conns)
}

/// The server's resident memory once it stops falling: what setting up
/// connections freed goes back to the allocator and, within its decay
/// time, to the OS. Read until it settles, for at most 20 s.
pub async fn steady_rss(pid: u32) -> u64 {
    let mut after = crate::server::rss_bytes(pid).unwrap_or_default();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = crate::server::rss_bytes(pid).unwrap_or_default();
        let settled = now + after / 200 >= after; // fell by under 0.5 %
        after = after.min(now);
        if settled {
            break;
        }
    }
    after
}

pub struct Fanout {
    pub deliveries: u64,
    pub published: u64,
    pub elapsed: Duration,
    pub latencies: Latencies,
    pub out_of_order: u64,
}

/// `subscribers` live streams on one topic; one publisher at `rate`
/// messages/s for `duration`. Every subscriber must get every message
/// once, in order; latency is sampled on 50 subscribers.
pub async fn fanout(
    base: &str,
    subscribers: usize,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Fanout> {
    fanout_at(base, "/topics/fan/events", subscribers, rate, duration).await
}

/// [`fanout`] with streams opened at `path` (of topic `fan`).
pub async fn fanout_at(
    base: &str,
    path: &str,
    subscribers: usize,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Fanout> {
    let conns = open_many(base, path, subscribers).await?;
    let counts = Counts::default();
    let mut readers = Vec::with_capacity(subscribers);
    for (k, mut c) in conns.into_iter().enumerate() {
        let mut seen = counts.reader(k);
        readers.push(tokio::spawn(async move {
            while c
                .read(|id, data| seen.event(id, data))
                .await
                .unwrap_or(false)
            {}
        }));
    }
    counts.run(base, subscribers, rate, duration, readers).await
}

/// What the readers of a fan-out saw, shared.
#[derive(Default, Clone)]
pub struct Counts {
    delivered: Arc<AtomicU64>,
    bad: Arc<AtomicU64>,
    // Readers are aborted at the end, so samples go straight to a shared list.
    samples: Arc<std::sync::Mutex<Vec<Duration>>>,
}

/// One reader's view: its last id, and whether it samples latency.
pub struct Seen {
    counts: Counts,
    last: i64,
    sample: bool,
}

impl Seen {
    /// A message `id` whose data (or frame) is `data` arrived.
    pub fn event(&mut self, id: i64, data: &[u8]) {
        if self.last >= 0 && id != self.last + 1 {
            self.counts.bad.fetch_add(1, Ordering::Relaxed);
        }
        self.last = id;
        self.counts.delivered.fetch_add(1, Ordering::Relaxed);
        if self.sample
            && let Some(t) = sent_micros(data)
        {
            let latency = Duration::from_micros((now_micros() - t).max(0) as u64);
            self.counts.samples.lock().expect("poisoned").push(latency);
        }
    }
}

impl Counts {
    pub fn reader(&self, k: usize) -> Seen {
        Seen {
            counts: self.clone(),
            last: -1,
            sample: k < 50,
        }
    }

    /// Publishes to `fan` at `rate` for `duration`, waits for every
    /// delivery (at most 60 s more), stops the readers and sums up.
    pub async fn run(
        self,
        base: &str,
        subscribers: usize,
        rate: f64,
        duration: Duration,
        readers: Vec<tokio::task::JoinHandle<()>>,
    ) -> anyhow::Result<Fanout> {
        let started = Instant::now();
        let published = publish_at(base, rate, duration).await?;
        let expected = published * subscribers as u64;
        let wait = Instant::now();
        while self.delivered.load(Ordering::Relaxed) < expected
            && wait.elapsed() < Duration::from_secs(60)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let elapsed = started.elapsed();
        for r in &readers {
            r.abort();
        }
        let mut latencies = Latencies::default();
        latencies.extend(self.samples.lock().expect("poisoned").drain(..));
        Ok(Fanout {
            deliveries: self.delivered.load(Ordering::Relaxed),
            published,
            elapsed,
            latencies,
            out_of_order: self.bad.load(Ordering::Relaxed),
        })
    }
}

/// One publisher to topic `fan` at `rate` messages/s for `duration`;
/// returns how many it published.
async fn publish_at(base: &str, rate: f64, duration: Duration) -> anyhow::Result<u64> {
    let http = reqwest::Client::new();
    let pad: Arc<str> = Arc::from("x".repeat(200));
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    // Publishes go out on schedule, up to 32 in flight: a slow answer must
    // not lower the rate (the order is the server's commit order anyway).
    let in_flight = Arc::new(tokio::sync::Semaphore::new(32));
    let mut sends = tokio::task::JoinSet::new();
    let mut published = 0u64;
    while started.elapsed() < duration {
        tick.tick().await;
        let permit = in_flight.clone().acquire_owned().await?;
        let (http, url, pad) = (http.clone(), format!("{base}/topics/fan"), pad.clone());
        sends.spawn(async move {
            let body = format!(r#"{{"t":{},"pad":"{pad}"}}"#, now_micros());
            let r = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await?;
            drop(permit);
            anyhow::ensure!(r.status().is_success(), "publish: {}", r.status());
            anyhow::Ok(())
        });
        published += 1;
    }
    while let Some(r) = sends.join_next().await {
        r??;
    }
    Ok(published)
}

/// One subscriber replays `expected` messages from `earliest`; returns
/// messages/s, after checking ids 1..=expected arrive once, in order.
pub async fn catchup(base: &str, topic: &str, expected: u64) -> anyhow::Result<f64> {
    let mut c = Sse::connect(
        addr(base)?,
        None,
        &format!("/topics/{topic}/events?last_event_id=earliest"),
    )
    .await?;
    let started = Instant::now();
    let (mut n, mut last, mut bad) = (0u64, 0i64, 0u64);
    while n < expected {
        let open = c
            .read(|id, _| {
                if id != last + 1 {
                    bad += 1;
                }
                last = id;
                n += 1;
            })
            .await?;
        anyhow::ensure!(open, "the stream ended after {n} of {expected}");
    }
    let elapsed = started.elapsed();
    anyhow::ensure!(bad == 0, "{bad} events out of order or repeated");
    Ok(n as f64 / elapsed.as_secs_f64())
}

/// Server memory per idle SSE connection: RSS growth over `n` connections.
pub async fn idle(base: &str, pid: u32, n: usize) -> anyhow::Result<(f64, u64, u64)> {
    // Warm up allocator and pools with a few connections first.
    drop(open_many(base, "/topics/idle/events", 64).await?);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = crate::server::rss_bytes(pid).unwrap_or_default();
    let conns = open_many(base, "/topics/idle/events", n).await?;
    let after = steady_rss(pid).await;
    drop(conns);
    Ok((
        after.saturating_sub(before) as f64 / n as f64,
        before,
        after,
    ))
}
