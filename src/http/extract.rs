//! Extractors whose rejections are problem documents, not axum's plain text.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Path parameters.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| ApiPath(t))
            .map_err(|e| ApiError::bad_request("invalid-path", "Invalid path", e.body_text()))
    }
}

/// The query string as decoded pairs; repeated keys are kept
/// (`?topic=a&topic=b`).
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// All values of `key`, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a key that may appear once; an empty value (`?key=`)
    /// counts as absent, as HTML forms send it.
    pub fn one(&self, key: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self
            .0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::bad_request(
                "invalid-query",
                "Invalid query parameter",
                format!("`{key}` may be given only once"),
            ));
        }
        Ok(first.filter(|v| !v.is_empty()))
    }

    /// The `after` of a paged list: an id (`0` when absent). `what` names
    /// the kind of id for the error.
    pub fn after_id(&self, what: &str) -> Result<i64, ApiError> {
        match self.one("after")? {
            Some(raw) => raw.parse::<i64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid-query",
                    "Invalid query parameter",
                    format!("`after` is a {what} id"),
                )
            }),
            None => Ok(0),
        }
    }

    /// A non-negative integer parameter within `min..=max`.
    pub fn number(&self, key: &str, min: u32, max: u32) -> Result<Option<u32>, ApiError> {
        let Some(raw) = self.one(key)? else {
            return Ok(None);
        };
        match raw.trim().parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::bad_request(
                "invalid-query",
                "Invalid query parameter",
                format!("`{key}` must be an integer from {min} to {max}, not {raw:?}"),
            )),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        Ok(QueryPairs(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

/// A JSON body; a malformed or mistyped one is a 400 problem (415 without
/// a JSON content type).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        use axum::extract::rejection::JsonRejection;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(t)) => Ok(ApiJson(t)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the body as Content-Type: application/json",
            )),
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::too_large(e.body_text()))
            }
            Err(e) => Err(ApiError::bad_request(
                "invalid-body",
                "Invalid body",
                e.body_text(),
            )),
        }
    }
}

/// A numeric id in the path; anything else is a 400.
pub struct ApiId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for ApiId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ApiPath(raw) = ApiPath::<String>::from_request_parts(parts, state).await?;
        match raw.parse::<i64>() {
            Ok(id) if id > 0 => Ok(ApiId(id)),
            _ => Err(ApiError::bad_request(
                "invalid-path",
                "Invalid path",
                format!("{raw:?} is not an id (a positive integer)"),
            )),
        }
    }
}
