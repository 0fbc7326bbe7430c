//! The real binary's logs as a collector reads them: `--log-format json`
//! gives one JSON object per line, one request line per request (never its
//! query), stream open and close lines, and request ids that clients see.

use serde_json::Value;

use crate::auth_logs::{start, stop};
use crate::helpers::{Backend, Sse, TestDb};

/// Every line of `text`, each parsed as JSON (failing on any that is not).
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The request lines (`message` "request") for `path`.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_one_line_per_request_with_its_id_and_no_query_secrets() {
    let db = TestDb::new(&Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--listen", "127.0.0.1:0", "--log-format", "json"];
    let (child, base, log) = start(&db, &flags, dir.path()).await;
    let client = crate::helpers::client();

    // A client's id is kept and echoed; one is made when there is none.
    let r = client
        .get(format!("{base}/healthz"))
        .header("x-request-id", "trace-me-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-me-1");
    let r = client
        .get(format!(
            "{base}/topics/bad%20name/messages?access_token=s3cret-in-query"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let made = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(!made.is_empty());
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["request_id"], made.as_str(), "{problem}");
    assert_eq!(problem["type"], "urn:herald:problem:invalid-topic");

    let mut sse = Sse::connect(&client, &format!("{base}/topics/logs/events"), None).await;
    let r = client
        .post(format!("{base}/topics/logs?x=1"))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
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
    let bad = request_lines(&lines, "/topics/bad%20name/messages");
    assert_eq!(bad[0]["span"]["request_id"], made.as_str());
    assert_eq!(bad[0]["fields"]["status"], 400);
    let publish = request_lines(&lines, "/topics/logs");
    assert_eq!(publish[0]["fields"]["status"], 201);

    let closed = lines
        .iter()
        .find(|l| l["fields"]["message"] == "stream closed")
        .expect("a stream close line");
    assert_eq!(closed["fields"]["events"], 1, "{closed}");
    assert!(closed["fields"]["duration_ms"].is_u64());
    assert_eq!(closed["span"]["path"], "/topics/logs/events");
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "stream opened" && l["fields"]["topics"] == "logs")
    );
}
