//! `herald publish` and `herald subscribe`, the real binary against a
//! herald: a round trip, a resume across a restart, and clear failures.

use std::process::{Output, Stdio};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::helpers::{Backend, DEADLINE, TestDb, spawn_app, spawn_app_on, spawn_app_with};

/// `herald ARGS…` with `stdin`, to its end.
async fn herald(args: &[&str], stdin: Option<&str>) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env_remove("HERALD_URL")
        .env_remove("HERALD_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or("").as_bytes())
        .await
        .unwrap();
    drop(input);
    tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("herald did not exit")
        .unwrap()
}

/// `herald subscribe ARGS…` running, its stdout read line by line.
struct Subscriber {
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Subscriber {
    fn start(args: &[&str]) -> Subscriber {
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .arg("subscribe")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Subscriber {
            _child: child,
            lines,
        }
    }

    /// The next `n` lines, each a JSON envelope (`--json`).
    async fn envelopes(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            let line = tokio::time::timeout(DEADLINE, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("{} of {n} lines in time", out.len()))
                .unwrap()
                .expect("subscribe exited");
            out.push(serde_json::from_str(&line).unwrap());
        }
        out
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_subscribe_round_trip_through_the_binary() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut sub =
        Subscriber::start(&["--url", &app.base, "--since", "earliest", "--json", "cli.*"]);
    let out = herald(
        &[
            "publish", "--url", &app.base, "--event", "greeting", "--ttl", "1h", "cli.a", "hello",
        ],
        None,
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let ack: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(ack["topic"], "cli.a");
    let json_body = r#"{"total": 7}"#;
    let args = [
        "publish",
        "--url",
        &app.base,
        "--content-type",
        "application/json",
        "cli.b",
        "-",
    ];
    let out = herald(&args, Some(json_body)).await;
    assert!(out.status.success(), "{:?}", text(&out));

    let got = sub.envelopes(2).await;
    assert_eq!(got[0]["id"], ack["id"]);
    assert_eq!(got[0]["event"], "greeting");
    assert_eq!(got[0]["data"], "hello");
    assert!(
        got[0]["expires"].is_string(),
        "--ttl sets expires: {}",
        got[0]
    );
    assert_eq!(
        (got[1]["topic"].clone(), got[1]["data"].clone()),
        (json!("cli.b"), json!({"total": 7}))
    );

    // Without --json, the payload alone.
    let mut plain = Subscriber::start(&["--url", &app.base, "--since", "earliest", "cli.a"]);
    let line = tokio::time::timeout(DEADLINE, plain.lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(line.as_deref(), Some("hello"));

    // The publish options: priority and key reach the envelope; a repeated
    // idempotency key stores nothing; a delay schedules (202).
    for _ in 0..2 {
        let args = [
            "publish",
            "--url",
            &app.base,
            "--priority",
            "high",
            "--key",
            "k1",
            "--idempotency-key",
            "once",
            "cli.a",
            "keyed",
        ];
        let out = herald(&args, None).await;
        assert!(out.status.success(), "{:?}", text(&out));
    }
    let got = sub.envelopes(1).await;
    assert_eq!(
        (got[0]["priority"].clone(), got[0]["key"].clone()),
        (json!(4), json!("k1"))
    );
    let args = [
        "publish", "--url", &app.base, "--delay", "1h", "cli.a", "later",
    ];
    let out = herald(&args, None).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let scheduled: Value = serde_json::from_str(&stdout).unwrap();
    assert!(scheduled["schedule_id"].is_i64(), "{stdout}");
    let page: Value = app
        .get("/topics/cli.a/messages")
        .await
        .json()
        .await
        .unwrap();
    let keyed = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["data"] == "keyed")
        .count();
    assert_eq!(keyed, 1, "the repeat was a replay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_from_stdin_loses_its_final_newline_unless_kept() {
    let app = spawn_app(Backend::Sqlite).await;
    let publish = |extra: &'static [&'static str], stdin: &'static str| {
        let base = app.base.clone();
        async move {
            let mut args = vec!["publish", "--url", &base];
            args.extend_from_slice(extra);
            args.extend_from_slice(&["cli.stdin", "-"]);
            let out = herald(&args, Some(stdin)).await;
            assert!(out.status.success(), "{:?}", text(&out));
        }
    };
    publish(&[], "echoed\n").await;
    publish(&[], "two lines\n\n").await;
    publish(&[], "crlf\r\n").await;
    publish(&["--keep-newline"], "kept\n").await;
    let page: Value = app
        .get("/topics/cli.stdin/messages")
        .await
        .json()
        .await
        .unwrap();
    let data: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["data"].as_str().unwrap())
        .collect();
    assert_eq!(data, ["echoed", "two lines\n", "crlf", "kept\n"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_flag_and_herald_token_are_sent_as_bearer_tokens() {
    let db = TestDb::new(&Backend::Sqlite).await;
    let flags = crate::jwt::flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let app = spawn_app_with(db, &flags).await;
    let token = crate::jwt::hs256(&crate::jwt::claims("u", json!({"publish": ["t"]})));
    let out = herald(&["publish", "--url", &app.base, "t", "x"], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("401"), "{:?}", text(&out));
    let out = herald(
        &["publish", "--url", &app.base, "--token", &token, "t", "x"],
        None,
    )
    .await;
    assert!(out.status.success(), "{:?}", text(&out));
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["publish", "t", "y"])
        .env("HERALD_URL", &app.base)
        .env("HERALD_TOKEN", &token)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_resumes_across_a_restart_with_no_gap_and_no_duplicate() {
    let db = TestDb::new(&Backend::Sqlite).await;
    let app = spawn_app_with(db.clone(), &[]).await;
    let listen = app.addr().to_string();
    let base = app.base.clone();
    for i in 1..=3 {
        app.publish_text("restart", &format!("m{i}")).await;
    }
    let mut sub = Subscriber::start(&["--url", &base, "--since", "earliest", "--json", "restart"]);
    let before = sub.envelopes(3).await;
    app.stop().await;
    // The subscriber keeps trying; herald comes back on the same port.
    let app = spawn_app_on(db, &listen, &[]).await;
    for i in 4..=6 {
        app.publish_text("restart", &format!("m{i}")).await;
    }
    let after = sub.envelopes(3).await;
    let data: Vec<Value> = before
        .iter()
        .chain(&after)
        .map(|e| e["data"].clone())
        .collect();
    let expected: Vec<Value> = (1..=6).map(|i| json!(format!("m{i}"))).collect();
    assert_eq!(data, expected, "in order, each once");
    let ids: Vec<i64> = before
        .iter()
        .chain(&after)
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_is_printed_on_stderr_and_the_stream_goes_on() {
    let app = spawn_app(Backend::Sqlite).await;
    app.publish_text("gaps", "before").await;
    // A cursor past the head: herald answers with a gap, then goes on.
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["subscribe", "--url", &app.base, "--since", "1000", "gaps"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let notice = tokio::time::timeout(DEADLINE, stderr.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(notice.starts_with("herald: GAP: "), "{notice}");
    app.publish_text("gaps", "after").await;
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(DEADLINE, stdout.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(line.as_deref(), Some("after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_url_an_unreachable_herald_and_a_bad_topic_fail_clearly() {
    let out = herald(&["publish", "--url", "not a url", "t", "x"], None).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("invalid --url \"not a url\""),
        "{:?}",
        text(&out)
    );

    // Nothing listens on a port just freed.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = format!("http://{free}");
    for args in [
        vec!["publish", "--url", &down, "t", "x"],
        vec!["subscribe", "--url", &down, "t"],
    ] {
        let out = herald(&args, None).await;
        assert_eq!(out.status.code(), Some(3), "{args:?}: {:?}", text(&out));
        assert!(
            text(&out)
                .1
                .contains(&format!("cannot reach herald at {down}")),
            "{:?}",
            text(&out)
        );
    }

    let app = spawn_app(Backend::Sqlite).await;
    for args in [
        vec!["publish", "--url", &app.base, "bad topic", "x"],
        vec!["subscribe", "--url", &app.base, "bad topic"],
    ] {
        let out = herald(&args, None).await;
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(
                "herald answered 400: Invalid topic: character ' ' at position 3 is not allowed"
            ),
            "{stderr}"
        );
    }
}
