//! Criterion benchmarks: evaluating and compiling a typical filter expression.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use herald::domain::filter::{Filter, MessageView};

const EXPR: &str = r#"data.priority == "high" && data.total > 100"#;

fn bench(c: &mut Criterion) {
    let filter = Filter::compile(EXPR).expect("valid expression");
    let hit: serde_json::Value = serde_json::from_str(
        r#"{"priority":"high","total":150,"customer":{"country":"DE"},"items":[1,2,3]}"#,
    )
    .expect("valid payload");
    let miss: serde_json::Value = serde_json::from_str(
        r#"{"priority":"low","total":150,"customer":{"country":"DE"},"items":[1,2,3]}"#,
    )
    .expect("valid payload");
    let view = |data| MessageView {
        priority: 3,
        key: None,
        topic: "orders",
        event: "created",
        seq: 1,
        data,
    };

    let hit_msg = view(&hit);
    assert!(filter.matches(&hit_msg));
    c.bench_function("eval_match", |b| {
        b.iter(|| filter.matches(black_box(&hit_msg)))
    });

    let miss_msg = view(&miss);
    assert!(!filter.matches(&miss_msg));
    c.bench_function("eval_non_match", |b| {
        b.iter(|| filter.matches(black_box(&miss_msg)))
    });

    c.bench_function("compile", |b| b.iter(|| Filter::compile(black_box(EXPR))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
