//! Retention and expiry meet webhooks: a pending delivery whose message
//! expires is dropped and counted, never sent and never a dead letter; a
//! dead letter keeps its message when retention removes it, and redrives.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDb, eventually, spawn_app_with};
use crate::receiver::{Behaviour, Receiver};
use crate::webhooks::subscribe;

crate::on_both_backends!(
    a_delivery_whose_message_expires_is_dropped_and_counted,
    a_waiting_retry_loses_its_expired_message_to_the_pruner,
    a_dead_letter_keeps_its_message_after_retention_and_redrives,
);

async fn spawn(backend: Backend, prune: &str) -> TestApp {
    let flags = [
        "--webhook-allow-private",
        "--webhook-poll-ms",
        "20",
        "--prune-interval",
        prune,
        // These receivers fail on purpose, for longer than it takes the
        // circuit breaker to open (its own tests are in webhook_ops.rs).
        "--webhook-circuit-min-attempts",
        "100000",
    ];
    spawn_app_with(TestDb::new(&backend).await, &flags).await
}

async fn stats(app: &TestApp, id: &Value) -> Value {
    let s: Value = app
        .get(&format!("/subscriptions/{id}"))
        .await
        .json()
        .await
        .unwrap();
    s["stats"].clone()
}

async fn a_delivery_whose_message_expires_is_dropped_and_counted(backend: Backend) {
    // No pruning: the delivery path itself must notice the expiry.
    let app = spawn(backend, "1h").await;
    let rx = Receiver::start(Behaviour::Fail(503)).await;
    let sub = subscribe(
        &app,
        json!({"topic": "t", "url": rx.url, "max_attempts": 100,
        "min_backoff_ms": 10, "max_backoff_ms": 50}),
    )
    .await;
    let r = app
        .post("/topics/t?ttl=1s", Some("application/json"), r#"{"n":1}"#)
        .await;
    assert_eq!(r.status(), 201);
    rx.requests(1).await;
    let s = eventually("the delivery to be dropped as expired", || async {
        let s = stats(&app, &sub["id"]).await;
        (s["expired"] == 1).then_some(s)
    })
    .await;
    assert_eq!(
        (s["pending"].as_i64(), s["retrying"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(s["dead_lettered"], 0);
    // Once dropped, nothing more is attempted, even for a healthy receiver.
    rx.set(Behaviour::Ok);
    let later = app.publish_json("t", json!({"n": 2})).await;
    let ok = rx.successes(1).await;
    assert_eq!(
        ok[0].json()["id"],
        later.id,
        "the expired one was never sent"
    );
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(text.contains("outcome=\"expired\""), "{text}");
    app.stop().await;
}

async fn a_waiting_retry_loses_its_expired_message_to_the_pruner(backend: Backend) {
    let app = spawn(backend, "50ms").await;
    let rx = Receiver::start(Behaviour::Fail(503)).await;
    // After its first failure the delivery waits a minute: only the
    // pruner can see its message expire meanwhile.
    let sub = subscribe(
        &app,
        json!({"topic": "t", "url": rx.url, "max_attempts": 10,
        "min_backoff_ms": 60000, "max_backoff_ms": 60000}),
    )
    .await;
    let r = app.post("/topics/t?ttl=1s", None, "soon gone").await;
    assert_eq!(r.status(), 201);
    rx.requests(1).await;
    let s = eventually("the pruner to drop the expired delivery", || async {
        let s = stats(&app, &sub["id"]).await;
        (s["expired"] == 1).then_some(s)
    })
    .await;
    assert_eq!(
        (s["retrying"].as_i64(), s["dead_lettered"].as_i64()),
        (Some(0), Some(0))
    );
    let page: Value = app.get("/topics/t/messages").await.json().await.unwrap();
    assert_eq!(page["messages"], json!([]));
    assert_eq!(rx.hits().len(), 1, "attempted once, before it expired");
    app.stop().await;
}

async fn a_dead_letter_keeps_its_message_after_retention_and_redrives(backend: Backend) {
    let app = spawn(backend, "50ms").await;
    let r = app
        .client
        .put(app.url("/topics/t"))
        .json(&json!({"retention": {"max_messages": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rx = Receiver::start(Behaviour::Fail(500)).await;
    subscribe(
        &app,
        json!({"topic": "t", "url": rx.url, "max_attempts": 1}),
    )
    .await;
    let first = app.publish_json("t", json!({"order": 1})).await;
    let dead = eventually("a dead letter", || async {
        let page: Value = app.get("/dead-letters").await.json().await.unwrap();
        page["dead_letters"][0]["id"].as_i64()
    })
    .await;
    app.publish_json("t", json!({"order": 2})).await;
    eventually("retention to remove the first message", || async {
        let page: Value = app.get("/topics/t/messages").await.json().await.unwrap();
        (page["messages"][0]["seq"] == 2).then_some(())
    })
    .await;
    // The second message fails too: wait for it, so the receiver's next
    // success can only be the redriven one.
    eventually("both dead letters", || async {
        let page: Value = app.get("/dead-letters").await.json().await.unwrap();
        (page["dead_letters"].as_array().unwrap().len() == 2).then_some(())
    })
    .await;
    let letter: Value = app
        .get(&format!("/dead-letters/{dead}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(letter["message"]["id"], first.id);
    assert_eq!(letter["message"]["data"], json!({"order": 1}));
    rx.set(Behaviour::Ok);
    let r = app
        .post(&format!("/dead-letters/{dead}/redrive"), None, "")
        .await;
    assert_eq!(r.status(), 202);
    let ok = rx.successes(1).await;
    assert_eq!(ok[0].json()["id"], first.id);
    assert_eq!(ok[0].json()["data"], json!({"order": 1}));
    app.stop().await;
}
