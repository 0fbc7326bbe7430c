//! `GET /subscriptions/{id}/attempts`: the attempt log of a webhook,
//! newest first, with each attempt's outcome and the start of the
//! endpoint's answer.

use axum::extract::State;
use serde::Serialize;

use super::load;
use crate::auth::Caller;
use crate::domain::Timestamp;
use crate::http::AppState;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiId, QueryPairs};
use crate::http::json::Json;
use crate::storage::webhooks::{Attempt, AttemptQuery};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub id: i64,
    /// The message's id (its position in the log).
    pub message_id: i64,
    /// When the attempt ended (RFC 3339).
    pub time: String,
    /// The endpoint's HTTP status, if it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    /// Why it failed (absent when it succeeded): a status that is not 2xx,
    /// a timeout, a refused connection …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: i64,
    /// The first 1 KiB of the answer's body, if any.
    pub response: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptPage {
    pub attempts: Vec<AttemptView>,
    /// Pass as `after` for the next (older) page; null on the last page.
    pub next: Option<i64>,
}

fn view(a: Attempt) -> AttemptView {
    AttemptView {
        id: a.id,
        message_id: a.position,
        time: Timestamp(a.time_us).to_rfc3339(),
        status: a.status,
        error: a.error,
        duration_ms: a.duration_ms,
        response: a.response,
    }
}

fn bad_query(detail: &str) -> ApiError {
    ApiError::bad_request("invalid-query", "Invalid query parameter", detail)
}

#[utoipa::path(
    get, path = "/subscriptions/{id}/attempts", operation_id = "list_attempts", tag = "webhooks", summary = "A webhook's attempt log, newest first",
    description = "Every attempt (kept for `--attempt-log-max-age`, default 7 days): when, which message, the status or error, how long it took, and the first 1 KiB of the answer.",
    params(
        ("id" = i64, Path, description = "Subscription id", minimum = 1),
        ("message_id" = Option<i64>, Query, description = "Only attempts of this message", minimum = 0),
        ("after" = Option<i64>, Query, description = "Only attempts older than this one (the `next` of the previous page)", minimum = 0),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)", minimum = 1, maximum = 1000)),
    responses((status = 200, description = "A page, newest first", body = AttemptPage), (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem), (status = 404, description = "No such subscription", content_type = "application/problem+json", body = Problem), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiId(id): ApiId,
    query: QueryPairs,
) -> Result<Json<AttemptPage>, ApiError> {
    let limit = query.number("limit", 1, 1000)?.unwrap_or(100);
    let id_param = |key: &str| -> Result<Option<i64>, ApiError> {
        match query.one(key)? {
            None => Ok(None),
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(Some(n)),
                _ => Err(bad_query(&format!(
                    "`{key}` is an id (a non-negative integer)"
                ))),
            },
        }
    };
    let q = AttemptQuery {
        subscription: id,
        position: id_param("message_id")?,
        before: id_param("after")?,
        limit,
    };
    load(&state, &caller, id).await?;
    let attempts = state.store.attempts(&q).await?;
    let next = (attempts.len() == limit as usize)
        .then(|| attempts.last().map(|a| a.id))
        .flatten();
    Ok(Json(AttemptPage {
        attempts: attempts.into_iter().map(view).collect(),
        next,
    }))
}
