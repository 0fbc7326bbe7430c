//! `--max-subscriptions-per-owner` (issue 39, item 10): past it, creating
//! a subscription answers 429 `too-many-subscriptions`; other owners are
//! not affected, and deleting one makes room again.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::errors::assert_problem;
use crate::helpers::{Backend, TestApp, TestDb, spawn_app_with};
use crate::jwt;

crate::on_both_backends!(
    an_owner_has_at_most_the_limit_of_subscriptions,
    anonymous_callers_share_one_limit
);

async fn create(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut r = app
        .client
        .post(app.url("/subscriptions"))
        .json(&json!({"topic": "jobs.*", "mode": "pull"}));
    if let Some(token) = token {
        r = r.bearer_auth(token);
    }
    r.send().await.unwrap()
}

async fn id_of(r: reqwest::Response) -> i64 {
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn refused(r: reqwest::Response) {
    let body = assert_problem(r, StatusCode::TOO_MANY_REQUESTS, "past the limit").await;
    assert_eq!(body["type"], "urn:herald:problem:too-many-subscriptions");
}

async fn an_owner_has_at_most_the_limit_of_subscriptions(backend: Backend) {
    let mut flags = jwt::flags();
    flags.extend(["--max-subscriptions-per-owner".into(), "3".into()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let app = spawn_app_with(TestDb::new(&backend).await, &flags).await;
    let token = |sub: &str| jwt::hs256(&jwt::claims(sub, json!({"subscribe": ["jobs.**"]})));
    let (alice, bob) = (token("alice"), token("bob"));
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(id_of(create(&app, Some(&alice)).await).await);
    }
    refused(create(&app, Some(&alice)).await).await;
    // Another owner has a limit of its own.
    id_of(create(&app, Some(&bob)).await).await;
    // Deleting one makes room for one.
    let r = app
        .client
        .delete(app.url(&format!("/subscriptions/{}", ids[0])))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    id_of(create(&app, Some(&alice)).await).await;
    refused(create(&app, Some(&alice)).await).await;
    app.stop().await;
}

async fn anonymous_callers_share_one_limit(backend: Backend) {
    let flags = ["--max-subscriptions-per-owner", "2"];
    let app = spawn_app_with(TestDb::new(&backend).await, &flags).await;
    for _ in 0..2 {
        id_of(create(&app, None).await).await;
    }
    refused(create(&app, None).await).await;
    app.stop().await;
}
