//! Requests hyper cannot parse are answered by hyper itself, before
//! herald's router; herald rewrites those answers as problem+json with
//! the same status. An HTTP/2 preface is closed without an answer.

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::front_door::{closed, read_response};
use crate::helpers::{Backend, DEADLINE, TestDb, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparseable_requests_get_problem_documents_from_hyper() {
    let app = spawn_app_with(TestDb::new(&Backend::Sqlite).await, &[]).await;
    let many_headers: String = (0..120).map(|i| format!("x-h{i}: v\r\n")).collect();
    let cases: Vec<(String, u16, &str)> = vec![
        ("GARBAGE\r\n\r\n".into(), 400, "malformed-request"),
        ("GET / HTTP/1.1\r\nbad header: x\r\n\r\n".into(), 400, "malformed-request"),
        (
            "POST /topics/t HTTP/1.1\r\nhost: h\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab".into(),
            400,
            "malformed-request",
        ),
        ("GET / HTTP/9.9\r\nhost: h\r\n\r\n".into(), 400, "malformed-request"),
        (format!("GET / HTTP/1.1\r\nhost: h\r\n{many_headers}\r\n"), 431, "headers-too-large"),
        (
            format!("GET / HTTP/1.1\r\nhost: h\r\nx-big: {}\r\n\r\n", "a".repeat(20_000)),
            431,
            "headers-too-large",
        ),
    ];
    for (request, status, kind) in cases {
        let what = &request[..request.len().min(40)];
        let mut stream = TcpStream::connect(app.addr()).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let start = Instant::now();
        let (got, response) = read_response(&mut stream).await;
        assert_eq!(got, status, "{what:?}: {response}");
        let lower = response.to_ascii_lowercase();
        assert!(
            lower.contains("content-type: application/problem+json"),
            "{response}"
        );
        let body: serde_json::Value =
            serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(
            body["type"],
            format!("urn:herald:problem:{kind}"),
            "{what:?}"
        );
        assert_eq!(body["status"], status);
        assert!(!body["detail"].as_str().unwrap().is_empty());
        closed(&mut stream, start).await;
    }

    // HTTP/2 with prior knowledge: herald speaks HTTP/1.1 and closes.
    let mut stream = TcpStream::connect(app.addr()).await.unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut rest))
        .await
        .expect("closed")
        .ok();
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));

    // Ordinary answers are left alone.
    assert_eq!(app.get("/healthz").await.status(), 200);
    let r = app.post("/topics/t", None, "fine").await;
    assert_eq!(r.status(), 201);
    app.stop().await;
}
