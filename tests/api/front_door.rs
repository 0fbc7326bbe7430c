//! The front door: slowloris and idle connections are closed on time while
//! others are served, streams are not, the per-client cap (and who may
//! name the client), and the request-head size limit. Raw TCP where the
//! test needs to misbehave or pick its source address.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::{Backend, DEADLINE, TestApp, TestDb, spawn_app_with};

/// A connection from `local` (any 127/8 address is on Linux's loopback).
async fn connect_from(local: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Sends `GET path` with `headers` (each ending in CRLF) on a keep-alive
/// connection and reads the answer's status and head; the body is read
/// only when it has a `content-length`.
async fn get(stream: &mut TcpStream, path: &str, headers: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    read_response(stream).await
}

pub async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    let head = tokio::time::timeout(DEADLINE, async {
        while !buf.ends_with(b"\r\n\r\n") {
            assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "closed mid-head");
            buf.push(byte[0]);
        }
        String::from_utf8(buf).unwrap()
    })
    .await
    .expect("no response");
    let status = head[9..12].parse().unwrap();
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .map(|n| n.trim().parse::<usize>().unwrap());
    let mut body = vec![0; length.unwrap_or(0)];
    stream.read_exact(&mut body).await.unwrap();
    (status, format!("{head}{}", String::from_utf8_lossy(&body)))
}

/// Waits for the server to close `stream` and says how long that took.
pub async fn closed(stream: &mut TcpStream, since: Instant) -> Duration {
    let mut sink = [0u8; 4096];
    tokio::time::timeout(DEADLINE, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return since.elapsed(),
                Ok(_) => continue,
            }
        }
    })
    .await
    .expect("the server did not close the connection")
}

async fn app_with(flags: &[&str]) -> TestApp {
    spawn_app_with(TestDb::new(&Backend::Sqlite).await, flags).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_after_the_header_timeout_while_others_are_served() {
    let app = app_with(&[
        "--http-header-timeout",
        "1s",
        "--max-connections-per-ip",
        "0",
    ])
    .await;
    let start = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(app.addr()).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
        slow.push(s);
    }
    // One that keeps trickling: the limit is for the whole head.
    let mut trickle = TcpStream::connect(app.addr()).await.unwrap();
    let trickling = tokio::spawn(async move {
        let began = Instant::now();
        for b in b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if trickle.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        closed(&mut trickle, began).await
    });
    // A normal client is served throughout.
    for _ in 0..20 {
        assert_eq!(app.get("/healthz").await.status(), 200);
    }
    for s in &mut slow {
        let after = closed(s, start).await;
        assert!(
            after >= Duration::from_secs(1),
            "closed before the timeout: {after:?}"
        );
    }
    let after = trickling.await.unwrap();
    assert!(after >= Duration::from_secs(1), "{after:?}");
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_but_quiet_streams_are_not() {
    let app = app_with(&[
        "--http-idle-timeout",
        "1s",
        "--http-header-timeout",
        "1s",
        "--heartbeat-ms",
        "60000",
    ])
    .await;
    let mut sse = app.subscribe("/topics/t/events", None).await;
    let mut idle = TcpStream::connect(app.addr()).await.unwrap();
    // herald's idle clock starts after it has the request, so after this.
    let asked = Instant::now();
    assert_eq!(get(&mut idle, "/healthz", "").await.0, 200);
    let after = closed(&mut idle, asked).await;
    assert!(after >= Duration::from_secs(1), "{after:?}");
    // The stream sent nothing since it opened, for longer than both
    // timeouts, and is still open and receiving.
    let ack = app.publish_text("t", "still here").await;
    assert_eq!(sse.messages(1).await[0].id, ack.id);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_per_ip_cap_a_connection_gets_429_and_other_addresses_are_unaffected() {
    let app = app_with(&["--max-connections-per-ip", "3"]).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = connect_from("127.0.0.1", app.addr()).await;
        assert_eq!(get(&mut s, "/healthz", "").await.0, 200);
        held.push(s);
    }
    let mut fourth = connect_from("127.0.0.1", app.addr()).await;
    let (status, text) = get(&mut fourth, "/healthz", "").await;
    assert_eq!(status, 429, "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(text.contains("too-many-connections"), "{text}");
    closed(&mut fourth, Instant::now()).await;
    // A forwarding header from an untrusted peer changes nothing.
    let mut spoof = connect_from("127.0.0.1", app.addr()).await;
    let (status, _) = get(&mut spoof, "/healthz", "x-forwarded-for: 203.0.113.9\r\n").await;
    assert_eq!(status, 429);

    let mut other = connect_from("127.0.0.2", app.addr()).await;
    assert_eq!(get(&mut other, "/healthz", "").await.0, 200);

    // A closed connection gives its place back.
    drop(held.pop());
    crate::helpers::eventually("a place to free up", || async {
        let mut s = connect_from("127.0.0.1", app.addr()).await;
        (get(&mut s, "/healthz", "").await.0 == 200).then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_forwarded_client_is_capped_and_cannot_be_spoofed() {
    let app = app_with(&[
        "--max-connections-per-ip",
        "1",
        "--trusted-proxies",
        "127.0.0.1",
    ])
    .await;
    // The proxy (127.0.0.1) is not capped itself: its connections carry
    // several clients, each counted by the address it forwards.
    let open_stream = |xff: &'static str| {
        let addr = app.addr();
        async move {
            let mut s = connect_from("127.0.0.1", addr).await;
            let headers = format!("accept: text/event-stream\r\nx-forwarded-for: {xff}\r\n");
            let (status, text) = get(&mut s, "/topics/t/events", &headers).await;
            (status, text, s)
        }
    };
    let (status, _, _first) = open_stream("198.51.100.1").await;
    assert_eq!(status, 200);
    let (status, text, _) = open_stream("198.51.100.1").await;
    assert_eq!(status, 429, "the same client again: {text}");
    assert!(text.contains("application/problem+json"), "{text}");
    // The client wrote the left entry itself; the proxy appended the
    // address it saw, which is what counts.
    let (status, _, _) = open_stream("203.0.113.50, 198.51.100.1").await;
    assert_eq!(status, 429, "a spoofed left entry must not help");
    let (status, _, _second) = open_stream("198.51.100.2").await;
    assert_eq!(status, 200, "another client behind the same proxy");
    // 127.0.0.2 is no trusted proxy: its header is ignored and it is
    // counted by its own address.
    let mut direct = connect_from("127.0.0.2", app.addr()).await;
    let (status, _) = get(&mut direct, "/healthz", "x-forwarded-for: 198.51.100.1\r\n").await;
    assert_eq!(status, 200);
    let mut again = connect_from("127.0.0.2", app.addr()).await;
    assert_eq!(get(&mut again, "/healthz", "").await.0, 429);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_over_the_limit_gets_431() {
    let app = app_with(&[]).await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-big", "a".repeat(100 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-big", "a".repeat(15 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "just under the 16 KiB default");
    app.stop().await;
}

/// herald as a process with `open_files` as its hard limit on descriptors.
async fn herald_with_open_files(
    db: &TestDb,
    open_files: u64,
    flags: &[&str],
) -> (tokio::process::Child, SocketAddr) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &db.url,
        ])
        .args(flags)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        command.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: open_files,
                rlim_max: open_files,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().expect("start herald");
    let url = herald::startup::wait_until_listening(child.stderr.take().unwrap(), DEADLINE)
        .await
        .expect("herald did not start");
    (child, url.trim_start_matches("http://").parse().unwrap())
}

/// An SSE stream on a connection of its own.
async fn stream(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (status, head) = get(&mut s, "/topics/t/events", "accept: text/event-stream\r\n").await;
    assert_eq!(status, 200, "{head}");
    s
}

/// Whether the server has closed `s` (without waiting; what it sent
/// meanwhile is read and dropped).
fn is_closed(s: &TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => return e.kind() != std::io::ErrorKind::WouldBlock,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_the_open_files_limit_slow_clients_are_shed_and_health_checks_answered() {
    let db = TestDb::new(&Backend::Sqlite).await;
    // 256 descriptors: 192 client connections in full, the rest kept back.
    let flags = [
        "--http-header-timeout",
        "60s",
        "--max-connections-per-ip",
        "0",
    ];
    let (mut child, addr) = herald_with_open_files(&db, 256, &flags).await;
    let mut streams = Vec::new();
    for _ in 0..150 {
        streams.push(stream(addr).await);
    }
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
        slow.push(s);
    }
    // 200 > 192: connections still sending their head are closed after a
    // second instead of the 60 s header timeout, until there is room again
    // (a tenth of the budget).
    let shed = crate::helpers::eventually("slow connections to be shed", || async {
        let n = slow.iter().filter(|s| is_closed(s)).count();
        (n >= 8 + 19).then_some(n)
    })
    .await;
    assert!(shed < 50, "shedding stops once there is room: {shed}");
    let ask = |path: &'static str| async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        get(&mut s, path, "").await
    };
    assert_eq!(ask("/readyz").await.0, 200);

    // Streams are never shed: with them alone at the budget, a new
    // connection gets health checks only.
    drop(slow);
    while streams.len() < 192 {
        streams.push(stream(addr).await);
    }
    crate::helpers::eventually("the slow connections' places to be freed", || async {
        (ask("/healthz")
            .await
            .1
            .to_ascii_lowercase()
            .contains("connection: close"))
        .then_some(())
    })
    .await;
    let (status, head) = ask("/readyz").await;
    assert_eq!(status, 503, "not ready while at the limit: {head}");
    let (status, head) = ask("/topics").await;
    assert_eq!(status, 503, "{head}");
    assert!(head.contains("application/problem+json"), "{head}");
    assert!(streams.iter().all(|s| !is_closed(s)), "a stream was shed");

    drop(streams);
    crate::helpers::eventually("/readyz to answer 200 again", || async {
        (ask("/readyz").await.0 == 200).then_some(())
    })
    .await;
    child.start_kill().unwrap();
    let _ = child.wait().await;
}
