//! A state-changing request from another site's page (its `Origin`) is
//! refused with 403 before it runs, unless `--cors-origins` allows that
//! origin; herald's own origin (the live page) and requests without
//! `Origin` (curl, servers) are unaffected.

use reqwest::StatusCode;

use crate::errors::assert_problem;
use crate::helpers::{Backend, TestApp, TestDb, spawn_app_with};

async fn publish_from(app: &TestApp, origin: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/topics/t"))
        .header("content-type", "text/plain")
        .body("hello");
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    req.send().await.unwrap()
}

async fn message_count(app: &TestApp) -> i64 {
    let r = app.get("/topics/t").await;
    if r.status() == 404 {
        return 0;
    }
    let topic: serde_json::Value = r.json().await.unwrap();
    topic["message_count"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_writes_are_refused_unless_the_origin_is_allowed() {
    let db = TestDb::new(&Backend::Sqlite).await;
    let app = spawn_app_with(db, &["--cors-origins", "https://app.example.com"]).await;

    // Allowed by --cors-origins, none (curl), and herald's own origin (the
    // live page served at /, whose Origin is the address it was loaded from).
    let own = app.base.clone();
    for origin in [Some("https://app.example.com"), None, Some(own.as_str())] {
        let r = publish_from(&app, origin).await;
        assert_eq!(r.status(), 201, "{origin:?}");
    }
    assert_eq!(message_count(&app).await, 3);

    // Another site, another port of the same host, and an opaque origin.
    let other_port = format!("http://127.0.0.1:{}", app.addr().port() + 1);
    for origin in ["https://evil.example", other_port.as_str(), "null"] {
        let r = publish_from(&app, Some(origin)).await;
        let body = assert_problem(r, StatusCode::FORBIDDEN, origin).await;
        assert_eq!(body["type"], "urn:herald:problem:cross-site-request");
        assert!(body["detail"].as_str().unwrap().contains("--cors-origins"));
        let r = app
            .client
            .delete(app.url("/topics/t"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_problem(r, StatusCode::FORBIDDEN, origin).await;
    }
    assert_eq!(message_count(&app).await, 3, "nothing refused ran");

    // Reads are not state changes.
    let r = app
        .client
        .get(app.url("/topics/t/messages"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_only_the_own_origin_may_write_and_any_allows_all() {
    let app = spawn_app_with(TestDb::new(&Backend::Sqlite).await, &[]).await;
    let r = publish_from(&app, Some("https://app.example.com")).await;
    assert_problem(r, StatusCode::FORBIDDEN, "default").await;
    assert_eq!(publish_from(&app, Some(&app.base)).await.status(), 201);
    app.stop().await;

    let app = spawn_app_with(
        TestDb::new(&Backend::Sqlite).await,
        &["--cors-origins", "*"],
    )
    .await;
    let r = publish_from(&app, Some("https://anyone.example")).await;
    assert_eq!(r.status(), 201);
    app.stop().await;
}
