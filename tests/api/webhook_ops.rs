//! Webhooks, second part: the attempt log, the abort header, the circuit
//! breaker, auto-disable, secret rotation, event types, rate limits and
//! herald's own `$herald.*` topics.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::errors::assert_problem;
use crate::helpers::{Backend, DEADLINE, TestApp, TestDb, eventually, spawn_app_with};
use crate::receiver::{Behaviour, Receiver};
use crate::webhooks::subscribe;

crate::on_both_backends!(
    the_attempt_log_keeps_every_attempt_newest_first_with_the_answer_cut_to_1_kib,
    an_abort_header_dead_letters_the_message_at_once_and_says_so_on_a_herald_topic,
    a_failing_endpoint_opens_its_circuit_and_a_recovered_one_closes_it_losing_nothing,
    an_endpoint_failing_for_too_long_is_disabled_and_resumes_with_its_deliveries,
    a_rotated_secret_and_the_previous_one_both_sign_during_the_overlap,
    event_types_select_what_a_subscription_takes,
    a_rate_limit_spreads_deliveries_and_slows_no_other_subscription,
    only_herald_publishes_to_its_own_topics,
    hanging_resetting_and_endless_receivers_get_bounded_attempts_logged,
    the_attempt_log_is_pruned_past_its_max_age,
    a_pull_subscriptions_dead_letter_is_announced_too,
);

async fn app(backend: Backend, extra: &[&str]) -> TestApp {
    let db = TestDb::new(&backend).await;
    let mut flags = vec!["--webhook-allow-private", "--webhook-poll-ms", "20"];
    flags.extend_from_slice(extra);
    spawn_app_with(db, &flags).await
}

fn hook(url: &str, topic: &str, max_attempts: u32) -> Value {
    json!({"topic": topic, "url": url, "min_backoff_ms": 10, "max_backoff_ms": 40,
           "max_attempts": max_attempts, "timeout_ms": 2000})
}

async fn get(app: &TestApp, path: &str) -> Value {
    let r = app.get(path).await;
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// The messages herald published on one of its own topics.
async fn herald_events(app: &TestApp, topic: &str) -> Vec<Value> {
    let page = get(app, &format!("/topics/{topic}/messages?after=0")).await;
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["data"].clone())
        .collect()
}

async fn the_attempt_log_keeps_every_attempt_newest_first_with_the_answer_cut_to_1_kib(
    backend: Backend,
) {
    let app = app(backend, &[]).await;
    let rx = Receiver::start(Behaviour::Body(500, 10_000)).await;
    let id = subscribe(&app, hook(&rx.url, "orders", 3)).await["id"]
        .as_i64()
        .unwrap();
    let first = app.publish_json("orders", json!({"n": 1})).await.id;
    rx.requests(3).await;
    let path = format!("/subscriptions/{id}/attempts");
    let log = eventually("three attempts logged", || async {
        let log = get(&app, &path).await;
        (log["attempts"].as_array().unwrap().len() == 3).then_some(log)
    })
    .await;
    let attempts = log["attempts"].as_array().unwrap();
    let ids: Vec<i64> = attempts.iter().map(|a| a["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    for a in attempts {
        assert_eq!(a["message_id"], first, "{a}");
        assert_eq!(a["status"], 500);
        assert_eq!(a["error"], "endpoint answered 500 Internal Server Error");
        assert_eq!(a["response"].as_str().unwrap(), "x".repeat(1024));
        assert!(a["duration_ms"].as_i64().unwrap() >= 0);
        assert!(a["time"].as_str().unwrap().ends_with('Z'));
    }

    // A success is logged too, and a page can be of one message.
    rx.set(Behaviour::Ok);
    let second = app.publish_json("orders", json!({"n": 2})).await.id;
    rx.successes(1).await;
    let only = eventually("the success logged", || async {
        let log = get(&app, &format!("{path}?message_id={second}")).await;
        (log["attempts"].as_array().unwrap().len() == 1).then_some(log)
    })
    .await;
    let ok = &only["attempts"][0];
    assert_eq!(ok["status"], 200);
    assert!(ok.get("error").is_none(), "{ok}");

    // Pages of two, older ones after `next`.
    let page = get(&app, &format!("{path}?limit=2")).await;
    assert_eq!(page["attempts"].as_array().unwrap().len(), 2);
    let next = page["next"].as_i64().unwrap();
    let rest = get(&app, &format!("{path}?limit=2&after={next}")).await;
    assert_eq!(rest["attempts"].as_array().unwrap().len(), 2);
    assert!(rest["attempts"][0]["id"].as_i64().unwrap() < next);

    for bad in ["message_id=x", "after=-1", "limit=0", "limit=1001"] {
        let r = app.get(&format!("{path}?{bad}")).await;
        assert_problem(r, StatusCode::BAD_REQUEST, bad).await;
    }
    let r = app.get("/subscriptions/999999/attempts").await;
    assert_problem(r, StatusCode::NOT_FOUND, "unknown subscription").await;
}

async fn an_abort_header_dead_letters_the_message_at_once_and_says_so_on_a_herald_topic(
    backend: Backend,
) {
    let app = app(backend, &[]).await;
    let rx = Receiver::start(Behaviour::Abort).await;
    let id = subscribe(&app, hook(&rx.url, "orders", 10)).await["id"]
        .as_i64()
        .unwrap();
    let ack = app.publish_json("orders", json!({"n": 1})).await;
    let letters = eventually("a dead letter", || async {
        let page = get(&app, &format!("/dead-letters?subscription={id}")).await;
        let letters = page["dead_letters"].as_array().unwrap().clone();
        (!letters.is_empty()).then_some(letters)
    })
    .await;
    assert_eq!(letters[0]["reason"], "aborted");
    assert_eq!(letters[0]["attempts"], 1);
    assert_eq!(rx.hits().len(), 1, "no retry after abort-message");

    let events = eventually("the dead-letter event", || async {
        let events = herald_events(&app, "$herald.delivery.dead_lettered").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    let e = &events[0];
    assert_eq!(e["subscription_id"], id);
    assert_eq!(e["message_id"], ack.id);
    assert_eq!(e["reason"], "aborted");
    assert_eq!(e["dead_letter_id"], letters[0]["id"]);
    assert_eq!(e["topic"], "orders");
}

async fn a_failing_endpoint_opens_its_circuit_and_a_recovered_one_closes_it_losing_nothing(
    backend: Backend,
) {
    let app = app(
        backend,
        &[
            "--webhook-circuit-min-attempts",
            "5",
            "--webhook-circuit-cooldown",
            "300ms",
        ],
    )
    .await;
    let rx = Receiver::start(Behaviour::Fail(503)).await;
    let sub = subscribe(&app, hook(&rx.url, "orders", 100)).await;
    let id = sub["id"].as_i64().unwrap();
    assert_eq!(sub["circuit"], "closed");
    let mut sent = Vec::new();
    for n in 0..10 {
        sent.push(app.publish_json("orders", json!({ "n": n })).await.id);
    }
    let path = format!("/subscriptions/{id}");
    eventually("the circuit opens", || async {
        let s = get(&app, &path).await;
        (s["circuit"] == "open").then_some(())
    })
    .await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let open = format!("herald_subscription_circuit{{state=\"open\",subscription=\"{id}\"}} 1");
    let open_alt = format!("herald_subscription_circuit{{subscription=\"{id}\",state=\"open\"}} 1");
    assert!(
        metrics.contains(&open) || metrics.contains(&open_alt),
        "{metrics}"
    );

    rx.set(Behaviour::Ok);
    // What the subscription last showed, for the failure message.
    let last = std::sync::Mutex::new(Value::Null);
    let closed = tokio::time::timeout(
        DEADLINE - Duration::from_secs(1),
        eventually("the circuit closes", || async {
            let s = get(&app, &path).await;
            let done = s["circuit"] == "closed" && s["stats"]["delivered"] == 10;
            *last.lock().unwrap() = s;
            done.then_some(())
        }),
    )
    .await;
    assert!(
        closed.is_ok(),
        "the circuit did not close with every message delivered: {}; \
         attempts seen by the receiver: {}",
        last.lock().unwrap(),
        rx.hits().len()
    );
    let shown = get(&app, &path).await;
    assert_eq!(shown["stats"]["dead_lettered"], 0, "{shown}");
    let mut delivered: Vec<i64> = rx
        .hits()
        .iter()
        .filter(|h| h.status == 200)
        .map(|h| h.json()["id"].as_i64().unwrap())
        .collect();
    delivered.sort();
    delivered.dedup();
    sent.sort();
    assert_eq!(delivered, sent, "every message, none lost");

    // Each transition's event is published after it commits.
    let states: Vec<Value> = eventually("the closed event", || async {
        let states: Vec<Value> = herald_events(&app, "$herald.subscription.circuit")
            .await
            .into_iter()
            .filter(|e| e["subscription_id"] == id)
            .map(|e| e["circuit"].clone())
            .collect();
        (states.last() == Some(&json!("closed"))).then_some(states)
    })
    .await;
    assert_eq!(states.first(), Some(&json!("open")), "{states:?}");
    assert!(states.contains(&json!("half_open")), "{states:?}");
    assert_eq!(states.last(), Some(&json!("closed")), "{states:?}");
}

async fn an_endpoint_failing_for_too_long_is_disabled_and_resumes_with_its_deliveries(
    backend: Backend,
) {
    let app = app(
        backend,
        &[
            "--webhook-disable-after",
            "300ms",
            "--webhook-circuit-min-attempts",
            "100000",
        ],
    )
    .await;
    let rx = Receiver::start(Behaviour::Fail(500)).await;
    let id = subscribe(&app, hook(&rx.url, "orders", 100)).await["id"]
        .as_i64()
        .unwrap();
    app.publish_json("orders", json!({"n": 1})).await;
    let path = format!("/subscriptions/{id}");
    let disabled = eventually("auto-disable", || async {
        let s = get(&app, &path).await;
        (s["paused"] == true).then_some(s)
    })
    .await;
    let reason = disabled["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("--webhook-disable-after"), "{reason}");
    assert!(disabled["failing_since"].is_string(), "{disabled}");
    let kept = &disabled["stats"];
    assert_eq!(
        kept["pending"].as_i64().unwrap() + kept["retrying"].as_i64().unwrap(),
        1,
        "{kept}"
    );
    // The event is published after the pause commits.
    let events = eventually("the disabled event", || async {
        let events = herald_events(&app, "$herald.subscription.disabled").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["subscription_id"], id);

    rx.set(Behaviour::Ok);
    let r = app
        .client
        .patch(app.url(&path))
        .json(&json!({"paused": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let resumed: Value = r.json().await.unwrap();
    assert_eq!(resumed["disabled_reason"], Value::Null, "{resumed}");
    rx.successes(1).await;
    eventually("delivered after resuming", || async {
        let s = get(&app, &path).await;
        (s["stats"]["delivered"] == 1 && s.get("failing_since").is_none()).then_some(())
    })
    .await;
}

async fn a_rotated_secret_and_the_previous_one_both_sign_during_the_overlap(backend: Backend) {
    let app = app(backend, &[]).await;
    let rx = Receiver::start(Behaviour::Ok).await;
    let created = subscribe(&app, hook(&rx.url, "orders", 3)).await;
    let id = created["id"].as_i64().unwrap();
    let old = created["secret"].as_str().unwrap().to_owned();
    let r = app
        .post(&format!("/subscriptions/{id}/rotate-secret"), None, "")
        .await;
    assert_eq!(r.status(), 200);
    let rotated: Value = r.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap();
    assert!(new.starts_with("whsec_") && new != old);
    let until =
        chrono::DateTime::parse_from_rfc3339(rotated["previous_valid_until"].as_str().unwrap())
            .unwrap();
    let hours = (until.timestamp() - chrono::Utc::now().timestamp()) / 3600;
    assert!((23..=24).contains(&hours), "{rotated}");
    let shown = get(&app, &format!("/subscriptions/{id}")).await;
    assert!(shown.get("secret").is_none());
    assert!(shown["previous_secret_valid_until"].is_string(), "{shown}");

    app.publish_json("orders", json!({"n": 1})).await;
    let hit = &rx.successes(1).await[0];
    let header = hit.headers["webhook-signature"].to_str().unwrap();
    assert_eq!(header.split(' ').count(), 2, "{header}");
    hit.verify(&old);
    hit.verify(new);

    let pull = subscribe(&app, json!({"topic": "orders", "mode": "pull"})).await;
    let r = app
        .post(
            &format!("/subscriptions/{}/rotate-secret", pull["id"]),
            None,
            "",
        )
        .await;
    assert_problem(r, StatusCode::BAD_REQUEST, "a pull subscription").await;
    let r = app
        .post("/subscriptions/999999/rotate-secret", None, "")
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "unknown").await;
}

async fn event_types_select_what_a_subscription_takes(backend: Backend) {
    let app = app(backend, &[]).await;
    let rx = Receiver::start(Behaviour::Ok).await;
    let mut body = hook(&rx.url, "orders", 3);
    body["event_types"] = json!(["created", "message", "created"]);
    let sub = subscribe(&app, body).await;
    assert_eq!(sub["event_types"], json!(["created", "message"]));
    let publish = |event: &'static str| {
        let app = &app;
        async move {
            let r = app
                .post(&format!("/topics/orders?event={event}"), None, "{}")
                .await;
            assert_eq!(r.status(), 201);
        }
    };
    publish("created").await;
    publish("cancelled").await;
    app.publish_text("orders", "no event: message").await;
    app.publish_text("other", "another topic").await;
    // A marker last: once it is in, whatever was wrongly taken would be.
    publish("created").await;
    let all = rx.successes(3).await;
    let events: Vec<String> = all
        .iter()
        .map(|h| h.json()["event"].as_str().unwrap().to_owned())
        .collect();
    assert!(events.iter().all(|e| e != "cancelled"), "{events:?}");
    // The receiver answers before herald records the outcome.
    let path = format!("/subscriptions/{}", sub["id"]);
    // An attempt in flight is neither pending nor delivered yet: wait for
    // the count itself (a fourth would mean a wrongly taken event).
    let shown = eventually("the third outcome", || async {
        let shown = get(&app, &path).await;
        (shown["stats"]["pending"] == 0 && shown["stats"]["delivered"] == 3).then_some(shown)
    })
    .await;
    assert_eq!(shown["stats"]["retrying"], 0, "{shown}");

    let id = sub["id"].as_i64().unwrap();
    let r = app
        .client
        .patch(app.url(&format!("/subscriptions/{id}")))
        .json(&json!({"event_types": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["event_types"], Value::Null);
    for bad in [json!([]), json!(["bad name"]), json!("created")] {
        let mut body = hook(&rx.url, "orders", 3);
        body["event_types"] = bad.clone();
        let r = app
            .client
            .post(app.url("/subscriptions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{bad}: {}", r.status());
    }
}

async fn a_rate_limit_spreads_deliveries_and_slows_no_other_subscription(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let flags = ["--webhook-allow-private", "--webhook-poll-ms", "20"];
    let a = spawn_app_with(db.clone(), &flags).await;
    // On Postgres, two nodes share the limit.
    let b = match db.is_postgres() {
        true => Some(spawn_app_with(db.clone(), &flags).await),
        false => None,
    };
    let limited = Receiver::start(Behaviour::Ok).await;
    let free = Receiver::start(Behaviour::Ok).await;
    let mut body = hook(&limited.url, "orders", 3);
    body["rate_limit"] = json!(10);
    assert_eq!(subscribe(&a, body).await["rate_limit"], 10);
    subscribe(&a, hook(&free.url, "orders", 3)).await;
    for n in 0..35 {
        let node = match (&b, n % 2) {
            (Some(b), 1) => b,
            _ => &a,
        };
        node.publish_json("orders", json!({ "n": n })).await;
    }
    let fast = free.successes(35).await;
    let slow = limited.successes(35).await;
    let span = |hits: &[crate::receiver::Hit]| {
        let first = hits.iter().map(|h| h.at).min().unwrap();
        hits.iter().map(|h| h.at).max().unwrap() - first
    };
    // 35 at 10 per second take at least three more one-second windows
    // after the first.
    assert!(span(&slow) >= Duration::from_secs(2), "{:?}", span(&slow));
    let slow_last = slow.iter().map(|h| h.at).max().unwrap();
    let fast_last = fast.iter().map(|h| h.at).max().unwrap();
    assert!(fast_last < slow_last, "the unlimited one finished first");

    let mut bad = hook(&limited.url, "orders", 3);
    bad["rate_limit"] = json!(0);
    let r = a
        .client
        .post(a.url("/subscriptions"))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST, "rate_limit 0").await;
    let r = a
        .client
        .post(a.url("/subscriptions"))
        .json(&json!({"topic": "orders", "mode": "pull", "rate_limit": 5}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST, "rate_limit on pull").await;
}

async fn only_herald_publishes_to_its_own_topics(backend: Backend) {
    let app = app(backend, &[]).await;
    for path in [
        "/topics/$herald.delivery.dead_lettered",
        "/topics/$herald.subscription.circuit/batch",
    ] {
        let r = app.post(path, None, "{}").await;
        let p = assert_problem(r, StatusCode::FORBIDDEN, path).await;
        assert!(
            p["type"].as_str().unwrap().ends_with("reserved-topic"),
            "{p}"
        );
    }
    let r = app
        .client
        .put(app.url("/topics/$herald.x"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "configuring a herald topic").await;
    for bad in ["/topics/$other/events", "/topics/a.$herald/events"] {
        let r = app.get(bad).await;
        assert_problem(r, StatusCode::BAD_REQUEST, bad).await;
    }
    // Reading them is allowed.
    let r = app
        .get("/topics/$herald.delivery.dead_lettered/messages")
        .await;
    assert_eq!(r.status(), 200);
}

/// A raw endpoint on loopback that treats every connection with `serve`.
async fn raw_endpoint<F, Fut>(serve: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket));
        }
    });
    url
}

/// Reads the request head (the body is small and can be left unread).
async fn read_head(socket: &mut tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

async fn hanging_resetting_and_endless_receivers_get_bounded_attempts_logged(backend: Backend) {
    use tokio::io::AsyncWriteExt;
    let app = app(backend, &[]).await;
    // Accepts and never answers.
    let hang = raw_endpoint(|mut s| async move {
        read_head(&mut s).await;
        tokio::time::sleep(crate::helpers::DEADLINE).await;
    })
    .await;
    // Resets every connection.
    let reset = raw_endpoint(|s| async move {
        let _ = s.set_zero_linger();
        drop(s);
    })
    .await;
    // Answers 500 with a body that never ends, a little at a time.
    let endless = raw_endpoint(|mut s| async move {
        read_head(&mut s).await;
        let head = "HTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: chunked\r\n\r\n";
        if s.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = format!("100\r\n{}\r\n", "y".repeat(256));
        while s.write_all(chunk.as_bytes()).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let mut ids = Vec::new();
    for url in [&hang, &reset, &endless] {
        let mut body = hook(url, "orders", 2);
        body["timeout_ms"] = json!(400);
        ids.push(subscribe(&app, body).await["id"].as_i64().unwrap());
    }
    app.publish_json("orders", json!({"n": 1})).await;
    for id in &ids {
        eventually("two attempts, then a dead letter", || async {
            let s = get(&app, &format!("/subscriptions/{id}")).await;
            (s["stats"]["dead_lettered"] == 1).then_some(())
        })
        .await;
    }
    // The attempt log is written in batches after the outcome: wait for both.
    let log = |id: i64| {
        let app = &app;
        eventually("both attempts in the log", move || async move {
            let page = get(app, &format!("/subscriptions/{id}/attempts")).await;
            let attempts = page["attempts"].clone();
            (attempts.as_array().unwrap().len() >= 2).then_some(attempts)
        })
    };
    let hung = log(ids[0]).await;
    assert_eq!(hung.as_array().unwrap().len(), 2, "{hung}");
    for a in hung.as_array().unwrap() {
        assert_eq!(a["error"], "timed out after 400 ms", "{a}");
        let ms = a["duration_ms"].as_i64().unwrap();
        assert!((400..5000).contains(&ms), "{a}");
    }
    let reset_log = log(ids[1]).await;
    assert_eq!(reset_log.as_array().unwrap().len(), 2, "{reset_log}");
    assert!(reset_log[0].get("status").is_none(), "{reset_log}");
    assert!(
        reset_log[0]["error"].as_str().unwrap().contains("error"),
        "{reset_log}"
    );
    let endless_log = log(ids[2]).await;
    for a in endless_log.as_array().unwrap() {
        assert_eq!(a["status"], 500, "{a}");
        let kept = a["response"].as_str().unwrap();
        assert!(kept.len() <= 1024 && kept.starts_with("yyyy"), "{a}");
    }
}

async fn the_attempt_log_is_pruned_past_its_max_age(backend: Backend) {
    let app = app(
        backend,
        &["--attempt-log-max-age", "300ms", "--prune-interval", "50ms"],
    )
    .await;
    let rx = Receiver::start(Behaviour::Ok).await;
    let id = subscribe(&app, hook(&rx.url, "orders", 3)).await["id"]
        .as_i64()
        .unwrap();
    app.publish_json("orders", json!({"n": 1})).await;
    rx.successes(1).await;
    let path = format!("/subscriptions/{id}/attempts");
    eventually("the attempt logged", || async {
        let log = get(&app, &path).await;
        (log["attempts"].as_array().unwrap().len() == 1).then_some(())
    })
    .await;
    eventually("the attempt pruned", || async {
        let log = get(&app, &path).await;
        log["attempts"].as_array().unwrap().is_empty().then_some(())
    })
    .await;
}

async fn a_pull_subscriptions_dead_letter_is_announced_too(backend: Backend) {
    let app = app(backend, &[]).await;
    let sub = subscribe(
        &app,
        json!({"topic": "jobs", "mode": "pull", "max_attempts": 1}),
    )
    .await;
    let id = sub["id"].as_i64().unwrap();
    let ack = app.publish_json("jobs", json!({"n": 1})).await;
    let pull = |body: Value| {
        let app = &app;
        async move {
            let r = app
                .client
                .post(app.url(&format!("/subscriptions/{id}/pull")))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let leased = pull(json!({"max_messages": 1})).await;
    let ack_id = leased["messages"][0]["ack_id"].clone();
    let r = app
        .client
        .post(app.url(&format!("/subscriptions/{id}/nack")))
        .json(&json!({"ack_ids": [ack_id], "delay": "0s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Its one attempt is used: the next lease buries it.
    let again = pull(json!({"max_messages": 1})).await;
    assert_eq!(again["messages"], json!([]), "{again}");
    let events = herald_events(&app, "$herald.delivery.dead_lettered").await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["subscription_id"], id);
    assert_eq!(e["message_id"], ack.id);
    assert_eq!(e["reason"], "max_attempts");
    assert_eq!(e["attempts"], 1);
}
