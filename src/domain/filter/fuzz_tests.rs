//! Fuzz-style robustness test: random and mutated expressions must never panic at compile or evaluation.

use serde_json::{Value, json};

use super::eval_tests::ORDER;
use super::{Filter, MessageView};

/// Tiny xorshift PRNG so the fuzz test is deterministic without extra crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

#[test]
fn fuzz_never_panics() {
    const PIECES: &[&str] = &[
        "data",
        "topic",
        "event",
        "seq",
        ".",
        "[",
        "]",
        "(",
        ")",
        ",",
        "!",
        "-",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "&&",
        "||",
        " in ",
        "has",
        "size",
        ".size()",
        ".startsWith",
        ".contains",
        "\"x\"",
        "'é'",
        "\"\\u00",
        "\"",
        "\\",
        "0",
        "1",
        "-1",
        "1.5",
        "1e400",
        "99999999999999999999",
        "true",
        "null",
        "items",
        "customer",
        "a",
        " ",
        "=",
        "&",
        "|",
        "😀",
        "\u{0}",
        "?",
        "{",
        "}",
        "9223372036854775808",
    ];
    const SEEDS: &[&str] = &[
        r#"data.priority == "high" && data.total > 100"#,
        r#"has(data.customer.country) || "vip" in data.tags"#,
        "size(data.items[0]) >= -data.total",
        r#"data.s.startsWith("hé") && !(topic in ["a", "b"])"#,
    ];
    let payloads: Vec<Value> = vec![
        serde_json::from_str(ORDER).expect("valid"),
        json!(null),
        json!("text"),
        json!([1, [2, [3]], {"a": null}]),
        json!({"a": {"b": [1.5, -0.0, 1e300, u64::MAX, i64::MIN]}}),
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut compiled = 0;
    for round in 0..20_000 {
        let mut src = String::new();
        if round % 2 == 0 {
            // Mutate a valid expression: splice random pieces into it.
            let seed = rng.pick(SEEDS);
            let cut = (rng.next() as usize) % (seed.len() + 1);
            let cut = (0..=cut)
                .rev()
                .find(|&i| seed.is_char_boundary(i))
                .unwrap_or(0);
            src.push_str(&seed[..cut]);
            src.push_str(rng.pick(PIECES));
            src.push_str(&seed[cut..]);
        } else {
            for _ in 0..(rng.next() % 24) {
                src.push_str(rng.pick(PIECES));
            }
        }
        if let Ok(f) = Filter::compile(&src) {
            compiled += 1;
            for data in &payloads {
                let msg = MessageView {
                    priority: 3,
                    key: None,
                    topic: "t",
                    event: "e",
                    seq: -1,
                    data,
                };
                let _ = f.matches(&msg);
            }
        }
    }
    // Deep and long inputs are rejected, not overflowed.
    for n in [33, 100, 1000] {
        for open in ["(", "!", "-", "[", "size(", "data["] {
            let _ = Filter::compile(&open.repeat(n));
        }
    }
    eprintln!("fuzz: {compiled} of 20000 inputs compiled");
    assert!(
        compiled > 100,
        "fuzz should exercise evaluation, compiled {compiled}"
    );
}
