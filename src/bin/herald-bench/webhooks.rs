//! `webhooks`: push delivery to a local receiver in this process.
//! 1. Throughput: a backlog prefilled through the storage layer, drained
//!    by one subscription, with the attempt log on against off.
//! 2. Isolation: 1,000 subscriptions of which 100 point at a failing
//!    endpoint; the healthy ones' publish-to-delivery latency (p99) beside
//!    the same healthy subscriptions with no failing neighbours.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::Ctx;
use crate::queue::prefill;
use crate::server::{BenchDb, Server};
use crate::stats::{Latencies, Row};

/// What the receiver saw: distinct message ids per path, and latencies.
#[derive(Default)]
struct Seen {
    ids: HashSet<(String, i64)>,
    latencies: Latencies,
    /// Arrival times (unix µs) of every delivery.
    arrivals: Vec<i64>,
}

type Shared = Arc<Mutex<Seen>>;

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

async fn receive(
    State(seen): State<Shared>,
    axum::extract::Path(path): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    if path.starts_with("fail") {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let Ok(envelope) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut seen = seen.lock().expect("poisoned");
    if let Some(sent) = envelope["data"]["sent_us"].as_i64() {
        let lag = (now_us() - sent).max(0) as u64;
        seen.latencies.extend([Duration::from_micros(lag)]);
    }
    let id = envelope["id"].as_i64().unwrap_or(-1);
    seen.arrivals.push(now_us());
    seen.ids.insert((path, id));
    StatusCode::NO_CONTENT
}

/// A receiver on loopback: `/{path}` answers 204, `/fail…` 500.
async fn receiver() -> anyhow::Result<(String, Shared)> {
    let seen = Shared::default();
    let app = axum::Router::new()
        .route("/{path}", axum::routing::post(receive))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, seen))
}

async fn subscribe(http: &reqwest::Client, base: &str, body: Value) -> anyhow::Result<()> {
    let r = http
        .post(format!("{base}/subscriptions"))
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 201, "create: {}", r.text().await?);
    Ok(())
}

async fn wait_for(seen: &Shared, n: usize, within: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while seen.lock().expect("poisoned").ids.len() < n {
        anyhow::ensure!(started.elapsed() < within, "deliveries did not arrive");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(started.elapsed())
}

/// Deliveries/s draining `n` prefilled messages through one subscription.
async fn drain(cx: &Ctx, n: u64, attempt_log: &str) -> anyhow::Result<f64> {
    let db = BenchDb::fresh(cx.args.database_url.as_deref()).await?;
    prefill(&db, "hooks", n).await?;
    let flags = [
        "--webhook-allow-private",
        "--attempt-log-max-age",
        attempt_log,
    ];
    let server = Server::start(&db, &flags).await?;
    let (url, seen) = receiver().await?;
    let http = reqwest::Client::new();
    let body = json!({"topic": "hooks", "url": format!("{url}/ok"), "start": "earliest"});
    let started = Instant::now();
    subscribe(&http, &server.url, body).await?;
    wait_for(&seen, n as usize, Duration::from_secs(600)).await?;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    server.stop().await;
    db.cleanup().await;
    Ok(rate)
}

/// p99 publish-to-delivery latency (ms) of `healthy` subscriptions while
/// `failing` others fail every attempt.
async fn isolation(
    cx: &Ctx,
    healthy: usize,
    failing: usize,
) -> anyhow::Result<(f64, usize, Duration)> {
    let db = BenchDb::fresh(cx.args.database_url.as_deref()).await?;
    let server = Server::start(&db, &["--webhook-allow-private"]).await?;
    let (url, seen) = receiver().await?;
    let http = reqwest::Client::new();
    for i in 0..healthy + failing {
        let path = if i < failing { "fail" } else { "ok" };
        let body = json!({"topic": "lat", "url": format!("{url}/{path}{i}"),
                          "min_backoff_ms": 100, "max_backoff_ms": 1000, "max_attempts": 100});
        subscribe(&http, &server.url, body).await?;
    }
    // One message per `every`: within what 1,000 subscriptions can take
    // on one SQLite writer (each delivery is a transaction of its own).
    let (messages, every) = match cx.args.smoke {
        true => (3, Duration::from_millis(250)),
        false => (15, Duration::from_secs(2)),
    };
    for _ in 0..messages {
        let r = http
            .post(format!("{}/topics/lat", server.url))
            .json(&json!({"sent_us": now_us()}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 201, "publish");
        tokio::time::sleep(every).await;
    }
    wait_for(&seen, healthy * messages, Duration::from_secs(600)).await?;
    let p99 = seen.lock().expect("poisoned").latencies.ms(0.99);
    server.stop().await;
    db.cleanup().await;
    Ok((p99, healthy * messages, every))
}

/// Deliveries per calendar second, of the seconds wholly inside the run
/// (the first and last are partial): their mean and their maximum.
fn per_second(arrivals: &[i64]) -> (f64, usize) {
    let mut counts = std::collections::BTreeMap::<i64, usize>::new();
    for t in arrivals {
        *counts.entry(t.div_euclid(1_000_000)).or_default() += 1;
    }
    let full: Vec<usize> = counts.values().copied().collect();
    let inner = full.get(1..full.len().saturating_sub(1)).unwrap_or(&[]);
    let mean = inner.iter().sum::<usize>() as f64 / inner.len().max(1) as f64;
    (mean, inner.iter().copied().max().unwrap_or(0))
}

/// Deliveries per second of a subscription limited to `limit`/s, draining
/// a backlog; on Postgres two nodes share the work and the limit.
async fn rate_limited(cx: &Ctx, limit: u32, n: u64) -> anyhow::Result<(f64, usize, usize)> {
    let db = BenchDb::fresh(cx.args.database_url.as_deref()).await?;
    prefill(&db, "limited", n).await?;
    let flags = ["--webhook-allow-private"];
    let mut servers = vec![Server::start(&db, &flags).await?];
    if cx.backend == "postgres" {
        servers.push(Server::start(&db, &flags).await?);
    }
    let (url, seen) = receiver().await?;
    let http = reqwest::Client::new();
    let body = json!({"topic": "limited", "url": format!("{url}/limited"),
                      "start": "earliest", "rate_limit": limit});
    subscribe(&http, &servers[0].url, body).await?;
    wait_for(&seen, n as usize, Duration::from_secs(600)).await?;
    let (rate, max) = per_second(&seen.lock().expect("poisoned").arrivals);
    let nodes = servers.len();
    for s in servers {
        s.stop().await;
    }
    db.cleanup().await;
    Ok((rate, max, nodes))
}

pub async fn webhooks(cx: &mut Ctx) -> anyhow::Result<()> {
    anyhow::ensure!(
        cx.args.url.is_none(),
        "webhooks starts its own server; drop --url"
    );
    let b = cx.backend;
    let n: u64 = if cx.args.smoke { 500 } else { 20_000 };
    let off = drain(cx, n, "0").await?;
    let on = drain(cx, n, "7d").await?;
    cx.rows.push(
        Row::new("webhooks: drain a backlog", b, "attempt log on", on, "deliveries/s")
            .baseline("attempt log off", off)
            .target("≥ 0.9 × off")
            .note(format!(
                "{n} messages, one subscription, a receiver in process answering 204; 16 attempts in flight"
            )),
    );
    let (limit, n) = if cx.args.smoke {
        (50, 200)
    } else {
        (100, 1_500)
    };
    let (rate, max, nodes) = rate_limited(cx, limit, n).await?;
    cx.rows.push(
        Row::new("webhooks: rate_limit", b, "delivered per second", rate, "deliveries/s")
            .baseline("rate_limit", f64::from(limit))
            .target("within 10 % of the limit")
            .note(format!(
                "{n} messages prefilled, one subscription, {nodes} node(s) sharing its one-second token windows; mean of the whole seconds of the run, the busiest had {max}"
            )),
    );
    let (healthy, failing) = if cx.args.smoke { (9, 1) } else { (900, 100) };
    let (alone, _, _) = isolation(cx, healthy, 0).await?;
    let (beside, deliveries, every) = isolation(cx, healthy, failing).await?;
    cx.rows.push(
        Row::new("webhooks: failing neighbours", b, "healthy p99", beside, "ms")
            .baseline("no failing ones", alone)
            .target("≤ 2 × baseline")
            .note(format!(
                "{healthy} healthy and {failing} failing (500) subscriptions on one topic, one message every {every:?}; {deliveries} healthy deliveries"
            )),
    );
    Ok(())
}
