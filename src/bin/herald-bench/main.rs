//! herald-bench: drives a real herald over HTTP and SSE on loopback,
//! checks that nothing is lost or duplicated, and prints figures beside a
//! baseline measured in the same run.
//!
//! `cargo run --release --bin herald-bench -- <publish|batch|fanout|catchup|idle|slow|retention|auth|queue|options|replays|subscriptions|webhooks|ws|all>`
//! Each scenario starts the `herald` binary beside this one on a fresh
//! database (SQLite; Postgres with `--database-url`), or targets `--url`.

mod auth;
mod chart;
mod idle_subs;
mod limits;
mod load;
mod options;
mod queue;
mod retention;
mod server;
mod shipped;
mod slow;
mod sse;
mod stats;
mod streams;
mod tls;
mod webhooks;
mod ws;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use load::Kind;
use server::{BenchDb, Server, cpu_seconds};
pub(crate) use stats::Row;

#[derive(Parser, Debug)]
#[command(
    name = "herald-bench",
    about = "Benchmarks of herald, each beside its baseline"
)]
struct Args {
    /// shipped (default flags beside the request log off and --peer-url), publish, batch, fanout, catchup, idle, slow, retention, auth, queue, options (replays alone: replays), subscriptions, webhooks, ws, all, or limits
    /// (the front door's cost: limits on against off, not part of all).
    #[arg(default_value = "all")]
    scenario: String,
    /// Benchmark a running herald instead of starting one (baselines that
    /// need the database are then skipped).
    #[arg(long)]
    url: Option<String>,
    /// A Postgres URL: run on Postgres (a fresh database per scenario).
    #[arg(long)]
    database_url: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Seconds, tiny sizes: a check that the harness works (CI).
    #[arg(long)]
    smoke: bool,
    /// Seconds per measured run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent keep-alive clients for publish and batch.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Subscriber counts for fanout.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    subscribers: Vec<usize>,
    /// Deliveries per second offered in fanout's throughput run (publish
    /// rate = this / subscribers); above the target, so the figure shows
    /// what herald sustains rather than what was asked.
    #[arg(long, default_value_t = 1_000_000.0)]
    deliveries: f64,
    /// Deliveries per second of fanout's latency run (the target's half).
    #[arg(long, default_value_t = 250_000.0)]
    latency_deliveries: f64,
    /// Messages to prefill for catchup.
    #[arg(long, default_value_t = 1_000_000)]
    catchup_messages: u64,
    /// Idle SSE connections (at most ~19,000: one process's file limit here).
    #[arg(long, default_value_t = 15_000)]
    idle_connections: usize,
    /// idle: also measure streams over HTTPS, HTTP/2 and HTTP/1.1.
    #[arg(long)]
    tls: bool,
    /// Write the fan-out latency chart (SVG) here.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// A peer (e.g. nchan on 127.0.0.1:18081) to run shipped and fanout
    /// against too, in the same run.
    #[arg(long)]
    peer_url: Option<String>,
}

struct Ctx {
    args: Args,
    backend: &'static str,
    rows: Vec<Row>,
    chart: Vec<(String, Vec<(&'static str, f64)>)>,
}

impl Ctx {
    async fn server(&self, flags: &[&str]) -> anyhow::Result<(Server, Option<BenchDb>)> {
        if let Some(url) = &self.args.url {
            return Ok((Server::external(url), None));
        }
        let db = BenchDb::fresh(self.args.database_url.as_deref()).await?;
        let server = Server::start(&db, flags).await?;
        Ok((server, Some(db)))
    }

    fn secs(&self) -> Duration {
        Duration::from_secs(if self.args.smoke {
            1
        } else {
            self.args.seconds
        })
    }
}

async fn publish(cx: &mut Ctx) -> anyhow::Result<()> {
    let (server, db) = cx.server(&[]).await?;
    let (d, c, b) = (cx.secs(), cx.args.clients, cx.backend);
    let mut floor_http = load::closed_loop(&server.url, Kind::Healthz, c, d).await?;
    let (cpu_s, cpu_c, t) = (cpu_seconds(server.pid()), cpu_seconds(None), Instant::now());
    let mut one = load::closed_loop(&server.url, Kind::Publish { topics: 1 }, c, d).await?;
    let load_note = format!(
        "{c} clients; server CPU {:.2} cores, client {:.2} cores",
        (cpu_seconds(server.pid()) - cpu_s) / t.elapsed().as_secs_f64(),
        (cpu_seconds(None) - cpu_c) / t.elapsed().as_secs_f64()
    );
    let mut spread = load::closed_loop(&server.url, Kind::Publish { topics: 1000 }, c, d).await?;
    let mut ids = std::mem::take(&mut one.ids);
    ids.append(&mut spread.ids);
    load::verify_publishes(&server.url, &mut ids).await?;
    let healthz = floor_http.per_second();
    let target = if b == "postgres" {
        "≥ 10,000 msgs/s"
    } else {
        "≥ 30,000 msgs/s and ≥ 0.5 × healthz"
    };
    cx.rows.push(
        Row::new(
            "publish, 1 topic",
            b,
            "throughput",
            one.per_second(),
            "msgs/s",
        )
        .baseline("GET /healthz", healthz)
        .target(target)
        .note(load_note),
    );
    cx.rows.push(Row::new(
        "publish, 1 topic",
        b,
        "latency p50",
        one.latencies.ms(0.5),
        "ms",
    ));
    cx.rows.push(
        Row::new(
            "publish, 1 topic",
            b,
            "latency p99",
            one.latencies.ms(0.99),
            "ms",
        )
        .baseline("healthz p99", floor_http.latencies.ms(0.99)),
    );
    cx.rows.push(
        Row::new(
            "publish, 1,000 topics",
            b,
            "throughput",
            spread.per_second(),
            "msgs/s",
        )
        .baseline("GET /healthz", healthz)
        .note(format!(
            "p50 {:.2} ms, p99 {:.2} ms",
            spread.latencies.ms(0.5),
            spread.latencies.ms(0.99)
        )),
    );
    if db.is_some() {
        let floor_db = BenchDb::fresh(cx.args.database_url.as_deref()).await?;
        let floor = load::storage_floor(&floor_db.url, 1000, d).await?;
        floor_db.cleanup().await;
        cx.rows.push(
            Row::new(
                "storage floor",
                b,
                "batched appends (1,000/txn)",
                floor,
                "msgs/s",
            )
            .note("Store::append straight, no HTTP, same durability"),
        );
    }
    server.stop().await;
    if let Some(db) = db {
        db.cleanup().await;
    }
    Ok(())
}

async fn batch(cx: &mut Ctx) -> anyhow::Result<()> {
    let (server, db) = cx.server(&[]).await?;
    let (d, b) = (cx.secs(), cx.backend);
    let clients = cx.args.clients.min(16);
    let mut run = load::closed_loop(&server.url, Kind::Batch { size: 100 }, clients, d).await?;
    load::verify_publishes(&server.url, &mut run.ids).await?;
    let mut row = Row::new(
        "batch publish (100/request)",
        b,
        "throughput",
        run.per_second(),
        "msgs/s",
    )
    .target("≥ 300,000 msgs/s")
    .note(format!(
        "{clients} clients, p99 {:.2} ms per request",
        run.latencies.ms(0.99)
    ));
    if let Some(db) = &db {
        let floor_db = BenchDb::fresh(cx.args.database_url.as_deref()).await?;
        let floor = load::storage_floor(&floor_db.url, 1000, d).await?;
        floor_db.cleanup().await;
        row = row.baseline("storage floor", floor);
        let _ = db;
    }
    cx.rows.push(row);
    server.stop().await;
    if let Some(db) = db {
        db.cleanup().await;
    }
    Ok(())
}

/// Raises this process's open-file limit to the hard limit (herald,
/// started from here, inherits it).
fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Pruning a backlog under publish load, disk before and after, and the
/// cost of a schema (see `retention.rs`).
async fn retention_scenario(cx: &mut Ctx) -> anyhow::Result<()> {
    let backlog = if cx.args.smoke { 20_000 } else { 1_000_000 };
    let (d, c, b) = (cx.secs(), cx.args.clients, cx.backend);
    if cx.args.url.is_none() {
        let db = BenchDb::fresh(cx.args.database_url.as_deref()).await?;
        let rows = retention::pruning(&db, b, backlog, c, d).await?;
        cx.rows.extend(rows);
        db.cleanup().await;
    }
    let (server, db) = cx.server(&[]).await?;
    cx.rows.extend(retention::schema(&server, b, c, d).await?);
    server.stop().await;
    if let Some(db) = db {
        db.cleanup().await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    raise_nofile();
    let args = Args::parse();
    let backend = if args.database_url.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let scenario = args.scenario.clone();
    let mut cx = Ctx {
        args,
        backend,
        rows: Vec::new(),
        chart: Vec::new(),
    };
    let all = scenario == "all";
    let known = [
        "publish",
        "batch",
        "fanout",
        "catchup",
        "idle",
        "slow",
        "retention",
        "limits",
        "auth",
        "queue",
        "options",
        "replays",
        "subscriptions",
        "webhooks",
        "ws",
        "shipped",
        "all",
    ];
    anyhow::ensure!(
        known.contains(&scenario.as_str()),
        "unknown scenario {scenario:?}: one of {known:?}"
    );
    if all || scenario == "shipped" {
        shipped::scenario(&mut cx).await?;
    }
    if all || scenario == "publish" {
        publish(&mut cx).await?;
    }
    if all || scenario == "batch" {
        batch(&mut cx).await?;
    }
    if all || scenario == "ws" {
        ws::scenario(&mut cx).await?;
    }
    if all || scenario == "fanout" {
        streams::fanout(&mut cx).await?;
    }
    if all || scenario == "catchup" {
        streams::catchup(&mut cx).await?;
    }
    if all || scenario == "idle" {
        streams::idle(&mut cx).await?;
    }
    if all || scenario == "slow" {
        slow::scenario(&mut cx).await?;
    }
    if all || scenario == "retention" {
        retention_scenario(&mut cx).await?;
    }
    if all || scenario == "queue" {
        queue::queue(&mut cx).await?;
    }
    if all || scenario == "options" {
        options::options(&mut cx).await?;
    }
    if all || scenario == "subscriptions" {
        idle_subs::scenario(&mut cx).await?;
    }
    if scenario == "replays" {
        options::replays(&mut cx).await?;
    }
    if all || scenario == "webhooks" {
        webhooks::webhooks(&mut cx).await?;
    }
    if all || scenario == "auth" {
        auth::auth(&mut cx).await?;
    }
    if scenario == "limits" {
        limits::limits(&mut cx).await?;
    }
    if let Some(path) = &cx.args.chart
        && !cx.chart.is_empty()
    {
        std::fs::write(
            path,
            chart::latency_svg(
                "fan-out latency at 250,000 deliveries/s (half the target)",
                &cx.chart,
            ),
        )?;
    }
    if cx.args.json {
        println!("{}", serde_json::to_string_pretty(&cx.rows)?);
    } else {
        print!("{}", stats::table(&cx.rows));
    }
    Ok(())
}
