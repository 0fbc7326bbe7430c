//! What a pull subscription's ledger promises without waiting on the
//! deliverer: every message committed before a lease is a candidate for
//! it (the highest priority ready is leased first), and exhausted
//! deliveries become dead letters with no consumer pulling.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::pull::{create_pull, pull};

crate::on_both_backends!(a_pull_leases_the_highest_priority_committed_before_it);

/// Publishes `body` to `topic` at `priority`; returns its id.
async fn publish_at(app: &TestApp, topic: &str, priority: &str, body: &str) -> i64 {
    let path = format!("/topics/{topic}?priority={priority}");
    let r = app.post(&path, None, body.to_owned()).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// A priority-1 message, then a `high` one, both answered 201 before the
/// pull: the pull of one message leases the `high` one, every time (the
/// deliverer may have dispatched the first and not yet the second).
async fn a_pull_leases_the_highest_priority_committed_before_it(backend: Backend) {
    let app = spawn_app(backend).await;
    for trial in 0..30 {
        let topic = format!("jobs{trial}");
        let sub = create_pull(&app, &topic, json!({})).await;
        publish_at(&app, &topic, "1", "low").await;
        let high = publish_at(&app, &topic, "high", "high").await;
        let got = pull(&app, sub, 1, "5s").await;
        assert_eq!(got.len(), 1, "trial {trial}");
        assert_eq!(
            got[0].message.id, high,
            "trial {trial}: leased {:?} before the high-priority message",
            got[0].message.data
        );
    }
}
