//! `queue`: pull subscriptions as a work queue. A backlog prefilled
//! through the storage layer is drained by 8 consumers that pull 100 at a
//! time and ack each batch; acked messages/s sit beside the storage floor
//! (batched appends) of the same run. Then the latency from a publish to
//! an idle consumer's long poll.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use herald::domain::{EventType, NewMessage, Payload, TopicName};
use herald::storage::{self, StoreOptions};
use serde_json::{Value, json};

use crate::Ctx;
use crate::load;
use crate::server::{BenchDb, Server, cpu_seconds};
use crate::stats::{Latencies, Row};

const CONSUMERS: usize = 8;
const PULL: usize = 100;

/// Appends `n` messages to `topic` straight through the storage layer.
pub(crate) async fn prefill(db: &BenchDb, topic: &str, n: u64) -> anyhow::Result<()> {
    let options = StoreOptions {
        timeout: Duration::from_secs(5),
        max_connections: 2,
        sqlite_full_sync: false,
        sqlite_max_page_count: None,
    };
    let store = storage::connect(&db.url, &options).await?;
    let topic = TopicName::parse(topic)?;
    let mut done = 0;
    while done < n {
        let k = (n - done).min(1000);
        let batch = (done..done + k)
            .map(|i| NewMessage {
                topic: topic.clone(),
                event: EventType::message(),
                payload: Payload::Json(load::payload(i)),
                content_type: "application/json".into(),
                ttl: None,
                priority: Default::default(),
                key: None,
            })
            .collect();
        store.append(batch, Duration::from_secs(30)).await?;
        done += k;
    }
    Ok(())
}

async fn subscribe(http: &reqwest::Client, base: &str, topic: &str) -> anyhow::Result<i64> {
    let body = json!({"topic": topic, "mode": "pull", "start": "earliest", "ack_deadline": "60s"});
    let r = http
        .post(format!("{base}/subscriptions"))
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 201, "create: {}", r.text().await?);
    Ok(r.json::<Value>().await?["id"].as_i64().unwrap_or_default())
}

/// What the harness reads of a pull's answer: typed, so the envelopes are
/// skipped over rather than built into JSON trees (the client shares the
/// two cores with the server).
#[derive(serde::Deserialize)]
struct Answer {
    messages: Vec<Item>,
    acks: Option<Acks>,
}

#[derive(serde::Deserialize)]
struct Item {
    ack_id: String,
    attempt: i64,
    message: Id,
}

#[derive(serde::Deserialize)]
struct Id {
    id: i64,
}

#[derive(serde::Deserialize)]
struct Acks {
    acked: usize,
}

/// One pull, acking `acks` (the previous batch) in the same request: the
/// ack ids, the message ids, and whether any was a redelivery.
async fn pull(
    http: &reqwest::Client,
    url: &str,
    max: usize,
    wait: &str,
    acks: &[String],
) -> anyhow::Result<(Vec<String>, Vec<i64>, bool)> {
    let mut request = json!({"max_messages": max, "wait": wait});
    if !acks.is_empty() {
        request["ack_ids"] = json!(acks);
    }
    let r = http
        .post(format!("{url}/pull"))
        .json(&request)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "pull: {}", r.text().await?);
    let body: Answer = serde_json::from_slice(&r.bytes().await?)?;
    let acked = body.acks.map(|a| a.acked);
    anyhow::ensure!(
        acks.is_empty() || acked == Some(acks.len()),
        "acked {acked:?} of {}",
        acks.len()
    );
    let again = body.messages.iter().any(|m| m.attempt != 1);
    let ids = body.messages.iter().map(|m| m.message.id).collect();
    let acks = body.messages.into_iter().map(|m| m.ack_id).collect();
    Ok((acks, ids, again))
}

/// 8 consumers drain `n` messages; returns acked/s, the redeliveries
/// seen, and the server's and the client's CPU meanwhile (cores).
async fn drain(server: &Server, sub: i64, n: u64) -> anyhow::Result<(f64, usize, f64, f64)> {
    let url = format!("{}/subscriptions/{sub}", server.url);
    let (cpu_s, cpu_c) = (cpu_seconds(server.pid()), cpu_seconds(None));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONSUMERS {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut ids, mut again) = (Vec::new(), 0usize);
            // Each pull hands in the previous batch's acks.
            let mut done = Vec::new();
            loop {
                let (acks, got, redelivered) = pull(&http, &url, PULL, "0s", &done).await?;
                if acks.is_empty() {
                    return anyhow::Ok((ids, again));
                }
                again += usize::from(redelivered);
                done = acks;
                ids.extend(got);
            }
        }));
    }
    let (mut all, mut again) = (HashSet::new(), 0);
    for t in tasks {
        let (ids, a) = t.await??;
        again += a;
        for id in ids {
            anyhow::ensure!(all.insert(id), "message {id} acked twice");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let server_cpu = (cpu_seconds(server.pid()) - cpu_s) / elapsed;
    let client_cpu = (cpu_seconds(None) - cpu_c) / elapsed;
    anyhow::ensure!(all.len() as u64 == n, "acked {} of {n}", all.len());
    Ok((n as f64 / elapsed, again, server_cpu, client_cpu))
}

/// An idle consumer long-polls; each publish's time to reach it.
async fn latency(base: &str, sub: i64, samples: usize) -> anyhow::Result<Latencies> {
    let url = format!("{base}/subscriptions/{sub}");
    let http = reqwest::Client::new();
    let mut lat = Latencies::default();
    for i in 0..samples {
        let waiting = {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move { pull(&http, &url, 1, "10s", &[]).await })
        };
        // Let the pull reach its wait before publishing.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let t0 = Instant::now();
        let r = http
            .post(format!("{base}/topics/live"))
            .body(format!("{i}"))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 201, "publish");
        let (acks, _, _) = waiting.await??;
        lat.extend([t0.elapsed()]);
        anyhow::ensure!(
            acks.len() == 1,
            "the long poll returned {} messages",
            acks.len()
        );
        http.post(format!("{url}/ack"))
            .json(&json!({"ack_ids": acks}))
            .send()
            .await?;
    }
    Ok(lat)
}

pub async fn queue(cx: &mut Ctx) -> anyhow::Result<()> {
    anyhow::ensure!(
        cx.args.url.is_none(),
        "queue starts its own server; drop --url"
    );
    let n: u64 = if cx.args.smoke { 2_000 } else { 1_000_000 };
    let db = BenchDb::fresh(cx.args.database_url.as_deref()).await?;
    prefill(&db, "jobs", n).await?;
    let floor = load::storage_floor(&db.url, 1000, cx.secs()).await?;
    let server = Server::start(&db, &[]).await?;
    let http = reqwest::Client::new();
    let sub = subscribe(&http, &server.url, "jobs").await?;
    let (rate, again, server_cpu, client_cpu) = drain(&server, sub, n).await?;
    let live = subscribe(&http, &server.url, "live").await?;
    let mut lat = latency(&server.url, live, if cx.args.smoke { 10 } else { 200 }).await?;
    server.stop().await;
    db.cleanup().await;
    let (b, target) = match cx.backend {
        "postgres" => ("postgres", "≥ 10,000 acked msgs/s"),
        _ => ("sqlite", "≥ 40,000 acked msgs/s"),
    };
    cx.rows.push(
        Row::new("queue: drain a backlog", b, "acked", rate, "msgs/s")
            .baseline("storage floor (1,000/txn)", floor)
            .target(target)
            .note(format!(
                "{n} messages, {CONSUMERS} consumers pulling {PULL} and acking each batch; {again} pulls held a redelivery; server CPU {server_cpu:.2} cores, client {client_cpu:.2} cores"
            )),
    );
    cx.rows.push(
        Row::new(
            "queue: publish to an idle long poll",
            b,
            "latency p50",
            lat.ms(0.5),
            "ms",
        )
        .note(format!("p99 {:.2} ms", lat.ms(0.99)))
        .target("p99 ≤ 20 ms (SQLite)"),
    );
    Ok(())
}
