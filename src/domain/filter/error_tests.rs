//! Table-driven compile-error tests: (expression, expected position, message substring).

use super::{Filter, FilterError, MAX_DEPTH, MAX_LEN};

fn check(rows: &[(&str, usize, &str)]) {
    let mut failures = Vec::new();
    for (src, pos, needle) in rows {
        match Filter::compile(src) {
            Ok(_) => failures.push(format!("{src:?}: compiled, expected error")),
            Err(e) if e.position != *pos || !e.message.contains(needle) => {
                failures.push(format!(
                    "{src:?}: got {e}, want position {pos} with {needle:?}"
                ));
            }
            Err(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "failing rows:\n{}",
        failures.join("\n")
    );
}

fn nest(open: &str, inner: &str, close: &str, n: usize) -> String {
    format!("{}{inner}{}", open.repeat(n), close.repeat(n))
}

#[test]
fn syntax_errors() {
    check(&[
        ("", 0, "empty expression"),
        ("   ", 0, "empty expression"),
        ("(data.x == 1", 12, "expected ')' but found end of input"),
        ("((data.x == 1)", 14, "expected ')' but found end of input"),
        ("data.x == 1)", 11, "expected end of input but found ')'"),
        (
            "data.x == 1 data.y",
            12,
            "expected end of input but found identifier 'data'",
        ),
        (
            "data.x == 1 2",
            12,
            "expected end of input but found number",
        ),
        ("data.x ==", 9, "expected expression but found end of input"),
        ("data.x == )", 10, "expected expression but found ')'"),
        ("&& true", 0, "expected expression but found '&&'"),
        ("|| true", 0, "expected expression but found '||'"),
        ("data.x = 1", 7, "use '=='"),
        ("data.x & true", 7, "use '&&'"),
        ("data.x | true", 7, "use '||'"),
        ("data.x == #", 10, "unexpected character '#'"),
        ("é == data.x", 0, "unexpected character 'é'"),
        // Positions count chars, not bytes: 'é' is 2 bytes but 1 position.
        ("\"é\" == 1)", 8, "expected end of input but found ')'"),
        (
            "data. == 1",
            6,
            "expected field name after '.' but found '=='",
        ),
        (
            "data.1",
            5,
            "expected field name after '.' but found number",
        ),
        ("[1, 2", 5, "expected ',' or ']' but found end of input"),
        ("[1 2]", 3, "expected ',' or ']' but found number"),
        ("data.items[0", 12, "expected ']' but found end of input"),
        (
            "size(data.x",
            11,
            "expected ',' or ')' but found end of input",
        ),
        ("99999999999999999999", 0, "integer literal out of range"),
        ("1e400 == 1", 0, "float literal out of range"),
        ("data.x in", 9, "expected expression"),
    ]);
}

#[test]
fn strings() {
    check(&[
        ("data.s == \"abc", 10, "unterminated string"),
        ("data.s == 'abc\"", 10, "unterminated string"),
        ("\"abc\\", 0, "unterminated string"),
        ("\"a\\q\"", 2, "invalid escape '\\q'"),
        ("\"\\u12\"", 1, "invalid unicode escape"),
        ("\"\\uzzzz\"", 1, "invalid unicode escape"),
        ("\"\\ud83d\"", 1, "invalid unicode escape"),
        ("\"\\ud83d\\u0041\"", 1, "invalid unicode escape"),
    ]);
}

#[test]
fn names_and_calls() {
    check(&[
        ("foo == 1", 0, "unknown identifier 'foo'"),
        ("data.x == bar", 10, "unknown identifier 'bar'"),
        ("Data.x == 1", 0, "unknown identifier 'Data'"),
        ("frob(data.x)", 0, "unknown function 'frob'"),
        ("data.x.frob()", 7, "unknown function 'frob'"),
        ("data.x.has()", 7, "unknown function 'has'"),
        (
            "data.x.startsWith()",
            7,
            "startsWith() takes 1 argument but 0 were given",
        ),
        (
            "data.x.endsWith('a', 'b')",
            7,
            "endsWith() takes 1 argument but 2 were given",
        ),
        (
            "data.x.contains()",
            7,
            "contains() takes 1 argument but 0 were given",
        ),
        ("size(1, 2)", 0, "size() takes 1 argument but 2 were given"),
        ("size()", 0, "size() takes 1 argument but 0 were given"),
        (
            "data.s.size(1)",
            7,
            "size() takes 0 arguments but 1 was given",
        ),
        ("has()", 0, "has() takes 1 argument but 0 were given"),
        ("has(1)", 4, "has() argument must be a field selection"),
        ("has(data)", 4, "has() argument must be a field selection"),
        (
            "has(data.a == 1)",
            4,
            "has() argument must be a field selection",
        ),
        ("startsWith(data.s, 'x')", 0, "must be called as a method"),
    ]);
}

#[test]
fn limits() {
    let too_long = format!("{}true", " ".repeat(MAX_LEN - 3));
    let deep_parens = nest("(", "true", ")", MAX_DEPTH + 1);
    let deep_not = format!("{}true", "!".repeat(MAX_DEPTH + 1));
    let deep_neg = format!("{}1 == 1", "-".repeat(MAX_DEPTH + 1));
    let deep_list = nest("[", "1", "]", MAX_DEPTH + 1);
    let deep_size = nest("size(", "1", ")", MAX_DEPTH + 1);
    let deep_index = format!("data{}", "[data".repeat(MAX_DEPTH + 1));
    // 33 relation links: `true == true == ...`; the 33rd '==' is rejected.
    let long_rel = format!("true{}", " == true".repeat(MAX_DEPTH + 1));
    check(&[
        (&too_long, MAX_LEN, "expression longer than 1024 bytes"),
        (
            &"é".repeat(513),
            MAX_LEN,
            "expression longer than 1024 bytes",
        ),
        (&deep_parens, 32, "nesting deeper than 32"),
        (&deep_not, 32, "nesting deeper than 32"),
        (&deep_neg, 32, "nesting deeper than 32"),
        (&deep_list, 32, "nesting deeper than 32"),
        (&deep_size, 32 * 5 + 4, "nesting deeper than 32"),
        (&deep_index, 32 * 5 + 4, "nesting deeper than 32"),
        (&long_rel, 4 + 32 * 8 + 1, "nesting deeper than 32"),
    ]);
    // Exactly at the limits is fine.
    let ok = [
        format!("{}true", " ".repeat(MAX_LEN - 4)),
        nest("(", "true", ")", MAX_DEPTH),
        format!("{}true", "!".repeat(MAX_DEPTH)),
        nest("[", "1", "]", MAX_DEPTH),
        format!("true{}", " == true".repeat(MAX_DEPTH)),
        // `||` / `&&` chains are flattened, so their length is not nesting.
        format!("false{}", " || data.x == 1".repeat(60)),
    ];
    for src in &ok {
        assert!(Filter::compile(src).is_ok(), "{src:?} should compile");
    }
}

#[test]
fn error_display_format() {
    let e = Filter::compile("(data.x == 1").expect_err("unbalanced");
    assert_eq!(
        e,
        FilterError {
            position: 12,
            message: "expected ')' but found end of input".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "at position 12: expected ')' but found end of input"
    );
}
