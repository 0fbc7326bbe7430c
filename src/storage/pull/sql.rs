//! [`PullStore`] once for both backends: SQL that runs on SQLite and
//! Postgres alike, generic over the sqlx database of a [`SqlBackend`].

mod hand_out;

use sqlx::{Database, Executor, FromRow, Pool, Transaction};

use super::{DeadLettered, LeaseOutcome, PullStats, PullStore};
use crate::domain::{AckId, Timestamp};
use crate::storage::topics::{Binds, Rows};
use crate::storage::webhooks::Start;
use crate::storage::{MessageRow, SqlBackend, StoreError};
use hand_out::{bury_exhausted, hand_out};

/// A row claimed or buried.
#[derive(Debug, FromRow)]
pub(super) struct Row {
    position: i64,
    topic: String,
    attempts: i32,
    first_attempt_us: Option<i64>,
    envelope: Option<String>,
    priority: i16,
    /// Attempts that ended in a nack; the others' leases ran out.
    nacks: i32,
}

pub(super) const ROW: &str =
    "position, topic, attempts, first_attempt_us, envelope, priority, nacks";

/// `$first, $first+1, …` (n of them).
pub(super) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait::async_trait]
impl<T> PullStore for T
where
    T: SqlBackend,
    for<'c> &'c Pool<T::DB>: Executor<'c, Database = T::DB>,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    String: Binds<T::DB>,
    Option<String>: Binds<T::DB>,
    i64: Binds<T::DB>,
    i32: Binds<T::DB>,
    Option<i32>: Binds<T::DB>,
    Option<i64>: Binds<T::DB>,
    MessageRow: Rows<T::DB>,
    PullStats: Rows<T::DB>,
    Row: Rows<T::DB>,
    (i64,): Rows<T::DB>,
    (i64, i32): Rows<T::DB>,
    (Option<i64>,): Rows<T::DB>,
{
    async fn lease(
        &self,
        sub: i64,
        now: Timestamp,
        until: Timestamp,
        n: u32,
        max_attempts: i32,
        acks: &[AckId],
    ) -> Result<LeaseOutcome, StoreError> {
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        let acked = ack_in::<T>(&mut tx, sub, acks, now).await?;
        let exhausted = bury_exhausted::<T>(&mut tx, sub, now, max_attempts).await?;
        // A paused subscription leases nothing, however it was paused (by
        // its owner, a revocation, auto-disable) and whoever asks.
        // The unary `+` keeps SQLite off the indexes on those columns: it
        // walks `retries_priority` (highest priority first, then in
        // position order) and stops after `n`, instead of sorting every due
        // delivery (1,000,000 in a backlog).
        let claimed: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE retries SET attempts = attempts + 1, leased_until = $3, next_attempt_us = $3, \
             first_attempt_us = COALESCE(first_attempt_us, $2), last_attempt_us = $2 \
             WHERE subscription_id = $1 AND position IN \
             (SELECT position FROM retries r WHERE subscription_id = $1 AND +next_attempt_us <= $2 \
             AND +attempts < $5 AND {} ORDER BY priority DESC, position LIMIT $4 {}) \
             AND NOT (SELECT paused FROM subscriptions WHERE id = $1) \
             RETURNING {ROW}",
            super::OLDEST_OF_ITS_KEY,
            T::CLAIM_LOCK
        )))
        .bind(sub)
        .bind(now.0)
        .bind(until.0)
        .bind(i64::from(n))
        .bind(max_attempts)
        .fetch_all(&mut *tx)
        .await
        .map_err(T::err)?;
        let mut out = hand_out::<T>(&mut tx, sub, claimed, now).await?;
        count_acked::<T>(&mut tx, sub, acked.len()).await?;
        tx.commit().await.map_err(T::err)?;
        out.acked = acked;
        out.dead_lettered.splice(0..0, exhausted);
        Ok(out)
    }

    async fn bury_exhausted(
        &self,
        sub: i64,
        now: Timestamp,
        max_attempts: i32,
    ) -> Result<Vec<DeadLettered>, StoreError> {
        // `retries_attempts` finds them; most passes find none and take
        // no write lock.
        let any: Option<(i64,)> = sqlx::query_as(
            "SELECT position FROM retries WHERE subscription_id = $1 AND attempts >= $2 \
             AND next_attempt_us <= $3 LIMIT 1",
        )
        .bind(sub)
        .bind(max_attempts)
        .bind(now.0)
        .fetch_optional(self.reads())
        .await
        .map_err(T::err)?;
        if any.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        let buried = bury_exhausted::<T>(&mut tx, sub, now, max_attempts).await?;
        tx.commit().await.map_err(T::err)?;
        Ok(buried)
    }

    async fn ack(&self, sub: i64, ids: &[AckId], now: Timestamp) -> Result<Vec<AckId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        let done = ack_in::<T>(&mut tx, sub, ids, now).await?;
        count_acked::<T>(&mut tx, sub, done.len()).await?;
        tx.commit().await.map_err(T::err)?;
        Ok(done)
    }

    async fn relet(
        &self,
        sub: i64,
        ids: &[(AckId, Timestamp)],
        keep_lease: bool,
        now: Timestamp,
    ) -> Result<Vec<AckId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        let mut done = Vec::new();
        for (id, next) in ids {
            let changed: Option<(i64,)> = sqlx::query_as(
                "UPDATE retries SET next_attempt_us = $5, leased_until = $6, \
                 nacks = nacks + $7 \
                 WHERE subscription_id = $1 AND position = $2 AND attempts = $3 \
                 AND leased_until > $4 RETURNING position",
            )
            .bind(sub)
            .bind(id.position)
            .bind(id.attempt)
            .bind(now.0)
            .bind(next.0)
            .bind(keep_lease.then_some(next.0))
            .bind(i32::from(!keep_lease))
            .fetch_optional(&mut *tx)
            .await
            .map_err(T::err)?;
            if changed.is_some() {
                done.push(*id);
            }
        }
        tx.commit().await.map_err(T::err)?;
        Ok(done)
    }

    async fn still_leased(
        &self,
        sub: i64,
        ids: &[AckId],
        now: Timestamp,
    ) -> Result<Vec<AckId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT position, attempts FROM retries WHERE subscription_id = $1 \
             AND leased_until > $2 AND position IN ({})",
            placeholders(3, ids.len())
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(sub)
            .bind(now.0);
        for id in ids {
            q = q.bind(id.position);
        }
        let rows: Vec<(i64, i32)> = q.fetch_all(self.reads()).await.map_err(T::err)?;
        let held: std::collections::HashSet<AckId> = rows
            .into_iter()
            .map(|(position, attempt)| AckId { position, attempt })
            .collect();
        Ok(ids.iter().copied().filter(|id| held.contains(id)).collect())
    }

    async fn seek(&self, sub: i64, to: Start, now: Timestamp) -> Result<bool, StoreError> {
        let mut tx = self.writes().begin().await.map_err(T::err)?;
        let cursor = match to {
            Start::Head => {
                let (head,): (i64,) = sqlx::query_as("SELECT head FROM log_head WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(T::err)?;
                head
            }
            Start::Earliest => 0,
            Start::After(p) => p,
        };
        sqlx::query("DELETE FROM retries WHERE subscription_id = $1")
            .bind(sub)
            .execute(&mut *tx)
            .await
            .map_err(T::err)?;
        let moved: Option<(i64,)> = sqlx::query_as(
            "UPDATE subscriptions SET cursor = $2, updated_us = $3 WHERE id = $1 RETURNING id",
        )
        .bind(sub)
        .bind(cursor)
        .bind(now.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(T::err)?;
        tx.commit().await.map_err(T::err)?;
        Ok(moved.is_some())
    }

    async fn pull_stats(&self, sub: i64, now: Timestamp) -> Result<PullStats, StoreError> {
        sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM retries WHERE subscription_id = $1 \
             AND (leased_until IS NULL OR leased_until <= $2)) AS backlog, \
             (SELECT COUNT(*) FROM retries WHERE subscription_id = $1 AND leased_until > $2) \
             AS in_flight, \
             (SELECT MIN(m.time_us) FROM retries r JOIN messages m ON m.position = r.position \
             WHERE r.subscription_id = $1) AS oldest_us",
        )
        .bind(sub)
        .bind(now.0)
        .fetch_one(self.reads())
        .await
        .map_err(T::err)
    }

    async fn next_due(&self, sub: i64) -> Result<Option<Timestamp>, StoreError> {
        // Not a row held back behind an earlier one of its ordering key:
        // it is due only once that one is acked (which wakes consumers),
        // and counting it had waiting consumers of an ordered
        // subscription lease every 10 ms while a key was in flight.
        let next: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT next_attempt_us FROM retries r WHERE subscription_id = $1 AND {} \
             ORDER BY next_attempt_us LIMIT 1",
            super::OLDEST_OF_ITS_KEY
        )))
        .bind(sub)
        .fetch_optional(self.reads())
        .await
        .map_err(T::err)?;
        Ok(next.map(|(t,)| Timestamp(t)))
    }

    async fn announce_pull(&self, node: &str) -> Result<(), StoreError> {
        crate::storage::notify::<T, _>(self.reads(), super::CHANNEL, node)
            .await
            .map_err(T::err)
    }
}

/// Deletes the rows still leased under these ids, in the caller's
/// transaction; returns the ids acked (count them with [`count_acked`]).
async fn ack_in<T>(
    tx: &mut Transaction<'static, T::DB>,
    sub: i64,
    ids: &[AckId],
    now: Timestamp,
) -> Result<Vec<AckId>, StoreError>
where
    T: SqlBackend,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    i64: Binds<T::DB>,
    i32: Binds<T::DB>,
    (i64, i32): Rows<T::DB>,
{
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let n = ids.len();
    // Row values pin each position to its attempt; the plain `IN`
    // beside them lets the primary key find the rows.
    let pairs: Vec<String> = (0..n)
        .map(|i| format!("(${}, ${})", 3 + i, 3 + n + i))
        .collect();
    let sql = format!(
        "DELETE FROM retries WHERE subscription_id = $1 AND leased_until > $2 \
         AND position IN ({}) AND (position, attempts) IN (VALUES {}) \
         RETURNING position, attempts",
        placeholders(3, n),
        pairs.join(", ")
    );
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(sub)
        .bind(now.0);
    for id in ids {
        q = q.bind(id.position);
    }
    for id in ids {
        q = q.bind(id.attempt);
    }
    let done: Vec<(i64, i32)> = q.fetch_all(&mut **tx).await.map_err(T::err)?;
    Ok(done
        .into_iter()
        .map(|(position, attempt)| AckId { position, attempt })
        .collect())
}

/// Counts `n` acks as delivered, in the caller's transaction: its last
/// statement before the commit, because it locks the subscription's row,
/// which every consumer's acks update (on Postgres, a lock held through
/// the lease's claim serialised the consumers of every node).
async fn count_acked<T>(
    tx: &mut Transaction<'static, T::DB>,
    sub: i64,
    n: usize,
) -> Result<(), StoreError>
where
    T: SqlBackend,
    for<'c> &'c mut <T::DB as Database>::Connection: Executor<'c, Database = T::DB>,
    i64: Binds<T::DB>,
{
    if n == 0 {
        return Ok(());
    }
    sqlx::query("UPDATE subscriptions SET delivered = delivered + $2 WHERE id = $1")
        .bind(sub)
        .bind(n as i64)
        .execute(&mut **tx)
        .await
        .map(drop)
        .map_err(T::err)
}
