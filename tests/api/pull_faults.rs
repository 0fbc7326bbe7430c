//! Pull subscriptions: bad input, access control, leases across a
//! restart, expiry and shutdown (two nodes: [`super::pull_cluster`]).

use serde_json::{Value, json};

use reqwest::Method;

use super::pull::{create_pull, post_json, pull, stats};
use crate::helpers::{Backend, TestApp, TestDb, eventually, spawn_app, spawn_app_with};
use crate::jwt;
use crate::on_both_backends;

on_both_backends!(
    bad_pull_input_gets_problem_answers,
    leases_survive_a_restart_and_run_out_there,
    leased_messages_survive_kill_9_and_acked_ones_never_return,
    an_extended_lease_is_not_redelivered_at_the_old_deadline,
    a_message_that_expires_before_its_redelivery_is_dropped_and_counted,
    a_streaming_pull_ends_cleanly_at_shutdown,
);

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
    let too_many: Vec<String> = (1..=1001).map(|i| format!("{i}.1")).collect();
    problem(
        post_json(&app, &ack, json!({"ack_ids": too_many})).await,
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
    let patch = |id: i64, body: Value| {
        let req = app.client.patch(app.url(&format!("/subscriptions/{id}")));
        async move { req.json(&body).send().await.unwrap() }
    };
    problem(
        patch(sub, json!({"url": "http://127.0.0.1:9/"})).await,
        400,
        "push",
    )
    .await;
    problem(
        patch(push, json!({"ack_deadline": "5s"})).await,
        400,
        "pull",
    )
    .await;
    let r = patch(sub, json!({"ack_deadline": "5s"})).await;
    assert_eq!(r.json::<Value>().await.unwrap()["ack_deadline"], "5s");
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
            json!({"topic": "j", "mode": "pull", "ordered": "yes"}),
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

async fn leases_survive_a_restart_and_run_out_there(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let app = spawn_app_with(db.clone(), &[]).await;
    let sub = create_pull(&app, "jobs", json!({"ack_deadline": "1s"})).await;
    let id = app.publish_json("jobs", json!({"n": 1})).await.id;
    assert_eq!(pull(&app, sub, 1, "5s").await[0].attempt, 1);
    app.stop().await;
    let app = spawn_app_with(db, &[]).await;
    let again = pull(&app, sub, 1, "10s").await;
    assert_eq!((again[0].message.id, again[0].attempt), (id, 2));
}

/// kill -9 of herald with 20 of 50 messages leased and 5 of those acked:
/// after the restart and the deadline the 15 come back (attempt 2), the 5
/// never do, and every message is acked once in the end.
async fn leased_messages_survive_kill_9_and_acked_ones_never_return(backend: Backend) {
    use crate::lifecycle::Herald;
    let db = TestDb::new(&backend).await;
    let herald = Herald::start(&db).await;
    let call = |h: &Herald, path: &str, body: Value| {
        let req = h.client.post(h.url(path)).json(&body);
        async move {
            let r = req.send().await.unwrap();
            assert!(r.status().is_success(), "{:?}", r.text().await);
            r.json::<Value>().await.unwrap()
        }
    };
    let body = json!({"topic": "jobs", "mode": "pull", "ack_deadline": "1s", "start": "earliest"});
    let sub = call(&herald, "/subscriptions", body).await["id"]
        .as_i64()
        .unwrap();
    let batch: Vec<Value> = (0..50).map(|n| json!({"n": n})).collect();
    call(&herald, "/topics/jobs/batch", json!(batch)).await;
    let pull_path = format!("/subscriptions/{sub}/pull");
    let ack_path = format!("/subscriptions/{sub}/ack");
    let mut leased = Vec::new();
    while leased.len() < 20 {
        let page = call(
            &herald,
            &pull_path,
            json!({"max_messages": 20 - leased.len(), "wait": "5s"}),
        )
        .await;
        leased.extend(page["messages"].as_array().unwrap().clone());
    }
    let acked: Vec<&str> = leased[..5]
        .iter()
        .map(|m| m["ack_id"].as_str().unwrap())
        .collect();
    let answer = call(&herald, &ack_path, json!({"ack_ids": acked})).await;
    assert_eq!(answer["acked"], 5);
    let acked_ids: Vec<i64> = leased[..5]
        .iter()
        .map(|m| m["message"]["id"].as_i64().unwrap())
        .collect();
    herald.signal("KILL");
    drop(herald);

    let herald = Herald::start(&db).await;
    let mut seen: Vec<(i64, i64)> = Vec::new();
    while seen.len() < 45 {
        let page = call(
            &herald,
            &pull_path,
            json!({"max_messages": 50, "wait": "10s"}),
        )
        .await;
        let msgs = page["messages"].as_array().unwrap();
        let ids: Vec<&str> = msgs.iter().map(|m| m["ack_id"].as_str().unwrap()).collect();
        if !ids.is_empty() {
            call(&herald, &ack_path, json!({"ack_ids": ids})).await;
        }
        seen.extend(msgs.iter().map(|m| {
            (
                m["message"]["id"].as_i64().unwrap(),
                m["attempt"].as_i64().unwrap(),
            )
        }));
    }
    let mut ids: Vec<i64> = seen.iter().map(|(id, _)| *id).collect();
    ids.extend(&acked_ids);
    ids.sort_unstable();
    assert_eq!(
        ids,
        (1..=50).collect::<Vec<_>>(),
        "every message acked exactly once"
    );
    for m in &leased[5..] {
        let id = m["message"]["id"].as_i64().unwrap();
        assert!(
            seen.contains(&(id, 2)),
            "{id} redelivered with attempt 2: {seen:?}"
        );
    }
}

async fn an_extended_lease_is_not_redelivered_at_the_old_deadline(backend: Backend) {
    let app = spawn_app(backend).await;
    let sub = create_pull(&app, "jobs", json!({"ack_deadline": "1s"})).await;
    app.publish_json("jobs", json!({"n": 1})).await;
    let got = pull(&app, sub, 1, "5s").await;
    let path = format!("/subscriptions/{sub}/extend");
    let r = post_json(
        &app,
        &path,
        json!({"ack_ids": [got[0].ack_id, "999.1"], "ack_deadline": "1m"}),
    )
    .await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"updated": 1, "unknown": ["999.1"]})
    );
    // Without the extension it would come back after 1 s.
    assert!(pull(&app, sub, 1, "2s").await.is_empty());
    assert_eq!(stats(&app, sub).await["in_flight"], 1);
}

async fn a_message_that_expires_before_its_redelivery_is_dropped_and_counted(backend: Backend) {
    let app = spawn_app(backend).await;
    let sub = create_pull(&app, "jobs", json!({"ack_deadline": "1s"})).await;
    let r = app.post("/topics/jobs?ttl=1s", None, "soon gone").await;
    assert_eq!(r.status(), 201);
    assert_eq!(pull(&app, sub, 1, "5s").await.len(), 1);
    // The lease ends after the message's expiry: it is dropped, not redelivered.
    eventually("the expired message to be counted", || async {
        assert!(pull(&app, sub, 1, "0s").await.is_empty());
        (stats(&app, sub).await["expired"] == 1).then_some(())
    })
    .await;
    let s = stats(&app, sub).await;
    assert_eq!(
        (
            s["backlog"].as_i64(),
            s["in_flight"].as_i64(),
            s["dead_lettered"].as_i64()
        ),
        (Some(0), Some(0), Some(0)),
        "{s}"
    );
}

async fn a_streaming_pull_ends_cleanly_at_shutdown(backend: Backend) {
    let app = spawn_app(backend).await;
    let sub = create_pull(&app, "jobs", json!({})).await;
    let mut sse = app
        .subscribe(&format!("/subscriptions/{sub}/events"), None)
        .await;
    app.stop().await;
    assert!(
        sse.next_event().await.is_none(),
        "the stream ends at shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_pull_ends_after_the_longest_stream_duration() {
    let db = TestDb::new(&Backend::Sqlite).await;
    let app = spawn_app_with(db, &["--sse-max-duration-ms", "300"]).await;
    let sub = create_pull(&app, "jobs", json!({})).await;
    let mut sse = app
        .subscribe(&format!("/subscriptions/{sub}/events"), None)
        .await;
    assert!(
        sse.next_event().await.is_none(),
        "the stream ends by itself"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_or_an_admin_may_use_a_pull_subscription() {
    let flags = jwt::flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let app = spawn_app_with(TestDb::new(&Backend::Sqlite).await, &flags).await;
    let scope = json!({"subscribe": ["jobs.**"]});
    let owner = jwt::hs256(&jwt::claims("owner", scope.clone()));
    let other = jwt::hs256(&jwt::claims("other", scope));
    let admin = jwt::hs256(&jwt::claims("root", json!({"admin": true})));
    let narrow = jwt::hs256(&jwt::claims("n", json!({"subscribe": ["else.**"]})));
    let send = |method: Method, path: String, body: Value, token: Option<String>| {
        let mut req = app.client.request(method.clone(), app.url(&path));
        if method == Method::POST {
            req = req.json(&body);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let create = json!({"topic": "jobs.*", "mode": "pull"});
    assert_eq!(
        send(
            Method::POST,
            "/subscriptions".into(),
            create.clone(),
            Some(narrow)
        )
        .await,
        403
    );
    let r = app
        .client
        .post(app.url("/subscriptions"))
        .json(&create)
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let sub = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let calls = [
        (Method::POST, "pull", json!({})),
        (Method::POST, "ack", json!({"ack_ids": ["1.1"]})),
        (Method::POST, "nack", json!({"ack_ids": ["1.1"]})),
        (
            Method::POST,
            "extend",
            json!({"ack_ids": ["1.1"], "ack_deadline": "5s"}),
        ),
        (Method::POST, "seek", json!({"to": "head"})),
    ];
    for (method, what, body) in calls {
        let path = format!("/subscriptions/{sub}/{what}");
        assert_eq!(
            send(method.clone(), path.clone(), body.clone(), None).await,
            401,
            "{what}"
        );
        assert_eq!(
            send(
                method.clone(),
                path.clone(),
                body.clone(),
                Some(other.clone())
            )
            .await,
            404,
            "{what}: another token's subscription is not there"
        );
        assert_eq!(
            send(
                method.clone(),
                path.clone(),
                body.clone(),
                Some(owner.clone())
            )
            .await,
            200,
            "{what}"
        );
        assert_eq!(
            send(method, path, body, Some(admin.clone())).await,
            200,
            "{what}"
        );
    }
    let events = format!("/subscriptions/{sub}/events");
    assert_eq!(
        send(Method::GET, events, json!(null), Some(other)).await,
        404,
        "another token's subscription is not there"
    );
    app.stop().await;
}
