//! Batch publish and the metrics endpoint.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::errors::assert_problem;
use crate::helpers::{Backend, TestDb, spawn_app, spawn_app_with};

crate::on_both_backends!(
    a_batch_is_stored_in_order_as_json_or_ndjson,
    a_bad_batch_stores_nothing,
    metrics_report_publishes_streams_and_pools,
);

async fn a_batch_is_stored_in_order_as_json_or_ndjson(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut sse = app.subscribe("/topics/b/events", None).await;
    let r = app
        .post(
            "/topics/b/batch?event=bulk",
            Some("application/json"),
            r#"[{"n":1}, "two", [3], null]"#,
        )
        .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["count"], 4);
    let seqs: Vec<i64> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let ids: Vec<i64> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "one transaction, consecutive ids: {ids:?}"
    );

    let r = app
        .post(
            "/topics/b/batch",
            Some("application/x-ndjson"),
            "{\"n\":5}\n\n{\"n\":6}\n",
        )
        .await;
    assert_eq!(r.status(), 201);
    let got = sse.messages(6).await;
    let data: Vec<Value> = got.iter().map(|m| m.data.clone()).collect();
    assert_eq!(
        data,
        [
            json!({"n":1}),
            json!("two"),
            json!([3]),
            Value::Null,
            json!({"n":5}),
            json!({"n":6})
        ]
    );
    assert_eq!(got[0].event, "bulk");
    assert_eq!(got[4].event, "message");
    app.stop().await;
}

async fn a_bad_batch_stores_nothing(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let app = spawn_app_with(
        db,
        &["--max-message-bytes", "64", "--batch-max-messages", "3"],
    )
    .await;
    let json = Some("application/json");
    for (body, status) in [
        (r#"[{"n":1}, {"n":"#.to_owned(), StatusCode::BAD_REQUEST),
        ("[]".to_owned(), StatusCode::BAD_REQUEST),
        (r#"{"not":"an array"}"#.to_owned(), StatusCode::BAD_REQUEST),
        ("[1, 2, 3, 4]".to_owned(), StatusCode::BAD_REQUEST),
        (
            format!(r#"[1, "{}"]"#, "x".repeat(100)),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (r#"[1, "\ud800"]"#.to_owned(), StatusCode::BAD_REQUEST),
    ] {
        let r = app.post("/topics/b/batch", json, body.clone()).await;
        assert_problem(r, status, &body).await;
    }
    let r = app
        .post("/topics/b/batch", Some("application/x-ndjson"), "1\nnope\n")
        .await;
    let problem = assert_problem(r, StatusCode::BAD_REQUEST, "ndjson").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("line 2"),
        "{problem}"
    );
    let r = app.post("/topics/b/batch", Some("text/plain"), "[1]").await;
    assert_problem(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "text").await;
    let history: Value = app.get("/topics/b/messages").await.json().await.unwrap();
    assert_eq!(
        history["messages"],
        json!([]),
        "a refused batch stored something"
    );
    app.stop().await;
}

/// The value of an unlabelled metric line, e.g. `name 3`.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Metrics are process-wide, and tests share a process under `cargo test`:
/// this one counts in a herald process of its own.
async fn metrics_report_publishes_streams_and_pools(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let herald = crate::lifecycle::Herald::start(&db).await;
    let post = |path: &str, body: &str| {
        herald
            .client
            .post(herald.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
    };
    let metrics = || async {
        let r = herald
            .client
            .get(herald.url("/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/plain"), "{ct}");
        r.text().await.unwrap()
    };
    let url = herald.url("/topics/m/events?last_event_id=earliest");
    let mut sse = crate::helpers::Sse::connect(&herald.client, &url, None).await;
    for i in 0..3 {
        assert_eq!(
            post("/topics/m", &i.to_string()).await.unwrap().status(),
            201
        );
    }
    assert_eq!(
        post("/topics/m/batch", "[1,2]").await.unwrap().status(),
        201
    );
    sse.messages(5).await;
    let text = metrics().await;
    assert_eq!(metric(&text, "herald_messages_published_total"), 5.0);
    assert_eq!(metric(&text, "herald_sse_connections"), 1.0);
    assert!(metric(&text, "herald_sse_events_delivered_total") >= 5.0);
    assert!(metric(&text, "herald_sse_catchups_total") >= 1.0);
    // Three publishes and a batch: four publish requests.
    assert_eq!(metric(&text, "herald_publish_duration_seconds_count"), 4.0);
    assert!(metric(&text, "herald_commit_batch_messages_count") >= 2.0);
    assert!(
        text.contains("herald_publish_duration_seconds_bucket{le=\"0.005\"}"),
        "{text}"
    );
    assert!(
        text.contains("herald_db_connections{pool=\"writer\",state=\"idle\"}"),
        "{text}"
    );
    assert!(!text.contains("topic=\""), "no per-topic labels");
    drop(sse);
    crate::helpers::eventually("the stream to be uncounted", || async {
        (metric(&metrics().await, "herald_sse_connections") == 0.0).then_some(())
    })
    .await;
}
