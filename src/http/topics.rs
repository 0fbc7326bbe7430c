//! `GET /topics` and `GET /topics/{topic}`: what is stored, and who listens.

use super::json::Json;
use axum::extract::State;

use super::AppState;
use super::error::ApiError;
use super::error::Problem;
use super::extract::ApiPath;
use crate::domain::TopicName;
use crate::storage::TopicInfo;

/// A topic as the API shows it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TopicView {
    pub name: String,
    /// Seq of the last message (0 before the first).
    pub last_seq: i64,
    pub message_count: i64,
    /// Open SSE streams on this node whose topics include this one.
    pub subscribers: usize,
    pub created: String,
    pub last_published: Option<String>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TopicList {
    pub topics: Vec<TopicView>,
}

fn view(state: &AppState, t: TopicInfo) -> TopicView {
    TopicView {
        subscribers: state.hub.subscribers_for(t.name.as_str()),
        name: t.name.to_string(),
        last_seq: t.last_seq,
        message_count: t.message_count,
        created: t.created.to_rfc3339(),
        last_published: t.last_published.map(|t| t.to_rfc3339()),
    }
}

#[utoipa::path(
    get, path = "/topics", tag = "topics", summary = "List topics",
    responses((status = 200, description = "Every topic with messages", body = TopicList), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))))
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<TopicList>, ApiError> {
    let topics = state.store.topics().await?;
    Ok(Json(TopicList {
        topics: topics.into_iter().map(|t| view(&state, t)).collect(),
    }))
}

#[utoipa::path(
    get, path = "/topics/{topic}", tag = "topics", summary = "One topic",
    params(("topic" = String, Path, description = "Topic name: 1-128 characters of A-Z a-z 0-9 _ - with . between levels", pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", min_length = 1, max_length = 128, example = "orders.eu")),
    responses(
        (status = 200, description = "The topic", body = TopicView),
        (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem),
        (status = 404, description = "The topic has no messages yet", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    ApiPath(topic): ApiPath<String>,
) -> Result<Json<TopicView>, ApiError> {
    let name = TopicName::parse(&topic)?;
    match state.store.topic(&name).await? {
        Some(t) => Ok(Json(view(&state, t))),
        None => Err(ApiError::not_found(format!(
            "topic {name} has no messages yet"
        ))),
    }
}
