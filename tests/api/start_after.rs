//! Where a stream starts: an SSE answer's `Herald-Start-After` header and a
//! WebSocket `subscribed` frame's `start_after` name the id a stream starts
//! after, so a client that got nothing yet resumes from it exactly (the
//! client libraries rely on it).

use serde_json::json;

use super::ws::Ws;
use crate::helpers::{Backend, Sse, TestApp, spawn_app};

crate::on_both_backends!(
    a_live_sse_stream_names_the_head_it_starts_after_and_resumes_from_it,
    a_websocket_subscription_names_where_it_starts,
);

/// Opens `/topics/sa/events` (after `last_event_id` when given) and returns
/// its `Herald-Start-After`; the stream is dropped.
async fn start_after(app: &TestApp, last_event_id: Option<i64>) -> i64 {
    let mut request = app.client.get(app.url("/topics/sa/events"));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.headers()["herald-start-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn a_live_sse_stream_names_the_head_it_starts_after_and_resumes_from_it(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(start_after(&app, None).await, 0, "an empty log");

    let before = app.publish_text("sa", "before").await;
    let elsewhere = app.publish_text("other", "elsewhere").await;
    let start = start_after(&app, None).await;
    assert_eq!(start, elsewhere.id, "the log's head, not the topic's");

    // Gone before any event arrived: what was published meanwhile comes
    // from the header's id, and nothing from before it.
    let missed = app.publish_text("sa", "while away").await;
    let mut resumed = Sse::connect(
        &app.client,
        &app.url("/topics/sa/events"),
        Some(&start.to_string()),
    )
    .await;
    let got = resumed.messages(1).await;
    assert_eq!(got[0].id, missed.id);

    assert_eq!(
        start_after(&app, Some(before.id)).await,
        before.id,
        "a cursor's stream starts after the cursor"
    );
}

async fn a_websocket_subscription_names_where_it_starts(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.publish_text("wsa", "one").await;
    let mut ws = Ws::connect(&app, "").await;
    ws.send(json!({"op": "subscribe", "sub": "live", "topics": ["wsa"]}))
        .await;
    let live = ws.until("subscribed").await;
    assert_eq!(live["start_after"], first.id, "{live}");
    ws.send(
        json!({"op": "subscribe", "sub": "all", "topics": ["wsa"], "last_event_id": "earliest"}),
    )
    .await;
    let all = ws.until("subscribed").await;
    assert_eq!(all["start_after"], 0, "{all}");
}
