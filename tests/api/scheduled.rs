//! Scheduled publish: `?delay=` and `?at=`, `/scheduled`, restarts, two
//! nodes, and cancellation racing the due time.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, TestApp, TestDb, eventually, spawn_app, spawn_app_with};
use crate::idempotency::{problem, stored};

crate::on_both_backends!(
    scheduled_messages_are_appended_at_their_time_in_order,
    schedules_are_listed_shown_cancelled_and_bad_times_refused,
    schedules_survive_a_restart,
    cancelling_at_the_due_time_either_cancels_or_appends,
);

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

async fn schedule(app: &TestApp, path: &str, body: &str) -> Value {
    let r = app.post(path, None, body.to_owned()).await;
    assert_eq!(r.status(), 202, "{path}: {:?}", r.text().await);
    r.json().await.unwrap()
}

/// Waits until `topic` has no schedule left.
async fn drained(app: &TestApp, topic: &str) {
    eventually("the schedules to be appended", || async {
        let list: Value = app
            .get(&format!("/scheduled?topic={topic}"))
            .await
            .json()
            .await
            .ok()?;
        list["scheduled"].as_array()?.is_empty().then_some(())
    })
    .await
}

async fn scheduled_messages_are_appended_at_their_time_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut sse = app.subscribe("/topics/s/events", None).await;
    let at = rfc3339(chrono::Utc::now() + chrono::Duration::milliseconds(800));
    let mut ids = Vec::new();
    for i in 0..3 {
        let path = format!("/topics/s?at={at}&priority=high&key=k&event=later");
        let answer = schedule(&app, &path, &format!("m{i}")).await;
        assert_eq!(answer["topic"], "s");
        ids.push(
            answer["schedule_id"]
                .as_i64()
                .expect("a numeric schedule id"),
        );
    }
    let deliver_at = chrono::DateTime::parse_from_rfc3339(&at).unwrap();
    let got = sse.messages(3).await;
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.data, format!("m{i}"), "in order of scheduling");
        assert_eq!(m.event, "later");
        let time = chrono::DateTime::parse_from_rfc3339(&m.time).unwrap();
        assert!(
            time >= deliver_at,
            "appended at {time}, before {deliver_at}"
        );
    }
    assert_eq!(got.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3]);
    let stored = stored(&app, "s").await;
    assert_eq!(stored[0]["priority"], 4);
    assert_eq!(stored[0]["key"], "k");
    let r = app.get(&format!("/scheduled/{}", ids[0])).await;
    assert_eq!(r.status(), 404, "appended: no longer scheduled");

    // A time in the past is due at once.
    schedule(&app, "/topics/s?at=2020-01-01T00:00:00Z", "past").await;
    assert_eq!(sse.messages(1).await[0].data, "past");
}

async fn schedules_are_listed_shown_cancelled_and_bad_times_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = schedule(&app, "/topics/x?delay=1h", "a").await;
    let b = schedule(&app, "/topics/y?delay=2h&key=kb", "b").await;
    let id = a["schedule_id"].as_i64().expect("a numeric schedule id");
    let one: Value = app
        .get(&format!("/scheduled/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["data"], "a");
    assert_eq!(one["deliver_at"], a["deliver_at"]);
    let all: Value = app.get("/scheduled?limit=1").await.json().await.unwrap();
    assert_eq!(all["scheduled"].as_array().unwrap().len(), 1);
    let next = all["next"].as_i64().expect("a numeric next");
    let rest: Value = app
        .get(&format!("/scheduled?after={next}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["scheduled"][0]["schedule_id"], b["schedule_id"]);
    assert_eq!(rest["scheduled"][0]["key"], "kb");

    let r = app
        .client
        .delete(app.url(&format!("/scheduled/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .client
        .delete(app.url(&format!("/scheduled/{id}")))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::NOT_FOUND, "not-found").await;
    problem(
        app.get("/scheduled/abc").await,
        StatusCode::BAD_REQUEST,
        "invalid-path",
    )
    .await;

    for bad in [
        "delay=soon",
        "delay=31d",
        "at=tomorrow",
        "at=2099-01-01T00:00:00Z",
        "delay=1m&at=2026-12-01T09:00:00Z",
        "priority=6",
        "priority=urgent",
        "key=%C3%A9",
    ] {
        let r = app.post(&format!("/topics/x?{bad}"), None, "x").await;
        problem(r, StatusCode::BAD_REQUEST, "invalid-query").await;
    }
    let list: Value = app.get("/scheduled?topic=x").await.json().await.unwrap();
    assert!(list["scheduled"].as_array().unwrap().is_empty());
}

async fn schedules_survive_a_restart(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let app = spawn_app_with(db.clone(), &[]).await;
    schedule(&app, "/topics/r?delay=1s", "after restart").await;
    app.stop().await;
    let app = spawn_app_with(db, &[]).await;
    drained(&app, "r").await;
    let stored = stored(&app, "r").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["data"], "after restart");
}

/// Each of 40 schedules due at one moment is cancelled at that moment:
/// every one is either cancelled (`204`, never appended) or appended
/// (`404`, appended once), never both.
async fn cancelling_at_the_due_time_either_cancels_or_appends(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    let due = chrono::Utc::now() + chrono::Duration::milliseconds(600);
    let at = rfc3339(due);
    let mut ids = Vec::new();
    for i in 0..40 {
        let answer = schedule(&app, &format!("/topics/race?at={at}"), &i.to_string()).await;
        ids.push((i, answer["schedule_id"].as_i64().unwrap()));
    }
    // Race the scheduler: start cancelling just before the due time.
    let start = (due - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(start.saturating_sub(Duration::from_millis(20))).await;
    let cancels: Vec<_> = ids
        .into_iter()
        .map(|(i, id)| {
            let app = app.clone();
            tokio::spawn(async move {
                let r = app
                    .client
                    .delete(app.url(&format!("/scheduled/{id}")))
                    .send()
                    .await
                    .unwrap();
                (i, r.status())
            })
        })
        .collect();
    let mut appended = Vec::new();
    for c in cancels {
        let (i, status) = c.await.unwrap();
        match status {
            StatusCode::NO_CONTENT => {}
            StatusCode::NOT_FOUND => appended.push(i.to_string()),
            other => panic!("cancel answered {other}"),
        }
    }
    drained(&app, "race").await;
    let mut got: Vec<String> = stored(&app, "race")
        .await
        .iter()
        .map(|m| m["data"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    appended.sort();
    assert_eq!(got, appended, "appended exactly the ones not cancelled");
}

/// Two nodes on one Postgres, each scheduling half of 300 messages for one
/// moment: every message is appended exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Postgres: set HERALD_TEST_POSTGRES_URL, run with --run-ignored all"]
async fn two_nodes_append_each_schedule_exactly_once() {
    let db = TestDb::new(&Backend::postgres()).await;
    let a = spawn_app_with(db.clone(), &[]).await;
    let b = spawn_app_with(db.clone(), &[]).await;
    let at = rfc3339(chrono::Utc::now() + chrono::Duration::milliseconds(1500));
    for i in 0..150 {
        for (app, node) in [(&a, "a"), (&b, "b")] {
            let body = format!("[\"{node}{i}\", \"{node}{i}'\"]");
            let r = app
                .post(
                    &format!("/topics/two/batch?at={at}"),
                    Some("application/json"),
                    body.clone(),
                )
                .await;
            assert_eq!(r.status(), 202, "node {node}");
        }
    }
    // A schedule leaves the table in the transaction that appends it.
    drained(&a, "two").await;
    let all = stored(&b, "two").await;
    let mut data: Vec<String> = all
        .iter()
        .map(|m| m["data"].as_str().unwrap().to_owned())
        .collect();
    data.sort();
    data.dedup();
    assert_eq!(all.len(), 600, "every schedule appended, none twice");
    assert_eq!(data.len(), 600);
    let seqs: Vec<i64> = all.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=600).collect::<Vec<_>>());
}
