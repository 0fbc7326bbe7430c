//! `GET /topics/{topic}/presence`: the streams listening to a topic on
//! every node, and how a stream joins presence when it opens.

use std::sync::Arc;

use axum::extract::State;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{ApiPath, QueryPairs};
use super::json::Json;
use crate::auth::{Caller, Identity};
use crate::domain::{TopicName, TopicSelector};
use crate::presence::{PresenceGuard, client};

/// Most subscribers on one page.
const MAX_LIMIT: u32 = 1000;

/// One live stream.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SubscriberView {
    /// The token's subject, or the stream's `?client=` (may be empty).
    pub client: String,
    /// The stream's id, unique across nodes.
    pub connection: String,
    /// The herald node it is connected to.
    pub node: String,
    /// When it opened (RFC 3339).
    pub since: String,
}

/// A page of a topic's presence.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PresenceView {
    /// Live streams of the topic on every node (all pages).
    pub count: usize,
    /// This page, in `connection` order.
    pub subscribers: Vec<SubscriberView>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Who listens to the topic: streams whose topics or patterns include it,
/// on every node, as far as the caller may see them (streams only on
/// topics and patterns it could subscribe to itself) (a node's streams show within moments of opening; a dead
/// node's leave within `--presence-lease` and a third).
#[utoipa::path(
    get, path = "/topics/{topic}/presence", operation_id = "show_presence", tag = "presence",
    summary = "Who is listening to a topic",
    params(("topic" = String, Path, description = "Topic name", pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", min_length = 1, max_length = 128, example = "chat.lobby"),
        ("after" = Option<String>, Query, description = "The `next` of the previous page"),
        ("limit" = Option<u32>, Query, description = "At most this many subscribers (1 to 1000, default 100)", minimum = 1, maximum = 1000)),
    responses(
        (status = 200, description = "The topic's live streams", body = PresenceView,
            example = json!({"count": 1, "subscribers": [{"client": "alice", "connection": "3f2a9c01b7d4-00000001", "node": "3f2a9c01b7d4", "since": "2026-11-30T15:00:00.000000Z"}]})),
        (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem),
        (status = 401, description = "No valid token (access control on)", content_type = "application/problem+json", body = Problem),
        (status = 403, description = "The token may not subscribe to this topic", content_type = "application/problem+json", body = Problem),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(topic): ApiPath<String>,
    query: QueryPairs,
) -> Result<Json<PresenceView>, ApiError> {
    let topic = TopicName::parse(&topic)?;
    caller.require_subscribe(&TopicSelector::single(&topic))?;
    let limit = query.number("limit", 1, MAX_LIMIT)?.unwrap_or(100) as usize;
    let page = state
        .presence
        .page(topic.as_str(), query.one("after")?, limit, |m| {
            caller.may_see(m.patterns())
        });
    Ok(Json(PresenceView {
        count: page.count,
        subscribers: page
            .members
            .into_iter()
            .map(|m| SubscriberView {
                client: m.client,
                connection: m.connection,
                node: m.node,
                since: m.since.to_rfc3339(),
            })
            .collect(),
        next: page.next,
    }))
}

/// The `client` label of `caller`'s stream: its token's subject, else
/// `asked` (`?client=`), validated.
pub fn client_label(caller: &Caller, asked: Option<&str>) -> Result<String, ApiError> {
    let subject = match caller.identity {
        Identity::ApiToken(_) | Identity::Jwt => caller.subject.as_deref(),
        Identity::Open | Identity::Anonymous => None,
    };
    client::label(subject, asked)
        .map_err(|e| ApiError::bad_request("invalid-client", "Invalid client", e.to_string()))
}

/// Makes a stream of `selector` present, unless a topic it can receive is
/// at its `max_subscribers` (`429`): a topic it names, or one with a limit
/// that one of its patterns matches. A topic's count is every stream that
/// can receive it, pattern or exact.
pub async fn join(
    state: &AppState,
    client: String,
    selector: &TopicSelector,
) -> Result<PresenceGuard, ApiError> {
    let mut limits = Vec::new();
    for name in selector.patterns().iter().filter_map(|p| p.as_exact()) {
        let Ok(topic) = TopicName::parse(name) else {
            continue;
        };
        if let Some(max) = state.topics.rules(&topic).await?.config.max_subscribers {
            limits.push((name.to_owned(), max));
        }
    }
    if selector.patterns().iter().any(|p| p.as_exact().is_none()) {
        for (topic, max) in state.topics.limited().await?.iter() {
            if selector.matches(topic) && !limits.iter().any(|(t, _)| t == topic) {
                limits.push((topic.clone(), *max));
            }
        }
    }
    state
        .presence
        .join(client, Arc::new(selector.clone()), &limits)
        .map_err(|full| ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too-many-subscribers",
                "Too many subscribers",
                format!(
                    "topic {} has as many streams open as its max_subscribers ({})",
                    full.topic, full.max
                ),
            )
        })
}
