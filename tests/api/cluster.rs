//! Several herald nodes on one Postgres database (Postgres only).

use std::sync::Arc;

use serde_json::json;

use crate::helpers::{Backend, Envelope, TestDb, spawn_app_with};

async fn postgres() -> Arc<TestDb> {
    TestDb::new(&Backend::postgres()).await
}

fn assert_exact(got: &[Envelope], total: i64) {
    let ids: Vec<i64> = got.iter().map(|m| m.id).collect();
    assert_eq!(
        ids,
        (1..=total).collect::<Vec<_>>(),
        "positions out of order, missing or repeated"
    );
    for topic in ["a", "b"] {
        let seqs: Vec<i64> = got
            .iter()
            .filter(|m| m.topic == topic)
            .map(|m| m.seq)
            .collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as i64).collect::<Vec<_>>(),
            "{topic} seqs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Postgres: set HERALD_TEST_POSTGRES_URL, run with --run-ignored all"]
async fn two_nodes_publishing_at_once_deliver_every_message_once_in_order() {
    let db = postgres().await;
    let nodes = [
        Arc::new(spawn_app_with(db.clone(), &[]).await),
        Arc::new(spawn_app_with(db.clone(), &[]).await),
    ];
    let mut live_a = nodes[0].subscribe("/events?topic=a&topic=b", None).await;
    let mut live_b = nodes[1].subscribe("/events?topic=a&topic=b", None).await;

    const PER_PUBLISHER: i64 = 100;
    let publishers: Vec<_> = (0..4)
        .map(|p| {
            let node = nodes[p % 2].clone();
            tokio::spawn(async move {
                for i in 0..PER_PUBLISHER {
                    let topic = if i % 2 == 0 { "a" } else { "b" };
                    node.publish_json(topic, json!({"p": p, "i": i})).await;
                }
            })
        })
        .collect();
    for p in publishers {
        p.await.unwrap();
    }
    let total = 4 * PER_PUBLISHER;
    assert_exact(&live_a.messages(total as usize).await, total);
    assert_exact(&live_b.messages(total as usize).await, total);
    // A late reader on either node replays the same log.
    let mut replay = nodes[1]
        .subscribe("/events?topic=a&topic=b&last_event_id=0", None)
        .await;
    assert_exact(&replay.messages(total as usize).await, total);

    for node in nodes {
        Arc::into_inner(node).unwrap().stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Postgres: set HERALD_TEST_POSTGRES_URL, run with --run-ignored all"]
async fn a_database_that_goes_away_answers_503_and_herald_recovers() {
    let db = postgres().await;
    let app = spawn_app_with(db.clone(), &["--db-timeout-ms", "500"]).await;
    app.publish_text("t", "before").await;

    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let admin = std::env::var("HERALD_TEST_POSTGRES_URL").unwrap();
    let mut conn = {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&admin).await.unwrap()
    };
    let set = |allow: bool| {
        sqlx::AssertSqlSafe(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {allow}"))
    };
    sqlx::query(set(false)).execute(&mut conn).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    )))
    .execute(&mut conn)
    .await
    .unwrap();

    let r = app.post("/topics/t", None, "during").await;
    let status = r.status();
    let retry_after = r.headers().get("retry-after").cloned();
    assert_eq!(status, 503, "{:?}", r.text().await);
    let r = (retry_after,);
    assert_eq!(r.0.unwrap(), "1");
    assert_eq!(app.get("/readyz").await.status(), 503);

    sqlx::query(set(true)).execute(&mut conn).await.unwrap();
    let ack = crate::helpers::eventually("publishing to work again", || async {
        let r = app.post("/topics/t", None, "after").await;
        if r.status() == 201 {
            r.json::<crate::helpers::Ack>().await.ok()
        } else {
            None
        }
    })
    .await;
    assert_eq!(ack.seq, 2);
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Postgres: set HERALD_TEST_POSTGRES_URL, run with --run-ignored all"]
async fn two_nodes_share_topic_configuration_and_what_one_prunes() {
    let db = postgres().await;
    // Only node a prunes (b's pruner waits an hour): b must still serve
    // exactly what a kept, and tell its resumers of the gap.
    let a = spawn_app_with(db.clone(), &["--prune-interval", "50ms"]).await;
    let b = spawn_app_with(db.clone(), &["--prune-interval", "1h"]).await;
    let schema = json!({"type": "object", "required": ["n"]});
    let r = a
        .client
        .put(a.url("/topics/t"))
        .json(&json!({"retention": {"max_messages": 2}, "schema": schema}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // b applies a's schema within its refresh (one second).
    crate::helpers::eventually("b to apply a's schema", || async {
        let r = b.post("/topics/t", Some("application/json"), "{}").await;
        (r.status() == 422).then_some(())
    })
    .await;
    let mut ids = Vec::new();
    for n in 1..=4 {
        ids.push(b.publish_json("t", json!({"n": n})).await.id);
    }
    let seqs = |node: &crate::helpers::TestApp| {
        let url = node.url("/topics/t/messages");
        let client = node.client.clone();
        async move {
            let page: serde_json::Value =
                client.get(url).send().await.unwrap().json().await.unwrap();
            page["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["seq"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    crate::helpers::eventually("a to prune", || async {
        (seqs(&a).await == [3, 4]).then_some(())
    })
    .await;
    assert_eq!(seqs(&b).await, [3, 4], "b serves only what is retained");
    let mut sse = b.subscribe("/topics/t/events", Some("0")).await;
    let gap = sse.next_event().await.unwrap();
    assert_eq!(gap.event, "gap");
    let got: Vec<i64> = sse.messages(2).await.iter().map(|m| m.id).collect();
    assert_eq!(got, ids[2..]);
    a.stop().await;
    b.stop().await;
}
