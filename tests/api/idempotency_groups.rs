//! A client retrying a recorded Idempotency-Key costs the publishes
//! grouped with it nothing (issue 39, item 4): its replay is answered and
//! the rest of the group still commits as one transaction, not one
//! transaction each.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::helpers::{Ack, Backend, TestApp, spawn_app};

crate::on_both_backends!(replayed_keys_leave_the_others_grouped);

/// Concurrent publishers of fresh messages.
const PUBLISHERS: usize = 16;
/// Messages each publishes, one request at a time.
const EACH: usize = 25;
/// Clients that keep re-sending one recorded key.
const REPLAYERS: usize = 4;

/// While replayers re-send recorded keys as fast as they are answered,
/// sixteen publishers send fresh messages. Every replay is a replay of the
/// original, every fresh message is stored once, and the fresh messages
/// still share transactions: a group commit gives its messages one
/// `time`, so the distinct times count the commits. Before, each group
/// that a replay joined failed and committed every request alone (as
/// many commits as messages).
async fn replayed_keys_leave_the_others_grouped(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    let originals: Vec<i64> = futures_util::future::join_all((0..REPLAYERS).map(|i| {
        let app = app.clone();
        async move { keyed(&app, &format!("retry-{i}")).await.0 }
    }))
    .await;
    let done = Arc::new(AtomicBool::new(false));
    let replays = Arc::new(AtomicUsize::new(0));
    let replayers: Vec<_> = (0..REPLAYERS)
        .map(|i| {
            let (app, done, replays) = (app.clone(), done.clone(), replays.clone());
            let original = originals[i];
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    let (id, replayed) = keyed(&app, &format!("retry-{i}")).await;
                    assert!(replayed, "a recorded key answered as a new publish");
                    assert_eq!(id, original, "a replay answers the original ack");
                    replays.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let publishers = (0..PUBLISHERS).map(|p| {
        let app = app.clone();
        async move {
            let mut acks = Vec::new();
            for n in 0..EACH {
                acks.push(app.publish_text("jobs", &format!("{p}-{n}")).await);
            }
            acks
        }
    });
    let acks: Vec<Ack> = futures_util::future::join_all(publishers)
        .await
        .into_iter()
        .flatten()
        .collect();
    done.store(true, Ordering::Relaxed);
    for r in replayers {
        r.await.unwrap();
    }
    assert!(replays.load(Ordering::Relaxed) > 0, "nothing was replayed");
    let ids: BTreeSet<i64> = acks.iter().map(|a| a.id).collect();
    assert_eq!(
        ids.len(),
        PUBLISHERS * EACH,
        "a fresh message was stored twice"
    );
    let commits: BTreeSet<&str> = acks.iter().map(|a| a.time.as_str()).collect();
    assert!(
        commits.len() * 2 <= acks.len(),
        "{} messages took {} commits: replays broke up the groups",
        acks.len(),
        commits.len()
    );
    Arc::into_inner(app).unwrap().stop().await;
}

/// Publishes with an Idempotency-Key; the ack's id and whether it was a
/// replay.
async fn keyed(app: &TestApp, key: &str) -> (i64, bool) {
    let r = app
        .client
        .post(app.url("/topics/jobs"))
        .header("idempotency-key", key)
        .body(format!("once: {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{key}");
    let replayed = r.headers().get("idempotent-replayed").is_some();
    let ack: Ack = r.json().await.unwrap();
    (ack.id, replayed)
}
