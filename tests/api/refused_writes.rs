//! A database that refuses writes mid-run (full, read-only) while webhook
//! delivery writes beside the publishes: every publish is answered 201 or
//! 503 with `Retry-After`, never 500, and herald recovers by itself once
//! writes work again (issue 21: a webhook transaction that failed at
//! commit left the SQLite writer connection inside a transaction, and the
//! next publish's `BEGIN` failed with 500 "cannot start a transaction
//! within a transaction").

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;

use crate::helpers::{Backend, TestApp, TestDb, eventually, spawn_app_with};
use crate::readiness::{Immutable, read_only_postgres};
use crate::receiver::{Behaviour, Receiver};
use crate::webhooks::subscribe;

crate::on_both_backends!(a_database_turned_read_only_mid_run_answers_503_never_500);

/// Four clients publishing 1 KiB JSON (as the red team did) until `stop`;
/// returns every status they got that was neither 201 nor 503 with
/// `Retry-After`, and how many 503s there were.
async fn publish_until(app: &TestApp, stop: Arc<AtomicBool>) -> (Vec<String>, usize) {
    let payload = json!({"pad": "x".repeat(1000)}).to_string();
    let clients = (0..4).map(|_| {
        let (client, url, stop) = (app.client.clone(), app.url("/topics/t"), stop.clone());
        let payload = payload.clone();
        tokio::spawn(async move {
            let (mut bad, mut refused) = (Vec::new(), 0);
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(payload.clone())
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    201 => {}
                    503 if r.headers().contains_key("retry-after") => refused += 1,
                    status => bad.push(format!("{status}: {}", r.text().await.unwrap())),
                }
            }
            (bad, refused)
        })
    });
    let mut all = (Vec::new(), 0);
    for c in clients.collect::<Vec<_>>() {
        let (bad, refused) = c.await.unwrap();
        all.0.extend(bad);
        all.1 += refused;
    }
    all
}

/// A webhook subscription on `t` whose endpoint fails, so that delivery
/// keeps writing (dispatch, retries, dead letters) on the writer.
async fn failing_webhook(app: &TestApp) -> Receiver {
    let receiver = Receiver::start(Behaviour::Fail(500)).await;
    subscribe(
        app,
        json!({"topic": "t", "url": receiver.url, "min_backoff_ms": 1, "max_backoff_ms": 5, "max_attempts": 2}),
    )
    .await;
    receiver
}

/// Until a publish is answered 503.
async fn refused(app: &TestApp) {
    eventually("a publish to be refused", || async {
        let r = app.post("/topics/probe", None, "x").await;
        (r.status() == 503).then_some(())
    })
    .await;
}

async fn publish_ok(app: &TestApp) {
    eventually("a publish to succeed again", || async {
        let r = app.post("/topics/t", None, "after").await;
        (r.status() == 201).then_some(())
    })
    .await;
}

/// SQLite on a "disk" that fills up: the file is capped at 160 pages
/// (`PRAGMA max_page_count`, so SQLITE_FULL comes as on a full file
/// system, without one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_full_disk_with_a_webhook_answers_503_never_500() {
    let db = TestDb::new(&Backend::Sqlite).await;
    let flags = [
        "--sqlite-max-page-count",
        "160",
        "--webhook-allow-private",
        "--webhook-poll-ms",
        "5",
        "--db-timeout-ms",
        "1000",
    ];
    let app = spawn_app_with(db, &flags).await;
    let _receiver = failing_webhook(&app).await;
    let stop = Arc::new(AtomicBool::new(false));
    let filled = async {
        refused(&app).await;
        stop.store(true, Ordering::Relaxed);
    };
    let ((bad, refused), ()) = tokio::join!(publish_until(&app, stop.clone()), filled);
    assert!(bad.is_empty(), "answers other than 201/503: {bad:?}");
    assert!(refused > 0, "the disk never filled up");
    // Space comes back: the topic's messages are deleted.
    let r = app
        .client
        .delete(app.url("/topics/t"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    publish_ok(&app).await;
    app.stop().await;
}

async fn a_database_turned_read_only_mid_run_answers_503_never_500(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let flags = [
        "--webhook-allow-private",
        "--webhook-poll-ms",
        "5",
        "--db-timeout-ms",
        "500",
    ];
    let app = spawn_app_with(db.clone(), &flags).await;
    let _receiver = failing_webhook(&app).await;
    let stop = Arc::new(AtomicBool::new(false));
    let flip = async {
        // Publishes and deliveries run, then writes are refused for a while.
        app.publish_text("t", "before").await;
        match db.postgres_names() {
            Some((admin, name)) => {
                read_only_postgres(admin, name, true).await;
                for _ in 0..30 {
                    refused(&app).await;
                }
                read_only_postgres(admin, name, false).await;
            }
            None => {
                let file = PathBuf::from(db.url.trim_start_matches("sqlite://"));
                if let Some(_immutable) = Immutable::set(&file) {
                    for _ in 0..30 {
                        refused(&app).await;
                    }
                } else {
                    eprintln!("skipped the read-only part: chattr +i is not permitted here");
                }
            }
        }
        publish_ok(&app).await;
        stop.store(true, Ordering::Relaxed);
    };
    let ((bad, _), ()) = tokio::join!(publish_until(&app, stop.clone()), flip);
    assert!(bad.is_empty(), "answers other than 201/503: {bad:?}");
    app.stop().await;
}

/// The red team's reproduction: SQLite on a 2 MiB file system holding a
/// 1 MiB ballast file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_small_file_system_with_a_webhook_answers_503_never_500() {
    let Some(disk) = crate::readiness::SmallDisk::mount(2) else {
        eprintln!("skipped: mounting a tmpfs is not permitted here");
        return;
    };
    std::fs::write(disk.0.path().join("ballast"), vec![1u8; 1024 * 1024]).unwrap();
    let db = TestDb::sqlite_at(&disk.0.path().join("herald.db"));
    let flags = [
        "--webhook-allow-private",
        "--webhook-poll-ms",
        "5",
        "--db-timeout-ms",
        "1000",
    ];
    let app = spawn_app_with(db, &flags).await;
    let _receiver = failing_webhook(&app).await;
    let stop = Arc::new(AtomicBool::new(false));
    let filled = async {
        for _ in 0..50 {
            refused(&app).await;
        }
        stop.store(true, Ordering::Relaxed);
    };
    let ((bad, refused), ()) = tokio::join!(publish_until(&app, stop.clone()), filled);
    assert!(bad.is_empty(), "answers other than 201/503: {bad:?}");
    assert!(refused > 0, "the disk never filled up");
    std::fs::remove_file(disk.0.path().join("ballast")).unwrap();
    publish_ok(&app).await;
    app.stop().await;
}
