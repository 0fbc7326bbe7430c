//! Table-driven evaluation tests: (expression, payload, expected match) rows grouped by feature.

use serde_json::Value;

use super::{Filter, MessageView};

/// Shared payload for the tables (and the fuzz test).
pub(super) const ORDER: &str = r#"{
  "priority": "high", "total": 150, "ratio": 0.5, "big": 18446744073709551615,
  "status": "paid", "tags": ["vip", "eu", 3], "empty": [], "none": null, "flag": true,
  "customer": {"country": "DE", "name": "Jürgen", "vip": false},
  "items": [1, 2, 3], "nested": [[1, 2], {"k": "v"}], "idx": 1,
  "key with space": "yes", "in": "kw", "s": "héllo wörld"
}"#;

fn check(rows: &[(&str, &str, bool)]) {
    let mut failures = Vec::new();
    for (src, payload, want) in rows {
        let data: Value = serde_json::from_str(payload).expect("test payload is valid JSON");
        let f = Filter::compile(src).unwrap_or_else(|e| panic!("{src:?} failed to compile: {e}"));
        let msg = MessageView {
            priority: 3,
            key: None,
            topic: "orders.eu",
            event: "order.created",
            seq: 42,
            data: &data,
        };
        if f.matches(&msg) != *want {
            failures.push(format!("{src:?} on {payload}: expected {want}"));
        }
    }
    assert!(
        failures.is_empty(),
        "failing rows:\n{}",
        failures.join("\n")
    );
}

#[test]
fn comparisons_and_literals() {
    let o = ORDER;
    check(&[
        (r#"data.priority == "high""#, o, true),
        (r#"data.priority == 'high'"#, o, true),
        (r#"data.priority != "low""#, o, true),
        (r#"data.priority != "high""#, o, false),
        ("data.total > 100", o, true),
        ("data.total >= 150", o, true),
        ("data.total < 150", o, false),
        ("data.total <= 150.0", o, true),
        ("data.total == 150.0", o, true),
        ("data.ratio < 1", o, true),
        ("data.ratio == 0.5", o, true),
        ("data.ratio > -1", o, true),
        ("-data.total == -150", o, true),
        ("data.big > 9223372036854775807", o, true),
        ("data.big == 18446744073709551615", o, true),
        ("data.big > 1.0e3", o, true),
        ("-9223372036854775808 < -9223372036854775807", o, true),
        ("1e2 == 100", o, true),
        ("2.5e-1 == 0.25", o, true),
        ("1 == 1.0", o, true),
        ("1 < 1.5 && 2 > 1.5", o, true),
        (r#""abc" < "abd""#, o, true),
        (r#""B" < "a""#, o, true),
        (r#""a" < "ab""#, o, true),
        (r#""é" > "z""#, o, true),
        ("true == true", o, true),
        ("true != false", o, true),
        ("null == null", o, true),
        ("data.none == null", o, true),
        ("data.none != null", o, false),
        ("data.flag", o, true),
        ("data.flag == true", o, true),
        ("data.customer.vip == false", o, true),
        (r#"data["key with space"] == "yes""#, o, true),
        (r#"data["customer"]["country"] == "DE""#, o, true),
        (r#"data.in == "kw""#, o, true),
        (r#""a\"b" == 'a"b'"#, o, true),
        (r#"'it\'s' == "it's""#, o, true),
        (r#""\\" == '\\' && "\n" != "n" && "\t" != "t""#, o, true),
        (r#""\u00e9" == "é""#, o, true),
        (r#""\ud83d\ude00" == "😀""#, o, true),
        (r#"data.customer.name == "Jürgen""#, o, true),
    ]);
}

#[test]
fn type_mismatches_and_nulls() {
    let o = ORDER;
    check(&[
        (r#"data.total == "150""#, o, false),
        (r#"data.total != "150""#, o, true),
        (r#"data.total < "200""#, o, false),
        (r#"data.total >= "1""#, o, false),
        ("data.flag == 1", o, false),
        ("data.flag != 1", o, true),
        ("true < false", o, false),
        ("data.none == 0", o, false),
        ("data.none != 0", o, true),
        ("data.none < 1", o, false),
        ("null < null", o, false),
        ("data.items == [1, 2, 3]", o, true),
        ("data.items == [1.0, 2, 3]", o, true),
        ("data.items != [1, 2]", o, true),
        ("data.items == [3, 2, 1]", o, false),
        ("[] == data.empty", o, true),
        (r#"data.nested == [[1, 2], data.nested[1]]"#, o, true),
        (r#"data.customer == data.customer"#, o, true),
        (r#"data.customer == data.nested[1]"#, o, false),
        ("data.items < [2]", o, false),
        ("data.customer == [1]", o, false),
        ("data.priority", o, false),
        ("data.total", o, false),
        ("data.none", o, false),
        ("1", o, false),
        ("[true]", o, false),
        ("-data.priority == -1", o, false),
        ("!data.priority", o, false),
    ]);
}

#[test]
fn missing_fields() {
    let o = ORDER;
    check(&[
        ("data.missing == 1", o, false),
        ("data.missing != 1", o, false),
        ("data.missing == null", o, false),
        ("data.missing != null", o, false),
        ("data.missing < 1 || data.missing >= 1", o, false),
        ("!(data.missing == 1)", o, true),
        ("!(data.missing != 1)", o, true),
        ("!data.missing", o, false),
        ("data.missing", o, false),
        ("data.a.b.c == 1", o, false),
        ("data.a.b.c != 1", o, false),
        ("data.priority.b.c == 1", o, false),
        ("data.priority.b.c != 1", o, false),
        ("data.missing == data.missing", o, false),
        ("data.items[3] == 1", o, false),
        ("data.items[3] != 1", o, false),
        ("data.items[-1] != 1", o, false),
        ("data.items[0].x != 1", o, false),
        (r#"data.items["0"] != 1"#, o, false),
        ("data.customer[0] != 1", o, false),
        ("data.items[1.0] != 1", o, false),
        ("data.missing in [1, 2]", o, false),
        ("1 in data.missing", o, false),
        ("[data.missing] == [1]", o, false),
        ("[data.missing] != [1]", o, false),
        (r#"data.missing.startsWith("x")"#, o, false),
        (r#"!data.missing.startsWith("x")"#, o, true),
        ("size(data.missing) == 0", o, false),
        ("size(data.missing) != 0", o, false),
        ("data.missing.size() >= 0", o, false),
        ("data.none.x != 1", o, false),
        ("data.missing[0] != 1", o, false),
    ]);
}

#[test]
fn in_operator() {
    let o = ORDER;
    check(&[
        (r#"data.status in ["paid", "shipped"]"#, o, true),
        (r#"data.status in ["new", "shipped"]"#, o, false),
        (r#"data.status in []"#, o, false),
        (r#""vip" in data.tags"#, o, true),
        (r#""us" in data.tags"#, o, false),
        ("3 in data.tags", o, true),
        ("3.0 in data.tags", o, true),
        (r#""3" in data.tags"#, o, false),
        ("2 in data.items && !(4 in data.items)", o, true),
        (r#""country" in data.customer"#, o, true),
        (r#""city" in data.customer"#, o, false),
        (r#""h" in data.priority"#, o, false),
        ("1 in data.total", o, false),
        ("null in data.none", o, false),
        (r#"data.customer.country in [data.missing, "DE"]"#, o, true),
        ("[1, 2] in data.nested", o, true),
        (r#"data.priority in ["high"] == true"#, o, true),
    ]);
}

#[test]
fn functions() {
    let o = ORDER;
    check(&[
        ("has(data.customer)", o, true),
        ("has(data.customer.country)", o, true),
        ("has(data.none)", o, true),
        ("has(data.missing)", o, false),
        ("has(data.a.b)", o, false),
        ("has(data.priority.x)", o, false),
        ("has(data.items[2])", o, true),
        ("has(data.items[3])", o, false),
        (r#"has(data["key with space"])"#, o, true),
        ("!has(data.missing)", o, true),
        ("has(topic.x)", o, false),
        (r#"data.priority.startsWith("hi")"#, o, true),
        (r#"data.priority.startsWith("gh")"#, o, false),
        (r#"data.priority.endsWith("gh")"#, o, true),
        (r#"data.priority.contains("ig")"#, o, true),
        (r#"data.priority.contains("")"#, o, true),
        (r#"data.s.contains("wö")"#, o, true),
        (r#"data.total.startsWith("1")"#, o, false),
        (r#"data.priority.startsWith(1)"#, o, false),
        (r#"data.tags.contains("vip")"#, o, false),
        (r#""abc".endsWith("c")"#, o, true),
        (r#"size("héllo") == 5"#, o, true),
        (r#""héllo".size() == 5"#, o, true),
        ("size(data.s) == 11", o, true),
        (r#"size("😀") == 1 && size("") == 0"#, o, true),
        ("size(data.items) == 3", o, true),
        ("data.items.size() == 3", o, true),
        ("size(data.empty) == 0", o, true),
        ("size([1, 2]) == 2", o, true),
        ("size(data.customer) == 3", o, true),
        ("size(data.total) == 3", o, false),
        ("size(data.none) != 0", o, false),
    ]);
}

#[test]
fn logic_precedence_and_short_circuit() {
    let o = ORDER;
    check(&[
        ("true && true", o, true),
        ("true && false", o, false),
        ("false || true", o, true),
        ("false || false", o, false),
        ("!true", o, false),
        ("!!true", o, true),
        ("!false && false", o, false),
        ("!(false && false)", o, true),
        // && binds tighter than ||.
        ("true || false && false", o, true),
        ("(true || false) && false", o, false),
        ("false && false || true", o, true),
        // Relations bind tighter than &&, unary tighter than relations.
        ("data.total > 100 && data.total < 200", o, true),
        ("!data.flag == false", o, true),
        ("-1 < 0 == true", o, true),
        ("1 < 2 == 2 < 3", o, false),
        ("(1 < 2) == (2 < 3)", o, true),
        ("--5 == 5", o, true),
        ("-(-5) == 5 && -data.ratio == -0.5", o, true),
        // Non-boolean operands of && / || count as false.
        ("data.missing || true", o, true),
        ("data.missing && true", o, false),
        ("!(data.missing || false)", o, true),
        ("1 || 2", o, false),
        // Short-circuit: the right side would be false anyway, but must not matter.
        ("true || data.missing.x.y == 1", o, true),
        ("false && data.missing == 1", o, false),
        (
            "(data.priority == \"high\" && data.total > 100) || data.x",
            o,
            true,
        ),
    ]);
}

#[test]
fn indexes_and_paths() {
    let o = ORDER;
    check(&[
        ("data.items[0] == 1", o, true),
        ("data.items[2] == 3", o, true),
        ("data.nested[0][1] == 2", o, true),
        (r#"data.nested[1].k == "v""#, o, true),
        (r#"data.nested[1]["k"] == "v""#, o, true),
        ("data.items[data.idx] == 2", o, true),
        ("data[data.status] != 1", o, false),
        ("[10, 20, 30][1] == 20", o, true),
        ("[10, [20, 30]][1][0] == 20", o, true),
        ("[1, 2][5] != 0", o, false),
        (r#"(data.customer).country == "DE""#, o, true),
        (r#"data.tags[0] == "vip""#, o, true),
        ("data.items[9223372036854775807] == 1", o, false),
        ("data.items[18446744073709551615] == 1", o, false),
    ]);
}

#[test]
fn roots_and_scalar_payloads() {
    let o = ORDER;
    check(&[
        (r#"topic == "orders.eu""#, o, true),
        (r#"topic.startsWith("orders.")"#, o, true),
        (r#"event == "order.created" && seq == 42"#, o, true),
        ("seq > 41 && seq < 43 && seq == 42.0", o, true),
        (r#"event in ["order.created", "order.paid"]"#, o, true),
        (r#"size(topic) == 9"#, o, true),
        ("seq.x != 1", o, false),
        (r#"data == "plain text""#, r#""plain text""#, true),
        (r#"data.contains("text")"#, r#""plain text""#, true),
        (r#"data.x != 1"#, r#""plain text""#, false),
        ("data == 7", "7", true),
        ("data == null", "null", true),
        ("has(data.x)", "null", false),
        ("size(data) == 2", "[1, {}]", true),
        (r#"data[0] == "é""#, r#"["é"]"#, true),
        (r#"data.a.b.c == 1"#, r#"{"a": "str"}"#, false),
        (r#"data.a.b.c == 1"#, r#"{"a": {"b": {"c": 1}}}"#, true),
    ]);
}

#[test]
fn filter_is_send_sync_clone_and_keeps_source() {
    fn assert_traits<T: Send + Sync + Clone>() {}
    assert_traits::<Filter>();
    let f = Filter::compile(" data.x == 1 ").expect("valid");
    assert_eq!(f.clone().source(), " data.x == 1 ");
}
