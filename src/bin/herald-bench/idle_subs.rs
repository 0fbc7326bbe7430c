//! `subscriptions`: what subscriptions that have nothing to do cost.
//! 10,000 pull subscriptions whose filter matches nothing, on the topic
//! that is published to: herald's CPU while nothing is published, and
//! publish throughput, each against the same server without them.

use std::time::Duration;

use crate::Ctx;
use crate::load::{self, Kind};
use crate::server::cpu_seconds;
use crate::stats::Row;

pub async fn scenario(cx: &mut Ctx) -> anyhow::Result<()> {
    let n = if cx.args.smoke { 200 } else { 10_000 };
    let (d, c, b) = (cx.secs(), cx.args.clients, cx.backend);
    // The limit is an env variable: a build from before it took no flag.
    // SAFETY: set before any thread of ours reads the environment.
    unsafe { std::env::set_var("HERALD_MAX_SUBSCRIPTIONS_PER_OWNER", (n + 1).to_string()) };
    let (server, db) = cx.server(&[]).await?;
    let Some(pid) = server.pid() else {
        anyhow::bail!("subscriptions needs a server this harness started (no --url)");
    };
    let idle_cpu = |secs: Duration| async move {
        let before = cpu_seconds(Some(pid));
        tokio::time::sleep(secs).await;
        (cpu_seconds(Some(pid)) - before) / secs.as_secs_f64() * 100.0
    };
    let cpu_without = idle_cpu(d).await;
    let without = load::closed_loop(&server.url, Kind::Publish { topics: 1 }, c, d).await?;
    let http = reqwest::Client::new();
    for _ in 0..n {
        let r = http
            .post(format!("{}/subscriptions", server.url))
            .json(&serde_json::json!({
                "topic": "bench.0", "mode": "pull", "filter": "data.order < 0"
            }))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 201, "{}: {}", r.status(), r.text().await?);
    }
    // Settle: the first passes after creating them read every one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_with = idle_cpu(d).await;
    let with = load::closed_loop(&server.url, Kind::Publish { topics: 1 }, c, d).await?;
    let note = format!(
        "{n} pull subscriptions on the published topic, a filter that matches nothing; {c} publishing clients"
    );
    cx.rows.push(
        Row::new(
            &format!("idle, {n} subscriptions"),
            b,
            "server CPU, nothing published",
            cpu_with,
            "%",
        )
        .baseline("without them", cpu_without)
        .target("≤ 5 % of a core")
        .note(note.clone()),
    );
    cx.rows.push(
        Row::new(
            &format!("publish beside {n} subscriptions"),
            b,
            "throughput",
            with.per_second(),
            "msgs/s",
        )
        .baseline("without them", without.per_second())
        .target("≥ 0.8 × without")
        .note(note),
    );
    server.stop().await;
    if let Some(db) = db {
        db.cleanup().await;
    }
    Ok(())
}
