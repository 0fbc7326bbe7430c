//! Live SSE delivery: order, topics and patterns, the wire format, lagging
//! subscribers.

use futures_util::StreamExt;
use serde_json::json;

use crate::helpers::{Backend, TestDb, spawn_app, spawn_app_with};

crate::on_both_backends!(
    a_live_subscriber_receives_messages_in_order,
    without_a_cursor_a_stream_is_live_only,
    several_topics_arrive_in_one_stream_in_position_order,
    patterns_select_topics_by_level,
    a_lagging_subscriber_catches_up_from_storage_without_loss,
);

async fn a_live_subscriber_receives_messages_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut sse = app.subscribe("/topics/orders/events", None).await;
    let mut acks = Vec::new();
    for i in 0..20 {
        acks.push(app.publish_json("orders", json!({"i": i})).await);
    }
    let got = sse.messages(20).await;
    for (i, (m, ack)) in got.iter().zip(&acks).enumerate() {
        assert_eq!(m.id, ack.id);
        assert_eq!(m.seq, ack.seq);
        assert_eq!(m.time, ack.time);
        assert_eq!(m.topic, "orders");
        assert_eq!(m.event, "message");
        assert_eq!(m.data, json!({"i": i}));
    }
    app.stop().await;
}

async fn without_a_cursor_a_stream_is_live_only(backend: Backend) {
    let app = spawn_app(backend).await;
    app.publish_json("t", json!("old")).await;
    let mut sse = app.subscribe("/topics/t/events", None).await;
    let new = app.publish_json("t", json!("new")).await;
    let got = sse.messages(1).await;
    assert_eq!(got[0].id, new.id);
    assert_eq!(got[0].data, "new");
    app.stop().await;
}

async fn several_topics_arrive_in_one_stream_in_position_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut sse = app.subscribe("/events?topic=a&topic=b", None).await;
    let mut expected = Vec::new();
    for i in 0..30 {
        let topic = ["a", "b", "c"][i % 3];
        let ack = app.publish_json(topic, json!(i)).await;
        if topic != "c" {
            expected.push(ack.id);
        }
    }
    let got: Vec<i64> = sse
        .messages(expected.len())
        .await
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(got, expected);
    app.stop().await;
}

async fn patterns_select_topics_by_level(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut one = app.subscribe("/events?topic=orders.*", None).await;
    let mut many = app.subscribe("/events?topic=orders.**", None).await;
    for t in [
        "orders",
        "orders.eu",
        "orders.eu.created",
        "users.eu",
        "orders.us",
    ] {
        app.publish_json(t, json!(t)).await;
    }
    let topics =
        |v: Vec<crate::helpers::Envelope>| v.into_iter().map(|m| m.topic).collect::<Vec<_>>();
    assert_eq!(topics(one.messages(2).await), ["orders.eu", "orders.us"]);
    assert_eq!(
        topics(many.messages(3).await),
        ["orders.eu", "orders.eu.created", "orders.us"]
    );
    app.stop().await;
}

async fn a_lagging_subscriber_catches_up_from_storage_without_loss(backend: Backend) {
    // A hub that holds one batch: any subscriber that is not instantly
    // scheduled falls behind and must read from storage.
    let db = TestDb::new(&backend).await;
    let app = spawn_app_with(db, &["--hub-capacity", "1"]).await;
    let mut sse = app.subscribe("/topics/big/events", None).await;
    // 64 KiB bodies: the socket fills long before 300 of them are read, so
    // the server-side stream blocks while the hub moves on.
    let body = "x".repeat(64 * 1024);
    let mut ids = Vec::new();
    let mut tasks = futures_util::stream::iter(0..300)
        .map(|_| app.publish_text("big", &body))
        .buffered(8);
    while let Some(ack) = tasks.next().await {
        ids.push(ack.id);
    }
    drop(tasks);
    ids.sort_unstable();
    let got: Vec<i64> = sse.messages(300).await.iter().map(|m| m.id).collect();
    assert_eq!(got, ids);
    assert!(app.hub.lag_recoveries() > 0, "the subscriber never lagged");
    app.stop().await;
}

mod wire {
    use crate::helpers::{Backend, DEADLINE, TestDb, spawn_app_with};

    /// Reads raw bytes until `needle` appears.
    async fn read_until(response: &mut reqwest::Response, needle: &str) -> String {
        let mut seen = String::new();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while !seen.contains(needle) {
            let chunk = tokio::time::timeout_at(deadline, response.chunk())
                .await
                .unwrap_or_else(|_| panic!("{needle:?} not seen in {seen:?}"))
                .unwrap()
                .expect("stream ended");
            seen.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        seen
    }

    #[tokio::test]
    async fn streams_start_with_retry_and_send_heartbeat_comments() {
        let db = TestDb::new(&Backend::Sqlite).await;
        let app = spawn_app_with(db, &["--heartbeat-ms", "50", "--sse-retry-ms", "1234"]).await;
        let mut r = app
            .client
            .get(app.url("/topics/t/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["cache-control"], "no-cache");
        let start = read_until(&mut r, "\n\n").await;
        assert!(start.starts_with("retry: 1234\n\n"), "{start:?}");
        read_until(&mut r, ": keep-alive\n\n").await;
        app.stop().await;
    }

    #[tokio::test]
    async fn multi_line_json_is_sent_as_one_data_line() {
        let db = TestDb::new(&Backend::Sqlite).await;
        let app = spawn_app_with(db, &[]).await;
        app.post(
            "/topics/t",
            Some("application/json"),
            "{\n  \"a\": [1,\n 2]\n}\n",
        )
        .await;
        let mut r = app
            .client
            .get(app.url("/topics/t/events?last_event_id=0"))
            .send()
            .await
            .unwrap();
        let text = read_until(&mut r, "]}}\n\n").await;
        let frame = text.split("\n\n").nth(1).unwrap();
        let lines: Vec<&str> = frame.lines().collect();
        assert_eq!(lines[0], "id: 1");
        assert_eq!(lines[1], "event: message");
        assert!(lines[2].starts_with("data: {\"id\":1,"), "{lines:?}");
        assert_eq!(lines.len(), 3);
        app.stop().await;
    }
}

mod rotation {
    use serde_json::json;

    use crate::helpers::{Backend, TestDb, spawn_app_with};

    #[tokio::test]
    async fn streams_end_after_the_max_duration_and_resume_exactly() {
        let db = TestDb::new(&Backend::Sqlite).await;
        let app = spawn_app_with(db, &["--sse-max-duration-ms", "300"]).await;
        let mut sse = app.subscribe("/topics/t/events", None).await;
        let first = app.publish_json("t", json!(1)).await;
        assert_eq!(sse.messages(1).await[0].id, first.id);
        // The server ends the stream on its own …
        assert!(sse.next_event().await.is_none());
        // … and a reconnect with the last id misses nothing.
        let missed = app.publish_json("t", json!(2)).await;
        let mut again = app
            .subscribe("/topics/t/events", Some(&first.id.to_string()))
            .await;
        assert_eq!(again.messages(1).await[0].id, missed.id);
        app.stop().await;
    }
}
