//! `limits`: the front door's cost. Publish and fan-out throughput with the
//! limits on (the defaults: header and idle timeouts, per-IP counting,
//! the 16 KiB head limit) against off, in alternating rounds of the same
//! run, each on a fresh server; medians per side.

use crate::load::{self, Kind};
use crate::stats::Row;
use crate::stats::median;
use crate::{Ctx, sse};

/// Every front-door limit off (hyper's own head limit stays).
const OFF: &[&str] = &[
    "--http-header-timeout",
    "0",
    "--http-idle-timeout",
    "0",
    "--max-connections-per-ip",
    "0",
    "--http-max-header-bytes",
    "1048576",
];

/// The defaults: on.
const ON: &[&str] = &[];

/// Subscribers of the fan-out part: 100 per source address (the harness
/// spreads them over 100), well under the default cap of 256.
const SUBSCRIBERS: usize = 1000;

pub async fn limits(cx: &mut Ctx) -> anyhow::Result<()> {
    let rounds = if cx.args.smoke { 1 } else { 5 };
    let (d, c, b) = (cx.secs(), cx.args.clients, cx.backend);
    let mut publish = [Vec::new(), Vec::new()];
    let mut fanout = [Vec::new(), Vec::new()];
    let rate = if cx.args.smoke {
        2_000.0
    } else {
        cx.args.deliveries
    } / SUBSCRIBERS as f64;
    for _ in 0..rounds {
        for (side, flags) in [OFF, ON].into_iter().enumerate() {
            let (server, db) = cx.server(flags).await?;
            let mut run = load::closed_loop(&server.url, Kind::Publish { topics: 1 }, c, d).await?;
            load::verify_publishes(&server.url, &mut run.ids).await?;
            publish[side].push(run.per_second());
            let f = sse::fanout(&server.url, SUBSCRIBERS, rate, d).await?;
            anyhow::ensure!(f.out_of_order == 0, "events out of order or repeated");
            fanout[side].push(f.deliveries as f64 / f.elapsed.as_secs_f64());
            server.stop().await;
            if let Some(db) = db {
                db.cleanup().await;
            }
        }
    }
    let note = |v: &[Vec<f64>; 2]| {
        format!(
            "{rounds} alternating rounds; on {:?}, off {:?}; ratio {:.3}",
            v[1].iter().map(|x| x.round()).collect::<Vec<_>>(),
            v[0].iter().map(|x| x.round()).collect::<Vec<_>>(),
            median(v[1].clone()) / median(v[0].clone())
        )
    };
    cx.rows.push(
        Row::new(
            "limits on: publish, 1 topic",
            b,
            "throughput",
            median(publish[1].clone()),
            "msgs/s",
        )
        .baseline("limits off", median(publish[0].clone()))
        .target("≥ 0.97 × off")
        .note(format!("{c} clients; {}", note(&publish))),
    );
    cx.rows.push(
        Row::new(
            &format!("limits on: fanout, {SUBSCRIBERS} subscribers"),
            b,
            "deliveries",
            median(fanout[1].clone()),
            "/s",
        )
        .baseline("limits off", median(fanout[0].clone()))
        .target("≥ 0.97 × off")
        .note(note(&fanout)),
    );
    Ok(())
}
