//! `GET /healthz` (the process is up) and `GET /readyz` (its database
//! takes writes), and `GET /metrics`.

use std::time::{Duration, Instant};

use super::json::Json;
use axum::Extension;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, Problem};
use super::request_log::Quiet;

#[utoipa::path(get, path = "/metrics", tag = "operations", summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text format: messages published, publish latency, commit batch sizes, SSE connections and events, catch-ups, webhook attempts by outcome, pending deliveries, dead letters, database pool usage, per subscription its backlog and the age of its oldest unacknowledged message, and log lines dropped because stderr stalled (herald_log_lines_dropped_total)", content_type = "text/plain", body = String)))]
pub async fn metrics(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    caller.require_admin("reading metrics")?;
    for (pool, open, idle) in state.store.pool_stats() {
        let in_use = open.saturating_sub(idle as u32);
        metrics::gauge!(crate::telemetry::DB_CONNECTIONS, "pool" => pool, "state" => "idle")
            .set(idle as f64);
        metrics::gauge!(crate::telemetry::DB_CONNECTIONS, "pool" => pool, "state" => "in_use")
            .set(f64::from(in_use));
    }
    crate::telemetry::record_subscriptions(state.store.as_ref()).await?;
    crate::telemetry::record_log_drops();
    let handle = crate::telemetry::install();
    handle.run_upkeep();
    Ok((
        Extension(Quiet),
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    ))
}

#[utoipa::path(get, path = "/healthz", tag = "operations", summary = "Liveness",
    responses((status = 200, description = "The process is up", body = Object, example = json!({"status": "ok"}))))]
pub async fn healthz() -> (Extension<Quiet>, Json<Value>) {
    (Extension(Quiet), Json(json!({"status": "ok"})))
}

#[utoipa::path(get, path = "/readyz", tag = "operations", summary = "Readiness",
    description = "Ready when the database takes a write: a tiny update in a transaction of its own (on SQLite also enough free disk space). A full disk, a read-only or locked database, or an unreachable one answers 503 until writes work again. A success is reused for up to a second.",
    responses(
        (status = 200, description = "The database takes writes", body = Object, example = json!({"status": "ready", "backend": "sqlite"})),
        (status = 503, description = "The database refuses writes, does not answer, or herald is at its connection limit", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ))]
pub async fn readyz(
    State(state): State<AppState>,
) -> Result<(Extension<Quiet>, Json<Value>), ApiError> {
    state.readiness.check(state.store.as_ref()).await?;
    let body = json!({"status": "ready", "backend": state.store.backend()});
    Ok((Extension(Quiet), Json(body)))
}

/// How long one probe may take before herald counts as not ready.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a successful probe is reused: `/readyz` polled in a loop costs
/// at most one small write a second.
const PROBE_FRESH: Duration = Duration::from_secs(1);

/// The last write probe and when it ran. Concurrent checks wait for one
/// probe instead of each running their own.
#[derive(Debug, Default)]
pub struct Readiness {
    last: tokio::sync::Mutex<Option<(Instant, Result<(), Unready>)>>,
}

/// Why herald is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unready {
    RefusesWrites,
    DiskFull,
    TimedOut,
}

impl From<Unready> for ApiError {
    fn from(why: Unready) -> Self {
        ApiError::unavailable(match why {
            Unready::RefusesWrites => "the database refuses writes or is unreachable",
            Unready::DiskFull => "the disk holding the database is (nearly) full",
            Unready::TimedOut => "the database did not take a write within 2 s",
        })
    }
}

impl Readiness {
    pub async fn check(&self, store: &dyn crate::storage::Store) -> Result<(), Unready> {
        use crate::storage::readiness::ProbeError;
        let arrived = Instant::now();
        let mut last = self.last.lock().await;
        // A probe that ended while this request waited answers it too; a
        // success is reused for a moment, a failure is not, so recovery
        // shows at once.
        if let Some((at, outcome)) = *last
            && (at >= arrived || (outcome.is_ok() && at.elapsed() < PROBE_FRESH))
        {
            return outcome;
        }
        let outcome = match tokio::time::timeout(PROBE_TIMEOUT, store.probe_write()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "not ready");
                Err(match e {
                    ProbeError::DiskFull { .. } => Unready::DiskFull,
                    ProbeError::Write(_) => Unready::RefusesWrites,
                })
            }
            Err(_) => {
                tracing::warn!("not ready: the write probe took longer than {PROBE_TIMEOUT:?}");
                Err(Unready::TimedOut)
            }
        };
        *last = Some((Instant::now(), outcome));
        outcome
    }
}
