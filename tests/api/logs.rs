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
