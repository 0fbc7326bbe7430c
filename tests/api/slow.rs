//! Slow and stalled subscribers: herald's memory for them stays bounded
//! (`--hub-max-bytes`, a small write buffer per connection) and they lose
//! nothing: a stalled stream catches up from storage when it reads again,
//! or is closed after `--sse-write-timeout` and resumes with Last-Event-ID.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::{Backend, DEADLINE, TestApp, TestDb, eventually, spawn_app_with};

crate::on_both_backends!(
    stalled_streams_of_every_kind_lose_nothing_beside_a_fast_one,
    the_write_timeout_closes_a_stalled_stream_and_not_a_slow_one,
);

const HUB_MAX_BYTES: usize = 64 * 1024;
/// Enough SSE bytes (~1.2 KiB per event) to fill a stalled connection's
/// socket buffers several times over, and the hub's budget many times.
const MESSAGES: usize = 3000;
const BATCH: usize = 100;

async fn stalled_streams_of_every_kind_lose_nothing_beside_a_fast_one(backend: Backend) {
    let app = spawn_app_with(
        TestDb::new(&backend).await,
        &["--hub-max-bytes", "64KiB", "--sse-write-timeout", "60s"],
    )
    .await;
    // A stream that is catching up when it stalls: history first.
    let mut ids = publish(&app, "slow.a", 0..BATCH * 5).await;
    let paths = [
        "/topics/slow.a/events?last_event_id=earliest",
        "/topics/slow.a/events",
        "/events?topic=other&topic=slow.*",
        "/events?topic=slow.**&filter=data.n%20%3E%3D%200",
    ];
    let mut stalled = Vec::new();
    for path in paths {
        stalled.push(RawSse::connect(&app, path, None, 4096).await);
    }
    let mut fast = app.subscribe("/topics/slow.a/events", None).await;
    let live = publish(&app, "slow.a", BATCH * 5..MESSAGES).await;
    let got: Vec<i64> = fast
        .messages(live.len())
        .await
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(got, live, "the fast subscriber gets every message in order");
    assert!(
        app.hub.held_bytes() <= HUB_MAX_BYTES,
        "the hub holds {} bytes for stalled streams",
        app.hub.held_bytes()
    );

    ids.extend_from_slice(&live);
    let last = *ids.last().unwrap();
    let mut expected = [ids.clone(), live.clone(), live.clone(), live];
    for (stream, expected) in stalled.iter_mut().zip(&mut expected) {
        let (got, closed) = stream.read_until(last).await;
        assert!(!closed, "the stream stays open");
        assert_eq!(&got, expected, "every message after its position, once");
    }
    assert!(
        app.hub.lag_recoveries() > 0,
        "streams fell behind the hub's 64 KiB and read storage"
    );
    app.stop().await;
}

async fn the_write_timeout_closes_a_stalled_stream_and_not_a_slow_one(backend: Backend) {
    let app = spawn_app_with(
        TestDb::new(&backend).await,
        &["--hub-max-bytes", "64KiB", "--sse-write-timeout", "1s"],
    )
    .await;
    let mut stalled = RawSse::connect(&app, "/topics/w/events", None, 4096).await;
    let mut slow = RawSse::connect(&app, "/topics/w/events", None, 256 * 1024).await;
    // Reads what has arrived every 200 ms (under the timeout) while the
    // load runs: its socket is full most of the time.
    let slow_reader = tokio::spawn(async move {
        let mut got = Vec::new();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if slow.read_once(&mut got).await || got.len() >= MESSAGES {
                return (slow, got);
            }
        }
    });
    let ids = publish(&app, "w", 0..MESSAGES).await;
    eventually("the stalled stream to be closed", || async {
        let topic: serde_json::Value = app.get("/topics/w").await.json().await.unwrap();
        (topic["subscribers"] == 1).then_some(())
    })
    .await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let closes: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("herald_sse_slow_disconnects_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_default();
    assert!(closes >= 1.0, "counted in /metrics: {metrics}");

    let (mut slow, mut got) = slow_reader.await.unwrap();
    if got.last() != ids.last() {
        let (rest, closed) = slow.read_until(*ids.last().unwrap()).await;
        got.extend(rest);
        assert!(!closed, "the slow reader was not closed");
    }
    assert_eq!(got, ids, "the slow reader gets everything, in order");

    // The stalled client reads what reached it, sees the end, and resumes.
    let (mut resumed, closed) = stalled.read_until(i64::MAX).await;
    assert!(closed);
    assert!(resumed.len() < ids.len(), "it was closed before the end");
    let cursor = resumed.last().copied().unwrap_or(0);
    let mut again = RawSse::connect(&app, "/topics/w/events", Some(cursor), 64 * 1024).await;
    resumed.extend(again.read_until(*ids.last().unwrap()).await.0);
    assert_eq!(resumed, ids, "resumed exactly: nothing lost, nothing twice");
    app.stop().await;
}

/// Publishes messages `{"n": i, "pad": <1 KiB>}` for `range` in batches;
/// returns their ids.
async fn publish(app: &TestApp, topic: &str, range: std::ops::Range<usize>) -> Vec<i64> {
    let pad = "x".repeat(1000);
    let mut ids = Vec::new();
    let all: Vec<usize> = range.collect();
    for chunk in all.chunks(BATCH) {
        let body: Vec<_> = chunk
            .iter()
            .map(|n| serde_json::json!({"n": n, "pad": pad}))
            .collect();
        let path = format!("/topics/{topic}/batch");
        let r = app
            .post(
                &path,
                Some("application/json"),
                serde_json::to_string(&body).unwrap(),
            )
            .await;
        assert_eq!(r.status(), 201);
        let body: serde_json::Value = r.json().await.unwrap();
        ids.extend(
            body["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_i64().unwrap()),
        );
    }
    ids
}

/// An SSE client on a raw socket, so that it can stop reading and let its
/// receive buffer (set small) fill up.
struct RawSse {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawSse {
    async fn connect(app: &TestApp, path: &str, after: Option<i64>, rcvbuf: u32) -> RawSse {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(rcvbuf).unwrap();
        let addr = app.base.trim_start_matches("http://").parse().unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        let resume = after.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{resume}\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut sse = RawSse {
            stream,
            buf: Vec::new(),
        };
        while !sse.buf.windows(4).any(|w| w == b"\r\n\r\n") {
            assert!(!sse.fill().await, "closed before the response head");
        }
        let head = String::from_utf8_lossy(&sse.buf).to_string();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let end = head.find("\r\n\r\n").unwrap() + 4;
        sse.buf.drain(..end);
        sse
    }

    /// One read; `true` once the server has closed the stream.
    async fn fill(&mut self) -> bool {
        self.buf.reserve(256 * 1024);
        let read = tokio::time::timeout(DEADLINE, self.stream.read_buf(&mut self.buf))
            .await
            .expect("no data from the server in time");
        // A reset is a close, too (the server gave up on this client).
        read.map_or(true, |n| n == 0)
    }

    /// One read, then the ids of the complete events so far into `ids`.
    async fn read_once(&mut self, ids: &mut Vec<i64>) -> bool {
        let closed = self.fill().await;
        // Events end with a blank line; chunk-size lines between them
        // never start with "id: ".
        if let Some(end) = self.buf.windows(2).rposition(|w| w == b"\n\n") {
            let text = String::from_utf8_lossy(&self.buf[..end]).to_string();
            ids.extend(
                text.lines()
                    .filter_map(|l| l.strip_prefix("id: "))
                    .map(|id| id.trim().parse::<i64>().unwrap()),
            );
            self.buf.drain(..end + 2);
        }
        closed
    }

    /// Reads until the event `last` or the end of the stream: the ids
    /// seen, and whether the stream ended.
    async fn read_until(&mut self, last: i64) -> (Vec<i64>, bool) {
        let mut ids = Vec::new();
        loop {
            if self.read_once(&mut ids).await {
                return (ids, true);
            }
            if ids.last() == Some(&last) {
                return (ids, false);
            }
        }
    }
}
