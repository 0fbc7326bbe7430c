//! `POST /subscriptions/{id}/ack`, `/nack` and `/extend`: what a consumer
//! does with the messages it leased.

use std::time::Duration;

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::super::AppState;
use super::super::error::{ApiError, Problem};
use super::super::extract::{ApiId, ApiJson};
use super::super::json::Json;
use super::{MAX_DELAY, MAX_MESSAGES, duration_in, invalid, load, parse_ack_deadline};
use crate::auth::Caller;
use crate::domain::webhook::Backoff;
use crate::domain::{AckId, Timestamp};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"ack_ids": ["42.1", "43.1"]}))]
pub struct AckRequest {
    /// Up to 1000 ack ids, as pulled (an empty list acks nothing).
    #[schema(max_items = 1000)]
    pub ack_ids: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AckResponse {
    /// How many were acked (removed for good).
    pub acked: usize,
    /// Ack ids that matched no lease held now: unknown, of another
    /// subscription, already acked, or past their deadline (the message
    /// may then be redelivered).
    pub unknown: Vec<String>,
}

/// Parses up to 1000 ack ids; an empty list acks nothing (a worker that
/// acks its previous batch with each pull sends one first).
pub(super) fn ack_ids(raw: &[String]) -> Result<Vec<AckId>, ApiError> {
    if raw.len() > MAX_MESSAGES as usize {
        return Err(invalid(format!(
            "ack_ids holds at most {MAX_MESSAGES} ack ids"
        )));
    }
    raw.iter()
        .map(|s| AckId::parse(s).map_err(|e| invalid(format!("ack_ids: {e}"))))
        .collect()
}

/// The ids of `asked` not in `done`, as strings.
pub(super) fn unknown(asked: &[AckId], done: &[AckId]) -> Vec<String> {
    let done: std::collections::HashSet<&AckId> = done.iter().collect();
    asked
        .iter()
        .filter(|id| !done.contains(id))
        .map(AckId::to_string)
        .collect()
}

#[utoipa::path(
    post, path = "/subscriptions/{id}/ack", tag = "pull", summary = "Acknowledge pulled messages",
    description = "Removes leased messages for good. Ack ids that match no lease held now (unknown, foreign, or past their deadline) are listed in `unknown`; that is not an error.",
    params(("id" = i64, Path, description = "Subscription id", minimum = 1)),
    request_body = AckRequest,
    responses((status = 200, description = "What was acked", body = AckResponse), (status = 400, description = "Invalid input, or not a pull subscription (the detail says what)", content_type = "application/problem+json", body = Problem), (status = 404, description = "No such subscription", content_type = "application/problem+json", body = Problem), (status = 413, description = "The body is too large", content_type = "application/problem+json", body = Problem), (status = 415, description = "The body is not JSON", content_type = "application/problem+json", body = Problem), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))))
)]
pub async fn ack(
    State(state): State<AppState>,
    caller: Caller,
    ApiId(id): ApiId,
    ApiJson(body): ApiJson<AckRequest>,
) -> Result<Json<AckResponse>, ApiError> {
    let ids = ack_ids(&body.ack_ids)?;
    load(&state, &caller, id).await?;
    let done = state.store.ack(id, &ids, Timestamp::now()).await?;
    metrics::counter!(crate::telemetry::PULL_MESSAGES, "event" => "acked")
        .increment(done.len() as u64);
    if !done.is_empty() {
        // Streams at their max_in_flight may take more now.
        state.pulls.changed();
    }
    Ok(Json(AckResponse {
        acked: done.len(),
        unknown: unknown(&ids, &done),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"ack_ids": ["42.1"], "delay": "10s"}))]
pub struct NackRequest {
    /// Up to 1000 ack ids, as pulled (an empty list changes nothing).
    #[schema(max_items = 1000)]
    pub ack_ids: Vec<String>,
    /// When to deliver them again, `"0s"` to `"1d"`; default: the
    /// subscription's backoff for the attempt.
    pub delay: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"ack_ids": ["42.1"], "ack_deadline": "60s"}))]
pub struct ExtendRequest {
    /// Up to 1000 ack ids, as pulled (an empty list changes nothing).
    #[schema(max_items = 1000)]
    pub ack_ids: Vec<String>,
    /// The new deadline, from now: `"1s"` to `"10m"`.
    pub ack_deadline: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReletResponse {
    /// How many leases were changed.
    pub updated: usize,
    /// Ack ids that matched no lease held now.
    pub unknown: Vec<String>,
}

#[utoipa::path(
    post, path = "/subscriptions/{id}/nack", tag = "pull", summary = "Give pulled messages back",
    description = "Ends the leases now; the messages are delivered again (with `attempt` + 1) after `delay`, or after the subscription's backoff.",
    params(("id" = i64, Path, description = "Subscription id", minimum = 1)),
    request_body = NackRequest,
    responses((status = 200, description = "What was given back", body = ReletResponse), (status = 400, description = "Invalid input, or not a pull subscription (the detail says what)", content_type = "application/problem+json", body = Problem), (status = 404, description = "No such subscription", content_type = "application/problem+json", body = Problem), (status = 413, description = "The body is too large", content_type = "application/problem+json", body = Problem), (status = 415, description = "The body is not JSON", content_type = "application/problem+json", body = Problem), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))))
)]
pub async fn nack(
    State(state): State<AppState>,
    caller: Caller,
    ApiId(id): ApiId,
    ApiJson(body): ApiJson<NackRequest>,
) -> Result<Json<ReletResponse>, ApiError> {
    let ids = ack_ids(&body.ack_ids)?;
    let delay = match &body.delay {
        Some(d) => Some(duration_in("delay", d, Duration::ZERO, MAX_DELAY)?),
        None => None,
    };
    let sub = load(&state, &caller, id).await?;
    let backoff = Backoff {
        min: Duration::from_millis(sub.min_backoff_ms.max(0) as u64),
        max: Duration::from_millis(sub.max_backoff_ms.max(0) as u64),
    };
    let now = Timestamp::now();
    let items: Vec<(AckId, Timestamp)> = ids
        .iter()
        .map(|id| {
            let d = delay.unwrap_or_else(|| backoff.delay(id.attempt as u32, None, rand::random()));
            (*id, Timestamp(now.0 + d.as_micros() as i64))
        })
        .collect();
    let done = state.store.relet(id, &items, false, now).await?;
    metrics::counter!(crate::telemetry::PULL_MESSAGES, "event" => "nacked")
        .increment(done.len() as u64);
    state.pulls.changed();
    Ok(Json(ReletResponse {
        updated: done.len(),
        unknown: unknown(&ids, &done),
    }))
}

#[utoipa::path(
    post, path = "/subscriptions/{id}/extend", tag = "pull", summary = "Extend the leases of pulled messages",
    params(("id" = i64, Path, description = "Subscription id", minimum = 1)),
    request_body = ExtendRequest,
    responses((status = 200, description = "What was extended", body = ReletResponse), (status = 400, description = "Invalid input, or not a pull subscription (the detail says what)", content_type = "application/problem+json", body = Problem), (status = 404, description = "No such subscription", content_type = "application/problem+json", body = Problem), (status = 413, description = "The body is too large", content_type = "application/problem+json", body = Problem), (status = 415, description = "The body is not JSON", content_type = "application/problem+json", body = Problem), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))))
)]
pub async fn extend(
    State(state): State<AppState>,
    caller: Caller,
    ApiId(id): ApiId,
    ApiJson(body): ApiJson<ExtendRequest>,
) -> Result<Json<ReletResponse>, ApiError> {
    let ids = ack_ids(&body.ack_ids)?;
    let deadline = parse_ack_deadline(&body.ack_deadline)?;
    load(&state, &caller, id).await?;
    let now = Timestamp::now();
    let until = Timestamp(now.0 + deadline * 1000);
    let items: Vec<(AckId, Timestamp)> = ids.iter().map(|id| (*id, until)).collect();
    let done = state.store.relet(id, &items, true, now).await?;
    Ok(Json(ReletResponse {
        updated: done.len(),
        unknown: unknown(&ids, &done),
    }))
}
