//! Bad input gets a problem+json answer with the right status; an
//! unavailable database gets 503 with Retry-After, and herald recovers.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, TestApp, TestDb, spawn_app, spawn_app_with};

crate::on_both_backends!(
    bad_requests_get_problem_documents,
    a_body_over_the_limit_gets_413,
    a_locked_database_answers_503_and_recovers,
);

/// Checks the answer is a problem document with `status` and a detail.
pub async fn assert_problem(r: reqwest::Response, status: StatusCode, what: &str) -> Value {
    assert_eq!(r.status(), status, "{what}");
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "{what}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16(), "{what}");
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:herald:problem:"),
        "{what}"
    );
    assert!(!body["title"].as_str().unwrap().is_empty(), "{what}");
    assert!(!body["detail"].as_str().unwrap().is_empty(), "{what}");
    body
}

async fn bad_requests_get_problem_documents(backend: Backend) {
    let app = spawn_app(backend).await;
    let long = "x".repeat(129);
    let bad_topics = ["bad%20name", "a..b", ".a", "a*", "caf%C3%A9", long.as_str()];
    for topic in bad_topics {
        let r = app.post(&format!("/topics/{topic}"), None, "x").await;
        assert_problem(r, StatusCode::BAD_REQUEST, topic).await;
        let r = app.get(&format!("/topics/{topic}/events")).await;
        assert_problem(r, StatusCode::BAD_REQUEST, topic).await;
        let r = app.get(&format!("/topics/{topic}/messages")).await;
        assert_problem(r, StatusCode::BAD_REQUEST, topic).await;
    }
    for pattern in ["orders.*x", "**.a", "a..b", "", "a,b%20c"] {
        let r = app.get(&format!("/events?topic={pattern}")).await;
        assert_problem(r, StatusCode::BAD_REQUEST, pattern).await;
    }
    let r = app.get("/events").await;
    assert_problem(r, StatusCode::BAD_REQUEST, "no topic").await;

    for cursor in ["abc", "-1", "1.5", "99999999999999999999"] {
        let r = app
            .get(&format!("/topics/t/events?last_event_id={cursor}"))
            .await;
        assert_problem(r, StatusCode::BAD_REQUEST, cursor).await;
        let r = app
            .client
            .get(app.url("/topics/t/events"))
            .header("last-event-id", cursor)
            .send()
            .await
            .unwrap();
        let body = assert_problem(r, StatusCode::BAD_REQUEST, cursor).await;
        assert_eq!(body["type"], "urn:herald:problem:invalid-cursor");
    }

    let r = app
        .post("/topics/t", Some("application/json"), "{\"total\": ")
        .await;
    let body = assert_problem(r, StatusCode::BAD_REQUEST, "invalid json").await;
    assert_eq!(body["type"], "urn:herald:problem:invalid-json");
    let r = app.post("/topics/t", Some("application/json"), "").await;
    assert_problem(r, StatusCode::BAD_REQUEST, "empty json").await;
    let r = app
        .post("/topics/t", Some("text/plain"), vec![0x66, 0xff, 0xfe])
        .await;
    let body = assert_problem(r, StatusCode::BAD_REQUEST, "non-utf8").await;
    assert!(body["detail"].as_str().unwrap().contains("UTF-8"));
    let r = app.post("/topics/t", Some("text/plain"), "a\0b").await;
    let body = assert_problem(r, StatusCode::BAD_REQUEST, "NUL").await;
    assert!(body["detail"].as_str().unwrap().contains("NUL"));
    let r = app
        .post("/topics/t", Some("application/json"), r#"{"s":"\ud800"}"#)
        .await;
    assert_problem(r, StatusCode::BAD_REQUEST, "lone surrogate").await;
    let r = app.post("/topics/t?event=bad%20type", None, "x").await;
    assert_problem(r, StatusCode::BAD_REQUEST, "event type").await;
    // herald's own stream events: a message named so would pass for one.
    for name in ["gap", "join", "leave"] {
        let r = app
            .post(&format!("/topics/t?event={name}"), None, "x")
            .await;
        assert_problem(r, StatusCode::BAD_REQUEST, "reserved").await;
        let batch = format!("/topics/t/batch?event={name}");
        let r = app.post(&batch, Some("application/json"), "[1]").await;
        assert_problem(r, StatusCode::BAD_REQUEST, "reserved").await;
    }

    for q in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "after=abc",
        "limit=1&limit=2",
    ] {
        let r = app.get(&format!("/topics/t/messages?{q}")).await;
        assert_problem(r, StatusCode::BAD_REQUEST, q).await;
    }

    let r = app.get("/no/such/route").await;
    assert_problem(r, StatusCode::NOT_FOUND, "unknown route").await;
    let r = app.client.patch(app.url("/topics/t")).send().await.unwrap();
    assert_problem(r, StatusCode::METHOD_NOT_ALLOWED, "PATCH topic").await;
    let r = app
        .client
        .delete(app.url("/topics/t"))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "DELETE of an unknown topic").await;

    // Nothing above was stored.
    let topics: Value = app.get("/topics").await.json().await.unwrap();
    assert_eq!(topics["topics"], serde_json::json!([]));
    app.stop().await;
}

async fn a_body_over_the_limit_gets_413(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let app = spawn_app_with(db, &["--max-message-bytes", "1024"]).await;
    let r = app.post("/topics/t", None, "x".repeat(1025)).await;
    assert_problem(r, StatusCode::PAYLOAD_TOO_LARGE, "too large").await;
    let r = app.post("/topics/t", None, "x".repeat(1024)).await;
    assert_eq!(r.status(), 201);
    app.stop().await;
}

async fn a_locked_database_answers_503_and_recovers(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let app = spawn_app_with(db.clone(), &["--db-timeout-ms", "300"]).await;
    app.publish_text("t", "before").await;
    let lock =
        crate::helpers::DbLock::take(&db, "LOCK TABLE log_head IN ACCESS EXCLUSIVE MODE").await;

    let started = std::time::Instant::now();
    let r = app.post("/topics/t", None, "during").await;
    let retry_after = r.headers().get("retry-after").cloned();
    assert_problem(r, StatusCode::SERVICE_UNAVAILABLE, "locked").await;
    assert_eq!(retry_after.unwrap(), "1");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Reading still works while writes are locked out, but herald does
    // not claim to be ready for traffic it would refuse.
    assert_eq!(app.get("/topics/t/messages").await.status(), 200);
    let r = app.get("/readyz").await;
    assert_problem(r, StatusCode::SERVICE_UNAVAILABLE, "readyz while locked").await;

    lock.release().await;
    crate::helpers::eventually("readyz to answer 200 again", || async {
        (app.get("/readyz").await.status() == 200).then_some(())
    })
    .await;
    let ack = app.publish_text("t", "after").await;
    assert_eq!(ack.seq, 2, "the refused publish must not have taken a seq");
    assert_stream_sees(&app, ack.id).await;
    app.stop().await;
}

async fn assert_stream_sees(app: &TestApp, id: i64) {
    let mut sse = app
        .subscribe("/topics/t/events?last_event_id=0", None)
        .await;
    let ids: Vec<i64> = sse.messages(2).await.iter().map(|m| m.id).collect();
    assert_eq!(ids.last(), Some(&id));
}
