//! The publish options shared by `POST /topics/{topic}` and `/batch`:
//! `?priority=`, `?key=`, `?delay=`/`?at=` (a scheduled publish) and the
//! `Idempotency-Key` header. [`store`] carries a parsed publish through
//! them: replay or refuse a repeated key, schedule or publish, answer.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::extract::QueryPairs;
use crate::domain::idempotency::{self, KeyClaim, Recorded};
use crate::domain::{
    HumanDuration, IdempotencyKey, NewMessage, OrderingKey, Priority, Timestamp, TopicName,
};
use crate::fanout::PublishError;

/// What the query and headers ask of a publish, validated.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub priority: Priority,
    pub key: Option<OrderingKey>,
    /// Scheduled: appended at (or just after) this time.
    pub deliver_at: Option<Timestamp>,
    pub idempotency: Option<IdempotencyKey>,
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid-query", "Invalid query parameter", detail)
}

impl Options {
    pub fn parse(
        state: &AppState,
        query: &QueryPairs,
        headers: &HeaderMap,
    ) -> Result<Self, ApiError> {
        let priority = match query.one("priority")? {
            Some(p) => Priority::parse(p).map_err(|e| invalid(format!("`priority`: {e}")))?,
            None => Priority::DEFAULT,
        };
        let key = query
            .one("key")?
            .map(|k| OrderingKey::parse(k).map_err(|e| invalid(format!("`key`: {e}"))))
            .transpose()?;
        let max = state.settings.schedule_max_delay;
        let deliver_at = match (query.one("delay")?, query.one("at")?) {
            (Some(_), Some(_)) => return Err(invalid("give `delay` or `at`, not both")),
            (Some(d), None) => Some(delay(d, max)?),
            (None, Some(at)) => Some(at_time(at, max)?),
            (None, None) => None,
        };
        let idempotency = match headers
            .get_all("idempotency-key")
            .iter()
            .collect::<Vec<_>>()[..]
        {
            [] => None,
            [value] => Some(
                value
                    .to_str()
                    .ok()
                    .and_then(|v| IdempotencyKey::parse(v).ok())
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid-idempotency-key",
                            "Invalid Idempotency-Key",
                            "the Idempotency-Key must be 1-255 printable ASCII characters",
                        )
                    })?,
            ),
            _ => {
                return Err(ApiError::bad_request(
                    "invalid-idempotency-key",
                    "Invalid Idempotency-Key",
                    "give one Idempotency-Key header",
                ));
            }
        };
        Ok(Self {
            priority,
            key,
            deliver_at,
            idempotency,
        })
    }

    /// Puts the per-message options on a message.
    pub fn apply(&self, message: &mut NewMessage) {
        message.priority = self.priority;
        message.key = self.key.clone();
    }
}

fn delay(raw: &str, max: Duration) -> Result<Timestamp, ApiError> {
    let d = HumanDuration::parse(raw).map_err(|e| invalid(format!("`delay`: {e}")))?;
    if d.0 > max {
        return Err(invalid(format!(
            "`delay` may be at most {} (--schedule-max-delay)",
            HumanDuration(max)
        )));
    }
    Ok(Timestamp(Timestamp::now().0 + d.0.as_micros() as i64))
}

fn at_time(raw: &str, max: Duration) -> Result<Timestamp, ApiError> {
    let at = chrono::DateTime::parse_from_rfc3339(raw).map_err(|e| {
        invalid(format!(
            "`at` is not an RFC 3339 time such as 2026-12-01T09:00:00Z: {e}"
        ))
    })?;
    let now = Timestamp::now();
    let at = Timestamp(at.timestamp_micros());
    if at.0 - now.0 > max.as_micros() as i64 {
        return Err(invalid(format!(
            "`at` may be at most {} ahead (--schedule-max-delay)",
            HumanDuration(max)
        )));
    }
    // A time in the past is due at once.
    Ok(Timestamp(at.0.max(now.0)))
}

/// Idempotency keys whose first request is still being answered on this
/// node: a second request with one gets `409` at once.
#[derive(Default)]
pub struct InFlightKeys(Mutex<HashSet<(String, String)>>);

/// Holds a key in flight until dropped.
struct InFlight {
    keys: Arc<InFlightKeys>,
    entry: (String, String),
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut keys = self.keys.0.lock().unwrap_or_else(|e| e.into_inner());
        keys.remove(&self.entry);
    }
}

/// A publish ready to store: its messages, options, and what identifies
/// the request for an idempotency key.
pub struct Prepared {
    pub topic: TopicName,
    pub messages: Vec<NewMessage>,
    pub options: Options,
    /// A batch answers `{"count", …}` even for one message.
    pub batch: bool,
    /// See [`idempotency::fingerprint`].
    pub fingerprint: String,
}

/// Makes the request's Idempotency-Key the caller's own: the token's
/// owner (`token:ID`, `jwt:SUBJECT`), else the client's address, so that
/// another publisher can neither replay nor block a client's key.
pub fn scope_key(options: &mut Options, caller: &crate::auth::Caller) {
    if let Some(key) = &mut options.idempotency {
        let scope = caller.owner().unwrap_or_else(|| caller.client.clone());
        *key = key.scoped(&scope);
    }
}

/// Stores a prepared publish and answers it: a replay of a repeated key,
/// `201` with the ack(s), or `202` with the schedule(s).
pub async fn store(state: &AppState, p: Prepared) -> Result<Response, ApiError> {
    let (claim, _in_flight) = match &p.options.idempotency {
        Some(key) => {
            let (claim, in_flight) = start(state, &p, key)?;
            (Some(claim), Some(in_flight))
        }
        None => (None, None),
    };
    let outcome = match p.options.deliver_at {
        Some(at) => schedule(state, p.messages, &p.topic, p.batch, at, claim.clone()).await,
        None => publish(state, p.messages, p.batch, claim.clone()).await,
    };
    match (outcome, claim) {
        (Err(Duplicate), Some(claim)) => settled(state, &claim).await,
        (Err(Duplicate), None) => Err(ApiError::internal()),
        (Ok(result), _) => result,
    }
}

/// The key was recorded first by another request.
struct Duplicate;

type Outcome = Result<Result<Response, ApiError>, Duplicate>;

async fn publish(
    state: &AppState,
    messages: Vec<NewMessage>,
    batch: bool,
    claim: Option<KeyClaim>,
) -> Outcome {
    let started = std::time::Instant::now();
    match state.publisher.publish_keyed(messages, claim).await {
        Ok(acks) => {
            metrics::histogram!(crate::telemetry::PUBLISH_SECONDS)
                .record(started.elapsed().as_secs_f64());
            let body = if batch {
                serde_json::to_string(&super::batch::BatchAck {
                    count: acks.len(),
                    messages: acks,
                })
            } else {
                serde_json::to_string(&acks[0])
            };
            Ok(Ok(json(StatusCode::CREATED, body.unwrap_or_default())))
        }
        Err(PublishError::DuplicateKey) => Err(Duplicate),
        Err(e) => Ok(Err(e.into())),
    }
}

async fn schedule(
    state: &AppState,
    messages: Vec<NewMessage>,
    topic: &TopicName,
    batch: bool,
    at: Timestamp,
    claim: Option<KeyClaim>,
) -> Outcome {
    let now = Timestamp::now();
    match state.store.schedule(messages, at, claim, now).await {
        Ok(ids) => {
            state.scheduler.notify_one();
            let body = idempotency::scheduled_body(&ids, topic, at, batch);
            Ok(Ok(json(StatusCode::ACCEPTED, body)))
        }
        Err(crate::storage::StoreError::DuplicateKey) => Err(Duplicate),
        Err(e) => Ok(Err(e.into())),
    }
}

/// Begins a keyed request: a `409` while the key is in flight here;
/// otherwise the claim to record, held in flight. A key recorded before
/// is found when recording it fails ([`settled`]), so a first request
/// costs no extra read.
fn start(
    state: &AppState,
    p: &Prepared,
    key: &IdempotencyKey,
) -> Result<(KeyClaim, InFlight), ApiError> {
    let entry = (p.topic.as_str().to_owned(), key.as_str().to_owned());
    let in_flight = {
        let mut keys = state.in_flight.0.lock().unwrap_or_else(|e| e.into_inner());
        if !keys.insert(entry.clone()) {
            return Err(ApiError::key_in_flight());
        }
        InFlight {
            keys: state.in_flight.clone(),
            entry,
        }
    };
    let claim = KeyClaim {
        topic: p.topic.clone(),
        key: key.clone(),
        fingerprint: p.fingerprint.clone(),
        batch: p.batch,
        stale_before: Timestamp(
            Timestamp::now().0 - state.settings.idempotency_window.as_micros() as i64,
        ),
    };
    Ok((claim, in_flight))
}

/// The answer once another request recorded the key first.
async fn settled(state: &AppState, claim: &KeyClaim) -> Result<Response, ApiError> {
    match state
        .store
        .recorded_key(claim.topic.as_str(), claim.key.as_str(), claim.stale_before)
        .await?
    {
        Some(recorded) => replay(claim, recorded),
        // Recorded and already stale, or being committed elsewhere.
        None => Err(ApiError::key_in_flight()),
    }
}

fn replay(claim: &KeyClaim, recorded: Recorded) -> Result<Response, ApiError> {
    if recorded.fingerprint != claim.fingerprint {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-mismatch",
            "Idempotency key reused",
            "this Idempotency-Key was used on this topic for a different request (body or options) within the idempotency window",
        ));
    }
    let status = StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::OK);
    let mut response = json(status, recorded.body);
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}

/// The answer to a publish: the body as recorded (for Idempotency-Key
/// replays) plus the newline every JSON answer of herald ends with.
fn json(status: StatusCode, mut body: String) -> Response {
    if !body.ends_with('\n') {
        body.push('\n');
    }
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// What identifies a keyed request (empty without an Idempotency-Key, so
/// unkeyed publishes hash nothing).
pub fn fingerprint(
    options: &Options,
    topic: &TopicName,
    batch: bool,
    query: &QueryPairs,
    headers: &HeaderMap,
    body: &Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> String {
    if options.idempotency.is_none() {
        return String::new();
    }
    let route = format!("{}{}", topic, if batch { "/batch" } else { "" });
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let body = body.as_ref().map(|b| &b[..]).unwrap_or_default();
    idempotency::fingerprint(&route, &query.0, content_type, body)
}

/// The answer to a scheduled publish (`202`). A batch answers
/// `{"count", "scheduled": [<this>…]}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"schedule_id": 17, "topic": "orders", "deliver_at": "2026-12-01T09:00:00.000000Z"}))]
pub struct Scheduled {
    /// For `GET`/`DELETE /scheduled/{id}`: a number, like every id herald
    /// gives.
    pub schedule_id: i64,
    pub topic: String,
    /// When it is due: it is appended to the log at (or just after) this time.
    pub deliver_at: String,
}

/// The publish options in the query of `POST /topics/{topic}` and
/// `/batch` (the `Idempotency-Key` header is described beside them).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query for OpenAPI; parsed by [`Options::parse`]
pub struct PublishParams {
    /// Priority 1-5 (default 3), or `min`, `low`, `default`, `high`, `max`.
    /// Higher is leased and pushed first; filters see `priority`.
    #[param(rename = "priority", value_type = Option<String>, example = "high")]
    priority: Option<String>,
    /// Ordering key: 1-128 printable ASCII characters; in the envelope as
    /// `key`, and filters see it.
    #[param(rename = "key", value_type = Option<String>, max_length = 128, example = "customer-42")]
    key: Option<String>,
    /// Publish after this long (`90s`, `10m`, `2h`; at most
    /// --schedule-max-delay, default `30d`): answers `202`.
    #[param(rename = "delay", value_type = Option<String>, example = "10m")]
    delay: Option<String>,
    /// Publish at this RFC 3339 time (a time in the past: at once):
    /// answers `202`. Not with `delay`.
    #[param(rename = "at", value_type = Option<String>, example = "2026-12-01T09:00:00Z")]
    at: Option<String>,
    /// Time to live (`90s`, `10m`, `7d`; at least `1s`), counted from the
    /// append: the envelope's `expires`, after which the message is not
    /// delivered. Default: the topic's `message_ttl`.
    #[param(rename = "ttl", value_type = Option<String>, example = "1h")]
    ttl: Option<String>,
}
