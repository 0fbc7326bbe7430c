//! `GET /topics/{topic}/events` and `GET /events?topic=…`: Server-Sent
//! Events streams, live or resumed from a cursor.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

use super::AppState;
use super::error::ApiError;
use super::error::Problem;
use super::extract::{ApiPath, QueryPairs};
use crate::auth::Caller;
use crate::domain::{Cursor, TopicName, TopicPattern, TopicSelector};
use crate::fanout::subscriber;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

/// One topic's stream.
#[utoipa::path(
    get, path = "/topics/{topic}/events", tag = "streams",
    summary = "Stream one topic (Server-Sent Events)",
    params(("topic" = String, Path, description = "Topic name: 1-128 characters of A-Z a-z 0-9 _ - with . between levels", pattern = r"^(\$herald\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", min_length = 1, max_length = 128, example = "orders.eu"), ("last_event_id" = Option<String>, Query, description = "Resume after this message id, or `earliest`; the Last-Event-ID header wins"), ("filter" = Option<String>, Query, description = "Filter expression over data, topic, event, seq, e.g. `data.total > 100`; at most 1024 bytes", max_length = 1024), ("Last-Event-ID" = Option<String>, Header, description = "Resume after this message id (what EventSource sends when it reconnects), or `earliest`"),
        ("client" = Option<String>, Query, description = "This stream's label in presence when the caller has no token subject (at most 64 characters)", max_length = 64),
        ("presence" = Option<bool>, Query, description = "`true`: also send `event: join` and `event: leave` (data `{\"topic\",\"client\",\"connection\",\"time\"}`, no `id:` line) as streams of these topics open and close, on every node")),
    responses(
        (status = 200, description = "An SSE stream (its `Herald-Connection` header is its connection id in presence; `Herald-Start-After` is the id it starts after, so a client that got no event yet resumes exactly with it as `Last-Event-ID`). Each event: `id: <message id>`, `event: <type>`, `data: <Envelope JSON>`. The stream starts with `retry:`, sends `: keep-alive` comments, and may send `event: gap` (data `{\"after\",\"oldest_available\",\"resumed_from\"}`) when history after the cursor is gone.", content_type = "text/event-stream", body = super::openapi::SseEvent,
            headers(("Herald-Connection" = String, description = "The stream's connection id in presence"),
                ("Herald-Start-After" = i64, description = "The message id the stream starts after (the log's head for a live-only stream, else the cursor)"))),
        (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem),
        (status = 429, description = "A topic of the stream has as many streams open as its `max_subscribers` (too-many-subscribers), or the client as many as --max-streams-per-client", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 431, description = "The request head (URL and headers) is larger than --http-max-header-bytes; answered by the HTTP layer itself, before routing, as problem+json (headers-too-large)", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn topic_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(topic): ApiPath<String>,
    query: QueryPairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let topic = TopicName::parse(&topic)?;
    let selector = TopicSelector::single(&topic);
    stream(&state, &caller, selector, &query, &headers).await
}

/// Several topics or patterns in one stream, in position order:
/// `?topic=a&topic=b.*` (or `?topic=a,b.*`).
#[utoipa::path(
    get, path = "/events", tag = "streams",
    summary = "Stream several topics or patterns (Server-Sent Events)",
    params(
        ("topic" = Vec<String>, Query, description = "Topic names or patterns (`*` one level, `**` one or more trailing levels); repeat the parameter or separate with commas; 1 to 64", style = Form, explode = true, min_items = 1, max_items = 64, pattern = r"^((\*|[A-Za-z0-9_-]+)\.)*(\*\*|\*|[A-Za-z0-9_-]+)$"),
        ("last_event_id" = Option<String>, Query, description = "Resume after this message id, or `earliest`; the Last-Event-ID header wins"), ("filter" = Option<String>, Query, description = "Filter expression over data, topic, event, seq, e.g. `data.total > 100`; at most 1024 bytes", max_length = 1024), ("Last-Event-ID" = Option<String>, Header, description = "Resume after this message id (what EventSource sends when it reconnects), or `earliest`"),
        ("client" = Option<String>, Query, description = "This stream's label in presence when the caller has no token subject (at most 64 characters)", max_length = 64),
        ("presence" = Option<bool>, Query, description = "`true`: also send `event: join` and `event: leave` (data `{\"topic\",\"client\",\"connection\",\"time\"}`, no `id:` line) as streams of these topics open and close, on every node")),
    responses(
        (status = 200, description = "An SSE stream (its `Herald-Connection` header is its connection id in presence; `Herald-Start-After` is the id it starts after, so a client that got no event yet resumes exactly with it as `Last-Event-ID`). Each event: `id: <message id>`, `event: <type>`, `data: <Envelope JSON>`. The stream starts with `retry:`, sends `: keep-alive` comments, and may send `event: gap` (data `{\"after\",\"oldest_available\",\"resumed_from\"}`) when history after the cursor is gone.", content_type = "text/event-stream", body = super::openapi::SseEvent,
            headers(("Herald-Connection" = String, description = "The stream's connection id in presence"),
                ("Herald-Start-After" = i64, description = "The message id the stream starts after (the log's head for a live-only stream, else the cursor)"))),
        (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem),
        (status = 429, description = "A topic of the stream has as many streams open as its `max_subscribers` (too-many-subscribers), or the client as many as --max-streams-per-client", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 431, description = "The request head (URL and headers) is larger than --http-max-header-bytes; answered by the HTTP layer itself, before routing, as problem+json (headers-too-large)", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryPairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let patterns = query
        .all("topic")
        .flat_map(|v| v.split(','))
        .map(TopicPattern::parse)
        .collect::<Result<Vec<_>, _>>()?;
    if patterns.is_empty() {
        return Err(ApiError::bad_request(
            "invalid-topic",
            "Invalid topic",
            "name at least one topic or pattern: /events?topic=orders&topic=users.*",
        ));
    }
    if patterns.len() > TopicSelector::MAX_PATTERNS {
        return Err(ApiError::bad_request(
            "invalid-topic",
            "Invalid topic",
            format!(
                "at most {} topics or patterns per stream",
                TopicSelector::MAX_PATTERNS
            ),
        ));
    }
    let selector = TopicSelector::new(patterns);
    stream(&state, &caller, selector, &query, &headers).await
}

/// The resume cursor: the `Last-Event-ID` header (what `EventSource` sends
/// when it reconnects) wins over `?last_event_id=`.
fn cursor(query: &QueryPairs, headers: &HeaderMap) -> Result<Option<Cursor>, ApiError> {
    let header = match headers.get("last-event-id") {
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::bad_request(
                "invalid-cursor",
                "Invalid cursor",
                "Last-Event-ID is not ASCII",
            )
        })?),
        None => None,
    };
    let raw = match header.filter(|v| !v.trim().is_empty()) {
        Some(h) => Some(h),
        None => query.one("last_event_id")?,
    };
    Ok(raw.map(Cursor::parse).transpose()?)
}

/// Opens the stream once the caller may read every topic it names. It
/// ends when the caller's token expires or is revoked; the client then
/// reconnects with a fresh token and resumes exactly.
async fn stream(
    state: &AppState,
    caller: &Caller,
    selector: TopicSelector,
    query: &QueryPairs,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    caller.require_subscribe(&selector)?;
    let cursor = cursor(query, headers)?;
    let topics = selector
        .patterns()
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let client = super::presence::client_label(caller, query.one("client")?)?;
    let with_presence = presence_flag(query)?;
    let matcher = state.matcher(selector.clone(), query.one("filter")?)?;
    let (slot, stop) = open_slot(state, caller)?;
    // Subscribed before joining, so a stream sees its own join.
    let events = with_presence.then(|| state.presence.events());
    let present = super::presence::join(state, client, &selector).await?;
    let connection = HeaderValue::from_str(present.connection()).ok();
    let (start_after, frames) = subscriber::open(
        &state.hub,
        state.store.clone(),
        matcher,
        cursor,
        state.settings.stream.clone(),
        stop.clone(),
        subscriber::Sse,
    )
    .await?;
    let frames: futures_util::stream::BoxStream<'static, _> = match events {
        Some(events) => {
            let caller = caller.clone();
            crate::presence::with_events(frames, events, move |c| {
                if !caller.may_see(c.topics.split(',')) {
                    return Vec::new();
                }
                c.sse_frames(&selector).into_iter().collect()
            })
            .boxed()
        }
        None => frames.boxed(),
    };
    // Dropped with the stream: frees the slot, ends the watcher above, and
    // is the stream's leave.
    let held = (slot, stop.drop_guard(), present);
    let mut log = super::request_log::StreamLog::open(&topics, cursor.is_some());
    let frames = frames.map(move |f| {
        let _ = &held;
        if let Ok(frame) = &f {
            log.count(frame);
        }
        f
    });
    let mut response = sse_response(Body::from_stream(frames));
    if let Some(id) = connection {
        response.headers_mut().insert("herald-connection", id);
    }
    response
        .headers_mut()
        .insert("herald-start-after", HeaderValue::from(start_after.0));
    Ok(response)
}

/// `?presence=true` (or `false`, the default): join and leave events.
pub(crate) fn presence_flag(query: &QueryPairs) -> Result<bool, ApiError> {
    match query.one("presence")? {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::bad_request(
            "invalid-presence",
            "Invalid presence",
            format!("presence must be true or false, not {other:?}"),
        )),
    }
}

/// A stream slot of the caller's (`--max-streams-per-client`), and a token
/// cancelled at shutdown or when the caller's token expires or is revoked.
pub(crate) fn open_slot(
    state: &AppState,
    caller: &Caller,
) -> Result<(crate::auth::limits::StreamSlot, CancellationToken), ApiError> {
    let slot = state.auth.limits.open_stream(&caller.client).map_err(|l| {
        ApiError::too_many(
            "this client has as many open streams as --max-streams-per-client allows",
            l.retry_after_secs,
        )
    })?;
    let stop = state.shutdown.child_token();
    if let Some(ends) = state.auth.access_ends(caller) {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = ends => {
                    metrics::counter!(crate::telemetry::STREAMS_ENDED_BY_AUTH).increment(1);
                    stop.cancel();
                }
                () = stop.cancelled() => {}
            }
        });
    }
    Ok((slot, stop))
}

/// An SSE response with the headers every stream sends.
pub(crate) fn sse_response(body: Body) -> Response {
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tell nginx-style proxies not to buffer the stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
