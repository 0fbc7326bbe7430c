//! The real binary: SIGTERM shuts down cleanly, kill -9 loses nothing that
//! was acknowledged, and a restart on the same database continues the log.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::helpers::{Ack, Backend, DEADLINE, Sse, TestDb};

crate::on_both_backends!(
    sigterm_ends_streams_commits_what_was_acknowledged_and_exits_zero,
    a_crash_loses_nothing_acknowledged_and_seqs_continue,
);

/// A herald process.
pub struct Herald {
    child: Child,
    pub base: String,
    pub client: reqwest::Client,
}

impl Herald {
    pub async fn start(db: &TestDb) -> Herald {
        Self::start_with(db, &[]).await
    }

    pub async fn start_with(db: &TestDb, flags: &[&str]) -> Herald {
        Self::start_env(db, flags, &[]).await
    }

    /// With extra environment variables.
    pub async fn start_env(db: &TestDb, flags: &[&str], envs: &[(&str, &str)]) -> Herald {
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &db.url,
            ])
            .args(flags)
            .envs(envs.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start herald");
        let stderr = child.stderr.take().unwrap();
        let base = herald::startup::wait_until_listening(stderr, DEADLINE)
            .await
            .expect("herald did not start");
        Herald {
            child,
            base,
            client: crate::helpers::client(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("running").to_string();
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} {pid}");
    }

    pub async fn wait(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("herald did not exit")
            .unwrap()
    }

    /// Every message of `topic`, via the history endpoint.
    pub async fn history(&self, topic: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let page: Value = self
                .client
                .get(self.url(&format!(
                    "/topics/{topic}/messages?after={after}&limit=1000"
                )))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let msgs = page["messages"].as_array().unwrap().clone();
            if msgs.is_empty() {
                return all;
            }
            after = page["next"].as_i64().unwrap();
            all.extend(msgs);
        }
    }
}

/// Publishers that keep going until the server stops answering 201; every
/// acknowledgement is recorded.
fn start_publishers(
    base: &str,
    n: usize,
) -> (Arc<Mutex<Vec<Ack>>>, Vec<tokio::task::JoinHandle<()>>) {
    let acks = Arc::new(Mutex::new(Vec::new()));
    let tasks = (0..n)
        .map(|w| {
            let acks = acks.clone();
            let url = format!("{base}/topics/life");
            tokio::spawn(async move {
                let client = crate::helpers::client();
                for i in 0.. {
                    let r = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(json!({"w": w, "i": i}).to_string())
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 201 => {
                            let ack: Ack = r.json().await.unwrap();
                            acks.lock().unwrap().push(ack);
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    (acks, tasks)
}

async fn wait_for_acks(acks: &Mutex<Vec<Ack>>, n: usize) {
    crate::helpers::eventually("acknowledged publishes", || async {
        (acks.lock().unwrap().len() >= n).then_some(())
    })
    .await;
}

async fn sigterm_ends_streams_commits_what_was_acknowledged_and_exits_zero(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let mut herald = Herald::start(&db).await;
    let mut sse = Sse::connect(&herald.client, &herald.url("/topics/life/events"), None).await;
    let (acks, publishers) = start_publishers(&herald.base, 8);
    wait_for_acks(&acks, 100).await;

    herald.signal("TERM");
    // The open stream ends on its own (it must not hold shutdown open) …
    while sse.next_event().await.is_some() {}
    // … and the process exits cleanly.
    assert_eq!(herald.wait().await.code(), Some(0));
    for p in publishers {
        p.await.unwrap();
    }

    let herald = Herald::start(&db).await;
    let stored = herald.history("life").await;
    let stored_ids: std::collections::HashSet<i64> =
        stored.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    let acks = acks.lock().unwrap().clone();
    assert!(acks.len() >= 100);
    for a in &acks {
        assert!(stored_ids.contains(&a.id), "acknowledged {a:?} was lost");
    }
    let seqs: Vec<i64> = stored.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    let next: Ack = herald
        .client
        .post(herald.url("/topics/life"))
        .body("after restart")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(next.seq, seqs.len() as i64 + 1);
}

async fn a_crash_loses_nothing_acknowledged_and_seqs_continue(backend: Backend) {
    let db = TestDb::new(&backend).await;
    let mut herald = Herald::start(&db).await;
    let (acks, publishers) = start_publishers(&herald.base, 8);
    wait_for_acks(&acks, 200).await;

    herald.signal("KILL");
    herald.wait().await;
    for p in publishers {
        p.await.unwrap();
    }

    let herald = Herald::start(&db).await;
    let stored = herald.history("life").await;
    let stored_ids: std::collections::HashSet<i64> =
        stored.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    let acks = acks.lock().unwrap().clone();
    for a in &acks {
        assert!(
            stored_ids.contains(&a.id),
            "acknowledged {a:?} was lost in the crash"
        );
    }
    let ids: Vec<i64> = stored.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(
        ids,
        (1..=ids.len() as i64).collect::<Vec<_>>(),
        "positions have a gap"
    );
    let next: Ack = herald
        .client
        .post(herald.url("/topics/life"))
        .body("after crash")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (next.id, next.seq),
        (ids.len() as i64 + 1, stored.len() as i64 + 1)
    );
}
