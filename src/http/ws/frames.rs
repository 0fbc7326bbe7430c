//! The frames of `GET /ws`: what clients send (parsed and checked here,
//! so a bad frame becomes an `error` frame, never a closed socket) and
//! what herald sends (JSON text, built here).

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::domain::{Message, Position};
use crate::fanout::gaps;
use crate::fanout::subscriber::{Format, StreamSettings};
use crate::http::error::ApiError;

/// Longest `sub` name, in characters.
pub const MAX_SUB_CHARS: usize = 64;

/// A client frame, after its `op`.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ClientFrame {
    Subscribe(Subscribe),
    Unsubscribe {
        sub: String,
    },
    Publish(Publish),
    Pull {
        subscription: i64,
        #[serde(flatten)]
        body: Value,
    },
    Ack {
        subscription: i64,
        #[serde(flatten)]
        body: Value,
    },
    Nack {
        subscription: i64,
        #[serde(flatten)]
        body: Value,
    },
    Ping {},
}

/// `{"op":"subscribe","sub","topics","filter"?,"last_event_id"?,"presence"?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    pub sub: String,
    pub topics: Vec<String>,
    pub filter: Option<String>,
    /// A message id (number or string) or `"earliest"`.
    pub last_event_id: Option<Value>,
    #[serde(default)]
    pub presence: bool,
}

/// `{"op":"publish","ref","topic","data"|"text", options…}`: the options
/// of `POST /topics/{topic}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    pub topic: String,
    /// A JSON payload.
    pub data: Option<Value>,
    /// A text payload (instead of `data`).
    pub text: Option<String>,
    pub event: Option<String>,
    pub priority: Option<Value>,
    pub key: Option<String>,
    pub ttl: Option<String>,
    pub delay: Option<String>,
    pub at: Option<String>,
    pub idempotency_key: Option<String>,
}

/// The fields of a frame that an answer echoes: `ref`, and `sub`.
#[derive(Debug, Default, Clone)]
pub struct Echo {
    pub reference: Option<Value>,
    pub sub: Option<String>,
}

/// Parses a text frame: what an answer can echo of it, and the frame or
/// why it is refused.
pub fn parse(text: &str) -> (Echo, Result<ClientFrame, ApiError>) {
    let mut value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return (
                Echo::default(),
                Err(invalid("invalid-frame", format!("not JSON: {e}"))),
            );
        }
    };
    let Some(obj) = value.as_object_mut() else {
        return (
            Echo::default(),
            Err(invalid("invalid-frame", "a frame is a JSON object")),
        );
    };
    let echo = Echo {
        reference: obj.remove("ref"),
        sub: obj.get("sub").and_then(Value::as_str).map(str::to_owned),
    };
    let op = match obj.get("op") {
        Some(Value::String(op)) => op.clone(),
        _ => {
            return (
                echo,
                Err(invalid("invalid-frame", "a frame needs an \"op\" string")),
            );
        }
    };
    const OPS: [&str; 7] = [
        "subscribe",
        "unsubscribe",
        "publish",
        "pull",
        "ack",
        "nack",
        "ping",
    ];
    if !OPS.contains(&op.as_str()) {
        let detail = format!("unknown op {op:?}; use one of {}", OPS.join(", "));
        return (echo, Err(invalid("unknown-op", detail)));
    }
    let frame =
        serde_json::from_value(value).map_err(|e| invalid("invalid-frame", format!("{op}: {e}")));
    (echo, frame)
}

fn invalid(kind: &'static str, detail: impl Into<String>) -> ApiError {
    let title = match kind {
        "unknown-op" => "Unknown op",
        _ => "Invalid frame",
    };
    ApiError::bad_request(kind, title, detail)
}

/// `{"op": op, …fields, "ref"?, "sub"?}` as text.
pub fn server(op: &str, fields: Value, echo: &Echo) -> Bytes {
    let mut obj = Map::new();
    obj.insert("op".into(), Value::String(op.into()));
    if let Some(r) = &echo.reference {
        obj.insert("ref".into(), r.clone());
    }
    if let Some(s) = &echo.sub {
        obj.insert("sub".into(), Value::String(s.clone()));
    }
    if let Value::Object(fields) = fields {
        obj.extend(fields);
    }
    Bytes::from(Value::Object(obj).to_string())
}

/// An `error` frame: the problem object, plus `ref`/`sub` when known.
pub fn error(e: &ApiError, echo: &Echo) -> Bytes {
    let problem = serde_json::json!({
        "type": format!("urn:herald:problem:{}", e.kind),
        "title": e.title,
        "status": e.status.as_u16(),
        "detail": e.detail,
    });
    let mut problem = problem;
    if !e.errors.is_empty() {
        problem["errors"] = serde_json::to_value(&e.errors).unwrap_or_default();
    }
    server("error", problem, echo)
}

/// Checks a `sub` name: 1 to [`MAX_SUB_CHARS`] characters, no control
/// characters.
pub fn check_sub(sub: &str) -> Result<(), ApiError> {
    let n = sub.chars().count();
    if n == 0 || n > MAX_SUB_CHARS || sub.chars().any(char::is_control) {
        return Err(invalid(
            "invalid-sub",
            format!("sub is 1 to {MAX_SUB_CHARS} printable characters"),
        ));
    }
    Ok(())
}

/// A subscription's frames: `message` (the envelope plus `op` and `sub`)
/// and `gap`, one WebSocket text frame each.
pub struct WsFormat {
    /// `{"op":"message","sub":"…",` — the envelope follows without its `{`.
    prefix: Bytes,
    echo: Echo,
}

impl WsFormat {
    pub fn new(sub: &str) -> Self {
        let sub_json = Value::String(sub.to_owned()).to_string();
        WsFormat {
            prefix: Bytes::from(format!(r#"{{"op":"message","sub":{sub_json},"#)),
            echo: Echo {
                reference: None,
                sub: Some(sub.to_owned()),
            },
        }
    }
}

impl Format for WsFormat {
    const COALESCE: bool = false;

    fn message(&self, m: &Message) -> Bytes {
        let envelope = m.envelope();
        let mut out = BytesMut::with_capacity(self.prefix.len() + envelope.len());
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(&envelope[1..]);
        out.freeze()
    }

    fn lost(&self, after: Position, lost: &[(String, i64)]) -> Bytes {
        server("gap", gaps::lost_data(after, lost), &self.echo)
    }

    fn beyond_head(&self, after: Position, head: Position) -> Bytes {
        server("gap", gaps::beyond_head_data(after, head), &self.echo)
    }

    fn opening(&self, _: &StreamSettings) -> Option<Bytes> {
        None
    }

    fn heartbeat(&self) -> Option<Bytes> {
        None // WebSocket pings do this
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_frames_are_errors_that_echo_what_they_can() {
        let kind = |r: Result<ClientFrame, ApiError>| r.unwrap_err().kind;
        assert_eq!(kind(parse("{").1), "invalid-frame");
        let (echo, r) = parse(r#"{"op":"dance","ref":7}"#);
        assert_eq!(
            (kind(r), echo.reference),
            ("unknown-op", Some(Value::from(7)))
        );
        let (echo, r) = parse(r#"{"op":"subscribe","sub":"s","topics":3}"#);
        assert_eq!((kind(r), echo.sub.as_deref()), ("invalid-frame", Some("s")));
        assert!(matches!(
            parse(r#"{"op":"ping"}"#).1,
            Ok(ClientFrame::Ping {})
        ));
    }
}
