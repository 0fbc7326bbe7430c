//! `GET /topics` and `GET /topics/{topic}`: what is stored, and who listens.

use axum::Json;
use axum::extract::State;

use super::AppState;
use super::error::ApiError;
use super::extract::ApiPath;
use crate::domain::TopicName;
use crate::storage::TopicInfo;

/// A topic as the API shows it.
#[derive(Debug, serde::Serialize)]
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

#[derive(Debug, serde::Serialize)]
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

pub async fn list(State(state): State<AppState>) -> Result<Json<TopicList>, ApiError> {
    let topics = state.store.topics().await?;
    Ok(Json(TopicList {
        topics: topics.into_iter().map(|t| view(&state, t)).collect(),
    }))
}

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
