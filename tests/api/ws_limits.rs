//! `/ws` under pressure and at its limits (issue 39): a socket that stops
//! reading holds a bounded queue and is closed after the write timeout,
//! and resumes exactly; a WebSocket publish meets every limit an HTTP one
//! does; a caller without any right gets no upgrade.

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::presence::until_count;
use super::pull::publish_many;
use super::ws::Ws;
use crate::helpers::{Backend, TestDb, spawn_app_with};

crate::on_both_backends!(
    a_socket_that_stops_reading_is_closed_and_resumes_exactly,
    a_websocket_publish_meets_the_same_limits_as_http,
    without_any_right_the_upgrade_is_refused_with_401,
);

/// Messages of about 4 KB in the topic the stalled socket catches up on.
const BULK: usize = 2_000;

async fn a_socket_that_stops_reading_is_closed_and_resumes_exactly(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let app = spawn_app_with(db, &["--sse-write-timeout", "1s"]).await;
    let pad = "x".repeat(4_000);
    for from in (0..BULK).step_by(200) {
        let body: Vec<_> = (from..from + 200)
            .map(|n| json!({"n": n, "pad": pad}))
            .collect();
        let r = super::pull::post_json(&app, "/topics/bulk/batch", json!(body)).await;
        assert_eq!(r.status(), 201);
    }
    // A raw client with a small receive buffer that subscribes from the
    // start, then never reads again.
    let addr = app.base.trim_start_matches("http://").to_owned();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket.connect(addr.parse().unwrap()).await.unwrap();
    tcp.write_all(
        format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    tcp.write_all(&masked(
        &json!({"op": "subscribe", "sub": "s", "topics": ["bulk"], "last_event_id": "earliest"})
            .to_string(),
    ))
    .await
    .unwrap();
    until_count(&app, "bulk", 1).await;
    // Its writes block, and after the write timeout herald lets it go.
    until_count(&app, "bulk", 0).await;
    drop(tcp);

    // A reconnect from the start gets every message, once, in order.
    let published: Vec<i64> =
        super::pull::post_json(&app, "/topics/bulk/batch", json!([{"n": -1}]))
            .await
            .json::<serde_json::Value>()
            .await
            .unwrap()["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
    let mut ws = Ws::connect(&app, "").await;
    ws.send(
        json!({"op": "subscribe", "sub": "s", "topics": ["bulk"], "last_event_id": "earliest"}),
    )
    .await;
    let mut ids = Vec::new();
    while ids.len() < BULK + 1 {
        let f = ws.until("message").await;
        ids.push(f["id"].as_i64().unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order, once each");
    assert_eq!(ids.last(), published.last());
    app.stop().await;
}

/// A client frame: text, masked as RFC 6455 requires of clients.
fn masked(text: &str) -> Vec<u8> {
    let data = text.as_bytes();
    let mask = [7u8, 1, 9, 3];
    let mut out = vec![0x81];
    match data.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

async fn a_websocket_publish_meets_the_same_limits_as_http(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let app = spawn_app_with(db, &["--max-message-bytes", "1024"]).await;
    let schema = json!({"schema": {"type": "object", "required": ["n"]}});
    let r = app
        .client
        .put(app.url("/topics/checked"))
        .json(&schema)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut ws = Ws::connect(&app, "").await;
    let mut deep = json!(1);
    for _ in 0..70 {
        deep = json!([deep]);
    }
    for (frame, status, kind) in [
        (
            json!({"op": "publish", "ref": 1, "topic": "t", "text": "x".repeat(5_000)}),
            413,
            "too-large",
        ),
        (
            json!({"op": "publish", "ref": 2, "topic": "t", "data": {"pad": "x".repeat(2_000)}}),
            413,
            "too-large",
        ),
        (
            json!({"op": "publish", "ref": 3, "topic": "t", "data": deep}),
            400,
            "invalid-json",
        ),
        (
            json!({"op": "publish", "ref": 4, "topic": "checked", "data": {"m": 1}}),
            422,
            "schema-violation",
        ),
    ] {
        ws.send(frame.clone()).await;
        let e = ws.until("error").await;
        assert_eq!(
            (e["status"].as_u64(), e["ref"].clone()),
            (Some(status), frame["ref"].clone()),
            "{e}"
        );
        assert!(e["type"].as_str().unwrap().ends_with(kind), "{frame}: {e}");
    }
    // Within the limits it is stored.
    ws.send(json!({"op": "publish", "ref": 5, "topic": "t", "text": "x".repeat(1_000)}))
        .await;
    assert_eq!(ws.until("published").await["ref"], 5);
    let stored = publish_many(&app, "t", 0, 1).await;
    assert_eq!(stored.len(), 1);
    let page: serde_json::Value = app.get("/topics/t").await.json().await.unwrap();
    assert_eq!(
        page["last_seq"], 2,
        "only the publish within the limit: {page}"
    );
    app.stop().await;
}

async fn without_any_right_the_upgrade_is_refused_with_401(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let mut flags = crate::jwt::flags();
    flags.extend(["--anonymous".into(), "none".into()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let app = spawn_app_with(db, &flags).await;
    let url = format!("{}/ws", app.base.replace("http://", "ws://"));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("expected a 401 before the upgrade, got {other:?}"),
    }
    // The same herald upgrades a socket that brings a token.
    let token = crate::jwt::hs256(&crate::jwt::claims("u", json!({"subscribe": ["t"]})));
    let mut ws = Ws::connect(&app, &format!("?access_token={token}")).await;
    ws.send(json!({"op": "ping"})).await;
    ws.until("pong").await;
    app.stop().await;
}
