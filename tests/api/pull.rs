//! Pull subscriptions: competing consumers, leases, acks, nacks, dead
//! letters, seek, filters, long polls and streaming pull.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::helpers::{Backend, Envelope, TestApp, eventually, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    competing_consumers_share_the_work_with_no_double_lease,
    an_expired_lease_is_redelivered_with_the_next_attempt,
    a_nack_redelivers_and_max_attempts_makes_a_dead_letter_that_redrives,
    seek_replays_from_earliest_skips_to_head_or_continues_after_an_id,
    streaming_pull_holds_at_most_max_in_flight_until_acked,
    a_filter_on_a_pull_subscription_leases_only_matching_messages,
    a_long_poll_is_answered_by_a_publish_well_before_its_wait,
    a_pull_acks_the_previous_batch_in_the_same_request,
);

/// `ack_ids` in a pull: acked in the lease's transaction, reported in
/// `acks`; bad ids are a 400 and ack nothing.
async fn a_pull_acks_the_previous_batch_in_the_same_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let sub = create_pull(&app, "jobs", json!({})).await;
    publish_many(&app, "jobs", 0, 10).await;
    let first = pull(&app, sub, 5, "5s").await;
    assert_eq!(first.len(), 5);
    let path = format!("/subscriptions/{sub}/pull");
    let bad = post_json(&app, &path, json!({"max_messages": 5, "ack_ids": ["nope"]})).await;
    assert_eq!(bad.status(), 400);
    let mut ids: Vec<&str> = first.iter().map(|p| p.ack_id.as_str()).collect();
    ids.push("999.1");
    let r = post_json(
        &app,
        &path,
        json!({"max_messages": 5, "wait": "5s", "ack_ids": ids}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["acks"], json!({"acked": 5, "unknown": ["999.1"]}));
    let next: Vec<Pulled> = serde_json::from_value(body["messages"].clone()).unwrap();
    let got: Vec<i64> = first.iter().chain(&next).map(|p| p.message.id).collect();
    assert_eq!(got, (1..=10).collect::<Vec<_>>());
    assert_eq!(stats(&app, sub).await["acked"], 5);
    // Without ack_ids there is no `acks` in the answer.
    let r = post_json(&app, &path, json!({"max_messages": 1})).await;
    assert!(r.json::<Value>().await.unwrap().get("acks").is_none());
}

/// One pulled message.
#[derive(Debug, Clone, Deserialize)]
pub struct Pulled {
    pub ack_id: String,
    pub attempt: i64,
    pub message: Envelope,
}

/// Creates a pull subscription (`extra` merged into the body).
pub async fn create_pull(app: &TestApp, topic: &str, extra: Value) -> i64 {
    let mut body = json!({"topic": topic, "mode": "pull"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let r = app
        .client
        .post(app.url("/subscriptions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["mode"], "pull");
    assert!(v.get("url").is_none() && v.get("secret").is_none(), "{v}");
    v["id"].as_i64().unwrap()
}

pub async fn post_json(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Pulls and expects 200.
pub async fn pull(app: &TestApp, sub: i64, max: u32, wait: &str) -> Vec<Pulled> {
    let r = post_json(
        app,
        &format!("/subscriptions/{sub}/pull"),
        json!({"max_messages": max, "wait": wait}),
    )
    .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let v: Value = r.json().await.unwrap();
    serde_json::from_value(v["messages"].clone()).unwrap()
}

/// Acks and returns the answer.
pub async fn ack(app: &TestApp, sub: i64, ids: &[&str]) -> Value {
    let r = post_json(
        app,
        &format!("/subscriptions/{sub}/ack"),
        json!({"ack_ids": ids}),
    )
    .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    r.json().await.unwrap()
}

pub async fn nack(app: &TestApp, sub: i64, ids: &[&str], delay: &str) {
    let r = post_json(
        app,
        &format!("/subscriptions/{sub}/nack"),
        json!({"ack_ids": ids, "delay": delay}),
    )
    .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}

pub async fn stats(app: &TestApp, sub: i64) -> Value {
    app.get(&format!("/subscriptions/{sub}"))
        .await
        .json()
        .await
        .unwrap()
}

/// Publishes `n` JSON messages `{"n": i}` in one batch; returns their ids.
pub async fn publish_many(app: &TestApp, topic: &str, from: usize, n: usize) -> Vec<i64> {
    let body: Vec<Value> = (from..from + n).map(|i| json!({"n": i})).collect();
    let r = post_json(app, &format!("/topics/{topic}/batch"), json!(body)).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let v: Value = r.json().await.unwrap();
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect()
}

/// Consumers pull and ack until `total` are acked; returns every acked id
/// and checks that no id was leased to two consumers at once.
pub async fn consume(apps: Vec<Arc<TestApp>>, sub: i64, per_app: usize, total: usize) -> Vec<i64> {
    let leased: Arc<Mutex<HashSet<i64>>> = Default::default();
    let acked: Arc<Mutex<Vec<i64>>> = Default::default();
    let mut tasks = Vec::new();
    for app in &apps {
        for _ in 0..per_app {
            let (app, leased, acked) = (app.clone(), leased.clone(), acked.clone());
            tasks.push(tokio::spawn(async move {
                let start = tokio::time::Instant::now();
                while acked.lock().unwrap().len() < total {
                    assert!(
                        start.elapsed() < Duration::from_secs(60),
                        "consumers stalled"
                    );
                    let got = pull(&app, sub, 50, "1s").await;
                    for p in &got {
                        assert_eq!(p.attempt, 1, "a redelivery in a clean run: {p:?}");
                        assert!(
                            leased.lock().unwrap().insert(p.message.id),
                            "{} leased twice at once",
                            p.message.id
                        );
                    }
                    let ids: Vec<&str> = got.iter().map(|p| p.ack_id.as_str()).collect();
                    if ids.is_empty() {
                        continue;
                    }
                    let answer = ack(&app, sub, &ids).await;
                    assert_eq!(answer["acked"], ids.len(), "{answer}");
                    let mut done = acked.lock().unwrap();
                    for p in &got {
                        leased.lock().unwrap().remove(&p.message.id);
                        done.push(p.message.id);
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut ids = acked.lock().unwrap().clone();
    ids.sort_unstable();
    ids
}

async fn competing_consumers_share_the_work_with_no_double_lease(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    let sub = create_pull(&app, "jobs", json!({})).await;
    let mut published = publish_many(&app, "jobs", 0, 250).await;
    published.extend(publish_many(&app, "jobs", 250, 250).await);
    let acked = consume(vec![app.clone()], sub, 4, published.len()).await;
    assert_eq!(acked, published, "every message acked exactly once");
    // Nothing comes back after its ack.
    assert!(pull(&app, sub, 10, "0s").await.is_empty());
    let s = stats(&app, sub).await;
    assert_eq!(
        (
            s["acked"].as_i64(),
            s["backlog"].as_i64(),
            s["in_flight"].as_i64()
        ),
        (Some(500), Some(0), Some(0)),
        "{s}"
    );
    assert_eq!(s["ack_deadline"], "30s");
    assert!(s["oldest_unacked_age_ms"].is_null(), "{s}");
}

async fn an_expired_lease_is_redelivered_with_the_next_attempt(backend: Backend) {
    let app = spawn_app(backend).await;
    let sub = create_pull(&app, "jobs", json!({"ack_deadline": "1s"})).await;
    let id = app.publish_json("jobs", json!({"n": 1})).await.id;
    // The deliverer dispatches pull subscriptions too (and never attempts
    // them: the first lease below is attempt 1).
    eventually("the message to be in the backlog", || async {
        (stats(&app, sub).await["backlog"] == 1).then_some(())
    })
    .await;
    let first = pull(&app, sub, 10, "5s").await;
    assert_eq!(
        (first.len(), first[0].attempt, first[0].message.id),
        (1, 1, id)
    );
    let s = stats(&app, sub).await;
    assert_eq!(
        (s["in_flight"].as_i64(), s["backlog"].as_i64()),
        (Some(1), Some(0)),
        "{s}"
    );
    assert!(s["oldest_unacked_age_ms"].as_i64().is_some(), "{s}");
    // No ack: the lease runs out and the long poll gets it again.
    let again = pull(&app, sub, 10, "10s").await;
    assert_eq!(
        (again.len(), again[0].attempt, again[0].message.id),
        (1, 2, id)
    );
    let late = ack(&app, sub, &[&first[0].ack_id]).await;
    assert_eq!(late, json!({"acked": 0, "unknown": [first[0].ack_id]}));
    let ok = ack(&app, sub, &[&again[0].ack_id, "999.1"]).await;
    assert_eq!(ok, json!({"acked": 1, "unknown": ["999.1"]}));
}

async fn a_nack_redelivers_and_max_attempts_makes_a_dead_letter_that_redrives(backend: Backend) {
    let app = spawn_app(backend).await;
    let sub = create_pull(&app, "jobs", json!({"max_attempts": 2})).await;
    let id = app.publish_json("jobs", json!({"n": 1})).await.id;
    let first = pull(&app, sub, 1, "5s").await;
    nack(&app, sub, &[&first[0].ack_id], "0s").await;
    let second = pull(&app, sub, 1, "5s").await;
    assert_eq!((second[0].attempt, second[0].message.id), (2, id));
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"herald_pull_messages_total{event="redelivered"}"#),
        "{metrics}"
    );
    nack(&app, sub, &[&second[0].ack_id], "0s").await;
    // Its attempts are used up: a dead letter, not a third lease.
    assert!(pull(&app, sub, 1, "0s").await.is_empty());
    let page: Value = app
        .get(&format!("/dead-letters?subscription={sub}"))
        .await
        .json()
        .await
        .unwrap();
    let letter = &page["dead_letters"][0];
    assert_eq!(
        (
            letter["reason"].as_str(),
            letter["attempts"].as_i64(),
            letter["message_id"].as_i64()
        ),
        (Some("max_attempts"), Some(2), Some(id)),
        "{page}"
    );
    let one: Value = app
        .get(&format!("/dead-letters/{}", letter["id"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["message"]["data"], json!({"n": 1}));
    assert_eq!(stats(&app, sub).await["dead_lettered"], 1);
    let r = app
        .post(&format!("/dead-letters/{}/redrive", letter["id"]), None, "")
        .await;
    assert_eq!(r.status(), 202);
    let back = pull(&app, sub, 1, "5s").await;
    assert_eq!((back[0].attempt, back[0].message.id), (1, id));
}

async fn seek_replays_from_earliest_skips_to_head_or_continues_after_an_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let sub = create_pull(&app, "jobs", json!({})).await;
    let ids = publish_many(&app, "jobs", 0, 3).await;
    let got = pull(&app, sub, 10, "5s").await;
    let acks: Vec<&str> = got.iter().map(|p| p.ack_id.as_str()).collect();
    assert_eq!(ack(&app, sub, &acks).await["acked"], 3);
    let path = format!("/subscriptions/{sub}/seek");
    let seek = |to: Value| post_json(&app, &path, json!({"to": to}));
    assert_eq!(seek(json!("earliest")).await.status(), 200);
    let replay: Vec<i64> = pull(&app, sub, 10, "5s")
        .await
        .iter()
        .map(|p| p.message.id)
        .collect();
    assert_eq!(replay, ids);
    // Seek drops the leases just taken: their acks are unknown now.
    let r = seek(json!(ids[0])).await;
    assert_eq!(r.json::<Value>().await.unwrap()["cursor"], ids[0]);
    let after: Vec<i64> = pull(&app, sub, 10, "5s")
        .await
        .iter()
        .map(|p| p.message.id)
        .collect();
    assert_eq!(after, ids[1..]);
    assert_eq!(seek(json!("head")).await.status(), 200);
    assert!(pull(&app, sub, 10, "0s").await.is_empty());
    let new = app.publish_json("jobs", json!({"n": 9})).await.id;
    assert_eq!(pull(&app, sub, 10, "5s").await[0].message.id, new);
}

async fn streaming_pull_holds_at_most_max_in_flight_until_acked(backend: Backend) {
    let app = spawn_app(backend).await;
    let sub = create_pull(&app, "jobs", json!({})).await;
    let ids = publish_many(&app, "jobs", 0, 5).await;
    let mut sse = app
        .subscribe(
            &format!("/subscriptions/{sub}/events?max_in_flight=2"),
            None,
        )
        .await;
    let mut seen = Vec::new();
    while seen.len() < ids.len() {
        let event = sse.next_event().await.expect("stream open");
        if event.data.is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(v["attempt"], 1);
        assert_eq!(event.id, v["id"].to_string());
        seen.push((
            v["id"].as_i64().unwrap(),
            v["ack_id"].as_str().unwrap().to_owned(),
        ));
        // Never more than two leased; with two out, the rest waits.
        let s = stats(&app, sub).await;
        assert!(s["in_flight"].as_i64().unwrap() <= 2, "{s}");
        if seen.len() == 2 {
            assert_eq!(
                (s["in_flight"].as_i64(), s["backlog"].as_i64()),
                (Some(2), Some(3)),
                "{s}"
            );
        }
        if seen.len() >= 2 {
            let (_, ack_id) = &seen[seen.len() - 2];
            assert_eq!(ack(&app, sub, &[ack_id]).await["acked"], 1);
        }
    }
    assert_eq!(seen.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids);
}

async fn a_filter_on_a_pull_subscription_leases_only_matching_messages(backend: Backend) {
    let app = spawn_app(backend).await;
    let sub = create_pull(
        &app,
        "jobs.*",
        json!({"filter": "data.n >= 3", "start": "earliest"}),
    )
    .await;
    let ids = publish_many(&app, "jobs.a", 1, 5).await;
    app.publish_json("other", json!({"n": 10})).await;
    let got: Vec<i64> = pull(&app, sub, 100, "5s")
        .await
        .iter()
        .map(|p| p.message.id)
        .collect();
    assert_eq!(got, ids[2..]);
}

async fn a_long_poll_is_answered_by_a_publish_well_before_its_wait(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    let sub = create_pull(&app, "jobs", json!({})).await;
    let started = tokio::time::Instant::now();
    let waiting = {
        let app = app.clone();
        tokio::spawn(async move { pull(&app, sub, 10, "10s").await })
    };
    // Whether the publish lands before or during the wait, the answer
    // must come long before the 10 s wait ends.
    let id = app.publish_json("jobs", json!({"n": 1})).await.id;
    let got = waiting.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(got.iter().map(|p| p.message.id).collect::<Vec<_>>(), [id]);
    let _ = eventually("the stats to show the lease", || async {
        (stats(&app, sub).await["in_flight"] == 1).then_some(())
    })
    .await;
}
