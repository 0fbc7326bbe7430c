//! The request side of [`Caller`]: the extractor that reads the token from
//! a request, and the checks handlers make with it, answered as problems.
//!
//! The token is read from `Authorization: Bearer …`, then
//! `?access_token=…` (RFC 6750; `EventSource` cannot set headers), then the
//! `herald_token` cookie. It is never logged nor echoed in an error.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use super::AppState;
use super::error::ApiError;
use super::front_door::ClientIp;
use crate::auth::caller::{COOKIE, QUERY_PARAM};
use crate::auth::{AuthError, Caller, Identity, api_token};
use crate::domain::{TopicName, TopicPattern, TopicSelector};

impl Caller {
    /// `403` unless the caller can own what it creates (see
    /// [`Caller::owner`]); admins and an open herald always can.
    pub fn require_owner_identity(&self, what: &str) -> Result<(), ApiError> {
        if self.unrestricted() || self.owner().is_some() {
            return Ok(());
        }
        Err(self.refuse(format!(
            "{what}: it needs an API token or a JWT with a subject (`sub`), which will own it"
        )))
    }

    pub fn require_publish(&self, topic: &TopicName) -> Result<(), ApiError> {
        // herald's own topics take no publish from outside, admins' neither.
        if topic.is_reserved() {
            return Err(ApiError::reserved_topic(topic, "publishes there"));
        }
        if self.grants.may_publish(topic) {
            return Ok(());
        }
        Err(self.refuse(format!("publishing to `{topic}`")))
    }

    /// Every topic or pattern of `selector` must be covered.
    pub fn require_subscribe(&self, selector: &TopicSelector) -> Result<(), ApiError> {
        match self.grants.subscribe_denied(selector) {
            None => Ok(()),
            Some(p) => Err(self.refuse(format!("subscribing to `{}`", p.as_str()))),
        }
    }

    pub fn require_subscribe_pattern(&self, pattern: &TopicPattern) -> Result<(), ApiError> {
        if self.grants.may_subscribe(pattern) {
            return Ok(());
        }
        Err(self.refuse(format!("subscribing to `{}`", pattern.as_str())))
    }

    /// `what` names the action, e.g. "configuring topics".
    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.grants.admin {
            return Ok(());
        }
        Err(self.refuse(format!("{what} (it needs an admin token)")))
    }

    /// `404` (as if it did not exist, so that ids cannot be probed) for
    /// what belongs to another token; `401` without a token.
    pub fn require_owner(&self, owner: Option<&str>, what: &str) -> Result<(), ApiError> {
        if self.may_manage(owner) {
            return Ok(());
        }
        if self.identity == Identity::Anonymous {
            return Err(self.refuse(format!("reading or changing {what}")));
        }
        Err(ApiError::not_found(format!("no {what}")))
    }

    /// `401` without a token, `403` with one.
    pub fn refuse(&self, what: String) -> ApiError {
        let error = if self.identity == Identity::Anonymous {
            ApiError::unauthorized(
                format!("{what} needs a token: send Authorization: Bearer <token>"),
                false,
            )
        } else {
            ApiError::forbidden(format!("this token does not allow {what}"))
        };
        metrics::counter!(crate::telemetry::AUTH_REFUSED, "status" => error.status.as_str().to_owned())
            .increment(1);
        error
    }

    /// `429` unless `client` may publish `n` more messages now.
    pub fn take_publishes(&self, state: &AppState, n: usize) -> Result<(), ApiError> {
        state.auth.limits.publish(&self.client, n).map_err(|l| {
            if let Some(burst) = l.never {
                return ApiError::bad_request(
                    "batch-over-rate-limit",
                    "Batch larger than the rate limit allows",
                    format!("--rate-limit-publish lets a client publish at most {burst} messages at once; split the batch"),
                );
            }
            ApiError::too_many(
                format!(
                    "this client publishes faster than --rate-limit-publish allows; retry in {} s",
                    l.retry_after_secs
                ),
                l.retry_after_secs,
            )
        })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = parts.extensions.get::<ClientIp>().map(|c| c.0);
        // With access control off, tokens (and odd headers) are ignored.
        let token = if state.auth.enabled() {
            token(parts)?
        } else {
            None
        };
        state
            .auth
            .caller(token.as_deref(), ip)
            .await
            .map_err(|e| match e {
                AuthError::Token(api_token::TokenError::Store(s)) => ApiError::from(s),
                e => {
                    metrics::counter!(crate::telemetry::AUTH_REFUSED, "status" => "401")
                        .increment(1);
                    ApiError::unauthorized(e.to_string(), true)
                }
            })
    }
}

/// The bearer token of a request, wherever it is.
fn token(parts: &Parts) -> Result<Option<String>, ApiError> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let text = value.to_str().unwrap_or_default().trim();
        let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            if rest.trim().is_empty() {
                return Err(ApiError::unauthorized(
                    "the Authorization header must be `Bearer <token>`",
                    true,
                ));
            }
            return Ok(Some(rest.trim().to_owned()));
        }
        // Another scheme (a proxy's Basic credentials, say) is not ours.
    }
    if let Some(query) = parts.uri.query() {
        let found = form_urlencoded::parse(query.as_bytes())
            .find(|(k, v)| k == QUERY_PARAM && !v.is_empty())
            .map(|(_, v)| v.into_owned());
        if found.is_some() {
            return Ok(found);
        }
    }
    // The cookie only on reads: a browser sends it with a cross-site form
    // post too, so state-changing requests must carry the token explicitly.
    let safe = parts.method == axum::http::Method::GET || parts.method == axum::http::Method::HEAD;
    Ok(safe.then(|| cookie(&parts.headers)).flatten())
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| value.trim_matches('"').to_owned())
}
