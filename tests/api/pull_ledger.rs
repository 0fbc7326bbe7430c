//! What a pull subscription's ledger promises without waiting on the
//! deliverer: every message committed before a lease is a candidate for
//! it (the highest priority ready is leased first), and exhausted
//! deliveries become dead letters with no consumer pulling.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDb, eventually, spawn_app, spawn_app_with};
use crate::pull::{create_pull, nack, publish_many, pull, stats};

crate::on_both_backends!(
    a_pull_leases_the_highest_priority_committed_before_it,
    exhausted_deliveries_become_dead_letters_with_no_consumer_pulling,
);

/// Publishes `body` to `topic` at `priority`; returns its id.
async fn publish_at(app: &TestApp, topic: &str, priority: &str, body: &str) -> i64 {
    let path = format!("/topics/{topic}?priority={priority}");
    let r = app.post(&path, None, body.to_owned()).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// A priority-1 message, then a `high` one, both answered 201 before the
/// pull: the pull of one message leases the `high` one, every time (the
/// deliverer may have dispatched the first and not yet the second).
async fn a_pull_leases_the_highest_priority_committed_before_it(backend: Backend) {
    let app = spawn_app(backend).await;
    for trial in 0..30 {
        let topic = format!("jobs{trial}");
        let sub = create_pull(&app, &topic, json!({})).await;
        publish_at(&app, &topic, "1", "low").await;
        let high = publish_at(&app, &topic, "high", "high").await;
        let got = pull(&app, sub, 1, "5s").await;
        assert_eq!(got.len(), 1, "trial {trial}");
        assert_eq!(
            got[0].message.id, high,
            "trial {trial}: leased {:?} before the high-priority message",
            got[0].message.data
        );
    }
}

/// The dead letters of `sub`, once there are `n`.
async fn dead_letters(app: &TestApp, sub: i64, n: usize) -> Vec<Value> {
    let path = format!("/dead-letters?subscription={sub}");
    eventually(
        &format!("{n} dead letters with no consumer pulling"),
        || async {
            let page: Value = app.get(&path).await.json().await.unwrap();
            let letters = page["dead_letters"].as_array().unwrap().clone();
            (letters.len() >= n).then_some(letters)
        },
    )
    .await
}

/// With `max_attempts: 1`, one delivery's lease runs out and the other is
/// nacked; nobody pulls again, and both become dead letters (with their
/// `$herald.delivery.dead_lettered` events) within the ack deadline and a
/// pass of the deliverer: a watched dead-letter queue shows the truth
/// while every worker is down.
async fn exhausted_deliveries_become_dead_letters_with_no_consumer_pulling(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json!({"ack_deadline": "1s", "max_attempts": 1});
    let sub = create_pull(&app, "jobs", body).await;
    let mut ids = publish_many(&app, "jobs", 0, 2).await;
    let held = pull(&app, sub, 2, "5s").await;
    assert_eq!(held.len(), 2);
    let leased = tokio::time::Instant::now();
    nack(&app, sub, &[&held[1].ack_id], "0s").await;
    let letters = dead_letters(&app, sub, 2).await;
    // The 1 s deadline, a 250 ms pass, and room for a slow machine.
    let took = leased.elapsed();
    assert!(
        took < std::time::Duration::from_secs(5),
        "buried after {took:?}"
    );
    let mut buried: Vec<i64> = letters
        .iter()
        .map(|l| {
            assert_eq!(
                (l["reason"].as_str(), l["attempts"].as_i64()),
                (Some("max_attempts"), Some(1)),
                "{l}"
            );
            // What happened to it, in words.
            let why = match l["message_id"] == held[1].message.id {
                true => "nacked once",
                false => "lease expired once",
            };
            assert_eq!(l["last_error"], why, "{l}");
            l["message_id"].as_i64().unwrap()
        })
        .collect();
    buried.sort_unstable();
    ids.sort_unstable();
    assert_eq!(buried, ids);
    let s = stats(&app, sub).await;
    assert_eq!(
        (s["backlog"].as_i64(), s["in_flight"].as_i64()),
        (Some(0), Some(0)),
        "{s}"
    );
    let path = "/topics/$herald.delivery.dead_lettered/messages?after=0";
    let events = eventually("the dead_lettered events", || async {
        let page: Value = app.get(path).await.json().await.unwrap();
        let events = page["messages"].as_array()?.clone();
        (events.len() == 2).then_some(events)
    })
    .await;
    let mut said: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["error"].as_str().unwrap())
        .collect();
    said.sort_unstable();
    assert_eq!(said, ["lease expired once", "nacked once"]);
    assert_eq!(events[0]["event"], "dead_lettered");
}

/// Two nodes on one Postgres (SQLite is for one process): the leases
/// taken on node a run out, and the deliverers of both nodes look for
/// them; each is buried once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Postgres: set HERALD_TEST_POSTGRES_URL, run with --run-ignored all"]
async fn two_nodes_bury_an_exhausted_delivery_once() {
    let db = TestDb::new(&Backend::postgres()).await;
    let a = Arc::new(spawn_app_with(db.clone(), &[]).await);
    let b = Arc::new(spawn_app_with(db, &[]).await);
    let body = json!({"ack_deadline": "1s", "max_attempts": 1});
    let sub = create_pull(&a, "jobs", body).await;
    let ids = publish_many(&b, "jobs", 0, 3).await;
    assert_eq!(pull(&a, sub, 3, "5s").await.len(), 3);
    let letters = dead_letters(&b, sub, 3).await;
    let mut buried: Vec<i64> = letters
        .iter()
        .map(|l| l["message_id"].as_i64().unwrap())
        .collect();
    buried.sort_unstable();
    assert_eq!(buried, ids, "each exhausted delivery buried exactly once");
    let s = stats(&a, sub).await;
    assert_eq!(
        (s["backlog"].as_i64(), s["in_flight"].as_i64()),
        (Some(0), Some(0)),
        "{s}"
    );
}
