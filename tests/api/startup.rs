//! Start-up as a newcomer meets it: each failure names what failed, a
//! second herald stays off a SQLite file in use, and boolean variables
//! take the usual spellings.

use std::process::Stdio;

use serde_json::json;
use tokio::process::Command;

use crate::helpers::{Backend, DEADLINE, TestDb};
use crate::lifecycle::Herald;

/// Runs herald with `args` and `envs`, expects it to exit with an error,
/// and returns what it wrote to stderr.
async fn fails_to_start(args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "info")
        .env("HERALD_LOG_FORMAT", "text")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(DEADLINE, out)
        .await
        .expect("herald neither started nor failed")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "herald started: {stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
    stderr
}

fn sqlite_url() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("h.db").display());
    (dir, url)
}

#[tokio::test]
async fn a_port_in_use_names_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (_dir, db) = sqlite_url();
    let err = fails_to_start(&["--listen", &addr, "--database-url", &db], &[]).await;
    assert!(
        err.contains(&format!("cannot listen on {addr}")) && err.contains("already in use"),
        "{err}"
    );
}

#[tokio::test]
async fn a_malformed_listen_value_is_named_with_an_example() {
    let (_dir, db) = sqlite_url();
    let err = fails_to_start(&["--listen", "8080", "--database-url", &db], &[]).await;
    assert!(
        err.contains("invalid --listen value \"8080\"") && err.contains("127.0.0.1:8080"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_postgres_names_host_port_and_the_os_error() {
    // Port 1 on loopback: nothing listens there, so the OS refuses at once.
    let url = "postgres://postgres@127.0.0.1:1/herald";
    let err = fails_to_start(&["--listen", "127.0.0.1:0", "--database-url", url], &[]).await;
    assert!(
        err.contains("cannot reach Postgres at 127.0.0.1:1") && err.contains("refused"),
        "{err}"
    );
    assert!(!err.contains("pool timed out"), "{err}");
}

#[tokio::test]
#[ignore = "needs Postgres: set HERALD_TEST_POSTGRES_URL, run with --run-ignored all"]
async fn a_missing_postgres_database_is_named_once() {
    let Backend::Postgres(admin) = Backend::postgres() else {
        unreachable!()
    };
    let name = format!("herald_missing_{}", uuid::Uuid::new_v4().simple());
    let (base, _) = admin.rsplit_once('/').expect("a database in the URL");
    let url = format!("{base}/{name}");
    let err = fails_to_start(&["--listen", "127.0.0.1:0", "--database-url", &url], &[]).await;
    assert_eq!(err.matches(&name).count(), 1, "{err}");
    assert!(
        err.contains("does not exist") && err.contains("createdb"),
        "{err}"
    );
    assert!(
        !err.to_lowercase().contains("line"),
        "no server internals: {err}"
    );
}

#[tokio::test]
async fn an_sqlite_path_that_cannot_be_opened_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("h.db");
    let url = format!("sqlite://{}", path.display());
    let err = fails_to_start(&["--listen", "127.0.0.1:0", "--database-url", &url], &[]).await;
    assert!(
        err.contains(&format!(
            "cannot open the SQLite database {}",
            path.display()
        )),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_herald_on_one_sqlite_file_refuses_to_start() {
    let db = TestDb::new(&Backend::Sqlite).await;
    let first = Herald::start(&db).await;
    let err = fails_to_start(&["--listen", "127.0.0.1:0", "--database-url", &db.url], &[]).await;
    assert!(err.contains("in use by another herald process"), "{err}");
    // The first one is unharmed.
    let r = first
        .client
        .post(first.url("/topics/t"))
        .body("still here")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boolean_variables_take_one_zero_yes_no_true_false() {
    let hook = json!({"topic": "t", "url": "http://127.0.0.1:9/hook"}).to_string();
    for (value, allowed) in [("1", true), ("yes", true), ("0", false), ("false", false)] {
        let db = TestDb::new(&Backend::Sqlite).await;
        let herald = Herald::start_env(&db, &[], &[("HERALD_WEBHOOK_ALLOW_PRIVATE", value)]).await;
        let r = herald
            .client
            .post(herald.url("/subscriptions"))
            .header("content-type", "application/json")
            .body(hook.clone())
            .send()
            .await
            .unwrap();
        let want = if allowed { 201 } else { 400 };
        assert_eq!(r.status(), want, "HERALD_WEBHOOK_ALLOW_PRIVATE={value}");
    }
    let (_dir, db) = sqlite_url();
    let err = fails_to_start(
        &["--listen", "127.0.0.1:0", "--database-url", &db],
        &[("HERALD_WEBHOOK_ALLOW_PRIVATE", "maybe")],
    )
    .await;
    assert!(err.contains("maybe"), "{err}");
}
