//! The work a topic's JSON Schema can cause on one publish, bounded when
//! the configuration is set.
//!
//! Validation applies subschemas to the instance's nodes. In-place
//! applicators (`allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else`,
//! `dependentSchemas`, `$ref`, `$dynamicRef`) apply more subschemas to the
//! same node; child applicators (`properties`, `items` …) apply theirs to
//! the node's members. A schema of a kilobyte can thus apply millions of
//! subschemas to one node (`anyOf` two `$ref`s to a definition that is the
//! same again, twenty times: 2^20), or double them at each level of a
//! nested payload. [`check`] computes, for the worst single node at each
//! depth up to [`MAX_DEPTH`], how many subschemas apply to it at most, and
//! refuses a schema past [`MAX_APPLICATIONS`]. An `anyOf` of a `string`, an
//! `array` of itself and an `object` of itself (any JSON value) applies 4;
//! a binary tree (`left` and `right` of itself) applies 1 per node: members
//! of objects and of arrays are counted apart, and one property at a time.

use std::collections::HashMap;

use serde_json::Value;

use super::json_limits::MAX_DEPTH;

/// Subschemas that may apply to one node of a payload at most.
pub const MAX_APPLICATIONS: u64 = 2048;

/// Steps the check itself may take (a bounded configuration check).
const MAX_STEPS: u64 = 2_000_000;

/// In-place applicators holding one schema, and those holding several.
const IN_PLACE_ONE: [&str; 6] = ["not", "if", "then", "else", "$ref", "$dynamicRef"];
const IN_PLACE_MANY: [&str; 3] = ["allOf", "anyOf", "oneOf"];

type Node = *const Value;

/// Why a schema is refused.
pub type Refused = String;

/// Refuses a schema that can apply more than [`MAX_APPLICATIONS`]
/// subschemas to one node of a payload, whose `$ref`s loop without
/// descending into the payload, or that refers to what it does not hold.
/// Otherwise returns how many it applies to one node at most.
pub fn check(root: &Value) -> Result<u64, Refused> {
    let mut b = Bounds {
        root,
        here: HashMap::new(),
        at: HashMap::new(),
        steps: 0,
    };
    let mut most = 0;
    for depth in 0..=MAX_DEPTH {
        let n = b.at_depth(root, depth)?;
        most = most.max(n);
        if n > MAX_APPLICATIONS {
            return Err(format!(
                "can apply more than {MAX_APPLICATIONS} subschemas to one value of a payload \
                 (at depth {depth}); the likely cause is anyOf/oneOf/allOf over $refs that \
                 repeat each other"
            ));
        }
        if n == 0 {
            break;
        }
    }
    Ok(most)
}

struct Bounds<'a> {
    root: &'a Value,
    /// Each schema with what applies in place with it (itself included).
    here: HashMap<Node, std::rc::Rc<Vec<&'a Value>>>,
    /// Subschemas applying to a node `depth` levels below one that `schema` applies to.
    at: HashMap<(Node, usize), u64>,
    steps: u64,
}

impl<'a> Bounds<'a> {
    fn step(&mut self, n: u64) -> Result<(), Refused> {
        self.steps += n;
        if self.steps > MAX_STEPS {
            return Err("is too complex for herald to bound the work it causes".into());
        }
        Ok(())
    }

    /// The subschemas applying to a value `depth` levels below a value
    /// that `s` applies to, at most (saturating past the limit).
    fn at_depth(&mut self, s: &'a Value, depth: usize) -> Result<u64, Refused> {
        let key = (s as Node, depth);
        if let Some(n) = self.at.get(&key) {
            return Ok(*n);
        }
        let here = self.here(s)?;
        let n = if depth == 0 {
            here.len() as u64
        } else {
            let (mut objects, mut arrays) = (0u64, 0u64);
            for t in here.iter() {
                self.step(1)?;
                objects = objects.saturating_add(self.members(t, OBJECT, depth - 1)?);
                arrays = arrays.saturating_add(self.members(t, ARRAY, depth - 1)?);
            }
            objects.max(arrays)
        };
        let n = n.min(MAX_APPLICATIONS + 1);
        self.at.insert(key, n);
        Ok(n)
    }

    /// What `t`'s child applicators of one kind apply to one member,
    /// `depth` further down: the largest of the alternatives (one property
    /// at a time) plus those that apply to every member.
    fn members(&mut self, t: &'a Value, kind: &Kind, depth: usize) -> Result<u64, Refused> {
        let Value::Object(map) = t else { return Ok(0) };
        let mut n = 0u64;
        if let Some(alternatives) = map.get(kind.alternatives) {
            let mut most = 0;
            for s in children(alternatives, kind.alternatives) {
                most = most.max(self.at_depth(s, depth)?);
            }
            n = n.saturating_add(most);
        }
        for key in kind.every {
            if let Some(v) = map.get(*key) {
                for s in children(v, key) {
                    n = n.saturating_add(self.at_depth(s, depth)?);
                }
            }
        }
        Ok(n)
    }

    /// `s` and every subschema its in-place applicators reach.
    fn here(&mut self, s: &'a Value) -> Result<std::rc::Rc<Vec<&'a Value>>, Refused> {
        if let Some(h) = self.here.get(&(s as Node)) {
            return Ok(h.clone());
        }
        let mut out = Vec::new();
        let mut path = Vec::new();
        self.collect(s, &mut out, &mut path)?;
        let h = std::rc::Rc::new(out);
        self.here.insert(s as Node, h.clone());
        Ok(h)
    }

    fn collect(
        &mut self,
        s: &'a Value,
        out: &mut Vec<&'a Value>,
        path: &mut Vec<Node>,
    ) -> Result<(), Refused> {
        self.step(1)?;
        if path.contains(&(s as Node)) {
            return Err("has $refs that loop without descending into the payload".into());
        }
        out.push(s);
        if out.len() as u64 > MAX_APPLICATIONS {
            return Err(format!(
                "can apply more than {MAX_APPLICATIONS} subschemas to one value of a payload"
            ));
        }
        let Value::Object(map) = s else {
            return Ok(());
        };
        path.push(s as Node);
        for (key, v) in map {
            let k = key.as_str();
            let targets: Vec<&'a Value> = if k == "$ref" || k == "$dynamicRef" {
                vec![self.resolve(v)?]
            } else if IN_PLACE_ONE.contains(&k) || IN_PLACE_MANY.contains(&k) {
                children(v, k).collect()
            } else if k == "dependentSchemas" {
                v.as_object().into_iter().flat_map(|m| m.values()).collect()
            } else {
                continue;
            };
            for t in targets {
                self.collect(t, out, path)?;
            }
        }
        path.pop();
        Ok(())
    }

    /// The subschema a local reference names.
    fn resolve(&self, r: &Value) -> Result<&'a Value, Refused> {
        let Some(r) = r.as_str() else {
            return Err("has a $ref that is not a string".into());
        };
        let found = match r.strip_prefix('#') {
            Some("") => Some(self.root),
            Some(p) if p.starts_with('/') => self.root.pointer(&percent_decoded(p)),
            Some(name) => anchor(self.root, name),
            None => None,
        };
        found.ok_or_else(|| format!("has a $ref {r:?} that names nothing in the schema"))
    }
}

/// Child applicators of one kind: one of `alternatives` applies to a
/// member, and each of `every` may.
struct Kind {
    alternatives: &'static str,
    every: &'static [&'static str],
}

const OBJECT: &Kind = &Kind {
    alternatives: "properties",
    every: &[
        "patternProperties",
        "additionalProperties",
        "unevaluatedProperties",
        "propertyNames",
    ],
};
const ARRAY: &Kind = &Kind {
    alternatives: "prefixItems",
    every: &["items", "contains", "unevaluatedItems"],
};

/// The subschemas a keyword's value holds: each member of an array or of
/// a map of names to schemas, or the value itself.
fn children<'a>(v: &'a Value, key: &str) -> Box<dyn Iterator<Item = &'a Value> + 'a> {
    match (v, key) {
        (Value::Array(items), _) => Box::new(items.iter()),
        (Value::Object(m), "properties" | "patternProperties") => Box::new(m.values()),
        _ => Box::new(std::iter::once(v)),
    }
}

/// The subschema whose `$anchor` or `$dynamicAnchor` is `name`.
fn anchor<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    match v {
        Value::Object(map) => {
            let named = ["$anchor", "$dynamicAnchor"]
                .iter()
                .any(|k| map.get(*k).and_then(Value::as_str) == Some(name));
            if named {
                return Some(v);
            }
            map.values().find_map(|c| anchor(c, name))
        }
        Value::Array(items) => items.iter().find_map(|c| anchor(c, name)),
        _ => None,
    }
}

/// A JSON Pointer from a URI fragment (`%25` → `%` …).
fn percent_decoded(p: &str) -> String {
    let bytes = p.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| {
            std::str::from_utf8(h)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        });
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `a0` a string, `aN` an `anyOf` of two `$ref`s to `aN-1`.
    fn fan_out(depth: usize) -> Value {
        let mut defs = serde_json::Map::new();
        defs.insert("a0".into(), json!({"type": "string"}));
        for i in 1..=depth {
            let r = format!("#/$defs/a{}", i - 1);
            defs.insert(
                format!("a{i}"),
                json!({"anyOf": [{"$ref": r}, {"$ref": r}]}),
            );
        }
        json!({"$defs": defs, "$ref": format!("#/$defs/a{depth}")})
    }

    #[test]
    fn a_fan_out_of_refs_is_refused_and_a_small_one_accepted() {
        assert!(
            check(&fan_out(8)).is_ok_and(|n| n > 256),
            "{:?}",
            check(&fan_out(8))
        );
        for depth in [12, 20, 24] {
            let e = check(&fan_out(depth)).unwrap_err();
            assert!(e.contains("more than 2048"), "{depth}: {e}");
        }
    }

    #[test]
    fn doubling_at_each_level_of_the_payload_is_refused() {
        // Both branches descend into `a` with the whole schema again.
        let s = json!({"anyOf": [
            {"properties": {"a": {"$ref": "#"}}},
            {"properties": {"a": {"$ref": "#"}}, "required": ["a"]}
        ]});
        let e = check(&s).unwrap_err();
        assert!(e.contains("at depth"), "{e}");
    }

    #[test]
    fn common_recursive_schemas_are_accepted() {
        let any_json = json!({"$defs": {"json": {"anyOf": [
            {"type": ["string", "number", "boolean", "null"]},
            {"type": "array", "items": {"$ref": "#/$defs/json"}},
            {"type": "object", "additionalProperties": {"$ref": "#/$defs/json"}}
        ]}}, "$ref": "#/$defs/json"});
        let tree = json!({"type": "object", "properties": {
            "value": {"type": "number"},
            "left": {"$ref": "#"}, "right": {"$ref": "#"}
        }});
        let anchored = json!({"$defs": {"n": {"$anchor": "node", "items": {"$ref": "#node"}}},
            "$ref": "#node"});
        for s in [
            any_json,
            tree,
            anchored,
            json!(true),
            json!({"type": "object"}),
        ] {
            assert!(check(&s).is_ok_and(|n| n <= 5), "{s}: {:?}", check(&s));
        }
    }

    #[test]
    fn loops_and_dangling_refs_are_refused() {
        let e = check(&json!({"anyOf": [{"$ref": "#"}]})).unwrap_err();
        assert!(e.contains("loop"), "{e}");
        let e = check(&json!({"$ref": "#/$defs/missing"})).unwrap_err();
        assert!(e.contains("names nothing"), "{e}");
    }
}
