//! Every publish is answered within `--db-timeout-ms` plus the writer's
//! stated margin (250 ms) while another client holds the log's lock, also
//! the publishes queued behind one that is already waiting (issue 21: they
//! took twice the timeout, waiting out the one before them first).

use std::time::{Duration, Instant};

use crate::helpers::{Backend, TestApp, TestDb, spawn_app_with};

crate::on_both_backends!(publishes_queued_behind_a_lock_wait_are_answered_within_the_timeout);

const TIMEOUT: Duration = Duration::from_millis(1000);
/// `herald::fanout::writer::ANSWER_MARGIN`.
const MARGIN: Duration = Duration::from_millis(250);

/// Publishes and says how long the answer took, and its status.
async fn timed_publish(app: &TestApp) -> (u16, Duration) {
    let start = Instant::now();
    let r = app.post("/topics/t", None, "x").await;
    (r.status().as_u16(), start.elapsed())
}

async fn publishes_queued_behind_a_lock_wait_are_answered_within_the_timeout(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let ms = TIMEOUT.as_millis().to_string();
    let app = spawn_app_with(db.clone(), &["--db-timeout-ms", &ms]).await;
    app.publish_text("t", "before").await;
    let holder =
        crate::helpers::DbLock::take(&db, "SELECT head FROM log_head WHERE id = 1 FOR UPDATE")
            .await;

    // The first publish waits for the lock; the next ones queue behind it.
    let first = tokio::spawn({
        let (client, url) = (app.client.clone(), app.url("/topics/t"));
        async move {
            let start = Instant::now();
            let r = client.post(url).body("first").send().await.unwrap();
            (r.status().as_u16(), start.elapsed())
        }
    });
    // Well after the first has reached the writer, and well before its
    // wait ends (a poll could not tell the two apart from outside).
    tokio::time::sleep(TIMEOUT / 4).await;
    let queued = futures_util::future::join_all((0..3).map(|_| timed_publish(&app))).await;
    let mut answers = vec![first.await.unwrap()];
    answers.extend(queued);
    eprintln!("answers (status, time): {answers:?}");
    for (status, took) in &answers {
        assert_eq!(*status, 503, "{answers:?}");
        assert!(
            *took < TIMEOUT + MARGIN,
            "answered after {took:?}: {answers:?}"
        );
    }

    holder.release().await;
    assert_eq!(app.publish_text("t", "after").await.seq, 2);
    app.stop().await;
}
