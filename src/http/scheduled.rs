//! `GET /scheduled`, `GET` and `DELETE /scheduled/{id}`: scheduled
//! publishes (`?delay=` or `?at=`) that are not yet due. Once appended, a
//! schedule is gone from here: its message is in the log.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{ApiId, QueryPairs};
use super::json::Json;
use crate::auth::Caller;
use crate::domain::{Timestamp, TopicName};
use crate::storage::scheduled::ScheduledRow;

/// A scheduled message, waiting for its time.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"schedule_id": 17, "topic": "orders", "deliver_at": "2026-12-01T09:00:00.000000Z",
    "created": "2026-11-30T12:00:00.000000Z", "event": "message", "priority": 3, "data": {"total": 150}}))]
pub struct ScheduledView {
    pub schedule_id: i64,
    pub topic: String,
    pub deliver_at: String,
    pub created: String,
    pub event: String,
    pub priority: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The time to live it will have from its append (`?ttl=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<i64>,
    /// The payload: JSON as published, or a string for text.
    pub data: serde_json::Value,
}

impl From<ScheduledRow> for ScheduledView {
    fn from(r: ScheduledRow) -> Self {
        let data = if r.is_json {
            serde_json::from_str(&r.payload).unwrap_or(serde_json::Value::String(r.payload))
        } else {
            serde_json::Value::String(r.payload)
        };
        ScheduledView {
            schedule_id: r.id,
            topic: r.topic,
            deliver_at: Timestamp(r.deliver_at_us).to_rfc3339(),
            created: Timestamp(r.created_us).to_rfc3339(),
            event: r.event,
            priority: u8::try_from(r.priority).unwrap_or(3),
            key: r.msg_key,
            ttl_ms: r.ttl_ms,
            data,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduledPage {
    pub scheduled: Vec<ScheduledView>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<i64>,
}

/// Schedules by id. With `topic`, that topic's (publish access to it is
/// enough); without, every topic's (admin).
#[utoipa::path(
    get, path = "/scheduled", operation_id = "list_scheduled", tag = "messages", summary = "List scheduled messages that are not yet due",
    params(
        ("topic" = Option<String>, Query, description = "Only this topic's", pattern = r"^(\$herald\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", max_length = 128),
        ("after" = Option<i64>, Query, description = "Only ids above this (the `next` of the previous page)"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)", minimum = 1, maximum = 1000)),
    responses(
        (status = 200, description = "A page, by id", body = ScheduledPage),
        (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Json<ScheduledPage>, ApiError> {
    let topic = query.one("topic")?.map(TopicName::parse).transpose()?;
    match &topic {
        Some(t) => caller.require_publish(t)?,
        None => caller.require_admin("listing every topic's scheduled messages")?,
    }
    let limit = query.number("limit", 1, 1000)?.unwrap_or(100);
    let after = query.after_id("schedule")?;
    let rows = state
        .store
        .scheduled(topic.as_ref().map(TopicName::as_str), after, limit)
        .await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(ScheduledPage {
        scheduled: rows.into_iter().map(ScheduledView::from).collect(),
        next,
    }))
}

#[utoipa::path(
    get, path = "/scheduled/{id}", operation_id = "show_scheduled", tag = "messages", summary = "Show a scheduled message",
    params(("id" = i64, Path, description = "The `schedule_id`", minimum = 1)),
    responses(
        (status = 200, description = "Waiting for its time", body = ScheduledView),
        (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem),
        (status = 404, description = "No such schedule: unknown, cancelled, or appended to the log already", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ApiId(id): ApiId,
) -> Result<Json<ScheduledView>, ApiError> {
    let row = visible(&state, &caller, id).await?;
    Ok(Json(row.into()))
}

/// Cancels a schedule. Racing its due time, it is either cancelled here
/// (`204`, never appended) or appended already (`404`), never both.
#[utoipa::path(
    delete, path = "/scheduled/{id}", tag = "messages", summary = "Cancel a scheduled message",
    params(("id" = i64, Path, description = "The `schedule_id`", minimum = 1)),
    responses(
        (status = 204, description = "Cancelled: it will not be appended"),
        (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem),
        (status = 404, description = "No such schedule: unknown, cancelled, or appended to the log already", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ApiId(id): ApiId,
) -> Result<StatusCode, ApiError> {
    visible(&state, &caller, id).await?;
    if !state.store.cancel_scheduled(id).await? {
        return Err(gone(id));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The schedule, if the caller may publish to its topic (else a `404`,
/// as if it did not exist).
async fn visible(state: &AppState, caller: &Caller, id: i64) -> Result<ScheduledRow, ApiError> {
    let row = state
        .store
        .scheduled_one(id)
        .await?
        .ok_or_else(|| gone(id))?;
    let topic = TopicName::parse(&row.topic).map_err(|_| ApiError::internal())?;
    if caller.require_publish(&topic).is_err() {
        return Err(gone(id));
    }
    Ok(row)
}

fn gone(id: i64) -> ApiError {
    ApiError::not_found(format!(
        "no scheduled message {id}: unknown, cancelled, or appended to the log already"
    ))
}
