//! `Host` validation against DNS rebinding (issue 39, item 11): on
//! loopback herald answers only to loopback names unless
//! `--allowed-hosts` says otherwise.

use crate::helpers::{Backend, TestApp, TestDb, spawn_app_with};

crate::on_both_backends!(a_request_for_a_host_herald_does_not_answer_to_gets_421);

async fn with_host(app: &TestApp, host: &str) -> reqwest::Response {
    app.client
        .post(app.url("/topics/t"))
        .header("host", host)
        .header("origin", format!("http://{host}"))
        .body("hi")
        .send()
        .await
        .unwrap()
}

async fn a_request_for_a_host_herald_does_not_answer_to_gets_421(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let app = spawn_app_with(db.clone(), &[]).await;
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    // A rebinding page: its Origin and Host agree, so only Host tells.
    let r = with_host(&app, &format!("rebind.evil.example:{port}")).await;
    let p =
        crate::errors::assert_problem(r, reqwest::StatusCode::MISDIRECTED_REQUEST, "rebind").await;
    assert!(p["type"].as_str().unwrap().ends_with("unknown-host"), "{p}");
    let r = app
        .client
        .get(app.url("/topics"))
        .header("host", "rebind.evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421, "reads too");
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        assert_eq!(with_host(&app, &host).await.status(), 201, "{host}");
    }
    app.stop().await;

    let app = spawn_app_with(db, &["--allowed-hosts", "herald.example"]).await;
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    assert_eq!(
        with_host(&app, &format!("herald.example:{port}"))
            .await
            .status(),
        201
    );
    assert_eq!(
        with_host(&app, &format!("localhost:{port}")).await.status(),
        421
    );
    app.stop().await;
}
