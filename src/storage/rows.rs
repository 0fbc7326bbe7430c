//! Rows as the SQL of both backends reads them, and their checked
//! conversion to domain values: anything stored that does not parse is
//! corrupt data ([`StoreError::Corrupt`]).

use super::{StoreError, TopicInfo};
use crate::domain::{Message, OrderingKey, Position, Priority, Timestamp, TopicName};

/// The columns of `messages`, in [`MessageRow`]'s order.
pub const MESSAGE_COLUMNS: &str = "position, topic, seq, event, is_json, payload, content_type, \
     time_us, expires_us, priority, msg_key";

/// A row of `messages`, the same on both backends (public only because
/// the SQL shared by both backends names it in its bounds).
#[doc(hidden)]
#[derive(sqlx::FromRow)]
pub struct MessageRow {
    position: i64,
    topic: String,
    seq: i64,
    event: String,
    is_json: bool,
    payload: String,
    content_type: String,
    time_us: i64,
    expires_us: Option<i64>,
    priority: i16,
    msg_key: Option<String>,
}

impl TryFrom<MessageRow> for Message {
    type Error = StoreError;

    fn try_from(r: MessageRow) -> Result<Self, StoreError> {
        let f = StoredFields::check(
            &r.topic, &r.event, r.is_json, r.payload, r.priority, r.msg_key,
        )
        .map_err(StoreError::Corrupt)?;
        Ok(Message::new(
            Position(r.position),
            f.topic,
            r.seq,
            Timestamp(r.time_us),
            f.event,
            f.payload,
            r.content_type,
        )
        .expiring(r.expires_us.map(Timestamp))
        .with_options(f.priority, f.key))
    }
}

/// What a stored message and a stored schedule have in common, read back
/// and checked: any of it that does not parse is corrupt data.
pub(crate) struct StoredFields {
    pub topic: TopicName,
    pub event: crate::domain::EventType,
    pub payload: crate::domain::Payload,
    pub priority: Priority,
    pub key: Option<OrderingKey>,
}

impl StoredFields {
    pub(crate) fn check(
        topic: &str,
        event: &str,
        is_json: bool,
        payload: String,
        priority: i16,
        key: Option<String>,
    ) -> Result<Self, String> {
        use crate::domain::{EventType, Payload};
        Ok(Self {
            topic: TopicName::parse(topic).map_err(|e| e.to_string())?,
            event: EventType::parse(event).map_err(|e| e.to_string())?,
            payload: if is_json {
                Payload::Json(payload)
            } else {
                Payload::Text(payload)
            },
            priority: u8::try_from(priority)
                .ok()
                .and_then(Priority::new)
                .ok_or_else(|| format!("priority {priority} out of 1-5"))?,
            key: key
                .map(|k| OrderingKey::parse(&k).map_err(|e| e.to_string()))
                .transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct TopicRow {
    name: String,
    last_seq: i64,
    message_count: i64,
    created_us: i64,
    last_published_us: Option<i64>,
    config: Option<String>,
}

impl TryFrom<TopicRow> for TopicInfo {
    type Error = StoreError;

    fn try_from(r: TopicRow) -> Result<Self, StoreError> {
        Ok(TopicInfo {
            name: TopicName::parse(&r.name).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            last_seq: r.last_seq,
            message_count: r.message_count,
            created: Timestamp(r.created_us),
            last_published: r.last_published_us.map(Timestamp),
            config: r.config,
        })
    }
}

pub(super) fn rows_to_messages(rows: Vec<MessageRow>) -> Result<Vec<Message>, StoreError> {
    rows.into_iter().map(Message::try_from).collect()
}
