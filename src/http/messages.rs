//! `GET /topics/{topic}/messages?after=ID&limit=N&filter=EXPR`: history as
//! JSON, for clients that poll instead of streaming.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::{BufMut, BytesMut};

use super::AppState;
use super::error::ApiError;
use super::error::Problem;
use super::extract::{ApiPath, QueryPairs};
use crate::domain::{Cursor, TopicName, TopicSelector};

/// Rows read per storage query while filtering.
const SCAN_PAGE: u32 = 1000;
/// Most rows one request scans for a filter; past that it answers with
/// what it found and a `next` that continues the scan.
const SCAN_LIMIT: usize = 20_000;

/// Messages of the topic after `after` (a message id, or `earliest`, the
/// default), oldest first, at most `limit` (default 100), matching
/// `filter` when one is given. The answer is
/// `{"messages": [envelope, …], "next": ID}`; pass `next` as `after` for
/// the following page (it stays put when there is nothing new). When
/// retention removed messages of the topic after `after`, the answer says
/// so: `"gap": {"after", "lost_through"}`.
#[utoipa::path(
    get, path = "/topics/{topic}/messages", tag = "messages",
    summary = "Read a topic's history (polling)",
    params(("topic" = String, Path, description = "Topic name: 1-128 characters of A-Z a-z 0-9 _ - with . between levels", pattern = r"^(\$herald\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", min_length = 1, max_length = 128, example = "orders.eu"),
        ("after" = Option<String>, Query, description = "A message id, or `earliest` (the default)"),
        ("limit" = Option<u32>, Query, description = "At most this many messages (1 to --history-max-limit, default 100)", minimum = 1, maximum = 1000),
        ("filter" = Option<String>, Query, description = "Filter expression over data, topic, event, seq, e.g. `data.total > 100`; at most 1024 bytes", max_length = 1024)),
    responses(
        (status = 200, description = "Messages oldest first", body = super::openapi::MessagesPage),
        (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem),
        (status = 431, description = "The request head (URL and headers) is larger than --http-max-header-bytes; answered by the HTTP layer itself, before routing, as problem+json (headers-too-large)", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn history(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    ApiPath(topic): ApiPath<String>,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let topic = TopicName::parse(&topic)?;
    caller.require_subscribe(&TopicSelector::single(&topic))?;
    let cursor = query
        .one("after")?
        .map(Cursor::parse)
        .transpose()?
        .unwrap_or(Cursor::Earliest);
    let after = cursor.after();
    let limit = query
        .number("limit", 1, state.settings.history_max_limit)?
        .unwrap_or(100.min(state.settings.history_max_limit)) as usize;
    let matcher = state.matcher(TopicSelector::single(&topic), query.one("filter")?)?;
    let topics = [topic.as_str()];

    let mut found = Vec::new();
    let mut next = after;
    let mut scanned = 0;
    loop {
        // Without a filter every row counts, so read just what is needed.
        let want = if matcher.filter.is_some() {
            SCAN_PAGE
        } else {
            (limit - found.len()) as u32
        };
        let page = state.store.read(next, Some(&topics), want).await?;
        let full = page.len() == want as usize;
        scanned += page.len();
        for m in page {
            next = m.position;
            if matcher.matches(&m) {
                found.push(m);
                if found.len() == limit {
                    break;
                }
            }
        }
        if found.len() == limit || !full || scanned >= SCAN_LIMIT {
            break;
        }
    }

    // The envelopes are already encoded: splice them in rather than
    // re-serializing each payload.
    let size = found.iter().map(|m| m.payload.len() + 160).sum::<usize>();
    let mut body = BytesMut::with_capacity(64 + size);
    body.put_slice(b"{\"messages\":[");
    for (i, m) in found.iter().enumerate() {
        if i > 0 {
            body.put_u8(b',');
        }
        body.put_slice(&m.envelope());
    }
    body.put_slice(format!("],\"next\":{next}").as_bytes());
    // Like a stream's gap: retention removed messages after the cursor.
    if cursor != Cursor::Earliest {
        let lost = state.store.retention_marks(after).await?;
        if let Some((_, through)) = lost.iter().find(|(t, _)| t == topic.as_str()) {
            body.put_slice(
                format!(",\"gap\":{{\"after\":{after},\"lost_through\":{through}}}").as_bytes(),
            );
        }
    }
    body.put_slice(b"}\n");
    let mut response = Response::new(Body::from(body.freeze()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
