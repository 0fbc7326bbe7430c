//! The built-in page and CORS.

use crate::helpers::{Backend, TestDb, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_page_is_served_at_the_root() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app.get("/").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let html = r.text().await.unwrap();
    assert!(
        html.contains("EventSource"),
        "the page subscribes with EventSource"
    );
    assert!(
        !html.contains("<script src=\"http"),
        "the page loads nothing from elsewhere"
    );
    app.stop().await;
}

async fn preflight(app: &crate::helpers::TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/topics/orders"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn other_origins_are_refused_unless_configured() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = preflight(&app, "https://elsewhere.example").await;
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = app
        .client
        .get(app.url("/topics"))
        .header("origin", "https://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    app.stop().await;
}

#[tokio::test]
async fn configured_origins_may_subscribe_and_publish() {
    let db = TestDb::new(&Backend::Sqlite).await;
    let app = spawn_app_with(
        db,
        &[
            "--cors-origins",
            "https://app.example,https://other.example",
        ],
    )
    .await;
    let r = preflight(&app, "https://app.example").await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let methods = r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("content-type") && allowed.contains("last-event-id"),
        "{allowed}"
    );
    assert!(
        preflight(&app, "https://nope.example")
            .await
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let r = app
        .client
        .post(app.url("/topics/orders"))
        .header("origin", "https://other.example")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://other.example"
    );
    let r = app
        .client
        .get(app.url("/topics/orders/events"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_star_allows_any_origin() {
    let db = TestDb::new(&Backend::Sqlite).await;
    let app = spawn_app_with(db, &["--cors-origins", "*"]).await;
    let r = preflight(&app, "https://anyone.example").await;
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    app.stop().await;
}
