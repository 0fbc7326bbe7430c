//! The `retention` scenario: publish throughput while the pruner works
//! through a large backlog (against the same server before pruning), disk
//! space before and after, and the cost of a JSON Schema on the publish
//! path (against a plain topic in the same run, and per validation).

use std::time::{Duration, Instant};

use herald::domain::{EventType, NewMessage, Payload, TopicName};
use herald::storage::{self, StoreOptions};

use crate::load::{self, Kind};
use crate::server::{BenchDb, Server};
use crate::stats::Row;

/// Appends `n` messages to `topic` straight through the storage layer.
async fn prefill(database_url: &str, topic: &str, n: u64) -> anyhow::Result<()> {
    let options = StoreOptions {
        timeout: Duration::from_secs(5),
        max_connections: 2,
        sqlite_full_sync: false,
        sqlite_max_page_count: None,
    };
    let store = storage::connect(database_url, &options).await?;
    let topic = TopicName::parse(topic)?;
    let mut done = 0;
    while done < n {
        let k = (n - done).min(1000);
        let batch = (0..k)
            .map(|i| NewMessage {
                topic: topic.clone(),
                event: EventType::message(),
                payload: Payload::Json(load::payload(done + i)),
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

/// Bytes of a SQLite database file and of its WAL, or `None` on Postgres.
fn sqlite_bytes(url: &str) -> Option<(u64, u64)> {
    let path = url.strip_prefix("sqlite://")?;
    let size = |p: String| std::fs::metadata(p).map_or(0, |m| m.len());
    Some((size(path.to_owned()), size(format!("{path}-wal"))))
}

async fn put(base: &str, topic: &str, config: serde_json::Value) -> anyhow::Result<()> {
    let r = reqwest::Client::new()
        .put(format!("{base}/topics/{topic}"))
        .json(&config)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "PUT {topic}: {}", r.status());
    Ok(())
}

async fn retained(base: &str, topic: &str) -> anyhow::Result<Option<i64>> {
    let t: serde_json::Value = reqwest::get(format!("{base}/topics/{topic}"))
        .await?
        .json()
        .await?;
    Ok(t["oldest_retained"].as_i64())
}

/// Publish while pruning a backlog of `backlog` messages down to 10,000.
pub async fn pruning(
    db: &BenchDb,
    backend: &'static str,
    backlog: u64,
    clients: usize,
    secs: Duration,
) -> anyhow::Result<Vec<Row>> {
    prefill(&db.url, "old", backlog).await?;
    let before_bytes = sqlite_bytes(&db.url);
    let server = Server::start(db, &["--prune-interval", "100ms"]).await?;
    let mut quiet =
        load::closed_loop(&server.url, Kind::Publish { topics: 1 }, clients, secs).await?;
    put(
        &server.url,
        "old",
        serde_json::json!({"retention": {"max_messages": 10_000}}),
    )
    .await?;
    let started = Instant::now();
    let mut busy =
        load::closed_loop(&server.url, Kind::Publish { topics: 1 }, clients, secs).await?;
    // Let the pruner finish, then give the reclaim a few passes.
    let keep_from = backlog as i64 - 10_000 + 1;
    while retained(&server.url, "old")
        .await?
        .is_some_and(|p| p < keep_from)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pruned_in = started.elapsed();
    // The pruner gives pages back a few thousand per pass: wait until the
    // file stops shrinking (at most 30 s).
    let mut after_bytes = sqlite_bytes(&db.url);
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = sqlite_bytes(&db.url);
        if now.map(|b| b.0) == after_bytes.map(|b| b.0) {
            break;
        }
        after_bytes = now;
    }
    server.stop().await;
    let mut rows = vec![
        Row::new(
            "publish while pruning",
            backend,
            "throughput",
            busy.per_second(),
            "msgs/s",
        )
        .baseline("same server, no pruning", quiet.per_second())
        .target("≥ 0.9 × baseline")
        .note(format!(
            "{backlog} messages pruned to 10,000 in {:.1} s; p99 {:.2} ms (baseline {:.2} ms)",
            pruned_in.as_secs_f64(),
            busy.latencies.ms(0.99),
            quiet.latencies.ms(0.99)
        )),
    ];
    if let (Some(b), Some(a)) = (before_bytes, after_bytes) {
        let mib = |n: u64| n as f64 / 1048576.0;
        rows.push(
            Row::new("disk after pruning", backend, "database file", mib(a.0), "MiB")
                .baseline("before", mib(b.0))
                .note(format!(
                    "SQLite incremental vacuum, 4,096 pages per pass; WAL {:.1} MiB before, {:.1} MiB after",
                    mib(b.1),
                    mib(a.1)
                )),
        );
    }
    Ok(rows)
}

/// A 10-property schema and a payload that satisfies it.
fn order_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["order", "customer", "items", "total", "priority"],
        "properties": {
            "order": {"type": "integer", "minimum": 0},
            "customer": {"type": "object", "required": ["id"], "properties": {
                "id": {"type": "string"}, "country": {"type": "string", "maxLength": 2}}},
            "items": {"type": "array", "items": {"type": "object", "required": ["sku", "qty"]}},
            "total": {"type": "number", "minimum": 0},
            "priority": {"enum": ["low", "normal", "high"]},
            "note": {"type": "string"},
            "currency": {"type": "string"},
            "coupon": {"type": "string"},
            "gift": {"type": "boolean"},
            "channel": {"type": "string"}
        }
    })
}

/// Publish to a topic with a schema against a plain one, same server.
pub async fn schema(
    server: &Server,
    backend: &'static str,
    clients: usize,
    secs: Duration,
) -> anyhow::Result<Vec<Row>> {
    let plain = load::closed_loop(&server.url, Kind::Publish { topics: 1 }, clients, secs).await?;
    put(
        &server.url,
        "bench.0",
        serde_json::json!({"schema": order_schema()}),
    )
    .await?;
    let checked =
        load::closed_loop(&server.url, Kind::Publish { topics: 1 }, clients, secs).await?;
    anyhow::ensure!(checked.messages > 0, "every schema publish was refused");
    let schema = herald::topics::Schema::compile(&order_schema()).map_err(anyhow::Error::msg)?;
    let value: serde_json::Value = serde_json::from_str(&load::payload(7))?;
    let n = 200_000u32;
    let t = Instant::now();
    for _ in 0..n {
        assert!(std::hint::black_box(schema.check(&value, None)).is_empty());
    }
    let ns = t.elapsed().as_nanos() as f64 / f64::from(n);
    Ok(vec![
        Row::new(
            "publish to a schema topic",
            backend,
            "throughput",
            checked.per_second(),
            "msgs/s",
        )
        .baseline("plain topic", plain.per_second())
        .target("≥ 0.9 × plain"),
        Row::new(
            "schema validation",
            backend,
            "256-byte payload, 10 properties",
            ns,
            "ns",
        )
        .note("jsonschema, compiled once; in-process, one core"),
    ])
}
