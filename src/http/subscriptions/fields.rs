//! What creating a subscription reads beyond the request body's types:
//! where it starts, and the fields only push subscriptions have.

use serde_json::Value;

use super::{CreateSubscription, invalid};
use crate::domain::webhook::Secret;
use crate::domain::{Cursor, EventType, Timestamp};
use crate::http::error::ApiError;
use crate::storage::webhooks::{CIRCUIT_CLOSED, MODE_PUSH, NewSubscription, Start, Subscription};

/// `"head"`, `"earliest"`, a message id, or its string.
pub(crate) fn parse_start(v: &Value) -> Option<Start> {
    match v {
        Value::String(s) if s == "head" => Some(Start::Head),
        Value::String(s) => match Cursor::parse(s) {
            Ok(Cursor::Earliest) => Some(Start::Earliest),
            Ok(Cursor::After(p)) => Some(Start::After(p.0)),
            Err(_) => None,
        },
        Value::Number(n) => n.as_i64().filter(|n| *n >= 0).map(Start::After),
        _ => None,
    }
}

/// Mode, url, secret and ack deadline of a push subscription.
pub(super) fn push_fields(
    body: &CreateSubscription,
) -> Result<(&'static str, String, String, i64), ApiError> {
    let url = body.url.clone().ok_or_else(|| {
        invalid("url is required (or create a pull subscription with \"mode\": \"pull\")")
    })?;
    if body.ack_deadline.is_some() {
        return Err(invalid(
            "ack_deadline is for pull subscriptions (\"mode\": \"pull\")",
        ));
    }
    let secret = match &body.secret {
        Some(s) => Secret::parse(s).map_err(|e| invalid(format!("secret: {e}")))?,
        None => Secret::generate(),
    };
    Ok((MODE_PUSH, url, secret.as_str().to_owned(), 0))
}

/// A subscription as it would be stored, for [`check`].
pub(super) fn draft(new: &NewSubscription, now: Timestamp) -> Subscription {
    Subscription {
        id: 0,
        topic: new.topic.clone(),
        filter: new.filter.clone(),
        url: new.url.clone(),
        secret: new.secret.clone(),
        max_attempts: new.max_attempts,
        min_backoff_ms: new.min_backoff_ms,
        max_backoff_ms: new.max_backoff_ms,
        timeout_ms: new.timeout_ms,
        paused: new.paused,
        cursor: 0,
        delivered: 0,
        created_us: now.0,
        updated_us: now.0,
        expired: 0,
        owner: new.owner.clone(),
        owner_expires_us: new.owner_expires_us,
        mode: new.mode.clone(),
        ack_deadline_ms: new.ack_deadline_ms,
        ordered: new.ordered,
        event_types: new.event_types.clone(),
        rate_limit: new.rate_limit,
        previous_secret: None,
        previous_secret_until_us: None,
        circuit: CIRCUIT_CLOSED.into(),
        circuit_until_us: None,
        failing_since_us: None,
        disabled_reason: None,
    }
}

/// The most event types one subscription may name.
const MAX_EVENT_TYPES: usize = 64;
/// The highest `rate_limit`, deliveries per second.
const MAX_RATE_LIMIT: i32 = 10_000;

/// Checks `event_types` and stores them as a JSON array (without
/// repeats); `None` takes every event.
pub(super) fn event_types(types: Option<&[String]>) -> Result<Option<String>, ApiError> {
    let Some(types) = types else {
        return Ok(None);
    };
    if types.is_empty() || types.len() > MAX_EVENT_TYPES {
        return Err(invalid(format!(
            "event_types names 1 to {MAX_EVENT_TYPES} events (omit it, or set null, for every event)"
        )));
    }
    let mut unique: Vec<&str> = Vec::with_capacity(types.len());
    for t in types {
        EventType::parse(t).map_err(|e| invalid(format!("event_types: {e}")))?;
        if !unique.contains(&t.as_str()) {
            unique.push(t);
        }
    }
    Ok(Some(
        serde_json::to_string(&unique).expect("strings serialize"),
    ))
}

/// `rate_limit` is for push subscriptions, 1 to [`MAX_RATE_LIMIT`].
pub(super) fn check_rate_limit(s: &Subscription) -> Result<(), ApiError> {
    match s.rate_limit {
        None => Ok(()),
        Some(_) if s.is_pull() => Err(invalid(
            "rate_limit is for push (webhook) subscriptions; a pull consumer sets its own pace",
        )),
        Some(n) if (1..=MAX_RATE_LIMIT).contains(&n) => Ok(()),
        Some(n) => Err(invalid(format!(
            "rate_limit is 1 to {MAX_RATE_LIMIT} deliveries per second, not {n}"
        ))),
    }
}
