//! Resume: `Last-Event-ID`, `?last_event_id=`, `earliest`, and exactness
//! while publishers keep writing.

use std::sync::Arc;

use serde_json::json;

use crate::helpers::{Backend, spawn_app};

crate::on_both_backends!(
    last_event_id_resumes_after_that_id_then_goes_live,
    earliest_replays_all_history_then_goes_live,
    the_header_wins_over_the_query_parameter,
    resume_is_exact_while_publishers_write,
    resuming_a_multi_topic_stream_skips_other_topics,
    a_cursor_beyond_the_log_gets_a_gap_and_then_new_messages,
);

async fn a_cursor_beyond_the_log_gets_a_gap_and_then_new_messages(backend: Backend) {
    // A client that remembers an id from a database that was since
    // recreated must not wait silently for the new log to catch up.
    let app = spawn_app(backend).await;
    let mut head = app.publish_json("g", json!(1)).await.id;
    for cursor in ["5000", "9223372036854775807"] {
        let mut sse = app.subscribe("/topics/g/events", Some(cursor)).await;
        let gap = sse.next_event().await.unwrap();
        assert_eq!(gap.event, "gap");
        assert_eq!(gap.id, head.to_string());
        let data: serde_json::Value = serde_json::from_str(&gap.data).unwrap();
        assert_eq!(data["resumed_from"], head);
        let next = app.publish_json("g", json!("after")).await;
        assert_eq!(sse.messages(1).await[0].id, next.id);
        head = next.id;
    }
    app.stop().await;
}

async fn last_event_id_resumes_after_that_id_then_goes_live(backend: Backend) {
    let app = spawn_app(backend).await;
    let acks: Vec<_> = {
        let mut v = Vec::new();
        for i in 0..5 {
            v.push(app.publish_json("r", json!(i)).await);
        }
        v
    };
    let mut sse = app
        .subscribe("/topics/r/events", Some(&acks[1].id.to_string()))
        .await;
    let live = app.publish_json("r", json!("live")).await;
    let ids: Vec<i64> = sse.messages(4).await.iter().map(|m| m.id).collect();
    assert_eq!(ids, [acks[2].id, acks[3].id, acks[4].id, live.id]);

    let mut q = app
        .subscribe(
            &format!("/topics/r/events?last_event_id={}", acks[3].id),
            None,
        )
        .await;
    let ids: Vec<i64> = q.messages(2).await.iter().map(|m| m.id).collect();
    assert_eq!(ids, [acks[4].id, live.id]);
    app.stop().await;
}

async fn earliest_replays_all_history_then_goes_live(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..3 {
        app.publish_json("e", json!(i)).await;
    }
    let mut sse = app
        .subscribe("/topics/e/events?last_event_id=earliest", None)
        .await;
    app.publish_json("e", json!(3)).await;
    let data: Vec<_> = sse.messages(4).await.into_iter().map(|m| m.data).collect();
    assert_eq!(data, [json!(0), json!(1), json!(2), json!(3)]);
    app.stop().await;
}

async fn the_header_wins_over_the_query_parameter(backend: Backend) {
    // A browser's EventSource keeps its URL and adds Last-Event-ID when it
    // reconnects: the header is the newer cursor.
    let app = spawn_app(backend).await;
    for i in 0..4 {
        app.publish_json("h", json!(i)).await;
    }
    let mut sse = app
        .subscribe("/topics/h/events?last_event_id=earliest", Some("3"))
        .await;
    assert_eq!(sse.messages(1).await[0].id, 4);
    app.stop().await;
}

async fn resume_is_exact_while_publishers_write(backend: Backend) {
    const TOTAL: i64 = 400;
    let app = Arc::new(spawn_app(backend).await);
    // Publishers run throughout; subscribers join at different cursors
    // while they do, so the storage-to-live hand-over happens under load.
    let publishers: Vec<_> = (0..4)
        .map(|w| {
            let app = app.clone();
            tokio::spawn(async move {
                for i in 0..TOTAL / 4 {
                    app.publish_json("load", json!({"w": w, "i": i})).await;
                }
            })
        })
        .collect();
    let mut subscribers = Vec::new();
    for cursor in [0, 40, 120, 200] {
        crate::helpers::eventually("enough messages to resume from", || async {
            let t: serde_json::Value = app.get("/topics/load").await.json().await.ok()?;
            (t["last_seq"].as_i64()? >= cursor).then_some(())
        })
        .await;
        let app = app.clone();
        subscribers.push(tokio::spawn(async move {
            let mut sse = app
                .subscribe("/topics/load/events", Some(&cursor.to_string()))
                .await;
            let ids: Vec<i64> = sse
                .messages((TOTAL - cursor) as usize)
                .await
                .iter()
                .map(|m| m.id)
                .collect();
            (cursor, ids)
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
    for s in subscribers {
        let (cursor, ids) = s.await.unwrap();
        assert_eq!(
            ids,
            (cursor + 1..=TOTAL).collect::<Vec<_>>(),
            "resumed after {cursor}"
        );
    }
    Arc::into_inner(app).unwrap().stop().await;
}

async fn resuming_a_multi_topic_stream_skips_other_topics(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut wanted = Vec::new();
    for i in 0..12 {
        let topic = ["x", "y", "z.1"][i % 3];
        let ack = app.publish_json(topic, json!(i)).await;
        if topic != "y" {
            wanted.push(ack.id);
        }
    }
    let mut sse = app
        .subscribe(
            &format!("/events?topic=x&topic=z.*&last_event_id={}", wanted[2]),
            None,
        )
        .await;
    let got: Vec<i64> = sse
        .messages(wanted.len() - 3)
        .await
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(got, wanted[3..]);
    app.stop().await;
}
