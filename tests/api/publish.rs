//! Publishing, history and topic listings.

use serde_json::{Value, json};

use crate::helpers::{Backend, spawn_app};

crate::on_both_backends!(
    publishing_json_answers_201_with_id_topic_seq_and_time,
    text_bodies_are_stored_as_text,
    ids_are_global_and_seqs_are_per_topic,
    concurrent_publishes_get_gapless_unique_ids_and_seqs,
    history_pages_with_after_and_limit,
    the_event_type_comes_from_the_query,
    topics_report_last_seq_count_and_live_subscribers,
    health_and_readiness_answer,
);

async fn publishing_json_answers_201_with_id_topic_seq_and_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .post(
            "/topics/orders",
            Some("application/json"),
            r#"{"total":150}"#,
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], 1);
    assert_eq!(body["topic"], "orders");
    assert_eq!(body["seq"], 1);
    let time = body["time"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
    assert!(time.ends_with('Z'));

    let history: Value = app
        .get("/topics/orders/messages")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["messages"][0]["data"], json!({"total": 150}));
    assert_eq!(history["messages"][0]["time"], time);
    app.stop().await;
}

async fn text_bodies_are_stored_as_text(backend: Backend) {
    let app = spawn_app(backend).await;
    app.publish_text("notes", "hello\nworld \u{1F600}").await;
    // A JSON-looking body without a JSON content type stays text.
    app.publish_text("notes", r#"{"a":1}"#).await;
    let history: Value = app
        .get("/topics/notes/messages")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["messages"][0]["data"], "hello\nworld \u{1F600}");
    assert_eq!(history["messages"][1]["data"], r#"{"a":1}"#);
    app.stop().await;
}

async fn ids_are_global_and_seqs_are_per_topic(backend: Backend) {
    let app = spawn_app(backend).await;
    let a1 = app.publish_json("a", json!(1)).await;
    let b1 = app.publish_json("b", json!(2)).await;
    let a2 = app.publish_json("a", json!(3)).await;
    assert_eq!((a1.id, a1.seq), (1, 1));
    assert_eq!((b1.id, b1.seq), (2, 1));
    assert_eq!((a2.id, a2.seq), (3, 2));
    app.stop().await;
}

async fn concurrent_publishes_get_gapless_unique_ids_and_seqs(backend: Backend) {
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let mut tasks = Vec::new();
    for w in 0..16 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for i in 0..25 {
                let topic = if (w + i) % 2 == 0 { "even" } else { "odd" };
                acks.push(app.publish_json(topic, json!({"w": w, "i": i})).await);
            }
            acks
        }));
    }
    let mut acks = Vec::new();
    for t in tasks {
        acks.extend(t.await.unwrap());
    }
    let mut ids: Vec<i64> = acks.iter().map(|a| a.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=400).collect::<Vec<_>>());
    for topic in ["even", "odd"] {
        let mut seqs: Vec<i64> = acks
            .iter()
            .filter(|a| a.topic == topic)
            .map(|a| a.seq)
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "{topic}");
    }
    // Seq order agrees with id order within a topic.
    let mut by_id = acks.clone();
    by_id.sort_by_key(|a| a.id);
    for topic in ["even", "odd"] {
        let seqs: Vec<i64> = by_id
            .iter()
            .filter(|a| a.topic == topic)
            .map(|a| a.seq)
            .collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{topic}");
    }
    std::sync::Arc::into_inner(app).unwrap().stop().await;
}

async fn history_pages_with_after_and_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..5 {
        app.publish_json("h", json!(i)).await;
        app.publish_json("other", json!(i)).await;
    }
    let page: Value = app
        .get("/topics/h/messages?limit=2")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<i64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 3]);
    assert_eq!(page["next"], 3);
    let page: Value = app
        .get("/topics/h/messages?after=3&limit=10")
        .await
        .json()
        .await
        .unwrap();
    let seqs: Vec<i64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 4, 5]);
    assert_eq!(page["next"], 9);
    let empty: Value = app
        .get("/topics/h/messages?after=9")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(empty, json!({"messages": [], "next": 9}));
    let never: Value = app
        .get("/topics/nobody/messages?after=earliest")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(never, json!({"messages": [], "next": 0}));
    app.stop().await;
}

async fn the_event_type_comes_from_the_query(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .post(
            "/topics/orders?event=order.created",
            Some("application/json"),
            "{}",
        )
        .await;
    assert_eq!(r.status(), 201);
    let mut sse = app
        .subscribe("/topics/orders/events?last_event_id=earliest", None)
        .await;
    let event = sse.next_event().await.unwrap();
    assert_eq!(event.event, "order.created");
    let envelope: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(envelope["event"], "order.created");
    app.stop().await;
}

async fn topics_report_last_seq_count_and_live_subscribers(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/topics/orders").await.status(), 404);
    app.publish_json("orders", json!(1)).await;
    app.publish_json("orders", json!(2)).await;
    app.publish_json("users", json!(3)).await;
    let _one = app.subscribe("/topics/orders/events", None).await;
    let _pattern = app.subscribe("/events?topic=orders,users", None).await;

    let t: Value = app.get("/topics/orders").await.json().await.unwrap();
    assert_eq!(t["name"], "orders");
    assert_eq!(t["last_seq"], 2);
    assert_eq!(t["message_count"], 2);
    assert_eq!(t["subscribers"], 2);
    let all: Value = app.get("/topics").await.json().await.unwrap();
    let names: Vec<&str> = all["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders", "users"]);
    assert_eq!(all["topics"][1]["subscribers"], 1);
    drop(_one);
    crate::helpers::eventually("the closed stream to be uncounted", || async {
        let t: Value = app.get("/topics/orders").await.json().await.unwrap();
        (t["subscribers"] == 1).then_some(())
    })
    .await;
    app.stop().await;
}

async fn health_and_readiness_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    app.stop().await;
}

mod docs {
    use crate::helpers::{Backend, spawn_app};

    #[tokio::test]
    async fn docs_are_served_without_the_internet() {
        let app = spawn_app(Backend::Sqlite).await;
        let doc: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
        let generated: serde_json::Value =
            serde_json::from_str(&herald::http::openapi::ApiDoc::pretty_json()).unwrap();
        assert_eq!(doc, generated);

        let page = app.get("/docs/").await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("swagger-ui"), "{html}");
        // Every script and stylesheet is herald's own: no absolute URLs.
        let assets: Vec<&str> = html
            .split(['"', '\''])
            .filter(|s| s.ends_with(".js") || s.ends_with(".css"))
            .collect();
        assert!(assets.len() >= 3, "{assets:?}");
        for asset in assets {
            assert!(!asset.contains("://"), "{asset} is loaded from elsewhere");
            let path = format!("/docs/{}", asset.trim_start_matches("./"));
            let r = app.get(&path).await;
            assert_eq!(r.status(), 200, "{path}");
            assert!(!r.bytes().await.unwrap().is_empty(), "{path}");
        }
        let init = app
            .get("/docs/swagger-initializer.js")
            .await
            .text()
            .await
            .unwrap();
        assert!(init.contains("\"/openapi.json\""), "{init}");
        app.stop().await;
    }
}
