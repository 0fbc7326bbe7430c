//! herald's own operational events, published to the reserved topics
//! `$herald.*` like any message (stored, streamed, deliverable to
//! webhooks). Only herald publishes there (see
//! [`crate::domain::TopicName::is_reserved`]).

use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::{EventType, NewMessage, Payload, Priority, Timestamp, TopicName};
use crate::fanout::writer::Publisher;

/// A subscription was paused because it kept failing.
pub const SUBSCRIPTION_DISABLED: &str = "$herald.subscription.disabled";
/// A subscription's circuit changed state.
pub const SUBSCRIPTION_CIRCUIT: &str = "$herald.subscription.circuit";
/// A delivery became a dead letter.
pub const DELIVERY_DEAD_LETTERED: &str = "$herald.delivery.dead_lettered";

/// Publishes one operational event. Its loss is logged, never fatal: the
/// state it reports is stored and shown by the API anyway.
pub async fn emit(publisher: &Publisher, topic: &'static str, mut data: Value) {
    let Ok(name) = TopicName::parse(topic) else {
        tracing::error!(topic, "an operational topic is not a valid name");
        return;
    };
    if let Some(o) = data.as_object_mut() {
        o.insert("time".into(), json!(Timestamp::now().to_rfc3339()));
    }
    let event = topic.rsplit('.').next().unwrap_or("message");
    let message = NewMessage {
        topic: name,
        event: EventType::parse(event).unwrap_or_else(|_| EventType::message()),
        payload: Payload::Json(data.to_string()),
        content_type: "application/json".into(),
        ttl: None,
        priority: Priority::default(),
        key: None,
    };
    if let Err(e) = publisher.publish(message).await {
        tracing::warn!(topic, error = %e, "cannot publish an operational event");
    }
}

/// What `$herald.delivery.dead_lettered` says of a dead letter.
#[derive(Debug, Serialize)]
pub struct DeadLettered<'a> {
    pub subscription_id: i64,
    pub dead_letter_id: i64,
    pub message_id: i64,
    pub topic: &'a str,
    pub reason: &'a str,
    pub attempts: i32,
    /// The endpoint's last status (webhooks only).
    pub status: Option<u16>,
    pub error: Option<&'a str>,
}

/// Says that a delivery became a dead letter; not for messages on herald's
/// own topics (a failing receiver of these events would feed itself).
pub async fn dead_lettered(publisher: &Publisher, d: &DeadLettered<'_>) {
    if crate::domain::topic::is_reserved(d.topic) {
        return;
    }
    let data = serde_json::to_value(d).unwrap_or_default();
    emit(publisher, DELIVERY_DEAD_LETTERED, data).await;
}
