//! `GET /subscriptions/{id}/events`: streaming pull. An SSE stream of
//! messages leased to this connection, at most `?max_in_flight` unacked at
//! a time; each envelope carries `ack_id` and `attempt`, and acks go
//! through `POST /subscriptions/{id}/ack`. When the client goes away its
//! leases simply run out and the messages go to other consumers.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use tokio::time::Instant;

use super::super::AppState;
use super::super::error::{ApiError, Problem};
use super::super::events::{open_slot, sse_response};
use super::super::extract::{ApiId, QueryPairs};
use crate::auth::Caller;
use crate::delivery::pull::{Consumer, Woken};
use crate::domain::{AckId, Timestamp};
use crate::storage::pull::Leased;
use crate::storage::{Store, StoreError};

/// Default `max_in_flight`.
const MAX_IN_FLIGHT: u32 = 100;

#[utoipa::path(
    get, path = "/subscriptions/{id}/events", operation_id = "streaming_pull", tag = "pull",
    summary = "Streaming pull (Server-Sent Events)",
    description = "Leases messages to this stream as they become ready, at most `max_in_flight` unacked at a time (an ack on another node is noticed as soon as its notification arrives, within a second at worst). Each event: `id: <message id>`, `event: <type>`, `data: <Envelope JSON with ack_id and attempt>`. Ack with `POST /subscriptions/{id}/ack`; leases this stream holds when it closes run out at their deadline.",
    params(("id" = i64, Path, description = "Subscription id", minimum = 1),
        ("max_in_flight" = Option<u32>, Query, description = "Most unacked messages leased to this stream, 1 to 1000 (default 100)", minimum = 1, maximum = 1000)),
    responses(
        (status = 200, description = "An SSE stream of leased messages", content_type = "text/event-stream", body = super::super::openapi::SseEvent),
        (status = 400, description = "Invalid input, or not a pull subscription (the detail says what)", content_type = "application/problem+json", body = Problem),
        (status = 404, description = "No such subscription", content_type = "application/problem+json", body = Problem),
        (status = 409, description = "The subscription is paused: it leases nothing until resumed", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    ApiId(id): ApiId,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let max = query
        .number("max_in_flight", 1, 1000)?
        .unwrap_or(MAX_IN_FLIGHT);
    let consumer = super::consumer(&state, super::load_active(&state, &caller, id).await?)?;
    let (slot, stop) = open_slot(&state, &caller)?;
    let frames = frames(state, consumer, max as usize, stop.clone());
    // Dropped with the stream: frees the slot and ends the access watcher.
    let held = (slot, stop.drop_guard());
    let frames = futures_util::StreamExt::map(frames, move |f| {
        let _ = &held;
        f
    });
    Ok(sse_response(Body::from_stream(frames)))
}

/// How often a stream at its `max_in_flight` looks for acks made on other
/// nodes (acks on this node wake it at once).
const FULL_RECHECK: Duration = Duration::from_secs(1);

/// The stream: lease up to the free room, send, wait, repeat.
fn frames(
    state: AppState,
    consumer: Consumer,
    max: usize,
    stop: tokio_util::sync::CancellationToken,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let settings = state.settings.stream.clone();
    // Subscribed before the first look, so no commit is missed.
    let (mut hub, _) = state.hub.subscribe();
    let mut signals = state.pulls.subscribe();
    let store = state.store.clone();
    // Like every stream, it ends after --sse-max-duration-ms, if set; the
    // client reconnects (its leases stay until acked or run out).
    let ends = settings.max_duration.map(|d| Instant::now() + d);
    async_stream::stream! {
        yield Ok(Bytes::from(format!("retry: {}\n\n", settings.retry.as_millis())));
        let mut heartbeat = tokio::time::interval_at(
            Instant::now() + settings.heartbeat,
            settings.heartbeat,
        );
        let mut held: Vec<AckId> = Vec::new();
        loop {
            if ends.is_some_and(|e| Instant::now() >= e) {
                break;
            }
            let full = match refill(&*store, &consumer, &mut held, max).await {
                Ok(Some(chunk)) => {
                    yield Ok(chunk);
                    continue;
                }
                Ok(None) => held.len() >= max,
                Err(e) => {
                    tracing::warn!(error = %e, "streaming pull failed; closing the stream");
                    break;
                }
            };
            let idle = if full { FULL_RECHECK } else { Duration::from_secs(3600) };
            let mut until = Instant::now() + idle;
            if let Some(ends) = ends {
                until = until.min(ends);
            }
            tokio::select! {
                _ = heartbeat.tick() => yield Ok(Bytes::from_static(b": keep-alive\n\n")),
                woken = consumer.wait(&mut hub, &mut signals, until, &stop) => match woken {
                    Ok(Woken::Maybe | Woken::Deadline) => {}
                    Ok(Woken::Shutdown) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "streaming pull failed; closing the stream");
                        break;
                    }
                },
            }
        }
    }
}

/// Forgets the leases of `held` that were acked, nacked or ran out, then
/// leases up to the free room: the frames of what it leased, if anything.
async fn refill(
    store: &dyn Store,
    consumer: &Consumer,
    held: &mut Vec<AckId>,
    max: usize,
) -> Result<Option<Bytes>, StoreError> {
    if !held.is_empty() {
        let sub = consumer.subscription().id;
        *held = store.still_leased(sub, held, Timestamp::now()).await?;
    }
    let free = max.saturating_sub(held.len());
    if free == 0 {
        return Ok(None);
    }
    let (leased, _) = consumer.lease(free as u32, &[]).await?;
    if leased.is_empty() {
        return Ok(None);
    }
    let mut chunk = Vec::new();
    for l in leased {
        held.push(l.ack_id);
        chunk.extend_from_slice(&frame(&l));
    }
    Ok(Some(Bytes::from(chunk)))
}

/// `id:`, `event:` and the envelope with `ack_id` and `attempt` first.
fn frame(l: &Leased) -> Vec<u8> {
    let rest = l.envelope.strip_prefix('{').unwrap_or(&l.envelope);
    let sep = if rest.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    format!(
        "id: {}\nevent: {}\ndata: {{\"ack_id\":\"{}\",\"attempt\":{}{sep}{rest}\n\n",
        l.ack_id.position, l.event, l.ack_id, l.ack_id.attempt
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_put_the_ack_id_in_the_envelope() {
        let l = Leased {
            ack_id: AckId {
                position: 7,
                attempt: 2,
            },
            envelope: r#"{"id":7,"topic":"jobs","data":{"n":1}}"#.into(),
            event: "message".into(),
        };
        let text = String::from_utf8(frame(&l)).unwrap();
        let data = text.lines().nth(2).unwrap().strip_prefix("data: ").unwrap();
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["ack_id"], "7.2");
        assert_eq!(v["attempt"], 2);
        assert_eq!(v["data"]["n"], 1);
        assert!(text.starts_with("id: 7\nevent: message\n"));
        assert!(text.ends_with("\n\n"));
    }
}
