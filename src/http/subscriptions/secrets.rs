//! `POST /subscriptions/{id}/rotate-secret`: a new signing secret, with
//! the old one still signing every delivery (beside the new one) for
//! `--webhook-secret-overlap`, so receivers switch without downtime.

use axum::extract::State;
use serde::Serialize;

use super::{invalid, load};
use crate::auth::Caller;
use crate::domain::Timestamp;
use crate::domain::webhook::Secret;
use crate::http::AppState;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::ApiId;
use crate::http::json::Json;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    /// The new secret (`whsec_…`), shown only here.
    pub secret: String,
    /// Until when deliveries are signed with the previous secret too
    /// (RFC 3339).
    pub previous_valid_until: String,
}

#[utoipa::path(
    post, path = "/subscriptions/{id}/rotate-secret", tag = "webhooks", summary = "Rotate a webhook's signing secret",
    description = "Generates a new secret. Until `previous_valid_until` (`--webhook-secret-overlap`, default 24h) every delivery carries two signatures in `webhook-signature`, space separated: one with the new secret and one with the previous; Standard Webhooks libraries accept either.",
    params(("id" = i64, Path, description = "Subscription id", minimum = 1)),
    responses((status = 200, description = "The new secret", body = RotatedSecret), (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem), (status = 404, description = "No such subscription", content_type = "application/problem+json", body = Problem), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))))
)]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    ApiId(id): ApiId,
) -> Result<Json<RotatedSecret>, ApiError> {
    let sub = load(&state, &caller, id).await?;
    if sub.is_pull() {
        return Err(invalid(
            "a pull subscription has no secret: herald signs only webhook deliveries",
        ));
    }
    let secret = Secret::generate();
    let now = Timestamp::now();
    let overlap = state.settings.webhook_secret_overlap;
    let until = Timestamp(now.0 + overlap.as_micros() as i64);
    if !state
        .store
        .rotate_secret(id, secret.as_str(), until, now)
        .await?
    {
        return Err(ApiError::not_found(format!("no subscription {id}")));
    }
    state.subscription_changes.bump();
    Ok(Json(RotatedSecret {
        secret: secret.as_str().to_owned(),
        previous_valid_until: until.to_rfc3339(),
    }))
}
