//! Presence across two nodes on one Postgres: a join on one node reaches
//! streams on the other, `max_subscribers` counts both, and a node killed
//! with SIGKILL leaves the other's presence within its lease and a third.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Backend, Sse, TestDb, eventually, spawn_app_with};
use crate::lifecycle::Herald;

/// Short leases keep the test short; the bound scales with the lease.
const LEASE: &str = "3s";
const BOUND: Duration = Duration::from_secs(4); // the lease and a third

async fn presence(client: &reqwest::Client, url: &str) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Postgres: set HERALD_TEST_POSTGRES_URL, run with --run-ignored all"]
async fn a_join_on_one_node_reaches_the_other_and_a_killed_node_leaves_within_the_bound() {
    let db = TestDb::new(&Backend::postgres()).await;
    let b = spawn_app_with(db.clone(), &["--presence-lease", LEASE]).await;
    let mut a = Herald::start_with(&db, &["--presence-lease", LEASE]).await;
    let mut watcher = b
        .subscribe("/topics/room/events?presence=true&client=watcher", None)
        .await;
    assert_eq!(watcher.next_event().await.unwrap().event, "join"); // its own

    let _alice = Sse::connect(&a.client, &a.url("/topics/room/events?client=alice"), None).await;
    let join = watcher.next_event().await.unwrap();
    assert_eq!((join.event.as_str(), join.id.as_str()), ("join", ""));
    let data: Value = serde_json::from_str(&join.data).unwrap();
    assert_eq!(data["client"], "alice");
    let on_b = presence(&b.client, &b.url("/topics/room/presence")).await;
    assert_eq!(on_b["count"], 2, "{on_b}");
    let nodes: Vec<&str> = on_b["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["node"].as_str().unwrap())
        .collect();
    assert_ne!(nodes[0], nodes[1], "one stream on each node: {on_b}");
    // A sees both as well, and its topic counts include B's stream.
    let on_a = presence(&a.client, &a.url("/topics/room/presence")).await;
    assert_eq!(on_a["count"], 2, "{on_a}");

    a.signal("KILL");
    a.wait().await;
    let killed = Instant::now();
    let leave = watcher.next_event().await.unwrap();
    assert_eq!(leave.event, "leave");
    assert_eq!(
        serde_json::from_str::<Value>(&leave.data).unwrap()["client"],
        "alice"
    );
    let took = killed.elapsed();
    eprintln!("a killed node's stream left the other node's presence after {took:?}");
    // Slack for a loaded test machine (tests run side by side in CI).
    assert!(
        took <= BOUND + Duration::from_secs(3),
        "alice left after {took:?}"
    );
    let on_b = presence(&b.client, &b.url("/topics/room/presence")).await;
    assert_eq!(on_b["count"], 1, "{on_b}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Postgres: set HERALD_TEST_POSTGRES_URL, run with --run-ignored all"]
async fn max_subscribers_counts_the_streams_of_every_node() {
    let db = TestDb::new(&Backend::postgres()).await;
    let a = spawn_app_with(db.clone(), &["--presence-lease", LEASE]).await;
    let b = spawn_app_with(db.clone(), &["--presence-lease", LEASE]).await;
    let r = a
        .client
        .put(a.url("/topics/solo"))
        .json(&json!({"max_subscribers": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let only = a.subscribe("/topics/solo/events", None).await;
    eventually("B to see A's stream", || async {
        let p = presence(&b.client, &b.url("/topics/solo/presence")).await;
        (p["count"] == 1).then_some(())
    })
    .await;
    let r = b.get("/topics/solo/events").await;
    assert_eq!(r.status(), 429);
    drop(only);
    eventually("the place to be free on B", || async {
        (b.get("/topics/solo/events").await.status() == 200).then_some(())
    })
    .await;
    // A clean stop takes a node's streams with it at once.
    let _on_b = b.subscribe("/topics/other/events", None).await;
    eventually("A to see B's stream", || async {
        let p = presence(&a.client, &a.url("/topics/other/presence")).await;
        (p["count"] == 1).then_some(())
    })
    .await;
    b.stop().await;
    eventually("B's streams to leave A's presence", || async {
        let p = presence(&a.client, &a.url("/topics/other/presence")).await;
        (p["count"] == 0).then_some(())
    })
    .await;
    a.stop().await;
}
