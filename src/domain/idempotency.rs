//! Idempotent publishes (the IETF httpapi Idempotency-Key draft): what a
//! publish with a key asks storage to record beside its messages, and the
//! answer bodies that a replay gives back byte for byte.

use sha2::{Digest, Sha256};

use super::{IdempotencyKey, Message, Timestamp, TopicName};

/// A key to record in the same transaction as the messages (or
/// schedules) it answers for. Recording fails with a duplicate-key error
/// if the topic already has a live record of it.
#[derive(Debug, Clone)]
pub struct KeyClaim {
    pub topic: TopicName,
    pub key: IdempotencyKey,
    /// What the request asked for; a repeat with another one is a `422`.
    pub fingerprint: String,
    /// A batch answers `{"count","messages"}`, a single publish its ack.
    pub batch: bool,
    /// Records created before this are past the window: replaced, not
    /// replayed.
    pub stale_before: Timestamp,
}

/// A recorded answer: its status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
}

/// The SHA-256 (base64url) of everything that shapes what a publish stores:
/// the route, the options in the query (but never `access_token`), the
/// content type and the body.
pub fn fingerprint(
    route: &str,
    query: &[(String, String)],
    content_type: &str,
    body: &[u8],
) -> String {
    let mut pairs: Vec<&(String, String)> =
        query.iter().filter(|(k, _)| k != "access_token").collect();
    pairs.sort();
    let mut h = Sha256::new();
    for part in [route.as_bytes(), content_type.as_bytes()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    for (k, v) in pairs {
        for part in [k.as_bytes(), v.as_bytes()] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
    }
    h.update(body);
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
}

/// One message's acknowledgement, in the field order of the live answer
/// (`fanout::Ack`), so a replay is byte for byte the original.
#[derive(serde::Serialize, Clone)]
struct AckBody<'a> {
    id: i64,
    topic: &'a str,
    seq: i64,
    time: String,
}

/// A batch's answer, in the field order of `http::batch::BatchAck`.
#[derive(serde::Serialize)]
struct BatchBody<T> {
    count: usize,
    #[serde(flatten)]
    items: T,
}

#[derive(serde::Serialize)]
struct Messages<'a> {
    messages: Vec<AckBody<'a>>,
}

#[derive(serde::Serialize, Clone)]
struct ScheduleBody<'a> {
    schedule_id: i64,
    topic: &'a str,
    deliver_at: String,
}

#[derive(serde::Serialize)]
struct Schedules<'a> {
    scheduled: Vec<ScheduleBody<'a>>,
}

/// The `201` body of a publish: the ack of a single message, or a batch's
/// `{"count","messages"}`; the same bytes as the live answer.
pub fn published_body(messages: &[Message], batch: bool) -> String {
    let acks: Vec<AckBody<'_>> = messages
        .iter()
        .map(|m| AckBody {
            id: m.position.0,
            topic: m.topic.as_str(),
            seq: m.seq,
            time: m.time.to_rfc3339(),
        })
        .collect();
    to_json(&acks, batch, |messages| Messages { messages })
}

/// The `202` body of a scheduled publish: one schedule, or a batch's
/// `{"count","scheduled"}`. Both the live answer and a replay use it.
pub fn scheduled_body(
    ids: &[i64],
    topic: &TopicName,
    deliver_at: Timestamp,
    batch: bool,
) -> String {
    let items: Vec<ScheduleBody<'_>> = ids
        .iter()
        .map(|id| ScheduleBody {
            schedule_id: *id,
            topic: topic.as_str(),
            deliver_at: deliver_at.to_rfc3339(),
        })
        .collect();
    to_json(&items, batch, |scheduled| Schedules { scheduled })
}

fn to_json<T: serde::Serialize + Clone, W: serde::Serialize>(
    items: &[T],
    batch: bool,
    wrap: impl FnOnce(Vec<T>) -> W,
) -> String {
    let text = match (batch, items) {
        (false, [one]) => serde_json::to_string(one),
        _ => serde_json::to_string(&BatchBody {
            count: items.len(),
            items: wrap(items.to_vec()),
        }),
    };
    // Plain structs of strings and integers always serialize.
    text.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_ignores_the_token_and_query_order_but_not_the_body() {
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let a = fingerprint(
            "t",
            &q(&[("event", "x"), ("ttl", "1m")]),
            "text/plain",
            b"hi",
        );
        let b = fingerprint(
            "t",
            &q(&[("ttl", "1m"), ("access_token", "s"), ("event", "x")]),
            "text/plain",
            b"hi",
        );
        assert_eq!(a, b);
        assert_ne!(
            a,
            fingerprint(
                "t",
                &q(&[("event", "x"), ("ttl", "1m")]),
                "text/plain",
                b"ho"
            )
        );
        assert_ne!(
            a,
            fingerprint(
                "t",
                &q(&[("event", "y"), ("ttl", "1m")]),
                "text/plain",
                b"hi"
            )
        );
        assert_ne!(
            a,
            fingerprint(
                "t/batch",
                &q(&[("event", "x"), ("ttl", "1m")]),
                "text/plain",
                b"hi"
            )
        );
    }
}
