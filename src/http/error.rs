//! Every error herald answers is an RFC 9457 `application/problem+json`
//! document. Internal causes are logged where they happen and never shown.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::filter::FilterError;
use crate::domain::{CursorError, TopicError};
use crate::fanout::PublishError;
use crate::storage::StoreError;
use crate::topics::SchemaViolation;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answer: status, a stable machine-readable kind (the last part of
/// the `type` URI), a title per kind, and a detail for this occurrence.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Seconds, for `Retry-After` on 503s.
    pub retry_after: Option<u32>,
    /// What a payload got wrong, for schema violations (`422`).
    pub errors: Vec<SchemaViolation>,
    /// `WWW-Authenticate`, on `401`s.
    pub challenge: Option<&'static str>,
}

/// The body of a problem answer.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"type": "urn:herald:problem:invalid-topic", "title": "Invalid topic", "status": 400, "detail": "character ' ' at position 3 is not allowed"}))]
pub struct Problem {
    /// `urn:herald:problem:<kind>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// With `422`: each place a payload breaks the topic's schema.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<SchemaViolation>,
    /// The request's `x-request-id` (the client's, or one herald made),
    /// also in herald's log lines for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            title,
            detail: detail.into(),
            retry_after: None,
            errors: Vec::new(),
            challenge: None,
        }
    }

    /// `422`: payloads that break the topic's schema; nothing was stored.
    pub fn schema_violations(detail: impl Into<String>, errors: Vec<SchemaViolation>) -> Self {
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "schema-violation",
                "Payload does not satisfy the topic's schema",
                detail,
            )
        }
    }

    pub fn bad_request(kind: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, title, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Message too large",
            detail,
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                detail,
            )
        }
    }

    /// `401`: no valid token. `invalid` says one was given (and is bad).
    pub fn unauthorized(detail: impl Into<String>, invalid: bool) -> Self {
        Self {
            challenge: Some(if invalid {
                "Bearer realm=\"herald\", error=\"invalid_token\""
            } else {
                "Bearer realm=\"herald\""
            }),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                detail,
            )
        }
    }

    /// `403`: the token is valid but does not allow this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// `403`: one of herald's own topics (`$herald.*`), where only herald
    /// writes; `what` says what was refused.
    pub fn reserved_topic(topic: &crate::domain::TopicName, what: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "reserved-topic",
            "Reserved topic",
            format!(
                "`{topic}` is one of herald's own topics (`$herald.*`): only herald {what}; \
                 subscribe to it like any topic"
            ),
        )
    }

    /// `429`: a per-client limit; retry after `secs`.
    pub fn too_many(detail: impl Into<String>, secs: u32) -> Self {
        Self {
            retry_after: Some(secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                detail,
            )
        }
    }

    /// `409`: a request with the same Idempotency-Key is still in flight.
    pub fn key_in_flight() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "idempotency-key-in-flight",
            "Idempotency key in use",
            "a request with this Idempotency-Key is still being processed; retry once it has been answered",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "an internal error occurred; it has been logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            kind: format!("urn:herald:problem:{}", self.kind),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            errors: self.errors,
            request_id: None,
        };
        let mut response = (self.status, super::json::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(challenge) = self.challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

impl From<TopicError> for ApiError {
    fn from(e: TopicError) -> Self {
        ApiError::bad_request("invalid-topic", "Invalid topic", e.to_string())
    }
}

impl From<CursorError> for ApiError {
    fn from(e: CursorError) -> Self {
        ApiError::bad_request("invalid-cursor", "Invalid cursor", e.to_string())
    }
}

impl From<FilterError> for ApiError {
    fn from(e: FilterError) -> Self {
        ApiError::bad_request("invalid-filter", "Invalid filter", format!("filter {e}"))
    }
}

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Unavailable(_) | PublishError::ShuttingDown => {
                ApiError::unavailable(e.to_string())
            }
            PublishError::Overloaded => ApiError {
                kind: "overloaded",
                title: "Overloaded",
                ..ApiError::unavailable(e.to_string())
            },
            PublishError::DuplicateKey => ApiError::key_in_flight(),
            PublishError::Internal => ApiError::internal(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::unavailable("the database is unavailable; try again shortly")
            }
            StoreError::DuplicateKey => ApiError::key_in_flight(),
            _ => {
                tracing::error!(error = %e, "storage error");
                ApiError::internal()
            }
        }
    }
}

/// Answer for paths herald does not serve.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}

/// Answer for a known path with a method it does not take.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!("{method} is not supported on {}", uri.path()),
    )
}

/// Answer for a handler that panicked: logged, and a plain 500 problem.
pub fn panicked(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = what, "request handler panicked");
    ApiError::internal().into_response()
}
