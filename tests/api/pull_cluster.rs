//! Pull subscriptions on two nodes of one Postgres: competing consumers,
//! ordering keys, and long polls woken by what the other node does.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::pull::{consume, create_pull, nack, publish_many, pull};
use crate::helpers::{Backend, TestApp, TestDb, eventually, spawn_app_with};

/// Two nodes on one fresh Postgres database.
async fn two_nodes() -> Vec<Arc<TestApp>> {
    let db = TestDb::new(&Backend::postgres()).await;
    vec![
        Arc::new(spawn_app_with(db.clone(), &[]).await),
        Arc::new(spawn_app_with(db, &[]).await),
    ]
}

async fn stop(nodes: Vec<Arc<TestApp>>) {
    for node in nodes {
        Arc::into_inner(node).unwrap().stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Postgres: set HERALD_TEST_POSTGRES_URL, run with --run-ignored all"]
async fn consumers_on_two_nodes_ack_every_message_exactly_once() {
    let nodes = two_nodes().await;
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
    stop(nodes).await;
}

/// An ordered subscription with consumers on both nodes: each key's
/// messages are leased one at a time and in log order, across nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Postgres: set HERALD_TEST_POSTGRES_URL, run with --run-ignored all"]
async fn an_ordered_subscription_keeps_each_key_in_order_across_two_nodes() {
    let nodes = two_nodes().await;
    super::ordering::consume_ordered(nodes.clone(), 2).await;
    stop(nodes).await;
}

/// Node b long-polls while node a holds the only message under a 60 s
/// lease. a's nack makes it due, and with `max_attempts: 1` the woken poll
/// on b buries it; a's redrive then wakes b again, which leases it. Each
/// step must come well before the lease or the poll's wait would end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Postgres: set HERALD_TEST_POSTGRES_URL, run with --run-ignored all"]
async fn a_nack_and_a_redrive_on_one_node_wake_a_long_poll_on_the_other() {
    let nodes = two_nodes().await;
    let (a, b) = (nodes[0].clone(), nodes[1].clone());
    let body = json!({"ack_deadline": "60s", "max_attempts": 1});
    let sub = create_pull(&a, "wake", body).await;
    let id = publish_many(&a, "wake", 0, 1).await[0];
    let held = pull(&a, sub, 1, "5s").await;
    assert_eq!(held.len(), 1);
    let started = tokio::time::Instant::now();
    let waiting = {
        let b = b.clone();
        tokio::spawn(async move { pull(&b, sub, 1, "30s").await })
    };
    let gauge = format!("herald_pull_consumers_waiting{{subscription=\"{sub}\"}} 1");
    eventually("b's long poll to wait", || async {
        let text = b.get("/metrics").await.text().await.unwrap();
        text.contains(&gauge).then_some(())
    })
    .await;
    nack(&a, sub, &[&held[0].ack_id], "0s").await;
    let letter: Value = eventually("b to bury the nacked message", || async {
        let page: Value = a
            .get(&format!("/dead-letters?subscription={sub}"))
            .await
            .json()
            .await
            .unwrap();
        page["dead_letters"].get(0).cloned()
    })
    .await;
    assert_eq!(letter["message_id"], id, "{letter}");
    let path = format!("/dead-letters/{}/redrive", letter["id"]);
    assert_eq!(a.post(&path, None, "").await.status(), 202);
    let got = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the redrive woke b's long poll")
        .unwrap();
    assert_eq!((got[0].message.id, got[0].attempt), (id, 1));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    drop((a, b));
    stop(nodes).await;
}
