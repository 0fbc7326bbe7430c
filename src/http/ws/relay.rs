//! `publish`, `pull`, `ack` and `nack` frames relayed to the HTTP handlers
//! themselves (`POST /topics/{topic}`, `/subscriptions/{id}/…`), so their
//! checks, limits and answers are exactly the HTTP API's.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use bytes::Bytes;
use serde_json::Value;

use super::frames::{self, Echo, Publish};
use crate::auth::Caller;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiId, ApiJson, QueryPairs};

/// A parsed `pull`, `ack` or `nack`.
pub(super) enum PullCall {
    Pull(crate::http::pull::PullRequest),
    Ack(crate::http::pull::acks::AckRequest),
    Nack(crate::http::pull::acks::NackRequest),
}

impl PullCall {
    pub(super) fn parse(op: &str, body: Value) -> Result<Self, serde_json::Error> {
        Ok(match op {
            "pull" => PullCall::Pull(serde_json::from_value(body)?),
            "ack" => PullCall::Ack(serde_json::from_value(body)?),
            _ => PullCall::Nack(serde_json::from_value(body)?),
        })
    }

    pub(super) async fn run(
        self,
        state: AppState,
        caller: Caller,
        id: i64,
    ) -> Result<(&'static str, Value), ApiError> {
        use crate::http::pull;
        let json = |v: Result<Value, serde_json::Error>| v.map_err(|_| ApiError::internal());
        match self {
            PullCall::Pull(r) => {
                let a = pull::pull(State(state), caller, ApiId(id), ApiJson(r)).await?;
                Ok(("pulled", json(serde_json::to_value(a.0))?))
            }
            PullCall::Ack(r) => {
                let a = pull::acks::ack(State(state), caller, ApiId(id), ApiJson(r)).await?;
                Ok(("acked", json(serde_json::to_value(a.0))?))
            }
            PullCall::Nack(r) => {
                let a = pull::acks::nack(State(state), caller, ApiId(id), ApiJson(r)).await?;
                Ok(("nacked", json(serde_json::to_value(a.0))?))
            }
        }
    }
}

/// The query, headers and body `POST /topics/{topic}` would get.
pub(super) fn publish_request(p: &Publish) -> Result<(QueryPairs, HeaderMap, Bytes), ApiError> {
    let mut query = Vec::new();
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let options = [
        ("event", p.event.clone()),
        ("key", p.key.clone()),
        ("ttl", p.ttl.clone()),
        ("delay", p.delay.clone()),
        ("at", p.at.clone()),
        ("priority", p.priority.as_ref().map(text)),
    ];
    for (k, v) in options {
        if let Some(v) = v {
            query.push((k.to_owned(), v));
        }
    }
    let mut headers = HeaderMap::new();
    let body = match (&p.data, &p.text) {
        (Some(data), None) => {
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            Bytes::from(data.to_string())
        }
        (None, Some(t)) => Bytes::from(t.clone()),
        _ => {
            return Err(ApiError::bad_request(
                "invalid-frame",
                "Invalid frame",
                "publish carries exactly one of data (JSON) and text",
            ));
        }
    };
    if let Some(k) = &p.idempotency_key {
        let v = HeaderValue::from_str(k).map_err(|_| {
            ApiError::bad_request(
                "invalid-idempotency-key",
                "Invalid Idempotency-Key",
                "idempotency_key is 1-255 printable ASCII characters",
            )
        })?;
        headers.insert("idempotency-key", v);
    }
    Ok((QueryPairs(query), headers, body))
}

/// A publish's HTTP answer as a `published` frame (its body's fields, and
/// `status`: 201 stored, 202 scheduled).
pub(super) async fn answer_frame(r: axum::response::Response, echo: &Echo) -> Bytes {
    let status = r.status().as_u16();
    let replayed = r.headers().contains_key("idempotent-replayed");
    let body = axum::body::to_bytes(r.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let mut v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("status".into(), status.into());
        if replayed {
            m.insert("replayed".into(), true.into());
        }
    }
    frames::server("published", v, echo)
}
