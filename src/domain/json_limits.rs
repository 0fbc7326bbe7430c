//! What herald accepts as a JSON payload: valid JSON that ordinary parsers
//! read back, so that whatever is stored can be served and filtered.
//!
//! - Arrays and objects nest at most [`MAX_DEPTH`] levels. Deeper text is
//!   valid JSON, but Python's `json` (1,000 levels), serde_json (127) and
//!   others refuse it, and herald's filters parse payloads with serde_json.
//! - Numbers must be finite as a double: `1e999` is valid JSON syntax, yet
//!   most parsers fail on it or read infinity, which JSON cannot carry.
//! - Strings must be valid Unicode: a lone surrogate escape (`"\ud800"`)
//!   is refused by strict readers.
//!
//! The check walks the text once without building a value.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The deepest nesting of arrays and objects a payload may have. Below
/// serde_json's own limit (127), so every stored payload parses again.
pub const MAX_DEPTH: usize = 64;

/// Why a JSON payload was refused; the message names the limit it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JsonRefused(String);

/// Checks `text` against the limits above.
pub fn check(text: &str) -> Result<(), JsonRefused> {
    let mut de = serde_json::Deserializer::from_str(text);
    Check { depth: 0 }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| {
            let message = e.to_string();
            if message.starts_with("number out of range") {
                JsonRefused(format!(
                    "{message}: numbers must be finite, at most {:e} in magnitude",
                    f64::MAX
                ))
            } else {
                JsonRefused(message)
            }
        })
}

/// One value at `depth` levels of nesting.
#[derive(Clone, Copy)]
struct Check {
    depth: usize,
}

impl Check {
    fn enter<E: serde::de::Error>(self) -> Result<Check, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format_args!(
                "arrays and objects nested deeper than {MAX_DEPTH} levels (herald's limit)"
            )));
        }
        Ok(Check {
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Check {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        if v.is_finite() {
            Ok(())
        } else {
            Err(E::custom("number out of range"))
        }
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        // Keys go through the same check: that decodes their escapes.
        while map.next_key_seed(inner)?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn nesting_up_to_the_limit_is_accepted_and_parses_again() {
        let text = nested(MAX_DEPTH);
        check(&text).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap();
        let objects = format!("{}1{}", r#"{"a":"#.repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        check(&objects).unwrap();
        serde_json::from_str::<serde_json::Value>(&objects).unwrap();
    }

    #[test]
    fn deeper_nesting_is_refused_naming_the_limit() {
        for depth in [MAX_DEPTH + 1, 10_000, 500_000] {
            let e = check(&nested(depth)).unwrap_err().to_string();
            assert!(e.contains("deeper than 64 levels"), "{e}");
        }
        let mixed = format!("{}{}", r#"[{"a":"#.repeat(40), "}]".repeat(40));
        assert!(check(&mixed).is_err());
    }

    #[test]
    fn non_finite_numbers_are_refused_naming_the_limit() {
        for text in [
            "1e999",
            "-1e999",
            "[1, 2e400]",
            r#"{"n": 1e309}"#,
            &"9".repeat(400),
        ] {
            let e = check(text).unwrap_err().to_string();
            assert!(e.contains("number out of range"), "{text}: {e}");
            assert!(e.contains("1.7976931348623157e308"), "{text}: {e}");
        }
        for text in ["1e308", "-1.5e-400", "18446744073709551616", "0"] {
            check(text).unwrap();
        }
    }

    #[test]
    fn invalid_text_is_refused() {
        for text in [
            "",
            "{",
            "1 2",
            r#"{"s":"\ud800"}"#,
            r#"{"\udc00":1}"#,
            "[1,]",
        ] {
            assert!(check(text).is_err(), "{text}");
        }
    }
}
