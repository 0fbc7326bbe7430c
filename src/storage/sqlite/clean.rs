//! The writer connection goes back to its pool outside any transaction, or
//! not at all.
//!
//! A statement or `COMMIT` that fails (a full disk, a read-only file) may
//! leave SQLite inside the transaction, or roll it back by itself so that
//! sqlx's own `ROLLBACK` fails and sqlx believes a transaction is still
//! open. sqlx then opens the next one with a `SAVEPOINT`, which SQLite
//! treats as a `BEGIN` that a later `ROLLBACK TO` leaves open, and the next
//! publish's `BEGIN IMMEDIATE` failed with "cannot start a transaction
//! within a transaction" (a 500). So every connection returned to the
//! writer pool is checked: one that SQLite or sqlx thinks is inside a
//! transaction is closed (which rolls it back) and the pool opens a fresh
//! one with the same settings.

use libsqlite3_sys::sqlite3_get_autocommit;
use sqlx::{Connection, SqliteConnection};

/// For [`sqlx::pool::PoolOptions::after_release`]: `true` keeps the
/// connection, `false` replaces it.
pub async fn outside_transaction(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    // A `Transaction` dropped without commit (a cancelled request, an early
    // `?`) has queued its ROLLBACK on the worker, and this hook runs before
    // sqlx flushes it. A ping runs everything queued first; only a
    // connection still inside a transaction after that is broken. (Without
    // it, every cancelled transaction replaced the writer, and the new one
    // waited for the old one's lock: seen as 2-5 s stalls under fuzzing.)
    if conn.is_in_transaction() {
        conn.ping().await?;
    }
    let believed = conn.is_in_transaction();
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is locked away from sqlx's worker thread while
    // it is in use, and `sqlite3_get_autocommit` only reads a flag.
    let autocommit = unsafe { sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) } != 0;
    drop(handle);
    if believed || !autocommit {
        tracing::warn!(
            sqlite_in_transaction = !autocommit,
            sqlx_in_transaction = believed,
            "a failed write left the writer connection inside a transaction; replacing it"
        );
        return Ok(false);
    }
    Ok(true)
}
