//! A bulk redrive while dead letters keep arriving moves every one of
//! them: none is deleted without being queued again (issue 39, item 2).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use super::pull::{ack, create_pull, nack, post_json, publish_many, pull};
use crate::helpers::{Backend, DEADLINE, TestApp, TestDb, spawn_app_with};
use crate::on_both_backends;

on_both_backends!(a_bulk_redrive_during_burials_loses_no_dead_letter);

/// Messages in the churn.
const MESSAGES: usize = 1_500;
/// Consumers that nack all they lease.
const BURIERS: usize = 4;
/// Bulk redrives that move dead letters while consumers keep burying.
const REDRIVES: usize = 40;

/// Consumers nack everything it leases (`max_attempts: 1`, so each
/// nack makes a dead letter) while another client redrives the
/// subscription's dead letters over and over. Then every message must
/// still come back: a dead letter committed while a redrive ran was lost
/// on Postgres when the redrive copied and deleted in two statements.
async fn a_bulk_redrive_during_burials_loses_no_dead_letter(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let app = Arc::new(spawn_app_with(db.clone(), &[]).await);
    if db.is_postgres() {
        slow_requeues(&db.url).await;
    }
    let sub = create_pull(&app, "jobs", json!({"max_attempts": 1})).await;
    let mut published = BTreeSet::new();
    for from in (0..MESSAGES).step_by(500) {
        published.extend(publish_many(&app, "jobs", from, 500).await);
    }
    let done = Arc::new(AtomicBool::new(false));
    let buriers: Vec<_> = (0..BURIERS)
        .map(|_| {
            let (app, done) = (app.clone(), done.clone());
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    let got = pull(&app, sub, 200, "0s").await;
                    let ids: Vec<&str> = got.iter().map(|p| p.ack_id.as_str()).collect();
                    if !ids.is_empty() {
                        nack(&app, sub, &ids, "0s").await;
                    }
                }
            })
        })
        .collect();
    // Redrive until REDRIVES of them moved something (a redrive that ran
    // before the first burial moves nothing and races nothing).
    let (mut moved, mut racing) = (0, 0);
    let start = tokio::time::Instant::now();
    while racing < REDRIVES && start.elapsed() < DEADLINE {
        let n = redrive_all(&app, sub).await;
        moved += n;
        racing += usize::from(n > 0);
    }
    done.store(true, Ordering::Relaxed);
    for b in buriers {
        b.await.unwrap();
    }
    assert!(
        moved > 0,
        "the churn redrove nothing: the test did not race"
    );

    // Everything comes back: pull and ack, redriving what was buried last.
    let mut acked = BTreeSet::new();
    let start = tokio::time::Instant::now();
    while acked.len() < published.len() {
        assert!(
            start.elapsed() < DEADLINE * 3,
            "only {} of {} messages came back; lost: {:?}",
            acked.len(),
            published.len(),
            published.difference(&acked).take(10).collect::<Vec<_>>()
        );
        let got = pull(&app, sub, 500, "0s").await;
        if got.is_empty() {
            redrive_all(&app, sub).await;
            continue;
        }
        let ids: Vec<&str> = got.iter().map(|p| p.ack_id.as_str()).collect();
        ack(&app, sub, &ids).await;
        acked.extend(got.iter().map(|p| p.message.id));
    }
    assert_eq!(acked, published);
}

async fn redrive_all(app: &TestApp, sub: i64) -> u64 {
    let r = post_json(app, "/dead-letters/redrive", json!({"subscription": sub})).await;
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let v: Value = r.json().await.unwrap();
    v["redriven"].as_u64().unwrap()
}

/// Widens the race on Postgres: each redriven row (the only rows that
/// enter `retries` with an envelope) takes a millisecond to insert, so
/// burials commit while a redrive is under way. SQLite has one writer:
/// nothing commits in between there.
async fn slow_requeues(url: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    for sql in [
        "CREATE FUNCTION slow_requeue() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_sleep(0.001); RETURN NEW; END $$",
        "CREATE TRIGGER slow_requeue BEFORE INSERT ON retries FOR EACH ROW \
         WHEN (NEW.envelope IS NOT NULL) EXECUTE FUNCTION slow_requeue()",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
}
