//! Presence: who is listening, `?client=`, `max_subscribers`, and join and
//! leave events on SSE streams.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, eventually, spawn_app};

crate::on_both_backends!(
    streams_are_present_with_their_client_until_they_close,
    presence_pages_in_connection_order,
    a_bad_client_label_is_a_400,
    a_topic_at_its_max_subscribers_refuses_a_stream_with_429,
    pattern_streams_count_toward_max_subscribers_and_are_refused_past_it,
    presence_shows_a_caller_only_streams_within_its_scopes,
    presence_events_come_without_an_id_and_do_not_move_the_cursor,
);

async fn presence(app: &TestApp, path: &str) -> Value {
    let r = app.get(path).await;
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// Waits until the topic's presence counts `n`; returns it.
pub async fn until_count(app: &TestApp, topic: &str, n: u64) -> Value {
    eventually(&format!("{topic} to count {n}"), || async {
        let p = presence(app, &format!("/topics/{topic}/presence")).await;
        (p["count"] == n).then_some(p)
    })
    .await
}

async fn streams_are_present_with_their_client_until_they_close(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(until_count(&app, "room", 0).await["subscribers"], json!([]));
    let alice = app
        .subscribe("/topics/room/events?client=alice", None)
        .await;
    let _pattern = app.subscribe("/events?topic=room,other", None).await;
    let p = until_count(&app, "room", 2).await;
    let subs = p["subscribers"].as_array().unwrap();
    let clients: Vec<&str> = subs.iter().map(|s| s["client"].as_str().unwrap()).collect();
    assert!(clients.contains(&"alice") && clients.contains(&""), "{p}");
    for s in subs {
        assert!(!s["connection"].as_str().unwrap().is_empty());
        assert!(!s["node"].as_str().unwrap().is_empty());
        assert!(s["since"].as_str().unwrap().ends_with('Z'));
    }
    app.publish_text("room", "hi").await;
    let t: Value = app.get("/topics/room").await.json().await.unwrap();
    assert_eq!(t["subscribers"], 2);
    drop(alice);
    let p = until_count(&app, "room", 1).await;
    assert_eq!(p["subscribers"][0]["client"], "");
    app.stop().await;
}

async fn presence_pages_in_connection_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut streams = Vec::new();
    for i in 0..5 {
        streams.push(
            app.subscribe(&format!("/topics/p/events?client=c{i}"), None)
                .await,
        );
    }
    until_count(&app, "p", 5).await;
    let mut seen = Vec::new();
    let mut path = "/topics/p/presence?limit=2".to_owned();
    loop {
        let page = presence(&app, &path).await;
        assert_eq!(page["count"], 5);
        for s in page["subscribers"].as_array().unwrap() {
            seen.push(s["connection"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/topics/p/presence?limit=2&after={next}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "pages in order, without repeats");
    assert_eq!(seen.len(), 5);
    let r = app.get("/topics/p/presence?limit=0").await;
    assert_eq!(r.status(), 400);
    app.stop().await;
}

async fn a_bad_client_label_is_a_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let long = "x".repeat(65);
    for bad in [long.as_str(), "a%0Ab"] {
        let r = app.get(&format!("/topics/t/events?client={bad}")).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["type"], "urn:herald:problem:invalid-client");
    }
    let ok = "é".repeat(64);
    let _s = app
        .subscribe(&format!("/topics/t/events?client={ok}"), None)
        .await;
    let p = until_count(&app, "t", 1).await;
    assert_eq!(p["subscribers"][0]["client"], ok.as_str());
    assert_eq!(
        app.get("/topics/t/events?presence=maybe").await.status(),
        400
    );
    app.stop().await;
}

async fn a_topic_at_its_max_subscribers_refuses_a_stream_with_429(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .client
        .put(app.url("/topics/full"))
        .json(&json!({"max_subscribers": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let one = app.subscribe("/topics/full/events", None).await;
    let _two = app.subscribe("/events?topic=full", None).await;
    let r = app.get("/topics/full/events").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["type"], "urn:herald:problem:too-many-subscribers");
    // Other topics are not limited; a place that frees up can be taken.
    let _other = app.subscribe("/topics/free/events", None).await;
    drop(one);
    until_count(&app, "full", 1).await;
    let _three = app.subscribe("/topics/full/events", None).await;
    app.stop().await;
}

async fn presence_events_come_without_an_id_and_do_not_move_the_cursor(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.publish_text("chat", "one").await;
    let mut watcher = app
        .subscribe("/topics/chat/events?presence=true&client=watcher", None)
        .await;
    let own = watcher.next_event().await.unwrap();
    assert_eq!(own.event, "join");
    assert_eq!(own.id, "", "a join has no id");
    let bob = app.subscribe("/topics/chat/events?client=bob", None).await;
    let join = watcher.next_event().await.unwrap();
    assert_eq!((join.event.as_str(), join.id.as_str()), ("join", ""));
    let data: Value = serde_json::from_str(&join.data).unwrap();
    assert_eq!(data["topic"], "chat");
    assert_eq!(data["client"], "bob");
    assert!(data["connection"].is_string() && data["time"].is_string());
    drop(bob);
    let leave = watcher.next_event().await.unwrap();
    assert_eq!((leave.event.as_str(), leave.id.as_str()), ("leave", ""));
    // A message after the events carries its own id; the cursor follows
    // messages only.
    let second = app.publish_text("chat", "two").await;
    let m = watcher.messages(1).await;
    assert_eq!(m[0].id, second.id);
    assert!(second.id > first.id);
    // Streams without ?presence=true see no presence events.
    let mut plain = app
        .subscribe(
            &format!("/topics/chat/events?last_event_id={}", first.id),
            None,
        )
        .await;
    let _carol = app
        .subscribe("/topics/chat/events?client=carol", None)
        .await;
    let e = plain.next_event().await.unwrap();
    assert_eq!(e.event, "message");
    assert_eq!(e.id, second.id.to_string());
    app.stop().await;
}

async fn pattern_streams_count_toward_max_subscribers_and_are_refused_past_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .client
        .put(app.url("/topics/chat.lobby"))
        .json(&json!({"max_subscribers": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let exact = app.subscribe("/topics/chat.lobby/events", None).await;
    let _pattern = app.subscribe("/events?topic=chat.*", None).await;
    // Full: another pattern that can receive chat.lobby is refused, as is
    // an exact stream; a pattern that cannot receive it is not.
    for path in [
        "/events?topic=chat.*",
        "/events?topic=**",
        "/topics/chat.lobby/events",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status(), 429, "{path}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(
            p["type"], "urn:herald:problem:too-many-subscribers",
            "{path}"
        );
    }
    let _elsewhere = app.subscribe("/events?topic=news.*", None).await;
    assert_eq!(until_count(&app, "chat.lobby", 2).await["count"], 2);
    // When the exact stream leaves, its place can be taken by anyone.
    drop(exact);
    until_count(&app, "chat.lobby", 1).await;
    let _again = app.subscribe("/topics/chat.lobby/events", None).await;
    until_count(&app, "chat.lobby", 2).await;
    app.stop().await;
}

/// A caller sees only the streams it could open itself (issue 39, item
/// 11): an admin's `**` stream, or one that also watches a topic beyond
/// the caller's scopes, is neither listed nor counted, nor announced.
async fn presence_shows_a_caller_only_streams_within_its_scopes(backend: Backend) {
    let flags = crate::jwt::flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let app =
        crate::helpers::spawn_app_with(crate::helpers::TestDb::new(&backend).await, &flags).await;
    let token = |sub: &str, herald: Value| crate::jwt::hs256(&crate::jwt::claims(sub, herald));
    let root = token("root", json!({"admin": true}));
    let chat = token("carol", json!({"subscribe": ["chat.**"]}));
    let _admin = app
        .subscribe(&format!("/events?topic=**&access_token={root}"), None)
        .await;
    let _mixed = app
        .subscribe(
            &format!("/events?topic=chat.lobby,secret.x&access_token={root}"),
            None,
        )
        .await;
    let mut own = app
        .subscribe(
            &format!("/events?topic=chat.*&presence=true&access_token={chat}"),
            None,
        )
        .await;
    let all: Value = app
        .get(&format!("/topics/chat.lobby/presence?access_token={root}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["count"], 3, "an admin sees every stream: {all}");
    let seen: Value = app
        .get(&format!("/topics/chat.lobby/presence?access_token={chat}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["count"], 1, "{seen}");
    assert_eq!(seen["subscribers"][0]["client"], "carol", "{seen}");
    // Joins: an admin's `**` stream is not announced to carol's stream,
    // a stream within her scopes is.
    let _hidden = app
        .subscribe(&format!("/events?topic=**&access_token={root}"), None)
        .await;
    let _visible = app
        .subscribe(
            &format!("/topics/chat.lobby/events?access_token={root}"),
            None,
        )
        .await;
    loop {
        let join = own.next_event().await.expect("a join");
        assert_eq!(join.event, "join");
        let data: Value = serde_json::from_str(&join.data).unwrap();
        assert_ne!(
            data["topic"], "**",
            "the hidden stream was announced: {data}"
        );
        if data["topic"] == "chat.lobby" {
            assert_eq!(data["client"], "root");
            break;
        }
    }
    app.stop().await;
}
