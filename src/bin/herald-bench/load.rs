//! Request/response load: single publishes, batch publishes, the
//! `/healthz` floor, and the storage floor (batched appends straight
//! through herald's storage layer, same durability settings).

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use herald::domain::{EventType, NewMessage, Payload, TopicName};
use herald::storage::{self, StoreOptions};

use crate::sse::{find, parse};
use crate::stats::Latencies;

/// A ~256-byte JSON order.
pub fn payload(i: u64) -> String {
    let body = format!(
        r#"{{"order":{i},"customer":{{"id":"c-{}","country":"DE"}},"items":[{{"sku":"A-1","qty":2}},{{"sku":"B-7","qty":1}}],"total":150.25,"priority":"high","note":"#,
        i % 997
    );
    let pad = 256usize.saturating_sub(body.len() + 3);
    format!("{body}\"{}\"}}", "x".repeat(pad))
}

/// What a closed-loop run measured.
pub struct Run {
    pub requests: u64,
    pub messages: u64,
    pub elapsed: Duration,
    pub latencies: Latencies,
    pub ids: Vec<i64>,
}

impl Run {
    pub fn per_second(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Healthz,
    /// A `GET` of this path (answered 2xx, logged at info).
    Get(&'static str),
    Publish {
        topics: u64,
    },
    /// Single publishes to one topic, each with its own Idempotency-Key.
    KeyedPublish,
    /// Single publishes that all re-send one Idempotency-Key and body: a
    /// client retrying a publish that was stored (all but the first are
    /// replays).
    Replay,
    Batch {
        size: usize,
    },
}

/// One keep-alive HTTP/1.1 connection speaking just enough of the protocol
/// for herald's answers (always `Content-Length`): a load generator as lean
/// as wrk, so that it leaves the shared cores to the server.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    request: Vec<u8>,
    /// An `Authorization` header line, with its CRLF.
    auth: Option<String>,
    /// An extra header line for the next request only, with its CRLF.
    extra: Option<String>,
    /// The last answer said `Connection: close` (nginx does after 1,000
    /// requests): connect again before the next.
    closing: bool,
}

impl Conn {
    async fn connect(addr: SocketAddr, local: IpAddr, token: Option<&str>) -> anyhow::Result<Conn> {
        let stream = crate::sse::connect_from(addr, Some(local), None).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            request: Vec::with_capacity(64 * 1024),
            auth: token.map(|t| format!("Authorization: Bearer {t}\r\n")),
            extra: None,
            closing: false,
        })
    }

    /// Sends one request; returns the status and the body.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, &[u8])> {
        self.request.clear();
        write!(
            self.request,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
        )?;
        if let Some(auth) = &self.auth {
            self.request.extend_from_slice(auth.as_bytes());
        }
        if let Some(extra) = self.extra.take() {
            self.request.extend_from_slice(extra.as_bytes());
        }
        if method == "POST" {
            write!(
                self.request,
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            )?;
        }
        self.request.extend_from_slice(b"\r\n");
        self.request.extend_from_slice(body);
        self.stream.write_all(&self.request).await?;

        self.buf.clear();
        let (head_end, length) = loop {
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                anyhow::bail!("the server closed the connection");
            }
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end])?.to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .ok_or_else(|| anyhow::anyhow!("no Content-Length in {head}"))?;
                self.closing = head.contains("\r\nconnection: close");
                break (end + 4, length);
            }
        };
        while self.buf.len() < head_end + length {
            self.buf.reserve(head_end + length - self.buf.len());
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                anyhow::bail!("the server closed the connection mid-body");
            }
        }
        let status = std::str::from_utf8(&self.buf[9..12])?.parse()?;
        Ok((status, &self.buf[head_end..head_end + length]))
    }
}

/// Every `"id":N` in an answer (one for a publish, one per message for a
/// batch).
fn ids_in(body: &[u8], out: &mut Vec<i64>) -> usize {
    let mut n = 0;
    let mut rest = body;
    while let Some(at) = find(rest, b"\"id\":") {
        rest = &rest[at + 5..];
        out.push(parse(rest));
        n += 1;
    }
    n
}

/// `clients` keep-alive clients, each sending its next request as soon as
/// the last one is answered, for `duration`.
pub async fn closed_loop(
    base: &str,
    kind: Kind,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    closed_loop_as(base, kind, clients, duration, None).await
}

/// [`closed_loop`] with a bearer token on every request.
pub async fn closed_loop_as(
    base: &str,
    kind: Kind,
    clients: usize,
    duration: Duration,
    token: Option<String>,
) -> anyhow::Result<Run> {
    let addr: SocketAddr = base.trim_start_matches("http://").parse()?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let local = crate::sse::local_ip(c);
            let mut conn = Conn::connect(addr, local, token.as_deref()).await?;
            let mut lat = Vec::new();
            let mut ids = Vec::new();
            let mut messages = 0u64;
            let mut i = c as u64;
            while Instant::now() < deadline {
                if conn.closing {
                    conn = Conn::connect(addr, local, token.as_deref()).await?;
                }
                let t0 = Instant::now();
                let (status, body) = match kind {
                    Kind::Healthz => conn.send("GET", "/healthz", b"").await?,
                    Kind::Get(path) => conn.send("GET", path, b"").await?,
                    Kind::Publish { topics } => {
                        let path = format!("/topics/bench.{}", i % topics);
                        conn.send("POST", &path, payload(i).as_bytes()).await?
                    }
                    Kind::KeyedPublish => {
                        conn.extra = Some(format!("Idempotency-Key: bench-{i}\r\n"));
                        conn.send("POST", "/topics/bench.0", payload(i).as_bytes())
                            .await?
                    }
                    Kind::Replay => {
                        conn.extra = Some("Idempotency-Key: bench-replay\r\n".into());
                        conn.send("POST", "/topics/replays", payload(0).as_bytes())
                            .await?
                    }
                    Kind::Batch { size } => {
                        let items: Vec<String> =
                            (0..size as u64).map(|k| payload(i * 1000 + k)).collect();
                        let body = format!("[{}]", items.join(","));
                        conn.send("POST", "/topics/bench.batch/batch", body.as_bytes())
                            .await?
                    }
                };
                lat.push(t0.elapsed());
                anyhow::ensure!(
                    (200..300).contains(&status),
                    "{status}: {}",
                    String::from_utf8_lossy(body)
                );
                messages += match kind {
                    Kind::Healthz | Kind::Get(_) => 1,
                    // A peer's answer (nchan's) carries no id: one message.
                    Kind::Publish { .. } => ids_in(body, &mut ids).max(1) as u64,
                    Kind::KeyedPublish | Kind::Replay | Kind::Batch { .. } => {
                        ids_in(body, &mut ids) as u64
                    }
                };
                i += clients as u64;
            }
            anyhow::Ok((lat, ids, messages))
        }));
    }
    let mut run = Run {
        requests: 0,
        messages: 0,
        elapsed: Duration::ZERO,
        latencies: Latencies::default(),
        ids: Vec::new(),
    };
    for t in tasks {
        let (lat, ids, messages) = t.await??;
        run.requests += lat.len() as u64;
        run.latencies.extend(lat);
        run.ids.extend(ids);
        run.messages += messages;
    }
    run.elapsed = started.elapsed();
    Ok(run)
}

/// Appends batches of `batch` messages straight through the storage layer
/// for `duration`: what the disk and database allow, without HTTP.
pub async fn storage_floor(
    database_url: &str,
    batch: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let store = storage::connect(
        database_url,
        &StoreOptions {
            timeout: Duration::from_secs(5),
            max_connections: 4,
            sqlite_full_sync: true,
            sqlite_max_page_count: None,
        },
    )
    .await?;
    let topic = TopicName::parse("bench.floor")?;
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < duration {
        let messages = (0..batch as u64)
            .map(|i| NewMessage {
                topic: topic.clone(),
                event: EventType::message(),
                payload: Payload::Json(payload(n + i)),
                content_type: "application/json".into(),
                ttl: None,
                priority: Default::default(),
                key: None,
            })
            .collect();
        n += store.append(messages, Duration::from_secs(30)).await?.len() as u64;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Checks that every acknowledged id is unique and that the server holds
/// exactly as many messages as were acknowledged.
pub async fn verify_publishes(base: &str, ids: &mut Vec<i64>) -> anyhow::Result<()> {
    verify_publishes_as(base, ids, None).await
}

/// [`verify_publishes`] with an admin token (`GET /topics` needs one when
/// access control is on).
pub async fn verify_publishes_as(
    base: &str,
    ids: &mut Vec<i64>,
    admin: Option<&str>,
) -> anyhow::Result<()> {
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    anyhow::ensure!(
        ids.len() == n,
        "{} duplicate ids acknowledged",
        n - ids.len()
    );
    let mut request = reqwest::Client::new().get(format!("{base}/topics"));
    if let Some(token) = admin {
        request = request.bearer_auth(token);
    }
    let topics: serde_json::Value = request.send().await?.json().await?;
    let stored: i64 = topics["topics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| {
            t["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("bench.") && n != "bench.floor")
        })
        .map(|t| t["message_count"].as_i64().unwrap_or_default())
        .sum();
    anyhow::ensure!(
        stored as usize == n,
        "acknowledged {n} but the server stores {stored}"
    );
    Ok(())
}
