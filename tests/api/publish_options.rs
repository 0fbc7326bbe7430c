//! `?priority=` and `?key=` in the envelope and in filters, and
//! backpressure: a flood against a database that is made slow is refused
//! in bounded time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Backend, DbLock, TestDb, spawn_app, spawn_app_with};

crate::on_both_backends!(
    priority_and_key_reach_the_envelope_and_filters,
    a_flood_against_a_locked_database_is_refused_in_bounded_time,
);

async fn priority_and_key_reach_the_envelope_and_filters(backend: Backend) {
    let app = spawn_app(backend).await;
    let filter = urlencoding("priority >= 4 && key == \"vip\"");
    let mut vip = app
        .subscribe(&format!("/topics/p/events?filter={filter}"), None)
        .await;
    let mut all = app.subscribe("/topics/p/events", None).await;
    for query in [
        "",
        "?priority=max",
        "?priority=high&key=vip",
        "?key=vip",
        "?priority=5&key=vip",
    ] {
        let r = app
            .post(&format!("/topics/p{query}"), None, query.to_owned())
            .await;
        assert_eq!(r.status(), 201);
    }
    let r = app
        .post(
            "/topics/p/batch?priority=max&key=vip",
            Some("application/json"),
            "[1, 2]",
        )
        .await;
    assert_eq!(r.status(), 201);

    let got: Vec<_> = vip.messages(4).await.into_iter().map(|m| m.data).collect();
    assert_eq!(
        got,
        [
            json!("?priority=high&key=vip"),
            json!("?priority=5&key=vip"),
            json!(1),
            json!(2)
        ]
    );
    let page: serde_json::Value = app.get("/topics/p/messages").await.json().await.unwrap();
    let first = &page["messages"][0];
    assert_eq!(first["priority"], 3, "the default is in every envelope");
    assert!(first.get("key").is_none(), "no key when none was given");
    assert_eq!(page["messages"][2]["priority"], 4);
    assert_eq!(page["messages"][2]["key"], "vip");
    assert_eq!(all.messages(7).await.len(), 7);
}

fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// 64 clients publish at once while another client holds the write lock:
/// beyond `--max-pending-publishes` they are refused at once, the rest
/// when `--db-timeout-ms` runs out; every answer is a 503 with
/// `Retry-After`, none waits unboundedly, and the refusals are counted.
async fn a_flood_against_a_locked_database_is_refused_in_bounded_time(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let flags = ["--max-pending-publishes", "8", "--db-timeout-ms", "500"];
    let app = Arc::new(spawn_app_with(db.clone(), &flags).await);
    app.publish_text("f", "before").await;
    let lock = DbLock::take(&db, "SELECT head FROM log_head WHERE id = 1 FOR UPDATE").await;
    let clients: Vec<_> = (0..64)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let r = app.post("/topics/f", None, format!("flood {i}")).await;
                let elapsed = started.elapsed();
                let retry = r.headers().get("retry-after").is_some();
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                (body, retry, elapsed)
            })
        })
        .collect();
    let mut overloaded = 0;
    for c in clients {
        let (body, retry, elapsed) = c.await.unwrap();
        assert_eq!(body["status"], 503, "{body}");
        assert!(retry, "503 carries Retry-After");
        // db-timeout (500 ms) + the answer margin (250 ms) + scheduling.
        assert!(
            elapsed < Duration::from_millis(2500),
            "answered after {elapsed:?}"
        );
        if body["type"] == "urn:herald:problem:overloaded" {
            overloaded += 1;
        }
    }
    assert!(
        overloaded >= 64 - 8 - 8,
        "refused at once beyond the bound: {overloaded}"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("herald_publish_rejected_total{reason=\"overloaded\"}"))
        .unwrap_or_else(|| panic!("no rejection counter in:\n{metrics}"));
    let counted: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(counted >= overloaded as f64, "{line}");
    lock.release().await;
    app.publish_text("f", "after").await;
}
