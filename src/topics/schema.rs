//! A topic's JSON Schema (draft 2020-12), compiled once per configuration
//! and used on every publish to the topic. Nothing is ever fetched: a
//! remote `$ref` is refused when the configuration is set
//! ([`crate::domain::TopicConfig::validate`]), and jsonschema is built
//! without its network and file resolvers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::domain::schema_bounds;

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

/// Bytes a compiled `pattern` may take (the `regex` crate's limits).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How long the schema checks of one publish may take; past it the publish
/// is refused (`422`).
pub const CHECK_BUDGET: Duration = Duration::from_secs(1);

/// Why a publish's payloads were not checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unchecked {
    /// The checks would make more than [`MAX_CHECK_WORK`] applications, or
    /// took longer than [`CHECK_BUDGET`].
    OverBudget,
    /// Every checking thread stayed busy for [`CHECK_BUDGET`].
    Busy,
}

/// Checks `payloads` (JSON text) against `schema` on a blocking thread,
/// never on the async workers, with at most one check per core at a time.
/// The check stops between payloads once its caller has gone (a client
/// that hung up), and is given up past [`CHECK_BUDGET`].
pub async fn check_all(
    schema: Arc<Schema>,
    payloads: Vec<String>,
    batch: bool,
) -> Result<Vec<SchemaViolation>, Unchecked> {
    static CHECKS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    let checks = CHECKS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Semaphore::new(cores))
    });
    let deadline = tokio::time::Instant::now() + CHECK_BUDGET;
    let permit = tokio::time::timeout_at(deadline, checks.clone().acquire_owned())
        .await
        .map_err(|_| Unchecked::Busy)?
        .map_err(|_| Unchecked::Busy)?;
    let gone = Arc::new(AtomicBool::new(false));
    let _tell = Gone(gone.clone());
    let work = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        // Checked at publish against limits under serde_json's: it parses.
        let values: Vec<serde_json::Value> = payloads
            .iter()
            .filter_map(|text| serde_json::from_str(text).ok())
            .collect();
        let nodes: u64 = values.iter().map(count_values).sum();
        if nodes.saturating_mul(schema.1) > MAX_CHECK_WORK {
            return Err(Unchecked::OverBudget);
        }
        let mut errors = Vec::new();
        for (i, value) in values.iter().enumerate() {
            if gone.load(Ordering::Relaxed) || errors.len() >= MAX_REPORTED {
                break;
            }
            errors.extend(schema.check(value, batch.then_some(i)));
        }
        errors.truncate(MAX_REPORTED);
        Ok(errors)
    });
    match tokio::time::timeout_at(deadline, work).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) | Err(_) => Err(Unchecked::OverBudget),
    }
}

/// The values in `v`, itself included.
fn count_values(v: &serde_json::Value) -> u64 {
    let mut n = 0;
    let mut todo = vec![v];
    while let Some(v) = todo.pop() {
        n += 1;
        match v {
            serde_json::Value::Array(items) => todo.extend(items),
            serde_json::Value::Object(map) => todo.extend(map.values()),
            _ => {}
        }
    }
    n
}

/// Tells a check that its caller is gone when dropped.
struct Gone(Arc<AtomicBool>);

impl Drop for Gone {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Subschema applications one publish's check may make at most: the
/// values in its payloads times what the schema applies to one value.
/// Past it the publish is refused (`422`) before any check runs, so no
/// check outlives its caller by long.
pub const MAX_CHECK_WORK: u64 = 10_000_000;

/// A compiled schema, with the most subschemas it applies to one value of
/// a payload.
pub struct Schema(jsonschema::Validator, u64);

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Schema")
    }
}

impl Schema {
    /// Compiles `schema`; an invalid one is described in the error.
    pub fn compile(schema: &serde_json::Value) -> Result<Self, String> {
        // The `regex` engine, not the default `fancy-regex`: it runs in
        // linear time and refuses backreferences and lookaround when the
        // schema is set, instead of backtracking for seconds per publish.
        jsonschema::draft202012::options()
            .with_pattern_options(
                jsonschema::PatternOptions::regex()
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_SIZE_LIMIT),
            )
            .build(schema)
            .map(|v| {
                // A schema stored before herald bounded them counts as the
                // largest allowed.
                let per_value = schema_bounds::check(schema)
                    .unwrap_or(schema_bounds::MAX_APPLICATIONS)
                    .max(1);
                Schema(v, per_value)
            })
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
