//! The pruner under kill -9: every step is one transaction (its deletes
//! and the topic's mark together), so a crash mid-pass leaves a log whose
//! retained messages are contiguous and whose mark covers exactly what went.

use serde_json::{Value, json};

use crate::helpers::{Backend, Sse, TestDb, eventually};
use crate::lifecycle::Herald;

crate::on_both_backends!(a_pruner_killed_mid_pass_leaves_a_consistent_log);

const TOTAL: i64 = 40_000;

async fn retained(h: &Herald) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let url = h.url(&format!("/topics/t/messages?after={after}&limit=1000"));
        let page: Value = h
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let msgs = page["messages"].as_array().unwrap();
        if msgs.is_empty() {
            return out;
        }
        out.extend(
            msgs.iter()
                .map(|m| (m["id"].as_i64().unwrap(), m["seq"].as_i64().unwrap())),
        );
        after = page["next"].as_i64().unwrap();
    }
}

async fn a_pruner_killed_mid_pass_leaves_a_consistent_log(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let idle = ["--prune-interval", "1h"];
    let h = Herald::start_with(&db, &idle).await;
    let body: Vec<Value> = (0..1000).map(|i| json!({"i": i})).collect();
    for _ in 0..TOTAL / 1000 {
        let r = h
            .client
            .post(h.url("/topics/t/batch"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let r = h
        .client
        .put(h.url("/topics/t"))
        .json(&json!({"retention": {"max_messages": 10}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(h);

    let mut pruning = Herald::start_with(&db, &["--prune-interval", "10ms"]).await;
    eventually("the pruner to start", || async {
        let text = pruning
            .client
            .get(pruning.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.contains("herald_messages_pruned_total{reason=\"retention\"}")
            .then_some(())
    })
    .await;
    pruning.signal("KILL");
    pruning.wait().await;

    let h = Herald::start_with(&db, &idle).await;
    let kept = retained(&h).await;
    assert!(kept.len() >= 10, "{}", kept.len());
    let seqs: Vec<i64> = kept.iter().map(|(_, s)| *s).collect();
    let first = seqs[0];
    assert_eq!(
        seqs,
        (first..=TOTAL).collect::<Vec<_>>(),
        "retained seqs are contiguous to the end"
    );
    let mut sse = Sse::connect(&h.client, &h.url("/topics/t/events"), Some("0")).await;
    let gap = sse.next_event().await.unwrap();
    assert_eq!(gap.event, "gap", "what went is marked");
    let data: Value = serde_json::from_str(&gap.data).unwrap();
    assert_eq!(
        data["topics"][0]["lost_through"],
        kept[0].0 - 1,
        "the mark covers exactly what went"
    );
    assert_eq!(sse.messages(1).await[0].id, kept[0].0);
    drop(h);

    let h = Herald::start_with(&db, &["--prune-interval", "10ms"]).await;
    eventually("the next pass to finish the work", || async {
        (retained(&h).await.len() == 10).then_some(())
    })
    .await;
}
