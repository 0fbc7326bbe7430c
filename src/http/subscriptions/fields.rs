//! What creating a subscription reads beyond the request body's types:
//! where it starts, and the fields only push subscriptions have.

use serde_json::Value;

use super::{CreateSubscription, invalid};
use crate::domain::webhook::Secret;
use crate::domain::{Cursor, Timestamp};
use crate::http::error::ApiError;
use crate::storage::webhooks::{MODE_PUSH, NewSubscription, Start, Subscription};

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
    }
}
