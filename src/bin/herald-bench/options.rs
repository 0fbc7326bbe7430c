//! `options`: publish options. Publishes with an Idempotency-Key against
//! without, in alternating rounds of one run; 100,000 messages scheduled
//! for one second (how late the first and the last are appended, and in
//! what order); and a 64-client flood against a database made slow (a
//! held write lock): herald's memory and answer times while it refuses.

use crate::stats::median;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Ctx;
use crate::load::{self, Kind};
use crate::server::{BenchDb, Server, rss_bytes};
use crate::stats::{Latencies, Row};

pub async fn options(cx: &mut Ctx) -> anyhow::Result<()> {
    idempotency(cx).await?;
    replays(cx).await?;
    if cx.args.url.is_none() {
        scheduled(cx).await?;
        overload(cx).await?;
    }
    Ok(())
}

async fn idempotency(cx: &mut Ctx) -> anyhow::Result<()> {
    let rounds = if cx.args.smoke { 1 } else { 3 };
    let (d, c, b) = (cx.secs(), cx.args.clients, cx.backend);
    let (mut plain, mut keyed) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        // Each on a fresh server, so each run's acks are all it stores.
        for kind in [Kind::Publish { topics: 1 }, Kind::KeyedPublish] {
            let (server, db) = cx.server(&[]).await?;
            let mut run = load::closed_loop(&server.url, kind, c, d).await?;
            load::verify_publishes(&server.url, &mut run.ids).await?;
            match kind {
                Kind::KeyedPublish => keyed.push(run.per_second()),
                _ => plain.push(run.per_second()),
            }
            server.stop().await;
            if let Some(db) = db {
                db.cleanup().await;
            }
        }
    }
    let round = |v: &[f64]| v.iter().map(|x| x.round()).collect::<Vec<_>>();
    let note = format!(
        "{c} clients, 1 topic, a new key per request; {rounds} rounds: with {:?}, without {:?}",
        round(&keyed),
        round(&plain)
    );
    cx.rows.push(
        Row::new(
            "publish with Idempotency-Key",
            b,
            "throughput",
            median(keyed),
            "msgs/s",
        )
        .baseline("without a key", median(plain))
        .target("≥ 0.85 × without")
        .note(note),
    );
    Ok(())
}

/// Fresh publishes alone, then beside clients that re-send a recorded
/// key as fast as they are answered (each a replay), in alternating rounds.
pub async fn replays(cx: &mut Ctx) -> anyhow::Result<()> {
    let rounds = if cx.args.smoke { 1 } else { 3 };
    let (d, c, b) = (cx.secs(), cx.args.clients, cx.backend);
    let replayers = (c / 4).max(1);
    let (mut alone, mut beside) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for with_replays in [false, true] {
            let (server, db) = cx.server(&[]).await?;
            let fresh = load::closed_loop(&server.url, Kind::Publish { topics: 1 }, c, d);
            let mut run = if with_replays {
                let replay = load::closed_loop(&server.url, Kind::Replay, replayers, d);
                let (fresh, replay) = tokio::join!(fresh, replay);
                let replay = replay?;
                // Each client's key is its own (scoped to its address):
                // one message stored per replaying client, no more.
                let mut ids = replay.ids.clone();
                ids.sort_unstable();
                ids.dedup();
                anyhow::ensure!(ids.len() <= replayers, "a replay stored a message");
                fresh?
            } else {
                fresh.await?
            };
            load::verify_publishes(&server.url, &mut run.ids).await?;
            let v = if with_replays {
                &mut beside
            } else {
                &mut alone
            };
            v.push(run.per_second());
            server.stop().await;
            if let Some(db) = db {
                db.cleanup().await;
            }
        }
    }
    let round = |v: &[f64]| v.iter().map(|x| x.round()).collect::<Vec<_>>();
    let note = format!(
        "{c} clients publish; beside them {replayers} clients re-send one recorded key; {rounds} rounds: beside {:?}, alone {:?}",
        round(&beside),
        round(&alone)
    );
    cx.rows.push(
        Row::new(
            "publish beside replays",
            b,
            "throughput",
            median(beside),
            "msgs/s",
        )
        .baseline("alone", median(alone))
        .target("≥ 0.7 × alone")
        .note(note),
    );
    Ok(())
}

/// Schedules `n` messages (sequential batches of 1000, payload = index)
/// for one moment, then reads them back: commit time minus due time for
/// the first and the last, and whether the log holds them in order.
async fn scheduled(cx: &mut Ctx) -> anyhow::Result<()> {
    let n: u64 = if cx.args.smoke { 2_000 } else { 100_000 };
    let lead = Duration::from_secs(if cx.args.smoke { 3 } else { 20 });
    let (server, db) = cx.server(&[]).await?;
    let http = reqwest::Client::new();
    let due = chrono::Utc::now() + lead;
    let at = due.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let started = Instant::now();
    for first in (0..n).step_by(1000) {
        let items: Vec<String> = (first..(first + 1000).min(n))
            .map(|i| i.to_string())
            .collect();
        let r = http
            .post(format!("{}/topics/sched/batch?at={at}", server.url))
            .header("content-type", "application/json")
            .body(format!("[{}]", items.join(",")))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 202, "schedule: {}", r.text().await?);
    }
    let scheduling = started.elapsed();
    anyhow::ensure!(
        scheduling < lead,
        "scheduling took {scheduling:?}, past the due time"
    );
    let times = read_back(&http, &server.url, n).await?;
    let due_us = due.timestamp_micros();
    let late = |t: i64| (t - due_us) as f64 / 1000.0;
    let (first, last) = (late(times[0]), late(times[times.len() - 1]));
    let b = cx.backend;
    let note = format!(
        "{n} messages due at one instant, scheduled in {:.1} s; appended in order of scheduling; first {first:.0} ms after the due time",
        scheduling.as_secs_f64()
    );
    cx.rows.push(
        Row::new(
            &format!("{n} scheduled for one second"),
            b,
            "last appended",
            last,
            "ms late",
        )
        .target("≤ 2000 ms")
        .note(note),
    );
    cx.rows.push(
        Row::new("scheduled publish", b, "first appended", first, "ms late")
            .target("≤ 1000 ms")
            .note("precision: commit time of the first due message minus its due time"),
    );
    server.stop().await;
    if let Some(db) = db {
        db.cleanup().await;
    }
    Ok(())
}

/// Reads `n` messages of `sched` from the history, waiting for them;
/// checks their payloads are 0..n in log order; returns their commit
/// times (µs).
async fn read_back(http: &reqwest::Client, base: &str, n: u64) -> anyhow::Result<Vec<i64>> {
    let mut times = Vec::with_capacity(n as usize);
    let (mut after, deadline) = (0i64, Instant::now() + Duration::from_secs(120));
    while (times.len() as u64) < n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {n} appended",
            times.len()
        );
        let url = format!("{base}/topics/sched/messages?after={after}&limit=1000");
        let page: Value = http.get(url).send().await?.json().await?;
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        if messages.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        for m in &messages {
            let expected = times.len() as u64;
            anyhow::ensure!(
                m["data"].as_u64() == Some(expected),
                "out of order at {expected}: {m}"
            );
            let t = chrono::DateTime::parse_from_rfc3339(m["time"].as_str().unwrap_or_default())?;
            times.push(t.timestamp_micros());
        }
        after = page["next"].as_i64().unwrap_or(after);
    }
    Ok(times)
}

/// 64 clients publish as fast as they are answered while another client
/// holds the database's write lock; herald's RSS is sampled throughout.
async fn overload(cx: &mut Ctx) -> anyhow::Result<()> {
    let d = cx.secs() * 2;
    let db = BenchDb::fresh(cx.args.database_url.as_deref()).await?;
    let flags = ["--db-timeout-ms", "1000", "--max-pending-publishes", "16"];
    let server = Server::start(&db, &flags).await?;
    let pid = server.pid().unwrap_or_default();
    let http = reqwest::Client::new();
    http.post(format!("{}/topics/flood", server.url))
        .body("warm")
        .send()
        .await?;
    let lock = hold_write_lock(&db.url).await?;
    let before = rss_bytes(pid).unwrap_or_default();
    let deadline = Instant::now() + d;
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (http, url, counts) = (http.clone(), server.url.clone(), counts.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let r = http
                    .post(format!("{url}/topics/flood"))
                    .body(load::payload(i))
                    .send()
                    .await?;
                lat.push(t0.elapsed());
                let slot = match (r.status().as_u16(), r.text().await?.contains("overloaded")) {
                    (503, true) => 0,
                    (503, false) => 1,
                    _ => 2,
                };
                counts[slot].fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(lat)
        }));
    }
    let mut peak = before;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        peak = peak.max(rss_bytes(pid).unwrap_or_default());
    }
    let mut latencies = Latencies::default();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let after = rss_bytes(pid).unwrap_or_default();
    drop(lock);
    let mib = |b: u64| b as f64 / 1024.0 / 1024.0;
    let [over, slow, other] = [0, 1, 2].map(|k| counts[k].load(Ordering::Relaxed));
    cx.rows.push(
        Row::new("64-client flood, database locked", cx.backend, "peak RSS", mib(peak), "MiB")
            .baseline("RSS before the flood", mib(before))
            .target("flat; every answer ≤ --db-timeout-ms + 0.25 s")
            .note(format!(
                "{:.0} s, --db-timeout-ms 1000, --max-pending-publishes 16; {over} refused at once (overloaded), {slow} after the timeout, {other} other; answers p50 {:.1} ms, p99 {:.0} ms, max {:.0} ms; RSS at the end {:.1} MiB",
                d.as_secs_f64(),
                latencies.ms(0.5),
                latencies.ms(0.99),
                latencies.ms(1.0),
                mib(after)
            )),
    );
    server.stop().await;
    db.cleanup().await;
    Ok(())
}

/// Another client's open transaction holding what every publish needs:
/// SQLite's write lock, or the Postgres log head's row lock. Released
/// when dropped (the connection closes and the transaction rolls back).
enum WriteLock {
    Sqlite(#[allow(dead_code)] sqlx::SqliteConnection),
    Postgres(#[allow(dead_code)] sqlx::PgConnection),
}

async fn hold_write_lock(url: &str) -> anyhow::Result<WriteLock> {
    use sqlx::Connection;
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await?;
        sqlx::query("BEGIN").execute(&mut c).await?;
        sqlx::query("SELECT head FROM log_head WHERE id = 1 FOR UPDATE")
            .execute(&mut c)
            .await?;
        Ok(WriteLock::Postgres(c))
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut c).await?;
        Ok(WriteLock::Sqlite(c))
    }
}
