//! WebSocket load: a lean raw-TCP WebSocket client (one read may carry
//! many frames; no per-frame allocation), fan-out and idle memory next to
//! SSE in the same run, and the cost of presence.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::sse::{self, Counts, Fanout, addr, connect_from, find, local_ip, parse};

/// One WebSocket with one subscription.
pub struct Ws {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A client frame: FIN, `opcode`, masked with a zero key (the mask is
/// required; a zero key leaves the payload as it is).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

impl Ws {
    /// Upgrades, subscribes to `topic` and waits for `subscribed`.
    pub async fn connect(
        addr: SocketAddr,
        local: Option<IpAddr>,
        topic: &str,
    ) -> anyhow::Result<Ws> {
        let mut stream = connect_from(addr, local, None).await?;
        stream
            .write_all(
                b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            )
            .await?;
        let mut buf = Vec::with_capacity(4096);
        let end = loop {
            anyhow::ensure!(
                stream.read_buf(&mut buf).await? > 0,
                "closed before the upgrade"
            );
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                break end;
            }
        };
        anyhow::ensure!(
            buf.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&buf[..end])
        );
        buf.drain(..end + 4);
        let sub = format!(r#"{{"op":"subscribe","sub":"s","topics":["{topic}"]}}"#);
        stream.write_all(&client_frame(0x1, sub.as_bytes())).await?;
        let mut ws = Ws { stream, buf };
        let mut subscribed = false;
        while !subscribed {
            anyhow::ensure!(
                ws.read(|f| subscribed |= find(f, b"\"subscribed\"").is_some())
                    .await?,
                "closed"
            );
        }
        Ok(ws)
    }

    /// Waits for data and calls `f(payload)` for every complete text frame;
    /// answers pings. `false` once the server closed the socket.
    pub async fn read(&mut self, mut f: impl FnMut(&[u8])) -> anyhow::Result<bool> {
        self.buf.reserve(16 * 1024);
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Ok(false);
        }
        let mut at = 0;
        let mut pongs = Vec::new();
        while let Some((opcode, start, end)) = frame_at(&self.buf[at..]) {
            let payload = &self.buf[at + start..at + end];
            match opcode {
                0x1 => f(payload),
                0x8 => return Ok(false),
                0x9 => pongs.extend(client_frame(0xA, payload)),
                _ => {}
            }
            at += end;
        }
        self.buf.drain(..at);
        if !pongs.is_empty() {
            self.stream.write_all(&pongs).await?;
        }
        Ok(true)
    }
}

/// The next whole server frame in `b`: (opcode, payload start, end).
fn frame_at(b: &[u8]) -> Option<(u8, usize, usize)> {
    if b.len() < 2 {
        return None;
    }
    let (len, head) = match b[1] & 0x7f {
        126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
        127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().ok()?) as usize, 10),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    (b.len() >= head + len).then_some((b[0] & 0x0f, head, head + len))
}

/// Opens `n` sockets on topic `topic`, 256 at a time.
pub async fn open_many(base: &str, topic: &str, n: usize) -> anyhow::Result<Vec<Ws>> {
    let addr = addr(base)?;
    let mut conns = Vec::with_capacity(n);
    for first in (0..n).step_by(256) {
        let batch: Vec<_> = (first..(first + 256).min(n))
            .map(|k| Ws::connect(addr, Some(local_ip(k)), topic))
            .collect();
        for c in futures_util::future::join_all(batch).await {
            conns.push(c?);
        }
    }
    Ok(conns)
}

/// [`sse::fanout`] over WebSocket subscriptions.
pub async fn fanout(
    base: &str,
    subscribers: usize,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Fanout> {
    let conns = open_many(base, "fan", subscribers).await?;
    let counts = Counts::default();
    let mut readers = Vec::with_capacity(subscribers);
    for (k, mut c) in conns.into_iter().enumerate() {
        let mut seen = counts.reader(k);
        readers.push(tokio::spawn(async move {
            // `{"op":"message","sub":"s","id":N,…`: the first "id" is the
            // envelope's.
            let read = |f: &[u8]| {
                if let Some(at) = find(f, b"\"id\":") {
                    seen.event(parse(&f[at + 5..]), f);
                }
            };
            let mut read = read;
            while c.read(&mut read).await.unwrap_or(false) {}
        }));
    }
    counts.run(base, subscribers, rate, duration, readers).await
}

/// Server memory per idle WebSocket (one subscription each): RSS growth
/// over `n` sockets.
pub async fn idle(base: &str, pid: u32, n: usize) -> anyhow::Result<f64> {
    drop(open_many(base, "idle", 64).await?);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = crate::server::rss_bytes(pid).unwrap_or_default();
    let conns = open_many(base, "idle", n).await?;
    let after = sse::steady_rss(pid).await;
    drop(conns);
    Ok(after.saturating_sub(before) as f64 / n as f64)
}

/// Streams of topic `fan` opening and closing every `every` until
/// `stop`: the presence churn of the presence-on run.
pub async fn churn(
    base: String,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) -> u64 {
    let mut n = 0;
    let Ok(addr) = addr(&base) else { return 0 };
    while !stop.is_cancelled() {
        if let Ok(c) = sse::Sse::connect(addr, None, "/topics/fan/events?client=churn").await {
            n += 1;
            tokio::time::sleep(every).await;
            drop(c);
        }
        tokio::time::sleep(every).await;
    }
    n
}

/// A fan-out on a fresh server: `run` on its URL, then stop it.
async fn on_fresh<F, Fut>(cx: &crate::Ctx, flags: &[&str], run: F) -> anyhow::Result<Fanout>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Fanout>>,
{
    let (server, db) = cx.server(flags).await?;
    let out = run(server.url.clone()).await;
    server.stop().await;
    if let Some(db) = db {
        db.cleanup().await;
    }
    let out = out?;
    anyhow::ensure!(
        out.out_of_order == 0,
        "{} events out of order or repeated",
        out.out_of_order
    );
    Ok(out)
}

fn per_sec(f: &Fanout) -> f64 {
    f.deliveries as f64 / f.elapsed.as_secs_f64()
}

/// `herald-bench ws`: WebSocket fan-out and p99 next to SSE, idle memory
/// per socket next to SSE, and publish + fan-out with presence on
/// against off.
pub async fn scenario(cx: &mut crate::Ctx) -> anyhow::Result<()> {
    let smoke = cx.args.smoke;
    let subs = if smoke {
        vec![20]
    } else {
        cx.args.subscribers.clone()
    };
    let (aim, half_aim) = if smoke {
        (2_000.0, 1_000.0)
    } else {
        (cx.args.deliveries, cx.args.latency_deliveries)
    };
    let d = cx.secs();
    for s in subs {
        fanout_rows(cx, s, aim, half_aim, d).await?;
    }
    idle_rows(cx).await?;
    presence_rows(cx).await
}

/// WebSocket against SSE for `s` subscribers: deliveries/s at `aim`
/// offered, p99 at `half_aim`.
async fn fanout_rows(
    cx: &mut crate::Ctx,
    s: usize,
    aim: f64,
    half_aim: f64,
    d: Duration,
) -> anyhow::Result<()> {
    let (rate, half) = (aim / s as f64, half_aim / s as f64);
    let sse_full = on_fresh(
        cx,
        &[],
        |u| async move { sse::fanout(&u, s, rate, d).await },
    )
    .await?;
    let ws_full = on_fresh(cx, &[], |u| async move { fanout(&u, s, rate, d).await }).await?;
    let mut sse_half = on_fresh(
        cx,
        &[],
        |u| async move { sse::fanout(&u, s, half, d).await },
    )
    .await?;
    let mut ws_half = on_fresh(cx, &[], |u| async move { fanout(&u, s, half, d).await }).await?;
    let label = format!("ws fanout, {s} subscribers");
    let complete = |f: &Fanout| f.deliveries == f.published * s as u64;
    cx.rows.push(
        crate::Row::new(&label, cx.backend, "deliveries", per_sec(&ws_full), "/s")
            .baseline("SSE, same run", per_sec(&sse_full))
            .target("≥ 0.9 × SSE")
            .note(format!(
                "{} msgs at {rate:.0}/s; WebSocket {}, SSE {}",
                ws_full.published,
                if complete(&ws_full) {
                    "all delivered once, in order"
                } else {
                    "INCOMPLETE"
                },
                if complete(&sse_full) {
                    "complete"
                } else {
                    "INCOMPLETE"
                },
            )),
    );
    let (ws_p99, sse_p99) = (ws_half.latencies.ms(0.99), sse_half.latencies.ms(0.99));
    cx.rows.push(
        crate::Row::new(
            &label,
            cx.backend,
            &format!("latency p99 at {half_aim:.0} deliveries/s"),
            ws_p99,
            "ms",
        )
        .baseline("SSE, same run", sse_p99)
        .note(format!(
            "p50 WebSocket {:.2} ms, SSE {:.2} ms",
            ws_half.latencies.ms(0.5),
            sse_half.latencies.ms(0.5)
        )),
    );
    Ok(())
}

/// Idle memory per WebSocket against per SSE stream, each on a fresh
/// server (pings every 2 minutes: an idle client does not answer them).
async fn idle_rows(cx: &mut crate::Ctx) -> anyhow::Result<()> {
    let n = if cx.args.smoke {
        200
    } else {
        cx.args.idle_connections.min(10_000)
    };
    crate::raise_nofile();
    let flags = ["--ws-ping-interval", "120s"];
    let (server, db) = cx.server(&flags).await?;
    let pid = server
        .pid()
        .ok_or_else(|| anyhow::anyhow!("idle needs a server this harness started"))?;
    let (sse_per, _, _) = sse::idle(&server.url, pid, n).await?;
    server.stop().await;
    if let Some(db) = db {
        db.cleanup().await;
    }
    let (server, db) = cx.server(&flags).await?;
    let ws_per = idle(&server.url, server.pid().unwrap_or_default(), n).await?;
    server.stop().await;
    if let Some(db) = db {
        db.cleanup().await;
    }
    cx.rows.push(
        crate::Row::new(
            &format!("idle, {n} WebSockets"),
            cx.backend,
            "server memory per connection",
            ws_per / 1024.0,
            "KiB",
        )
        .baseline("SSE stream", sse_per / 1024.0)
        .note(
            "RSS growth over the connections, one subscription each; each kind on a fresh server",
        ),
    );
    Ok(())
}

/// Publish + fan-out with presence on (every stream asks for join and
/// leave events, and a stream of the topic opens and closes every 50 ms)
/// against off (the same streams without `?presence=true`, no churn).
async fn presence_rows(cx: &mut crate::Ctx) -> anyhow::Result<()> {
    let s = if cx.args.smoke { 20 } else { 1_000 };
    let rate = if cx.args.smoke {
        100.0
    } else {
        cx.args.deliveries / s as f64
    };
    let d = cx.secs();
    let mut off = on_fresh(cx, &[], |u| async move {
        sse::fanout_at(&u, "/topics/fan/events", s, rate, d).await
    })
    .await?;
    let mut on = on_fresh(cx, &[], |u| async move {
        let stop = tokio_util::sync::CancellationToken::new();
        let churn = tokio::spawn(churn(u.clone(), Duration::from_millis(50), stop.clone()));
        let out = sse::fanout_at(&u, "/topics/fan/events?presence=true", s, rate, d).await;
        stop.cancel();
        let _ = churn.await;
        out
    })
    .await?;
    cx.rows.push(
        crate::Row::new(&format!("presence, {s} subscribers"), cx.backend, "deliveries with presence on", per_sec(&on), "/s")
            .baseline("presence off", per_sec(&off))
            .target("≥ 0.95 × off")
            .note(format!(
                "on: ?presence=true on every stream and a join + leave every 100 ms; p99 on {:.2} ms, off {:.2} ms",
                on.latencies.ms(0.99),
                off.latencies.ms(0.99)
            )),
    );
    Ok(())
}
