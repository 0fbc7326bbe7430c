//! A topic's configuration: how long its messages are kept, how long each
//! one lives, how many may subscribe, the JSON Schema its payloads must
//! follow, and a description. Parsed and checked here once; storage keeps
//! it as JSON text.

use serde::{Deserialize, Serialize};

use super::HumanDuration;

/// Largest schema accepted, as JSON text.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
/// Most messages a count-based retention may keep.
pub const MAX_RETAINED_MESSAGES: u64 = 1_000_000_000_000;
/// Most live subscribers a topic may allow.
pub const MAX_SUBSCRIBERS: u32 = 1_000_000;

/// What `PUT /topics/{topic}` takes and `GET` shows under `config`.
/// Every field is optional; an absent one falls back to the server's
/// default (retention) or to nothing (no TTL, no limit, no schema).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// How much history to keep; each bound on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// How long each message lives after it is published (e.g. "30m"),
    /// unless the publish says `?ttl=`. Expired messages are never sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "30m")]
    pub message_ttl: Option<HumanDuration>,
    /// Most live subscribers at once (stored; enforced with presence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub max_subscribers: Option<u32>,
    /// A JSON Schema (draft 2020-12) every JSON payload must satisfy: an
    /// object, or `true` / `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub schema: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 1024)]
    pub description: Option<String>,
}

/// Retention bounds. A message goes when either says so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Keep messages this long (e.g. "7d").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "7d")]
    pub max_age: Option<HumanDuration>,
    /// Keep at most this many of the newest messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_messages: Option<u64>,
}

/// A configuration value out of range: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: String,
}

fn bad(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        reason: reason.into(),
    }
}

impl TopicConfig {
    /// Checks ranges (serde already checked types, spellings and unknown
    /// fields). The schema is compiled separately, by its user.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(r) = &self.retention {
            if r.max_age.is_some_and(|d| d.is_zero()) {
                return Err(bad("retention.max_age", "must be longer than 0"));
            }
            if r.max_messages == Some(0) || r.max_messages > Some(MAX_RETAINED_MESSAGES) {
                return Err(bad(
                    "retention.max_messages",
                    format!("must be from 1 to {MAX_RETAINED_MESSAGES}"),
                ));
            }
        }
        if self.message_ttl.is_some_and(|d| d.0.as_millis() < 1000) {
            return Err(bad("message_ttl", "must be at least 1s"));
        }
        if self.max_subscribers == Some(0) || self.max_subscribers > Some(MAX_SUBSCRIBERS) {
            return Err(bad(
                "max_subscribers",
                format!("must be from 1 to {MAX_SUBSCRIBERS}"),
            ));
        }
        if let Some(d) = &self.description
            && d.chars().count() > MAX_DESCRIPTION_CHARS
        {
            return Err(bad(
                "description",
                format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        if let Some(schema) = &self.schema {
            check_schema_shape(schema)?;
        }
        Ok(())
    }
}

/// A schema is an object or a boolean, not too large, and refers to
/// nothing outside itself: herald never fetches a remote `$ref`.
fn check_schema_shape(schema: &serde_json::Value) -> Result<(), ConfigError> {
    if !(schema.is_object() || schema.is_boolean()) {
        return Err(bad(
            "schema",
            "must be a JSON Schema: an object or a boolean",
        ));
    }
    let size = serde_json::to_string(schema).map_or(usize::MAX, |s| s.len());
    if size > MAX_SCHEMA_BYTES {
        return Err(bad(
            "schema",
            format!("is {size} bytes; the limit is {MAX_SCHEMA_BYTES}"),
        ));
    }
    if let Some(r) = remote_ref(schema) {
        return Err(bad(
            "schema",
            format!(
                "$ref {r:?} points outside the schema; only local references (\"#…\") are allowed"
            ),
        ));
    }
    super::schema_bounds::check(schema).map_err(|e| bad("schema", e))?;
    Ok(())
}

/// The first `$ref` that is not a local `#…` reference, if any.
fn remote_ref(v: &serde_json::Value) -> Option<&str> {
    match v {
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| match (k.as_str(), v) {
            ("$ref" | "$dynamicRef", serde_json::Value::String(r)) if !r.starts_with('#') => {
                Some(r.as_str())
            }
            _ => remote_ref(v),
        }),
        serde_json::Value::Array(items) => items.iter().find_map(remote_ref),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<TopicConfig, String> {
        let c: TopicConfig = serde_json::from_value(v).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn a_full_configuration_round_trips() {
        let v = json!({"retention": {"max_age": "7d", "max_messages": 1000},
            "message_ttl": "30m", "max_subscribers": 10,
            "schema": {"type": "object"}, "description": "orders"});
        let c = parse(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&c).unwrap(), v);
    }

    #[test]
    fn bad_values_name_their_field() {
        for (v, field) in [
            (json!({"retention": {"max_age": "0"}}), "retention.max_age"),
            (
                json!({"retention": {"max_messages": 0}}),
                "retention.max_messages",
            ),
            (json!({"message_ttl": "500ms"}), "message_ttl"),
            (json!({"max_subscribers": 0}), "max_subscribers"),
            (json!({"description": "x".repeat(1025)}), "description"),
            (json!({"schema": 3}), "schema"),
            (
                json!({"schema": {"$ref": "https://example.com/s.json"}}),
                "schema",
            ),
            (
                json!({"schema": {"properties": {"a": {"$ref": "other.json#/x"}}}}),
                "schema",
            ),
        ] {
            let e = parse(v.clone()).unwrap_err();
            assert!(e.starts_with(field), "{v}: {e}");
        }
        for v in [
            json!({"retention": {"max_age": "-1d"}}),
            json!({"retention": {"max_age": "1y"}}),
            json!({"retention": {"max_messages": -5}}),
            json!({"colour": "blue"}),
            json!({"retention": {"age": "1d"}}),
        ] {
            assert!(parse(v.clone()).is_err(), "{v}");
        }
        assert!(parse(json!({"schema": {"$defs": {"a": {}}, "$ref": "#/$defs/a"}})).is_ok());
    }
}
