//! `spawn_app()` and typed clients shared by the integration tests.

#![allow(dead_code)]

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};
use herald::config::ServeConfig;
use herald::fanout::Hub;
use herald::startup::Application;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// How long any single wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Runs each named `async fn name(backend: Backend)` in this module as two
/// tests, `sqlite::name` and `postgres::name`. The Postgres ones are
/// `#[ignore]`d, so a run without a Postgres server counts them as skipped
/// in its summary; `--run-ignored all` (nextest) or `-- --include-ignored`
/// (cargo test) runs them, and then a missing server is a failure.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs Postgres: set HERALD_TEST_POSTGRES_URL, run with --run-ignored all"]
                async fn $name() {
                    super::$name($crate::helpers::Backend::postgres()).await
                }
            )*
        }
    };
}

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// The admin URL under which per-test databases are created.
    Postgres(String),
}

impl Backend {
    /// Postgres from `HERALD_TEST_POSTGRES_URL`. Only tests that were asked
    /// for by name or with `--run-ignored` get here, so a missing URL fails.
    pub fn postgres() -> Backend {
        match std::env::var("HERALD_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Backend::Postgres(url),
            _ => panic!(
                "this test needs Postgres: set HERALD_TEST_POSTGRES_URL, e.g. \
                 postgres://postgres@127.0.0.1:5432/herald_test (see the README's \"Test it\")"
            ),
        }
    }
}

/// A fresh database: a temporary SQLite file, or a new Postgres database
/// dropped when the last handle goes.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDb {
    pub async fn new(backend: &Backend) -> Arc<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("herald.db").display());
                Arc::new(TestDb {
                    url,
                    _dir: Some(dir),
                    postgres: None,
                })
            }
            Backend::Postgres(admin) => {
                let name = format!("herald_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = connect_pg(admin).await;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                Arc::new(TestDb {
                    url: database_url(admin, &name),
                    _dir: None,
                    postgres: Some((admin.clone(), name)),
                })
            }
        }
    }

    /// A SQLite file at `path`, whose directory the caller owns.
    pub fn sqlite_at(path: &std::path::Path) -> Arc<TestDb> {
        Arc::new(TestDb {
            url: format!("sqlite://{}", path.display()),
            _dir: None,
            postgres: None,
        })
    }

    /// The Postgres admin URL and this database's name.
    pub fn postgres_names(&self) -> Option<(&str, &str)> {
        self.postgres
            .as_ref()
            .map(|(a, n)| (a.as_str(), n.as_str()))
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }
}

async fn connect_pg(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach Postgres at {url}: {e}"))
}

/// `admin` with its database replaced by `name`.
fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = admin
        .split_once('?')
        .map_or((admin, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut url = format!("{}/{}", &base[..host_end], name);
    if let Some(q) = query {
        url = format!("{url}?{q}");
    }
    url
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.postgres.take() {
            // Drop runs inside the test's runtime: use a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let mut conn = connect_pg(&admin).await;
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                });
            })
            .join();
        }
    }
}

/// A publish answer.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Ack {
    pub id: i64,
    pub topic: String,
    pub seq: i64,
    pub time: String,
}

/// An SSE event's data.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Envelope {
    pub id: i64,
    pub topic: String,
    pub seq: i64,
    pub time: String,
    pub event: String,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub key: Option<String>,
    pub data: serde_json::Value,
}

/// A running herald inside the test process.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub hub: Arc<Hub>,
    pub db: Arc<TestDb>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// A herald on a fresh database of `backend`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(TestDb::new(&backend).await, &[]).await
}

/// A herald on `db` with extra flags.
pub async fn spawn_app_with(db: Arc<TestDb>, flags: &[&str]) -> TestApp {
    spawn_app_on(db, "127.0.0.1:0", flags).await
}

/// A herald on `db` listening on `listen` (to come back on the same port).
pub async fn spawn_app_on(db: Arc<TestDb>, listen: &str, flags: &[&str]) -> TestApp {
    let mut args = vec!["--listen", listen, "--database-url", &db.url];
    args.extend_from_slice(flags);
    let config = ServeConfig::from_args(args).expect("test flags");
    let app = Application::build(config).await.expect("build herald");
    let base = format!("http://{}", app.local_addr());
    let hub = app.hub();
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    let task = tokio::spawn(app.run_until(async move { signal.cancelled().await }));
    TestApp {
        base,
        client: crate::helpers::client(),
        hub,
        db,
        shutdown,
        task,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The address herald listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.base.trim_start_matches("http://").parse().unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.send().await.unwrap()
    }

    /// Publishes JSON and expects 201.
    pub async fn publish_json(&self, topic: &str, value: serde_json::Value) -> Ack {
        let r = self
            .post(
                &format!("/topics/{topic}"),
                Some("application/json"),
                value.to_string(),
            )
            .await;
        assert_eq!(r.status(), 201, "publish to {topic}: {:?}", r.text().await);
        r.json().await.unwrap()
    }

    /// Publishes text and expects 201.
    pub async fn publish_text(&self, topic: &str, text: &str) -> Ack {
        let r = self
            .post(&format!("/topics/{topic}"), None, text.to_owned())
            .await;
        assert_eq!(r.status(), 201, "publish to {topic}: {:?}", r.text().await);
        r.json().await.unwrap()
    }

    /// Opens an SSE stream; once this returns, the server has subscribed it.
    pub async fn subscribe(&self, path: &str, last_event_id: Option<&str>) -> Sse {
        Sse::connect(&self.client, &self.url(path), last_event_id).await
    }

    /// Stops the server the way a signal would and waits for it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("herald did not stop in time")
            .unwrap()
            .unwrap();
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<Event, String>> + Send>>;

/// An SSE client over reqwest + eventsource-stream.
pub struct Sse {
    events: EventStream,
}

impl Sse {
    pub async fn connect(client: &reqwest::Client, url: &str, last_event_id: Option<&str>) -> Sse {
        let mut req = client.get(url).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 200, "subscribe {url}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let events = response
            .bytes_stream()
            .eventsource()
            .map(|r| r.map_err(|e| e.to_string()));
        Sse {
            events: Box::pin(events),
        }
    }

    /// The next event, `None` when the server ended the stream.
    pub async fn next_event(&mut self) -> Option<Event> {
        match tokio::time::timeout(DEADLINE, self.events.next()).await {
            Ok(Some(Ok(event))) => Some(event),
            Ok(Some(Err(_))) | Ok(None) => None,
            Err(_) => panic!("no SSE event within {DEADLINE:?}"),
        }
    }

    /// The next `n` message envelopes; checks that each SSE id is the
    /// envelope's id.
    pub async fn messages(&mut self, n: usize) -> Vec<Envelope> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let event = self
                .next_event()
                .await
                .unwrap_or_else(|| panic!("stream ended after {} of {n} messages", out.len()));
            if event.event == "gap" {
                continue;
            }
            let envelope: Envelope = serde_json::from_str(&event.data).unwrap();
            assert_eq!(event.id, envelope.id.to_string());
            assert_eq!(event.event, envelope.event);
            out.push(envelope);
        }
        out
    }
}

/// Polls `check` until it returns `Some`, failing after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An HTTP client for tests. reqwest is built without a default TLS
/// provider (herald picks ring), so install it before the first client.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Another client holding what every publish needs: SQLite's write lock
/// (`BEGIN IMMEDIATE`), or on Postgres whatever `postgres_lock` takes
/// inside a transaction (a `log_head` row or table lock). Held until
/// [`DbLock::release`].
pub enum DbLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl DbLock {
    pub async fn take(db: &TestDb, postgres_lock: &str) -> DbLock {
        use sqlx::Connection;
        if db.is_postgres() {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut c).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(postgres_lock.to_owned()))
                .execute(&mut c)
                .await
                .unwrap();
            DbLock::Postgres(c)
        } else {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut c)
                .await
                .unwrap();
            DbLock::Sqlite(c)
        }
    }

    pub async fn release(self) {
        match self {
            DbLock::Sqlite(mut c) => drop(sqlx::query("ROLLBACK").execute(&mut c).await.unwrap()),
            DbLock::Postgres(mut c) => drop(sqlx::query("ROLLBACK").execute(&mut c).await.unwrap()),
        }
    }
}
