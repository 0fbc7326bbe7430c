//! Priorities and ordering keys in the delivery ledger: pull leases and
//! webhook pushes take higher priorities first, and an `ordered`
//! subscription has one delivery of a key in flight at a time, in log
//! order.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::helpers::{Backend, TestApp, TestDb, spawn_app, spawn_app_with};
use crate::pull::{Pulled, ack, create_pull, pull};
use crate::receiver::{Behaviour, Receiver};

crate::on_both_backends!(
    higher_priorities_are_leased_first_under_a_backlog,
    an_ordered_subscription_leases_the_oldest_of_each_key_only,
    ordered_consumers_keep_each_key_in_order_under_concurrency,
    an_ordered_webhook_has_one_delivery_per_key_in_flight,
);

/// Publishes `body` with `query` (e.g. `priority=5&key=a`); returns its id.
async fn publish(app: &TestApp, topic: &str, query: &str, body: &str) -> i64 {
    let r = app
        .post(&format!("/topics/{topic}?{query}"), None, body.to_owned())
        .await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap()
}

fn ids(pulled: &[Pulled]) -> Vec<&str> {
    pulled.iter().map(|p| p.ack_id.as_str()).collect()
}

async fn higher_priorities_are_leased_first_under_a_backlog(backend: Backend) {
    let app = spawn_app(backend).await;
    let sub = create_pull(&app, "jobs", json!({})).await;
    let mut expected = Vec::new();
    for (priority, n) in [("min", 3), ("default", 3), ("max", 3), ("high", 3)] {
        for i in 0..n {
            let id = publish(
                &app,
                "jobs",
                &format!("priority={priority}"),
                &format!("{priority}{i}"),
            )
            .await;
            expected.push((priority, id));
        }
    }
    // Once all of them are ready (dispatched into the ledger): highest
    // first; within one priority, in log order.
    crate::helpers::eventually("the backlog to be dispatched", || async {
        (crate::pull::stats(&app, sub).await["backlog"] == 12).then_some(())
    })
    .await;
    // /metrics has the backlog per subscription. The recorder is global
    // to the process, where other tests' herald (with their own
    // subscription 1) may scrape too: wait for a scrape of this one.
    let series = format!("herald_subscription_backlog{{subscription=\"{sub}\",mode=\"pull\"}} ");
    crate::helpers::eventually("the backlog gauge", || async {
        let metrics = app.get("/metrics").await.text().await.ok()?;
        metrics
            .lines()
            .any(|l| l.strip_prefix(series.as_str()) == Some("12"))
            .then_some(())
    })
    .await;
    let rank = |p: &str| {
        ["max", "high", "default", "min"]
            .iter()
            .position(|x| *x == p)
            .unwrap()
    };
    expected.sort_by_key(|(p, id)| (rank(p), *id));
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let page = pull(&app, sub, 4, "5s").await;
        ack(&app, sub, &ids(&page)).await;
        got.extend(page.iter().map(|p| p.message.id));
    }
    assert_eq!(got, expected.iter().map(|(_, id)| *id).collect::<Vec<_>>());
    let page = pull(&app, sub, 1, "0s").await;
    assert!(page.is_empty());
}

async fn an_ordered_subscription_leases_the_oldest_of_each_key_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let sub = create_pull(&app, "o", json!({"ordered": true})).await;
    let shown: serde_json::Value = app
        .get(&format!("/subscriptions/{sub}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["ordered"], true);
    for i in 0..3 {
        for key in ["a", "b"] {
            publish(&app, "o", &format!("key={key}"), &format!("{key}{i}")).await;
        }
        publish(&app, "o", "", &format!("free{i}")).await;
    }
    crate::helpers::eventually("the backlog to be dispatched", || async {
        (crate::pull::stats(&app, sub).await["backlog"] == 9).then_some(())
    })
    .await;
    // The first of a and b, and every unkeyed message.
    let first = pull(&app, sub, 100, "5s").await;
    let data: HashSet<String> = first
        .iter()
        .map(|p| p.message.data.as_str().unwrap().to_owned())
        .collect();
    let want: HashSet<String> = ["a0", "b0", "free0", "free1", "free2"]
        .map(String::from)
        .into();
    assert_eq!(data, want);
    assert!(
        pull(&app, sub, 100, "0s").await.is_empty(),
        "a1 and b1 wait for a0 and b0"
    );
    // Acking a0 releases a1 only.
    let a0 = first.iter().find(|p| p.message.data == "a0").unwrap();
    ack(&app, sub, &[a0.ack_id.as_str()]).await;
    let next = pull(&app, sub, 100, "5s").await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].message.data, "a1");
    assert_eq!(next[0].message.key.as_deref(), Some("a"));
}

/// 4 consumers, 3 keys × 15 messages and 15 unkeyed: every message is
/// acked once, no key ever has two messages leased at once, and each key's
/// messages are leased in log order.
async fn ordered_consumers_keep_each_key_in_order_under_concurrency(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    consume_ordered(vec![app], 4).await;
}

/// Publishes 3 keys × 15 messages and 15 unkeyed (round robin over
/// `apps`), then runs `per_app` consumers on each of `apps` until all are
/// acked; checks that each was leased once, no key had two leased at
/// once, and each key's were leased in log order.
pub async fn consume_ordered(apps: Vec<Arc<TestApp>>, per_app: usize) {
    let sub = create_pull(&apps[0], "c", json!({"ordered": true})).await;
    let mut published: HashMap<String, Vec<i64>> = HashMap::new();
    for i in 0..15 {
        for (k, key) in ["k1", "k2", "k3", ""].into_iter().enumerate() {
            let query = if key.is_empty() {
                String::new()
            } else {
                format!("key={key}")
            };
            let app = &apps[(i + k) % apps.len()];
            let id = publish(app, "c", &query, &format!("{key}-{i}")).await;
            published.entry(key.to_owned()).or_default().push(id);
        }
    }
    let in_flight = Arc::new(Mutex::new(HashSet::<String>::new()));
    let leased = Arc::new(Mutex::new(HashMap::<String, Vec<i64>>::new()));
    let consumers: Vec<_> = apps
        .iter()
        .flat_map(|app| std::iter::repeat_n(app.clone(), per_app))
        .map(|app| {
            let (in_flight, leased) = (in_flight.clone(), leased.clone());
            tokio::spawn(async move {
                let mut idle = 0;
                while idle < 3 {
                    let page = pull(&app, sub, 5, "200ms").await;
                    idle = if page.is_empty() { idle + 1 } else { 0 };
                    for p in &page {
                        let key = p.message.key.clone().unwrap_or_default();
                        leased
                            .lock()
                            .unwrap()
                            .entry(key.clone())
                            .or_default()
                            .push(p.message.id);
                        if !key.is_empty() {
                            assert!(
                                in_flight.lock().unwrap().insert(key.clone()),
                                "{key} leased twice at once"
                            );
                        }
                    }
                    if page.is_empty() {
                        continue;
                    }
                    // Free the keys before the ack commits: the server may
                    // lease the next of a key as soon as it has.
                    for p in &page {
                        if let Some(k) = &p.message.key {
                            in_flight.lock().unwrap().remove(k);
                        }
                    }
                    ack(&app, sub, &ids(&page)).await;
                }
            })
        })
        .collect();
    for c in consumers {
        c.await.unwrap();
    }
    let leased = leased.lock().unwrap().clone();
    for (key, ids) in &published {
        let mut got = leased[key].clone();
        if key.is_empty() {
            got.sort_unstable();
        }
        assert_eq!(&got, ids, "key {key:?}: each once, keys in order");
    }
}

/// A webhook receiver that takes 40 ms per delivery, 16 attempts in flight
/// per subscription: a key's deliveries still arrive one at a time, in log
/// order.
async fn an_ordered_webhook_has_one_delivery_per_key_in_flight(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let app = spawn_app_with(db, &["--webhook-allow-private", "--webhook-poll-ms", "20"]).await;
    let slow = Duration::from_millis(40);
    let rx = Receiver::start(Behaviour::Slow(slow)).await;
    let body = json!({"topic": "w", "url": rx.url, "ordered": true});
    let r = app
        .client
        .post(app.url("/subscriptions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let mut published: HashMap<String, Vec<i64>> = HashMap::new();
    for i in 0..5 {
        for key in ["a", "b", "c"] {
            let id = publish(&app, "w", &format!("key={key}&priority={}", 1 + i % 5), "x").await;
            published.entry(key.to_owned()).or_default().push(id);
        }
    }
    let hits = rx.successes(15).await;
    let mut arrivals: HashMap<String, Vec<(std::time::Instant, i64)>> = HashMap::new();
    for h in &hits {
        let m = h.json();
        let key = m["key"].as_str().unwrap().to_owned();
        arrivals
            .entry(key)
            .or_default()
            .push((h.at, m["id"].as_i64().unwrap()));
    }
    for (key, ids) in &published {
        let got = &arrivals[key];
        assert_eq!(
            &got.iter().map(|(_, id)| *id).collect::<Vec<_>>(),
            ids,
            "key {key} in log order"
        );
        for w in got.windows(2) {
            assert!(
                w[1].0 - w[0].0 >= slow,
                "key {key}: a delivery began before the previous one was answered"
            );
        }
    }
}
