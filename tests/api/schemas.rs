//! A topic's JSON Schema is bounded in the work it can cause: what cannot
//! be bounded is refused when it is set, and a publish's check runs off
//! the async workers within a budget (issue 39, item 3).

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app};

crate::on_both_backends!(
    schemas_whose_work_cannot_be_bounded_are_refused_when_set,
    a_check_past_its_budget_is_refused_and_herald_stays_responsive,
);

async fn put(app: &TestApp, topic: &str, schema: Value) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/topics/{topic}")))
        .json(&json!({"schema": schema}))
        .send()
        .await
        .unwrap()
}

/// `a0` a string, `aN` an `anyOf` of two `$ref`s to `aN-1`: about a
/// kilobyte that applies 2^depth subschemas to one value.
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

async fn schemas_whose_work_cannot_be_bounded_are_refused_when_set(backend: Backend) {
    let app = spawn_app(backend).await;
    let doubling = json!({"anyOf": [
        {"properties": {"a": {"$ref": "#"}}},
        {"properties": {"a": {"$ref": "#"}}, "required": ["a"]}
    ]});
    for (schema, needle) in [
        (fan_out(20), "subschemas"),
        (fan_out(24), "subschemas"),
        (doubling, "subschemas"),
        (json!({"anyOf": [{"$ref": "#"}]}), "loop"),
        (json!({"type": "string", "pattern": "^(a+)\\1$"}), "schema"),
        (
            json!({"patternProperties": {"^(?=x)(a|aa)+$": {"type": "number"}}}),
            "schema",
        ),
        (json!({"propertyNames": {"pattern": "(?<!a)b"}}), "schema"),
    ] {
        let r = put(&app, "t", schema.clone()).await;
        let p = crate::errors::assert_problem(r, reqwest::StatusCode::BAD_REQUEST, "problem").await;
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("schema") && detail.contains(needle),
            "{schema}: {p}"
        );
    }
    // A backtracking pattern the linear-time engine runs as is, and a
    // small fan-out, are accepted; the pattern still means what it says.
    let mut accepted = fan_out(6);
    accepted["patternProperties"] = json!({"^(a|aa)+$": {"type": "number"}});
    accepted["type"] = json!("object");
    accepted["properties"] = json!({"n": {"$ref": "#/$defs/a6"}});
    accepted.as_object_mut().unwrap().remove("$ref");
    assert_eq!(put(&app, "t", accepted).await.status(), 200);
    let key = format!("{}!", "a".repeat(3_900));
    app.publish_json("t", json!({ key: "not checked: the key does not match" }))
        .await;
    let r = app
        .post("/topics/t", Some("application/json"), r#"{"aaaa": "x"}"#)
        .await;
    crate::errors::assert_problem(r, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "problem").await;
    app.stop().await;
}

async fn a_check_past_its_budget_is_refused_and_herald_stays_responsive(backend: Backend) {
    let app = spawn_app(backend).await;
    // 2,000 alternatives for each of 200,000 items: within the bound on
    // one value, but 400 million checks for this payload, refused before
    // any is made.
    let branches: Vec<Value> = (0..2_000)
        .map(|i| json!({"const": i.to_string()}))
        .collect();
    let schema = json!({"type": "array", "items": {"anyOf": branches}});
    assert_eq!(put(&app, "big", schema).await.status(), 200);
    let payload = format!("[{}]", vec!["0"; 200_000].join(","));
    let publishes: Vec<_> = (0..2)
        .map(|_| {
            let (client, url, body) = (app.client.clone(), app.url("/topics/big"), payload.clone());
            tokio::spawn(async move {
                client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    // While both are checked, herald answers everything else.
    for _ in 0..5 {
        assert_eq!(app.get("/healthz").await.status(), 200);
    }
    for p in publishes {
        let r = p.await.unwrap();
        let p =
            crate::errors::assert_problem(r, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "problem")
                .await;
        assert!(
            p["type"].as_str().unwrap().ends_with("schema-budget"),
            "{p}"
        );
    }
    let h: Value = app.get("/topics/big").await.json().await.unwrap();
    assert_eq!(h["last_seq"], 0, "nothing was stored: {h}");
    app.stop().await;
}
