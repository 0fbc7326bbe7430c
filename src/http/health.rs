//! `GET /healthz` (the process is up) and `GET /readyz` (it can reach its
//! database).

use std::time::Duration;

use super::json::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, Problem};

#[utoipa::path(get, path = "/metrics", tag = "operations", summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text format: messages published, publish latency, commit batch sizes, SSE connections and events, catch-ups, webhook attempts by outcome, pending deliveries, dead letters, database pool usage", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    for (pool, open, idle) in state.store.pool_stats() {
        let in_use = open.saturating_sub(idle as u32);
        metrics::gauge!(crate::telemetry::DB_CONNECTIONS, "pool" => pool, "state" => "idle")
            .set(idle as f64);
        metrics::gauge!(crate::telemetry::DB_CONNECTIONS, "pool" => pool, "state" => "in_use")
            .set(f64::from(in_use));
    }
    let handle = crate::telemetry::install();
    handle.run_upkeep();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
}

#[utoipa::path(get, path = "/healthz", tag = "operations", summary = "Liveness",
    responses((status = 200, description = "The process is up", body = Object, example = json!({"status": "ok"}))))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "operations", summary = "Readiness",
    responses(
        (status = 200, description = "The database answers", body = Object, example = json!({"status": "ready", "backend": "sqlite"})),
        (status = 503, description = "The database does not answer", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => Ok(Json(
            json!({"status": "ready", "backend": state.store.backend()}),
        )),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::unavailable("the database is unreachable"))
        }
        Err(_) => Err(ApiError::unavailable(
            "the database did not answer within 2 s",
        )),
    }
}
