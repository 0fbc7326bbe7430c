//! Pull subscriptions: bad input, and consumers on two nodes of one
//! Postgres.

use std::sync::Arc;

use serde_json::{Value, json};

use super::pull::{consume, create_pull, post_json, publish_many};
use crate::helpers::{Backend, TestApp, TestDb, spawn_app_with};
use crate::on_both_backends;

on_both_backends!(bad_pull_input_gets_problem_answers);

async fn problem(r: reqwest::Response, status: u16, needle: &str) {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(needle), "{needle:?} not in {body}");
}

async fn create(app: &TestApp, body: Value) -> reqwest::Response {
    post_json(app, "/subscriptions", body).await
}

async fn bad_pull_input_gets_problem_answers(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let app = spawn_app_with(db, &["--webhook-allow-private"]).await;
    let sub = create_pull(&app, "jobs", json!({})).await;
    let pull = format!("/subscriptions/{sub}/pull");
    for (body, needle) in [
        (json!({"max_messages": 0}), "max_messages"),
        (json!({"max_messages": 1001}), "max_messages"),
        (json!({"wait": "31s"}), "wait"),
        (json!({"wait": "soon"}), "wait"),
    ] {
        problem(post_json(&app, &pull, body).await, 400, needle).await;
    }
    let ack = format!("/subscriptions/{sub}/ack");
    problem(
        post_json(&app, &ack, json!({"ack_ids": ["x"]})).await,
        400,
        "ack id",
    )
    .await;
    problem(
        post_json(&app, &ack, json!({"ack_ids": []})).await,
        400,
        "ack_ids",
    )
    .await;
    let extend = format!("/subscriptions/{sub}/extend");
    let r = post_json(
        &app,
        &extend,
        json!({"ack_ids": ["1.1"], "ack_deadline": "11m"}),
    )
    .await;
    problem(r, 400, "ack_deadline").await;
    let seek = format!("/subscriptions/{sub}/seek");
    problem(
        post_json(&app, &seek, json!({"to": "later"})).await,
        400,
        "earliest",
    )
    .await;
    problem(
        post_json(&app, "/subscriptions/999/pull", json!({})).await,
        404,
        "999",
    )
    .await;
    let r = create(
        &app,
        json!({"topic": "jobs", "url": "http://127.0.0.1:9/hook"}),
    )
    .await;
    let push = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let r = post_json(&app, &format!("/subscriptions/{push}/pull"), json!({})).await;
    problem(r, 400, "push").await;
    let r = app.get(&format!("/subscriptions/{push}/events")).await;
    problem(r, 400, "push").await;
    for (body, needle) in [
        (
            json!({"topic": "j", "mode": "pull", "url": "http://127.0.0.1:9/"}),
            "no url",
        ),
        (json!({"topic": "j"}), "url is required"),
        (
            json!({"topic": "j", "mode": "pull", "timeout_ms": 5}),
            "timeout_ms",
        ),
        (
            json!({"topic": "j", "mode": "pull", "ack_deadline": "0s"}),
            "ack_deadline",
        ),
        (
            json!({"topic": "j", "mode": "pull", "ordered": true}),
            "ordered",
        ),
        (json!({"topic": "j", "mode": "queue"}), "mode"),
        (
            json!({"topic": "j", "url": "http://127.0.0.1:9/", "ack_deadline": "5s"}),
            "pull",
        ),
    ] {
        problem(create(&app, body).await, 400, needle).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Postgres: set HERALD_TEST_POSTGRES_URL, run with --run-ignored all"]
async fn consumers_on_two_nodes_ack_every_message_exactly_once() {
    let db = TestDb::new(&Backend::postgres()).await;
    let nodes = vec![
        Arc::new(spawn_app_with(db.clone(), &[]).await),
        Arc::new(spawn_app_with(db.clone(), &[]).await),
    ];
    let sub = create_pull(&nodes[0], "jobs", json!({})).await;
    let consumers = tokio::spawn(consume(nodes.clone(), sub, 2, 3000));
    // Published on both nodes while the consumers run.
    let mut published = Vec::new();
    for round in 0..6 {
        published.extend(publish_many(&nodes[round % 2], "jobs", round * 500, 500).await);
    }
    published.sort_unstable();
    let acked = consumers.await.unwrap();
    assert_eq!(
        acked, published,
        "each message acked exactly once, none lost"
    );
    for node in nodes {
        Arc::into_inner(node).unwrap().stop().await;
    }
}
