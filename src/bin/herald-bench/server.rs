//! The herald under test: a child process on a fresh database (or a URL
//! given with `--url`), and what /proc says about its memory and CPU.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A database for one scenario: a fresh SQLite file, or a fresh database
/// on the Postgres server named by `--database-url`.
pub struct BenchDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    drop: Option<(String, String)>,
}

impl BenchDb {
    pub async fn fresh(postgres: Option<&str>) -> anyhow::Result<Self> {
        match postgres {
            None => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                Ok(Self {
                    url,
                    _dir: Some(dir),
                    drop: None,
                })
            }
            Some(admin) => {
                use sqlx::Connection;
                let name = format!("herald_bench_{}", std::process::id());
                let mut c = sqlx::PgConnection::connect(admin).await?;
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut c)
                .await;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut c)
                    .await?;
                let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
                Ok(Self {
                    url: format!("{base}/{name}"),
                    _dir: None,
                    drop: Some((admin.to_owned(), name)),
                })
            }
        }
    }

    pub async fn cleanup(mut self) {
        if let Some((admin, name)) = self.drop.take() {
            use sqlx::Connection;
            if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut c)
                .await;
            }
        }
    }
}

/// A running herald.
pub struct Server {
    pub url: String,
    child: Option<Child>,
}

impl Server {
    /// Targets an existing server.
    pub fn external(url: &str) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            child: None,
        }
    }

    /// Starts the `herald` binary that sits beside this one, or the one
    /// `HERALD_BENCH_SERVER` names (another build, for before/after runs).
    pub async fn start(db: &BenchDb, flags: &[&str]) -> anyhow::Result<Self> {
        let exe: PathBuf = match std::env::var_os("HERALD_BENCH_SERVER") {
            Some(path) => PathBuf::from(path),
            None => std::env::current_exe()?.with_file_name("herald"),
        };
        let mut child = Command::new(&exe)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &db.url,
            ])
            .args(flags)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot start {}: {e} (build it: cargo build --release)",
                    exe.display()
                )
            })?;
        // As shipped: herald's own defaults (RUST_LOG and the request log
        // included) but for the flags a scenario names.
        let changed = if flags.is_empty() {
            "none".to_owned()
        } else {
            flags.join(" ")
        };
        eprintln!("herald-bench: herald with default flags; changed: {changed}");
        let stderr = child.stderr.take().expect("piped");
        let url = herald::startup::wait_until_listening(stderr, Duration::from_secs(30)).await?;
        Ok(Self {
            url,
            child: Some(child),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

/// Resident memory of a process, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// CPU time (user + system) of a process so far, in seconds.
pub fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = pid.map_or("/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after ')'.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}
