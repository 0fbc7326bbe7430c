//! Plain HTTP sent to herald's TLS port (`curl http://…:8443`) gets a
//! readable `400` that says to use `https://`, instead of the TLS alert
//! that curl shows as "Received HTTP/0.9 when not allowed".

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the first byte may take before the TLS handshake reads it.
const PEEK: Duration = Duration::from_secs(10);

/// Whether the connection starts like an HTTP request (a method's capital
/// letter) rather than a TLS record (a handshake starts with 0x16).
pub async fn plain_http(stream: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    matches!(
        tokio::time::timeout(PEEK, stream.peek(&mut first)).await,
        Ok(Ok(1)) if first[0].is_ascii_uppercase()
    )
}

/// Reads the request head (a little of it, briefly), answers `400` with
/// the hint, and closes.
pub async fn answer(mut stream: TcpStream) {
    let mut head = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut head)).await;
    let body = "This port speaks HTTPS: use https:// (herald runs with --tls-cert).\n";
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}
