//! Pull subscriptions (consumer groups with acks):
//! `POST /subscriptions/{id}/pull|ack|nack|extend|seek`, and what creating
//! and showing a pull subscription adds to [`super::subscriptions`].
//! Streaming pull (`GET /subscriptions/{id}/events`) is in [`stream`].
//! Only the subscription's owner (or an admin) may use these.

pub mod acks;
pub mod stream;

use std::time::Duration;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{ApiId, ApiJson};
use super::json::Json;
use super::subscriptions::{CreateSubscription, invalid, parse_start};
use crate::auth::Caller;
use crate::delivery::pull::{Consumer, Woken};
use crate::domain::{HumanDuration, Timestamp};
use crate::storage::pull::Leased;
use crate::storage::webhooks::{DeliveryCounts, MODE_PULL, Subscription};

/// Default and bounds of `ack_deadline`.
const ACK_DEADLINE: (Duration, Duration, Duration) = (
    Duration::from_secs(30),
    Duration::from_secs(1),
    Duration::from_secs(600),
);
/// Most messages per pull, and most ack ids per request.
const MAX_MESSAGES: i64 = 1000;
/// Longest long poll.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// Longest nack delay: one day.
const MAX_DELAY: Duration = Duration::from_secs(86_400);

/// Mode, url, secret and ack deadline of a new pull subscription.
pub(crate) fn create_fields(
    body: &CreateSubscription,
) -> Result<(&'static str, String, String, i64), ApiError> {
    if body.url.is_some() {
        return Err(invalid(
            "a pull subscription has no url (consumers pull its messages); \
             leave out \"mode\" for a webhook",
        ));
    }
    for (field, given) in [
        ("secret", body.secret.is_some()),
        ("timeout_ms", body.timeout_ms.is_some()),
    ] {
        if given {
            return Err(invalid(format!(
                "{field} is for push (webhook) subscriptions"
            )));
        }
    }
    let deadline = match &body.ack_deadline {
        Some(d) => parse_ack_deadline(d)?,
        None => ACK_DEADLINE.0.as_millis() as i64,
    };
    Ok((MODE_PULL, String::new(), String::new(), deadline))
}

/// Checks what PATCH can change on a pull subscription.
pub(crate) fn check(s: &Subscription) -> Result<(), ApiError> {
    if !s.url.is_empty() {
        return Err(invalid("a pull subscription has no url"));
    }
    Ok(())
}

/// An `ack_deadline`, in milliseconds.
pub(crate) fn parse_ack_deadline(text: &str) -> Result<i64, ApiError> {
    let (_, min, max) = ACK_DEADLINE;
    duration_in("ack_deadline", text, min, max).map(|d| d.as_millis() as i64)
}

fn duration_in(
    field: &str,
    text: &str,
    min: Duration,
    max: Duration,
) -> Result<Duration, ApiError> {
    let d = HumanDuration::parse(text).map_err(|e| invalid(format!("{field}: {e}")))?;
    if d.0 < min || d.0 > max {
        return Err(invalid(format!(
            "{field} must be {} to {}",
            HumanDuration(min),
            HumanDuration(max)
        )));
    }
    Ok(d.0)
}

/// Milliseconds as a duration string (`30000` → `"30s"`).
pub(crate) fn show_duration(ms: i64) -> String {
    HumanDuration(Duration::from_millis(ms.max(0) as u64)).to_string()
}

/// What `GET /subscriptions/{id}` adds for a pull subscription (absent
/// for webhooks, and in lists).
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct PullStatsView {
    /// Matched messages waiting for a consumer: not leased now (due, or
    /// waiting out a nack's delay). Messages committed since the last
    /// dispatch (which follows each commit) are not counted yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backlog: Option<i64>,
    /// Leased to a consumer now, not acked yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<i64>,
    /// Age of the oldest message not acked yet; null when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_unacked_age_ms: Option<Option<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acked: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_lettered: Option<i64>,
    /// Dropped unsent because their message expired first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired: Option<i64>,
}

pub(crate) async fn stats(
    state: &AppState,
    sub: &Subscription,
    counts: &DeliveryCounts,
) -> Result<PullStatsView, ApiError> {
    let now = Timestamp::now();
    let s = state.store.pull_stats(sub.id, now).await?;
    Ok(PullStatsView {
        backlog: Some(s.backlog),
        in_flight: Some(s.in_flight),
        oldest_unacked_age_ms: Some(s.oldest_us.map(|t| ((now.0 - t) / 1000).max(0))),
        acked: Some(sub.delivered),
        dead_lettered: Some(counts.dead_lettered),
        expired: Some(sub.expired),
    })
}

/// The pull subscription, if the caller may use it and it is not paused
/// (`409`: a paused subscription leases nothing; acks, nacks and
/// extensions of what is leased still work).
async fn load_active(state: &AppState, caller: &Caller, id: i64) -> Result<Subscription, ApiError> {
    let sub = load(state, caller, id).await?;
    if sub.paused {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "subscription-paused",
            "Subscription paused",
            format!(
                "subscription {id} is paused{}: it leases nothing until it is resumed \
                 (PATCH {{\"paused\": false}}); acks of leased messages still work",
                sub.disabled_reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
        ));
    }
    Ok(sub)
}

/// The pull subscription, if the caller may use it.
async fn load(state: &AppState, caller: &Caller, id: i64) -> Result<Subscription, ApiError> {
    let sub = super::subscriptions::load(state, caller, id).await?;
    if !sub.is_pull() {
        return Err(ApiError::bad_request(
            "not-a-pull-subscription",
            "Not a pull subscription",
            format!(
                "subscription {id} is a webhook (push) subscription: herald delivers its messages"
            ),
        ));
    }
    Ok(sub)
}

pub(crate) fn consumer(state: &AppState, sub: Subscription) -> Result<Consumer, ApiError> {
    Consumer::new(
        state.store.clone(),
        &state.filters,
        state.publisher.clone(),
        sub,
    )
    .map_err(|e| {
        tracing::error!(error = %e, "a stored subscription cannot be matched");
        ApiError::internal()
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"max_messages": 10, "wait": "1s"}))]
pub struct PullRequest {
    /// 1 to 1000 (default 1).
    #[schema(minimum = 1, maximum = 1000)]
    pub max_messages: Option<i64>,
    /// How long to wait when nothing is ready, `"0s"` (default) to `"30s"`.
    #[schema(example = "1s")]
    pub wait: Option<String>,
    /// Ack these first (up to 1000, as pulled; an empty list acks
    /// nothing), in the same transaction as the lease: a worker hands in
    /// its last batch and takes the next one in one request. The answer's
    /// `acks` says what took.
    #[schema(max_items = 1000)]
    pub ack_ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Pulled {
    /// Pass to ack, nack or extend (opaque).
    #[schema(example = "42.1")]
    pub ack_id: String,
    /// 1 for the first delivery, one more for each redelivery.
    pub attempt: i32,
    #[schema(value_type = super::openapi::Envelope)]
    pub message: Box<RawValue>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PullResponse {
    pub messages: Vec<Pulled>,
    /// With `ack_ids` in the request: what was acked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acks: Option<acks::AckResponse>,
}

fn pulled(l: Leased) -> Result<Pulled, ApiError> {
    Ok(Pulled {
        ack_id: l.ack_id.to_string(),
        attempt: l.ack_id.attempt,
        message: RawValue::from_string(l.envelope).map_err(|e| {
            tracing::error!(error = %e, "a stored envelope is not JSON");
            ApiError::internal()
        })?,
    })
}

#[utoipa::path(
    post, path = "/subscriptions/{id}/pull", tag = "pull", summary = "Lease messages of a pull subscription",
    description = "Answers at once when messages are ready; otherwise waits up to `wait` for one: it wakes when a matching message is published, or a nack, seek or redrive makes one due, on any node. Each message is leased to this consumer until the subscription's ack deadline: ack it before then, or it is delivered again (`attempt` + 1).",
    params(("id" = i64, Path, description = "Subscription id", minimum = 1)),
    request_body = PullRequest,
    responses((status = 200, description = "Leased messages (none when `wait` passed first)", body = PullResponse), (status = 400, description = "Invalid input, or not a pull subscription (the detail says what)", content_type = "application/problem+json", body = Problem), (status = 404, description = "No such subscription", content_type = "application/problem+json", body = Problem), (status = 409, description = "The subscription is paused: it leases nothing until resumed (the request's `ack_ids` are not applied; `POST /ack` still works)", content_type = "application/problem+json", body = Problem), (status = 413, description = "The body is too large", content_type = "application/problem+json", body = Problem), (status = 415, description = "The body is not JSON", content_type = "application/problem+json", body = Problem), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))))
)]
pub async fn pull(
    State(state): State<AppState>,
    caller: Caller,
    ApiId(id): ApiId,
    ApiJson(body): ApiJson<PullRequest>,
) -> Result<Json<PullResponse>, ApiError> {
    let n = body.max_messages.unwrap_or(1);
    if !(1..=MAX_MESSAGES).contains(&n) {
        return Err(invalid(format!("max_messages must be 1 to {MAX_MESSAGES}")));
    }
    let wait = match &body.wait {
        Some(w) => duration_in("wait", w, Duration::ZERO, MAX_WAIT)?,
        None => Duration::ZERO,
    };
    let asked = body.ack_ids.as_deref().map(acks::ack_ids).transpose()?;
    let consumer = consumer(&state, load_active(&state, &caller, id).await?)?;
    // Subscribe before looking, so no commit between the two is missed.
    let (mut hub, _) = state.hub.subscribe();
    let mut signals = state.pulls.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    let mut to_ack = asked.as_deref().unwrap_or_default();
    let mut acked = Vec::new();
    loop {
        let (leased, mut took) = consumer.lease(n as u32, to_ack).await?;
        if !took.is_empty() {
            // Streams at their max_in_flight may take more now.
            state.pulls.changed();
        }
        acked.append(&mut took);
        to_ack = &[];
        let answer = |messages| {
            let acks = asked.as_ref().map(|asked| acks::AckResponse {
                acked: acked.len(),
                unknown: acks::unknown(asked, &acked),
            });
            Json(PullResponse { messages, acks })
        };
        if !leased.is_empty() {
            let messages = leased.into_iter().map(pulled).collect::<Result<_, _>>()?;
            return Ok(answer(messages));
        }
        match consumer
            .wait(&mut hub, &mut signals, deadline, &state.shutdown)
            .await?
        {
            Woken::Maybe => continue,
            Woken::Deadline | Woken::Shutdown => return Ok(answer(vec![])),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"to": "earliest"}))]
pub struct SeekRequest {
    /// `"earliest"` (all retained messages again), `"head"` (only new
    /// ones), or a message id to continue after.
    #[schema(value_type = SeekTarget, example = "earliest")]
    pub to: Value,
}

/// Where a seek goes: `"earliest"`, `"head"` or a message id.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes `SeekRequest::to`
#[serde(untagged)]
pub enum SeekTarget {
    /// `earliest` or `head`.
    Point(SeekPoint),
    /// A message id to continue after.
    After(i64),
}

/// A named point of the log to seek to.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes `SeekRequest::to`
#[serde(rename_all = "lowercase")]
pub enum SeekPoint {
    Earliest,
    Head,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeekResponse {
    /// The message id the subscription now continues after.
    pub cursor: i64,
}

#[utoipa::path(
    post, path = "/subscriptions/{id}/seek", tag = "pull", summary = "Move a pull subscription in the log",
    description = "Discards the subscription's pending messages and leases (acks of them then report them unknown) and continues after the given point.",
    params(("id" = i64, Path, description = "Subscription id", minimum = 1)),
    request_body = SeekRequest,
    responses((status = 200, description = "Moved", body = SeekResponse), (status = 400, description = "Invalid input, or not a pull subscription (the detail says what)", content_type = "application/problem+json", body = Problem), (status = 404, description = "No such subscription", content_type = "application/problem+json", body = Problem), (status = 413, description = "The body is too large", content_type = "application/problem+json", body = Problem), (status = 415, description = "The body is not JSON", content_type = "application/problem+json", body = Problem), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))))
)]
pub async fn seek(
    State(state): State<AppState>,
    caller: Caller,
    ApiId(id): ApiId,
    ApiJson(body): ApiJson<SeekRequest>,
) -> Result<Json<SeekResponse>, ApiError> {
    let to = parse_start(&body.to)
        .ok_or_else(|| invalid("to is \"earliest\", \"head\" or a message id"))?;
    load(&state, &caller, id).await?;
    if !state.store.seek(id, to, Timestamp::now()).await? {
        return Err(ApiError::not_found(format!("no subscription {id}")));
    }
    state.pulls.changed();
    let sub = load(&state, &caller, id).await?;
    Ok(Json(SeekResponse { cursor: sub.cursor }))
}
