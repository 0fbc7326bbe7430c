//! `GET /topics/{topic}/messages?after=ID&limit=N&filter=EXPR`: history as
//! JSON, for clients that poll instead of streaming.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::{BufMut, BytesMut};

use super::AppState;
use super::error::ApiError;
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
/// the following page (it stays put when there is nothing new).
pub async fn history(
    State(state): State<AppState>,
    ApiPath(topic): ApiPath<String>,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let topic = TopicName::parse(&topic)?;
    let after = query
        .one("after")?
        .map(Cursor::parse)
        .transpose()?
        .unwrap_or(Cursor::Earliest)
        .after();
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
    body.put_slice(format!("],\"next\":{next}}}").as_bytes());
    let mut response = Response::new(Body::from(body.freeze()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
