//! `GET /topics`, and one topic: `GET` (what is stored, who listens, its
//! configuration), `PUT` (configure it, creating it if needed), `DELETE`
//! (remove it with its messages and pending deliveries).

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, ApiPath};
use super::json::Json;
use crate::auth::Caller;
use crate::domain::{Retention, Timestamp, TopicConfig, TopicName, TopicSelector};
use crate::retention::Policy;
use crate::storage::TopicInfo;
use crate::topics::Schema;

/// A topic as the API shows it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TopicView {
    pub name: String,
    /// Seq of the last message (0 before the first).
    pub last_seq: i64,
    /// Messages published to it (retention does not lower this).
    pub message_count: i64,
    /// Live streams (SSE, and WebSocket subscriptions) on every node whose
    /// topics include this one.
    pub subscribers: usize,
    /// When it was first published to or configured (for a topic that only
    /// has live subscribers so far: the time of this answer).
    pub created: String,
    pub last_published: Option<String>,
    /// Its own configuration (`{}` when it has none).
    pub config: TopicConfig,
    /// The retention in force: its own, else the server's defaults.
    pub retention: Retention,
    /// The id of its oldest retained message (one topic only; `null` when
    /// it has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_retained: Option<i64>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TopicList {
    pub topics: Vec<TopicView>,
}

fn view(state: &AppState, t: TopicInfo) -> TopicView {
    let config: TopicConfig = t
        .config
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    TopicView {
        subscribers: state.presence.count(t.name.as_str()),
        name: t.name.to_string(),
        last_seq: t.last_seq,
        message_count: t.message_count,
        created: t.created.to_rfc3339(),
        last_published: t.last_published.map(|t| t.to_rfc3339()),
        retention: Policy::of(&config, state.settings.retention).to_retention(),
        config,
        oldest_retained: None,
    }
}

#[utoipa::path(
    get, path = "/topics", operation_id = "list_topics", tag = "topics", summary = "List topics",
    responses((status = 200, description = "Every topic", body = TopicList), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TopicList>, ApiError> {
    caller.require_admin("listing every topic")?;
    let topics = state.store.topics().await?;
    Ok(Json(TopicList {
        topics: topics.into_iter().map(|t| view(&state, t)).collect(),
    }))
}

#[utoipa::path(
    get, path = "/topics/{topic}", operation_id = "show_topic", tag = "topics", summary = "One topic",
    params(("topic" = String, Path, description = "Topic name: 1-128 characters of A-Z a-z 0-9 _ - with . between levels", pattern = r"^(\$herald\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", min_length = 1, max_length = 128, example = "orders.eu")),
    responses(
        (status = 200, description = "The topic, with its configuration and oldest retained message", body = TopicView),
        (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem),
        (status = 404, description = "No such topic: never published to nor configured, and no live subscriber on any node (a topic that only has subscribers answers `200` with `last_seq` 0)", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(topic): ApiPath<String>,
) -> Result<Json<TopicView>, ApiError> {
    let name = TopicName::parse(&topic)?;
    caller.require_subscribe(&TopicSelector::single(&name))?;
    let t = match state.store.topic(&name).await? {
        Some(t) => t,
        // Never published to nor configured, but listened to: it exists
        // for its subscribers (`last_seq` 0; `created` is now).
        None if state.presence.count(name.as_str()) > 0 => TopicInfo {
            name: name.clone(),
            last_seq: 0,
            message_count: 0,
            created: Timestamp::now(),
            last_published: None,
            config: None,
        },
        None => return Err(ApiError::not_found(format!("no topic {name}"))),
    };
    let oldest = state.store.oldest_retained(name.as_str()).await?;
    Ok(Json(TopicView {
        oldest_retained: oldest.map(|p| p.0),
        ..view(&state, t)
    }))
}

/// Sets the topic's whole configuration (fields left out take their
/// defaults), creating the topic if needed.
#[utoipa::path(
    put, path = "/topics/{topic}", tag = "topics", summary = "Configure a topic",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", min_length = 1, max_length = 128, example = "orders.eu")),
    request_body(content = TopicConfig, content_type = "application/json",
        example = json!({"retention": {"max_age": "7d", "max_messages": 100000}, "message_ttl": "1h", "description": "Orders",
            "schema": {"type": "object", "required": ["total"], "properties": {"total": {"type": "number"}}}})),
    responses(
        (status = 200, description = "The configuration now in force", body = TopicConfig),
        (status = 400, description = "A field is invalid (the detail names it), the schema is invalid, too large or refers outside itself", content_type = "application/problem+json", body = Problem),
        (status = 415, description = "The body is not JSON", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn configure(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(topic): ApiPath<String>,
    ApiJson(config): ApiJson<TopicConfig>,
) -> Result<Json<TopicConfig>, ApiError> {
    let name = TopicName::parse(&topic)?;
    caller.require_admin("configuring topics")?;
    if name.is_reserved() {
        return Err(ApiError::reserved_topic(&name, "configures them"));
    }
    let invalid = |detail: String| {
        ApiError::bad_request("invalid-config", "Invalid topic configuration", detail)
    };
    config.validate().map_err(|e| invalid(e.to_string()))?;
    if let Some(schema) = &config.schema {
        Schema::compile(schema).map_err(|e| invalid(format!("schema: {e}")))?;
    }
    let text = serde_json::to_string(&config).map_err(|_| ApiError::internal())?;
    state
        .store
        .put_topic_config(&name, &text, Timestamp::now())
        .await?;
    state.topics.forget(name.as_str());
    Ok(Json(config))
}

/// Deletes the topic, its messages, its pending deliveries, its scheduled
/// messages and its idempotency keys. Dead letters stay (each keeps its
/// message). Streams resumed from before the
/// delete get a `gap` for the topic.
#[utoipa::path(
    delete, path = "/topics/{topic}", operation_id = "delete_topic", tag = "topics", summary = "Delete a topic",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^(\$herald\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", min_length = 1, max_length = 128, example = "orders.eu")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem),
        (status = 404, description = "No such topic", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(topic): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let name = TopicName::parse(&topic)?;
    caller.require_admin("deleting topics")?;
    let found = state.store.delete_topic(&name).await?;
    state.topics.forget(name.as_str());
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no topic {name}")))
    }
}
