//! Content filters (`?filter=`) and patterns on streams and history.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::errors::assert_problem;
use crate::helpers::{Backend, spawn_app};

crate::on_both_backends!(
    a_filtered_stream_receives_only_matching_messages,
    filters_apply_to_replay_and_resume_stays_exact,
    filters_see_topic_event_and_seq_across_patterns,
    history_is_filtered_and_pages_continue,
    bad_filters_get_400_naming_the_position,
);

/// `s` encoded for a query string.
fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn a_filtered_stream_receives_only_matching_messages(backend: Backend) {
    let app = spawn_app(backend).await;
    let filter = enc(r#"data.priority == "high" && data.total > 100"#);
    let mut sse = app
        .subscribe(&format!("/topics/orders/events?filter={filter}"), None)
        .await;
    let mut unfiltered = app.subscribe("/topics/orders/events", None).await;
    let payloads = [
        json!({"priority": "high", "total": 150}),
        json!({"priority": "low", "total": 150}),
        json!({"priority": "high", "total": 50}),
        json!({"total": 500}),
        json!({"priority": "high", "total": 101.5}),
        json!("high"),
    ];
    let mut expected = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        let ack = app.publish_json("orders", p.clone()).await;
        if i == 0 || i == 4 {
            expected.push(ack.id);
        }
    }
    // A marker that matches, published last: once it arrives, everything
    // before it has been decided.
    let marker = app
        .publish_json("orders", json!({"priority": "high", "total": 1000}))
        .await;
    expected.push(marker.id);
    let got: Vec<i64> = sse.messages(3).await.iter().map(|m| m.id).collect();
    assert_eq!(got, expected);
    assert_eq!(unfiltered.messages(7).await.len(), 7);
    app.stop().await;
}

async fn filters_apply_to_replay_and_resume_stays_exact(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut matching = Vec::new();
    for i in 0..30 {
        let ack = app
            .publish_json("r", json!({"n": i, "even": i % 2 == 0}))
            .await;
        if i % 2 == 0 {
            matching.push(ack.id);
        }
    }
    let filter = enc("data.even == true");
    let path = format!("/topics/r/events?filter={filter}");
    let mut replay = app
        .subscribe(&format!("{path}&last_event_id=earliest"), None)
        .await;
    let first: Vec<i64> = replay.messages(5).await.iter().map(|m| m.id).collect();
    assert_eq!(first, matching[..5]);
    drop(replay);

    // Resume from the last delivered id: the rest, none twice, no odd ids.
    let mut resumed = app.subscribe(&path, Some(&first[4].to_string())).await;
    let later = app.publish_json("r", json!({"n": 30, "even": true})).await;
    app.publish_json("r", json!({"n": 31, "even": false})).await;
    let end = app.publish_json("r", json!({"n": 32, "even": true})).await;
    let mut expected = matching[5..].to_vec();
    expected.extend([later.id, end.id]);
    let rest: Vec<i64> = resumed
        .messages(expected.len())
        .await
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(rest, expected);
    app.stop().await;
}

async fn filters_see_topic_event_and_seq_across_patterns(backend: Backend) {
    let app = spawn_app(backend).await;
    let filter = enc(r#"topic.endsWith(".eu") && event == "created" && seq > 1"#);
    let mut sse = app
        .subscribe(&format!("/events?topic=orders.*&filter={filter}"), None)
        .await;
    let r = |t: &str, e: &str| format!("/topics/{t}?event={e}");
    for (topic, event) in [
        ("orders.eu", "created"), // seq 1: no
        ("orders.eu", "created"), // seq 2: yes
        ("orders.us", "created"), // topic: no
        ("orders.eu", "deleted"), // event: no
        ("users.eu", "created"),  // pattern: no
        ("orders.eu", "created"), // seq 4: yes
    ] {
        let resp = app
            .post(&r(topic, event), Some("application/json"), "{}")
            .await;
        assert_eq!(resp.status(), 201);
    }
    let got: Vec<(String, i64)> = sse
        .messages(2)
        .await
        .into_iter()
        .map(|m| (m.topic, m.seq))
        .collect();
    assert_eq!(
        got,
        [("orders.eu".to_owned(), 2), ("orders.eu".to_owned(), 4)]
    );
    app.stop().await;
}

async fn history_is_filtered_and_pages_continue(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..20 {
        app.publish_json(
            "h",
            json!({"i": i, "tags": if i % 5 == 0 { vec!["vip"] } else { vec![] }}),
        )
        .await;
    }
    app.publish_text("h", "hello world").await;
    let filter = enc(r#""vip" in data.tags"#);
    let page: Value = app
        .get(&format!("/topics/h/messages?filter={filter}&limit=2"))
        .await
        .json()
        .await
        .unwrap();
    let ids = |page: &Value| -> Vec<i64> {
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids(&page), [1, 6]);
    assert_eq!(page["next"], 6);
    let page: Value = app
        .get(&format!("/topics/h/messages?filter={filter}&after=6"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&page), [11, 16]);
    // The scan covered everything: polling again starts after the end.
    assert_eq!(page["next"], 21);
    let text = enc(r#"data.startsWith("hello") && size(data) == 11"#);
    let page: Value = app
        .get(&format!("/topics/h/messages?filter={text}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&page), [21]);
    app.stop().await;
}

async fn bad_filters_get_400_naming_the_position(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        ("data.total >", "at position 12"),
        ("data.total > 1 &&& x", "position"),
        ("nope == 1", "unknown identifier"),
        ("data.x.frob()", "unknown function"),
        ("(data.a == 1", "expected ')'"),
        ("\"unterminated", "position 0"),
        ("   ", "empty expression"),
    ];
    let long = format!("data.a == \"{}\"", "x".repeat(1100));
    let deep = format!("{}true{}", "(".repeat(40), ")".repeat(40));
    let mut all: Vec<(String, &str)> = cases.iter().map(|(e, m)| (e.to_string(), *m)).collect();
    all.push((long, "longer than 1024"));
    all.push((deep, "deeper than 32"));
    for (expr, expected) in &all {
        for path in [
            format!("/topics/t/events?filter={}", enc(expr)),
            format!("/events?topic=t&filter={}", enc(expr)),
            format!("/topics/t/messages?filter={}", enc(expr)),
        ] {
            let body = assert_problem(app.get(&path).await, StatusCode::BAD_REQUEST, expr).await;
            assert_eq!(body["type"], "urn:herald:problem:invalid-filter");
            let detail = body["detail"].as_str().unwrap();
            assert!(detail.contains(expected), "{expr:?}: {detail}");
        }
    }
    app.stop().await;
}
