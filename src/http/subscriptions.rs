//! `POST/GET /subscriptions`, `GET/PATCH/DELETE /subscriptions/{id}`:
//! webhook (push) and pull subscriptions. What only pull subscriptions
//! have is in [`super::pull`].

use super::json::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

pub mod attempts;
mod durations;
mod fields;
mod requests;
pub mod secrets;
mod view;

pub use attempts::{AttemptPage, AttemptView};
pub(crate) use fields::parse_start;
use fields::{draft, push_fields};
pub use requests::{CreateSubscription, PatchSubscription};
pub use secrets::RotatedSecret;
use view::view;
pub use view::{Stats, SubscriptionView};

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{ApiId, ApiJson, QueryPairs};
use crate::auth::Caller;
use crate::delivery::guard;
use crate::domain::{Timestamp, TopicPattern};
use crate::storage::webhooks::{
    DeliveryCounts, MODE_PULL, MODE_PUSH, NewSubscription, Start, Subscription,
};

/// Defaults and bounds of the retry settings.
const MAX_ATTEMPTS: (i32, i32) = (5, 100);
const MIN_BACKOFF_MS: i64 = 1_000;
const MAX_BACKOFF_MS: i64 = 600_000;
const TIMEOUT_MS: (i64, i64) = (15_000, 300_000);
/// The longest backoff accepted: one day.
const BACKOFF_CEILING_MS: i64 = 86_400_000;

pub(crate) fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid-subscription", "Invalid subscription", detail)
}

/// Checks the settings that PATCH can change too.
async fn check(state: &AppState, s: &Subscription) -> Result<(), ApiError> {
    if s.is_pull() {
        super::pull::check(s)?;
    } else {
        guard::check_url(&s.url, state.settings.webhook_allow_private)
            .await
            .map_err(|e| invalid(format!("url: {e}")))?;
    }
    if let Some(f) = &s.filter {
        state.filters.get(f)?;
    }
    if !(1..=MAX_ATTEMPTS.1).contains(&s.max_attempts) {
        return Err(invalid(format!(
            "max_attempts must be 1 to {}",
            MAX_ATTEMPTS.1
        )));
    }
    if !(1..=BACKOFF_CEILING_MS).contains(&s.min_backoff_ms)
        || !(s.min_backoff_ms..=BACKOFF_CEILING_MS).contains(&s.max_backoff_ms)
    {
        return Err(invalid(format!(
            "backoffs must satisfy 1 <= min_backoff_ms <= max_backoff_ms <= {BACKOFF_CEILING_MS}"
        )));
    }
    if !(1..=TIMEOUT_MS.1).contains(&s.timeout_ms) {
        return Err(invalid(format!("timeout_ms must be 1 to {}", TIMEOUT_MS.1)));
    }
    fields::check_rate_limit(s)
}

#[utoipa::path(
    post, path = "/subscriptions", operation_id = "create_subscription", tag = "webhooks", summary = "Create a webhook (push) or pull subscription",
    request_body = CreateSubscription,
    responses(
        (status = 201, description = "Created; the answer holds the signing secret, shown only here", body = SubscriptionView),
        (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem), (status = 413, description = "The body is too large", content_type = "application/problem+json", body = Problem), (status = 415, description = "The body is not JSON", content_type = "application/problem+json", body = Problem),
        (status = 429, description = "The owner has `--max-subscriptions-per-owner` subscriptions (`too-many-subscriptions`)", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(mut body): ApiJson<CreateSubscription>,
) -> Result<(StatusCode, Json<SubscriptionView>), ApiError> {
    durations::fold_create(&mut body)?;
    let pattern = TopicPattern::parse(&body.topic)?;
    caller.require_subscribe_pattern(&pattern)?;
    caller.require_owner_identity("creating a subscription")?;
    let start = match &body.start {
        None => Start::Head,
        Some(v) => parse_start(v)
            .ok_or_else(|| invalid("start is \"head\", \"earliest\" or a message id"))?,
    };
    let (mode, url, secret, ack_deadline_ms) = match body.mode.as_deref() {
        None | Some(MODE_PUSH) => push_fields(&body)?,
        Some(MODE_PULL) => super::pull::create_fields(&body)?,
        Some(other) => {
            return Err(invalid(format!(
                "mode is \"push\" or \"pull\", not {other:?}"
            )));
        }
    };
    let new = NewSubscription {
        topic: pattern.as_str().to_owned(),
        filter: body.filter,
        url,
        secret,
        max_attempts: body.max_attempts.unwrap_or(MAX_ATTEMPTS.0),
        min_backoff_ms: body.min_backoff_ms.unwrap_or(MIN_BACKOFF_MS),
        max_backoff_ms: body
            .max_backoff_ms
            .unwrap_or(MAX_BACKOFF_MS.max(body.min_backoff_ms.unwrap_or(0))),
        timeout_ms: body.timeout_ms.unwrap_or(TIMEOUT_MS.0),
        paused: body.paused,
        owner: caller.owner(),
        owner_expires_us: caller.expires_us(),
        mode: mode.to_owned(),
        ack_deadline_ms,
        ordered: body.ordered.unwrap_or(false),
        event_types: fields::event_types(body.event_types.as_deref())?,
        rate_limit: body.rate_limit,
    };
    let now = Timestamp::now();
    let draft = draft(&new, now);
    check(&state, &draft).await?;
    within_limit(&state, new.owner.as_deref()).await?;
    let created = state.store.create_subscription(new, start, now).await?;
    state.subscription_changes.bump();
    Ok((
        StatusCode::CREATED,
        Json(view(created, true, Some(DeliveryCounts::default()))),
    ))
}

/// `429` once the owner has `--max-subscriptions-per-owner`: each
/// subscription costs every node's deliverer a little, even idle.
async fn within_limit(state: &AppState, owner: Option<&str>) -> Result<(), ApiError> {
    let max = state.settings.max_subscriptions_per_owner;
    if state.store.count_subscriptions(owner).await? >= i64::from(max) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-subscriptions",
            "Too many subscriptions",
            format!(
                "this owner has {max} subscriptions, the most allowed (--max-subscriptions-per-owner); delete one first"
            ),
        ));
    }
    Ok(())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionPage {
    pub subscriptions: Vec<SubscriptionView>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<i64>,
}

#[utoipa::path(
    get, path = "/subscriptions", operation_id = "list_subscriptions", tag = "webhooks", summary = "List webhook subscriptions",
    params(
        ("after" = Option<i64>, Query, description = "Only ids above this (the `next` of the previous page)"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)", minimum = 1, maximum = 1000)),
    responses((status = 200, description = "A page, by id", body = SubscriptionPage), (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Json<SubscriptionPage>, ApiError> {
    let limit = query.number("limit", 1, 1000)?.unwrap_or(100);
    let after = query.after_id("subscription")?;
    // Admins (and everyone while access control is off) see them all.
    let owner = (!caller.unrestricted()).then(|| caller.owner()).flatten();
    if !caller.unrestricted() && owner.is_none() {
        return Err(caller.refuse("listing subscriptions".into()));
    }
    let subs = state
        .store
        .subscriptions(after, limit, owner.as_deref())
        .await?;
    let next = (subs.len() == limit as usize)
        .then(|| subs.last().map(|s| s.id))
        .flatten();
    Ok(Json(SubscriptionPage {
        subscriptions: subs.into_iter().map(|s| view(s, false, None)).collect(),
        next,
    }))
}

/// The subscription, if the caller may manage it: its creator's token,
/// or an admin.
pub(crate) async fn load(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<Subscription, ApiError> {
    let sub = state
        .store
        .subscription(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no subscription {id}")))?;
    caller.require_owner(sub.owner.as_deref(), &format!("subscription {id}"))?;
    // Its owner must still be allowed to read what it delivers.
    if !caller.unrestricted() {
        let pattern = TopicPattern::parse(&sub.topic)
            .map_err(|e| ApiError::from(crate::storage::StoreError::Corrupt(e.to_string())))?;
        caller.require_subscribe_pattern(&pattern)?;
    }
    Ok(sub)
}

#[utoipa::path(
    get, path = "/subscriptions/{id}", operation_id = "show_subscription", tag = "webhooks", summary = "One subscription with its delivery stats",
    params(("id" = i64, Path, description = "Subscription id", minimum = 1)),
    responses((status = 200, description = "The subscription", body = SubscriptionView), (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem), (status = 404, description = "No such subscription", content_type = "application/problem+json", body = Problem), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))))
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ApiId(id): ApiId,
) -> Result<Json<SubscriptionView>, ApiError> {
    let sub = load(&state, &caller, id).await?;
    let counts = state.store.delivery_counts(id).await?;
    let pull = match sub.is_pull() {
        true => super::pull::stats(&state, &sub, &counts).await?,
        false => Default::default(),
    };
    let mut shown = view(sub, false, Some(counts));
    shown.pull = pull;
    Ok(Json(shown))
}

#[utoipa::path(
    patch, path = "/subscriptions/{id}", tag = "webhooks", summary = "Change a subscription",
    params(("id" = i64, Path, description = "Subscription id", minimum = 1)),
    request_body = PatchSubscription,
    responses((status = 200, description = "The changed subscription", body = SubscriptionView), (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem), (status = 413, description = "The body is too large", content_type = "application/problem+json", body = Problem), (status = 415, description = "The body is not JSON", content_type = "application/problem+json", body = Problem), (status = 404, description = "No such subscription", content_type = "application/problem+json", body = Problem), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))))
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiId(id): ApiId,
    ApiJson(mut patch): ApiJson<PatchSubscription>,
) -> Result<Json<SubscriptionView>, ApiError> {
    durations::fold_patch(&mut patch)?;
    let mut sub = load(&state, &caller, id).await?;
    if sub.is_pull() && (patch.url.is_some() || patch.timeout_ms.is_some()) {
        return Err(invalid(
            "url and timeout_ms are for push (webhook) subscriptions",
        ));
    }
    if !sub.is_pull() && patch.ack_deadline.is_some() {
        return Err(invalid("ack_deadline is for pull subscriptions"));
    }
    if let Some(d) = &patch.ack_deadline {
        sub.ack_deadline_ms = super::pull::parse_ack_deadline(d)?;
    }
    if let Some(url) = patch.url {
        sub.url = url;
    }
    if let Some(filter) = patch.filter {
        sub.filter = filter;
    }
    if let Some(types) = patch.event_types {
        sub.event_types = fields::event_types(types.as_deref())?;
    }
    if let Some(limit) = patch.rate_limit {
        sub.rate_limit = limit;
    }
    let resumed = sub.paused && patch.paused == Some(false);
    if let Some(paused) = patch.paused {
        sub.paused = paused;
    }
    // The owner's fresh token renews a webhook whose token had expired.
    if sub.owner.is_some() && sub.owner == caller.owner() {
        sub.owner_expires_us = caller.expires_us();
    }
    if let Some(n) = patch.max_attempts {
        sub.max_attempts = n;
    }
    if let Some(n) = patch.min_backoff_ms {
        sub.min_backoff_ms = n;
    }
    if let Some(n) = patch.max_backoff_ms {
        sub.max_backoff_ms = n;
    }
    if let Some(n) = patch.timeout_ms {
        sub.timeout_ms = n;
    }
    check(&state, &sub).await?;
    if !state
        .store
        .update_subscription(&sub, Timestamp::now())
        .await?
    {
        return Err(ApiError::not_found(format!("no subscription {id}")));
    }
    // Whatever paused it (herald, after failures) is forgotten, and its
    // circuit starts closed.
    if resumed {
        state.store.reset_health(id).await?;
    }
    state.subscription_changes.bump();
    show(State(state), caller, ApiId(id)).await
}

#[utoipa::path(
    delete, path = "/subscriptions/{id}", operation_id = "delete_subscription", tag = "webhooks", summary = "Delete a subscription, its pending deliveries and dead letters",
    params(("id" = i64, Path, description = "Subscription id", minimum = 1)),
    responses((status = 204, description = "Deleted"), (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem), (status = 404, description = "No such subscription", content_type = "application/problem+json", body = Problem), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiId(id): ApiId,
) -> Result<StatusCode, ApiError> {
    load(&state, &caller, id).await?;
    if state.store.delete_subscription(id).await? {
        state.subscription_changes.bump();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no subscription {id}")))
    }
}
