//! What herald logs about access control, read from the real binary's
//! stderr: tokens never, and a warning when it is open beyond loopback.

use std::process::Stdio;

use serde_json::json;

use crate::helpers::{Backend, DEADLINE, TestDb, eventually};
use crate::jwt;

/// Starts the binary with `flags` and `RUST_LOG=trace`, its stderr going to
/// a file; returns the child, its base URL and the log file's path.
pub async fn start(
    db: &TestDb,
    flags: &[&str],
    dir: &std::path::Path,
) -> (tokio::process::Child, String, std::path::PathBuf) {
    start_logging(db, flags, dir, Some("trace")).await
}

/// [`start`] with `RUST_LOG` set to `rust_log`, or removed (herald as
/// shipped) when `None`.
pub async fn start_logging(
    db: &TestDb,
    flags: &[&str],
    dir: &std::path::Path,
    rust_log: Option<&str>,
) -> (tokio::process::Child, String, std::path::PathBuf) {
    let log = dir.join("herald.log");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .args(["serve", "--database-url", &db.url])
        .args(flags)
        .env_remove("RUST_LOG");
    if let Some(filter) = rust_log {
        command.env("RUST_LOG", filter);
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = eventually("herald listening", || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines().find_map(herald::startup::listening_url)
    })
    .await;
    (child, base, log)
}

pub async fn stop(mut child: tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    tokio::time::timeout(DEADLINE, child.wait())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_in_the_query_never_reach_the_logs() {
    let db = TestDb::new(&Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let mut flags: Vec<String> = jwt::flags();
    flags.extend(["--listen".into(), "127.0.0.1:0".into()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (child, base, log) = start(&db, &flags, dir.path()).await;
    let client = crate::helpers::client();
    let good = jwt::hs256(&jwt::claims(
        "u",
        json!({"subscribe": ["t"], "publish": ["t"]}),
    ));
    let bad = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.NOT-A-SIGNATURE-but-SECRET-ish";
    let cases = [
        format!("{base}/topics/t/messages?access_token={good}"),
        format!("{base}/topics/t/messages?access_token={bad}"),
        format!("{base}/topics/t/messages?limit=x&access_token={good}"),
        format!("{base}/events?topic=**&access_token={good}"),
        format!("{base}/nowhere?access_token={good}"),
    ];
    for url in &cases {
        let r = client.get(url).send().await.unwrap();
        let body = r.text().await.unwrap();
        assert!(
            !body.contains(&good) && !body.contains(bad),
            "{url}: {body}"
        );
    }
    let r = client
        .post(format!("{base}/topics/t"))
        .bearer_auth(bad)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let stream = client
        .get(format!("{base}/topics/t/events?access_token={good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    drop(stream);
    stop(child).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("/topics/t/messages"),
        "trace logging is on: {}",
        &text[..text.len().min(2000)]
    );
    // No part of either token: its signature is the secret part.
    let signature = good.rsplit('.').next().unwrap();
    assert!(
        !text.contains(signature),
        "the token's signature is in the log"
    );
    assert!(
        !text.contains("NOT-A-SIGNATURE"),
        "the bad token is in the log"
    );
    assert!(
        !text.contains("access_token="),
        "a query with the token is in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_herald_beyond_loopback_warns_and_a_locked_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let open = TestDb::new(&Backend::Sqlite).await;
    let (child, _, log) = start(&open, &["--listen", "0.0.0.0:0"], dir.path()).await;
    stop(child).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("access control is off"), "{text}");
    let locked = TestDb::new(&Backend::Sqlite).await;
    let other = tempfile::tempdir().unwrap();
    let flags = ["--listen", "0.0.0.0:0", "--anonymous", "subscribe"];
    let (child, _, log) = start(&locked, &flags, other.path()).await;
    stop(child).await;
    assert!(
        !std::fs::read_to_string(&log)
            .unwrap()
            .contains("access control is off")
    );
}
