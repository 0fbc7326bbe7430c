//! Request bodies: `--http-body-timeout` answers a body that stops
//! arriving with 408 and closes its connection, while one that keeps
//! arriving, however slowly, is read; a `Content-Length` over the route's
//! limit is refused with 413 at once, before any of the body is sent.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::front_door::{closed, read_response};
use crate::helpers::{Backend, TestApp, TestDb, spawn_app_with};

async fn app_with(flags: &[&str]) -> TestApp {
    spawn_app_with(TestDb::new(&Backend::Sqlite).await, flags).await
}

/// Sends a request head (and `body`, maybe partial) on a new connection.
async fn send(app: &TestApp, head: &str, body: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(app.addr()).await.unwrap();
    let head = format!("{head}host: localhost\r\ncontent-type: text/plain\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    stream
}

fn problem_type(response: &str) -> &str {
    let start = response
        .find("urn:herald:problem:")
        .expect("a problem body");
    let rest = &response[start..];
    &rest[..rest.find('"').unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_gets_408_after_the_body_timeout() {
    let app = app_with(&["--http-body-timeout", "300ms"]).await;
    let cases: [(&str, &[u8]); 2] = [
        // Content-Length larger than the body sent.
        (
            "POST /topics/t HTTP/1.1\r\ncontent-length: 100\r\n",
            b"only part",
        ),
        // Chunked, without its final chunk.
        (
            "POST /topics/t HTTP/1.1\r\ntransfer-encoding: chunked\r\n",
            b"5\r\nhello\r\n",
        ),
    ];
    for (head, body) in cases {
        let start = Instant::now();
        let mut stream = send(&app, head, body).await;
        let (status, response) = read_response(&mut stream).await;
        let took = start.elapsed();
        assert_eq!(status, 408, "{response}");
        assert_eq!(problem_type(&response), "urn:herald:problem:body-timeout");
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        closed(&mut stream, start).await;
    }
    assert_eq!(
        app.get("/topics/t").await.status(),
        404,
        "nothing was stored"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_keeps_arriving_slowly_is_read_whole() {
    let app = app_with(&["--http-body-timeout", "300ms"]).await;
    let mut stream = send(
        &app,
        "POST /topics/t HTTP/1.1\r\ncontent-length: 4\r\n",
        b"",
    )
    .await;
    // 4 bytes over 600 ms, one every 150 ms: each restarts the clock.
    for byte in b"slow" {
        tokio::time::sleep(Duration::from_millis(150)).await;
        stream.write_all(&[*byte]).await.unwrap();
    }
    let (status, response) = read_response(&mut stream).await;
    assert_eq!(status, 201, "{response}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_over_the_route_limit_gets_413_before_the_body() {
    let app = app_with(&["--max-message-bytes", "1000", "--batch-max-bytes", "5000"]).await;
    let cases = [
        (
            "POST /topics/t HTTP/1.1\r\ncontent-length: 10000000000\r\n",
            "message body may be at most 1000 bytes",
        ),
        (
            "POST /topics/t HTTP/1.1\r\ncontent-length: 1001\r\n",
            "at most 1000 bytes",
        ),
        (
            "POST /topics/t/batch HTTP/1.1\r\ncontent-length: 5001\r\n",
            "batch body may be at most 5000 bytes",
        ),
        (
            "PUT /topics/t HTTP/1.1\r\ncontent-length: 10000000000\r\n",
            "at most 1000 bytes",
        ),
    ];
    for (head, detail) in cases {
        let start = Instant::now();
        // The default body timeout is 30 s: the answer must not wait for it.
        let mut stream = send(&app, head, b"").await;
        let (status, response) = read_response(&mut stream).await;
        assert_eq!(status, 413, "{head}: {response}");
        assert!(response.contains(detail), "{response}");
        assert!(start.elapsed() < Duration::from_secs(2));
        closed(&mut stream, start).await;
    }
    // A batch between the two limits is the batch route's to take.
    let one = format!("\"{}\"", "x".repeat(600));
    let batch = format!("[{one},{one},{one}]");
    let r = app
        .post("/topics/t/batch", Some("application/json"), batch)
        .await;
    assert_eq!(r.status(), 201);
    app.stop().await;
}

/// A client that writes its whole body before reading (as Python's
/// `http.client` does) reads the 413: herald drains what it sends first
/// (issue 39, item 9), instead of resetting the connection under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_sending_its_body_reads_the_413() {
    let app = app_with(&["--max-message-bytes", "1024"]).await;
    for _ in 0..20 {
        let body = vec![b'x'; 200_000];
        let head = format!(
            "POST /topics/t HTTP/1.1\r\ncontent-length: {}\r\n",
            body.len()
        );
        let mut stream = send(&app, &head, b"").await;
        for chunk in body.chunks(8 * 1024) {
            stream
                .write_all(chunk)
                .await
                .expect("herald reset the connection while the body was sent");
            tokio::task::yield_now().await;
        }
        let (status, response) = read_response(&mut stream).await;
        assert_eq!(status, 413, "{response}");
        assert!(response.contains("at most 1024 bytes"), "{response}");
    }
    app.stop().await;
}
