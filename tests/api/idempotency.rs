//! `Idempotency-Key` on publish and batch: replays, conflicts, bad keys,
//! concurrency, and a crash between commit and answer.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;

use crate::errors::assert_problem;
use crate::helpers::{Backend, TestApp, TestDb, spawn_app};
use crate::lifecycle::Herald;

crate::on_both_backends!(
    a_repeat_replays_the_answer_and_stores_nothing,
    a_key_with_another_body_or_bad_keys_are_refused,
    concurrent_requests_with_one_key_store_one_message,
    a_retry_after_a_crash_between_commit_and_answer_is_deduplicated,
    a_key_past_the_window_is_a_new_request,
);

async fn keyed(app: &TestApp, path: &str, key: &str, ct: &str, body: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("idempotency-key", key)
        .header("content-type", ct)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

/// A problem+json answer of this status and kind.
pub async fn problem(r: reqwest::Response, status: StatusCode, kind: &str) -> Value {
    let body = assert_problem(r, status, kind).await;
    assert_eq!(body["type"], format!("urn:herald:problem:{kind}"), "{body}");
    body
}

pub async fn stored(app: &TestApp, topic: &str) -> Vec<Value> {
    let page: Value = app
        .get(&format!("/topics/{topic}/messages?limit=1000"))
        .await
        .json()
        .await
        .unwrap();
    page["messages"].as_array().unwrap().clone()
}

async fn a_repeat_replays_the_answer_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = keyed(
        &app,
        "/topics/o",
        "order-1",
        "application/json",
        r#"{"n":1}"#,
    )
    .await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let original = first.text().await.unwrap();
    let again = keyed(
        &app,
        "/topics/o",
        "order-1",
        "application/json",
        r#"{"n":1}"#,
    )
    .await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), original, "byte for byte");
    // The key is per topic: another topic stores its own message.
    let other = keyed(
        &app,
        "/topics/p",
        "order-1",
        "application/json",
        r#"{"n":1}"#,
    )
    .await;
    assert_eq!(other.status(), 201);
    assert!(other.headers().get("idempotent-replayed").is_none());

    // A batch: the key covers it whole.
    let batch = keyed(
        &app,
        "/topics/o/batch",
        "b-1",
        "application/json",
        "[1,2,3]",
    )
    .await;
    assert_eq!(batch.status(), 201);
    let original = batch.text().await.unwrap();
    let again = keyed(
        &app,
        "/topics/o/batch",
        "b-1",
        "application/json",
        "[1,2,3]",
    )
    .await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), original);
    assert_eq!(stored(&app, "o").await.len(), 4, "1 + a batch of 3");

    // A scheduled publish replays its 202 and schedules once.
    let path = "/topics/later?delay=1h";
    let first = keyed(&app, path, "s-1", "text/plain", "x").await;
    assert_eq!(first.status(), 202);
    let original = first.text().await.unwrap();
    let again = keyed(&app, path, "s-1", "text/plain", "x").await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), original);
    let list: Value = app
        .get("/scheduled?topic=later")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["scheduled"].as_array().unwrap().len(), 1);

    // Deleting a topic forgets its keys and its schedules: the same key is
    // a new publish, and nothing is left scheduled.
    app.publish_text("later", "now").await;
    for topic in ["p", "later"] {
        let r = app
            .client
            .delete(app.url(&format!("/topics/{topic}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    let again = keyed(
        &app,
        "/topics/p",
        "order-1",
        "application/json",
        r#"{"n":1}"#,
    )
    .await;
    assert_eq!(again.status(), 201);
    assert!(again.headers().get("idempotent-replayed").is_none());
    assert_eq!(stored(&app, "p").await.len(), 1);
    let list: Value = app
        .get("/scheduled?topic=later")
        .await
        .json()
        .await
        .unwrap();
    assert!(list["scheduled"].as_array().unwrap().is_empty());
}

async fn a_key_with_another_body_or_bad_keys_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = keyed(&app, "/topics/o", "k", "text/plain", "one").await;
    assert_eq!(r.status(), 201);
    let r = keyed(&app, "/topics/o", "k", "text/plain", "two").await;
    problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-mismatch",
    )
    .await;
    // Other options are another request too.
    let r = keyed(&app, "/topics/o?priority=5", "k", "text/plain", "one").await;
    problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-mismatch",
    )
    .await;

    let long = "k".repeat(256);
    for bad in ["", long.as_str(), "tab\tkey"] {
        let r = keyed(&app, "/topics/o", bad, "text/plain", "x").await;
        problem(r, StatusCode::BAD_REQUEST, "invalid-idempotency-key").await;
    }
    let non_ascii = reqwest::header::HeaderValue::from_bytes("clé".as_bytes()).unwrap();
    let r = app
        .client
        .post(app.url("/topics/o"))
        .header("idempotency-key", non_ascii)
        .body("x")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST, "invalid-idempotency-key").await;
    let r = app
        .client
        .post(app.url("/topics/o"))
        .header("idempotency-key", "a")
        .header("idempotency-key", "b")
        .body("x")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST, "invalid-idempotency-key").await;
    assert_eq!(stored(&app, "o").await.len(), 1, "only the first");
}

async fn concurrent_requests_with_one_key_store_one_message(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                let r = keyed(&app, "/topics/c", "same", "text/plain", "once").await;
                let replayed = r.headers().contains_key("idempotent-replayed");
                (r.status(), replayed, r.text().await.unwrap())
            })
        })
        .collect();
    let mut fresh = Vec::new();
    for t in tasks {
        let (status, replayed, body) = t.await.unwrap();
        match status {
            StatusCode::CREATED if !replayed => fresh.push(body),
            StatusCode::CREATED | StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(fresh.len(), 1, "exactly one request stored: {fresh:?}");
    assert_eq!(stored(&app, "c").await.len(), 1);
}

/// kill -9 while keyed publishes are in flight, then retry every one of
/// them: each key's message is stored exactly once, whether its first
/// attempt committed (the retry replays it) or not (the retry stores it).
async fn a_retry_after_a_crash_between_commit_and_answer_is_deduplicated(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let herald = Herald::start(&db).await;
    // A schedule due during the crash is appended after the restart.
    let r = herald
        .client
        .post(herald.url("/topics/crash.later?delay=1s"))
        .body("scheduled before the crash")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let keys: Vec<String> = (0..200).map(|i| format!("key-{i}")).collect();
    let send = |client: reqwest::Client, url: String, key: String| async move {
        client
            .post(url)
            .header("idempotency-key", key.clone())
            .body(key)
            .send()
            .await
    };
    let mut inflight = tokio::task::JoinSet::new();
    for key in keys.clone() {
        inflight.spawn(send(
            herald.client.clone(),
            herald.url("/topics/crash"),
            key,
        ));
    }
    // Kill once some have been answered, so others are mid-way.
    let mut answered = 0;
    while answered < 20 {
        if let Some(Ok(Ok(_))) = inflight.join_next().await {
            answered += 1;
        }
    }
    herald.signal("KILL");
    drop(herald);
    while inflight.join_next().await.is_some() {}

    let herald = Herald::start(&db).await;
    for key in &keys {
        let r = send(
            herald.client.clone(),
            herald.url("/topics/crash"),
            key.clone(),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 201, "{key}: {:?}", r.text().await);
    }
    let mut bodies: Vec<String> = herald
        .history("crash")
        .await
        .iter()
        .map(|m| m["data"].as_str().unwrap().to_owned())
        .collect();
    bodies.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(bodies, expected, "each key stored exactly once");
    crate::helpers::eventually("the schedule to be appended after the restart", || async {
        (herald.history("crash.later").await.len() == 1).then_some(())
    })
    .await;
}

async fn a_key_past_the_window_is_a_new_request(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let app = crate::helpers::spawn_app_with(db, &["--idempotency-window", "1s"]).await;
    let r = keyed(&app, "/topics/w", "k", "text/plain", "first").await;
    assert_eq!(r.status(), 201);
    // Within the window: a replay. Past it: the key is free again, even
    // for another body, and its old record is replaced.
    crate::helpers::eventually("the window to pass", || async {
        let r = keyed(&app, "/topics/w", "k", "text/plain", "second").await;
        (r.status() == StatusCode::CREATED).then_some(())
    })
    .await;
    let r = keyed(&app, "/topics/w", "k", "text/plain", "second").await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let data: Vec<Value> = stored(&app, "w")
        .await
        .iter()
        .map(|m| m["data"].clone())
        .collect();
    assert_eq!(data, ["first", "second"]);
}

/// Two nodes on one Postgres, 8 requests with one key on each at once:
/// one message in total.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Postgres: set HERALD_TEST_POSTGRES_URL, run with --run-ignored all"]
async fn a_key_is_unique_across_nodes() {
    let db = TestDb::new(&Backend::postgres()).await;
    let a = Arc::new(crate::helpers::spawn_app_with(db.clone(), &[]).await);
    let b = Arc::new(crate::helpers::spawn_app_with(db, &[]).await);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let app = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                keyed(&app, "/topics/n", "one", "text/plain", "x")
                    .await
                    .status()
            })
        })
        .collect();
    for t in tasks {
        let status = t.await.unwrap();
        assert!(
            matches!(status, StatusCode::CREATED | StatusCode::CONFLICT),
            "{status}"
        );
    }
    assert_eq!(stored(&a, "n").await.len(), 1);
}
