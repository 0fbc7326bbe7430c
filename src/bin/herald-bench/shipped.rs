//! herald as shipped: the HTTP floor (`GET /healthz`) and single publishes
//! with default flags, beside a peer (`--peer-url`, e.g. nchan) in the same
//! run; and the request log's cost: a cheap request that is logged (the
//! history of an empty topic) with the log on and off. Runs alternate
//! (healthz, the logged request on and off, publish, then the peer's; three
//! times) and each figure is the median of its three, so drift in the
//! machine hits all of them alike.

use crate::load::{self, Kind};
use crate::{Ctx, Row};

/// Runs per figure; the median is reported.
const ROUNDS: usize = 3;

/// One figure's runs.
#[derive(Default)]
struct Runs(Vec<f64>);

impl Runs {
    fn median(&self) -> f64 {
        crate::stats::median(self.0.clone())
    }

    fn spread(&self) -> String {
        let v: Vec<String> = self.0.iter().map(|x| format!("{x:.0}")).collect();
        format!("runs {}", v.join(" · "))
    }
}

async fn rate(url: &str, kind: Kind, cx: &Ctx) -> anyhow::Result<f64> {
    Ok(load::closed_loop(url, kind, cx.args.clients, cx.secs())
        .await?
        .per_second())
}

pub async fn scenario(cx: &mut Ctx) -> anyhow::Result<()> {
    let (shipped, db) = cx.server(&[]).await?;
    let (quiet, quiet_db) = cx.server(&["--access-log", "false"]).await?;
    let rounds = if cx.args.smoke { 1 } else { ROUNDS };
    let one = Kind::Publish { topics: 1 };
    let history = Kind::Get("/topics/empty/messages");
    let [
        mut floor,
        mut floor_peer,
        mut logged,
        mut unlogged,
        mut publish,
        mut publish_peer,
    ] = std::array::from_fn(|_| Runs::default());
    for _ in 0..rounds {
        floor.0.push(rate(&shipped.url, Kind::Healthz, cx).await?);
        logged.0.push(rate(&shipped.url, history, cx).await?);
        unlogged.0.push(rate(&quiet.url, history, cx).await?);
        publish.0.push(rate(&shipped.url, one, cx).await?);
        if let Some(peer) = &cx.args.peer_url {
            floor_peer.0.push(rate(peer, Kind::Healthz, cx).await?);
            publish_peer.0.push(rate(peer, one, cx).await?);
        }
    }
    let (b, c) = (cx.backend, cx.args.clients);
    let of = |runs: &Runs| format!("{c} clients, median of {rounds}; {}", runs.spread());
    cx.rows.push(
        Row::new(
            "as shipped: history of an empty topic",
            b,
            "throughput",
            logged.median(),
            "req/s",
        )
        .baseline("--access-log false", unlogged.median())
        .target("≥ 0.9 ×")
        .note(format!(
            "the request log's cost; {}; off: {}",
            of(&logged),
            unlogged.spread()
        )),
    );
    let mut row = Row::new(
        "as shipped: GET /healthz",
        b,
        "throughput",
        floor.median(),
        "req/s",
    );
    if floor_peer.0.is_empty() {
        row = row.note(of(&floor));
    } else {
        row = row
            .baseline("peer GET /healthz", floor_peer.median())
            .target("≥ 0.6 ×")
            .note(format!("{}; peer {}", of(&floor), floor_peer.spread()));
    }
    cx.rows.push(row);
    let mut row = Row::new(
        "as shipped: publish, 1 topic",
        b,
        "throughput",
        publish.median(),
        "msgs/s",
    )
    .baseline("GET /healthz", floor.median())
    .note(of(&publish));
    if !publish_peer.0.is_empty() {
        row.note += &format!(
            "; peer {:.0} msgs/s ({}, memory only)",
            publish_peer.median(),
            publish_peer.spread()
        );
    }
    cx.rows.push(row);
    shipped.stop().await;
    quiet.stop().await;
    for db in [db, quiet_db].into_iter().flatten() {
        db.cleanup().await;
    }
    Ok(())
}
