//! Messages: what a publisher hands in ([`NewMessage`]), what the log holds
//! ([`Message`]), and the one wire encoding every reader shares: the JSON
//! envelope `{"id","topic","seq","time","event","data"}` and the SSE frame
//! around it, built once per message and shared by reference counting.

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};

use super::{OrderingKey, Position, Priority, TopicName};

/// Microseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp(chrono::Utc::now().timestamp_micros())
    }

    /// RFC 3339 with microseconds, e.g. `2026-11-24T04:09:33.123456Z`.
    pub fn to_rfc3339(self) -> String {
        chrono::DateTime::from_timestamp_micros(self.0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }
}

/// An SSE event type (`event:` line): same alphabet as topic levels,
/// 1–64 characters. Default `message`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EventType(Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event type {0:?} is invalid: use 1-64 characters of A-Z a-z 0-9 _ - .")]
pub struct EventTypeError(pub String);

impl EventType {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Result<Self, EventTypeError> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if ok {
            Ok(Self(Arc::from(s)))
        } else {
            Err(EventTypeError(s.to_owned()))
        }
    }

    /// The names herald's streams give their own events (`event: gap`,
    /// presence's `join` and `leave`): a published message may not take
    /// them, or a subscriber could not tell it from herald's event.
    pub const RESERVED: [&'static str; 3] = ["gap", "join", "leave"];

    /// Whether a message may be published with this type.
    pub fn is_reserved(&self) -> bool {
        Self::RESERVED.contains(&&*self.0)
    }

    pub fn message() -> Self {
        static DEFAULT: OnceLock<EventType> = OnceLock::new();
        DEFAULT
            .get_or_init(|| EventType(Arc::from("message")))
            .clone()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// A message body: JSON (validated, stored as its text) or UTF-8 text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Valid JSON text on a single line (see [`Payload::json`]).
    Json(String),
    Text(String),
}

impl Payload {
    /// Validates JSON against herald's limits ([`super::json_limits`]) and
    /// puts it on one line, as an SSE `data:` line needs. Raw CR/LF can only
    /// occur between tokens in valid JSON (inside strings they must be
    /// escaped), so dropping them changes no value.
    pub fn json(text: String) -> Result<Self, super::json_limits::JsonRefused> {
        super::json_limits::check(&text)?;
        let text = if text.contains(['\n', '\r']) {
            text.replace(['\n', '\r'], "")
        } else {
            text
        };
        Ok(Payload::Json(text.trim().to_owned()))
    }

    pub fn is_json(&self) -> bool {
        matches!(self, Payload::Json(_))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Payload::Json(s) | Payload::Text(s) => s,
        }
    }

    pub fn len(&self) -> usize {
        self.as_str().len()
    }

    pub fn is_empty(&self) -> bool {
        self.as_str().is_empty()
    }
}

/// A message as a publisher hands it in, before it has a place in the log.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub topic: TopicName,
    pub event: EventType,
    pub payload: Payload,
    pub content_type: String,
    /// How long the message lives after its commit (`?ttl=`, or the
    /// topic's `message_ttl`); `None`: until retention removes it.
    pub ttl: Option<std::time::Duration>,
    /// `?priority=`: higher is leased and pushed first.
    pub priority: Priority,
    /// `?key=`: the ordering key.
    pub key: Option<OrderingKey>,
}

/// A committed message.
#[derive(Debug)]
pub struct Message {
    pub position: Position,
    pub topic: TopicName,
    pub seq: i64,
    pub time: Timestamp,
    pub event: EventType,
    pub payload: Payload,
    pub content_type: String,
    /// When it stops being sent, if it expires.
    pub expires: Option<Timestamp>,
    pub priority: Priority,
    pub key: Option<OrderingKey>,
    /// The SSE frame, built by the first reader that needs it and then
    /// shared by every subscriber (messages travel as `Arc`s).
    encoded: OnceLock<Encoded>,
    /// The payload as a JSON value for filters, parsed once by the first
    /// filter that looks at it.
    value: OnceLock<serde_json::Value>,
}

#[derive(Debug)]
struct Encoded {
    frame: Bytes,
    envelope: std::ops::Range<usize>,
}

impl Message {
    pub fn new(
        position: Position,
        topic: TopicName,
        seq: i64,
        time: Timestamp,
        event: EventType,
        payload: Payload,
        content_type: String,
    ) -> Self {
        Self {
            position,
            topic,
            seq,
            time,
            event,
            payload,
            content_type,
            expires: None,
            priority: Priority::DEFAULT,
            key: None,
            encoded: OnceLock::new(),
            value: OnceLock::new(),
        }
    }

    /// The same message, expiring at `expires`.
    pub fn expiring(mut self, expires: Option<Timestamp>) -> Self {
        self.expires = expires;
        self
    }

    /// The same message, with its publish options.
    pub fn with_options(mut self, priority: Priority, key: Option<OrderingKey>) -> Self {
        self.priority = priority;
        self.key = key;
        self
    }

    /// Whether it has expired at `now`: then it is sent to no one.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }

    /// The payload as filters see it: the JSON value, or a JSON string for
    /// text payloads.
    pub fn data(&self) -> &serde_json::Value {
        self.value.get_or_init(|| match &self.payload {
            // Stored JSON was checked at publish against limits under
            // serde_json's, so it parses. A row edited by hand into
            // something else is seen as its text, never as null.
            Payload::Json(text) => serde_json::from_str(text).unwrap_or_else(|e| {
                tracing::warn!(position = %self.position, error = %e, "stored JSON payload does not parse; filters see it as text");
                serde_json::Value::String(text.clone())
            }),
            Payload::Text(text) => serde_json::Value::String(text.clone()),
        })
    }

    /// What a filter sees of this message.
    pub fn view(&self) -> super::filter::MessageView<'_> {
        super::filter::MessageView {
            topic: self.topic.as_str(),
            event: self.event.as_str(),
            seq: self.seq,
            priority: self.priority.get(),
            key: self.key.as_ref().map(OrderingKey::as_str),
            data: self.data(),
        }
    }

    /// About how much memory this message takes once subscribers have
    /// used it: the struct, the payload, and the SSE frame built from it
    /// (the payload again plus the envelope's fields). A filter's parsed
    /// JSON is not counted: most streams have none. For byte budgets.
    pub fn estimated_bytes(&self) -> usize {
        const FRAME_OVERHEAD: usize = 160;
        std::mem::size_of::<Self>()
            + 2 * self.payload.len()
            + self.topic.as_str().len()
            + self.content_type.len()
            + FRAME_OVERHEAD
    }

    /// `id: …\nevent: …\ndata: <envelope>\n\n`, ready to write to a stream.
    pub fn sse_frame(&self) -> Bytes {
        self.encoded().frame.clone()
    }

    /// The JSON envelope, `{"id","topic","seq","time","event","data"}`.
    pub fn envelope(&self) -> Bytes {
        let e = self.encoded();
        e.frame.slice(e.envelope.clone())
    }

    fn encoded(&self) -> &Encoded {
        self.encoded.get_or_init(|| {
            let mut buf = BytesMut::with_capacity(self.payload.len() + 160);
            let head = format!(
                "id: {}\nevent: {}\ndata: ",
                self.position,
                self.event.as_str()
            );
            buf.put_slice(head.as_bytes());
            let start = buf.len();
            let mut w = (&mut buf).writer();
            // Topic and event names are plain ASCII without quotes or
            // backslashes (validated), so they need no escaping.
            let _ = std::io::Write::write_fmt(
                &mut w,
                format_args!(
                    r#"{{"id":{},"topic":"{}","seq":{},"time":"{}","event":"{}","priority":{},"#,
                    self.position,
                    self.topic,
                    self.seq,
                    self.time.to_rfc3339(),
                    self.event.as_str(),
                    self.priority.get()
                ),
            );
            if let Some(key) = &self.key {
                // Printable ASCII (validated); serde_json escapes `"` and `\`.
                buf.put_slice(b"\"key\":");
                let _ = serde_json::to_writer((&mut buf).writer(), key.as_str());
                buf.put_u8(b',');
            }
            if let Some(expires) = self.expires {
                buf.put_slice(b"\"expires\":\"");
                buf.put_slice(expires.to_rfc3339().as_bytes());
                buf.put_slice(b"\",");
            }
            buf.put_slice(b"\"data\":");
            match &self.payload {
                Payload::Json(text) => buf.put_slice(text.as_bytes()),
                Payload::Text(text) => {
                    // serde_json escapes control characters, so the string
                    // stays on one line.
                    let _ = serde_json::to_writer((&mut buf).writer(), text);
                }
            }
            buf.put_u8(b'}');
            let end = buf.len();
            buf.put_slice(b"\n\n");
            Encoded {
                frame: buf.freeze(),
                envelope: start..end,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(payload: Payload) -> Message {
        Message::new(
            Position(42),
            TopicName::parse("orders").unwrap(),
            7,
            Timestamp(1_700_000_000_123_456),
            EventType::message(),
            payload,
            "application/json".into(),
        )
    }

    #[test]
    fn json_payloads_are_embedded_as_json() {
        let m = message(Payload::json("{\n  \"total\": 150\n}\n".into()).unwrap());
        let envelope: serde_json::Value = serde_json::from_slice(&m.envelope()).unwrap();
        assert_eq!(
            envelope,
            serde_json::json!({"id": 42, "topic": "orders", "seq": 7,
                "time": "2023-11-14T22:13:20.123456Z", "event": "message",
                "priority": 3, "data": {"total": 150}})
        );
        let frame = String::from_utf8(m.sse_frame().to_vec()).unwrap();
        assert!(frame.starts_with("id: 42\nevent: message\ndata: {"));
        assert!(frame.ends_with("}\n\n"));
        assert_eq!(frame.matches('\n').count(), 4, "{frame}");
    }

    #[test]
    fn text_payloads_become_json_strings_on_one_line() {
        let m = message(Payload::Text("line 1\nline \"2\"".into()));
        let envelope: serde_json::Value = serde_json::from_slice(&m.envelope()).unwrap();
        assert_eq!(envelope["data"], "line 1\nline \"2\"");
        assert_eq!(m.sse_frame().iter().filter(|b| **b == b'\n').count(), 4);
    }

    #[test]
    fn an_expiring_message_carries_expires_in_its_envelope() {
        let m = message(Payload::Text("x".into())).expiring(Some(Timestamp(1_700_000_060_000_000)));
        let envelope: serde_json::Value = serde_json::from_slice(&m.envelope()).unwrap();
        assert_eq!(envelope["expires"], "2023-11-14T22:14:20.000000Z");
        assert_eq!(envelope["data"], "x");
        assert!(!m.is_expired(Timestamp(1_700_000_059_999_999)));
        assert!(m.is_expired(Timestamp(1_700_000_060_000_000)));
    }

    #[test]
    fn invalid_json_is_refused() {
        assert!(Payload::json("{\"a\":".into()).is_err());
        assert!(Payload::json("".into()).is_err());
        assert!(Payload::json("1 2".into()).is_err());
        assert!(Payload::json(r#"{"s":"\ud800"}"#.into()).is_err());
    }

    #[test]
    fn event_types_are_validated() {
        assert!(EventType::parse("order.created").is_ok());
        for bad in ["", "a b", "a\nb", &"x".repeat(65)] {
            assert!(EventType::parse(bad).is_err(), "{bad:?}");
        }
    }
}
