//! `POST /topics/{topic}/batch`: publish many messages in one request, all
//! or nothing, in one transaction.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::value::RawValue;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{ApiPath, QueryPairs};
use super::publish_options::{self, Options, Prepared, PublishParams};
use crate::domain::{NewMessage, Payload, TopicName};
use crate::fanout::Ack;

/// The answer to a batch: every message's id and seq, in order.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct BatchAck {
    pub count: usize,
    pub messages: Vec<Ack>,
}

/// The answer to a scheduled batch.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ScheduledBatch {
    pub count: usize,
    pub scheduled: Vec<publish_options::Scheduled>,
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid-batch", "Invalid batch", detail)
}

#[utoipa::path(
    post, path = "/topics/{topic}/batch", tag = "messages",
    summary = "Publish several messages at once (all or nothing)",
    params(
        ("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", min_length = 1, max_length = 128),
        ("event" = Option<String>, Query, description = "SSE event type of every message (default `message`; `gap`, `join` and `leave` are reserved: 400 `invalid-event`)"),
        PublishParams,
        ("Idempotency-Key" = Option<String>, Header, description = "Covers the whole batch. A repeat within --idempotency-window (default `24h`) answers the original status and body with `Idempotent-Replayed: true` and stores nothing; another request with the same key gets `422`, and one while the first is in flight `409`. 1-255 printable ASCII characters, unique per topic.")),
    request_body(description = "A JSON array whose elements are the payloads, or NDJSON (`application/x-ndjson`: one JSON payload per line). At most --batch-max-messages (1000) messages, each at most --max-message-bytes, the body at most --batch-max-bytes (16 MiB).",
        // NDJSON is described here rather than as a second media type:
        // generic OpenAPI tools (schemathesis among them) cannot write it.
        content(
            (Vec<serde_json::Value> = "application/json", example = json!([{"total": 150}, {"total": 20}])),
        )),
    responses(
        (status = 201, description = "All stored, in order", body = BatchAck,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the recorded answer to an earlier request with the same Idempotency-Key"))),
        (status = 202, description = "All scheduled (`delay` or `at`): `{\"count\", \"scheduled\": [{\"schedule_id\", \"topic\", \"deliver_at\"}]}`, appended in order at their time", body = ScheduledBatch),
        (status = 409, description = "A request with the same Idempotency-Key is still being processed", content_type = "application/problem+json", body = Problem),
        (status = 400, description = "Invalid input (the detail says what): among others, a message nested deeper than 64 levels or with a number out of a double's range; nothing was stored", content_type = "application/problem+json", body = Problem),
        (status = 413, description = "A message or the body is too large; nothing was stored", content_type = "application/problem+json", body = Problem),
        (status = 415, description = "Neither JSON nor NDJSON", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "A message does not satisfy the topic's schema (`errors` lists each violation with the message's index), or the Idempotency-Key was used for a different request; nothing was stored", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The database is unavailable or slow, or too many publishes wait already (--max-pending-publishes); nothing was stored", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn publish_batch(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    ApiPath(topic): ApiPath<String>,
    query: QueryPairs,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let topic = TopicName::parse(&topic)?;
    caller.require_publish(&topic)?;
    let mut options = Options::parse(&state, &query, &headers)?;
    publish_options::scope_key(&mut options, &caller);
    let fingerprint = publish_options::fingerprint(&options, &topic, true, &query, &headers, &body);
    let event = super::publish::event_type(&query)?;
    let rules = state.topics.rules(&topic).await?;
    let ttl = super::publish::ttl(&query, &rules)?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(format!(
                "a batch body may be at most {} bytes",
                state.settings.batch_max_bytes
            ))
        } else {
            invalid(e.body_text())
        }
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let elements: Vec<&RawValue> = match content_type.as_str() {
        "application/json" => serde_json::from_slice(&body)
            .map_err(|e| invalid(format!("the body is not a JSON array of payloads: {e}")))?,
        "application/x-ndjson" | "application/jsonl" | "application/jsonlines" => body
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
            .map(|(i, line)| {
                serde_json::from_slice(line)
                    .map_err(|e| invalid(format!("line {} is not JSON: {e}", i + 1)))
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send a JSON array (application/json) or NDJSON (application/x-ndjson)",
            ));
        }
    };
    if elements.is_empty() {
        return Err(invalid("a batch needs at least one message"));
    }
    if elements.len() > state.settings.batch_max_messages {
        return Err(invalid(format!(
            "a batch holds at most {} messages; this one has {}",
            state.settings.batch_max_messages,
            elements.len()
        )));
    }
    let limit = state.settings.max_message_bytes;
    let mut messages = Vec::with_capacity(elements.len());
    for (i, raw) in elements.into_iter().enumerate() {
        let text = raw.get();
        if text.len() > limit {
            return Err(ApiError::too_large(format!(
                "message {} has {} bytes; a message may be at most {limit}",
                i + 1,
                text.len()
            )));
        }
        let payload = Payload::json(text.to_owned()).map_err(|e| {
            invalid(format!(
                "message {} is not JSON that herald accepts: {e}",
                i + 1
            ))
        })?;
        messages.push(NewMessage {
            topic: topic.clone(),
            event: event.clone(),
            payload,
            content_type: "application/json".to_owned(),
            ttl,
            priority: options.priority,
            key: options.key.clone(),
        });
    }
    super::publish::check_schema(&rules, messages.iter().map(|m| &m.payload)).await?;
    caller.take_publishes(&state, messages.len())?;
    let prepared = Prepared {
        topic,
        messages,
        options,
        batch: true,
        fingerprint,
    };
    publish_options::store(&state, prepared).await
}
