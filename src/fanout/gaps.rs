//! Exact gaps. Retention is per topic, so a stream resumed from a cursor
//! learns, topic by topic, whether any of its topics lost messages after
//! that cursor (the storage keeps each topic's highest removed position, its
//! mark). A topic that lost nothing never causes a gap; a stream told of a
//! loss once is not told again. Expired messages are not losses: they were
//! meant to go.

use std::collections::HashMap;

use bytes::Bytes;

use crate::domain::{Position, TopicSelector};
use crate::storage::{Store, StoreError};

/// What a gap check found.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    Nothing,
    /// The cursor is past the end of this log (a recreated database).
    BeyondHead(Position),
    /// These topics lost messages after the cursor: (topic, highest
    /// position removed).
    Lost(Vec<(String, i64)>),
}

/// The losses a stream has already reported, per topic.
#[derive(Debug, Default)]
pub struct Reported(HashMap<String, i64>);

/// Checks `after` against the log's head and the marks of the topics that
/// `selector` takes, leaving out what was already reported.
pub async fn check(
    store: &dyn Store,
    after: Position,
    selector: &TopicSelector,
    reported: &mut Reported,
) -> Result<Found, StoreError> {
    let head = store.head().await?;
    if after > head {
        return Ok(Found::BeyondHead(head));
    }
    let mut lost: Vec<(String, i64)> = store
        .retention_marks(after)
        .await?
        .into_iter()
        .filter(|(topic, through)| {
            selector.matches(topic) && reported.0.get(topic).is_none_or(|r| r < through)
        })
        .collect();
    if lost.is_empty() {
        return Ok(Found::Nothing);
    }
    lost.sort();
    for (topic, through) in &lost {
        reported.0.insert(topic.clone(), *through);
    }
    Ok(Found::Lost(lost))
}

/// The data of a gap for topics that lost messages after `after`. The
/// stream goes on from `after` (what the other topics kept is all still
/// there), so it resumes from `after`.
pub fn lost_data(after: Position, lost: &[(String, i64)]) -> serde_json::Value {
    let oldest = lost.iter().map(|(_, t)| t + 1).min().unwrap_or(after.0 + 1);
    let topics: Vec<serde_json::Value> = lost
        .iter()
        .map(|(t, through)| serde_json::json!({"topic": t, "lost_through": through}))
        .collect();
    serde_json::json!({
        "after": after.0,
        "oldest_available": oldest,
        "resumed_from": after.0,
        "topics": topics,
    })
}

/// The data of a gap for a cursor past the head: the stream continues
/// from the head.
pub fn beyond_head_data(after: Position, head: Position) -> serde_json::Value {
    serde_json::json!({"after": after.0, "oldest_available": head.0 + 1, "resumed_from": head.0})
}

/// `event: gap` for topics that lost messages after `after`; the `id:`
/// stays `after`.
pub fn lost_frame(after: Position, lost: &[(String, i64)]) -> Bytes {
    let data = lost_data(after, lost);
    Bytes::from(format!("id: {after}\nevent: gap\ndata: {data}\n\n"))
}

/// `event: gap` for a cursor past the head, with the head as its `id:`.
pub fn beyond_head_frame(after: Position, head: Position) -> Bytes {
    let data = beyond_head_data(after, head);
    Bytes::from(format!("id: {head}\nevent: gap\ndata: {data}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_frame_names_each_topic_and_keeps_the_cursor() {
        let f = lost_frame(Position(5), &[("a".into(), 9), ("b".into(), 7)]);
        let text = std::str::from_utf8(&f).unwrap();
        assert!(text.starts_with("id: 5\nevent: gap\ndata: "), "{text}");
        let data: serde_json::Value =
            serde_json::from_str(text.lines().nth(2).unwrap().strip_prefix("data: ").unwrap())
                .unwrap();
        assert_eq!(data["resumed_from"], 5);
        assert_eq!(data["oldest_available"], 8);
        assert_eq!(data["topics"][0]["topic"], "a");
        assert_eq!(data["topics"][1]["lost_through"], 7);
    }
}
