//! Webhook subscriptions, signed deliveries, retries, dead letters.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::errors::assert_problem;
use crate::helpers::{Backend, TestApp, TestDb, spawn_app_with};
use crate::receiver::{Behaviour, Receiver};

crate::on_both_backends!(
    subscriptions_are_created_listed_patched_and_deleted,
    bad_subscriptions_get_400_and_unknown_ids_404,
    deliveries_are_signed_and_start_at_the_head,
    patterns_filters_and_start_select_what_is_delivered,
    a_failing_endpoint_is_retried_then_dead_lettered_and_redriven,
    a_flapping_endpoint_gets_every_message_after_retries,
    a_slow_endpoint_holds_up_nothing_else,
    retry_after_is_honoured,
    pending_retries_survive_a_crash,
    subscription_changes_take_effect_without_waiting_for_the_poll,
);

async fn webhook_app(backend: Backend) -> TestApp {
    let db = TestDb::new(&backend).await;
    spawn_app_with(db, &["--webhook-allow-private", "--webhook-poll-ms", "20"]).await
}

/// Creates a subscription; returns its JSON (with the secret).
pub async fn subscribe(app: &TestApp, body: Value) -> Value {
    let r = app
        .client
        .post(app.url("/subscriptions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    r.json().await.unwrap()
}

fn fast(url: &str, topic: &str) -> Value {
    json!({"topic": topic, "url": url, "min_backoff_ms": 10, "max_backoff_ms": 40, "max_attempts": 3, "timeout_ms": 2000})
}

async fn get(app: &TestApp, path: &str) -> Value {
    let r = app.get(path).await;
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

async fn subscriptions_are_created_listed_patched_and_deleted(backend: Backend) {
    let app = webhook_app(backend).await;
    let rx = Receiver::start(Behaviour::Ok).await;
    let created = subscribe(&app, json!({"topic": "orders.*", "url": rx.url})).await;
    let id = created["id"].as_i64().unwrap();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["max_attempts"], 5);
    assert_eq!(created["min_backoff_ms"], 1000);
    assert_eq!(created["max_backoff_ms"], 600000);
    assert_eq!(created["timeout_ms"], 15000);
    assert_eq!(created["paused"], false);

    let shown = get(&app, &format!("/subscriptions/{id}")).await;
    assert!(shown.get("secret").is_none(), "the secret is shown once");
    assert_eq!(
        shown["stats"],
        json!({"delivered": 0, "pending": 0, "retrying": 0, "dead_lettered": 0, "expired": 0})
    );

    for _ in 0..2 {
        subscribe(&app, json!({"topic": "x", "url": rx.url, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})).await;
    }
    let page = get(&app, "/subscriptions?limit=2").await;
    assert_eq!(page["subscriptions"].as_array().unwrap().len(), 2);
    let next = page["next"].as_i64().unwrap();
    let rest = get(&app, &format!("/subscriptions?after={next}")).await;
    assert_eq!(rest["subscriptions"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next"], Value::Null);

    let r = app
        .client
        .patch(app.url(&format!("/subscriptions/{id}")))
        .json(&json!({"paused": true, "filter": "data.total > 1", "max_attempts": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let patched: Value = r.json().await.unwrap();
    assert_eq!(
        (
            patched["paused"].clone(),
            patched["filter"].clone(),
            patched["max_attempts"].clone()
        ),
        (json!(true), json!("data.total > 1"), json!(7))
    );
    let r = app
        .client
        .patch(app.url(&format!("/subscriptions/{id}")))
        .json(&json!({"filter": null}))
        .send()
        .await
        .unwrap();
    let patched: Value = r.json().await.unwrap();
    assert_eq!(patched["filter"], Value::Null);
    assert_eq!(patched["paused"], true);

    let r = app
        .client
        .delete(app.url(&format!("/subscriptions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(app.get(&format!("/subscriptions/{id}")).await.status(), 404);
    app.stop().await;
}

async fn bad_subscriptions_get_400_and_unknown_ids_404(backend: Backend) {
    let app = webhook_app(backend).await;
    let url = "http://127.0.0.1:9/hook";
    let bad = [
        json!({"topic": "a", "url": "ftp://example.com/x"}),
        json!({"topic": "a", "url": "not a url"}),
        json!({"topic": "a b", "url": url}),
        json!({"topic": "a.*x", "url": url}),
        json!({"topic": "a", "url": url, "filter": "data.x >"}),
        json!({"topic": "a", "url": url, "secret": "nope"}),
        json!({"topic": "a", "url": url, "max_attempts": 0}),
        json!({"topic": "a", "url": url, "min_backoff_ms": 500, "max_backoff_ms": 100}),
        json!({"topic": "a", "url": url, "timeout_ms": 0}),
        json!({"topic": "a", "url": url, "start": "yesterday"}),
        json!({"topic": "a", "url": url, "unknown": 1}),
        json!({"url": url}),
        json!([1, 2]),
    ];
    for body in bad {
        let r = app
            .client
            .post(app.url("/subscriptions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_problem(r, StatusCode::BAD_REQUEST, &body.to_string()).await;
    }
    let r = app
        .post("/subscriptions", Some("application/json"), "{not json")
        .await;
    assert_problem(r, StatusCode::BAD_REQUEST, "malformed").await;
    let r = app.post("/subscriptions", Some("text/plain"), "{}").await;
    assert_problem(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "no json").await;

    for path in ["/subscriptions/999", "/dead-letters/999"] {
        assert_problem(app.get(path).await, StatusCode::NOT_FOUND, path).await;
        let r = app.client.delete(app.url(path)).send().await.unwrap();
        assert_problem(r, StatusCode::NOT_FOUND, path).await;
    }
    let r = app.post("/dead-letters/999/redrive", None, "").await;
    assert_problem(r, StatusCode::NOT_FOUND, "redrive").await;
    let r = app
        .client
        .post(app.url("/dead-letters/redrive"))
        .json(&json!({"subscription": 999}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "bulk redrive").await;
    for path in [
        "/subscriptions/abc",
        "/dead-letters/-1",
        "/dead-letters?limit=0",
        "/dead-letters?subscription=x",
        "/subscriptions?after=x",
    ] {
        assert_problem(app.get(path).await, StatusCode::BAD_REQUEST, path).await;
    }
    app.stop().await;
}

async fn deliveries_are_signed_and_start_at_the_head(backend: Backend) {
    let app = webhook_app(backend).await;
    let rx = Receiver::start(Behaviour::Ok).await;
    app.publish_json("orders", json!({"before": true})).await;
    let sub = subscribe(&app, fast(&rx.url, "orders")).await;
    let secret = sub["secret"].as_str().unwrap();
    let ack = app.publish_json("orders", json!({"total": 150})).await;
    let hits = rx.successes(1).await;
    let hit = &hits[0];
    hit.verify(secret);
    assert_eq!(hit.headers["content-type"], "application/json");
    assert_eq!(
        hit.headers["webhook-id"],
        format!("msg_{}_{}", sub["id"], ack.id)
    );
    let envelope = hit.json();
    assert_eq!(envelope["id"], ack.id);
    assert_eq!(envelope["seq"], ack.seq);
    assert_eq!(envelope["topic"], "orders");
    assert_eq!(envelope["data"], json!({"total": 150}));
    let stats = crate::helpers::eventually("the delivery to be counted", || async {
        let s = get(&app, &format!("/subscriptions/{}", sub["id"])).await;
        (s["stats"]["delivered"] == 1).then_some(s)
    })
    .await;
    assert_eq!(stats["stats"]["pending"], 0);
    assert_eq!(stats["cursor"], ack.id);
    assert_eq!(
        rx.hits().len(),
        1,
        "the message from before the subscription was sent"
    );
    app.stop().await;
}

/// Delivery skips its per-commit pass when no subscription's topics match;
/// a subscription created or re-pointed on this node must still get the
/// very next message, and so must one resumed there, not wait for the
/// (here 10-minute) poll.
async fn subscription_changes_take_effect_without_waiting_for_the_poll(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let app = spawn_app_with(
        db,
        &["--webhook-allow-private", "--webhook-poll-ms", "600000"],
    )
    .await;
    // Commits with no subscriber: the passes they wake find nothing.
    app.publish_json("orders", json!({"n": 0})).await;
    let rx = Receiver::start(Behaviour::Ok).await;
    let sub = subscribe(&app, fast(&rx.url, "orders")).await;
    let first = app.publish_json("orders", json!({"n": 1})).await;
    assert_eq!(rx.successes(1).await[0].json()["id"], first.id);

    let id = sub["id"].as_i64().unwrap();
    for paused in [true, false] {
        let r = app
            .client
            .patch(app.url(&format!("/subscriptions/{id}")))
            .json(&json!({"paused": paused}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        app.publish_json("orders", json!({"paused": paused})).await;
    }
    // Resumed: what was published while paused, then the next message.
    let hits = rx.successes(3).await;
    let mut ids: Vec<i64> = hits
        .iter()
        .map(|h| h.json()["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable(); // attempts run concurrently
    assert_eq!(ids, [first.id, first.id + 1, first.id + 2]);
    app.stop().await;
}

async fn patterns_filters_and_start_select_what_is_delivered(backend: Backend) {
    let app = webhook_app(backend).await;
    let early = app.publish_json("orders.eu", json!({"total": 500})).await;
    app.publish_json("orders.eu", json!({"total": 5})).await;
    let rx = Receiver::start(Behaviour::Ok).await;
    let mut body = fast(&rx.url, "orders.*");
    body["filter"] = json!("data.total > 100");
    body["start"] = json!("earliest");
    subscribe(&app, body).await;
    app.publish_json("orders.us", json!({"total": 200})).await;
    app.publish_json("orders.us", json!({"total": 20})).await;
    app.publish_json("users.eu", json!({"total": 900})).await;
    let marker = app
        .publish_json("orders.eu.late", json!({"total": 999}))
        .await;
    let last = app.publish_json("orders.eu", json!({"total": 101})).await;
    let hits = rx.successes(3).await;
    let mut ids: Vec<i64> = hits
        .iter()
        .map(|h| h.json()["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [early.id, 3, last.id]);
    assert!(!ids.contains(&marker.id));
    app.stop().await;
}

async fn a_failing_endpoint_is_retried_then_dead_lettered_and_redriven(backend: Backend) {
    let app = webhook_app(backend).await;
    let rx = Receiver::start(Behaviour::Fail(500)).await;
    let sub = subscribe(&app, fast(&rx.url, "orders")).await;
    let id = sub["id"].as_i64().unwrap();
    let a = app.publish_json("orders", json!(1)).await;
    let b = app.publish_json("orders", json!(2)).await;

    let page = crate::helpers::eventually("two dead letters", || async {
        let p = get(&app, &format!("/dead-letters?subscription={id}")).await;
        (p["dead_letters"].as_array().unwrap().len() == 2).then_some(p)
    })
    .await;
    assert_eq!(rx.hits().len(), 6, "3 attempts for each of 2 messages");
    let letters = page["dead_letters"].as_array().unwrap();
    let mut message_ids: Vec<i64> = letters
        .iter()
        .map(|d| d["message_id"].as_i64().unwrap())
        .collect();
    message_ids.sort_unstable();
    assert_eq!(message_ids, [a.id, b.id]);
    for d in letters {
        assert_eq!(d["subscription"], id);
        assert_eq!(d["topic"], "orders");
        assert_eq!(d["attempts"], 3);
        assert_eq!(d["last_status"], 500);
        assert!(d["last_error"].as_str().unwrap().contains("500"));
        assert!(d["first_attempt"].as_str().unwrap() <= d["last_attempt"].as_str().unwrap());
    }
    let stats = get(&app, &format!("/subscriptions/{id}")).await["stats"].clone();
    assert_eq!(
        stats,
        json!({"delivered": 0, "pending": 0, "retrying": 0, "dead_lettered": 2, "expired": 0})
    );

    let first = letters[0]["id"].as_i64().unwrap();
    let one = get(&app, &format!("/dead-letters/{first}")).await;
    assert_eq!(one["message"]["topic"], "orders");
    assert_eq!(one["message"]["id"], one["message_id"]);
    let paged = get(&app, "/dead-letters?limit=1").await;
    assert_eq!(paged["dead_letters"].as_array().unwrap().len(), 1);
    assert_eq!(paged["next"], first);
    assert_eq!(
        get(&app, "/dead-letters?topic=other").await["dead_letters"],
        json!([])
    );

    // The endpoint recovers: redrive one, then the rest in bulk.
    rx.set(Behaviour::Ok);
    let r = app
        .post(&format!("/dead-letters/{first}/redrive"), None, "")
        .await;
    assert_eq!(r.status(), 202);
    rx.successes(1).await;
    let r = app
        .client
        .post(app.url("/dead-letters/redrive"))
        .json(&json!({"subscription": id, "topic": "orders"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap()["redriven"], 1);
    rx.successes(2).await;
    crate::helpers::eventually("both delivered", || async {
        let s = get(&app, &format!("/subscriptions/{id}")).await;
        (s["stats"]["delivered"] == 2 && s["stats"]["dead_lettered"] == 0).then_some(())
    })
    .await;

    // Delete one that fails again.
    rx.set(Behaviour::Fail(503));
    app.publish_json("orders", json!(3)).await;
    let dl = crate::helpers::eventually("a new dead letter", || async {
        let p = get(&app, "/dead-letters").await;
        p["dead_letters"].as_array().unwrap().first().cloned()
    })
    .await;
    let r = app
        .client
        .delete(app.url(&format!("/dead-letters/{}", dl["id"])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        app.get(&format!("/dead-letters/{}", dl["id"]))
            .await
            .status(),
        404
    );
    app.stop().await;
}

async fn a_flapping_endpoint_gets_every_message_after_retries(backend: Backend) {
    let app = webhook_app(backend).await;
    let rx = Receiver::start(Behaviour::FailFirst(4)).await;
    let mut body = fast(&rx.url, "f");
    body["max_attempts"] = json!(10);
    let sub = subscribe(&app, body).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.publish_json("f", json!(i)).await.id);
    }
    let ok = rx.successes(5).await;
    let mut got: Vec<i64> = ok
        .iter()
        .map(|h| h.json()["id"].as_i64().unwrap())
        .collect();
    got.sort_unstable();
    got.dedup();
    assert_eq!(got, ids);
    let s = crate::helpers::eventually("all delivered", || async {
        let s = get(&app, &format!("/subscriptions/{}", sub["id"])).await;
        (s["stats"]["delivered"] == 5).then_some(s)
    })
    .await;
    assert_eq!(s["stats"]["dead_lettered"], 0);
    app.stop().await;
}

async fn a_slow_endpoint_holds_up_nothing_else(backend: Backend) {
    let app = webhook_app(backend).await;
    let slow = Receiver::start(Behaviour::Slow(Duration::from_secs(5))).await;
    let quick = Receiver::start(Behaviour::Ok).await;
    let mut body = fast(&slow.url, "s");
    body["timeout_ms"] = json!(300);
    body["max_attempts"] = json!(1);
    let slow_sub = subscribe(&app, body).await;
    subscribe(&app, fast(&quick.url, "s")).await;
    let started = std::time::Instant::now();
    for i in 0..5 {
        app.publish_json("s", json!(i)).await;
    }
    quick.successes(5).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the quick endpoint waited for the slow one"
    );
    // The slow subscription's messages were attempted side by side and all
    // timed out into dead letters, well before 5 x 300 ms in series.
    let letters = crate::helpers::eventually("timeouts to be dead-lettered", || async {
        let p = get(
            &app,
            &format!("/dead-letters?subscription={}", slow_sub["id"]),
        )
        .await;
        let l = p["dead_letters"].as_array().unwrap().clone();
        (l.len() == 5).then_some(l)
    })
    .await;
    assert!(
        letters[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{:?}",
        letters[0]
    );
    assert_eq!(letters[0]["last_status"], Value::Null);
    app.stop().await;
}

async fn retry_after_is_honoured(backend: Backend) {
    let app = webhook_app(backend).await;
    let rx = Receiver::start(Behaviour::RetryAfter { secs: 1, times: 1 }).await;
    let mut body = fast(&rx.url, "r");
    body["max_backoff_ms"] = json!(5000);
    subscribe(&app, body).await;
    app.publish_json("r", json!(1)).await;
    let hits = rx.successes(1).await;
    let all = rx.hits();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].status, 429);
    let waited = hits[0].at - all[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}, before Retry-After"
    );
    app.stop().await;
}

mod guard {
    use super::*;

    #[tokio::test]
    async fn private_addresses_are_refused_without_the_flag() {
        let db = TestDb::new(&Backend::Sqlite).await;
        let app = spawn_app_with(db, &[]).await;
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://localhost/x",
            "http://10.0.0.1/x",
            "http://[::1]/x",
            "http://169.254.169.254/latest",
            // The red team's finds (issue 21): special-purpose ranges, and
            // IPv4 loopback inside IPv6 transition forms.
            "http://[::127.0.0.1]/x",
            "http://[::ffff:0:127.0.0.1]/x",
            "http://[64:ff9b::127.0.0.1]/x",
            "http://[2002:7f00:1::]/x",
            "http://[2001:0:808:808::80ff:fffe]/x",
            "http://0.0.0.1/x",
            "http://198.18.0.1/x",
            "http://192.0.0.1/x",
            "http://240.0.0.1/x",
            "http://[fec0::1]/x",
        ] {
            let r = app
                .client
                .post(app.url("/subscriptions"))
                .json(&json!({"topic": "a", "url": url}))
                .send()
                .await
                .unwrap();
            let body = assert_problem(r, StatusCode::BAD_REQUEST, url).await;
            assert!(
                body["detail"]
                    .as_str()
                    .unwrap()
                    .contains("--webhook-allow-private"),
                "{body}"
            );
        }
        app.stop().await;
    }
}

async fn pending_retries_survive_a_crash(backend: Backend) {
    use crate::lifecycle::Herald;
    let db = TestDb::new(&backend).await;
    let flags = ["--webhook-allow-private", "--webhook-poll-ms", "20"];
    let mut herald = Herald::start_with(&db, &flags).await;
    let rx = Receiver::start(Behaviour::Fail(500)).await;
    let mut body = fast(&rx.url, "c");
    // Long enough that the retries are still pending when herald dies.
    body["min_backoff_ms"] = json!(300);
    body["max_backoff_ms"] = json!(300);
    body["max_attempts"] = json!(20);
    let r = herald
        .client
        .post(herald.url("/subscriptions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let sub: Value = r.json().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = herald
            .client
            .post(herald.url("/topics/c"))
            .body(format!("m{i}"))
            .send()
            .await
            .unwrap();
        ids.push(r.json::<crate::helpers::Ack>().await.unwrap().id);
    }
    rx.requests(3).await;
    let stats: Value = herald
        .client
        .get(herald.url(&format!("/subscriptions/{}", sub["id"])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["stats"]["delivered"], 0);

    herald.signal("KILL");
    herald.wait().await;
    rx.set(Behaviour::Ok);
    let _herald = Herald::start_with(&db, &flags).await;
    let ok = rx.successes(3).await;
    let mut got: Vec<i64> = ok
        .iter()
        .map(|h| h.json()["id"].as_i64().unwrap())
        .collect();
    got.sort_unstable();
    got.dedup();
    assert_eq!(got, ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Postgres: set HERALD_TEST_POSTGRES_URL, run with --run-ignored all"]
async fn two_nodes_deliver_each_message_once_per_subscription() {
    let db = TestDb::new(&Backend::postgres()).await;
    let flags = ["--webhook-allow-private", "--webhook-poll-ms", "10"];
    let a = spawn_app_with(db.clone(), &flags).await;
    let b = spawn_app_with(db.clone(), &flags).await;
    let rx = Receiver::start(Behaviour::Ok).await;
    subscribe(&a, fast(&rx.url, "n")).await;
    let mut ids = Vec::new();
    for i in 0..60 {
        let node = if i % 2 == 0 { &a } else { &b };
        ids.push(node.publish_json("n", json!(i)).await.id);
    }
    rx.successes(60).await;
    // Both nodes keep polling: give them many passes to deliver twice.
    let s = crate::helpers::eventually("every delivery to be recorded", || async {
        let s = get(&a, "/subscriptions/1").await;
        (s["stats"]["delivered"] == 60 && s["stats"]["pending"] == 0).then_some(s)
    })
    .await;
    assert_eq!(s["cursor"], ids[59]);
    let mut got: Vec<i64> = rx
        .hits()
        .iter()
        .map(|h| h.json()["id"].as_i64().unwrap())
        .collect();
    got.sort_unstable();
    assert_eq!(got, ids, "a message was delivered twice or not at all");
    a.stop().await;
    b.stop().await;
}
