//! Idempotency keys are the caller's own (issue 39, item 11): another
//! publisher's equal key neither replays a client's answer nor gets its
//! publish refused.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestDb, spawn_app_with};
use crate::jwt;

crate::on_both_backends!(two_callers_with_one_key_publish_two_messages);

async fn two_callers_with_one_key_publish_two_messages(backend: Backend) {
    let flags = jwt::flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let app = spawn_app_with(TestDb::new(&backend).await, &flags).await;
    let token = |sub: &str| jwt::hs256(&jwt::claims(sub, json!({"publish": ["orders"]})));
    let publish = |token: String, body: &'static str| {
        let (client, url) = (app.client.clone(), app.url("/topics/orders"));
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .header("idempotency-key", "order-1")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let alice = publish(token("alice"), "alice's").await;
    assert_eq!(alice.status(), 201);
    let alice: Value = alice.json().await.unwrap();
    // Another caller, the same key, another body: its own publish.
    let mallory = publish(token("mallory"), "mallory's").await;
    assert_eq!(mallory.status(), 201, "not a 422 for alice's key");
    assert!(mallory.headers().get("idempotent-replayed").is_none());
    let mallory: Value = mallory.json().await.unwrap();
    assert_ne!(alice["id"], mallory["id"]);
    // Each caller's retry replays its own answer.
    let again = publish(token("alice"), "alice's").await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap()["id"], alice["id"]);
    app.stop().await;
}
