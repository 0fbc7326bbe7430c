//! Access control with JWTs: every endpoint against every kind of bad
//! token, scopes that must not leak, private topics, anonymous modes.

use jsonwebtoken::Algorithm;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDb, spawn_app_with};
use crate::jwt;

async fn app(extra: &[&str]) -> TestApp {
    let mut flags = jwt::flags();
    flags.push("--webhook-allow-private".into());
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    spawn_app_with(TestDb::new(&Backend::Sqlite).await, &flags).await
}

async fn call(
    app: &TestApp,
    method: &Method,
    path: &str,
    body: &Value,
    token: Option<&str>,
) -> reqwest::Response {
    let mut req = app.client.request(method.clone(), app.url(path));
    if *method != Method::GET && *method != Method::DELETE {
        req = req.json(body);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

/// One endpoint and what it needs.
struct Case {
    method: Method,
    path: &'static str,
    body: Value,
    /// The scopes of a token that may call it.
    right: Value,
}

fn cases() -> Vec<Case> {
    let publish = json!({"publish": ["orders.**"]});
    let subscribe = json!({"subscribe": ["orders.**"]});
    let admin = json!({"admin": true});
    let case = |method: Method, path: &'static str, body: Value, right: &Value| Case {
        method,
        path,
        body,
        right: right.clone(),
    };
    vec![
        case(
            Method::POST,
            "/topics/orders.eu",
            json!({"total": 1}),
            &publish,
        ),
        case(
            Method::POST,
            "/topics/orders.eu/batch",
            json!([{"total": 1}]),
            &publish,
        ),
        case(
            Method::GET,
            "/topics/orders.eu/events",
            json!(null),
            &subscribe,
        ),
        case(
            Method::GET,
            "/events?topic=orders.*",
            json!(null),
            &subscribe,
        ),
        case(
            Method::GET,
            "/topics/orders.eu/messages",
            json!(null),
            &subscribe,
        ),
        case(Method::GET, "/topics/orders.eu", json!(null), &subscribe),
        case(
            Method::POST,
            "/subscriptions",
            json!({"topic": "orders.**", "url": "http://127.0.0.1:9/hook"}),
            &subscribe,
        ),
        case(Method::GET, "/topics", json!(null), &admin),
        case(
            Method::PUT,
            "/topics/orders.eu",
            json!({"description": "x"}),
            &admin,
        ),
        case(Method::DELETE, "/topics/orders.gone", json!(null), &admin),
        case(Method::GET, "/dead-letters", json!(null), &admin),
        case(
            Method::POST,
            "/tokens",
            json!({"publish": ["orders.**"]}),
            &admin,
        ),
        case(Method::GET, "/tokens", json!(null), &admin),
        case(Method::DELETE, "/tokens/999", json!(null), &admin),
        case(Method::GET, "/metrics", json!(null), &admin),
    ]
}

fn assert_problem(r: &reqwest::Response, status: u16, what: &str) {
    assert_eq!(r.status(), status, "{what}");
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "{what}"
    );
    if status == 401 {
        let challenge = r.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{what}: {challenge}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_refuses_every_bad_token_and_takes_the_right_scope() {
    let app = app(&[]).await;
    // Something to read, so the right scope gets 200 rather than 404.
    let admin = jwt::hs256(&jwt::claims("root", json!({"admin": true})));
    let seeded = call(
        &app,
        &Method::POST,
        "/topics/orders.eu",
        &json!({"seed": 1}),
        Some(&admin),
    )
    .await;
    assert_eq!(seeded.status(), 201);
    let wrong = json!({"publish": ["billing.**"], "subscribe": ["billing.**"]});
    let base = |herald: &Value| jwt::claims("alice", herald.clone());
    for case in cases() {
        let what = format!("{} {}", case.method, case.path);
        let right = base(&case.right);
        let mut expired = right.clone();
        expired["exp"] = json!(jwt::now() - 10);
        let mut early = right.clone();
        early["nbf"] = json!(jwt::now() + 600);
        let mut audience = right.clone();
        audience["aud"] = json!("someone-else");
        let refused: Vec<(&str, Option<String>)> = vec![
            ("no token", None),
            ("malformed", Some("not.a.jwt".into())),
            ("bad signature", Some(jwt::bad_signature(&right))),
            ("expired", Some(jwt::hs256(&expired))),
            ("not yet valid", Some(jwt::hs256(&early))),
            ("wrong audience", Some(jwt::hs256(&audience))),
            ("alg none", Some(jwt::alg_none(&right))),
            ("HS256 with the RSA public key", Some(jwt::confused(&right))),
        ];
        for (kind, token) in refused {
            let r = call(&app, &case.method, case.path, &case.body, token.as_deref()).await;
            assert_problem(&r, 401, &format!("{what} with {kind}"));
        }
        let r = call(
            &app,
            &case.method,
            case.path,
            &case.body,
            Some(&jwt::hs256(&base(&wrong))),
        )
        .await;
        assert_problem(&r, 403, &format!("{what} with the wrong scope"));
        // The right scope, signed both ways herald accepts here.
        for token in [
            jwt::hs256(&right),
            jwt::signed(Algorithm::RS256, "rsa", &right),
        ] {
            let r = call(&app, &case.method, case.path, &case.body, Some(&token)).await;
            let status = r.status().as_u16();
            assert!(
                status < 400 || status == 404,
                "{what} with the right scope: {status} {:?}",
                r.text().await
            );
        }
    }
    // Open endpoints stay open.
    for path in ["/healthz", "/readyz", "/openapi.json", "/docs/"] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_beyond_the_scope_is_refused_never_narrowed() {
    let app = app(&[]).await;
    let token = jwt::hs256(&jwt::claims(
        "a",
        json!({"subscribe": ["orders.**"], "publish": ["orders.**"]}),
    ));
    for (query, named) in [
        ("topic=**", "`**`"),
        ("topic=orders.*&topic=users.*", "`users.*`"),
        ("topic=*.eu", "`*.eu`"),
        ("topic=orders", "`orders`"),
    ] {
        let r = call(
            &app,
            &Method::GET,
            &format!("/events?{query}"),
            &json!(null),
            Some(&token),
        )
        .await;
        assert_eq!(r.status(), 403, "{query}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains(named),
            "{query}: {body}"
        );
    }
    let r = call(
        &app,
        &Method::GET,
        "/events?topic=orders.*&topic=orders.eu.**",
        &json!(null),
        Some(&token),
    )
    .await;
    assert_eq!(r.status(), 200);
    // A webhook may not reach further than its creator either.
    let hook = json!({"topic": "**", "url": "http://127.0.0.1:9/hook"});
    let r = call(&app, &Method::POST, "/subscriptions", &hook, Some(&token)).await;
    assert_eq!(r.status(), 403);
    let r = call(
        &app,
        &Method::POST,
        "/topics/users.x",
        &json!({}),
        Some(&token),
    )
    .await;
    assert_eq!(r.status(), 403);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_gives_each_user_private_topics_by_header_query_or_cookie() {
    let app = app(&[]).await;
    let scopes = json!({"subscribe": ["users.{sub}.**"], "publish": ["users.{sub}.**"]});
    let alice = jwt::signed(
        Algorithm::ES256,
        "ec",
        &jwt::claims("alice", scopes.clone()),
    );
    let bob = jwt::signed(Algorithm::EdDSA, "ed", &jwt::claims("bob", scopes));
    let mut stream = crate::helpers::Sse::connect(
        &app.client,
        &app.url(&format!(
            "/topics/users.alice.inbox/events?access_token={alice}"
        )),
        None,
    )
    .await;
    let r = call(
        &app,
        &Method::POST,
        "/topics/users.alice.inbox",
        &json!({"hi": 1}),
        Some(&alice),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(stream.messages(1).await[0].data, json!({"hi": 1}));
    // Bob may not read nor write Alice's topics, however he sends his token.
    let r = app
        .get(&format!(
            "/topics/users.alice.inbox/events?access_token={bob}"
        ))
        .await;
    assert_eq!(r.status(), 403);
    let r = app
        .client
        .get(app.url("/topics/users.alice.inbox/messages"))
        .header("cookie", format!("theme=dark; herald_token={bob}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = call(
        &app,
        &Method::POST,
        "/topics/users.alice.inbox",
        &json!({}),
        Some(&bob),
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = app
        .client
        .get(app.url("/topics/users.bob.inbox/messages"))
        .header("cookie", format!("herald_token={bob}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_callers_get_what_the_flag_says_and_tokens_add_to_it() {
    let app = app(&["--anonymous", "subscribe"]).await;
    assert_eq!(app.get("/topics/orders/messages").await.status(), 200);
    let r = app.post("/topics/orders", None, "x").await;
    assert_eq!(r.status(), 401);
    assert_eq!(app.get("/topics").await.status(), 401);
    // A publisher token may also read, as anyone may.
    let token = jwt::hs256(&jwt::claims("p", json!({"publish": ["orders"]})));
    let r = call(
        &app,
        &Method::GET,
        "/topics/orders/messages",
        &json!(null),
        Some(&token),
    )
    .await;
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_when_its_jwt_expires_and_a_fresh_token_resumes_exactly() {
    let app = app(&[]).await;
    let scopes = json!({"subscribe": ["news"], "publish": ["news"]});
    let mut short = jwt::claims("reader", scopes.clone());
    short["exp"] = json!(jwt::now() + 2);
    let short = jwt::hs256(&short);
    let long = jwt::hs256(&jwt::claims("reader", scopes));
    let mut stream = crate::helpers::Sse::connect(
        &app.client,
        &app.url(&format!("/topics/news/events?access_token={short}")),
        None,
    )
    .await;
    let first = app_publish(&app, &long, 1).await;
    let got = stream.messages(1).await;
    assert_eq!(got[0].id, first);
    // The server ends the stream at `exp`; a publish meanwhile waits.
    while stream.next_event().await.is_some() {}
    let r = app
        .get(&format!("/topics/news/events?access_token={short}"))
        .await;
    assert_eq!(r.status(), 401, "the expired token is refused on reconnect");
    let missed = app_publish(&app, &long, 2).await;
    let mut resumed = crate::helpers::Sse::connect(
        &app.client,
        &app.url(&format!("/topics/news/events?access_token={long}")),
        Some(&first.to_string()),
    )
    .await;
    let got = resumed.messages(1).await;
    assert_eq!((got[0].id, got[0].data.clone()), (missed, json!({"n": 2})));
    app.stop().await;
}

async fn app_publish(app: &TestApp, token: &str, n: i64) -> i64 {
    let r = call(
        app,
        &Method::POST,
        "/topics/news",
        &json!({"n": n}),
        Some(token),
    )
    .await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}
