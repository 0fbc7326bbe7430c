//! Request/response load: single publishes, batch publishes, the
//! `/healthz` floor, and the storage floor (batched appends straight
//! through herald's storage layer, same durability settings).

use std::sync::Arc;
use std::time::{Duration, Instant};

use herald::domain::{EventType, NewMessage, Payload, TopicName};
use herald::storage::{self, StoreOptions};

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
    Publish { topics: u64 },
    Batch { size: usize },
}

/// `clients` keep-alive clients, each sending its next request as soon as
/// the last one is answered, for `duration`.
pub async fn closed_loop(
    base: &str,
    kind: Kind,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let base: Arc<str> = Arc::from(base);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let (http, base) = (http.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut ids = Vec::new();
            let mut messages = 0u64;
            let mut i = c as u64;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let req = match kind {
                    Kind::Healthz => http.get(format!("{base}/healthz")),
                    Kind::Publish { topics } => http
                        .post(format!("{base}/topics/bench.{}", i % topics))
                        .header("content-type", "application/json")
                        .body(payload(i)),
                    Kind::Batch { size } => {
                        let items: Vec<String> =
                            (0..size as u64).map(|k| payload(i * 1000 + k)).collect();
                        http.post(format!("{base}/topics/bench.batch/batch"))
                            .header("content-type", "application/json")
                            .body(format!("[{}]", items.join(",")))
                    }
                };
                let r = req.send().await?;
                let status = r.status();
                let body = r.bytes().await?;
                lat.push(t0.elapsed());
                anyhow::ensure!(
                    status.is_success(),
                    "{status}: {}",
                    String::from_utf8_lossy(&body)
                );
                match kind {
                    Kind::Healthz => messages += 1,
                    Kind::Publish { .. } => {
                        let ack: serde_json::Value = serde_json::from_slice(&body)?;
                        ids.push(ack["id"].as_i64().unwrap_or_default());
                        messages += 1;
                    }
                    Kind::Batch { .. } => {
                        let ack: serde_json::Value = serde_json::from_slice(&body)?;
                        for a in ack["messages"].as_array().into_iter().flatten() {
                            ids.push(a["id"].as_i64().unwrap_or_default());
                            messages += 1;
                        }
                    }
                }
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
            })
            .collect();
        n += store.append(messages).await?.len() as u64;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Checks that every acknowledged id is unique and that the server holds
/// exactly as many messages as were acknowledged.
pub async fn verify_publishes(base: &str, ids: &mut Vec<i64>) -> anyhow::Result<()> {
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    anyhow::ensure!(
        ids.len() == n,
        "{} duplicate ids acknowledged",
        n - ids.len()
    );
    let topics: serde_json::Value = reqwest::get(format!("{base}/topics")).await?.json().await?;
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
