//! Opening a database at start-up: the checks that turn a failure into a
//! message naming what failed (the address, the database, the file), and
//! the lock that keeps a second herald off a SQLite file.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// How long a start-up waits for another herald to let go of a SQLite
/// file (one that is shutting down in this process, say) before refusing.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Takes an exclusive lock on `<db>.lock` beside the SQLite file, held as
/// long as the returned file is open (the OS releases it if the process
/// dies). Two herald processes on one file would both write and answer each
/// other's conflicts with errors: the second one refuses to start instead.
pub fn lock_sqlite_file(db: &Path) -> anyhow::Result<File> {
    let path = {
        let mut p = db.as_os_str().to_owned();
        p.push(".lock");
        std::path::PathBuf::from(p)
    };
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| sqlite_path_error(db, &e.to_string()))?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(anyhow!(
                    "the SQLite database {} is in use by another herald process (it holds {}). \
                     SQLite is for one process: stop the other one, or use Postgres to run several nodes",
                    db.display(),
                    path.display()
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(anyhow!("cannot lock {}: {e}", path.display()));
            }
        }
    }
}

/// "cannot open the SQLite database PATH: why".
pub fn sqlite_path_error(db: &Path, why: &str) -> anyhow::Error {
    anyhow!(
        "cannot open the SQLite database {}: {why} (does its directory exist, and may herald write there?)",
        db.display()
    )
}

/// What a failed SQLite open says, without sqlx's wrapping.
pub fn sqlite_open_error(db: &Path, e: &sqlx::Error) -> anyhow::Error {
    match e {
        sqlx::Error::Database(d) => sqlite_path_error(db, d.message()),
        other => sqlite_path_error(db, &other.to_string()),
    }
}

/// One connection to Postgres before the pools are built: a pool only says
/// "timed out" when the server cannot be reached, and this says why.
pub async fn probe_postgres(options: &PgConnectOptions, timeout: Duration) -> anyhow::Result<()> {
    let (host, port) = (options.get_host(), options.get_port());
    let database = options.get_database().unwrap_or(options.get_username());
    match tokio::time::timeout(timeout, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Err(_) => Err(anyhow!(
            "cannot reach Postgres at {host}:{port}: no answer within {timeout:?}"
        )),
        Ok(Err(e)) => Err(describe_postgres_error(&e, host, port, database)),
    }
}

fn describe_postgres_error(
    e: &sqlx::Error,
    host: &str,
    port: u16,
    database: &str,
) -> anyhow::Error {
    match e {
        sqlx::Error::Io(io) => anyhow!("cannot reach Postgres at {host}:{port}: {io}"),
        sqlx::Error::Database(d) if d.code().as_deref() == Some("3D000") => anyhow!(
            "the Postgres database \"{database}\" does not exist on {host}:{port}: \
             create it first (with createdb, or CREATE DATABASE)"
        ),
        sqlx::Error::Database(d) => {
            anyhow!(
                "Postgres at {host}:{port} refused the connection: {}",
                d.message()
            )
        }
        other => anyhow!("cannot connect to Postgres at {host}:{port}: {other}"),
    }
}
