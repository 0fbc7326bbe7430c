//! The write probe behind `GET /readyz`: a database that answers reads but
//! refuses writes (a full disk, a read-only file or database, a lock held
//! elsewhere) must not be reported ready. Each backend updates the one
//! `readiness` row in a transaction of its own; on SQLite the free space
//! beside the file is checked too, since a small write can still fit in a
//! WAL file that SQLite reuses while a publish no longer does.

use std::path::{Path, PathBuf};

use sqlx::{PgPool, SqlitePool};

use crate::domain::Timestamp;

/// Below this much free space beside a SQLite file, herald is not ready:
/// a publish (1 MiB by default, a batch more) and the WAL's checkpoint
/// need room, and a disk this full is one the operator should hear about.
pub const SQLITE_FREE_SPACE_FLOOR: u64 = 8 * 1024 * 1024;

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("the database refuses writes: {0}")]
    Write(#[from] sqlx::Error),
    #[error("only {free} bytes free beside {}", .path.display())]
    DiskFull { free: u64, path: PathBuf },
}

/// On the writer connection, in a task of its own so that a caller that
/// gives up cannot leave a transaction open. `IMMEDIATE` asks for the
/// write lock, which a lock held elsewhere refuses after the busy timeout.
pub async fn sqlite(writer: SqlitePool, file: Option<PathBuf>) -> Result<(), ProbeError> {
    if let Some(file) = file {
        let dir = file
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_owned);
        if let Some(free) = free_bytes(&dir)
            && free < SQLITE_FREE_SPACE_FLOOR
        {
            return Err(ProbeError::DiskFull { free, path: dir });
        }
    }
    let probe = tokio::spawn(async move {
        let mut conn = writer.acquire().await?;
        let result =
            sqlx::query("BEGIN IMMEDIATE; UPDATE readiness SET probed_us = ? WHERE id = 1; COMMIT")
                .bind(Timestamp::now().0)
                .execute(&mut *conn)
                .await;
        if result.is_err() {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        }
        result.map(drop)
    });
    match probe.await {
        Ok(result) => Ok(result?),
        Err(_) => Err(ProbeError::Write(sqlx::Error::PoolClosed)),
    }
}

/// On the writer pool, what a publish needs: the log-head row lock (a
/// moment, like any publish; `lock_timeout` bounds the wait) and a write. A
/// read-only database (`default_transaction_read_only`, a standby), a lock
/// held elsewhere, or a server that cannot be reached fails it. A dropped
/// transaction is rolled back by sqlx.
pub async fn postgres(writer: &PgPool) -> Result<(), ProbeError> {
    let mut tx = writer.begin().await?;
    sqlx::query("SELECT head FROM log_head WHERE id = 1 FOR UPDATE")
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE readiness SET probed_us = $1 WHERE id = 1")
        .bind(Timestamp::now().0)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Bytes available to herald on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `stat` is ours to fill.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some(stat.f_bavail as u64 * stat.f_frsize as u64)
}
