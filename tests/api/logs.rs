//! The real binary's logs as a collector reads them: `--log-format json`
//! gives one JSON object per line, one request line per request (never its
//! query), stream open and close lines; and request ids that clients see.

use serde_json::Value;

use crate::auth_logs::{start, stop};
use crate::helpers::{Backend, Sse, TestDb, spawn_app};

/// Every line of `text`, each parsed as JSON (failing on any that is not).
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The request lines (`message` "request…") for `path`.
fn request_lines<'a>(lines: &'a [Value], path: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("request")
        })
        .filter(|l| l["span"]["path"] == path)
        .collect()
}

/// The first line whose message is `message`.
fn line<'a>(lines: &'a [Value], message: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["fields"]["message"] == message)
        .unwrap_or_else(|| panic!("no {message:?} line"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_kept_or_made_echoed_and_in_problem_answers() {
    let app = spawn_app(Backend::Sqlite).await;
    let id_of = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-1")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&r), "trace-me-1");
    // Too long to be a client's id: replaced with a new one.
    let long = "x".repeat(200);
    let r = app
        .client
        .get(app.url("/topics/bad%20name/messages"))
        .header("x-request-id", &long)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let made = id_of(&r);
    assert!(made != long && made.len() == 36, "{made}");
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["request_id"], made.as_str(), "{problem}");
    assert_eq!(problem["type"], "urn:herald:problem:invalid-topic");
    assert_eq!(problem["status"], 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_one_line_per_request_with_its_id_and_no_query_secrets() {
    let db = TestDb::new(&Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--listen", "127.0.0.1:0", "--log-format", "json"];
    let (child, base, log) = start(&db, &flags, dir.path()).await;
    let client = crate::helpers::client();
    let url = format!("{base}/healthz?access_token=s3cret-in-query");
    let r = client.get(url).header("x-request-id", "trace-me-1");
    assert_eq!(r.send().await.unwrap().status(), 200);
    let mut sse = Sse::connect(&client, &format!("{base}/topics/logs/events"), None).await;
    let r = client.post(format!("{base}/topics/logs?x=1")).body("hello");
    assert_eq!(r.send().await.unwrap().status(), 201);
    sse.messages(1).await;
    drop(sse);
    stop(child).await;

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("s3cret-in-query"),
        "a query secret is logged"
    );
    let lines = json_lines(&text);
    let health = request_lines(&lines, "/healthz");
    assert_eq!(health.len(), 1, "one line per request: {health:?}");
    assert_eq!(health[0]["span"]["request_id"], "trace-me-1");
    assert_eq!(health[0]["span"]["method"], "GET");
    assert_eq!(health[0]["fields"]["status"], 200);
    assert!(health[0]["fields"]["latency_ms"].is_number());
    assert!(health[0]["fields"]["bytes"].as_u64().unwrap() > 0);
    let publish = request_lines(&lines, "/topics/logs");
    assert_eq!(publish[0]["fields"]["status"], 201);

    let opened = line(&lines, "stream opened");
    assert_eq!(opened["fields"]["topics"], "logs");
    let closed = line(&lines, "stream closed");
    assert_eq!(closed["fields"]["events"], 1, "{closed}");
    assert!(closed["fields"]["duration_ms"].is_u64());
    assert_eq!(closed["span"]["path"], "/topics/logs/events");
}

/// Starts the binary as shipped (no `RUST_LOG`), its stderr going to a file
/// as JSON lines.
async fn start_as_shipped(
    db: &TestDb,
    flags: &[&str],
    dir: &std::path::Path,
) -> (tokio::process::Child, String, std::path::PathBuf) {
    let mut all = vec!["--listen", "127.0.0.1:0", "--log-format", "json"];
    all.extend_from_slice(flags);
    crate::auth_logs::start_logging(db, &all, dir, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_log_at_debug_and_the_access_log_turns_off() {
    let db = TestDb::new(&Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let (child, base, log) = start_as_shipped(&db, &[], dir.path()).await;
    let client = crate::helpers::client();
    for path in ["/healthz", "/readyz", "/metrics", "/topics/t/messages"] {
        assert_eq!(
            client
                .get(format!("{base}{path}"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    // A failing health check is still logged: here a 404 under /healthz.
    let r = client
        .get(format!("{base}/healthz/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    stop(child).await;
    let lines = json_lines(&std::fs::read_to_string(&log).unwrap());
    for quiet in ["/healthz", "/readyz", "/metrics"] {
        assert!(
            request_lines(&lines, quiet).is_empty(),
            "{quiet} logged at info"
        );
    }
    let history = request_lines(&lines, "/topics/t/messages");
    assert_eq!(history.len(), 1, "{lines:?}");
    assert_eq!(history[0]["target"], "herald::access");
    assert_eq!(request_lines(&lines, "/healthz/x").len(), 1);

    let db = TestDb::new(&Backend::Sqlite).await;
    let (child, base, log) = start_as_shipped(&db, &["--access-log", "false"], dir.path()).await;
    let mut sse = Sse::connect(&client, &format!("{base}/topics/logs/events"), None).await;
    let r = client.post(format!("{base}/topics/logs")).body("hello");
    assert_eq!(r.send().await.unwrap().status(), 201);
    sse.messages(1).await;
    drop(sse);
    stop(child).await;
    let lines = json_lines(&std::fs::read_to_string(&log).unwrap());
    assert!(
        request_lines(&lines, "/topics/logs").is_empty(),
        "{lines:?}"
    );
    // Streams still log their open and close, and startup its address.
    line(&lines, "stream opened");
    line(&lines, "stream closed");
    assert!(
        lines
            .iter()
            .any(|l| herald::startup::listening_url(&l.to_string()).is_some())
    );
}

/// A stderr nobody reads (a pipe whose reader stopped): herald keeps
/// answering, drops log lines and counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stderr_drops_log_lines_and_counts_them_without_stalling_requests() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let db = TestDb::new(&Backend::Sqlite).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &db.url,
        ])
        .args(["--log-format", "json", "--log-buffer-lines", "64"])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Read up to the address, then never again: the pipe stays open and
    // fills (64 KiB), and herald's log writer blocks on it.
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = loop {
        let line = stderr.next_line().await.unwrap().expect("herald exited");
        if let Some(url) = herald::startup::listening_url(&line) {
            break url;
        }
    };
    let client = crate::helpers::client();
    // Each answer logs a line of about 300 bytes: 2,000 of them are far
    // more than the pipe and the 64-line queue hold.
    let answered = tokio::time::timeout(crate::helpers::DEADLINE, async {
        for i in 0..2_000 {
            let r = client
                .get(format!("{base}/topics/t{}/messages", i % 10))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    })
    .await;
    assert!(answered.is_ok(), "requests stalled behind a stalled stderr");
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dropped = text
        .lines()
        .find_map(|l| l.strip_prefix("herald_log_lines_dropped_total "))
        .unwrap_or_else(|| panic!("no herald_log_lines_dropped_total in\n{text}"));
    let dropped: f64 = dropped.trim().parse().unwrap();
    assert!(dropped >= 500.0, "only {dropped} lines counted as dropped");
    drop(stderr);
    child.kill().await.unwrap();
}
