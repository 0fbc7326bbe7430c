//! `POST /topics/{topic}`: publish one message.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};

use axum::response::Response;

use super::AppState;
use super::error::ApiError;
use super::error::Problem;
use super::extract::{ApiPath, QueryPairs};
use super::publish_options::{self, Options, Prepared};
use std::time::Duration;

use crate::auth::Caller;
use crate::domain::{EventType, HumanDuration, NewMessage, Payload, Priority, TopicName};
use crate::fanout::Ack;
use crate::topics::{TopicRules, schema};
use publish_options::PublishParams;

/// Stores the body as one message and answers `201` with its id and seq
/// once it is committed. `Content-Type: application/json` (or `…+json`)
/// bodies must be valid JSON within herald's limits (nesting at most 64
/// levels deep, finite numbers); anything else is stored as UTF-8 text.
/// `?event=TYPE` sets the SSE event type (default `message`); the other
/// options are described with their parameters.
#[utoipa::path(
    post, path = "/topics/{topic}", tag = "messages",
    summary = "Publish a message",
    params(("topic" = String, Path, description = "Topic name: 1-128 characters of A-Z a-z 0-9 _ - with . between levels", pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", min_length = 1, max_length = 128, example = "orders.eu"),
        ("event" = Option<String>, Query, description = "SSE event type, 1-64 characters of A-Z a-z 0-9 _ - . (default `message`; `gap`, `join` and `leave` are herald's own stream events: 400 `invalid-event`)"),
        PublishParams,
        ("Idempotency-Key" = Option<String>, Header, description = "A repeat within --idempotency-window (default `24h`) answers the original status and body with `Idempotent-Replayed: true` and stores nothing; another request with the same key gets `422`, and one while the first is in flight `409`. 1-255 printable ASCII characters, unique per topic.")),
    request_body(description = "The payload: JSON with `Content-Type: application/json`, otherwise UTF-8 text (at most --max-message-bytes, default 1 MiB)",
        content(
            (serde_json::Value = "application/json", example = json!({"total": 150})),
            (String = "text/plain", example = "hello"),
        )),
    responses(
        (status = 201, description = "Stored (committed) with its id and seq", body = Ack,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the recorded answer to an earlier request with the same Idempotency-Key"))),
        (status = 202, description = "Scheduled (`delay` or `at`): appended to the log at its time, when it gets its id and seq", body = publish_options::Scheduled),
        (status = 409, description = "A request with the same Idempotency-Key is still being processed", content_type = "application/problem+json", body = Problem),
        (status = 400, description = "Invalid input (the detail says what): among others, JSON nested deeper than 64 levels or with a number out of a double's range", content_type = "application/problem+json", body = Problem),
        (status = 413, description = "The body is larger than --max-message-bytes", content_type = "application/problem+json", body = Problem),
        (status = 415, description = "A text body to a topic with a JSON Schema", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "The payload does not satisfy the topic's schema (`errors` lists each violation), or the Idempotency-Key was used for a different request; nothing was stored", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The database is unavailable or slow, or too many publishes wait already (--max-pending-publishes); nothing was stored; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(topic): ApiPath<String>,
    query: QueryPairs,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let topic = TopicName::parse(&topic)?;
    caller.require_publish(&topic)?;
    let mut options = Options::parse(&state, &query, &headers)?;
    publish_options::scope_key(&mut options, &caller);
    caller.take_publishes(&state, 1)?;
    let rules = state.topics.rules(&topic).await?;
    let fingerprint =
        publish_options::fingerprint(&options, &topic, false, &query, &headers, &body);
    let mut message = parse_message(&state, topic.clone(), &query, &headers, body)?;
    message.ttl = ttl(&query, &rules)?;
    options.apply(&mut message);
    check_schema(&rules, std::iter::once(&message.payload)).await?;
    let prepared = Prepared {
        topic,
        messages: vec![message],
        options,
        batch: false,
        fingerprint,
    };
    publish_options::store(&state, prepared).await
}

/// Turns one request into a message, validating everything the client
/// controls; shared by every publish route.
pub(crate) fn parse_message(
    state: &AppState,
    topic: TopicName,
    query: &QueryPairs,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<NewMessage, ApiError> {
    let event = event_type(query)?;
    let limit = state.settings.max_message_bytes;
    let body = body.map_err(|e| body_error(e, limit))?;
    // The HTTP routes' body limit already refused larger bodies; a
    // WebSocket `publish` arrives here without one.
    if body.len() > limit {
        return Err(ApiError::too_large(format!(
            "a message body may be at most {limit} bytes"
        )));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let text = String::from_utf8(body.to_vec()).map_err(|e| {
        ApiError::bad_request(
            "invalid-body",
            "Invalid body",
            format!(
                "the body is not valid UTF-8 (byte {}); herald stores text and JSON only",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let (payload, content_type) = match content_type {
        Some(ct) if is_json(ct) => {
            let payload = Payload::json(text).map_err(|e| {
                ApiError::bad_request(
                    "invalid-json",
                    "Invalid JSON body",
                    format!("the body is not JSON that herald accepts: {e}"),
                )
            })?;
            (payload, ct.to_owned())
        }
        _ if text.contains('\0') => {
            return Err(ApiError::bad_request(
                "invalid-body",
                "Invalid body",
                "text bodies may not contain NUL bytes; send binary data encoded (e.g. base64 in JSON)",
            ));
        }
        Some(ct) => (Payload::Text(text), ct.to_owned()),
        None => (Payload::Text(text), "text/plain; charset=utf-8".to_owned()),
    };
    Ok(NewMessage {
        topic,
        event,
        payload,
        content_type,
        ttl: None,
        priority: Priority::DEFAULT,
        key: None,
    })
}

/// The message's time to live: `?ttl=`, else the topic's `message_ttl`.
pub(crate) fn ttl(query: &QueryPairs, rules: &TopicRules) -> Result<Option<Duration>, ApiError> {
    let Some(raw) = query.one("ttl")? else {
        return Ok(rules.config.message_ttl.map(|d| d.0));
    };
    match HumanDuration::parse(raw) {
        Ok(d) if d.0 >= Duration::from_secs(1) => Ok(Some(d.0)),
        Ok(_) => Err(ApiError::bad_request(
            "invalid-query",
            "Invalid query parameter",
            "`ttl` must be at least 1s",
        )),
        Err(e) => Err(ApiError::bad_request(
            "invalid-query",
            "Invalid query parameter",
            format!("`ttl`: {e}"),
        )),
    }
}

/// Checks payloads against the topic's schema, if it has one: text is
/// `415`, JSON that does not validate is `422` with every violation (with
/// the message's index when there are several), and so is a check that
/// takes longer than its budget ([`crate::topics::schema::CHECK_BUDGET`]);
/// `503` when every checking thread stays busy that long.
pub(crate) async fn check_schema<'a>(
    rules: &TopicRules,
    payloads: impl ExactSizeIterator<Item = &'a Payload>,
) -> Result<(), ApiError> {
    let Some(schema) = &rules.schema else {
        return Ok(());
    };
    let many = payloads.len() > 1;
    let mut texts = Vec::with_capacity(payloads.len());
    for p in payloads {
        let Payload::Json(text) = p else {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "this topic has a JSON Schema: send JSON (Content-Type: application/json)",
            ));
        };
        texts.push(text.clone());
    }
    let errors = match schema::check_all(schema.clone(), texts, many).await {
        Ok(errors) => errors,
        Err(schema::Unchecked::OverBudget) => return Err(over_budget()),
        Err(schema::Unchecked::Busy) => {
            return Err(ApiError::unavailable(
                "every schema-checking thread is busy; try again shortly",
            ));
        }
    };
    if errors.is_empty() {
        return Ok(());
    }
    let first = &errors[0];
    let detail = format!(
        "{} does not satisfy the topic's schema: {} at \"{}\"",
        if many { "a message" } else { "the message" },
        first.message,
        first.path
    );
    Err(ApiError::schema_violations(detail, errors))
}

fn over_budget() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "schema-budget",
        "Schema check over budget",
        format!(
            "checking this publish against the topic's schema would take more than {} \
             subschema checks or {} ms; nothing was stored (send smaller payloads, or \
             simplify the schema)",
            schema::MAX_CHECK_WORK,
            schema::CHECK_BUDGET.as_millis()
        ),
    )
}

/// The `?event=` of a publish, `message` when absent.
pub(crate) fn event_type(query: &QueryPairs) -> Result<EventType, ApiError> {
    match query.one("event")? {
        Some(e) => {
            let event = EventType::parse(e).map_err(|e| {
                ApiError::bad_request("invalid-event", "Invalid event type", e.to_string())
            })?;
            if event.is_reserved() {
                return Err(ApiError::bad_request(
                    "invalid-event",
                    "Invalid event type",
                    format!(
                        "event type {e:?} is herald's own (reserved: {}); choose another name",
                        EventType::RESERVED.join(", ")
                    ),
                ));
            }
            Ok(event)
        }
        None => Ok(EventType::message()),
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn body_error(e: BytesRejection, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(format!("a message body may be at most {limit} bytes"))
    } else {
        ApiError::bad_request("invalid-body", "Invalid body", e.body_text())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_content_types_are_recognised() {
        for ct in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/cloudevents+json",
        ] {
            assert!(super::is_json(ct), "{ct}");
        }
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "text/json-ish",
        ] {
            assert!(!super::is_json(ct), "{ct}");
        }
    }
}
