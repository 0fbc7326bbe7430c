//! Topic configuration and retention: PUT/GET/DELETE of a topic, retention
//! by count and age with per-topic overrides, exact per-topic gaps on
//! streams and history, message TTL, and JSON Schema per topic.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDb, eventually, spawn_app_with};

crate::on_both_backends!(
    a_topic_is_configured_shown_and_deleted,
    bad_configurations_get_400_naming_the_field,
    retention_by_count_keeps_the_newest_messages,
    retention_by_age_follows_the_default_unless_the_topic_overrides_it,
    a_resumed_stream_gets_a_gap_only_for_the_topics_that_lost_messages,
    expired_messages_are_sent_to_no_one,
    a_schema_topic_refuses_payloads_that_do_not_validate,
);

/// A herald whose pruner runs every 50 ms, unless `flags` say otherwise.
async fn spawn(backend: Backend, flags: &[&str]) -> TestApp {
    let mut all = flags.to_vec();
    if !flags.contains(&"--prune-interval") {
        all.extend(["--prune-interval", "50ms"]);
    }
    spawn_app_with(TestDb::new(&backend).await, &all).await
}

async fn problem(r: reqwest::Response, status: u16) -> Value {
    let status = reqwest::StatusCode::from_u16(status).unwrap();
    crate::errors::assert_problem(r, status, "problem").await
}

async fn put(app: &TestApp, topic: &str, config: Value) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/topics/{topic}")))
        .json(&config)
        .send()
        .await
        .unwrap()
}

async fn get(app: &TestApp, path: &str) -> Value {
    let r = app.get(path).await;
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// The seqs of a topic's retained messages.
async fn seqs(app: &TestApp, topic: &str) -> Vec<i64> {
    let page = get(app, &format!("/topics/{topic}/messages?limit=1000")).await;
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect()
}

async fn a_topic_is_configured_shown_and_deleted(backend: Backend) {
    let app = spawn(backend, &["--retention-max-age", "7d"]).await;
    let config = json!({"retention": {"max_messages": 100}, "message_ttl": "1h",
        "max_subscribers": 5, "description": "Orders", "schema": {"type": "object"}});
    let r = put(&app, "orders", config.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), config);
    let t = get(&app, "/topics/orders").await;
    assert_eq!(t["config"], config);
    assert_eq!(
        t["retention"],
        json!({"max_age": "7d", "max_messages": 100})
    );
    assert_eq!(t["last_seq"], 0);
    assert!(t.get("oldest_retained").is_none(), "{t}");
    let first = app.publish_json("orders", json!({"n": 1})).await;
    app.publish_json("orders", json!({"n": 2})).await;
    assert_eq!(
        get(&app, "/topics/orders").await["oldest_retained"],
        first.id
    );

    let mut sse = app.subscribe("/topics/orders/events", Some("0")).await;
    assert_eq!(sse.messages(2).await.len(), 2);
    let r = app
        .client
        .delete(app.url("/topics/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // Its messages and configuration are gone; while a stream listens, it
    // still exists for that subscriber, empty.
    let t = get(&app, "/topics/orders").await;
    assert_eq!(
        (&t["last_seq"], &t["message_count"], &t["config"]),
        (&json!(0), &json!(0), &json!({})),
        "{t}"
    );
    drop(sse);
    eventually("the topic to go with its stream", || async {
        (app.get("/topics/orders").await.status() == 404).then_some(())
    })
    .await;
    problem(
        app.client
            .delete(app.url("/topics/orders"))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_eq!(seqs(&app, "orders").await, Vec::<i64>::new());
    // A reader resuming from before the delete is told, then the topic
    // starts over.
    let mut resumed = app.subscribe("/topics/orders/events", Some("0")).await;
    assert_eq!(resumed.next_event().await.unwrap().event, "gap");
    assert_eq!(app.publish_json("orders", json!({"n": 3})).await.seq, 1);
    assert_eq!(resumed.messages(1).await[0].seq, 1);
    app.stop().await;
}

async fn bad_configurations_get_400_naming_the_field(backend: Backend) {
    let app = spawn(backend, &[]).await;
    for (config, field) in [
        (json!({"retention": {"max_age": "0"}}), "retention.max_age"),
        (json!({"retention": {"max_age": "-1d"}}), "max_age"),
        (json!({"retention": {"max_age": "99999d"}}), "max_age"),
        (
            json!({"retention": {"max_messages": 0}}),
            "retention.max_messages",
        ),
        (json!({"message_ttl": "soon"}), "message_ttl"),
        (json!({"max_subscribers": -1}), "max_subscribers"),
        (json!({"colour": "blue"}), "colour"),
        (json!({"schema": {"type": "nonsense"}}), "schema"),
        (
            json!({"schema": {"$ref": "http://127.0.0.1:9/s.json"}}),
            "schema",
        ),
        (json!({"schema": {"enum": ["x".repeat(70_000)]}}), "schema"),
    ] {
        let r = put(&app, "t", config.clone()).await;
        let p = problem(r, 400).await;
        assert!(
            p["detail"].as_str().unwrap().contains(field),
            "{config}: {p}"
        );
    }
    assert_eq!(
        app.get("/topics/t").await.status(),
        404,
        "nothing was created"
    );
    let r = app
        .client
        .put(app.url("/topics/t"))
        .body("{}")
        .send()
        .await
        .unwrap();
    problem(r, 415).await;
    let r = app.post("/topics/t?ttl=0", None, "x").await;
    problem(r, 400).await;
    app.stop().await;
}

async fn retention_by_count_keeps_the_newest_messages(backend: Backend) {
    let app = spawn(backend, &[]).await;
    assert_eq!(
        put(&app, "c", json!({"retention": {"max_messages": 3}}))
            .await
            .status(),
        200
    );
    for i in 0..5 {
        app.publish_json("c", json!(i)).await;
        app.publish_json("other", json!(i)).await;
    }
    eventually("the pruner to keep the newest 3", || async {
        (seqs(&app, "c").await == [3, 4, 5]).then_some(())
    })
    .await;
    assert_eq!(
        seqs(&app, "other").await,
        [1, 2, 3, 4, 5],
        "other topics keep theirs"
    );
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains("herald_messages_pruned_total{reason=\"retention\"}"),
        "{text}"
    );
    app.stop().await;
}

async fn retention_by_age_follows_the_default_unless_the_topic_overrides_it(backend: Backend) {
    let app = spawn(backend, &["--retention-max-age", "1s"]).await;
    assert_eq!(
        put(&app, "kept", json!({"retention": {"max_age": "1h"}}))
            .await
            .status(),
        200
    );
    app.publish_json("short", json!(1)).await;
    app.publish_json("kept", json!(1)).await;
    eventually("the default max age to remove old messages", || async {
        seqs(&app, "short").await.is_empty().then_some(())
    })
    .await;
    assert_eq!(seqs(&app, "kept").await, [1]);
    assert_eq!(
        get(&app, "/topics/short").await["last_seq"],
        1,
        "the topic stays"
    );
    app.stop().await;
}

async fn a_resumed_stream_gets_a_gap_only_for_the_topics_that_lost_messages(backend: Backend) {
    let app = spawn(backend, &[]).await;
    for t in ["a", "x.a"] {
        assert_eq!(
            put(&app, t, json!({"retention": {"max_messages": 2}}))
                .await
                .status(),
            200
        );
    }
    let mut ids = Vec::new();
    for (topic, n) in [
        ("a", 1),
        ("b", 1),
        ("x.a", 1),
        ("x.b", 1),
        ("a", 2),
        ("a", 3),
        ("x.a", 2),
        ("x.a", 3),
    ] {
        ids.push(app.publish_json(topic, json!(n)).await.id);
    }
    eventually("a and x.a to keep two each", || async {
        (seqs(&app, "a").await == [2, 3] && seqs(&app, "x.a").await == [2, 3]).then_some(())
    })
    .await;
    // From the start (but not `earliest`, which asks for whatever is kept).
    let cursor = "0".to_owned();
    for path in ["/events?topic=a&topic=b", "/events?topic=x.*&topic=b"] {
        let mut sse = app.subscribe(path, Some(&cursor)).await;
        let gap = sse.next_event().await.unwrap();
        assert_eq!(gap.event, "gap", "{path}");
        assert_eq!(gap.id, cursor, "the stream goes on from its cursor");
        let data: Value = serde_json::from_str(&gap.data).unwrap();
        let lost: Vec<&str> = data["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["topic"].as_str().unwrap())
            .collect();
        let want = if path.contains("x.*") { "x.a" } else { "a" };
        assert_eq!(lost, [want], "{path}");
        let got: Vec<(String, i64)> = sse
            .messages(3)
            .await
            .into_iter()
            .map(|m| (m.topic, m.seq))
            .collect();
        if path.contains("x.*") {
            assert_eq!(got, [("b".into(), 1), ("x.b".into(), 1), ("x.a".into(), 2)]);
            assert_eq!(data["topics"][0]["lost_through"], ids[2]);
        } else {
            assert_eq!(got, [("b".into(), 1), ("a".into(), 2), ("a".into(), 3)]);
        }
    }
    // A topic that lost nothing gets no gap.
    let mut b = app.subscribe("/topics/b/events", Some(&cursor)).await;
    let first = b.next_event().await.unwrap();
    assert_eq!(
        (first.event.as_str(), first.id),
        ("message", ids[1].to_string())
    );
    // History says the same.
    let page = get(&app, &format!("/topics/a/messages?after={cursor}")).await;
    assert_eq!(page["gap"]["lost_through"], ids[0]);
    assert!(
        get(&app, &format!("/topics/b/messages?after={cursor}"))
            .await
            .get("gap")
            .is_none()
    );
    app.stop().await;
}

async fn expired_messages_are_sent_to_no_one(backend: Backend) {
    // A pruner that never runs: expiry alone keeps them from everyone.
    let app = spawn(backend, &["--prune-interval", "1h"]).await;
    let r = app.post("/topics/e?ttl=1s", None, "short-lived").await;
    assert_eq!(r.status(), 201);
    let kept = app.publish_text("e", "kept").await;
    assert_eq!(
        put(&app, "f", json!({"message_ttl": "1s"})).await.status(),
        200
    );
    app.publish_text("f", "short-lived too").await;
    let mut live = app.subscribe("/topics/e/events", Some("earliest")).await;
    let first = live.messages(1).await;
    assert_eq!(first[0].data, "short-lived", "sent while it lives");
    let raw = app.get("/topics/e/messages").await.text().await.unwrap();
    assert!(raw.contains("\"expires\":\""), "{raw}");
    eventually("the message to expire", || async {
        (seqs(&app, "e").await == [2] && seqs(&app, "f").await.is_empty()).then_some(())
    })
    .await;
    let mut replay = app
        .subscribe("/events?topic=e&topic=f", Some("earliest"))
        .await;
    assert_eq!(replay.messages(1).await[0].id, kept.id);
    app.stop().await;
}

async fn a_schema_topic_refuses_payloads_that_do_not_validate(backend: Backend) {
    let app = spawn(backend, &[]).await;
    let schema = json!({"type": "object", "required": ["total"],
        "properties": {"total": {"type": "number", "minimum": 0}}});
    assert_eq!(
        put(&app, "s", json!({"schema": schema})).await.status(),
        200
    );
    app.publish_json("s", json!({"total": 3})).await;
    let r = app
        .post("/topics/s", Some("application/json"), r#"{"total": -1}"#)
        .await;
    let p = problem(r, 422).await;
    assert_eq!(p["errors"][0]["path"], "/total");
    assert!(p["errors"][0]["message"].is_string());
    let r = app.post("/topics/s", None, "text").await;
    problem(r, 415).await;
    let r = app
        .post(
            "/topics/s/batch",
            Some("application/json"),
            r#"[{"total": 1}, {}, {"total": "x"}]"#,
        )
        .await;
    let p = problem(r, 422).await;
    let indexes: Vec<i64> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, [1, 2]);
    assert_eq!(
        seqs(&app, "s").await,
        [1],
        "nothing of a refused batch is stored"
    );
    // A new schema applies at once on this node.
    assert_eq!(
        put(&app, "s", json!({"schema": {"type": "object"}}))
            .await
            .status(),
        200
    );
    app.publish_json("s", json!({"total": "anything"})).await;
    app.stop().await;
}
