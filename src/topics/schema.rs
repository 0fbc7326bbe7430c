//! A topic's JSON Schema (draft 2020-12), compiled once per configuration
//! and used on every publish to the topic. Nothing is ever fetched: a
//! remote `$ref` is refused when the configuration is set
//! ([`crate::domain::TopicConfig::validate`]), and jsonschema is built
//! without its network and file resolvers.

use serde::{Deserialize, Serialize};

/// One reason a payload does not satisfy the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SchemaViolation {
    /// Which message of a batch (0-based); absent for a single publish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// JSON Pointer to the offending value in the payload (`""`: the root).
    pub path: String,
    pub message: String,
}

/// Most violations reported for one request.
const MAX_REPORTED: usize = 20;

/// A compiled schema.
pub struct Schema(jsonschema::Validator);

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Schema")
    }
}

impl Schema {
    /// Compiles `schema`; an invalid one is described in the error.
    pub fn compile(schema: &serde_json::Value) -> Result<Self, String> {
        jsonschema::draft202012::options()
            .build(schema)
            .map(Schema)
            .map_err(|e| e.to_string())
    }

    /// The violations of `payload` (empty when it is valid), each marked
    /// with `index` for a batch element.
    pub fn check(&self, payload: &serde_json::Value, index: Option<usize>) -> Vec<SchemaViolation> {
        if self.0.is_valid(payload) {
            return Vec::new();
        }
        self.0
            .iter_errors(payload)
            .take(MAX_REPORTED)
            .map(|e| SchemaViolation {
                index,
                path: e.instance_path().as_str().to_owned(),
                message: e.to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order_schema() -> Schema {
        Schema::compile(&json!({
            "type": "object",
            "required": ["total"],
            "properties": {"total": {"type": "number", "minimum": 0}}
        }))
        .unwrap()
    }

    #[test]
    fn valid_payloads_pass_and_invalid_ones_say_where() {
        let s = order_schema();
        assert!(s.check(&json!({"total": 3}), None).is_empty());
        let v = s.check(&json!({"total": -1}), Some(2));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, "/total");
        assert_eq!(v[0].index, Some(2));
        assert!(v[0].message.contains("minimum"), "{}", v[0].message);
        let v = s.check(&json!({}), None);
        assert_eq!(v[0].path, "");
    }

    #[test]
    fn an_invalid_schema_does_not_compile() {
        assert!(Schema::compile(&json!({"type": "nonsense"})).is_err());
        assert!(Schema::compile(&json!({"minimum": "zero"})).is_err());
    }
}
