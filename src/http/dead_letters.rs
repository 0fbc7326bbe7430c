//! `GET /dead-letters`, `GET/DELETE /dead-letters/{id}`,
//! `POST /dead-letters/{id}/redrive`, `POST /dead-letters/redrive`.

use super::json::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{ApiId, ApiJson, QueryPairs};
use crate::auth::Caller;
use crate::domain::{Timestamp, TopicName};
use crate::storage::webhooks::{DeadLetter, DeadLetterQuery};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetterView {
    pub id: i64,
    pub subscription: i64,
    /// The message's id (its position in the log).
    pub message_id: i64,
    pub topic: String,
    pub attempts: i32,
    /// Why it is a dead letter: `max_attempts` (its attempts, or a pull
    /// subscription's leases, ran out) or `retention` (its message was
    /// removed before it could be delivered).
    #[schema(example = "max_attempts")]
    pub reason: String,
    /// HTTP status of the last attempt, if the endpoint answered.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub first_attempt: String,
    pub last_attempt: String,
    /// The message envelope, on `GET /dead-letters/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::openapi::Envelope>)]
    pub message: Option<Box<serde_json::value::RawValue>>,
}

fn view(d: DeadLetter) -> DeadLetterView {
    DeadLetterView {
        id: d.id,
        subscription: d.subscription_id,
        message_id: d.position,
        topic: d.topic,
        attempts: d.attempts,
        reason: d
            .reason
            .unwrap_or_else(|| crate::storage::pull::REASON_MAX_ATTEMPTS.to_owned()),
        last_status: d.last_status,
        last_error: d.last_error,
        first_attempt: Timestamp(d.first_attempt_us).to_rfc3339(),
        last_attempt: Timestamp(d.last_attempt_us).to_rfc3339(),
        message: None,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetterPage {
    pub dead_letters: Vec<DeadLetterView>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<i64>,
}

fn bad_query(detail: &str) -> ApiError {
    ApiError::bad_request("invalid-query", "Invalid query parameter", detail)
}

/// Oldest first, paged by id: `?subscription=ID&topic=T&limit=N&after=ID`.
#[utoipa::path(
    get, path = "/dead-letters", operation_id = "list_dead_letters", tag = "webhooks", summary = "List dead letters, oldest first",
    params(
        ("subscription" = Option<i64>, Query, description = "Only this subscription's"),
        ("topic" = Option<String>, Query, description = "Only this topic's", pattern = r"^(\$herald\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", max_length = 128),
        ("after" = Option<i64>, Query, description = "Only ids above this (the `next` of the previous page)"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)", minimum = 1, maximum = 1000)),
    responses((status = 200, description = "A page", body = DeadLetterPage), (status = 404, description = "With access control on and a token that is not an admin's: no such subscription of this token", content_type = "application/problem+json", body = Problem), (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Json<DeadLetterPage>, ApiError> {
    let id = |key: &str| -> Result<Option<i64>, ApiError> {
        query
            .one(key)?
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| bad_query(&format!("`{key}` is an id (an integer)")))
            })
            .transpose()
    };
    let topic = query.one("topic")?.map(TopicName::parse).transpose()?;
    let q = DeadLetterQuery {
        subscription: id("subscription")?,
        topic: topic.map(|t| t.to_string()),
        after: id("after")?.unwrap_or(0),
        limit: query.number("limit", 1, 1000)?.unwrap_or(100),
    };
    // Everyone's needs an admin; a subscription's, its owner.
    match q.subscription {
        _ if caller.unrestricted() => {}
        Some(id) => drop(super::subscriptions::load(&state, &caller, id).await?),
        None => {
            return Err(caller.refuse(
                "listing every dead letter (name your subscription: ?subscription=ID)".into(),
            ));
        }
    }
    let letters = state.store.dead_letters(&q).await?;
    let next = (letters.len() == q.limit as usize)
        .then(|| letters.last().map(|d| d.id))
        .flatten();
    Ok(Json(DeadLetterPage {
        dead_letters: letters.into_iter().map(view).collect(),
        next,
    }))
}

fn missing(id: i64) -> ApiError {
    ApiError::not_found(format!("no dead letter {id}"))
}

/// The dead letter, if the caller may manage its subscription.
async fn load(state: &AppState, caller: &Caller, id: i64) -> Result<DeadLetter, ApiError> {
    let letter = state
        .store
        .dead_letter(id)
        .await?
        .ok_or_else(|| missing(id))?;
    if !caller.unrestricted() {
        // Someone else's is answered as if it did not exist.
        super::subscriptions::load(state, caller, letter.subscription_id)
            .await
            .map_err(|e| {
                if e.status == axum::http::StatusCode::NOT_FOUND {
                    missing(id)
                } else {
                    e
                }
            })?;
    }
    Ok(letter)
}

#[utoipa::path(
    get, path = "/dead-letters/{id}", operation_id = "show_dead_letter", tag = "webhooks", summary = "One dead letter with its message",
    params(("id" = i64, Path, description = "Dead letter id", minimum = 1)),
    responses((status = 200, description = "The dead letter", body = DeadLetterView), (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem), (status = 404, description = "No such dead letter", content_type = "application/problem+json", body = Problem), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))))
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ApiId(id): ApiId,
) -> Result<Json<DeadLetterView>, ApiError> {
    let letter = load(&state, &caller, id).await?;
    // The copy it kept; dead letters from before copies were kept look the
    // message up (it may have been removed by retention since).
    let envelope = match letter.envelope.clone() {
        Some(kept) => Some(kept),
        None => state
            .store
            .messages_at(&[letter.position])
            .await?
            .pop()
            .map(|m| String::from_utf8_lossy(&m.envelope()).into_owned()),
    };
    let mut v = view(letter);
    v.message = envelope.and_then(|e| serde_json::value::RawValue::from_string(e).ok());
    Ok(Json(v))
}

#[utoipa::path(
    delete, path = "/dead-letters/{id}", operation_id = "delete_dead_letter", tag = "webhooks", summary = "Delete a dead letter",
    params(("id" = i64, Path, description = "Dead letter id", minimum = 1)),
    responses((status = 204, description = "Deleted"), (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem), (status = 404, description = "No such dead letter", content_type = "application/problem+json", body = Problem), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiId(id): ApiId,
) -> Result<StatusCode, ApiError> {
    load(&state, &caller, id).await?;
    if state.store.delete_dead_letter(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(missing(id))
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Redriven {
    pub redriven: u64,
}

/// The delivery gets a fresh set of attempts.
#[utoipa::path(
    post, path = "/dead-letters/{id}/redrive", tag = "webhooks", summary = "Redrive one dead letter",
    params(("id" = i64, Path, description = "Dead letter id", minimum = 1)),
    responses((status = 202, description = "Queued for a fresh set of attempts", body = Redriven), (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem), (status = 404, description = "No such dead letter", content_type = "application/problem+json", body = Problem), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))))
)]
pub async fn redrive(
    State(state): State<AppState>,
    caller: Caller,
    ApiId(id): ApiId,
) -> Result<(StatusCode, Json<Redriven>), ApiError> {
    load(&state, &caller, id).await?;
    if state.store.redrive(id, Timestamp::now()).await? {
        // A pull subscription's consumers may be waiting for it.
        state.pulls.changed();
        Ok((StatusCode::ACCEPTED, Json(Redriven { redriven: 1 })))
    } else {
        Err(missing(id))
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedriveAll {
    pub subscription: i64,
    #[schema(
        pattern = r"^(\$herald\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
        min_length = 1,
        max_length = 128
    )]
    pub topic: Option<String>,
}

/// Redrives every dead letter of a subscription (of one topic, if given).
#[utoipa::path(
    post, path = "/dead-letters/redrive", tag = "webhooks", summary = "Redrive a subscription's dead letters",
    request_body = RedriveAll,
    responses((status = 202, description = "How many were queued", body = Redriven), (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem), (status = 413, description = "The body is too large", content_type = "application/problem+json", body = Problem), (status = 415, description = "The body is not JSON", content_type = "application/problem+json", body = Problem), (status = 404, description = "No such subscription", content_type = "application/problem+json", body = Problem), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))))
)]
pub async fn redrive_all(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RedriveAll>,
) -> Result<(StatusCode, Json<Redriven>), ApiError> {
    let topic = body.topic.as_deref().map(TopicName::parse).transpose()?;
    super::subscriptions::load(&state, &caller, body.subscription).await?;
    let n = state
        .store
        .redrive_all(
            body.subscription,
            topic.as_ref().map(TopicName::as_str),
            Timestamp::now(),
        )
        .await?;
    state.pulls.changed();
    Ok((StatusCode::ACCEPTED, Json(Redriven { redriven: n })))
}
