//! `GET /topics/{topic}/messages?after=ID&limit=N`: history as JSON, for
//! clients that poll instead of streaming.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::{BufMut, BytesMut};

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiPath, QueryPairs};
use crate::domain::{Cursor, TopicName};

/// Messages of the topic after `after` (a message id, or `earliest`, the
/// default), oldest first, at most `limit` (default 100). The answer is
/// `{"messages": [envelope, …], "next": ID}`; pass `next` as `after` to
/// get the following page (it stays put when there is nothing new).
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
        .unwrap_or(100.min(state.settings.history_max_limit));
    let messages = state
        .store
        .read(after, Some(&[topic.as_str()]), limit)
        .await?;
    let next = messages.last().map_or(after, |m| m.position);

    // The envelopes are already encoded: splice them in rather than
    // re-serializing each payload.
    let mut body = BytesMut::with_capacity(
        64 + messages
            .iter()
            .map(|m| m.payload.len() + 160)
            .sum::<usize>(),
    );
    body.put_slice(b"{\"messages\":[");
    for (i, m) in messages.iter().enumerate() {
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
