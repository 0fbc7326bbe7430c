//! A paused pull subscription leases nothing, whoever asks and however it
//! was paused (issue 39, item 7): pull and streaming pull answer `409`,
//! and a long poll that began before the pause gets nothing.

use serde_json::json;

use super::pull::{ack, create_pull, post_json, publish_many, pull};
use crate::helpers::{Backend, spawn_app};

crate::on_both_backends!(a_paused_pull_subscription_leases_nothing_until_resumed);

async fn patch(app: &crate::helpers::TestApp, sub: i64, paused: bool) {
    let r = app
        .client
        .patch(app.url(&format!("/subscriptions/{sub}")))
        .json(&json!({"paused": paused}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}

async fn a_paused_pull_subscription_leases_nothing_until_resumed(backend: Backend) {
    let app = spawn_app(backend).await;
    let sub = create_pull(&app, "jobs", json!({})).await;
    publish_many(&app, "jobs", 0, 5).await;
    let held = pull(&app, sub, 1, "0s").await;
    // Everything ready is leased at once: empty the backlog first.
    pull(&app, sub, 1000, "0s").await;
    // A long poll, then the pause, then new messages: whether the poll
    // began before the pause (200, nothing) or after it (409), it leases
    // nothing.
    let waiting = {
        let (client, url) = (
            app.client.clone(),
            app.url(&format!("/subscriptions/{sub}/pull")),
        );
        tokio::spawn(async move {
            client
                .post(&url)
                .json(&json!({"max_messages": 10, "wait": "1s"}))
                .send()
                .await
                .unwrap()
        })
    };
    patch(&app, sub, true).await;
    publish_many(&app, "jobs", 5, 5).await;
    let r = waiting.await.unwrap();
    if r.status() == 200 {
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            v["messages"],
            json!([]),
            "a pause takes effect in a wait: {v}"
        );
    } else {
        assert_eq!(r.status(), 409);
    }

    let r = post_json(
        &app,
        &format!("/subscriptions/{sub}/pull"),
        json!({"max_messages": 10}),
    )
    .await;
    let p = crate::errors::assert_problem(r, reqwest::StatusCode::CONFLICT, "pull").await;
    assert!(
        p["type"].as_str().unwrap().ends_with("subscription-paused"),
        "{p}"
    );
    let r = app.get(&format!("/subscriptions/{sub}/events")).await;
    crate::errors::assert_problem(r, reqwest::StatusCode::CONFLICT, "stream").await;
    // What was leased before the pause can still be acked.
    let answer = ack(&app, sub, &[&held[0].ack_id]).await;
    assert_eq!(answer["acked"], 1, "{answer}");

    patch(&app, sub, false).await;
    let back = pull(&app, sub, 10, "5s").await;
    assert_eq!(back.len(), 5, "the new messages, once resumed");
    app.stop().await;
}
