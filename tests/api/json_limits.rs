//! JSON that ordinary parsers cannot read back (nesting too deep, numbers
//! out of a double's range) is refused with 400 naming the limit, in single
//! and batch publishes; what is stored parses again and filters see it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::errors::assert_problem;
use crate::helpers::{Backend, spawn_app};

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_deeper_than_64_levels_or_with_infinite_numbers_is_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    let refused: [(String, &str); 6] = [
        (nested(65), "deeper than 64 levels"),
        (nested(10_000), "deeper than 64 levels"),
        (nested(500_000), "deeper than 64 levels"),
        ("1e999".into(), "1.7976931348623157e308"),
        (r#"{"n": -2e400}"#.into(), "1.7976931348623157e308"),
        ("9".repeat(400), "1.7976931348623157e308"),
    ];
    for (body, limit) in &refused {
        let what = &body[..body.len().min(20)];
        let r = app
            .post("/topics/t", Some("application/json"), body.clone())
            .await;
        let problem = assert_problem(r, StatusCode::BAD_REQUEST, what).await;
        assert_eq!(problem["type"], "urn:herald:problem:invalid-json");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(limit), "{what}: {detail}");

        let batch = format!("[1, {body}]");
        let r = app
            .post("/topics/t/batch", Some("application/json"), batch)
            .await;
        let problem = assert_problem(r, StatusCode::BAD_REQUEST, what).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("message 2") && detail.contains(limit),
            "{detail}"
        );

        let ndjson = format!("1\n{body}\n");
        let r = app
            .post("/topics/t/batch", Some("application/x-ndjson"), ndjson)
            .await;
        assert_problem(r, StatusCode::BAD_REQUEST, what).await;
    }

    // At the limit: stored, served as JSON that parses, and seen by filters.
    let deepest = format!("{}7{}", r#"{"a":"#.repeat(64), "}".repeat(64));
    let ack = app
        .publish_json("t", serde_json::from_str(&deepest).unwrap())
        .await;
    assert_eq!(ack.seq, 1, "nothing refused was stored");
    app.publish_json("t", json!({"big": 1e308})).await;
    let history: Value = app
        .get("/topics/t/messages?filter=data.big%20%3E%201.0")
        .await
        .json()
        .await
        .unwrap();
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{history}");
    assert_eq!(messages[0]["data"]["big"], 1e308);
    app.stop().await;
}
