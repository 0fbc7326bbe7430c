//! Edges a new user hit building apps on herald (issue 28): answers end
//! with a newline, an empty `ack_ids` acks nothing, durations are strings
//! everywhere, a topic with only subscribers exists, every stream starts
//! with `retry:`, dead letters say what happened, WebSockets close
//! cleanly, and one socket's ops take effect in order.

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::pull::{create_pull, nack, post_json, pull, stats};
use super::ws::Ws;
use crate::helpers::{Backend, DEADLINE, TestApp, eventually, spawn_app};

crate::on_both_backends!(
    publish_and_batch_answers_end_with_a_newline,
    an_empty_ack_list_acks_nothing_over_http_and_the_socket,
    subscription_durations_are_strings_or_milliseconds,
    a_pull_subscription_shows_each_counter_once_and_no_timeout,
    a_topic_that_only_has_subscribers_exists_until_they_leave,
    every_presence_stream_starts_with_retry,
    a_dead_letter_says_how_many_times_it_was_nacked,
    a_closing_handshake_from_the_client_is_answered_with_its_code,
    a_stopping_herald_closes_its_sockets_with_1001,
    a_subscribe_after_a_publish_on_one_socket_starts_after_it_is_stored,
);

async fn body_of(r: reqwest::Response) -> String {
    r.text().await.unwrap()
}

async fn publish_and_batch_answers_end_with_a_newline(backend: Backend) {
    let app = spawn_app(backend).await;
    let keyed = |key: &'static str| {
        app.client
            .post(app.url("/topics/nl"))
            .header("idempotency-key", key)
            .body("hello")
    };
    let first = body_of(keyed("k").send().await.unwrap()).await;
    let replay = keyed("k").send().await.unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(body_of(replay).await, first, "a replay is the same bytes");
    let batch = app
        .post(
            "/topics/nl/batch",
            Some("application/json"),
            r#"["a", "b"]"#.to_owned(),
        )
        .await;
    assert_eq!(batch.status(), 201);
    let scheduled = app
        .post("/topics/nl?delay=1h", None, "later".to_owned())
        .await;
    assert_eq!(scheduled.status(), 202);
    for body in [first, body_of(batch).await, body_of(scheduled).await] {
        assert!(body.ends_with("}\n"), "{body:?}");
        serde_json::from_str::<Value>(&body).unwrap();
    }
}

async fn an_empty_ack_list_acks_nothing_over_http_and_the_socket(backend: Backend) {
    let app = spawn_app(backend).await;
    let sub = create_pull(&app, "jobs", json!({})).await;
    app.publish_text("jobs", "one").await;
    // A worker's first pull hands in its previous (empty) batch.
    let path = format!("/subscriptions/{sub}/pull");
    let r = post_json(&app, &path, json!({"ack_ids": [], "wait": "5s"})).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["acks"], json!({"acked": 0, "unknown": []}));
    assert_eq!(body["messages"][0]["message"]["data"], "one");
    for op in ["ack", "nack", "extend"] {
        let mut req = json!({"ack_ids": []});
        if op == "extend" {
            req["ack_deadline"] = json!("1m");
        }
        let r = post_json(&app, &format!("/subscriptions/{sub}/{op}"), req).await;
        assert_eq!(r.status(), 200, "{op}: {:?}", r.text().await);
    }
    let mut ws = Ws::connect(&app, "").await;
    ws.send(json!({"op": "pull", "ref": "p", "subscription": sub, "ack_ids": []}))
        .await;
    let pulled = ws.until("pulled").await;
    assert_eq!(pulled["acks"]["acked"], 0, "{pulled}");
}

async fn create(app: &TestApp, body: Value) -> reqwest::Response {
    post_json(app, "/subscriptions", body).await
}

async fn subscription_durations_are_strings_or_milliseconds(backend: Backend) {
    let app = spawn_app(backend).await;
    let hook = "http://example.com/hook";
    let r = create(
        &app,
        json!({"topic": "t", "url": hook, "min_backoff": "2s", "max_backoff": "1m", "timeout": "5s"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let made: Value = r.json().await.unwrap();
    assert_eq!(
        (
            &made["min_backoff_ms"],
            &made["max_backoff_ms"],
            &made["timeout_ms"]
        ),
        (&json!(2000), &json!(60000), &json!(5000)),
        "{made}"
    );
    let r = create(
        &app,
        json!({"topic": "t", "url": hook, "min_backoff_ms": 250}),
    )
    .await;
    assert_eq!(r.status(), 201, "the older integers still work");
    let id = made["id"].as_i64().unwrap();
    let r = app
        .client
        .patch(app.url(&format!("/subscriptions/{id}")))
        .json(&json!({"timeout": "1500ms", "max_backoff": "10m"}))
        .send()
        .await
        .unwrap();
    let patched: Value = r.json().await.unwrap();
    assert_eq!(
        (&patched["timeout_ms"], &patched["max_backoff_ms"]),
        (&json!(1500), &json!(600000))
    );
    for (bad, needle) in [
        (json!({"timeout": "5s", "timeout_ms": 5000}), "not both"),
        (json!({"min_backoff": "soon"}), "min_backoff"),
        (json!({"timeout": "1h"}), "timeout_ms"),
    ] {
        let mut body = json!({"topic": "t", "url": hook});
        body.as_object_mut()
            .unwrap()
            .extend(bad.as_object().unwrap().clone());
        let r = create(&app, body).await;
        let problem =
            crate::errors::assert_problem(r, reqwest::StatusCode::BAD_REQUEST, needle).await;
        assert!(
            problem["detail"].as_str().unwrap().contains(needle),
            "{problem}"
        );
    }
}

async fn a_pull_subscription_shows_each_counter_once_and_no_timeout(backend: Backend) {
    let app = spawn_app(backend).await;
    let sub = create_pull(&app, "jobs", json!({"min_backoff": "1s"})).await;
    app.publish_text("jobs", "one").await;
    assert_eq!(pull(&app, sub, 1, "5s").await.len(), 1);
    let shown = stats(&app, sub).await;
    assert_eq!(shown["in_flight"], 1, "{shown}");
    assert_eq!(shown["min_backoff_ms"], 1000, "{shown}");
    assert!(shown.get("stats").is_none(), "counters once: {shown}");
    assert!(shown.get("timeout_ms").is_none(), "nothing to set: {shown}");
    let listed: Value = app.get("/subscriptions").await.json().await.unwrap();
    assert!(listed["subscriptions"][0].get("timeout_ms").is_none());
}

async fn a_topic_that_only_has_subscribers_exists_until_they_leave(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/topics/chat.lobby").await.status(), 404);
    let sse = app.subscribe("/topics/chat.lobby/events", None).await;
    let r = app.get("/topics/chat.lobby").await;
    assert_eq!(r.status(), 200);
    let topic: Value = r.json().await.unwrap();
    assert_eq!(
        (
            &topic["last_seq"],
            &topic["message_count"],
            &topic["subscribers"]
        ),
        (&json!(0), &json!(0), &json!(1)),
        "{topic}"
    );
    drop(sse);
    eventually("the topic to go with its last subscriber", || async {
        (app.get("/topics/chat.lobby").await.status() == 404).then_some(())
    })
    .await;
}

/// The first bytes of a stream, up to `n`.
async fn first_bytes(app: &TestApp, path: &str, n: usize) -> String {
    let r = app
        .client
        .get(app.url(path))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let mut got = Vec::new();
    while got.len() < n {
        let chunk = tokio::time::timeout(DEADLINE, stream.next())
            .await
            .expect("bytes in time");
        match chunk {
            Some(Ok(c)) => got.extend_from_slice(&c),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

async fn every_presence_stream_starts_with_retry(backend: Backend) {
    let app = spawn_app(backend).await;
    // Streams that stay open, so each new one has joins to tell of.
    let mut open = Vec::new();
    for i in 0..30 {
        let path = format!("/topics/room/events?presence=true&client=c{i}");
        let head = first_bytes(&app, &path, 6).await;
        assert!(head.starts_with("retry:"), "stream {i} began {head:?}");
        open.push(app.subscribe(&path, None).await);
    }
    let head = first_bytes(&app, "/events?topic=room&presence=true", 6).await;
    assert!(head.starts_with("retry:"), "{head:?}");
}

async fn a_dead_letter_says_how_many_times_it_was_nacked(backend: Backend) {
    let app = spawn_app(backend).await;
    let sub = create_pull(&app, "jobs", json!({"max_attempts": 3})).await;
    app.publish_text("jobs", "doomed").await;
    for _ in 0..3 {
        let got = pull(&app, sub, 1, "10s").await;
        assert_eq!(got.len(), 1);
        nack(&app, sub, &[&got[0].ack_id], "0s").await;
    }
    let path = format!("/dead-letters?subscription={sub}");
    let letter = eventually("the dead letter", || async {
        let page: Value = app.get(&path).await.json().await.unwrap();
        page["dead_letters"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(
        (&letter["reason"], &letter["last_error"]),
        (&json!("max_attempts"), &json!("nacked 3 times")),
        "{letter}"
    );
}

async fn a_closing_handshake_from_the_client_is_answered_with_its_code(backend: Backend) {
    let app = spawn_app(backend).await;
    for code in [1000, 4000] {
        let mut ws = Ws::connect(&app, "").await;
        ws.send(json!({"op": "subscribe", "sub": "a", "topics": ["t"]}))
            .await;
        ws.until("subscribed").await;
        ws.close(code).await;
        let answer = ws.until("closed").await;
        assert_eq!(answer["code"], code, "the peer's code echoed: {answer}");
        assert!(ws.next().await.is_none(), "then the connection ends");
    }
}

async fn a_stopping_herald_closes_its_sockets_with_1001(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ws = Ws::connect(&app, "").await;
    ws.send(json!({"op": "subscribe", "sub": "a", "topics": ["t"]}))
        .await;
    ws.until("subscribed").await;
    let stopped = tokio::spawn(app.stop());
    let closed = ws.until("closed").await;
    assert_eq!(closed["code"], 1001, "{closed}");
    stopped.await.unwrap();
}

async fn a_subscribe_after_a_publish_on_one_socket_starts_after_it_is_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = app.publish_text("t", "before").await;
    let mut ws = Ws::connect(&app, "").await;
    // Sent back to back: the subscribes start once the publishes are stored.
    const N: usize = 20;
    for i in 0..N {
        ws.send(json!({"op": "publish", "ref": i, "topic": "t", "text": format!("during {i}")}))
            .await;
    }
    ws.send(json!({"op": "subscribe", "sub": "live", "topics": ["t"]}))
        .await;
    ws.send(
        json!({"op": "subscribe", "sub": "resumed", "topics": ["t"], "last_event_id": before.id}),
    )
    .await;
    for _ in 0..N {
        let published = ws.next().await.unwrap();
        assert_eq!(published["op"], "published", "{published}");
    }
    let (mut live, mut resumed) = (Vec::new(), Vec::new());
    let mut subscribed = 0;
    while resumed.len() < N + 1 || live.is_empty() {
        let f = ws.next().await.expect("open");
        assert_ne!(f["op"], "gap", "a cursor below the head is no gap: {f}");
        if f["op"] == "subscribed" {
            subscribed += 1;
            if subscribed == 2 {
                // Both are open: a message now reaches both.
                app.publish_text("t", "after").await;
            }
        }
        if f["op"] == "message" {
            let data = f["data"].as_str().unwrap().to_owned();
            match f["sub"].as_str().unwrap() {
                "live" => live.push(data),
                _ => resumed.push(data),
            }
        }
    }
    assert_eq!(
        live,
        ["after"],
        "the live one starts after every publish before it"
    );
    // Publishes run side by side: stored in any order, each exactly once.
    assert_eq!(resumed.last().map(String::as_str), Some("after"));
    let mut want: Vec<String> = (0..N).map(|i| format!("during {i}")).collect();
    want.push("after".into());
    resumed.sort();
    want.sort();
    assert_eq!(resumed, want);
}

/// The real binary, as a newcomer starts it: its first log line says
/// where it listens, and SIGTERM closes its WebSockets with 1001 before
/// the process exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_logs_its_address_first_and_closes_sockets_with_1001_on_sigterm() {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio_tungstenite::tungstenite::Message;
    let db = crate::helpers::TestDb::new(&Backend::Sqlite).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["--listen", "127.0.0.1:0", "--database-url", &db.url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start herald");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .expect("a first log line in time")
        .unwrap()
        .expect("a first log line");
    let addr = first
        .split("listening on http://")
        .nth(1)
        .unwrap_or_else(|| panic!("the first line names the address: {first}"))
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
        .next()
        .unwrap()
        .to_owned();
    // Keep reading its log, so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("upgrade");
    use futures_util::SinkExt;
    let subscribe = json!({"op": "subscribe", "sub": "a", "topics": ["t"]});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    let _subscribed = tokio::time::timeout(DEADLINE, ws.next()).await.unwrap();
    let pid = child.id().expect("running").to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let code = loop {
        match tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("a close in time")
        {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    };
    assert_eq!(code, Some(1001));
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}
