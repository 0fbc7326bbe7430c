//! API tokens (stored hashed, so they work on every node), who may manage
//! which subscription, revocation ending streams on both nodes, limits,
//! and tokens kept out of the logs.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::helpers::{Backend, DEADLINE, Sse, TestApp, TestDb, spawn_app_with};

crate::on_both_backends!(
    api_tokens_are_created_shown_once_listed_without_secrets_and_revoked,
    a_subscription_belongs_to_the_token_that_created_it,
    a_revoked_token_ends_its_open_stream,
);

/// `herald token create …` on `db`; returns the token it prints.
async fn cli_token(db: &TestDb, args: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["token", "create", "--database-url", &db.url])
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "herald token create: {stderr}");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("hrd_"), "{token}");
    assert!(
        !stderr.contains(&token),
        "the token is printed on stdout only"
    );
    token
}

/// A herald with API tokens only (`--anonymous none`) and an admin token
/// made by the CLI before it starts.
async fn locked_app(backend: Backend, flags: &[&str]) -> (TestApp, String) {
    let db = TestDb::new(&backend).await;
    let admin = cli_token(&db, &["--admin", "--subject", "root"]).await;
    let mut all = vec!["--webhook-allow-private"];
    if !flags.contains(&"--anonymous") {
        all.extend(["--anonymous", "none"]);
    }
    all.extend_from_slice(flags);
    (spawn_app_with(db, &all).await, admin)
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

async fn make_token(app: &TestApp, admin: &str, spec: Value) -> (i64, String) {
    let r = send(app, "POST", "/tokens", admin, Some(spec)).await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    (
        body["id"].as_i64().unwrap(),
        body["token"].as_str().unwrap().to_owned(),
    )
}

async fn api_tokens_are_created_shown_once_listed_without_secrets_and_revoked(backend: Backend) {
    let (app, admin) = locked_app(backend, &[]).await;
    let spec = json!({"subject": "shop", "publish": ["orders.**"], "subscribe": ["orders.**"], "expires": "30d"});
    let (id, token) = make_token(&app, &admin, spec).await;
    let listed = send(&app, "GET", "/tokens", &admin, None)
        .await
        .text()
        .await
        .unwrap();
    assert!(listed.contains("\"subject\":\"shop\""), "{listed}");
    let secret = token.rsplit('_').next().unwrap();
    assert!(
        !listed.contains(secret) && !listed.contains("\"token\""),
        "{listed}"
    );
    assert_eq!(
        send(&app, "POST", "/topics/orders.eu", &token, Some(json!({})))
            .await
            .status(),
        201
    );
    assert_eq!(
        send(&app, "POST", "/topics/billing", &token, Some(json!({})))
            .await
            .status(),
        403
    );
    // Not an admin: it may not make tokens of its own.
    let r = send(
        &app,
        "POST",
        "/tokens",
        &token,
        Some(json!({"admin": true})),
    )
    .await;
    assert_eq!(r.status(), 403);
    // A wrong secret for a real id is refused (compared in constant time).
    let forged = format!("hrd_{id}_{}", "A".repeat(43));
    assert_eq!(
        send(&app, "POST", "/topics/orders.eu", &forged, Some(json!({})))
            .await
            .status(),
        401
    );
    // Bad specs are 400 and name the field.
    for (bad, field) in [
        (json!({"publish": ["orders..x"]}), "publish"),
        (json!({"subscribe": ["a.**.b"]}), "subscribe"),
        (json!({"expires": "yesterday"}), "expires"),
    ] {
        let r = send(&app, "POST", "/tokens", &admin, Some(bad)).await;
        assert_eq!(r.status(), 400);
        let detail = r.json::<Value>().await.unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(detail.contains(field), "{detail}");
    }
    assert_eq!(
        send(&app, "DELETE", &format!("/tokens/{id}"), &admin, None)
            .await
            .status(),
        204
    );
    assert_eq!(
        send(&app, "POST", "/topics/orders.eu", &token, Some(json!({})))
            .await
            .status(),
        401
    );
    assert_eq!(
        send(&app, "DELETE", &format!("/tokens/{id}"), &admin, None)
            .await
            .status(),
        404
    );
    let listed = send(&app, "GET", "/tokens", &admin, None)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert!(
        listed["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["id"] != id),
        "{listed}"
    );
    app.stop().await;
}

async fn a_subscription_belongs_to_the_token_that_created_it(backend: Backend) {
    let (app, admin) = locked_app(backend, &[]).await;
    let scopes = json!({"subscribe": ["orders.**"]});
    let (_, alice) = make_token(&app, &admin, scopes.clone()).await;
    let (_, bob) = make_token(&app, &admin, scopes).await;
    let hook = json!({"topic": "orders.*", "url": "http://127.0.0.1:9/hook", "paused": true});
    let r = send(&app, "POST", "/subscriptions", &alice, Some(hook)).await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let path = format!("/subscriptions/{id}");
    assert_eq!(send(&app, "GET", &path, &alice, None).await.status(), 200);
    for (method, body) in [
        ("GET", None),
        ("PATCH", Some(json!({"paused": false}))),
        ("DELETE", None),
    ] {
        assert_eq!(
            send(&app, method, &path, &bob, body).await.status(),
            404,
            "{method}"
        );
    }
    let dl = format!("/dead-letters?subscription={id}");
    assert_eq!(send(&app, "GET", &dl, &bob, None).await.status(), 404);
    assert_eq!(send(&app, "GET", &dl, &alice, None).await.status(), 200);
    assert_eq!(
        send(&app, "GET", "/dead-letters", &alice, None)
            .await
            .status(),
        403
    );
    let redrive = json!({"subscription": id});
    let r = send(&app, "POST", "/dead-letters/redrive", &bob, Some(redrive)).await;
    assert_eq!(r.status(), 404);
    // Each lists its own; the admin lists all.
    for (token, n) in [(&alice, 1), (&bob, 0), (&admin, 1)] {
        let page: Value = send(&app, "GET", "/subscriptions", token, None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page["subscriptions"].as_array().unwrap().len(), n);
    }
    assert_eq!(
        send(&app, "DELETE", &path, &admin, None).await.status(),
        204
    );
    app.stop().await;
}

async fn a_revoked_token_ends_its_open_stream(backend: Backend) {
    let (app, admin) = locked_app(backend, &[]).await;
    let (id, token) = make_token(&app, &admin, json!({"subscribe": ["news"]})).await;
    let url = app.url(&format!("/topics/news/events?access_token={token}"));
    let mut stream = Sse::connect(&app.client, &url, None).await;
    assert_eq!(
        send(&app, "DELETE", &format!("/tokens/{id}"), &admin, None)
            .await
            .status(),
        204
    );
    while stream.next_event().await.is_some() {}
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 401);
    app.stop().await;
}

/// Two nodes on one Postgres: a token made on one works on the other, and
/// its revocation on one ends its streams on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Postgres: set HERALD_TEST_POSTGRES_URL, run with --run-ignored all"]
async fn revocation_on_one_node_ends_streams_on_both() {
    let db = TestDb::new(&Backend::postgres()).await;
    let admin = cli_token(&db, &["--admin"]).await;
    let flags = ["--anonymous", "none", "--auth-revocation-poll", "100ms"];
    let a = spawn_app_with(db.clone(), &flags).await;
    let b = spawn_app_with(Arc::clone(&db), &flags).await;
    let (id, token) = make_token(
        &a,
        &admin,
        json!({"subscribe": ["news"], "publish": ["news"]}),
    )
    .await;
    let mut streams = Vec::new();
    for node in [&a, &b] {
        let url = node.url(&format!("/topics/news/events?access_token={token}"));
        streams.push(Sse::connect(&node.client, &url, None).await);
    }
    assert_eq!(
        send(&b, "POST", "/topics/news", &token, Some(json!({"n": 1})))
            .await
            .status(),
        201
    );
    for s in &mut streams {
        assert_eq!(s.messages(1).await[0].data, json!({"n": 1}));
    }
    assert_eq!(
        send(&a, "DELETE", &format!("/tokens/{id}"), &admin, None)
            .await
            .status(),
        204
    );
    let ended = async {
        for s in &mut streams {
            while s.next_event().await.is_some() {}
        }
    };
    tokio::time::timeout(DEADLINE, ended)
        .await
        .expect("streams ended");
    for node in [&a, &b] {
        let r = send(node, "POST", "/topics/news", &token, Some(json!({}))).await;
        assert_eq!(r.status(), 401);
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_rate_and_open_streams_are_limited_per_client() {
    let flags = [
        "--anonymous",
        "publish",
        "--rate-limit-publish",
        "1/m",
        "--rate-limit-publish-burst",
        "3",
        "--max-streams-per-client",
        "2",
    ];
    let (app, admin) = locked_app(Backend::Sqlite, &flags).await;
    for _ in 0..3 {
        assert_eq!(app.post("/topics/t", None, "x").await.status(), 201);
    }
    let r = app.post("/topics/t", None, "x").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // A batch counts each message; the admin token has a bucket of its own.
    let batch = app
        .client
        .post(app.url("/topics/t/batch"))
        .bearer_auth(&admin)
        .json(&json!([1, 2, 3, 4]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        batch.status(),
        400,
        "4 messages exceed a burst of 3: never, not later"
    );
    assert_eq!(
        send(&app, "POST", "/topics/t", &admin, Some(json!(1)))
            .await
            .status(),
        201
    );
    let _one = app.subscribe("/topics/t/events", None).await;
    let _two = app.subscribe("/topics/t/events", None).await;
    let r = app.get("/topics/t/events").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let metrics = send(&app, "GET", "/metrics", &admin, None)
        .await
        .text()
        .await
        .unwrap();
    for limit in ["publish", "streams"] {
        assert!(
            metrics.contains(&format!("herald_rate_limited_total{{limit=\"{limit}\"}}")),
            "{limit}"
        );
    }
    app.stop().await;
}

/// A webhook is a stream that never ends by itself: it lives no longer
/// than the token that made it. Revoking an API token pauses its
/// subscriptions; a JWT's expiry stops delivery until its owner renews it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_lives_no_longer_than_its_owners_token() {
    use crate::jwt;
    use crate::receiver::{Behaviour, Receiver};
    let mut flags = jwt::flags();
    flags.extend(["--webhook-poll-ms".into(), "20".into()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (app, admin) = locked_app(Backend::Sqlite, &flags).await;
    let rx = Receiver::start(Behaviour::Ok).await;
    let hook = json!({"topic": "hr.*", "url": rx.url, "min_backoff_ms": 10});
    // An API token's webhook is paused when the token is revoked.
    let (id, token) = make_token(&app, &admin, json!({"subscribe": ["hr.**"]})).await;
    let r = send(&app, "POST", "/subscriptions", &token, Some(hook.clone())).await;
    let by_token = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    assert_eq!(
        send(&app, "DELETE", &format!("/tokens/{id}"), &admin, None)
            .await
            .status(),
        204
    );
    let view: Value = send(
        &app,
        "GET",
        &format!("/subscriptions/{by_token}"),
        &admin,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(view["paused"], true, "{view}");
    // A JWT's webhook stops at the JWT's `exp`.
    let mut claims = jwt::claims("hr-bot", json!({"subscribe": ["hr.**"]}));
    let exp = jwt::now() + 2;
    claims["exp"] = json!(exp);
    let r = send(
        &app,
        "POST",
        "/subscriptions",
        &jwt::hs256(&claims),
        Some(hook.clone()),
    )
    .await;
    let by_jwt: Value = r.json().await.unwrap();
    assert!(by_jwt["owner_expires"].as_str().is_some(), "{by_jwt}");
    let by_admin = send(&app, "POST", "/subscriptions", &admin, Some(hook)).await;
    assert_eq!(by_admin.status(), 201);
    crate::helpers::eventually("the JWT to expire", || async {
        (jwt::now() > exp).then_some(())
    })
    .await;
    let late = send(
        &app,
        "POST",
        "/topics/hr.jan",
        &admin,
        Some(json!({"secret": 1})),
    )
    .await;
    let late_id = late.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    // The admin's webhook got it: the pass that skipped the expired one ran.
    assert_eq!(rx.successes(1).await.len(), 1);
    let path = format!("/subscriptions/{}", by_jwt["id"]);
    let view: Value = send(&app, "GET", &path, &admin, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        view["cursor"].as_i64().unwrap() < late_id,
        "not dispatched: {view}"
    );
    // Its owner's fresh token renews it, and nothing was lost meanwhile.
    let fresh = jwt::hs256(&jwt::claims("hr-bot", json!({"subscribe": ["hr.**"]})));
    assert_eq!(
        send(&app, "PATCH", &path, &fresh, Some(json!({})))
            .await
            .status(),
        200
    );
    assert_eq!(rx.successes(2).await.len(), 2);
    app.stop().await;
}

/// Only a caller with an identity of its own can own a subscription, and
/// what belongs to another token is answered as if it did not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_need_an_owner_and_stay_invisible_to_others() {
    use crate::jwt;
    let flags = jwt::flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (app, admin) = locked_app(Backend::Sqlite, &flags).await;
    let hook = json!({"topic": "a.*", "url": "http://127.0.0.1:9/h", "paused": true});
    let scopes = json!({"subscribe": ["a.**"]});
    let no_sub = jwt::hs256(&json!({"aud": jwt::AUDIENCE, "herald": scopes}));
    let r = send(&app, "POST", "/subscriptions", &no_sub, Some(hook.clone())).await;
    assert_eq!(r.status(), 403, "a JWT without `sub`");
    let r = app
        .client
        .post(app.url("/subscriptions"))
        .json(&hook)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "anonymous");
    let alice = jwt::hs256(&jwt::claims("alice", scopes.clone()));
    let r = send(&app, "POST", "/subscriptions", &alice, Some(hook)).await;
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let bob = jwt::hs256(&jwt::claims("bob", scopes));
    let r = send(&app, "GET", &format!("/subscriptions/{id}"), &bob, None).await;
    assert_eq!(r.status(), 404, "someone else's is not there");
    // Alice with a token that no longer covers it may not change it.
    let narrowed = jwt::hs256(&jwt::claims("alice", json!({"subscribe": ["b.**"]})));
    let r = send(
        &app,
        "PATCH",
        &format!("/subscriptions/{id}"),
        &narrowed,
        Some(json!({"url": "http://127.0.0.1:9/x"})),
    )
    .await;
    assert_eq!(r.status(), 403);
    // The cookie carries a token on reads only (no cross-site form posts).
    let r = app
        .client
        .post(app.url("/topics/a.x"))
        .header("cookie", format!("herald_token={admin}"))
        .body("forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}

/// While access control is off everyone is an admin: a token made then
/// would outlive that as an admin token nobody chose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_cannot_be_made_over_http_while_access_control_is_off() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await;
    let r = app
        .client
        .post(app.url("/tokens"))
        .json(&json!({"admin": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(app.get("/tokens").await.status(), 409);
    app.stop().await;
}
