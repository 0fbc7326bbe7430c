//! The SSE scenarios: `fanout` (deliveries per second to many subscribers,
//! and their latency at half that rate), `catchup` (a replay of a prefilled
//! backlog) and `idle` (memory per idle connection, over HTTP/1.1 and
//! HTTP/2).

use std::time::{Duration, Instant};

use crate::server::cpu_seconds;
use crate::{Ctx, Row, load, sse, tls};

pub async fn fanout(cx: &mut Ctx) -> anyhow::Result<()> {
    let subs = if cx.args.smoke {
        vec![20]
    } else {
        cx.args.subscribers.clone()
    };
    let (aim, latency_aim) = if cx.args.smoke {
        (2_000.0, 1_000.0)
    } else {
        (cx.args.deliveries, cx.args.latency_deliveries)
    };
    for s in subs {
        let (server, db) = cx.server(&[]).await?;
        let rate = aim / s as f64;
        let (cpu_s, cpu_c, t) = (cpu_seconds(server.pid()), cpu_seconds(None), Instant::now());
        let full = sse::fanout(&server.url, s, rate, cx.secs()).await?;
        let cores = format!(
            "server CPU {:.2} cores, client {:.2} cores",
            (cpu_seconds(server.pid()) - cpu_s) / t.elapsed().as_secs_f64(),
            (cpu_seconds(None) - cpu_c) / t.elapsed().as_secs_f64()
        );
        anyhow::ensure!(
            full.out_of_order == 0,
            "{} events out of order or repeated",
            full.out_of_order
        );
        let complete = full.deliveries == full.published * s as u64;
        server.stop().await;
        if let Some(db) = db {
            db.cleanup().await;
        }

        // Latency at half the rate, on a fresh server.
        let (server, db) = cx.server(&[]).await?;
        let half_rate = latency_aim / s as f64;
        let mut half = sse::fanout(&server.url, s, half_rate, cx.secs()).await?;
        server.stop().await;
        if let Some(db) = db {
            db.cleanup().await;
        }
        let b = cx.backend;
        let label = format!("fanout, {s} subscribers");
        let mut row = Row::new(
            &label,
            b,
            "deliveries",
            full.deliveries as f64 / full.elapsed.as_secs_f64(),
            "/s",
        )
        .target(if s >= 10_000 { "≥ 500,000/s" } else { "" })
        .note(format!(
            "{} msgs at {rate:.0}/s, {}; {cores}",
            full.published,
            if complete {
                "all delivered once, in order"
            } else {
                "INCOMPLETE"
            }
        ));
        if let Some(peer) = &cx.args.peer_url {
            let p = sse::fanout(peer, s, rate, cx.secs()).await?;
            row = row.baseline(
                "nchan (memory only)",
                p.deliveries as f64 / p.elapsed.as_secs_f64(),
            );
        }
        cx.rows.push(row);
        let (p50, p99, p999) = (
            half.latencies.ms(0.5),
            half.latencies.ms(0.99),
            half.latencies.ms(0.999),
        );
        cx.rows.push(
            Row::new(
                &label,
                b,
                &format!("latency p50 / p99 / p999 at {latency_aim:.0} deliveries/s"),
                p99,
                "ms (p99)",
            )
            .target("p99 ≤ 50 ms")
            .note(format!(
                "p50 {p50:.2} ms, p999 {p999:.2} ms; {} msgs at {half_rate:.1}/s",
                half.published
            )),
        );
        cx.chart.push((
            format!("{s} subscribers"),
            vec![("p50", p50), ("p99", p99), ("p999", p999)],
        ));
    }
    Ok(())
}

pub async fn catchup(cx: &mut Ctx) -> anyhow::Result<()> {
    let n = if cx.args.smoke {
        2_000
    } else {
        cx.args.catchup_messages
    };
    let (server, db) = cx.server(&[]).await?;
    // Prefill through batch publish: 1,000 per request, 4 in flight.
    let http = reqwest::Client::new();
    let body: String = format!(
        "[{}]",
        (0..1000).map(load::payload).collect::<Vec<_>>().join(",")
    );
    let mut sent = 0u64;
    while sent < n {
        let k = ((n - sent) / 1000).clamp(1, 4);
        let reqs = (0..k).map(|_| {
            http.post(format!("{}/topics/replay/batch", server.url))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
        });
        for r in futures_util::future::join_all(reqs).await {
            anyhow::ensure!(r?.status() == 201, "prefill failed");
        }
        sent += k * 1000;
    }
    let rate = sse::catchup(&server.url, "replay", sent).await?;
    let mut row = Row::new(
        "catchup from earliest",
        cx.backend,
        "replay",
        rate,
        "msgs/s",
    )
    .target("≥ 200,000 msgs/s")
    .note(format!(
        "{sent} messages, one subscriber, in order, none twice"
    ));
    // The server holds the SQLite file's lock: stop it before reading the
    // file directly for the baseline.
    server.stop().await;
    if let Some(db) = &db {
        let store = herald::storage::connect(
            &db.url,
            &herald::storage::StoreOptions {
                timeout: Duration::from_secs(5),
                max_connections: 2,
                sqlite_full_sync: true,
                sqlite_max_page_count: None,
            },
        )
        .await?;
        let t = Instant::now();
        let mut after = herald::domain::Position::ZERO;
        let mut read = 0u64;
        loop {
            let page = store.read(after, Some(&["replay"]), 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.position;
            read += page.len() as u64;
            for m in &page {
                std::hint::black_box(m.sse_frame());
            }
        }
        row = row.baseline(
            "storage read + encode",
            read as f64 / t.elapsed().as_secs_f64(),
        );
    }
    cx.rows.push(row);
    if let Some(db) = db {
        db.cleanup().await;
    }
    Ok(())
}

pub async fn idle(cx: &mut Ctx) -> anyhow::Result<()> {
    let n = if cx.args.smoke {
        100
    } else {
        cx.args.idle_connections
    };
    let (server, db) = cx.server(&[]).await?;
    let Some(pid) = server.pid() else {
        anyhow::bail!("idle needs a server this harness started (no --url)");
    };
    let (per, before, after) = sse::idle(&server.url, pid, n).await?;
    cx.rows.push(
        Row::new(
            &format!("idle, {n} SSE connections"),
            cx.backend,
            "server memory per connection",
            per / 1024.0,
            "KiB",
        )
        .target("≤ 10 KiB")
        .note(format!(
            "RSS {:.1} → {:.1} MiB",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0
        )),
    );
    server.stop().await;
    if let Some(db) = db {
        db.cleanup().await;
    }
    if cx.args.tls {
        let rows = tls::idle(cx.args.database_url.as_deref(), cx.backend, n).await?;
        cx.rows.extend(rows);
    }
    Ok(())
}
