//! Message filters: a small CEL-like expression language, compiled once and evaluated per message without allocating.
//!
//! # Language
//!
//! * Roots: `data` (the JSON payload; a text payload is a JSON string),
//!   `topic` (string), `event` (string), `seq` (integer), `priority`
//!   (integer 1-5), `key` (the ordering key: a string, or `null` when the
//!   publisher gave none). Any other identifier is a compile error.
//! * Field access `data.customer.country`, indexing `data["key with space"]`,
//!   `data.items[0]`, computed indexes `data.items[data.i]`. Keywords are valid
//!   field names after a dot (`data.in`, `data.null`).
//! * Literals: `"..."` / `'...'` strings with escapes `\" \' \\ \/ \n \t \r \uXXXX`
//!   (UTF-16 surrogate pairs allowed), integers, floats (`1.5`, `2e3`),
//!   `true`, `false`, `null`, lists `["paid", "shipped"]` (trailing comma ok),
//!   unary minus.
//! * Operators, loosest first: `||`, then `&&`, then the relations
//!   `== != < <= > >= in` (left-associative), then unary `!` and `-`, then
//!   member access / indexing / method calls. Parentheses group.
//! * Functions: `has(data.a.b)`, `size(x)` / `x.size()`, and the methods
//!   `s.startsWith(p)`, `s.endsWith(p)`, `s.contains(p)`. Unknown functions
//!   and wrong argument counts are compile errors.
//!
//! # Semantics
//!
//! * A missing field (or a type error such as `-"x"` or `size(1)`) yields an
//!   *absent* value. Every comparison involving an absent value is false,
//!   including `!=`; `in` with an absent side is false.
//! * `startsWith` / `endsWith` / `contains` return false unless receiver and
//!   argument are both strings (so they are false on missing values).
//! * `!` negates booleans only: `!(data.missing == 1)` is true, but
//!   `!data.missing` is absent (and so not a match).
//! * `&&` and `||` short-circuit left to right and treat any non-boolean
//!   operand as false; their result is always a boolean.
//! * `==` across different types is false, `!=` true. `null == null` is true.
//!   Integers and floats compare numerically (`1 == 1.0`), exactly for
//!   integral values. Lists (JSON arrays and list literals) and objects compare
//!   structurally with the same rules.
//! * `< <= > >=` are defined only for number/number and string/string
//!   (bytewise lexicographic); anything else is false.
//! * `x in list` is element membership using `==`; `"k" in object` is key
//!   membership; any other right-hand side gives false.
//! * `has(path)` is true iff every step of the path exists, even if the final
//!   value is `null`; out-of-range indexes do not exist.
//! * `size` counts chars (Unicode scalar values) of a string, elements of a
//!   list, keys of an object; anything else is absent.
//! * Indexing: integer indexes apply to lists, string keys to objects; a
//!   negative, out-of-range or mismatched index is absent.
//! * The filter matches only if the whole expression evaluates to boolean
//!   `true`; `data.flag` matches iff the field is literally `true`.
//! * Limits: source up to [`MAX_LEN`] bytes; nesting (parentheses, unary
//!   operators, `&&`/`||` chains (one level per chain), each link of a
//!   relation chain, lists, call argument lists, index brackets) up to
//!   [`MAX_DEPTH`]. These bound stack use, so evaluation never overflows.
//! * Error positions are 0-based char offsets into the source.

mod ast;
#[cfg(test)]
mod error_tests;
mod eval;
#[cfg(test)]
mod eval_tests;
#[cfg(test)]
mod fuzz_tests;
mod lexer;
mod parser;

use std::fmt;
use std::sync::Arc;

/// Maximum source length in bytes.
pub const MAX_LEN: usize = 1024;

/// Maximum nesting depth of an expression (see module docs for what counts).
pub const MAX_DEPTH: usize = 32;

/// The parts of a message a filter can see.
#[derive(Debug, Clone, Copy)]
pub struct MessageView<'a> {
    /// Topic the message was published to.
    pub topic: &'a str,
    /// Event name.
    pub event: &'a str,
    /// Per-topic sequence number.
    pub seq: i64,
    /// Priority, 1-5.
    pub priority: u8,
    /// Ordering key, if the publisher gave one (`null` otherwise).
    pub key: Option<&'a str>,
    /// Payload; text payloads are passed as a JSON string value.
    pub data: &'a serde_json::Value,
}

/// A compile error with the 0-based char offset where it was detected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct FilterError {
    /// 0-based char offset into the source.
    pub position: usize,
    /// What went wrong, e.g. "expected ')' but found end of input".
    pub message: String,
}

/// A compiled filter expression. Cheap to clone (shared), `Send + Sync`.
#[derive(Clone)]
pub struct Filter {
    inner: Arc<Compiled>,
}

struct Compiled {
    source: String,
    expr: ast::Expr,
}

impl Filter {
    /// Parses and checks `src`; all name, arity and syntax errors surface here
    /// so that evaluation can be infallible.
    pub fn compile(src: &str) -> Result<Filter, FilterError> {
        if src.len() > MAX_LEN {
            return Err(FilterError {
                position: MAX_LEN,
                message: format!("expression longer than {MAX_LEN} bytes"),
            });
        }
        let expr = parser::parse(src)?;
        Ok(Filter {
            inner: Arc::new(Compiled {
                source: src.to_string(),
                expr,
            }),
        })
    }

    /// True iff the expression evaluates to boolean `true` for `msg`.
    /// Never allocates and never panics.
    pub fn matches(&self, msg: &MessageView<'_>) -> bool {
        eval::is_true(eval::eval(&self.inner.expr, msg))
    }

    /// The source text this filter was compiled from.
    pub fn source(&self) -> &str {
        &self.inner.source
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Filter").field(&self.inner.source).finish()
    }
}
