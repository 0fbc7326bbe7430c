//! `GET /ws`: subscribe, publish, pull and presence over one WebSocket,
//! bad frames answered with `error` frames, and exact resume.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Backend, DEADLINE, TestApp, spawn_app, spawn_app_with};

crate::on_both_backends!(
    a_socket_subscribes_publishes_and_receives_envelopes_with_its_sub,
    bad_frames_get_error_frames_and_the_socket_stays_up,
    a_frame_beyond_the_hard_limit_closes_with_1009,
    a_socket_from_another_site_is_refused,
    pull_ack_and_nack_work_over_the_socket,
    presence_events_reach_a_socket_that_asks_for_them,
    the_union_across_reconnects_is_the_log_under_eight_publishers,
);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client.
pub struct Ws(Socket);

impl Ws {
    pub async fn connect(app: &TestApp, query: &str) -> Ws {
        let url = format!("{}/ws{query}", app.base.replace("http://", "ws://"));
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("upgrade");
        Ws(socket)
    }

    /// Starts the closing handshake with `code`.
    pub async fn close(&mut self, code: u16) {
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;
        let frame = CloseFrame {
            code: code.into(),
            reason: "bye".into(),
        };
        self.0.close(Some(frame)).await.unwrap();
    }

    pub async fn send(&mut self, frame: Value) {
        self.0.send(Message::text(frame.to_string())).await.unwrap();
    }

    /// The next JSON frame (pings and pongs skipped); `None` once closed.
    pub async fn next(&mut self) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let m = tokio::time::timeout_at(deadline, self.0.next())
                .await
                .expect("no frame in time");
            match m {
                Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(c))) => {
                    return Some(json!({"op": "closed", "code": c.map(|c| u16::from(c.code))}));
                }
                _ => return None,
            }
        }
    }

    /// The next frame whose op is `op`, skipping others.
    pub async fn until(&mut self, op: &str) -> Value {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {op} frame in time"
            );
            let f = self
                .next()
                .await
                .unwrap_or_else(|| panic!("closed before {op}"));
            if f["op"] == op {
                return f;
            }
        }
    }

    /// Sends `frame` and expects an `error` frame back; returns it.
    async fn refused(&mut self, frame: Message) -> Value {
        self.0.send(frame).await.unwrap();
        let e = self.until("error").await;
        assert!(e["status"].as_u64().unwrap() >= 400, "{e}");
        assert!(
            e["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:herald:problem:"),
            "{e}"
        );
        e
    }
}

async fn a_socket_subscribes_publishes_and_receives_envelopes_with_its_sub(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ws = Ws::connect(&app, "").await;
    ws.send(json!({"op": "subscribe", "sub": "a", "topics": ["t"]}))
        .await;
    ws.send(json!({"op": "subscribe", "sub": "b", "topics": ["t"], "filter": "data.n > 1"}))
        .await;
    assert_eq!(ws.until("subscribed").await["sub"], "a");
    assert_eq!(ws.until("subscribed").await["sub"], "b");
    for n in [1, 2] {
        ws.send(
            json!({"op": "publish", "ref": n, "topic": "t", "data": {"n": n}, "priority": "high"}),
        )
        .await;
    }
    let (mut got, mut published) = (Vec::new(), Vec::new());
    while got.len() < 3 || published.len() < 2 {
        let f = ws.next().await.expect("open");
        match f["op"].as_str().unwrap() {
            "published" => {
                assert_eq!(
                    (f["ref"].clone(), f["status"].clone()),
                    (f["seq"].clone(), json!(201)),
                    "{f}"
                );
                published.push(f["id"].as_i64().unwrap());
            }
            "message" => {
                assert_eq!(
                    (f["topic"].as_str(), f["priority"].as_i64()),
                    (Some("t"), Some(4))
                );
                got.push((
                    f["sub"].as_str().unwrap().to_owned(),
                    f["data"]["n"].as_i64().unwrap(),
                ));
            }
            other => panic!("unexpected {other}: {f}"),
        }
    }
    got.sort();
    assert_eq!(got, [("a".into(), 1), ("a".into(), 2), ("b".into(), 2)]);
    ws.send(json!({"op": "unsubscribe", "sub": "a"})).await;
    assert_eq!(ws.until("unsubscribed").await["sub"], "a");
    app.publish_json("t", json!({"n": 3})).await;
    let m = ws.until("message").await;
    assert_eq!(
        (m["sub"].as_str(), m["data"]["n"].as_i64()),
        (Some("b"), Some(3))
    );
    ws.send(json!({"op": "ping", "ref": "p"})).await;
    assert_eq!(ws.until("pong").await["ref"], "p");
    app.stop().await;
}

async fn bad_frames_get_error_frames_and_the_socket_stays_up(backend: Backend) {
    let db = crate::helpers::TestDb::new(&backend).await;
    let app = spawn_app_with(
        db,
        &[
            "--ws-max-frame-bytes",
            "1024",
            "--ws-max-subscriptions",
            "1",
        ],
    )
    .await;
    let mut ws = Ws::connect(&app, "").await;
    let text = |v: &str| Message::text(v.to_owned());
    let kinds = [
        (text("{"), "invalid-frame"),
        (text("[1]"), "invalid-frame"),
        (text(r#"{"op":"dance","ref":9}"#), "unknown-op"),
        (Message::binary(vec![1u8, 2, 3]), "binary-frame"),
        (
            text(&format!(r#"{{"op":"ping","pad":"{}"}}"#, "x".repeat(2000))),
            "frame-too-large",
        ),
        (
            text(r#"{"op":"subscribe","sub":"s","topics":["a b"]}"#),
            "invalid-topic",
        ),
        (
            text(r#"{"op":"subscribe","sub":"s","topics":[]}"#),
            "invalid-topic",
        ),
        (
            text(r#"{"op":"subscribe","sub":"s","topics":["t"],"filter":"data. =="}"#),
            "invalid-filter",
        ),
        (
            text(r#"{"op":"subscribe","sub":"s","topics":["t"],"last_event_id":"abc"}"#),
            "invalid-cursor",
        ),
        (
            text(r#"{"op":"subscribe","sub":"","topics":["t"]}"#),
            "invalid-sub",
        ),
        (text(r#"{"op":"unsubscribe","sub":"nope"}"#), "not-found"),
        (
            text(r#"{"op":"publish","ref":"r","topic":"t"}"#),
            "invalid-frame",
        ),
        (
            text(r#"{"op":"publish","ref":"r","topic":"t","data":1,"priority":9}"#),
            "invalid-query",
        ),
        (text(r#"{"op":"pull","subscription":0}"#), "invalid-frame"),
    ];
    for (frame, kind) in kinds {
        let e = ws.refused(frame).await;
        assert_eq!(e["type"], format!("urn:herald:problem:{kind}"), "{e}");
    }
    let e = ws.refused(text(r#"{"op":"dance","ref":9}"#)).await;
    assert_eq!(e["ref"], 9, "the ref is echoed");
    ws.send(json!({"op": "subscribe", "sub": "s", "topics": ["t"]}))
        .await;
    ws.until("subscribed").await;
    let e = ws
        .refused(text(r#"{"op":"subscribe","sub":"s2","topics":["t"]}"#))
        .await;
    assert_eq!(
        (e["status"].as_u64(), e["sub"].as_str()),
        (Some(429), Some("s2"))
    );
    ws.send(json!({"op": "ping"})).await;
    ws.until("pong").await;
    app.stop().await;
}

async fn a_frame_beyond_the_hard_limit_closes_with_1009(backend: Backend) {
    let db = crate::helpers::TestDb::new(&backend).await;
    let app = spawn_app_with(db, &["--ws-max-frame-bytes", "1024"]).await;
    let mut ws = Ws::connect(&app, "").await;
    ws.0.send(Message::text("x".repeat(5000))).await.unwrap();
    let f = ws.next().await.expect("a close frame");
    assert_eq!(f, json!({"op": "closed", "code": 1009}));
    app.stop().await;
}

async fn pull_ack_and_nack_work_over_the_socket(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .client
        .post(app.url("/subscriptions"))
        .json(&json!({"topic": "jobs", "mode": "pull"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    for n in 0..2 {
        app.publish_json("jobs", json!({"n": n})).await;
    }
    let mut ws = Ws::connect(&app, "").await;
    // A pull answers as soon as something is ready: pull until both are.
    let mut msgs = Vec::new();
    while msgs.len() < 2 {
        ws.send(
            json!({"op": "pull", "ref": 1, "subscription": id, "max_messages": 2, "wait": "5s"}),
        )
        .await;
        let pulled = ws.until("pulled").await;
        assert_eq!(pulled["ref"], 1);
        msgs.extend(pulled["messages"].as_array().unwrap().iter().cloned());
    }
    let ack_id = msgs[0]["ack_id"].clone();
    let nack_id = msgs[1]["ack_id"].clone();
    ws.send(json!({"op": "ack", "ref": 2, "subscription": id, "ack_ids": [ack_id]}))
        .await;
    assert_eq!(ws.until("acked").await["acked"], 1);
    ws.send(
        json!({"op": "nack", "ref": 3, "subscription": id, "ack_ids": [nack_id], "delay": "0s"}),
    )
    .await;
    assert_eq!(ws.until("nacked").await["updated"], 1);
    ws.send(json!({"op": "pull", "subscription": id, "wait": "5s"}))
        .await;
    let again = ws.until("pulled").await;
    assert_eq!(again["messages"][0]["attempt"], 2, "{again}");
    ws.send(json!({"op": "pull", "subscription": 999_999}))
        .await;
    assert_eq!(ws.until("error").await["status"], 404);
    app.stop().await;
}

async fn presence_events_reach_a_socket_that_asks_for_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut watcher = Ws::connect(&app, "?client=watcher").await;
    watcher
        .send(json!({"op": "subscribe", "sub": "w", "topics": ["room"], "presence": true}))
        .await;
    let connection = watcher.until("subscribed").await["connection"].clone();
    let own = watcher.until("join").await;
    assert_eq!(
        (own["connection"].clone(), own["client"].clone()),
        (connection, json!("watcher"))
    );
    let mut bob = Ws::connect(&app, "?client=bob").await;
    bob.send(json!({"op": "subscribe", "sub": "b", "topics": ["room"]}))
        .await;
    bob.until("subscribed").await;
    let join = watcher.until("join").await;
    assert_eq!(
        (
            join["sub"].as_str(),
            join["client"].as_str(),
            join["topic"].as_str()
        ),
        (Some("w"), Some("bob"), Some("room"))
    );
    let p: Value = app.get("/topics/room/presence").await.json().await.unwrap();
    assert_eq!(p["count"], 2);
    drop(bob);
    let leave = watcher.until("leave").await;
    assert_eq!(leave["client"], "bob");
    app.stop().await;
}

/// Reads a socket's messages of `topic` until `total` distinct ids are
/// seen, reconnecting (and resuming from the last id) every `every`
/// messages; returns every id received, repeats included.
async fn read_with_reconnects(app: &TestApp, total: usize, every: usize) -> Vec<i64> {
    let mut ids: Vec<i64> = Vec::new();
    let mut distinct = BTreeSet::new();
    while distinct.len() < total {
        let mut ws = Ws::connect(app, "").await;
        let cursor = ids.last().map_or(json!("earliest"), |id| json!(id));
        ws.send(
            json!({"op": "subscribe", "sub": "r", "topics": ["load"], "last_event_id": cursor}),
        )
        .await;
        for _ in 0..every {
            let m = ws.until("message").await;
            let id = m["id"].as_i64().unwrap();
            ids.push(id);
            distinct.insert(id);
            if distinct.len() == total {
                break;
            }
        }
    }
    ids
}

async fn the_union_across_reconnects_is_the_log_under_eight_publishers(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    const EACH: usize = 40;
    let publishers: Vec<_> = (0..8)
        .map(|p| {
            let app = app.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    app.publish_json("load", json!({"p": p, "i": i})).await;
                }
            })
        })
        .collect();
    let ids = read_with_reconnects(&app, 8 * EACH, 25).await;
    for p in publishers {
        p.await.unwrap();
    }
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, ids, "no duplicate, and in order, across reconnects");
    let log: Vec<i64> = app
        .get("/topics/load/messages?limit=1000")
        .await
        .json::<Value>()
        .await
        .unwrap()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, log, "the union of what the socket got is the log");
    Arc::into_inner(app).unwrap().stop().await;
}

async fn a_socket_from_another_site_is_refused(backend: Backend) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = spawn_app(backend).await;
    let url = format!("{}/ws", app.base.replace("http://", "ws://"));
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    // Its own origin (the live page's) is fine.
    let mut request = url.as_str().into_client_request().unwrap();
    let own = app.base.parse().unwrap();
    request.headers_mut().insert("origin", own);
    tokio_tungstenite::connect_async(request)
        .await
        .expect("same origin");
    app.stop().await;
}
